package healthdns

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// target_healthy and name_state come from the running instances' state at
// scrape time: one series per target and per name, the verdict's value,
// once even while two instances serve the same names (a reload), and
// none once the instances stop.
func TestStateMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.12.20:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acceptAndClose(ln)
	dir := t.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte("$ORIGIN metrics.example.\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.12.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	corefile := fmt.Sprintf("healthdns metrics.example {\nzonefile %s\ninterval 1s\ntimeout 200ms\nname app {\ntarget 127.0.12.20 check tcp %s\ntarget 127.0.12.21 check tcp 127.0.12.21:1\n}\n}", zf, ln.Addr())
	start := func() *HealthDNS {
		cfg, err := parse(caddy.NewTestController("dns", corefile))
		if err != nil {
			t.Fatal(err)
		}
		h := newHandler(cfg, probe.NewPool())
		if err := h.start(); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h1 := start()
	h2 := start() // a reload: both run for a while
	series := func() map[string]float64 {
		out := map[string]float64{}
		fams, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err) // a duplicate series fails here
		}
		for _, f := range fams {
			if f.GetName() != "coredns_healthdns_target_healthy" && f.GetName() != "coredns_healthdns_name_state" {
				continue
			}
			for _, m := range f.GetMetric() {
				k, ours := f.GetName(), false
				for _, l := range m.GetLabel() {
					k += " " + l.GetValue()
					ours = ours || l.GetValue() == "app.metrics.example."
				}
				if ours { // other tests' instances may still run
					out[k] = m.GetGauge().GetValue()
				}
			}
		}
		return out
	}
	want := map[string]float64{
		"coredns_healthdns_target_healthy app.metrics.example. 127.0.12.20": 1,
		"coredns_healthdns_target_healthy app.metrics.example. 127.0.12.21": 0,
		"coredns_healthdns_name_state app.metrics.example. degraded":        1,
	}
	var got map[string]float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		h1.rebuild()
		h2.rebuild()
		if got = series(); fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("series:\n%v\nwant\n%v", got, want)
	}
	h1.stop()
	h2.stop()
	if got := series(); len(got) != 0 {
		t.Errorf("after stop: %v", got)
	}
}

// Past record-series, the names only records define lose their per-name
// series all at once (record_series_limited says so) while the
// Corefile's keep theirs, a Corefile name the records add targets to
// included; the aggregates count every name. Back under it, they come
// back.
func TestStateMetricsRecordSeries(t *testing.T) {
	dir := t.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte("$ORIGIN series.example.\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.12.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parse(caddy.NewTestController("dns", fmt.Sprintf("healthdns series.example {\nzonefile %s\nrecord-series 3\nname app {\ntarget 192.0.2.1 check tcp 192.0.2.1:1\n}\n}", zf)))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(cfg, probe.NewPool())
	st := records.Memory(records.Options{})
	h.storeRef = &storeRef{store: st}
	collected(t, h)
	record := func(name, addr string) records.Endpoint {
		return records.Endpoint{DNSName: name + ".series.example", RecordType: "A", Targets: []string{addr},
			ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: "tcp {addr}:1"}}}
	}
	apply := func(c records.Changes) {
		t.Helper()
		if _, err := st.Apply("cluster1", c); err != nil {
			t.Fatal(err)
		}
		h.rebuild()
	}
	// scrape lists our per-name series ("metric name"), the limited
	// gauge and the sum of the names and verdicts aggregates.
	scrape := func() (perName []string, limited, names, targets float64) {
		t.Helper()
		fams, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			for _, m := range f.GetMetric() {
				switch f.GetName() {
				case "coredns_healthdns_record_series_limited":
					limited = m.GetGauge().GetValue()
				case "coredns_healthdns_names":
					names += m.GetGauge().GetValue()
				case "coredns_healthdns_verdicts":
					targets += m.GetGauge().GetValue()
				case "coredns_healthdns_target_healthy", "coredns_healthdns_name_state":
					for _, l := range m.GetLabel() {
						if l.GetName() == "name" && strings.HasSuffix(l.GetValue(), ".series.example.") {
							perName = append(perName, strings.TrimPrefix(f.GetName(), "coredns_healthdns_")+" "+strings.TrimSuffix(l.GetValue(), ".series.example."))
						}
					}
				}
			}
		}
		sort.Strings(perName)
		return perName, limited, names, targets
	}
	// Every name has one target but app, which has a record's too.
	check := func(wantNames []string, wantLimited float64, wantCount int) {
		t.Helper()
		want := []string{"target_healthy app"}
		for _, n := range wantNames {
			want = append(want, "name_state "+n, "target_healthy "+n)
		}
		sort.Strings(want)
		perName, limited, names, targets := scrape()
		if !slices.Equal(perName, want) || limited != wantLimited {
			t.Errorf("per-name series %v, limited %v; want %v, %v", perName, limited, want, wantLimited)
		}
		if names != float64(wantCount) || targets != float64(wantCount+1) {
			t.Errorf("names %v, targets %v; want %v, %v", names, targets, wantCount, wantCount+1)
		}
	}
	// answers_total follows the same rule: past the limit the records'
	// names count together, as name "".
	answers := func(wantR0, wantTogether bool) {
		t.Helper()
		for _, n := range []string{"app", "r0"} {
			r := new(dns.Msg)
			r.SetQuestion(n+".series.example.", dns.TypeA)
			serve(t, h, &test.ResponseWriter{}, r)
		}
		if got := seriesWithName(t, "app.series.example.") > 0; !got {
			t.Error("answers_total has no series for app, a Corefile name")
		}
		if got := seriesWithName(t, "r0.series.example.") > 0; got != wantR0 {
			t.Errorf("answers_total has a series for r0: %v, want %v", got, wantR0)
		}
		if got := seriesWithName(t, "") > 0; got != wantTogether {
			t.Errorf("answers_total has the records' names together: %v, want %v", got, wantTogether)
		}
	}
	// app has a record target too: still the Corefile's name.
	apply(records.Changes{Create: []records.Endpoint{record("app", "192.0.2.9"), record("r0", "192.0.2.10"), record("r1", "192.0.2.11"), record("r2", "192.0.2.12")}})
	check([]string{"app", "r0", "r1", "r2"}, 0, 4)
	answers(true, false)
	apply(records.Changes{Create: []records.Endpoint{record("r3", "192.0.2.13")}})
	check([]string{"app"}, 1, 5)
	answers(false, true)
	apply(records.Changes{Delete: []records.Endpoint{record("r3", "192.0.2.13")}})
	check([]string{"app", "r0", "r1", "r2"}, 0, 4)
	answers(true, false)
}

// names and verdicts add up the server blocks, and count a block once
// while a reload runs two instances of it.
func TestStateMetricsCountBlocks(t *testing.T) {
	dir := t.TempDir()
	block := func(zone string, names int) *HealthDNS {
		zf := filepath.Join(dir, zone)
		if err := os.WriteFile(zf, []byte("$ORIGIN "+zone+".\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.12.1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		body := ""
		for i := range names {
			body += fmt.Sprintf("name n%d {\ntarget 192.0.2.%d check tcp 192.0.2.%d:1\n}\n", i, i+1, i+1)
		}
		cfg, err := parse(caddy.NewTestController("dns", fmt.Sprintf("healthdns %s {\nzonefile %s\n%s}", zone, zf, body)))
		if err != nil {
			t.Fatal(err)
		}
		h := newHandler(cfg, probe.NewPool())
		collected(t, h)
		return h
	}
	block("one.example", 1)
	block("two.example", 2)
	block("two.example", 2) // a reload of two.example
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			sums[f.GetName()] += m.GetGauge().GetValue()
		}
	}
	if sums["coredns_healthdns_names"] != 3 || sums["coredns_healthdns_verdicts"] != 3 {
		t.Errorf("names %v, verdicts %v; want 3, 3", sums["coredns_healthdns_names"], sums["coredns_healthdns_verdicts"])
	}
}

// collected makes the state collector read h, as it does a running
// instance's, until the test ends.
func collected(tb testing.TB, h *HealthDNS) {
	running.Lock()
	running.hs[h] = true
	running.Unlock()
	tb.Cleanup(func() {
		running.Lock()
		delete(running.hs, h)
		running.Unlock()
	})
}
