package snapshot_test

import (
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// dnameOrg adds DNAMEs to exampleOrg: one out of the zone, one in it, a
// DNAME to a DNAME, one whose target does not exist and one that grows
// names without end.
const dnameOrg = exampleOrg + `
d         IN DNAME example.net.
d     600 IN TXT   "at the DNAME owner"
alias 120 IN DNAME target.example.org.
x.target  IN A     192.0.2.90
d2        IN DNAME d.example.org.
toapp     IN DNAME example.org.
dangle    IN DNAME gone.example.org.
grow      IN DNAME a.grow.example.org.
`

// TestDNAME checks RFC 6672 3: below a DNAME owner the answer is the DNAME,
// a CNAME synthesised with the DNAME's TTL, and what that CNAME leads to
// in our zones; the owner itself is not redirected.
func TestDNAME(t *testing.T) {
	d, err := zone.Parse(strings.NewReader(dnameOrg), "test.zone", "example.org.")
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot.Build(nil, []*zone.Data{d}, defaultNames())
	dn := test.DNAME("d.example.org. 3600 IN DNAME example.net.")
	alias := test.DNAME("alias.example.org. 120 IN DNAME target.example.org.")
	cases := []test.Case{
		// Out of the zone: DNAME and CNAME, for the resolver to go on.
		{
			Qname: "x.d.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{dn, test.CNAME("x.d.example.org. 3600 IN CNAME x.example.net.")},
		},
		{
			Qname: "a.b.d.example.org.", Qtype: dns.TypeAAAA, Authoritative: true,
			Answer: []dns.RR{dn, test.CNAME("a.b.d.example.org. 3600 IN CNAME a.b.example.net.")},
		},
		// Whatever the type, even CNAME or DNAME, below the owner.
		{
			Qname: "x.d.example.org.", Qtype: dns.TypeCNAME, Authoritative: true,
			Answer: []dns.RR{dn, test.CNAME("x.d.example.org. 3600 IN CNAME x.example.net.")},
		},
		{
			Qname: "x.d.example.org.", Qtype: dns.TypeDNAME, Authoritative: true,
			Answer: []dns.RR{dn, test.CNAME("x.d.example.org. 3600 IN CNAME x.example.net.")},
		},
		// The owner answers its own data: the DNAME, and NODATA for A.
		{Qname: "d.example.org.", Qtype: dns.TypeDNAME, Authoritative: true, Answer: []dns.RR{dn}},
		{
			Qname: "d.example.org.", Qtype: dns.TypeTXT, Authoritative: true,
			Answer: []dns.RR{test.TXT(`d.example.org. 600 IN TXT "at the DNAME owner"`)},
		},
		{Qname: "d.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// In the zone: the target is chased, and its rcode is the reply's.
		{
			Qname: "x.alias.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{alias,
				test.CNAME("x.alias.example.org. 120 IN CNAME x.target.example.org."),
				test.A("x.target.example.org. 3600 IN A 192.0.2.90")},
		},
		{
			Qname: "x.alias.example.org.", Qtype: dns.TypeTXT, Authoritative: true,
			Answer: []dns.RR{alias, test.CNAME("x.alias.example.org. 120 IN CNAME x.target.example.org.")},
			Ns:     []dns.RR{soa(negTTL)},
		},
		{
			Qname: "y.alias.example.org.", Qtype: dns.TypeA, Authoritative: true, Rcode: dns.RcodeNameError,
			Answer: []dns.RR{alias, test.CNAME("y.alias.example.org. 120 IN CNAME y.target.example.org.")},
			Ns:     []dns.RR{soa(negTTL)},
		},
		// A DNAME to a DNAME: both, each with its CNAME.
		{
			Qname: "x.d2.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{
				test.DNAME("d2.example.org. 3600 IN DNAME d.example.org."),
				test.CNAME("x.d2.example.org. 3600 IN CNAME x.d.example.org."),
				dn,
				test.CNAME("x.d.example.org. 3600 IN CNAME x.example.net."),
			},
		},
		// Onto a health-aware name: its healthy targets.
		{
			Qname: "app.toapp.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{
				test.DNAME("toapp.example.org. 3600 IN DNAME example.org."),
				test.CNAME("app.toapp.example.org. 3600 IN CNAME app.example.org."),
				test.A("app.example.org. 30 IN A 192.0.2.10"),
				test.A("app.example.org. 30 IN A 192.0.2.11"),
			},
		},
		{
			Qname: "x.dangle.example.org.", Qtype: dns.TypeA, Authoritative: true, Rcode: dns.RcodeNameError,
			Answer: []dns.RR{
				test.DNAME("dangle.example.org. 3600 IN DNAME gone.example.org."),
				test.CNAME("x.dangle.example.org. 3600 IN CNAME x.gone.example.org."),
			},
			Ns: []dns.RR{soa(negTTL)},
		},
	}
	for _, tc := range cases {
		m, _ := ask(s, tc.Qname, tc.Qtype)
		check(t, m, tc)
	}

	// A DNAME that redirects into itself ends: by the chain bound, or
	// with YXDOMAIN when the name outgrows 255 octets (RFC 6672 2.2).
	m, _ := ask(s, "x.grow.example.org.", dns.TypeA)
	if n := len(m.Answer); n == 0 || n > 2*17 {
		t.Errorf("DNAME into itself: %d records in the answer\n%s", n, m)
	}
	// 253 octets become 255: still a name (whose own substitution, in
	// turn, is too long).
	fits := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("e", 42) + ".grow.example.org."
	m, _ = ask(s, fits, dns.TypeA)
	if len(m.Answer) < 2 || m.Answer[1].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("DNAME substitution to exactly 255 octets: want the CNAME, got\n%s", m)
	}
	// 255 octets would become 257.
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("e", 44) + ".grow.example.org." // 255 octets
	m, _ = ask(s, long, dns.TypeA)
	if m.Rcode != dns.RcodeYXDomain || len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeDNAME {
		t.Errorf("DNAME substitution past 255 octets: want YXDOMAIN with the DNAME alone, got\n%s", m)
	}
}

// TestDNAMEApex: a DNAME at the apex redirects every name below the apex,
// and the apex keeps its SOA, NS and other data (RFC 6672 2.3).
func TestDNAMEApex(t *testing.T) {
	text := `$ORIGIN alias.test.
$TTL 3600
@   IN SOA  ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 300
@   IN NS   ns1.example.org.
@   IN MX   10 mail.example.org.
@   IN DNAME example.org.
`
	apex := loadZone(t, text, "alias.test.")
	s := snapshot.Build(nil, []*zone.Data{apex, loadZone(t, exampleOrg, "example.org.")}, defaultNames())
	dn := test.DNAME("alias.test. 3600 IN DNAME example.org.")
	negSOA := test.SOA("alias.test. 300 IN SOA ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 300")
	for _, tc := range []test.Case{
		{Qname: "alias.test.", Qtype: dns.TypeSOA, Authoritative: true, Answer: []dns.RR{test.SOA("alias.test. 3600 IN SOA ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 300")}},
		{Qname: "alias.test.", Qtype: dns.TypeNS, Authoritative: true, Answer: []dns.RR{test.NS("alias.test. 3600 IN NS ns1.example.org.")}},
		{Qname: "alias.test.", Qtype: dns.TypeDNAME, Authoritative: true, Answer: []dns.RR{dn}},
		{Qname: "alias.test.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{negSOA}},
		// Into the other zone of the snapshot: chased there, as NSD does.
		{
			Qname: "www.alias.test.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{dn,
				test.CNAME("www.alias.test. 3600 IN CNAME www.example.org."),
				test.CNAME("www.example.org. 3600 IN CNAME web.example.org."),
				test.A("web.example.org. 3600 IN A 192.0.2.80")},
		},
		// The negative answer is the last zone's.
		{
			Qname: "nope.alias.test.", Qtype: dns.TypeA, Authoritative: true, Rcode: dns.RcodeNameError,
			Answer: []dns.RR{dn, test.CNAME("nope.alias.test. 3600 IN CNAME nope.example.org.")},
			Ns:     []dns.RR{soa(negTTL)},
		},
	} {
		m, _ := ask(s, tc.Qname, tc.Qtype)
		check(t, m, tc)
	}
}
