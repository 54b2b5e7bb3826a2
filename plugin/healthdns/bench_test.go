package healthdns

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/file"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// benchQueries are the queries both benchmarks serve; the file plugin has
// no health-aware names, so it runs the static ones only.
var benchQueries = []struct {
	name   string
	qname  string
	qtype  uint16
	static bool
	rcode  int
}{
	{"static", "web.example.org.", dns.TypeA, true, dns.RcodeSuccess},
	{"cname", "www.example.org.", dns.TypeA, true, dns.RcodeSuccess},
	{"roundrobin", "app.example.org.", dns.TypeA, false, dns.RcodeSuccess},
	{"weighted", "w.example.org.", dns.TypeA, false, dns.RcodeSuccess},
	{"priority", "p.example.org.", dns.TypeA, false, dns.RcodeSuccess},
	{"nxdomain", "nope.example.org.", dns.TypeA, true, dns.RcodeNameError},
}

// BenchmarkServeDNS is the query path of healthdns; compare it with
// BenchmarkFileReference, the same static zone served by CoreDNS's file
// plugin (go test -bench 'ServeDNS|FileReference' -benchmem).
func BenchmarkServeDNS(b *testing.B) {
	h := newServeHandler(b, serveZone, serveNames()...)
	ctx := context.Background()
	w := &test.ResponseWriter{}
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			r := new(dns.Msg)
			r.SetQuestion(q.qname, q.qtype)
			rec := &rcodeWriter{ResponseWriter: w}
			h.ServeDNS(ctx, rec, r)
			if rec.rcode != q.rcode || rec.answers == 0 && q.rcode == dns.RcodeSuccess {
				b.Fatalf("%s: rcode %s with %d answers", q.qname, dns.RcodeToString[rec.rcode], rec.answers)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(ctx, w, r)
			}
		})
	}
}

func BenchmarkFileReference(b *testing.B) {
	z, err := file.Parse(strings.NewReader(serveZone), "example.org.", "stdin", 0)
	if err != nil {
		b.Fatal(err)
	}
	fp := file.File{Next: test.ErrorHandler(), Zones: file.Zones{Z: map[string]*file.Zone{"example.org.": z}, Names: []string{"example.org."}}}
	ctx := context.Background()
	w := &test.ResponseWriter{}
	for _, q := range benchQueries {
		if !q.static {
			continue
		}
		b.Run(q.name, func(b *testing.B) {
			r := new(dns.Msg)
			r.SetQuestion(q.qname, q.qtype)
			rec := &rcodeWriter{ResponseWriter: w}
			fp.ServeDNS(ctx, rec, r)
			if rec.rcode != q.rcode || rec.answers == 0 && q.rcode == dns.RcodeSuccess {
				b.Fatalf("%s: rcode %s with %d answers", q.qname, dns.RcodeToString[rec.rcode], rec.answers)
			}
			b.ReportAllocs()
			for b.Loop() {
				fp.ServeDNS(ctx, w, r)
			}
		})
	}
}

// TestServeDNSAllocs holds the query path to DESIGN.md's number: "no
// per-query allocation beyond the reply". A positive answer needs three:
// the reply, its question section and its answer section.
func TestServeDNSAllocs(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	ctx := context.Background()
	w := &test.ResponseWriter{}
	for _, q := range []string{"web.example.org.", "app.example.org.", "p.example.org."} {
		r := new(dns.Msg)
		r.SetQuestion(q, dns.TypeA)
		n := testing.AllocsPerRun(200, func() { h.ServeDNS(ctx, w, r) })
		if n > 3 {
			t.Errorf("%s A costs %.0f allocations, want at most 3 (reply, question, answer); "+
				"the rest are dns.Split calls inside dns.IsSubDomain, from plugin.Zones.Matches in healthdns.go ServeDNS "+
				"and from zoneOf and wildcard in snapshot", q, n)
		}
	}
}

// rcodeWriter checks a benchmark's query once before it is timed.
type rcodeWriter struct {
	dns.ResponseWriter
	rcode, answers int
}

func (w *rcodeWriter) WriteMsg(m *dns.Msg) error {
	w.rcode, w.answers = m.Rcode, len(m.Answer)
	return nil
}
