package probe

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Every kind with every option, in the canonical form: Parse then String
// gives the text back, and parsing that gives an Equal check.
var canonicalChecks = []string{
	"http://192.0.2.10/healthz",
	"http://192.0.2.10:8080/ready host app.example.com",
	"http://192.0.2.10/ status 200",
	"http://192.0.2.10/ status 200,204",
	"http://192.0.2.10/ body ok",
	`http://192.0.2.10/ body "service is up"`,
	`http://192.0.2.10/ body "say \"hi\""`,
	`http://192.0.2.10/ body "a#b"`,
	`http://192.0.2.10/ body "a|b"`,
	`http://192.0.2.10/ body {"status":"UP"}`,
	"http://192.0.2.10/ insecure",
	"https://[2001:db8::10]:8443/healthz",
	`https://192.0.2.10/healthz host app.example.com status 200,204,301 body "ready: yes" insecure`,
	"https://{addr}/healthz host app.example.com",
	"HTTPS://{addr}/x status 204,200",
	"tcp 192.0.2.10:443",
	"tcp [2001:db8::10]:443",
	"tcp {addr}:443",
	"tcp app.example.com:443",
	"grpc 192.0.2.10:50051",
	"grpc 192.0.2.10:50051 service app.v1.Orders",
	"grpc 192.0.2.10:50051 tls",
	"grpc 192.0.2.10:50051 host app.example.com tls",
	"grpc 192.0.2.10:50051 service app.v1.Orders host app.example.com:443 tls insecure",
	"grpc {addr}:50051 service app.v1.Orders tls",
}

func TestCheckRoundTrip(t *testing.T) {
	for _, s := range canonicalChecks {
		c, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if c.String() != s {
			t.Errorf("Parse(%q).String() = %q, want it back", s, c.String())
		}
		back, err := Parse(c.String())
		if err != nil || !back.Equal(c) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.String(), back, err, c)
		}
		// The same words as a Corefile line gives them.
		words, err := splitWords(s)
		if err != nil {
			t.Fatal(err)
		}
		fromArgs, n, err := ParseArgs(words)
		if err != nil || n != len(words) || !fromArgs.Equal(c) {
			t.Errorf("ParseArgs(%q) = %+v, %d, %v; want %+v", words, fromArgs, n, err, c)
		}
	}
}

func TestParseCheck(t *testing.T) {
	tests := []struct {
		in   string
		want Check
		text string // canonical form
	}{
		{"http://x/", Check{Kind: HTTP, URL: "http://x/"}, "http://x/"},
		{"https://x/  insecure   status 200,204 host h", Check{Kind: HTTPS, URL: "https://x/", Host: "h", Status: []int{200, 204}, Insecure: true},
			"https://x/ host h status 200,204 insecure"},
		{`http://x/ body "a  b"`, Check{Kind: HTTP, URL: "http://x/", Body: "a  b"}, `http://x/ body "a  b"`},
		{`http://x/ body "x"y`, Check{}, ""}, // a word after a closing quote is a word: an unknown option
		{`http://x/ body a"b`, Check{Kind: HTTP, URL: "http://x/", Body: `a"b`}, `http://x/ body a"b`},
		{`http://x/ body "a\b"`, Check{Kind: HTTP, URL: "http://x/", Body: `a\b`}, `http://x/ body a\b`},
		{`http://x/ body "\"q\" z"`, Check{Kind: HTTP, URL: "http://x/", Body: `"q" z`}, `http://x/ body "\"q\" z"`},
		{"http://x/ status +200", Check{Kind: HTTP, URL: "http://x/", Status: []int{200}}, "http://x/ status 200"},
		{"tcp x:80", Check{Kind: TCP, Addr: "x:80"}, "tcp x:80"},
		{"grpc x:80 insecure tls service s", Check{Kind: GRPC, Addr: "x:80", Service: "s", TLS: true, Insecure: true}, "grpc x:80 service s tls insecure"},
	}
	for _, tc := range tests {
		c, err := Parse(tc.in)
		if tc.text == "" {
			if err == nil {
				t.Errorf("Parse(%q) = %v, want an error", tc.in, c)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !c.Equal(tc.want) || c.String() != tc.text {
			t.Errorf("Parse(%q) = %+v (%q), want %+v (%q)", tc.in, c, c.String(), tc.want, tc.text)
		}
	}
}

func TestParseCheckErrors(t *testing.T) {
	tests := []struct{ in, err string }{
		{"", "empty check"},
		{"ftp://x/", "scheme must be http or https"},
		{"x", "want a URL"},
		{"http://", "no host"},
		{"://x", "scheme must be http or https"},
		{"http://x/ bogus", `unknown option "bogus" (want host, status, body, insecure)`},
		{"http://x/ status", "status needs a value"},
		{"http://x/ status 200 204", `unknown option "204"`},
		{"http://x/ status 99", "want HTTP status codes"},
		{"http://x/ status 200,", "want HTTP status codes"},
		{"http://x/ status 200 status 204", "status given twice"},
		{"http://x/ host a host b", "host given twice"},
		{"http://x/ host a/b", "want a host name"},
		{"http://x/ service s", "service is an option of grpc checks, not http"},
		{"http://x/ tls", "tls is an option of grpc checks, not http"},
		{`http://x/ body ""`, "want 1 to 255 bytes"},
		{"http://x/ body " + strings.Repeat("a", 256), "want 1 to 255 bytes"},
		{`http://x/ body "a b\"`, "a quote is not closed"},
		{"http://x/ body \"a\tb\"", "control characters"},
		{`http://x/ body "unclosed`, "a quote is not closed"},
		{"tcp", "want tcp HOST:PORT"},
		{"tcp x", "missing port"},
		{"tcp :80", "no host"},
		{"tcp x:0", "bad port"},
		{"tcp x:70000", "bad port"},
		{"tcp x:http", "bad port"},
		{"tcp x:+80", "bad port"},
		{"tcp x:80 host h", "host is an option of http, https, grpc checks, not tcp"},
		{"tcp x:80 extra", `unknown option "extra" (a tcp check takes no options)`},
		{"grpc x:80 insecure", "needs tls"},
		{"grpc x:80 status 200", "status is an option of http, https checks, not grpc"},
		{"grpc x:80 service", "service needs a value"},
		{"grpc [{addr}]:80", "with 2001:db8::1 for {addr}"},
		{"http://{addr}.nip.io/", "with 2001:db8::1 for {addr}"},
		{"http://x/" + strings.Repeat("a", MaxLen), "bytes"},
		{"http://x/?a=1|http://y/", "without spaces or '|'"},
		{"tcp x|y:80", "without spaces or '|'"},
		{"http://x/ host a|b", "want a host name"},
	}
	for _, tc := range tests {
		c, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error with %q", tc.in, c, tc.err)
			continue
		}
		if !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q): %v, want it to say %q", tc.in, err, tc.err)
		}
	}
}

// Words from a Corefile are already unquoted; a body that could not be
// written back in quotes is refused rather than changed.
func TestParseArgsBodyMustBeWritable(t *testing.T) {
	for _, body := range []string{`a b\`, `a \" b`, `#\`} {
		if c, _, err := ParseArgs([]string{"http://x/", "body", body}); err == nil {
			t.Errorf("body %q accepted as %q", body, c)
		}
	}
	for _, body := range []string{`a\`, `a\\ b`, `a \\" b`, `a \x b`} {
		c, _, err := ParseArgs([]string{"http://x/", "body", body})
		if err != nil {
			t.Errorf("body %q: %v", body, err)
			continue
		}
		if back, err := Parse(c.String()); err != nil || back.Body != body {
			t.Errorf("body %q written as %q read back as %q, %v", body, c.String(), back.Body, err)
		}
	}
}

// A Corefile target line goes on after its check: ParseArgs stops at the
// first word that is not an option of the check.
func TestParseArgsStops(t *testing.T) {
	args := []string{"https://x/", "status", "200,204", "check", "tcp", "x:443", "tier", "2"}
	c, n, err := ParseArgs(args)
	if err != nil || n != 3 || c.String() != "https://x/ status 200,204" {
		t.Fatalf("ParseArgs = %v, %d, %v", c, n, err)
	}
	c, n, err = ParseArgs(args[4:])
	if err != nil || n != 2 || c.String() != "tcp x:443" {
		t.Fatalf("ParseArgs(tcp) = %v, %d, %v", c, n, err)
	}
	// A body word that looks like an option is still the body.
	c, n, err = ParseArgs([]string{"http://x/", "body", "tier", "tier", "2"})
	if err != nil || n != 3 || c.Body != "tier" {
		t.Fatalf("ParseArgs(body tier) = %v, %d, %v", c, n, err)
	}
}

func TestForAddr(t *testing.T) {
	tests := []struct{ spec, addr, want string }{
		{"tcp {addr}:443", "192.0.2.1", "tcp 192.0.2.1:443"},
		{"tcp {addr}:443", "2001:db8::1", "tcp [2001:db8::1]:443"},
		{"tcp {addr}:443", "::ffff:192.0.2.1", "tcp 192.0.2.1:443"},
		{"http://{addr}/healthz status 200,204", "2001:db8::1", "http://[2001:db8::1]/healthz status 200,204"},
		{"https://{addr}:8443/?from={addr} host app.example.com body ok", "192.0.2.7", "https://192.0.2.7:8443/?from=192.0.2.7 host app.example.com body ok"},
		{"grpc {addr}:50051 service s tls", "192.0.2.7", "grpc 192.0.2.7:50051 service s tls"},
		{"tcp 198.51.100.1:443", "192.0.2.1", "tcp 198.51.100.1:443"},
	}
	for _, tc := range tests {
		c, err := Parse(tc.spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.spec, err)
		}
		got, err := c.ForAddr(netip.MustParseAddr(tc.addr))
		if err != nil || got.String() != tc.want {
			t.Errorf("%q for %s = %q, %v; want %q", tc.spec, tc.addr, got, err, tc.want)
		}
		if got.IsTemplate() {
			t.Errorf("%q for %s still holds %s", tc.spec, tc.addr, AddrPlaceholder)
		}
	}
}

// Records stored before there was one grammar were written in the old
// webhook/check canonical form; a peer or a restart must find them
// canonical still, or the whole record set is refused.
func TestOldRecordFormsStayCanonical(t *testing.T) {
	for _, s := range []string{
		"tcp {addr}:443",
		"http://{addr}/healthz status 200,204",
		"HTTP://{addr}/x status 204,200,200",
		"https://{addr}/healthz host app.example.com status 301 insecure",
		"http://{addr}/ insecure",
		"http://{addr}/a#frag",
		"http://app.example.com/%7Euser",
	} {
		c, err := Parse(s)
		if err != nil || c.String() != s {
			t.Errorf("Parse(%q) = %q, %v; want it unchanged", s, c.String(), err)
		}
	}
}

func TestKindNames(t *testing.T) {
	for k, want := range map[Kind]string{HTTP: "http", HTTPS: "https", TCP: "tcp", GRPC: "grpc"} {
		if k.String() != want {
			t.Errorf("Kind(%d) = %q, want %q", k, k, want)
		}
	}
}

// Target.Key joins checks with '|'; no check may hold one outside quotes,
// or one target's single check could pass for another's two.
func TestKeyIsUnambiguous(t *testing.T) {
	if _, err := Parse("http://y/?q=1|http://z/ status 200"); err == nil {
		t.Error("a URL with '|' parsed")
	}
	one, err := Parse(`http://y/ body "1|http://z/ status 200"`)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Parse(`http://y/ body 1`)
	b, _ := Parse("http://z/ status 200")
	addr := netip.MustParseAddr("192.0.2.1")
	t1 := Target{Addr: addr, Checks: []Check{one}, Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}
	t2 := Target{Addr: addr, Checks: []Check{a, b}, Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}
	if t1.Key() == t2.Key() {
		t.Errorf("one check and two checks share the key %q", t1.Key())
	}
}
