package healthdns

import (
	"net/netip"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAnswersTotalByName: answers_total says which name answered: the
// health-aware name (through a CNAME, the name it points to; for a
// wildcard, the wildcard), never the query name of an NXDOMAIN or of a
// static answer; a name that goes away takes its series with it.
func TestAnswersTotalByName(t *testing.T) {
	names := append(serveNames(), snapshot.Name{FQDN: "*.hw.example.org.", TTL: 30, Policy: policy.RoundRobin,
		Targets: []snapshot.Target{{Addr: netip.MustParseAddr("192.0.2.77"), Healthy: true, Weight: 1}}})
	h := newServeHandler(t, serveZone, names...)
	count := func(name, pol, out string) float64 {
		return answersValue(t, map[string]string{"server": "", "name": name, "policy": pol, "outcome": out})
	}
	before := map[string]float64{
		"app": count("app.example.org.", "roundrobin", "healthy"),
		"p":   count("p.example.org.", "priority", "healthy"),
		"hw":  count("*.hw.example.org.", "roundrobin", "healthy"),
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"app.example.org.", dns.TypeA},
		{"docs.example.org.", dns.TypeA}, // CNAME to app
		{"p.example.org.", dns.TypeA},
		{"x1.hw.example.org.", dns.TypeA},
		{"x2.hw.example.org.", dns.TypeA},
		{"nosuch.example.org.", dns.TypeA}, // NXDOMAIN
		{"web.example.org.", dns.TypeA},    // static
	} {
		r := new(dns.Msg)
		r.SetQuestion(q.name, q.qtype)
		serve(t, h, &test.ResponseWriter{}, r)
	}
	for k, want := range map[string]float64{"app": 2, "p": 1, "hw": 2} {
		var got float64
		switch k {
		case "app":
			got = count("app.example.org.", "roundrobin", "healthy") - before[k]
		case "p":
			got = count("p.example.org.", "priority", "healthy") - before[k]
		case "hw":
			got = count("*.hw.example.org.", "roundrobin", "healthy") - before[k]
		}
		if got != want {
			t.Errorf("answers_total for %s: +%v, want +%v", k, got, want)
		}
	}
	for _, bad := range []string{"nosuch.example.org.", "web.example.org.", "docs.example.org.", "x1.hw.example.org."} {
		if n := seriesWithName(t, bad); n > 0 {
			t.Errorf("answers_total has %d series named %s, a query name", n, bad)
		}
	}

	// A name that answered has a series per outcome, at 0 for the others,
	// so that rate() sees its first fallback.
	if n := seriesWithName(t, "p.example.org."); n != 4 {
		t.Errorf("answers_total has %d series for p.example.org., want one per outcome (4)", n)
	}
	if got := count("p.example.org.", "priority", "fallback"); got != 0 {
		t.Errorf("answers_total{outcome=fallback} of p is %v, want 0", got)
	}

	// A name that is gone takes its series along.
	h.mu.Lock()
	h.vs.nameStates = map[string]string{"app.example.org.": "healthy"}
	h.exportNameStates(map[string]string{})
	h.mu.Unlock()
	if n := seriesWithName(t, "app.example.org."); n > 0 {
		t.Errorf("answers_total keeps %d series of a name that is gone", n)
	}
}

func seriesWithName(t *testing.T, name string) int {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "coredns_healthdns_answers_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == name {
					n++
				}
			}
		}
	}
	return n
}

// answersValue is the value of the answers_total series with labels.
func answersValue(t *testing.T, labels map[string]string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "coredns_healthdns_answers_total" {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0 // a name's series appear once it answered
}
