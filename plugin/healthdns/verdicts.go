package healthdns

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/override"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"
)

// rebuild turns the current observations into verdicts and a new
// snapshot. It returns the judge's next expiry (see health.Judge.Next).
//
// Most rebuilds change little: one observer saw a few targets change.
// Those rebuild only what the change touches (rebuildSome); the others
// judge every target again (rebuildAll).
func (h *HealthDNS) rebuild() time.Time { return h.rebuildAt(time.Now()) }

// rebuildAt is rebuild at now (tests move the clock).
func (h *HealthDNS) rebuildAt(now time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	names, zones := h.merger.Merge(h.recordState())
	h.noteRecordSeries(names)
	ovm := h.matcherFor(now) // operators' overrides, on top of the verdicts
	if next, ok := h.rebuildSome(now, names, zones, ovm); ok {
		return next
	}
	return h.rebuildAll(now, names, zones, ovm)
}

// rebuildAll judges every target and builds every name's answers.
func (h *HealthDNS) rebuildAll(now time.Time, names []*nameConfig, zones []*zone.Data, ovm *override.Matcher) time.Time {
	probing := h.cfg.cluster == nil || h.cfg.cluster.probe
	self := "self"
	var views []gossip.ObserverView
	voters := health.Voters{Known: 1}
	h.voters = nil
	inc := &h.inc
	inc.ok = false
	if h.member != nil {
		self = h.member.node.Name()
		voters, h.voters = h.member.voters(now)
		// The cursor first: a change that lands while the views are read
		// is listed again next time.
		_, inc.cursor, _ = h.member.node.ChangesSince(inc.cursor)
		views = peerViews(h.member.node.Views(), self)
	}
	h.observersHeard, h.observersKnown = observerCounts(views, probing, now)
	h.names = names
	if inc.names == nil || !sameNames(inc.names, names) {
		inc.index(names, h.merger.Groups(), probing)
	} else {
		// Names replaced in place left their old targets' questions
		// dead: a round skips them, but days of changes would pile up.
		inc.qlist = slices.DeleteFunc(inc.qlist, func(q *question) bool { return q.dead })
	}
	h.syncTargets(names) // nothing to do while the records' targets are the same
	inc.names, inc.zones, inc.ovm, inc.self, inc.probing = names, zones, ovm, self, probing
	// This server's probes, read once for the verdicts and the evidence.
	var ownNext time.Time
	inc.own = nil
	if probing {
		ownNext, inc.own = h.ownNow(now)
	}
	total := 0
	for _, n := range names {
		total += len(n.Targets)
	}
	// The questions in batches, so that a round over many targets does
	// not hold every observation of every target at once.
	const batch = 4096
	perQ := len(views)
	if probing {
		perQ++
	}
	qs := make([]health.Question, 0, min(batch, len(inc.qlist)))
	obs := make([]health.Observation, 0, cap(qs)*perQ)
	var changes []health.Change
	partitionMoved := false
	for i, q := range inc.qlist {
		if q.dead {
			continue
		}
		hq := health.Question{Key: q.key, Quorum: q.quorum}
		start := len(obs)
		if probing {
			obs = append(obs, inc.own[q.probeKey].observation(self, q))
		}
		for _, v := range views {
			obs = append(obs, h.peerObservation(v, q.id, q.interval))
		}
		hq.Obs = obs[start:len(obs):len(obs)]
		qs = append(qs, hq)
		if len(qs) == cap(qs) || i == len(inc.qlist)-1 {
			ch, moved := h.judge.Some(now, qs, voters)
			changes, partitionMoved = append(changes, ch...), partitionMoved || moved
			qs, obs = qs[:0], obs[:0]
		}
	}
	if len(qs) > 0 || len(inc.qlist) == 0 {
		// The last batch when the list ends with a dead question (none
		// after the compaction above, but a round must not hang on it),
		// or the voters' round when there is nothing to ask.
		ch, moved := h.judge.Some(now, qs, voters)
		changes, partitionMoved = append(changes, ch...), partitionMoved || moved
	}
	h.judge.Keep(func(key string) bool { return inc.qs[key] != nil })
	next := h.peerExpiry(views, voters, now)
	next = earliest(next, ownNext)
	h.judge.SetNext(next)
	h.afterRound(now, changes, partitionMoved)
	inc.byState = [3]int{}
	inc.counts = slices.Grow(inc.counts[:0], len(names))[:len(names)]
	built := make([]snapshot.Name, 0, len(names))
	targets := make([]snapshot.Target, 0, total) // one backing array for all
	for ni, n := range names {
		start := len(targets)
		targets = append(targets, make([]snapshot.Target, len(n.Targets))...)
		sn := h.nameInput(n)
		sn.Targets = targets[start:len(targets):len(targets)]
		inc.counts[ni] = h.judgeTargets(ovm, n, inc.tq[ni], sn.Targets, now)
		for i, c := range inc.counts[ni] {
			inc.byState[i] += int(c)
		}
		built = append(built, sn)
	}
	h.endOverrideRound(now)
	prev := h.snap.Load()
	s := snapshot.Build(prev, zones, built)
	until := h.fresh.until(now, h.evidenceOf(views, probing, inc.own))
	states := make(map[string]string, len(built))
	for i, sn := range built {
		states[sn.FQDN] = nameState(sn, s.Dynamic(sn.FQDN), int(inc.counts[i][health.Down]))
	}
	h.exportNameStates(states)
	clear(inc.again)
	if s != prev {
		for ni, n := range names {
			if n.Fallback == snapshot.FallbackLastGood && h.noteLastGood(s.Dynamic(n.FQDN)) {
				inc.again[ni] = true
			}
		}
	}
	h.snap.Store(s.Until(until, prev))
	inc.views = viewKeys(views)
	inc.fresh = h.viewFreshness(inc.fresh[:0], views, inc.intervals, now)
	inc.rounds = h.judge.Rounds()
	inc.ok = true
	return earliest(h.judge.Next(), ovm.Next())
}

// nameInput is what the snapshot builder needs of n, but its targets.
func (h *HealthDNS) nameInput(n *nameConfig) snapshot.Name {
	return snapshot.Name{
		FQDN: n.FQDN, TTL: n.TTL, Policy: n.Policy, MaxAnswers: n.MaxAnswers, MinHealthy: n.MinHealthy,
		Fallback: n.Fallback, Fixed: n.Fixed, LastGood: h.lastGood[n.FQDN], Geo: n.Geo, StickyBits: n.StickyBits,
	}
}

// judgeTargets fills out (one per target of n) from the verdicts and the
// overrides, and counts them by verdict.
func (h *HealthDNS) judgeTargets(ovm *override.Matcher, n *nameConfig, qs []*question, out []snapshot.Target, now time.Time) (counts [3]int32) {
	for i := range n.Targets {
		t := &n.Targets[i]
		v := h.judge.Verdict(qs[i].key).State
		counts[v]++
		up := v == health.Up
		healthy, drained := h.applyOverride(ovm, n, t, up, now)
		out[i] = snapshot.Target{Addr: t.Probe.Addr, Healthy: healthy, Tier: t.Tier, Weight: t.Weight, Region: t.Region, Drained: drained}
	}
	return counts
}

// afterRound records what a judge round changed: history, partition
// logs, the voter metrics and verdict logs.
func (h *HealthDNS) afterRound(now time.Time, changes []health.Change, partitionMoved bool) {
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
}

// noteLastGood keeps the healthy set of a fallback-last-good name's new
// answer, and says whether it changed (the name's input changes with it).
func (h *HealthDNS) noteLastGood(d *snapshot.Dynamic) bool {
	if d == nil {
		return false
	}
	var good []netip.Addr
	if d.A.Outcome == snapshot.Healthy {
		good = d.A.Addrs()
	}
	if d.AAAA.Outcome == snapshot.Healthy {
		good = append(good[:len(good):len(good)], d.AAAA.Addrs()...)
	}
	if len(good) > 0 && !slices.Equal(h.lastGood[d.Name], good) {
		h.lastGood[d.Name] = slices.Clone(good)
		return true
	}
	return false
}

// peerViews are the views of the other observers.
func peerViews(all []gossip.ObserverView, self string) []gossip.ObserverView {
	views := all[:0]
	for _, v := range all {
		if v.Node != self { // our own probes come straight from the pool
			views = append(views, v)
		}
	}
	return views
}

// observerCounts counts the observers for status: those alive and not
// silent, and those that did not leave.
func observerCounts(views []gossip.ObserverView, probing bool, now time.Time) (heard, known int) {
	if probing {
		heard, known = 1, 1
	}
	for _, v := range views {
		if v.State == gossip.MemberLeft {
			continue
		}
		known++
		if v.Alive && !now.After(v.Heard.Add(v.Silence)) {
			heard++
		}
	}
	return heard, known
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
	nameCounts     map[string]int    // names by state
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
