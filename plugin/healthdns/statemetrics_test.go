package healthdns

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"

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
