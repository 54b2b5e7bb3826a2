package healthdns

import (
	"sync"

	"github.com/coredns/coredns/plugin"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/status"

	"github.com/prometheus/client_golang/prometheus"
)

// target_healthy and name_state have a series per target and per name:
// at 100,000 targets a gauge each held about 40 MB. They are read from
// the running instances' verdicts when scraped instead, and only for the
// names the record-series limit allows (see seriesNames).
var (
	targetHealthyDesc = prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, "healthdns", "target_healthy"),
		"1 when the target's verdict (what the probes say) is up, 0 otherwise; an operator's override does not change it (see target_override).",
		[]string{"name", "target"}, nil)
	nameStateDesc = prometheus.BuildFQName(plugin.Namespace, "healthdns", "name_state")
	nameStateHelp = "1 for a health-aware name's current state: healthy, degraded (targets down), standby (not answering its preferred targets), fallback or none (NODATA); one series per name."
	nameStateD    = prometheus.NewDesc(nameStateDesc, nameStateHelp, []string{"name", "state"}, nil)
	// names and verdicts count every name, whatever record-series says,
	// summed over the server blocks.
	namesDesc = prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, "healthdns", "names"),
		"Health-aware names by state: healthy, degraded, standby, fallback, none.", []string{"state"}, nil)
	verdictsDesc = prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, "healthdns", "verdicts"),
		"Targets of health-aware names by verdict (up, down, unknown): one a name and target.", []string{"state"}, nil)
	limitedDesc = prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, "healthdns", "record_series_limited"),
		"1 while a server block has more names that only records define than its record-series limit: none of them has target_healthy or name_state series (the Corefile's names keep theirs; names and verdicts count every name).",
		nil, nil)
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
	ch <- namesDesc
	ch <- verdictsDesc
	ch <- limitedDesc
}

// stateOrder is the states names counts, in its order.
var stateOrder = [...]string{status.NameHealthy, status.NameDegraded, status.NameStandby, status.NameFallback, status.NameNone}

// Collect sends each running instance's series; a name served by two
// instances (a reload under way) is sent once, and so are the counts of
// a server block's.
func (stateCollector) Collect(ch chan<- prometheus.Metric) {
	running.Lock()
	hs := make([]*HealthDNS, 0, len(running.hs))
	for h := range running.hs {
		hs = append(hs, h)
	}
	running.Unlock()
	seen := map[nameAddr]bool{}
	seenName := map[string]bool{}
	limited := false
	blocks := map[*verdictState]bool{}
	var names [len(stateOrder)]int
	var byState [3]int
	for _, h := range hs {
		ss := h.stateSeries()
		limited = limited || ss.off
		if !blocks[h.vs] {
			blocks[h.vs] = true
			for i := range names {
				names[i] += ss.names[i]
			}
			for i := range byState {
				byState[i] += ss.byState[i]
			}
		}
		i := 0
		for ni, n := range ss.series {
			for _, t := range n.Targets {
				up := ss.up[i]
				i++
				k := nameAddr{n.FQDN, t.Probe.Addr}
				if !seen[k] {
					seen[k] = true
					ch <- prometheus.MustNewConstMetric(targetHealthyDesc, prometheus.GaugeValue, b2f(up), n.FQDN, t.Probe.Addr.String())
				}
			}
			if st := ss.states[ni]; st != "" && !seenName[n.FQDN] {
				seenName[n.FQDN] = true
				ch <- prometheus.MustNewConstMetric(nameStateD, prometheus.GaugeValue, 1, n.FQDN, st)
			}
		}
	}
	for i, st := range stateOrder {
		ch <- prometheus.MustNewConstMetric(namesDesc, prometheus.GaugeValue, float64(names[i]), st)
	}
	for _, st := range []health.State{health.Up, health.Down, health.Unknown} {
		ch <- prometheus.MustNewConstMetric(verdictsDesc, prometheus.GaugeValue, float64(byState[st]), st.String())
	}
	ch <- prometheus.MustNewConstMetric(limitedDesc, prometheus.GaugeValue, b2f(limited))
}

// stateSeries is what an instance's series say: its names that have
// series (never written: a Merge makes new ones), whether each of their
// targets' verdict is up (in the names' order) and each name's state;
// and its names by state and targets by verdict, every one.
type stateSeries struct {
	series  []*nameConfig
	up      []bool
	states  []string
	off     bool // the names only records define have none
	names   [len(stateOrder)]int
	byState [3]int
}

// stateSeries copies, under h.mu, what changes in place (the judge's
// verdicts, the names' states) for the names that have series, and no
// more: the labels and metrics are made after.
func (h *HealthDNS) stateSeries() stateSeries {
	h.mu.Lock()
	defer h.mu.Unlock()
	inc := &h.inc
	names, off := h.cfg.seriesNames(inc.names)
	names = names[:min(len(names), len(inc.tq))] // not indexed yet: none
	total := 0
	for _, n := range names {
		total += len(n.Targets)
	}
	ss := stateSeries{series: names, up: make([]bool, 0, total), states: make([]string, len(names)), off: off, byState: inc.byState}
	for i, st := range stateOrder {
		ss.names[i] = h.vs.nameCounts[st]
	}
	for ni, n := range names {
		for i := range n.Targets {
			ss.up = append(ss.up, h.judge.Verdict(inc.tq[ni][i].key).State == health.Up)
		}
		ss.states[ni] = h.vs.nameStates[n.FQDN]
	}
	return ss
}

// seriesNames is the names of a Merge that have per-name series: all of
// them, or only the Corefile's while more than recordSeries names only
// records define (all or none of those, so that an operator is never
// half covered unawares). Merge puts the Corefile's names first, in the
// Corefile's order.
func (c *config) seriesNames(names []*nameConfig) (_ []*nameConfig, off bool) {
	core := 0
	for core < len(names) && core < len(c.names) && names[core].FQDN == c.names[core].FQDN {
		core++
	}
	if len(names)-core > c.recordSeries {
		return names[:core], true
	}
	return names, false
}

// noteRecordSeries logs when the names only records define go over the
// record-series limit, and when they are back under it. Called with h.mu
// held.
func (h *HealthDNS) noteRecordSeries(names []*nameConfig) {
	kept, off := h.cfg.seriesNames(names)
	if off == h.seriesOff {
		return
	}
	h.seriesOff = off
	if off {
		only := make(map[string]bool, len(kept))
		for _, n := range kept {
			only[n.FQDN] = true
		}
		h.answerNames.Store(&only)
		forgetAnswersBut(only)
	} else {
		h.answerNames.Store(nil)
		forgetAnswers(map[string]bool{"": true})
	}
	switch n := len(names) - len(kept); {
	case !off && h.cfg.recordSeries == 0: // no records' names left: nothing came back
	case !off:
		log.Infof("names only records define are at most record-series %d again: they have target_healthy and name_state series", h.cfg.recordSeries)
	case h.cfg.recordSeries == 0:
		log.Infof("record-series 0: the %d names only records define have no target_healthy or name_state series", n)
	default:
		log.Warningf("%d names only records define are more than record-series %d: none of them has target_healthy or name_state series now (coredns_healthdns_record_series_limited 1); coredns_healthdns_names and coredns_healthdns_verdicts count them all", n, h.cfg.recordSeries)
	}
}
