package healthdns

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/override"
	"github.com/healthdns/healthdns/plugin/healthdns/status"

	"github.com/miekg/dns"
)

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "control.token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestControlSetup(t *testing.T) {
	zf := writeZone(t, serveZone)
	good := tokenFile(t, "0123456789abcdef0123")
	short := tokenFile(t, "short")
	for _, tc := range []struct {
		block, err string
	}{
		{"control 127.0.0.1:8054 {\n tokenfile " + good + "\n }", ""},
		{"control 127.0.0.1:8054 {\n insecure\n }", ""},
		{"control 127.0.0.1:8054", "needs tokenfile"},
		{"control 127.0.0.1:8054 {\n tokenfile " + short + "\n }", "at least 16"},
		{"control 127.0.0.1:8054 {\n tokenfile /nonexistent/token\n }", "no such file"},
		{"control 127.0.0.1:8054 {\n tokenfile " + good + "\n insecure\n }", "not both"},
		{"control 127.0.0.1:8054 {\n password x\n }", "unknown property"},
		{"control localhost {\n insecure\n }", "listen address"},
		{"status 127.0.0.1:8054\n control 127.0.0.1:8054 {\n insecure\n }", "its own address"},
	} {
		corefile := "healthdns example.org {\n zonefile " + zf + "\n " + tc.block + "\n name app {\n target 192.0.2.10 check tcp 127.0.0.1:1\n }\n }"
		cfg, err := parse(caddy.NewTestController("dns", corefile))
		if tc.err == "" {
			if err != nil || cfg.control == nil {
				t.Errorf("%q: %v", tc.block, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one with %q", tc.block, err, tc.err)
		} else if !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %q does not name the line", tc.block, err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type controlClient struct {
	t     *testing.T
	base  string
	token string
}

func (c controlClient) do(method, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+"/v1/overrides", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		c.t.Fatalf("%s: not JSON (%v): %s", method, err, b)
	}
	return resp.StatusCode, out
}

// answers is the sorted A answer for app.example.org over network.
func appAnswers(t *testing.T, network, addr string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("app.example.org.", dns.TypeA)
	r := exchange(t, network, addr, m)
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// The control API on one server: a drain takes a target out of the
// answers (over UDP and TCP) while the others are up and brings it back
// when they are not; forced states override the probes; a clear and an
// expiry bring the verdict back; bad input and a wrong token change
// nothing; the status, the matrix and the data directory say it all.
func TestControlWire(t *testing.T) {
	up := upServer(t)
	token := "0123456789abcdef0123456789abcdef"
	ctl, stat, data := freeAddr(t), freeAddr(t), t.TempDir()
	udp, tcp := startWire(t, `example.org:0 {
    bind 127.0.0.1
    healthdns {
        zonefile `+wireZone(t)+`
        interval 200ms
        timeout 100ms
        rise 1
        fall 1
        data `+data+`
        status `+stat+`
        control `+ctl+` {
            tokenfile `+tokenFile(t, token)+`
        }
        name app {
            target 192.0.2.10 check `+up+`
            target 192.0.2.12 check `+up+`
            target 192.0.2.11 check tcp 127.0.0.1:1
        }
    }
}
`)
	c := controlClient{t: t, base: "http://" + ctl, token: token}
	t.Cleanup(func() { // the zones' state outlives the server: leave none of this to other tests
		vs := verdictStateOf([]string{"example.org."})
		vs.mu.Lock()
		vs.ov = newOverrideState()
		vs.mu.Unlock()
	})
	want := func(what string, addrs ...string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			gotU, gotT := appAnswers(t, "udp", udp), appAnswers(t, "tcp", tcp)
			if slices.Equal(gotU, addrs) && slices.Equal(gotT, addrs) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: answers %v (UDP) %v (TCP), want %v", what, gotU, gotT, addrs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want("at start", "192.0.2.10", "192.0.2.12")

	bad := controlClient{t: t, base: c.base, token: "wrong-token-wrong-token"}
	if code, body := bad.do("POST", `{"selector":"192.0.2.10","state":"down"}`); code != http.StatusUnauthorized || body["error"] == nil {
		t.Errorf("wrong token: %d %v", code, body)
	}
	if code, _ := bad.do("GET", ""); code != http.StatusUnauthorized {
		t.Errorf("wrong token, GET: %d", code)
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"selector":"app.example.org","state":"drain"}`, http.StatusBadRequest},
		{`{"selector":"192.0.2.10","state":"melt"}`, http.StatusBadRequest},
		{`{"selector":"192.0.2.10","state":"drain","for":"-1h"}`, http.StatusBadRequest},
		{`{"selector":"192.0.2.10","state":"drain","color":"red"}`, http.StatusBadRequest},
		{`{"selector":"192.0.2.10","state":"drain"} {}`, http.StatusBadRequest},
		{`{"selector":"192.0.2.10","state":"clear"}`, http.StatusNotFound},
		{`{"selector":"192.0.2.10","state":"drain","reason":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		if code, body := c.do("POST", tc.body); code != tc.code || body["error"] == nil {
			t.Errorf("%.80s: %d %v, want %d with an error", tc.body, code, body, tc.code)
		}
	}
	want("after refused writes", "192.0.2.10", "192.0.2.12")

	code, body := c.do("POST", `{"selector":"192.0.2.10","state":"drain","reason":"bad deploy","who":"alice"}`)
	if code != http.StatusOK || body["matched"] != 1.0 || body["state"] != "drain" {
		t.Fatalf("drain: %d %v", code, body)
	}
	want("192.0.2.10 drained", "192.0.2.12")
	if code, _ := c.do("POST", `{"selector":"*/192.0.2.12","state":"down"}`); code != http.StatusOK {
		t.Fatal(code)
	}
	want("the other forced down: the drained one answers", "192.0.2.10")
	if code, _ := c.do("POST", `{"selector":"192.0.2.11","state":"up","for":"1h"}`); code != http.StatusOK {
		t.Fatal(code)
	}
	want("the failing one forced up", "192.0.2.11")

	// Every view says it, with the probes' verdict beside it.
	doc := statusDoc(t, "http://"+stat+"/status")
	var drained *status.Target
	for i, tg := range doc.Names[0].Targets {
		if tg.Address == "192.0.2.10" {
			drained = &doc.Names[0].Targets[i]
		}
	}
	if drained == nil || drained.Override == nil || drained.Override.State != "drain" || drained.Override.Who != "alice" || drained.Verdict != "up" {
		t.Errorf("status of the drained target: %+v", drained)
	} else if h := drained.History; len(h) == 0 || h[len(h)-1].Kind != "override" || h[len(h)-1].To != "drain" || h[len(h)-1].Reason != "bad deploy" {
		t.Errorf("history of the drained target: %+v", h)
	}
	if len(doc.Overrides) != 3 {
		t.Errorf("status overrides: %+v", doc.Overrides)
	}
	m := new(dns.Msg)
	m.SetQuestion("app.example.org.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	txt := exchange(t, "tcp", tcp, m) // too long for UDP
	if s := txt.String(); !strings.Contains(s, "override=drain who=alice until=- selector=addr=192.0.2.10 reason=bad_deploy") || !strings.Contains(s, "verdict=down override=up") {
		t.Errorf("matrix lacks the overrides:\n%s", s)
	}
	if b, err := os.ReadFile(filepath.Join(data, "overrides.json")); err != nil || !bytes.Contains(b, []byte(`"who": "alice"`)) {
		t.Errorf("data directory: %v\n%s", err, b)
	}

	for _, sel := range []string{"192.0.2.11", "192.0.2.12"} {
		if code, body := c.do("POST", `{"selector":"`+sel+`","state":"clear"}`); code != http.StatusOK {
			t.Fatalf("clear %s: %d %v", sel, code, body)
		}
	}
	want("cleared: the verdicts rule but for the drain", "192.0.2.12")
	if code, _ := c.do("POST", `{"selector":"192.0.2.10","state":"drain","for":"1s"}`); code != http.StatusOK {
		t.Fatal(code)
	}
	start := time.Now()
	want("the drain replaced by one of 1s, then expired", "192.0.2.10", "192.0.2.12")
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("a 1s drain ended after %v", took)
	}
	code, body = c.do("GET", "")
	if code != http.StatusOK || len(body["overrides"].([]any)) != 3 {
		t.Errorf("list: %d %v", code, body)
	}

	// An override from a server whose clock is a minute ahead: a clear
	// here still wins, though this clock says it is older.
	ahead := override.Entry{Selector: override.Selector{Addr: "192.0.2.12"}, State: override.Drain, At: time.Now().Add(time.Minute), Node: "fast-clock"}
	verdictStateOf([]string{"example.org."}).ov.book.Merge(time.Now(), ahead)
	want("the fast clock's drain in force (at the next rebuild)", "192.0.2.10")
	if code, body := c.do("POST", `{"selector":"192.0.2.12","state":"clear"}`); code != http.StatusOK {
		t.Fatalf("clear: %d %v", code, body)
	}
	want("cleared, though this clock is behind", "192.0.2.10", "192.0.2.12")
}

func statusDoc(t *testing.T, url string) status.Document {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d status.Document
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}
