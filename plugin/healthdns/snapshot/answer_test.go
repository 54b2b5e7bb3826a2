package snapshot_test

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// exampleOrg is the static part of the zone the tests query. The SOA's own
// TTL is 3600 and its MINIMUM 300, so every negative answer must carry the
// SOA with TTL 300 (RFC 2308 section 5).
const exampleOrg = `$ORIGIN example.org.
$TTL 3600
@         IN SOA   ns1.example.org. hostmaster.example.org. 2026010101 7200 900 1209600 300
@         IN NS    ns1.example.org.
@         IN NS    ns2.example.org.
@         IN MX    10 mail.example.org.
@         IN TXT   "v=apex"
ns1       IN A     192.0.2.53
ns1       IN AAAA  2001:db8::53
ns2       IN A     192.0.2.54
mail      IN A     192.0.2.25
web       IN A     192.0.2.80
www       IN CNAME web.example.org.
docs      IN CNAME app.example.org.
ext       IN CNAME www.example.net.
dangling  IN CNAME gone.example.org.
app       IN TXT   "heritage=external-dns"
a.b.c     IN TXT   "deep"
*.wild    IN A     192.0.2.99
*.wild    IN TXT   "wildcard"
host.wild IN A     192.0.2.98
a.*.wild2 IN TXT   "below an empty wildcard"
sub       IN NS    ns.sub.example.org.
sub       IN NS    ns.example.net.
ns.sub    IN A     192.0.2.100
`

const (
	soaLine = "example.org. %d IN SOA ns1.example.org. hostmaster.example.org. 2026010101 7200 900 1209600 300"
	negTTL  = 300
)

func soa(ttl uint32) dns.RR { return test.SOA(fmt.Sprintf(soaLine, ttl)) }

func loadZone(t testing.TB, text, origin string) *zone.Data {
	t.Helper()
	d, err := zone.Parse(strings.NewReader(text), "test.zone", origin)
	if err != nil {
		t.Fatalf("zone: %v", err)
	}
	return d
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func up(addr string) snapshot.Target {
	return snapshot.Target{Addr: ip(addr), Healthy: true, Tier: 1, Weight: 1}
}

func down(addr string) snapshot.Target {
	return snapshot.Target{Addr: ip(addr), Healthy: false, Tier: 1, Weight: 1}
}

// defaultNames are the health-aware names of example.org.
func defaultNames() []snapshot.Name {
	return []snapshot.Name{
		{
			FQDN: "app.example.org.", TTL: 30, Policy: policy.RoundRobin,
			Targets: []snapshot.Target{up("192.0.2.10"), up("192.0.2.11"), down("192.0.2.12"), up("2001:db8::10"), down("2001:db8::11")},
		},
		{FQDN: "v4.example.org.", TTL: 30, Targets: []snapshot.Target{up("192.0.2.20")}},
		// Nothing exists at east.example.org: it becomes an empty non-terminal.
		{FQDN: "app.east.example.org.", TTL: 30, Targets: []snapshot.Target{up("192.0.2.30")}},
	}
}

func build(t testing.TB, names ...snapshot.Name) *snapshot.Snapshot {
	t.Helper()
	return snapshot.Build(nil, []*zone.Data{loadZone(t, exampleOrg, "example.org.")}, names)
}

// ask answers one query the way ServeDNS does: a reply made with SetReply
// and the question name lower-cased.
func ask(s *snapshot.Snapshot, qname string, qtype uint16) (*dns.Msg, snapshot.Outcome) {
	req := new(dns.Msg)
	req.SetQuestion(qname, qtype)
	m := new(dns.Msg)
	m.SetReply(req)
	out := s.Answer(m, strings.ToLower(qname), qtype, 0, policy.Client{}).Outcome
	return m, out
}

// check compares a reply with a test.Case, including the AA bit, which
// test.SortAndCheck does not look at.
func check(t *testing.T, m *dns.Msg, tc test.Case) {
	t.Helper()
	if m.Authoritative != tc.Authoritative {
		t.Errorf("%s %s: AA = %t, want %t", tc.Qname, dns.TypeToString[tc.Qtype], m.Authoritative, tc.Authoritative)
	}
	// A CNAME comes before the records of its target (RFC 1034 3.6.2).
	if err := test.CNAMEOrder(m); err != nil {
		t.Errorf("%s %s: %v\n%s", tc.Qname, dns.TypeToString[tc.Qtype], err, m)
	}
	for _, sec := range [][]dns.RR{tc.Answer, tc.Ns, tc.Extra} {
		sort.Sort(test.RRSet(sec)) // SortAndCheck sorts the reply, not the case
	}
	if err := test.SortAndCheck(m, tc); err != nil {
		t.Errorf("%s %s: %v\n%s", tc.Qname, dns.TypeToString[tc.Qtype], err, m)
	}
}

func TestAnswer(t *testing.T) {
	s := build(t, defaultNames()...)
	nsAuth := []dns.RR{
		test.NS("sub.example.org. 3600 IN NS ns.sub.example.org."),
		test.NS("sub.example.org. 3600 IN NS ns.example.net."),
	}
	glue := []dns.RR{test.A("ns.sub.example.org. 3600 IN A 192.0.2.100")}
	cases := []test.Case{
		// The apex.
		{
			Qname: "example.org.", Qtype: dns.TypeSOA, Authoritative: true,
			Answer: []dns.RR{soa(3600)}, // a positive SOA keeps its own TTL
		},
		{
			Qname: "example.org.", Qtype: dns.TypeNS, Authoritative: true,
			Answer: []dns.RR{
				test.NS("example.org. 3600 IN NS ns1.example.org."),
				test.NS("example.org. 3600 IN NS ns2.example.org."),
			},
			Extra: []dns.RR{
				test.A("ns1.example.org. 3600 IN A 192.0.2.53"),
				test.AAAA("ns1.example.org. 3600 IN AAAA 2001:db8::53"),
				test.A("ns2.example.org. 3600 IN A 192.0.2.54"),
			},
		},
		// The exchange's address rides along in additional (RFC 1035 3.3.9).
		{
			Qname: "example.org.", Qtype: dns.TypeMX, Authoritative: true,
			Answer: []dns.RR{test.MX("example.org. 3600 IN MX 10 mail.example.org.")},
			Extra:  []dns.RR{test.A("mail.example.org. 3600 IN A 192.0.2.25")},
		},
		{
			Qname: "example.org.", Qtype: dns.TypeA, Authoritative: true,
			Ns: []dns.RR{soa(negTTL)},
		},
		// Plain static data.
		{
			Qname: "web.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("web.example.org. 3600 IN A 192.0.2.80")},
		},
		// NODATA: the name exists, the type does not (RFC 2308 section 2.2).
		{Qname: "web.example.org.", Qtype: dns.TypeAAAA, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		{Qname: "web.example.org.", Qtype: dns.TypeMX, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// NXDOMAIN (RFC 2308 section 2.1), also below an existing name.
		{Qname: "nope.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		{Qname: "nope.web.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// Empty non-terminals exist (RFC 8020): NODATA, never NXDOMAIN.
		{Qname: "c.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		{Qname: "b.c.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		{
			Qname: "a.b.c.example.org.", Qtype: dns.TypeTXT, Authoritative: true,
			Answer: []dns.RR{test.TXT(`a.b.c.example.org. 3600 IN TXT "deep"`)},
		},
		// ... including one made by a health-aware name alone.
		{Qname: "east.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// CNAME inside the zone is followed (RFC 1034 4.3.2 step 3a).
		{
			Qname: "www.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{
				test.CNAME("www.example.org. 3600 IN CNAME web.example.org."),
				test.A("web.example.org. 3600 IN A 192.0.2.80"),
			},
		},
		{
			Qname: "www.example.org.", Qtype: dns.TypeAAAA, Authoritative: true,
			Answer: []dns.RR{test.CNAME("www.example.org. 3600 IN CNAME web.example.org.")},
			Ns:     []dns.RR{soa(negTTL)},
		},
		// A CNAME query gets the CNAME itself.
		{
			Qname: "www.example.org.", Qtype: dns.TypeCNAME, Authoritative: true,
			Answer: []dns.RR{test.CNAME("www.example.org. 3600 IN CNAME web.example.org.")},
		},
		// Out of the zone: the CNAME alone, for the resolver to chase.
		{
			Qname: "ext.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.CNAME("ext.example.org. 3600 IN CNAME www.example.net.")},
		},
		// A CNAME to a health-aware name gets its healthy targets.
		{
			Qname: "docs.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{
				test.CNAME("docs.example.org. 3600 IN CNAME app.example.org."),
				test.A("app.example.org. 30 IN A 192.0.2.10"),
				test.A("app.example.org. 30 IN A 192.0.2.11"),
			},
		},
		// A dangling CNAME: the rcode is that of the last name (RFC 6604).
		{
			Qname: "dangling.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true,
			Answer: []dns.RR{test.CNAME("dangling.example.org. 3600 IN CNAME gone.example.org.")},
			Ns:     []dns.RR{soa(negTTL)},
		},
		// Wildcards (RFC 4592): the answer carries the query name.
		{
			Qname: "foo.wild.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("foo.wild.example.org. 3600 IN A 192.0.2.99")},
		},
		{
			Qname: "a.b.wild.example.org.", Qtype: dns.TypeTXT, Authoritative: true,
			Answer: []dns.RR{test.TXT(`a.b.wild.example.org. 3600 IN TXT "wildcard"`)},
		},
		{Qname: "foo.wild.example.org.", Qtype: dns.TypeMX, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// An existing name is never covered by the wildcard beside it.
		{
			Qname: "host.wild.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("host.wild.example.org. 3600 IN A 192.0.2.98")},
		},
		{Qname: "host.wild.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// Below an existing name there is no wildcard: NXDOMAIN.
		{Qname: "x.host.wild.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// The wildcard's parent is an empty non-terminal.
		{Qname: "wild.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// A wildcard that exists only as an empty non-terminal (the zone
		// has a.*.wild2 alone) still matches, with no data: NODATA, not
		// NXDOMAIN (RFC 4592 4.9).
		{Qname: "x.wild2.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		{Qname: "y.x.wild2.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		{Qname: "*.wild2.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		{
			Qname: "a.*.wild2.example.org.", Qtype: dns.TypeTXT, Authoritative: true,
			Answer: []dns.RR{test.TXT(`a.*.wild2.example.org. 3600 IN TXT "below an empty wildcard"`)},
		},
		// Below the empty wildcard there is no wildcard of its own.
		{Qname: "b.*.wild2.example.org.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// A delegation: a referral, not authoritative, NS in authority
		// and the in-zone glue in additional (RFC 1034 4.3.2 step 3b).
		{Qname: "sub.example.org.", Qtype: dns.TypeA, Ns: nsAuth, Extra: glue},
		{Qname: "host.sub.example.org.", Qtype: dns.TypeA, Ns: nsAuth, Extra: glue},
		{Qname: "sub.example.org.", Qtype: dns.TypeNS, Ns: nsAuth, Extra: glue},
		// Glue is not authoritative data.
		{Qname: "ns.sub.example.org.", Qtype: dns.TypeA, Ns: nsAuth, Extra: glue},
		// DS belongs to the parent side of the cut (RFC 4035 3.1.4.1).
		{Qname: "sub.example.org.", Qtype: dns.TypeDS, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		// Health-aware names.
		{
			Qname: "app.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{
				test.A("app.example.org. 30 IN A 192.0.2.10"),
				test.A("app.example.org. 30 IN A 192.0.2.11"),
			},
		},
		{
			Qname: "app.example.org.", Qtype: dns.TypeAAAA, Authoritative: true,
			Answer: []dns.RR{test.AAAA("app.example.org. 30 IN AAAA 2001:db8::10")},
		},
		// Static records beside the targets (the ExternalDNS registry TXT).
		{
			Qname: "app.example.org.", Qtype: dns.TypeTXT, Authoritative: true,
			Answer: []dns.RR{test.TXT(`app.example.org. 3600 IN TXT "heritage=external-dns"`)},
		},
		// Any negative answer at a health-aware name carries the name's own
		// TTL (30), not the zone's 300: its data changes at run time.
		{Qname: "app.example.org.", Qtype: dns.TypeMX, Authoritative: true, Ns: []dns.RR{soa(30)}},
		{
			Qname: "app.east.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("app.east.example.org. 30 IN A 192.0.2.30")},
		},
		// Only IPv4 targets: AAAA is NODATA, never NXDOMAIN or SERVFAIL,
		// cached no longer than the name's TTL: an IPv6 target may be
		// added at any time (RFC 2308 5: the negative TTL is the SOA's).
		{
			Qname: "v4.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("v4.example.org. 30 IN A 192.0.2.20")},
		},
		{Qname: "v4.example.org.", Qtype: dns.TypeAAAA, Authoritative: true, Ns: []dns.RR{soa(30)}},
		// Not ours: REFUSED, not authoritative, nothing else. Zones
		// match whole labels, not string suffixes.
		{Qname: "example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
		{Qname: "org.", Qtype: dns.TypeSOA, Rcode: dns.RcodeRefused},
		{Qname: "notexample.org.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
	}
	for _, tc := range cases {
		m, _ := ask(s, tc.Qname, tc.Qtype)
		check(t, m, tc)
	}
}

func TestAnswerOutcome(t *testing.T) {
	s := build(t, defaultNames()...)
	for _, c := range []struct {
		qname string
		qtype uint16
		want  snapshot.Outcome
	}{
		{"example.com.", dns.TypeA, snapshot.Refused},
		{"web.example.org.", dns.TypeA, snapshot.Static},
		{"nope.example.org.", dns.TypeA, snapshot.Static},
		{"app.example.org.", dns.TypeA, snapshot.Healthy},
		{"app.example.org.", dns.TypeAAAA, snapshot.Healthy},
	} {
		if _, got := ask(s, c.qname, c.qtype); got != c.want {
			t.Errorf("%s %s: outcome %s, want %s", c.qname, dns.TypeToString[c.qtype], got, c.want)
		}
	}
}

// TestNegativeTTL checks RFC 2308 section 5: the SOA of a negative answer
// has TTL min(SOA TTL, SOA MINIMUM), whichever of the two is smaller.
func TestNegativeTTL(t *testing.T) {
	for _, c := range []struct {
		soaTTL, minimum, want uint32
	}{
		{3600, 300, 300},
		{60, 3600, 60},
		{120, 120, 120},
	} {
		text := fmt.Sprintf("$ORIGIN example.net.\n@ %d IN SOA ns.example.net. h.example.net. 1 2 3 4 %d\n@ 3600 IN NS ns.example.net.\nns 3600 IN A 192.0.2.1\n", c.soaTTL, c.minimum)
		s := snapshot.Build(nil, []*zone.Data{loadZone(t, text, "example.net.")}, nil)
		for _, q := range []struct {
			name  string
			rcode int
		}{{"nope.example.net.", dns.RcodeNameError}, {"ns.example.net.", dns.RcodeSuccess}} {
			m, _ := ask(s, q.name, dns.TypeTXT)
			if m.Rcode != q.rcode || len(m.Ns) != 1 {
				t.Fatalf("SOA TTL %d MINIMUM %d, %s: want rcode %s with the SOA in authority, got\n%s", c.soaTTL, c.minimum, q.name, dns.RcodeToString[q.rcode], m)
			}
			if got := m.Ns[0].Header().Ttl; got != c.want {
				t.Errorf("SOA TTL %d MINIMUM %d, %s: negative TTL %d, want %d", c.soaTTL, c.minimum, q.name, got, c.want)
			}
		}
		// The positive SOA is not touched.
		m, _ := ask(s, "example.net.", dns.TypeSOA)
		if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != c.soaTTL {
			t.Errorf("SOA TTL %d MINIMUM %d: SOA query answered\n%s", c.soaTTL, c.minimum, m)
		}
	}
}

// TestAnswerAny checks RFC 8482: ANY gets one RRset of the name, or the
// negative answer the name would get for any other type.
func TestAnswerAny(t *testing.T) {
	s := build(t, defaultNames()...)
	for _, qname := range []string{"example.org.", "web.example.org.", "app.example.org.", "v4.example.org.", "foo.wild.example.org.", "a.b.c.example.org."} {
		m, _ := ask(s, qname, dns.TypeANY)
		if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) == 0 {
			t.Errorf("ANY %s: want an authoritative answer, got\n%s", qname, m)
			continue
		}
		typ := m.Answer[0].Header().Rrtype
		for _, rr := range m.Answer {
			if rr.Header().Rrtype != typ || !strings.EqualFold(rr.Header().Name, qname) {
				t.Errorf("ANY %s: answer holds more than one RRset:\n%s", qname, m)
				break
			}
		}
		// It is a real RRset of the name: the same as asking for its type
		// (round-robin order aside).
		want, _ := ask(s, qname, typ)
		if len(want.Answer) != len(m.Answer) {
			t.Errorf("ANY %s: %d records of %s, a %s query gives %d", qname, len(m.Answer), dns.TypeToString[typ], dns.TypeToString[typ], len(want.Answer))
		}
		if len(m.Ns) != 0 || len(m.Extra) != 0 {
			t.Errorf("ANY %s: minimal answer expected, got authority/additional:\n%s", qname, m)
		}
	}
	check(t, first(ask(s, "nope.example.org.", dns.TypeANY)), test.Case{
		Qname: "nope.example.org.", Qtype: dns.TypeANY, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{soa(negTTL)},
	})
	check(t, first(ask(s, "c.example.org.", dns.TypeANY)), test.Case{
		Qname: "c.example.org.", Qtype: dns.TypeANY, Authoritative: true, Ns: []dns.RR{soa(negTTL)},
	})
}

// TestAnswerAnyAtCNAME: QTYPE ANY matches the CNAME itself, so the CNAME is
// the answer and it is not chased (RFC 1034 4.3.2 step 3a: chase only when
// "QTYPE doesn't match CNAME"; BIND and the file plugin answer the CNAME
// alone).
func TestAnswerAnyAtCNAME(t *testing.T) {
	s := build(t, defaultNames()...)
	m, _ := ask(s, "www.example.org.", dns.TypeANY)
	tc := test.Case{
		Qname: "www.example.org.", Qtype: dns.TypeANY, Authoritative: true,
		Answer: []dns.RR{test.CNAME("www.example.org. 3600 IN CNAME web.example.org.")},
	}
	if err := test.SortAndCheck(m, tc); err != nil {
		t.Errorf("ANY at a CNAME chases the CNAME and returns two RRsets (snapshot/answer.go, the CNAME test in Answer should also exclude qtype ANY): %v\n%s", err, m)
	}
}

// TestCNAMELoop: a CNAME loop inside the zone ends, and the answer does not
// repeat records.
func TestCNAMELoop(t *testing.T) {
	text := exampleOrg + "loop1 IN CNAME loop2.example.org.\nloop2 IN CNAME loop1.example.org.\n"
	s := snapshot.Build(nil, []*zone.Data{loadZone(t, text, "example.org.")}, nil)
	m, _ := ask(s, "loop1.example.org.", dns.TypeA)
	if len(m.Answer) == 0 {
		t.Fatalf("CNAME loop: no CNAME in the answer:\n%s", m)
	}
	seen := map[string]bool{}
	for _, rr := range m.Answer {
		if seen[rr.String()] {
			t.Errorf("a CNAME loop repeats records in the answer (RFC 2181 5: an RRset holds no duplicates); %d records:\n%s", len(m.Answer), m)
		}
		seen[rr.String()] = true
	}
}

// TestCNAMEChain: a chain of 16 CNAMEs inside the zone is followed to the
// end; at the 17th the chase stops and the resolver goes on from there.
func TestCNAMEChain(t *testing.T) {
	chain := func(n int) string {
		var b strings.Builder
		b.WriteString(exampleOrg)
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "c%d IN CNAME c%d\n", i, i+1)
		}
		fmt.Fprintf(&b, "c%d IN CNAME web\n", n)
		return b.String()
	}
	s := snapshot.Build(nil, []*zone.Data{loadZone(t, chain(16), "example.org.")}, nil)
	m, _ := ask(s, "c1.example.org.", dns.TypeA)
	if len(m.Answer) != 17 || m.Answer[16].Header().Rrtype != dns.TypeA {
		t.Errorf("16 CNAMEs: want them all and the A at the end, got %d records\n%s", len(m.Answer), m)
	}
	s = snapshot.Build(nil, []*zone.Data{loadZone(t, chain(20), "example.org.")}, nil)
	m, _ = ask(s, "c1.example.org.", dns.TypeA)
	if len(m.Answer) != 17 || m.Rcode != dns.RcodeSuccess || m.Answer[16].(*dns.CNAME).Target != "c18.example.org." {
		t.Errorf("20 CNAMEs: want the first 17 and NOERROR, got %d records\n%s", len(m.Answer), m)
	}
}

// TestNegativeTTLHealthAware: every negative answer of a health-aware name
// carries an SOA whose TTL is at most the name's TTL, so that a resolver
// (which caches it for min(SOA TTL, MINIMUM), RFC 2308 5) sees a target
// that comes, or comes back, within the name's TTL. Names elsewhere keep
// the zone's negative TTL.
func TestNegativeTTLHealthAware(t *testing.T) {
	text := exampleOrg + "alias4 IN CNAME v4.example.org.\n"
	names := append(defaultNames(),
		snapshot.Name{FQDN: "none.example.org.", TTL: 5, Fallback: snapshot.FallbackNone, Targets: []snapshot.Target{down("192.0.2.41")}},
		snapshot.Name{FQDN: "long.example.org.", TTL: 900, Targets: []snapshot.Target{up("192.0.2.42")}},
	)
	names[1].TTL = 7 // v4: IPv4 targets only
	s := snapshot.Build(nil, []*zone.Data{loadZone(t, text, "example.org.")}, names)
	for _, c := range []struct {
		name  string
		qtype uint16
		want  uint32
	}{
		{"v4.example.org.", dns.TypeAAAA, 7},     // no IPv6 target (yet)
		{"v4.example.org.", dns.TypeTXT, 7},      // records may come by webhook
		{"alias4.example.org.", dns.TypeAAAA, 7}, // through a CNAME
		{"none.example.org.", dns.TypeA, 5},      // fallback none
		{"none.example.org.", dns.TypeAAAA, 5},
		{"none.example.org.", dns.TypeANY, 5},
		{"long.example.org.", dns.TypeAAAA, 300}, // never above the zone's
		{"web.example.org.", dns.TypeAAAA, 300},  // static names: the zone's
	} {
		m, _ := ask(s, c.name, c.qtype)
		if m.Rcode != dns.RcodeSuccess || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("%s %s: want NODATA with the SOA, got\n%s", c.name, dns.TypeToString[c.qtype], m)
			continue
		}
		if got := m.Ns[0].Header().Ttl; got != c.want {
			t.Errorf("%s %s: negative TTL %d, want %d", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
	}
}

// TestMultipleZones: a name is answered from the zone with the longest
// matching origin, with that zone's SOA.
func TestMultipleZones(t *testing.T) {
	child := "$ORIGIN child.example.org.\n$TTL 600\n@ IN SOA ns.child.example.org. h.example.org. 7 1 1 1 60\n@ IN NS ns.child.example.org.\nns IN A 192.0.2.7\nwww IN A 192.0.2.8\n"
	s := snapshot.Build(nil, []*zone.Data{loadZone(t, exampleOrg, "example.org."), loadZone(t, child, "child.example.org.")}, nil)
	check(t, first(ask(s, "www.child.example.org.", dns.TypeA)), test.Case{
		Qname: "www.child.example.org.", Qtype: dns.TypeA, Authoritative: true,
		Answer: []dns.RR{test.A("www.child.example.org. 600 IN A 192.0.2.8")},
	})
	check(t, first(ask(s, "nope.child.example.org.", dns.TypeA)), test.Case{
		Qname: "nope.child.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true,
		Ns: []dns.RR{test.SOA("child.example.org. 60 IN SOA ns.child.example.org. h.example.org. 7 1 1 1 60")},
	})
	check(t, first(ask(s, "web.example.org.", dns.TypeA)), test.Case{
		Qname: "web.example.org.", Qtype: dns.TypeA, Authoritative: true,
		Answer: []dns.RR{test.A("web.example.org. 3600 IN A 192.0.2.80")},
	})
}

func first(m *dns.Msg, _ snapshot.Outcome) *dns.Msg { return m }

// addrs returns the addresses of the A and AAAA records of m's answer.
func addrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func tier(addr string, n int, healthy bool) snapshot.Target {
	return snapshot.Target{Addr: ip(addr), Healthy: healthy, Tier: n, Weight: 1}
}

func TestPriority(t *testing.T) {
	for _, c := range []struct {
		name       string
		minHealthy int
		targets    []snapshot.Target
		want       []string
	}{
		{
			name: "lowest tier healthy: only it", minHealthy: 1,
			targets: []snapshot.Target{tier("192.0.2.1", 1, true), tier("192.0.2.2", 1, true), tier("192.0.2.3", 2, true), tier("192.0.2.4", 3, true)},
			want:    []string{"192.0.2.1", "192.0.2.2"},
		},
		{
			name: "a sick target of the lowest tier is left out", minHealthy: 1,
			targets: []snapshot.Target{tier("192.0.2.1", 1, false), tier("192.0.2.2", 1, true), tier("192.0.2.3", 2, true)},
			want:    []string{"192.0.2.2"},
		},
		{
			name: "lowest tier below min-healthy: the next tier takes over", minHealthy: 2,
			targets: []snapshot.Target{tier("192.0.2.1", 1, false), tier("192.0.2.2", 1, true), tier("192.0.2.3", 2, true), tier("192.0.2.4", 2, true), tier("192.0.2.5", 3, true)},
			want:    []string{"192.0.2.3", "192.0.2.4"},
		},
		{
			name: "lowest tier all down", minHealthy: 1,
			targets: []snapshot.Target{tier("192.0.2.1", 1, false), tier("192.0.2.2", 1, false), tier("192.0.2.3", 2, false), tier("192.0.2.4", 2, true), tier("192.0.2.5", 3, true)},
			want:    []string{"192.0.2.4"},
		},
		{
			name: "tiers listed out of order", minHealthy: 1,
			targets: []snapshot.Target{tier("192.0.2.3", 3, true), tier("192.0.2.2", 2, true), tier("192.0.2.1", 1, true)},
			want:    []string{"192.0.2.1"},
		},
		{
			name: "tier numbers need not be consecutive", minHealthy: 1,
			targets: []snapshot.Target{tier("192.0.2.1", 10, false), tier("192.0.2.2", 20, true), tier("192.0.2.3", 30, true)},
			want:    []string{"192.0.2.2"},
		},
		{
			// No tier is healthy enough: a degraded answer from the
			// lowest tier with anything healthy beats no answer.
			name: "no tier reaches min-healthy", minHealthy: 2,
			targets: []snapshot.Target{tier("192.0.2.1", 1, true), tier("192.0.2.2", 1, false), tier("192.0.2.3", 2, true), tier("192.0.2.4", 2, false)},
			want:    []string{"192.0.2.1"},
		},
		{
			name: "nothing healthy: fallback all gives every target", minHealthy: 1,
			targets: []snapshot.Target{tier("192.0.2.1", 1, false), tier("192.0.2.2", 2, false)},
			want:    []string{"192.0.2.1", "192.0.2.2"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := build(t, snapshot.Name{FQDN: "app.example.org.", TTL: 10, Policy: policy.Priority, MinHealthy: c.minHealthy, Targets: c.targets})
			for range 5 { // the same every time: priority does not rotate tiers
				m, _ := ask(s, "app.example.org.", dns.TypeA)
				if got := sorted(addrs(m)); !slices.Equal(got, c.want) {
					t.Fatalf("answer %v, want %v", got, c.want)
				}
				if m.Rcode != dns.RcodeSuccess || !m.Authoritative || m.Answer[0].Header().Ttl != 10 {
					t.Fatalf("want an authoritative NOERROR answer with TTL 10, got\n%s", m)
				}
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	healthy := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}
	targets := []snapshot.Target{up(healthy[0]), up(healthy[1]), down("192.0.2.9"), up(healthy[2]), up(healthy[3])}

	t.Run("all healthy, rotated", func(t *testing.T) {
		s := build(t, snapshot.Name{FQDN: "app.example.org.", TTL: 30, Policy: policy.RoundRobin, Targets: targets})
		firsts := map[string]bool{}
		var answers []*dns.Msg
		var cycle []string
		for i := range 8 {
			m, _ := ask(s, "app.example.org.", dns.TypeA)
			got := addrs(m)
			if !slices.Equal(sorted(got), healthy) {
				t.Fatalf("query %d: answer %v, want every healthy target %v", i, got, healthy)
			}
			// Each answer is a rotation of the same cycle, so clients
			// that take the first address spread evenly.
			if cycle == nil {
				cycle = got
			} else if !isRotation(got, cycle) {
				t.Fatalf("query %d: %v is not a rotation of %v", i, got, cycle)
			}
			firsts[got[0]] = true
			answers = append(answers, m)
		}
		if len(firsts) != len(healthy) {
			t.Errorf("over 8 queries the first address was only %v; want each of %v", firsts, healthy)
		}
		// Answers already given are not changed by later queries: the
		// snapshot's records are shared, never rotated in place.
		again := addrs(answers[0])
		for range 3 {
			ask(s, "app.example.org.", dns.TypeA)
		}
		if !slices.Equal(addrs(answers[0]), again) {
			t.Errorf("an earlier answer changed under later queries: %v, then %v", again, addrs(answers[0]))
		}
	})

	t.Run("max-answers caps and still covers every target", func(t *testing.T) {
		s := build(t, snapshot.Name{FQDN: "app.example.org.", TTL: 30, Policy: policy.RoundRobin, MaxAnswers: 2, Targets: targets})
		seen := map[string]int{}
		for i := range 8 {
			m, _ := ask(s, "app.example.org.", dns.TypeA)
			got := addrs(m)
			if len(got) != 2 || got[0] == got[1] {
				t.Fatalf("query %d: answer %v, want 2 distinct addresses", i, got)
			}
			for _, a := range got {
				if !slices.Contains(healthy, a) {
					t.Fatalf("query %d: %s is not a healthy target", i, a)
				}
				seen[a]++
			}
		}
		for _, a := range healthy {
			if seen[a] != 4 {
				t.Errorf("over 8 queries of 2 answers %s came %d times, want 4 (an even share): %v", a, seen[a], seen)
			}
		}
	})

	t.Run("a rebuild keeps the rotation going", func(t *testing.T) {
		n := snapshot.Name{FQDN: "app.example.org.", TTL: 30, Policy: policy.RoundRobin, MaxAnswers: 1, Targets: targets}
		zones := []*zone.Data{loadZone(t, exampleOrg, "example.org.")}
		s := snapshot.Build(nil, zones, []snapshot.Name{n})
		var firsts []string
		for range 2 {
			m, _ := ask(s, "app.example.org.", dns.TypeA)
			firsts = append(firsts, addrs(m)[0])
			// A rebuild (some other name changed state) between queries.
			s = snapshot.Build(s, zones, []snapshot.Name{n})
		}
		if firsts[0] == firsts[1] {
			t.Errorf("with max-answers 1, two queries with a rebuild between them both got %s", firsts[0])
		}
	})
}

func isRotation(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	i := slices.Index(b, a[0])
	if i < 0 {
		return false
	}
	return slices.Equal(a, append(slices.Clone(b[i:]), b[:i]...))
}

func weighted(addr string, w int, healthy bool) snapshot.Target {
	return snapshot.Target{Addr: ip(addr), Healthy: healthy, Tier: 1, Weight: w}
}

func TestWeighted(t *testing.T) {
	t.Run("one answer drawn by weight", func(t *testing.T) {
		s := build(t, snapshot.Name{FQDN: "w.example.org.", TTL: 30, Policy: policy.Weighted, MaxAnswers: 1, Targets: []snapshot.Target{
			weighted("192.0.2.1", 3, true),
			weighted("192.0.2.2", 1, true),
			weighted("192.0.2.3", 0, true), // standby
			weighted("192.0.2.4", 5, false),
		}})
		const draws = 4000
		count := map[string]int{}
		for range draws {
			m, _ := ask(s, "w.example.org.", dns.TypeA)
			got := addrs(m)
			if len(got) != 1 {
				t.Fatalf("answer %v, want exactly one address (max-answers 1)", got)
			}
			count[got[0]]++
		}
		if count["192.0.2.3"] != 0 {
			t.Errorf("the weight-0 standby was answered %d times while others were healthy", count["192.0.2.3"])
		}
		if count["192.0.2.4"] != 0 {
			t.Errorf("the unhealthy target was answered %d times", count["192.0.2.4"])
		}
		// 3:1 is 75%; 4000 draws put 5 points at seven standard deviations.
		if f := float64(count["192.0.2.1"]) / draws; f < 0.70 || f > 0.80 {
			t.Errorf("weight 3 of 4 got %.1f%% of the answers, want about 75%%: %v", 100*f, count)
		}
	})

	t.Run("a subset, not a reordering", func(t *testing.T) {
		all := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}
		s := build(t, snapshot.Name{FQDN: "w.example.org.", TTL: 30, Policy: policy.Weighted, MaxAnswers: 2, Targets: []snapshot.Target{
			weighted(all[0], 1, true), weighted(all[1], 1, true), weighted(all[2], 1, true), weighted(all[3], 1, true),
		}})
		seen := map[string]bool{}
		pairs := map[string]bool{}
		for range 400 {
			m, _ := ask(s, "w.example.org.", dns.TypeA)
			got := addrs(m)
			if len(got) != 2 || got[0] == got[1] {
				t.Fatalf("answer %v, want 2 distinct addresses (max-answers 2)", got)
			}
			for _, a := range got {
				seen[a] = true
			}
			pairs[strings.Join(sorted(got), " ")] = true
		}
		if len(seen) != 4 {
			t.Errorf("over 400 draws only %v were answered, want all of %v", seen, all)
		}
		if len(pairs) < 4 {
			t.Errorf("over 400 draws only the pairs %v were answered; equal weights should give all 6", pairs)
		}
	})

	t.Run("weight 0 answers when nothing else is healthy", func(t *testing.T) {
		s := build(t, snapshot.Name{FQDN: "w.example.org.", TTL: 30, Policy: policy.Weighted, MaxAnswers: 1, Targets: []snapshot.Target{
			weighted("192.0.2.1", 3, false),
			weighted("192.0.2.2", 1, false),
			weighted("192.0.2.3", 0, true),
		}})
		for range 50 {
			m, out := ask(s, "w.example.org.", dns.TypeA)
			if got := addrs(m); !slices.Equal(got, []string{"192.0.2.3"}) {
				t.Fatalf("answer %v, want the healthy standby 192.0.2.3", got)
			}
			if out != snapshot.Healthy {
				t.Fatalf("outcome %s, want healthy: the standby is healthy", out)
			}
		}
	})

	t.Run("max-answers larger than the healthy set", func(t *testing.T) {
		s := build(t, snapshot.Name{FQDN: "w.example.org.", TTL: 30, Policy: policy.Weighted, MaxAnswers: 5, Targets: []snapshot.Target{
			weighted("192.0.2.1", 1, true), weighted("192.0.2.2", 1, false), weighted("192.0.2.3", 1, true),
		}})
		m, _ := ask(s, "w.example.org.", dns.TypeA)
		if got := sorted(addrs(m)); !slices.Equal(got, []string{"192.0.2.1", "192.0.2.3"}) {
			t.Errorf("answer %v, want both healthy targets once", got)
		}
	})
}

func TestFallback(t *testing.T) {
	allDown := []snapshot.Target{down("192.0.2.1"), down("192.0.2.2"), down("2001:db8::1")}
	for _, c := range []struct {
		name     string
		n        snapshot.Name
		wantA    []string // nil: NODATA
		wantAAAA []string
		negTTL   uint32 // for NODATA answers
		out      snapshot.Outcome
	}{
		{
			name:  "all (the default) answers every target",
			n:     snapshot.Name{TTL: 30, Targets: allDown},
			wantA: []string{"192.0.2.1", "192.0.2.2"}, wantAAAA: []string{"2001:db8::1"}, out: snapshot.Fallback,
		},
		{
			name:  "last-good answers the last healthy set",
			n:     snapshot.Name{TTL: 30, Fallback: snapshot.FallbackLastGood, LastGood: []netip.Addr{ip("192.0.2.2"), ip("2001:db8::1")}, Targets: allDown},
			wantA: []string{"192.0.2.2"}, wantAAAA: []string{"2001:db8::1"}, out: snapshot.Fallback,
		},
		{
			// Never healthy since start: there is no last good set, so
			// it behaves like all rather than going dark.
			name:  "last-good with nothing ever healthy answers every target",
			n:     snapshot.Name{TTL: 30, Fallback: snapshot.FallbackLastGood, Targets: allDown},
			wantA: []string{"192.0.2.1", "192.0.2.2"}, wantAAAA: []string{"2001:db8::1"}, out: snapshot.Fallback,
		},
		{
			name:  "a fixed list answers its own addresses",
			n:     snapshot.Name{TTL: 30, Fallback: snapshot.FallbackFixed, Fixed: []netip.Addr{ip("198.51.100.1"), ip("2001:db8:ffff::1")}, Targets: allDown},
			wantA: []string{"198.51.100.1"}, wantAAAA: []string{"2001:db8:ffff::1"}, out: snapshot.Fallback,
		},
		{
			name:  "a fixed list without IPv6 answers AAAA with NODATA",
			n:     snapshot.Name{TTL: 30, Fallback: snapshot.FallbackFixed, Fixed: []netip.Addr{ip("198.51.100.1")}, Targets: allDown},
			wantA: []string{"198.51.100.1"}, negTTL: 30, out: snapshot.Fallback,
		},
		{
			name:   "none answers NODATA with the name's TTL when shorter",
			n:      snapshot.Name{TTL: 30, Fallback: snapshot.FallbackNone, Targets: allDown},
			negTTL: 30, out: snapshot.Empty,
		},
		{
			name:   "none answers NODATA with the zone's negative TTL when shorter",
			n:      snapshot.Name{TTL: 900, Fallback: snapshot.FallbackNone, Targets: allDown},
			negTTL: negTTL, out: snapshot.Empty,
		},
		{
			name:  "a fallback waits until nothing is healthy",
			n:     snapshot.Name{TTL: 30, Fallback: snapshot.FallbackNone, Targets: []snapshot.Target{down("192.0.2.1"), up("192.0.2.2"), up("2001:db8::1")}},
			wantA: []string{"192.0.2.2"}, wantAAAA: []string{"2001:db8::1"}, out: snapshot.Healthy,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.n.FQDN = "app.example.org."
			s := build(t, c.n)
			for _, q := range []struct {
				qtype uint16
				want  []string
			}{{dns.TypeA, c.wantA}, {dns.TypeAAAA, c.wantAAAA}} {
				m, out := ask(s, "app.example.org.", q.qtype)
				qt := dns.TypeToString[q.qtype]
				// Never NXDOMAIN (or anything else) for a name that exists.
				if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
					t.Fatalf("%s: rcode %s AA %t, want an authoritative NOERROR", qt, dns.RcodeToString[m.Rcode], m.Authoritative)
				}
				if q.want == nil {
					if len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
						t.Fatalf("%s: want NODATA with the SOA in authority, got\n%s", qt, m)
					}
					if got := m.Ns[0].Header().Ttl; got != c.negTTL {
						t.Errorf("%s: NODATA SOA TTL %d, want %d", qt, got, c.negTTL)
					}
					if c.out == snapshot.Empty && out != snapshot.Empty {
						t.Errorf("%s: outcome %s, want %s", qt, out, snapshot.Empty)
					}
					continue
				}
				if got := sorted(addrs(m)); !slices.Equal(got, q.want) {
					t.Errorf("%s: answer %v, want %v", qt, got, q.want)
				}
				for _, rr := range m.Answer {
					if rr.Header().Ttl != c.n.TTL {
						t.Errorf("%s: TTL %d, want the name's %d", qt, rr.Header().Ttl, c.n.TTL)
					}
				}
				if out != c.out {
					t.Errorf("%s: outcome %s, want %s", qt, out, c.out)
				}
			}
		})
	}
}

// TestBuildLeavesZoneData: building does not change the zone data it was
// given, so it can be built again (a rebuild after every verdict change)
// with the same result.
func TestBuildLeavesZoneData(t *testing.T) {
	d := loadZone(t, exampleOrg, "example.org.")
	before := len(d.Names)
	s1 := snapshot.Build(nil, []*zone.Data{d}, defaultNames())
	s2 := snapshot.Build(s1, []*zone.Data{d}, nil)
	if len(d.Names) != before {
		t.Errorf("Build added %d names to the zone data", len(d.Names)-before)
	}
	// Without the health-aware names, app keeps its TXT but has no
	// addresses, and east is gone.
	check(t, first(ask(s2, "app.example.org.", dns.TypeA)), test.Case{
		Qname: "app.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(negTTL)},
	})
	check(t, first(ask(s2, "east.example.org.", dns.TypeA)), test.Case{
		Qname: "east.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{soa(negTTL)},
	})
	check(t, first(ask(s1, "app.example.org.", dns.TypeAAAA)), test.Case{
		Qname: "app.example.org.", Qtype: dns.TypeAAAA, Authoritative: true,
		Answer: []dns.RR{test.AAAA("app.example.org. 30 IN AAAA 2001:db8::10")},
	})
}
