package zone

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParse(t *testing.T) {
	d, err := Parse(strings.NewReader(`$ORIGIN Example.ORG.
@    IN SOA ns1 host 1 2 3 4 60
@    IN NS  ns1
NS1  IN A   192.0.2.1
www  IN CNAME ns1
`), "z.db", "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if d.Origin != "example.org." || d.SOA == nil {
		t.Fatalf("origin %q soa %v", d.Origin, d.SOA)
	}
	if len(d.Names["ns1.example.org."][dns.TypeA]) != 1 {
		t.Errorf("owner names are not lower-cased: %v", d.Names)
	}
}

func TestParseErrors(t *testing.T) {
	head := "$ORIGIN example.org.\n@ IN SOA ns1 host 1 2 3 4 60\n@ IN NS ns1\n"
	tests := []struct {
		name, text, want string
	}{
		{"syntax error names file and line", head + "x IN A 1.2.3\n", `z.db: dns: bad A A: "1.2.3" at line: 4`},
		{"out of zone", head + "x.example.com. IN A 192.0.2.1\n", "outside the zone"},
		{"no SOA", "$ORIGIN example.org.\n@ IN NS ns1\n", "no SOA"},
		{"two SOA", head + "@ IN SOA ns2 host 1 2 3 4 60\n", "second SOA"},
		{"no NS", "$ORIGIN example.org.\n@ IN SOA ns1 host 1 2 3 4 60\n", "no NS"},
		{"CNAME and other data", head + "x IN CNAME y\nx IN TXT \"t\"\n", "CNAME must be alone"},
		{"two CNAMEs", head + "x IN CNAME y\nx IN CNAME z\n", "at most one"},
		{"include refused", head + "$INCLUDE /etc/passwd\n", "z.db"},
		{"class CH", head + "x CH TXT \"t\"\n", "only class IN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.text), "z.db", "example.org.")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "z.db") {
				t.Errorf("err = %v does not name the file", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("$ORIGIN example.org.\n@ IN SOA ns1 host 1 2 3 4 60\n@ IN NS ns1\n")
	f.Add("@ IN A 1.2.3.4\n$TTL x\n")
	f.Add("(((\n")
	f.Fuzz(func(t *testing.T, text string) {
		d, err := Parse(strings.NewReader(text), "fuzz.db", "example.org.")
		if err == nil && (d.SOA == nil || len(d.Names["example.org."][dns.TypeNS]) == 0) {
			t.Fatal("accepted a zone without SOA or apex NS")
		}
	})
}
