package healthdns

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
)

// rebuild turns the current observations into verdicts and a new
// snapshot. It returns the judge's next expiry (see health.Judge.Next).
func (h *HealthDNS) rebuild() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	probing := h.cfg.cluster == nil || h.cfg.cluster.probe
	self := "self"
	var views []gossip.ObserverView
	voters := health.Voters{Known: 1}
	h.voters = nil
	obsHeard, obsKnown := 0, 0
	if probing {
		obsHeard, obsKnown = 1, 1
	}
	if h.member != nil {
		self = h.member.node.Name()
		voters, h.voters = h.member.voters(now)
		for _, v := range h.member.node.Views() {
			if v.Node == self {
				continue // our own probes come straight from the pool
			}
			views = append(views, v)
			if v.State == gossip.MemberLeft {
				continue
			}
			obsKnown++
			if v.Alive && !now.After(v.Heard.Add(v.Silence)) {
				obsHeard++
			}
		}
	}
	names, zones := h.merger.Merge(h.recordState())
	h.names = names
	h.syncTargets(names)
	total, asked := 0, 0
	for _, n := range names {
		total += len(n.Targets)
		for _, t := range n.Targets {
			if !t.Shared {
				asked++
			}
		}
	}
	groups := h.merger.Groups()
	asked += len(groups)
	qs := make([]health.Question, 0, asked)
	perQ := len(views)
	if probing {
		perQ++
	}
	obs := make([]health.Observation, 0, asked*perQ) // one backing array for all
	ask := func(key, probeKey string, id gossip.TargetID, quorum health.Quorum, interval, timeout time.Duration) {
		q := health.Question{Key: key, Quorum: quorum}
		start := len(obs)
		if probing {
			obs = append(obs, h.ownObservation(self, probeKey, interval, timeout))
		}
		for _, v := range views {
			obs = append(obs, h.peerObservation(v, id, interval))
		}
		q.Obs = obs[start:len(obs):len(obs)]
		qs = append(qs, q)
	}
	for _, n := range names {
		for _, t := range n.Targets {
			if !t.Shared {
				ask(verdictKey(n, t), t.ProbeKey(), t.ID, n.Quorum, t.Probe.Interval, t.Probe.Timeout)
			}
		}
	}
	for _, g := range groups {
		ask(g.VKey, g.Key, g.ID, g.Quorum, g.Interval, g.Timeout)
	}
	changes, partitionMoved := h.judge.Round(now, qs, voters)
	h.observersHeard, h.observersKnown = obsHeard, obsKnown
	h.recordHistory(changes)
	st := h.judge.Standing()
	if partitionMoved {
		h.vs.partitionSince = now.UTC()
		if st.Partitioned {
			log.Warningf("partition entered: hearing %d of %d voters (need %d); keeping the last verdicts", st.Heard, st.Known, st.Needed)
		} else {
			log.Infof("partition left: hearing %d of %d voters (need %d); verdicts follow the observers again", st.Heard, st.Known, st.Needed)
		}
	}
	h.exportVoters(st)
	if h.member != nil {
		for _, c := range changes {
			if c.From.State != health.Unknown {
				name, addr, _ := strings.Cut(c.Key, " ")
				addr, _, _ = strings.Cut(addr, "|")
				log.Infof("verdict %s %s: %s -> %s: %s", name, addr, c.From.State, c.To.State, c.To.Reason)
			}
		}
	}
	byState := map[health.State]int{}
	ovm := h.matcherFor(now)        // operators' overrides, on top of the verdicts
	down := make([]int, len(names)) // targets down, by name
	built := make([]snapshot.Name, 0, len(names))
	targets := make([]snapshot.Target, 0, total) // one backing array for all
	for ni, n := range names {
		sn := snapshot.Name{
			FQDN: n.FQDN, TTL: n.TTL, Policy: n.Policy, MaxAnswers: n.MaxAnswers, MinHealthy: n.MinHealthy,
			Fallback: n.Fallback, Fixed: n.Fixed, LastGood: h.lastGood[n.FQDN], Geo: n.Geo, StickyBits: n.StickyBits,
		}
		start := len(targets)
		for i := range n.Targets {
			t := &n.Targets[i]
			v := h.judge.Verdict(verdictKey(n, *t)).State
			byState[v]++
			if v == health.Down {
				down[ni]++
			}
			up := v == health.Up
			if set := int8(1) + int8(b2f(up)); t.Set != set {
				if t.Gauge == nil {
					t.Gauge = h.targetGauge(n.FQDN, t.Probe.Addr)
				}
				t.Gauge.Set(b2f(up))
				t.Set = set
			}
			healthy, drained := h.applyOverride(ovm, n, t, up, now)
			targets = append(targets, snapshot.Target{Addr: t.Probe.Addr, Healthy: healthy, Tier: t.Tier, Weight: t.Weight, Region: t.Region, Drained: drained})
		}
		sn.Targets = targets[start:len(targets):len(targets)]
		built = append(built, sn)
	}
	h.endOverrideRound(now)
	for _, st := range []health.State{health.Up, health.Down, health.Unknown} {
		verdicts.WithLabelValues(st.String()).Set(float64(byState[st]))
	}
	prev := h.snap.Load()
	s := snapshot.Build(prev, zones, built)
	until := h.fresh.until(now, h.evidenceOf(names, views, probing))
	states := make(map[string]string, len(built))
	for i, sn := range built {
		states[sn.FQDN] = nameState(sn, s.Dynamic(sn.FQDN), down[i])
	}
	h.exportNameStates(states)
	if s == prev {
		// Nothing to answer differently, but the deadline is renewed (on
		// a copy: a published snapshot is never written).
		h.snap.Store(s.Until(until, prev))
		return earliest(h.judge.Next(), ovm.Next())
	}
	// The last healthy set, for the names that fall back to it.
	lastGood := map[string]bool{}
	for _, n := range names {
		if n.Fallback == snapshot.FallbackLastGood {
			lastGood[n.FQDN] = true
		}
	}
	s.EachName(func(d *snapshot.Dynamic) {
		if !lastGood[d.Name] {
			return
		}
		var good []netip.Addr
		if d.A.Outcome == snapshot.Healthy {
			good = d.A.Addrs
		}
		if d.AAAA.Outcome == snapshot.Healthy {
			good = append(good[:len(good):len(good)], d.AAAA.Addrs...)
		}
		if len(good) > 0 && !slices.Equal(h.lastGood[d.Name], good) {
			h.lastGood[d.Name] = slices.Clone(good)
		}
	})
	h.snap.Store(s.Until(until, prev))
	return earliest(h.judge.Next(), ovm.Next())
}

// earliest is the earlier of two times, zero meaning never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// ownObservation is this server's own probe of t. It counts while the
// probe runs on schedule: its last round within two intervals and a
// timeout.
func (h *HealthDNS) ownObservation(self, probeKey string, interval, timeout time.Duration) health.Observation {
	ps := h.pool.Status(probeKey)
	return health.Observation{Observer: self, State: ps.State, At: ps.Checked, Until: ps.Checked.Add(2*interval + timeout)}
}

// peerObservation is what another observer's view says of t. It stops
// counting as soon as the observer is silent past its silence window
// (dead, cut off, paused), and once its view is older than t's own check
// timing allows: the view is dated by when the observer's probes last ran
// on schedule, when t's result was at most an interval and a timeout old,
// and it counts for one more interval and the gossip lag after (its
// silence window). With stale set, the view counts for stale instead.
func (h *HealthDNS) peerObservation(v gossip.ObserverView, id gossip.TargetID, interval time.Duration) health.Observation {
	o := v.Observation(id)
	until := v.LastHeard.Add(interval + v.Silence)
	if cc := h.cfg.cluster; cc != nil && cc.stale > 0 {
		until = v.LastHeard.Add(cc.stale)
	}
	if silent := v.Heard.Add(v.Silence); silent.Before(until) {
		until = silent
	}
	o.Until = until
	return o
}

// exportVoters sets the partition and voter metrics.
func (h *HealthDNS) exportVoters(st health.Standing) {
	partitioned.Set(b2f(st.Partitioned))
	votersHeard.Set(float64(st.Heard))
	votersKnown.Set(float64(st.Known))
	votersNeeded.Set(float64(st.Needed))
	pendingVerdicts.Set(float64(h.judge.Pendings()))
	if h.member == nil {
		return
	}
	roles := map[string]string{}
	for _, v := range h.voters {
		roles[v.name] = v.role
		voterHeard.WithLabelValues(v.name, v.role).Set(b2f(v.state == "self" || v.state == "heard"))
	}
	for k, role := range h.vs.exported {
		if roles[k] != role { // forgotten, or its role changed
			voterHeard.DeleteLabelValues(k, role)
			delete(h.vs.exported, k)
		}
	}
	for _, v := range h.voters {
		h.vs.exported[v.name] = v.role
	}
}

// verdictState is what a server block's verdicts carry from one instance
// to the next across reloads.
type verdictState struct {
	mu             sync.Mutex
	judge          *health.Judge
	history        map[string][]status.Change
	lastGood       map[string][]netip.Addr
	partitionSince time.Time
	exported       map[string]string // voter -> role of voter_heard's series
	ov             overrideState
	nameStates     map[string]string // name -> its state (nameState), as name_state exports it
}

var (
	verdictStatesMu sync.Mutex
	verdictStates   = map[string]*verdictState{}
)

// verdictStateOf returns the verdict state of a set of zones, kept for the
// life of the process (one per distinct set of zones ever configured).
func verdictStateOf(origins []string) *verdictState {
	key := strings.Join(origins, " ")
	verdictStatesMu.Lock()
	defer verdictStatesMu.Unlock()
	vs := verdictStates[key]
	if vs == nil {
		vs = &verdictState{judge: health.NewJudge(), history: map[string][]status.Change{}, lastGood: map[string][]netip.Addr{}, exported: map[string]string{}}
		vs.ov = newOverrideState()
		verdictStates[key] = vs
	}
	return vs
}

func verdictKey(n *nameConfig, t targetConfig) string {
	if t.VKey != "" {
		return t.VKey
	}
	return n.FQDN + " " + t.ProbeKey()
}
