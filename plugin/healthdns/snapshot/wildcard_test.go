package snapshot_test

import (
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"

	"github.com/miekg/dns"
)

// TestHealthAwareWildcard: a health-aware wildcard name (a webhook's
// *.apps record) answers, as RFC 4592 says, every name below it that does
// not exist, with its healthy targets under the name asked; names that
// exist (in the zone file or health-aware) answer for themselves, and so
// does the wildcard's own name.
func TestHealthAwareWildcard(t *testing.T) {
	names := append(defaultNames(),
		snapshot.Name{FQDN: "*.apps.example.org.", TTL: 30, Policy: policy.RoundRobin, Targets: []snapshot.Target{up("192.0.2.40"), down("192.0.2.41")}},
		snapshot.Name{FQDN: "one.apps.example.org.", TTL: 30, Targets: []snapshot.Target{up("192.0.2.50")}},
	)
	s := build(t, names...)
	for _, tc := range []test.Case{
		{Qname: "x.apps.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("x.apps.example.org. 30 IN A 192.0.2.40")}},
		{Qname: "X.y.apps.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("x.y.apps.example.org. 30 IN A 192.0.2.40")}},
		// NODATA at a health-aware name: cacheable no longer than its TTL.
		{Qname: "x.apps.example.org.", Qtype: dns.TypeAAAA, Authoritative: true, Ns: []dns.RR{soa(30)}},
		{Qname: "one.apps.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("one.apps.example.org. 30 IN A 192.0.2.50")}},
		{Qname: "*.apps.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("*.apps.example.org. 30 IN A 192.0.2.40")}},
		// The zone's own names are not covered.
		{Qname: "web.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("web.example.org. 3600 IN A 192.0.2.80")}},
		{Qname: "apps.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
	} {
		m, _ := ask(s, tc.Qname, tc.Qtype)
		if tc.Qname == "X.y.apps.example.org." {
			tc.Qname = "x.y.apps.example.org."
		}
		check(t, m, tc)
	}
	// The answer under the name asked is a copy: the wildcard's own
	// answer is unchanged.
	if m, _ := ask(s, "*.apps.example.org.", dns.TypeA); len(m.Answer) != 1 || m.Answer[0].Header().Name != "*.apps.example.org." {
		t.Errorf("wildcard's own answer after synthesis: %v", m.Answer)
	}
}
