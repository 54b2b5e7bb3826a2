package main

import (
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/version"

	"github.com/prometheus/client_golang/prometheus"
)

// The agent's metrics share the server's namespace and subsystem, and the
// probe metrics have the server's names and labels, so one dashboard
// covers both.
const (
	namespace = "coredns"
	subsystem = "healthdns"
)

type metrics struct {
	probes        *prometheus.CounterVec
	probeDuration *prometheus.HistogramVec
	transitions   *prometheus.CounterVec
	localErrors   *prometheus.CounterVec
	localLog      *probe.Every
	logf          func(string, ...any)
	reg           *prometheus.Registry
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "probes_total",
			Help: "Health check runs by target, check type and result (success or failure).",
		}, []string{"target", "type", "result"}),
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "probe_duration_seconds",
			Help:    "Time a health check took, by check type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"type"}),
		localErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "probe_local_errors_total",
			Help: "Health check runs that failed for want of this process's resources (emfile, enfile, enobufs, enomem, eaddrnotavail) or because it was stopping (shutdown); they count as unknown, never down.",
		}, []string{"reason"}),
		localLog: probe.NewEvery(10 * time.Second),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "state_transitions_total",
			Help: "Target state changes seen by this observer, by target and new state.",
		}, []string{"target", "to"}),
	}
	// Go and process metrics come from the default registry, which /metrics
	// serves alongside (it also holds the webhook's metrics).
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "build_info",
		Help: "Always 1; its labels say which healthdns this agent runs, as -version prints it.",
	}, []string{"version", "commit", "date", "coredns", "goversion"})
	b := version.Get()
	build.WithLabelValues(b.Version, b.Commit, b.Date, b.CoreDNS, b.Go).Set(1)
	reg.MustRegister(m.probes, m.probeDuration, m.transitions, m.localErrors, build)
	return m
}

func (m *metrics) observeProbe(r probe.Result) {
	result := "success"
	switch {
	case r.Local != "":
		result = "local_error"
		m.localErrors.WithLabelValues(r.Local).Inc()
		if r.Local != probe.LocalShutdown && m.logf != nil && m.localLog.Allow() {
			m.logf("[WARN] probe of %s failed here, not at the target (%s): %v; counted as unknown, never down", r.Target.Addr, r.Local, r.Err)
		}
	case r.Err != nil:
		result = "failure"
	}
	m.probes.WithLabelValues(r.Target.Addr.String(), r.Check.Kind.String(), result).Inc()
	m.probeDuration.WithLabelValues(r.Check.Kind.String()).Observe(r.Duration.Seconds())
}

// watch registers the metrics read from the agent at scrape time.
func (m *metrics) watch(a *agent) {
	m.reg.MustRegister(&agentCollector{a: a})
	if a.node != nil {
		m.reg.MustRegister(gossip.NewCollector(a.node))
	}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
}

var (
	descCatalog  = desc("catalog_targets", "Targets in the cluster's catalog, which this agent probes.")
	descObserved = desc("observed_targets", "Targets by this agent's current state.", "state")
	// With -connect (an edge client).
	descEdgeConnected = desc("edge_connected", "1 while this edge client is connected to a server (-connect), else 0.")
	descEdgeConnects  = desc("edge_connects_total", "Connections this edge client made to servers (-connect): more than one is a reconnect.")
)

// agentCollector reads the agent's own view at scrape time; the gossip
// counters come from gossip.Collector.
type agentCollector struct{ a *agent }

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCatalog
	ch <- descObserved
	ch <- descEdgeConnected
	ch <- descEdgeConnects
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	counts := map[health.State]int{}
	held := a.cat.Held()
	for _, h := range held {
		counts[a.pool.Status(h.Probed.Key).State]++
	}
	ch <- prometheus.MustNewConstMetric(descCatalog, prometheus.GaugeValue, float64(len(held)))
	if a.edge != nil {
		connected := 0.0
		if a.edge.Server() != "" {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(descEdgeConnected, prometheus.GaugeValue, connected)
		ch <- prometheus.MustNewConstMetric(descEdgeConnects, prometheus.CounterValue, float64(a.edge.Connects()))
	}
	for _, s := range []health.State{health.Up, health.Down, health.Unknown} {
		ch <- prometheus.MustNewConstMetric(descObserved, prometheus.GaugeValue, float64(counts[s]), s.String())
	}
}
