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
		// Semantic errors name the line of the record.
		{"line of a bad record", head + "a IN A 192.0.2.1\n\n; comment\nb.example.com. IN A 192.0.2.2\n", "z.db:7: record"},
		{"line of the second CNAME", head + "x IN CNAME y\nx IN CNAME z\n", "z.db:5: x.example.org. has 2 CNAME"},
		// DNAME (RFC 6672): refused where it could not be served.
		{"two DNAMEs", head + "d IN DNAME a.example.net.\nd IN DNAME b.example.net.\n", "z.db:5: d.example.org. has 2 DNAME records"},
		{"DNAME and CNAME", head + "d IN DNAME a.example.net.\nd IN CNAME b.example.net.\n", "CNAME must be alone"},
		{"DNAME at a delegation", head + "d IN NS ns.example.net.\nd IN DNAME a.example.net.\n", "z.db:5: d.example.org. has a DNAME and NS records"},
		{"data below a DNAME", head + "d IN DNAME a.example.net.\nx.d IN A 192.0.2.1\n", "z.db:5: x.d.example.org. is below the DNAME at d.example.org."},
		{"data below an apex DNAME", head + "@ IN DNAME example.net.\nns1 IN A 192.0.2.1\n", "z.db:5: ns1.example.org. is below the DNAME at example.org."},
		{"DNAME at a wildcard", head + "*.w IN DNAME a.example.net.\n", "z.db:4: DNAME at the wildcard"},
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

// TestParseDNAME: a DNAME at the apex or below it loads (the snapshot
// applies it), and so do records at the DNAME's own owner.
func TestParseDNAME(t *testing.T) {
	text := `$ORIGIN example.org.
@     IN SOA ns1.example.net. host 1 2 3 4 60
@     IN NS  ns1.example.net.
d     IN DNAME example.net.
d     IN TXT "beside the DNAME"
`
	d, err := Parse(strings.NewReader(text), "z.db", "example.org.")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Names["d.example.org."][dns.TypeDNAME]) != 1 {
		t.Errorf("DNAME not loaded: %v", d.Names)
	}
	if _, err := Parse(strings.NewReader(text+"@ IN DNAME example.com.\n"), "z.db", "example.org."); err == nil {
		t.Errorf("a DNAME at the apex above another DNAME was accepted")
	}
	apex := "$ORIGIN example.org.\n@ IN SOA ns1.example.net. host 1 2 3 4 60\n@ IN NS ns1.example.net.\n@ IN DNAME example.com.\n"
	if _, err := Parse(strings.NewReader(apex), "z.db", "example.org."); err != nil {
		t.Errorf("DNAME at the apex refused: %v", err)
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
