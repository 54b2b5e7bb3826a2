package healthdns

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/version"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	probes = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "probes_total",
		Help:      "Health check runs by target, check type and result (success or failure).",
	}, []string{"target", "type", "result"})

	probeDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "probe_duration_seconds",
		Help:      "Time a health check took, by check type.",
		Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"type"})

	probeLocalErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "probe_local_errors_total",
		Help:      "Health check runs that failed for want of this process's resources (emfile, enfile, enobufs, enomem, eaddrnotavail) or because it was stopping (shutdown); they count as unknown, never down.",
	}, []string{"reason"})

	rebuilds = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "rebuilds_total",
		Help:      "Rebuilds of the verdicts and answers, by kind: incremental (only what changed), or the reason one judged every target: first, overrides, judge_round, names (records changed a name's targets in a way not followed), observations (too many changed), observers (one came or went), freshness (a view turned stale or fresh).",
	}, []string{"kind"})

	transitions = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "state_transitions_total",
		Help:      "Target state changes seen by this observer, by target and new state.",
	}, []string{"target", "to"})

	partitioned = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "partitioned",
		Help:      "1 while this server hears no majority of the cluster's voters (servers and witnesses) and keeps its last verdicts.",
	})

	votersHeard = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "voters_heard",
		Help:      "Voters (servers and witnesses) this server hears now, itself included.",
	})

	votersKnown = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "voters_known",
		Help:      "Voters the cluster has as this server counts them: the servers option, or those heard within forget-after.",
	})

	votersNeeded = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "voters_needed",
		Help:      "Voters this server must hear to act: a majority of voters_known.",
	})

	voterHeard = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "voter_heard",
		Help:      "1 while this server hears the voter (its news arrived within its silence window), 0 otherwise; role is server or witness.",
	}, []string{"voter", "role"})

	pendingVerdicts = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "verdicts_pending",
		Help:      "Verdict changes the evidence wants that wait until a majority of voters is heard after them.",
	})

	regionAnswers = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "region_answers_total",
		Help:      "Health-aware answers that depend on the client (geo, sticky) by policy and the region whose targets answered (none: a target with no region, or the fallback).",
	}, []string{"server", "policy", "region"})

	buildInfo = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "build_info",
		Help:      "Always 1; its labels say which healthdns this server runs, as -version prints it.",
	}, []string{"version", "commit", "date", "coredns", "goversion"})
)

func init() {
	b := version.Get()
	buildInfo.WithLabelValues(b.Version, b.Commit, b.Date, b.CoreDNS, b.Go).Set(1)
}

// answerKey is one name's set of answers_total series.
type answerKey struct {
	server, name, pol string
}

// answerOutcomes are the outcomes answers_total counts: health-aware ones.
var answerOutcomes = []snapshot.Outcome{snapshot.Healthy, snapshot.Fallback, snapshot.Empty, snapshot.Stale}

// answers_total has a series per name and outcome. As prometheus
// counters, 20,000 names held 70 MB (labels, a created timestamp, a map
// entry each); a name's counts here are four words, read when scraped.
// The names are health-aware names of the configuration and the records
// (Answer never gives the query name), so the series are bounded by
// them; a name's series appear once it has answered, and forgetAnswers
// drops those of a name that is gone.
var (
	answersDesc = prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, "healthdns", "answers_total"),
		"Health-aware answers by name (the configured or record name, never the query's; \"\" for the names only records define, together, while they are more than record-series), policy and outcome: healthy (healthy targets), fallback (nothing healthy, fallback answered), none (nothing healthy, NODATA) or stale (SERVFAIL: the server was paused and has not heard fresh observations yet). Zone-file answers (static) and queries outside the zones (refused) are not counted.",
		[]string{"server", "name", "policy", "outcome"}, nil)
	answerCounts sync.Map // answerKey -> *answerCount
)

type answerCount [snapshot.Stale + 1]atomic.Uint64

func init() { prometheus.MustRegister(answersCollector{}) }

// countAnswer counts one answer of name: a map load and an atomic add.
func countAnswer(server, name string, pol policy.Policy, out snapshot.Outcome) {
	if out > snapshot.Stale {
		return // not a health-aware outcome
	}
	if pol == nil {
		pol = policy.Default()
	}
	k := answerKey{server, name, pol.Name()}
	v, ok := answerCounts.Load(k)
	if !ok {
		v, _ = answerCounts.LoadOrStore(k, new(answerCount))
	}
	v.(*answerCount)[out].Add(1)
}

// forgetAnswers drops the answers_total series of names no longer served.
func forgetAnswers(gone map[string]bool) {
	if len(gone) == 0 {
		return
	}
	answerCounts.Range(func(k, _ any) bool {
		if gone[k.(answerKey).name] {
			answerCounts.Delete(k)
		}
		return true
	})
}

// forgetAnswersBut drops the answers_total series of every name but
// those of keep: past record-series the records' names count together,
// as name "".
func forgetAnswersBut(keep map[string]bool) {
	answerCounts.Range(func(k, _ any) bool {
		if n := k.(answerKey).name; n != "" && !keep[n] {
			answerCounts.Delete(k)
		}
		return true
	})
}

type answersCollector struct{}

func (answersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- answersDesc }

func (answersCollector) Collect(ch chan<- prometheus.Metric) {
	answerCounts.Range(func(k, v any) bool {
		key, c := k.(answerKey), v.(*answerCount)
		for _, o := range answerOutcomes {
			ch <- prometheus.MustNewConstMetric(answersDesc, prometheus.CounterValue, float64(c[o].Load()), key.server, key.name, key.pol, o.String())
		}
		return true
	})
}

// regionCounters caches region_answers_total's counters of a handler per
// server label: by policy.ID, then region index + 1 (0 for none).
type regionCounters struct {
	m sync.Map // server -> [][]prometheus.Counter
}

func (rc *regionCounters) counter(server string, regions []string, pol policy.Policy, region int) prometheus.Counter {
	v, ok := rc.m.Load(server)
	if !ok {
		cs := make([][]prometheus.Counter, policy.Count())
		for _, name := range policy.Names() {
			p, _ := policy.Lookup(name)
			if !policy.Tailors(p) {
				continue // its answers never depend on the client: no series
			}
			row := make([]prometheus.Counter, len(regions)+1)
			row[0] = regionAnswers.WithLabelValues(server, name, "none")
			for i, r := range regions {
				row[i+1] = regionAnswers.WithLabelValues(server, name, r)
			}
			cs[policy.ID(p)] = row
		}
		v, _ = rc.m.LoadOrStore(server, cs)
	}
	cs := v.([][]prometheus.Counter)
	id := policy.ID(pol)
	if id < 0 || id >= len(cs) || cs[id] == nil {
		return regionAnswers.WithLabelValues(server, pol.Name(), "none")
	}
	if region+1 < 0 || region+1 >= len(cs[id]) {
		region = -1
	}
	return cs[id][region+1]
}

// localErrorLog keeps a process out of descriptors from also flooding
// its log: one line per 10 s, the metric counts them all.
var localErrorLog = probe.NewEvery(10 * time.Second)

// pool is the process's probe pool. It lives outside any plugin instance so
// that probe state survives a CoreDNS reload.
var pool = func() *probe.Pool {
	p := probe.NewPool()
	p.OnResult = func(r probe.Result) {
		result := "success"
		switch {
		case r.Local != "":
			result = "local_error"
			probeLocalErrors.WithLabelValues(r.Local).Inc()
			if r.Local != probe.LocalShutdown && localErrorLog.Allow() {
				log.Warningf("probe of %s failed here, not at the target (%s): %v; counted as unknown, never down", r.Target.Addr, r.Local, r.Err)
			}
		case r.Err != nil:
			result = "failure"
		}
		probes.WithLabelValues(r.Target.Addr.String(), r.Check.Kind.String(), result).Inc()
		probeDuration.WithLabelValues(r.Check.Kind.String()).Observe(r.Duration.Seconds())
	}
	p.OnChange = func(t *probe.Target, from, to health.State, why string) {
		transitions.WithLabelValues(t.Addr.String(), to.String()).Inc()
		if why != "" {
			why = ": " + why
		}
		if from == health.Unknown {
			log.Infof("target %s is %s after the first probe round%s", t.Addr, to, why)
			return
		}
		log.Infof("target %s is %s, was %s (rise %d, fall %d, every %s)%s", t.Addr, to, from, t.Rise, t.Fall, t.Interval, why)
	}
	return p
}()

// verdictKey names a target of a name: "app.example.org. 192.0.2.1|checks".
// Two names may share a target under different quorum rules, so verdicts
// are per name.
// nameAddr is a name's target address.
type nameAddr struct {
	name string
	addr netip.Addr
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
