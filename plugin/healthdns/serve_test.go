package healthdns

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// serveZone is the static zone of the ServeDNS, fuzz and benchmark tests.
const serveZone = `$ORIGIN example.org.
$TTL 3600
@         IN SOA   ns1.example.org. hostmaster.example.org. 2026010101 7200 900 1209600 300
@         IN NS    ns1.example.org.
@         IN NS    ns2.example.org.
@         IN MX    10 mail.example.org.
ns1       IN A     192.0.2.53
ns1       IN AAAA  2001:db8::53
ns2       IN A     192.0.2.54
mail      IN A     192.0.2.25
web       IN A     192.0.2.80
web       IN AAAA  2001:db8::80
www       IN CNAME web.example.org.
docs      IN CNAME app.example.org.
ext       IN CNAME www.example.net.
loop1     IN CNAME loop2.example.org.
loop2     IN CNAME loop1.example.org.
a.b.c     IN TXT   "deep"
*.wild    IN A     192.0.2.99
*.alias   IN CNAME web.example.org.
sub       IN NS    ns.sub.example.org.
ns.sub    IN A     192.0.2.100
`

// serveNames are the health-aware names of serveZone with their verdicts.
func serveNames() []snapshot.Name {
	up := func(a string) snapshot.Target {
		return snapshot.Target{Addr: netip.MustParseAddr(a), Healthy: true, Tier: 1, Weight: 1}
	}
	down := func(a string) snapshot.Target {
		return snapshot.Target{Addr: netip.MustParseAddr(a), Tier: 1, Weight: 1}
	}
	var many []snapshot.Target
	for i := 1; i <= 40; i++ {
		many = append(many, up(fmt.Sprintf("2001:db8:40::%x", i)))
	}
	return []snapshot.Name{
		{FQDN: "app.example.org.", TTL: 30, Policy: policy.RoundRobin, Targets: []snapshot.Target{up("192.0.2.10"), up("192.0.2.11"), down("192.0.2.12"), up("2001:db8::10")}},
		{FQDN: "w.example.org.", TTL: 30, Policy: policy.Weighted, MaxAnswers: 1, Targets: []snapshot.Target{
			{Addr: netip.MustParseAddr("192.0.2.21"), Healthy: true, Weight: 3}, {Addr: netip.MustParseAddr("192.0.2.22"), Healthy: true, Weight: 1},
		}},
		{FQDN: "p.example.org.", TTL: 10, Policy: policy.Priority, Targets: []snapshot.Target{
			{Addr: netip.MustParseAddr("192.0.2.31"), Tier: 1, Weight: 1}, {Addr: netip.MustParseAddr("192.0.2.32"), Healthy: true, Tier: 2, Weight: 1},
		}},
		{FQDN: "none.example.org.", TTL: 5, Fallback: snapshot.FallbackNone, Targets: []snapshot.Target{down("192.0.2.41")}},
		{FQDN: "many.example.org.", TTL: 30, Policy: policy.RoundRobin, Targets: many},
	}
}

// newServeHandler builds a handler for a zone text the way setup does,
// then stores a snapshot with the given verdicts, so no probe runs.
func newServeHandler(tb testing.TB, zoneText string, names ...snapshot.Name) *HealthDNS {
	tb.Helper()
	d, err := zone.Parse(strings.NewReader(zoneText), "test.zone", "example.org.")
	if err != nil {
		tb.Fatalf("zone: %v", err)
	}
	cfg := &config{zones: []*zone.Data{d}}
	h := newHandler(cfg, probe.NewPool())
	h.snap.Store(snapshot.Build(h.snap.Load(), cfg.zones, names))
	return h
}

// nextMarker is what the next plugin in the chain answers.
var nextMarker = test.TXT(`next. 0 IN TXT "answered by the next plugin"`)

func markerNext(called *bool) plugin.Handler {
	return test.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		*called = true
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{nextMarker}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
}

// serve runs one query through ServeDNS and returns what the client got.
// It fails the test when the plugin returns an rcode that would make the
// server write a second reply, or writes nothing.
func serve(t *testing.T, h *HealthDNS, w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	t.Helper()
	rec := dnstest.NewRecorder(w)
	rc, err := h.ServeDNS(context.Background(), rec, r)
	if err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	if !plugin.ClientWrite(rc) {
		t.Fatalf("ServeDNS returned %s, which tells the server to write the reply, for\n%s", dns.RcodeToString[rc], r)
	}
	if rec.Msg == nil {
		t.Fatalf("ServeDNS wrote no reply to\n%s", r)
	}
	if rec.Msg.Id != r.Id || !rec.Msg.Response {
		t.Fatalf("reply id %d QR %t, want id %d QR true", rec.Msg.Id, rec.Msg.Response, r.Id)
	}
	return rec.Msg
}

// checkReply compares a reply with a test.Case: the AA bit (which
// test.SortAndCheck does not look at), CNAMEs before their targets, then
// the sections in any order.
func checkReply(t *testing.T, via string, m *dns.Msg, tc test.Case) {
	t.Helper()
	what := fmt.Sprintf("%s %s %s", via, tc.Qname, dns.TypeToString[tc.Qtype])
	if m.Authoritative != tc.Authoritative {
		t.Errorf("%s: AA %t, want %t", what, m.Authoritative, tc.Authoritative)
	}
	if err := test.CNAMEOrder(m); err != nil {
		t.Errorf("%s: %v\n%s", what, err, m)
	}
	for _, sec := range [][]dns.RR{tc.Answer, tc.Ns, tc.Extra} {
		sort.Sort(test.RRSet(sec))
	}
	if err := test.SortAndCheck(m, tc); err != nil {
		t.Errorf("%s: %v\n%s", what, err, m)
	}
}

// TestServeDNSCase: names are case-insensitive (RFC 4343), and the
// question comes back with the case the client sent.
func TestServeDNSCase(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	for _, c := range []struct {
		qname string
		qtype uint16
		rcode int
		want  []string // answer records, as text
	}{
		{"APP.Example.ORG.", dns.TypeAAAA, dns.RcodeSuccess, []string{"app.example.org.\t30\tIN\tAAAA\t2001:db8::10"}},
		{"WeB.eXaMpLe.OrG.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.org.\t3600\tIN\tA\t192.0.2.80"}},
		{"WWW.EXAMPLE.ORG.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.org.\t3600\tIN\tCNAME\tweb.example.org.", "web.example.org.\t3600\tIN\tA\t192.0.2.80"}},
		{"EXAMPLE.ORG.", dns.TypeMX, dns.RcodeSuccess, []string{"example.org.\t3600\tIN\tMX\t10 mail.example.org."}},
		{"Nope.EXAMPLE.org.", dns.TypeA, dns.RcodeNameError, nil},
	} {
		r := new(dns.Msg)
		r.SetQuestion(c.qname, c.qtype)
		m := serve(t, h, &test.ResponseWriter{}, r)
		if m.Question[0].Name != c.qname {
			t.Errorf("%s: question came back as %s", c.qname, m.Question[0].Name)
		}
		if m.Rcode != c.rcode || !m.Authoritative {
			t.Errorf("%s: rcode %s AA %t, want %s AA true", c.qname, dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[c.rcode])
		}
		var got []string
		for _, rr := range m.Answer {
			got = append(got, rr.String())
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s: answer\n%s\nwant\n%s", c.qname, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

// TestServeDNSHeader: the header of an authoritative answer (RFC 1035
// 4.1.1): QR and AA set, RD copied, RA clear (no recursion here).
func TestServeDNSHeader(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	for _, rd := range []bool{false, true} {
		r := new(dns.Msg)
		r.SetQuestion("web.example.org.", dns.TypeA)
		r.RecursionDesired = rd
		m := serve(t, h, &test.ResponseWriter{}, r)
		if !m.Authoritative || m.RecursionAvailable || m.RecursionDesired != rd || m.Opcode != dns.OpcodeQuery || m.Truncated {
			t.Errorf("RD %t: flags of the reply wrong:\n%s", rd, m)
		}
	}
}

func TestServeDNSFormErr(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	noQuestion := &dns.Msg{MsgHdr: dns.MsgHdr{Id: 4711, Opcode: dns.OpcodeQuery}}
	two := new(dns.Msg)
	two.SetQuestion("web.example.org.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "app.example.org.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	for name, r := range map[string]*dns.Msg{"no question": noQuestion, "two questions": two} {
		m := serve(t, h, &test.ResponseWriter{}, r)
		if m.Rcode != dns.RcodeFormatError || len(m.Answer) != 0 {
			t.Errorf("%s: want FORMERR and no answer, got\n%s", name, m)
		}
	}
}

func TestServeDNSNotImp(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	for _, op := range []int{dns.OpcodeUpdate, dns.OpcodeNotify, dns.OpcodeIQuery, dns.OpcodeStatus} {
		r := new(dns.Msg)
		r.SetQuestion("example.org.", dns.TypeSOA)
		r.Opcode = op
		m := serve(t, h, &test.ResponseWriter{}, r)
		if m.Rcode != dns.RcodeNotImplemented || m.Opcode != op || len(m.Answer) != 0 {
			t.Errorf("opcode %s: want NOTIMP with the opcode copied and no answer, got\n%s", dns.OpcodeToString[op], m)
		}
	}
}

// TestServeDNSOutOfZoneOpcode: a NOTIFY or UPDATE for a zone healthdns
// does not serve belongs to the plugins after it (a secondary file zone in
// the same server block takes NOTIFYs).
func TestServeDNSOutOfZoneOpcode(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	var called bool
	h.Next = markerNext(&called)
	r := new(dns.Msg)
	r.SetQuestion("other.example.", dns.TypeSOA)
	r.Opcode = dns.OpcodeNotify
	m := serve(t, h, &test.ResponseWriter{}, r)
	if !called {
		t.Errorf("a NOTIFY for a zone healthdns does not serve is answered %s instead of passed to the next plugin (healthdns.go ServeDNS: check the zone before the opcode)", dns.RcodeToString[m.Rcode])
	}
}

func TestServeDNSClass(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	var called bool
	h.Next = markerNext(&called)
	for _, class := range []uint16{dns.ClassCHAOS, dns.ClassHESIOD, dns.ClassANY} {
		r := new(dns.Msg)
		r.SetQuestion("web.example.org.", dns.TypeA)
		r.Question[0].Qclass = class
		m := serve(t, h, &test.ResponseWriter{}, r)
		if m.Rcode != dns.RcodeRefused || len(m.Answer) != 0 || called {
			t.Errorf("class %s: want REFUSED from healthdns itself, got\n%s", dns.ClassToString[class], m)
		}
	}
}

func TestServeDNSOutOfZone(t *testing.T) {
	t.Run("passes to the next plugin", func(t *testing.T) {
		h := newServeHandler(t, serveZone, serveNames()...)
		var called bool
		h.Next = markerNext(&called)
		for _, qname := range []string{"example.com.", "org.", "notexample.org.", "."} {
			called = false
			r := new(dns.Msg)
			r.SetQuestion(qname, dns.TypeA)
			m := serve(t, h, &test.ResponseWriter{}, r)
			if !called || len(m.Answer) != 1 || m.Answer[0].String() != nextMarker.String() {
				t.Errorf("%s: want the next plugin's answer, got\n%s", qname, m)
			}
		}
	})
	t.Run("REFUSED when healthdns is the last plugin", func(t *testing.T) {
		// As in ". { healthdns example.org { ... } }": the server block
		// sends every name, healthdns serves one zone, nothing follows.
		h := newServeHandler(t, serveZone, serveNames()...)
		r := new(dns.Msg)
		r.SetQuestion("example.com.", dns.TypeA)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		_, err := h.ServeDNS(context.Background(), rec, r)
		if err != nil || rec.Msg == nil || rec.Msg.Rcode != dns.RcodeRefused {
			t.Errorf("an out-of-zone query with no next plugin got %v (err %v), want REFUSED as DESIGN.md and the file plugin say", rec.Msg, err)
		}
	})
}

// TestServeDNSZoneTransfer: healthdns does not do zone transfers, so AXFR
// and IXFR are refused, as the file plugin does without transfer. A
// NOERROR reply without the SOA is not a transfer a client can use
// (RFC 5936 2.2).
func TestServeDNSZoneTransfer(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	for _, qt := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
		r := new(dns.Msg)
		r.SetQuestion("example.org.", qt)
		rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: true})
		rc, _ := h.ServeDNS(context.Background(), rec, r)
		got, answers := rc, 0
		if rec.Msg != nil {
			got, answers = rec.Msg.Rcode, len(rec.Msg.Answer)
		}
		if got != dns.RcodeRefused && got != dns.RcodeNotImplemented {
			t.Errorf("%s for the zone gets %s with %d answers instead of REFUSED (healthdns.go ServeDNS: return dns.RcodeRefused for AXFR/IXFR, as the file plugin does)", dns.TypeToString[qt], dns.RcodeToString[got], answers)
		}
	}
}

// TestServeDNSEDNS: RFC 6891. An OPT in the query gets an OPT in the reply
// (version 0, DO copied from the query, RFC 3225); no OPT in the query
// gets none in the reply, for positive and negative answers alike.
func TestServeDNSEDNS(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	for _, qname := range []string{"app.example.org.", "web.example.org.", "nope.example.org.", "c.example.org."} {
		for _, c := range []struct {
			edns bool
			size uint16
			do   bool
		}{{false, 0, false}, {true, 1232, false}, {true, 4096, true}, {true, 512, true}} {
			r := new(dns.Msg)
			r.SetQuestion(qname, dns.TypeA)
			if c.edns {
				r.SetEdns0(c.size, c.do)
			}
			m := serve(t, h, &test.ResponseWriter{}, r)
			opt := m.IsEdns0()
			switch {
			case !c.edns && opt != nil:
				t.Errorf("%s without EDNS: reply has an OPT: %s", qname, opt)
			case c.edns && opt == nil:
				t.Errorf("%s with EDNS %d: reply has no OPT", qname, c.size)
			case c.edns && (opt.Do() != c.do || opt.Version() != 0 || opt.UDPSize() < 512):
				t.Errorf("%s with EDNS %d DO %t: reply OPT %s", qname, c.size, c.do, opt)
			}
			if n := countOPT(m); n > 1 {
				t.Errorf("%s: reply has %d OPT records; at most one is allowed", qname, n)
			}
		}
	}
}

func countOPT(m *dns.Msg) int {
	n := 0
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

// TestServeDNSSize: a reply that does not fit the client's buffer (512
// bytes without EDNS, the EDNS size otherwise) is truncated with TC, and
// comes whole over TCP. The server wraps every writer in a ScrubWriter;
// this test does the same.
func TestServeDNSSize(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	for _, c := range []struct {
		name  string
		tcp   bool
		edns  uint16
		trunc bool
	}{
		{"UDP without EDNS", false, 0, true},
		{"UDP with EDNS 512", false, 512, true},
		{"UDP with EDNS 4096", false, 4096, false},
		{"TCP", true, 0, false},
	} {
		r := new(dns.Msg)
		r.SetQuestion("many.example.org.", dns.TypeAAAA)
		if c.edns > 0 {
			r.SetEdns0(c.edns, false)
		}
		w := &test.ResponseWriter{TCP: c.tcp}
		m := serve(t, h, request.NewScrubWriter(r, w), r)
		buf, err := m.Pack()
		if err != nil {
			t.Fatalf("%s: reply does not pack: %v", c.name, err)
		}
		if m.Truncated != c.trunc {
			t.Errorf("%s: TC %t, want %t", c.name, m.Truncated, c.trunc)
		}
		if c.trunc {
			if limit := max(int(c.edns), 512); len(buf) > limit {
				t.Errorf("%s: truncated reply is %d bytes, more than the client's %d", c.name, len(buf), limit)
			}
			continue
		}
		if len(m.Answer) != 40 {
			t.Errorf("%s: %d answers, want all 40", c.name, len(m.Answer))
		}
	}
}
