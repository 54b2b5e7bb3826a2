package healthdns

import (
	"net/netip"
	"sync"

	"github.com/coredns/coredns/plugin"

	"github.com/healthdns/healthdns/plugin/healthdns/health"

	"github.com/prometheus/client_golang/prometheus"
)

// target_healthy and name_state have a series per target and per name:
// at 100,000 targets a gauge each held about 40 MB. They are read from
// the running instances' verdicts when scraped instead.
var (
	targetHealthyDesc = prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, "healthdns", "target_healthy"),
		"1 when the target's verdict (what the probes say) is up, 0 otherwise; an operator's override does not change it (see target_override).",
		[]string{"name", "target"}, nil)
	nameStateDesc = prometheus.BuildFQName(plugin.Namespace, "healthdns", "name_state")
	nameStateHelp = "1 for a health-aware name's current state: healthy, degraded (targets down), standby (not answering its preferred targets), fallback or none (NODATA); one series per name."
	nameStateD    = prometheus.NewDesc(nameStateDesc, nameStateHelp, []string{"name", "state"}, nil)
)

// running is the instances that started and did not stop, for the state
// collector.
var running = struct {
	sync.Mutex
	hs map[*HealthDNS]bool
}{hs: map[*HealthDNS]bool{}}

func init() { prometheus.MustRegister(stateCollector{}) }

type stateCollector struct{}

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- targetHealthyDesc
	ch <- nameStateD
}

// Collect reads each running instance's names under its lock and sends
// the series after; a name served by two instances (a reload under way)
// is sent once.
func (stateCollector) Collect(ch chan<- prometheus.Metric) {
	running.Lock()
	hs := make([]*HealthDNS, 0, len(running.hs))
	for h := range running.hs {
		hs = append(hs, h)
	}
	running.Unlock()
	type target struct {
		name string
		addr netip.Addr
		up   bool
	}
	seen := map[nameAddr]bool{}
	seenName := map[string]bool{}
	for _, h := range hs {
		var ts []target
		var states [][2]string
		h.mu.Lock()
		inc := &h.inc
		for ni, n := range inc.names {
			if ni >= len(inc.tq) {
				break
			}
			for i, t := range n.Targets {
				k := nameAddr{n.FQDN, t.Probe.Addr}
				if seen[k] {
					continue
				}
				seen[k] = true
				ts = append(ts, target{n.FQDN, t.Probe.Addr, h.judge.Verdict(inc.tq[ni][i].key).State == health.Up})
			}
		}
		for fqdn, st := range h.vs.nameStates {
			if st != "" && !seenName[fqdn] {
				seenName[fqdn] = true
				states = append(states, [2]string{fqdn, st})
			}
		}
		h.mu.Unlock()
		for _, t := range ts {
			ch <- prometheus.MustNewConstMetric(targetHealthyDesc, prometheus.GaugeValue, b2f(t.up), t.name, t.addr.String())
		}
		for _, st := range states {
			ch <- prometheus.MustNewConstMetric(nameStateD, prometheus.GaugeValue, 1, st[0], st[1])
		}
	}
}
