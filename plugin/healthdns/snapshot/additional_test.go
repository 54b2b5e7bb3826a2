package snapshot_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// additionalOrg adds MX and SRV records to exampleOrg, pointing at hosts
// with static addresses, a health-aware name, a wildcard, a CNAME, a
// delegated host and a host out of the zone.
const additionalOrg = exampleOrg + `
_sip._tcp IN SRV   10 60 5060 sip.example.org.
_sip._tcp IN SRV   20 60 5060 sip.example.net.
sip       IN A     192.0.2.60
sip       IN AAAA  2001:db8::60
mxapp     IN MX    10 app.example.org.
mxwild    IN MX    10 foo.wild.example.org.
mxalias   IN MX    10 www.example.org.
mxsub     IN MX    10 ns.sub.example.org.
mxtwice   IN MX    10 mail.example.org.
mxtwice   IN MX    20 MAIL.example.org.
`

// TestAdditional checks that MX, SRV and apex NS answers carry the in-zone
// addresses of the hosts they name (RFC 1035 3.3.9, RFC 2782), as NSD does.
func TestAdditional(t *testing.T) {
	s := snapshot.Build(nil, []*zone.Data{loadZone(t, additionalOrg, "example.org.")}, defaultNames())
	for _, tc := range []test.Case{
		{
			Qname: "_sip._tcp.example.org.", Qtype: dns.TypeSRV, Authoritative: true,
			Answer: []dns.RR{
				test.SRV("_sip._tcp.example.org. 3600 IN SRV 10 60 5060 sip.example.org."),
				test.SRV("_sip._tcp.example.org. 3600 IN SRV 20 60 5060 sip.example.net."),
			},
			Extra: []dns.RR{test.A("sip.example.org. 3600 IN A 192.0.2.60"), test.AAAA("sip.example.org. 3600 IN AAAA 2001:db8::60")},
		},
		// A health-aware exchange: its healthy targets, with its TTL.
		{
			Qname: "mxapp.example.org.", Qtype: dns.TypeMX, Authoritative: true,
			Answer: []dns.RR{test.MX("mxapp.example.org. 3600 IN MX 10 app.example.org.")},
			Extra: []dns.RR{
				test.A("app.example.org. 30 IN A 192.0.2.10"),
				test.A("app.example.org. 30 IN A 192.0.2.11"),
				test.AAAA("app.example.org. 30 IN AAAA 2001:db8::10"),
			},
		},
		{
			Qname: "mxwild.example.org.", Qtype: dns.TypeMX, Authoritative: true,
			Answer: []dns.RR{test.MX("mxwild.example.org. 3600 IN MX 10 foo.wild.example.org.")},
			Extra:  []dns.RR{test.A("foo.wild.example.org. 3600 IN A 192.0.2.99")},
		},
		// An alias is no exchange (RFC 2181 10.3), and glue below a
		// delegation is not our data: nothing added.
		{
			Qname: "mxalias.example.org.", Qtype: dns.TypeMX, Authoritative: true,
			Answer: []dns.RR{test.MX("mxalias.example.org. 3600 IN MX 10 www.example.org.")},
		},
		{
			Qname: "mxsub.example.org.", Qtype: dns.TypeMX, Authoritative: true,
			Answer: []dns.RR{test.MX("mxsub.example.org. 3600 IN MX 10 ns.sub.example.org.")},
		},
		// A host named twice is added once.
		{
			Qname: "mxtwice.example.org.", Qtype: dns.TypeMX, Authoritative: true,
			Answer: []dns.RR{
				test.MX("mxtwice.example.org. 3600 IN MX 10 mail.example.org."),
				test.MX("mxtwice.example.org. 3600 IN MX 20 MAIL.example.org."),
			},
			Extra: []dns.RR{test.A("mail.example.org. 3600 IN A 192.0.2.25")},
		},
		// ANY stays minimal (RFC 8482).
		{
			Qname: "mxapp.example.org.", Qtype: dns.TypeANY, Authoritative: true,
			Answer: []dns.RR{test.MX("mxapp.example.org. 3600 IN MX 10 app.example.org.")},
		},
	} {
		m, _ := ask(s, tc.Qname, tc.Qtype)
		check(t, m, tc)
	}
}

// TestAdditionalFit: additional addresses that do not fit are left out and
// the reply is not truncated, since the answer is complete without them
// (RFC 2181 9); every host's IPv4 address comes before any IPv6 one.
// Referral glue, which is required, is not trimmed here: if it does not
// fit, the server's truncation sets TC.
func TestAdditionalFit(t *testing.T) {
	var b strings.Builder
	b.WriteString(exampleOrg)
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, "big IN MX %d mx%d.example.org.\nmx%d IN A 192.0.2.%d\nmx%d IN AAAA 2001:db8::%d\n", i, i, i, 100+i, i, 100+i)
	}
	s := snapshot.Build(nil, []*zone.Data{loadZone(t, b.String(), "example.org.")}, nil)
	full := askSized(s, "big.example.org.", dns.TypeMX, 0)
	if len(full.Answer) != 20 || len(full.Extra) != 40 {
		t.Fatalf("unbounded: %d MX and %d addresses, want 20 and 40", len(full.Answer), len(full.Extra))
	}
	for i, rr := range full.Extra {
		want := dns.TypeA
		if i >= 20 {
			want = dns.TypeAAAA
		}
		if rr.Header().Rrtype != want {
			t.Fatalf("additional record %d is %s, want every A before any AAAA", i, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	for _, size := range []int{512, 1232 - 11} {
		m := askSized(s, "big.example.org.", dns.TypeMX, size)
		m.Compress = true
		if l := m.Len(); l > size {
			t.Errorf("size %d: the reply takes %d bytes", size, l)
		}
		if len(m.Answer) != 20 || len(m.Extra) == 0 || len(m.Extra) == 40 {
			t.Errorf("size %d: %d MX and %d addresses, want all 20 MX and some but not all addresses", size, len(m.Answer), len(m.Extra))
		}
		// What the server's truncation does next: it must find nothing
		// to cut, so TC stays clear.
		m.Truncate(size)
		if m.Truncated || len(m.Answer) != 20 {
			t.Errorf("size %d: truncation set TC (%t) or cut the answer (%d MX)", size, m.Truncated, len(m.Answer))
		}
	}
	// The referral keeps all of its glue whatever the size.
	ref := askSized(s, "host.sub.example.org.", dns.TypeA, 12)
	if len(ref.Extra) != 1 {
		t.Errorf("referral with a tiny size: %d glue records, want 1", len(ref.Extra))
	}
}

func askSized(s *snapshot.Snapshot, qname string, qtype uint16, size int) *dns.Msg {
	req := new(dns.Msg)
	req.SetQuestion(qname, qtype)
	m := new(dns.Msg)
	m.SetReply(req)
	s.Answer(m, strings.ToLower(qname), qtype, size, policy.Client{})
	return m
}
