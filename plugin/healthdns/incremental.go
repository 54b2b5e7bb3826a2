package healthdns

import (
	"slices"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/override"
	"github.com/healthdns/healthdns/plugin/healthdns/recordmerge"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"
)

// incremental is what the last full rebuild (rebuildAll) left for the
// rebuilds after it that change a few targets (rebuildSome): which
// questions a target's observations feed, which names a verdict feeds,
// and the names' last built input.
//
// A verdict depends on each observation's state and on whether it is
// fresh. States changes come listed by gossip (Node.ChangesSince) and by
// comparing this server's probe results with the last ones; zone data
// that changed (records' TXT records) only builds the zones again.
// Freshness of
// another observer's observations changes for all its targets of one
// check interval at once: when it does (an observer falls silent, dies,
// comes back), or when the observers, the names, the zones or the
// overrides change, the next rebuild judges everything again.
type incremental struct {
	ok      bool
	names   []*nameConfig
	zones   []*zone.Data
	ovm     *override.Matcher
	self    string
	probing bool
	cursor  uint64 // of the gossip change feed
	rounds  uint64 // the judge's full rounds: another instance's (a reload) means start again

	qs        map[string]*question // by verdict key
	qlist     []*question          // the same, in the order of names then groups
	tq        [][]*question        // by name, then target: its question
	groups    []recordmerge.Group  // the Merger's, as indexed
	byID      map[gossip.TargetID][]*question
	byProbe   map[string][]*question // this server's probes, by probe key
	intervals []time.Duration        // the check intervals of the questions

	views []viewKey // the other observers, as the last rebuild saw them
	fresh []bool    // by view, then interval: its observations count
	own   map[string]ownRead

	counts  [][3]int32 // by name: targets by verdict state
	byState [3]int
	again   map[int]bool // names to build again next time (last good moved)
}

// question is one verdict: the targets it decides and their names.
type question struct {
	key, probeKey     string
	id                gossip.TargetID
	quorum            health.Quorum
	interval, timeout time.Duration
	names             []int32 // indexes in names of the names it decides targets of
	group             bool    // a group's (recordmerge.Group): kept while the groups are
	dead              bool    // no longer asked: its name changed (reindex)
}

type viewKey struct {
	node  string
	alive bool
	left  bool
}

type ownSeen struct {
	state health.State
	fresh bool
}

// ownRead is one read of one of this server's probes. A rebuild reads
// each probe once and rests its verdicts and its freshness evidence on
// that read: a round that finishes in between must not make the evidence
// newer than the verdicts (a resumed server would renew its deadline on
// verdicts from before the pause).
type ownRead struct {
	seen    ownSeen // compared between rebuilds: a newer check alone changes nothing
	checked time.Time
}

// observation is the read as the judge counts it.
func (r ownRead) observation(self string, q *question) health.Observation {
	return health.Observation{Observer: self, State: r.seen.state, At: r.checked, Until: r.checked.Add(2*q.interval + q.timeout)}
}

// index maps observations to questions and questions to names.
func (inc *incremental) index(names []*nameConfig, groups []recordmerge.Group, probing bool) {
	groupOf := make(map[string]recordmerge.Group, len(groups))
	for _, g := range groups {
		groupOf[g.VKey] = g
	}
	inc.qs = map[string]*question{}
	inc.byID = map[gossip.TargetID][]*question{}
	inc.byProbe = map[string][]*question{}
	inc.again = map[int]bool{}
	inc.intervals = inc.intervals[:0]
	inc.qlist = inc.qlist[:0]
	inc.tq = make([][]*question, len(names))
	inc.groups = groups
	add := func(key, probeKey string, id gossip.TargetID, quorum health.Quorum, interval, timeout time.Duration) *question {
		q := inc.qs[key]
		if q == nil {
			q = &question{key: key, probeKey: probeKey, id: id, quorum: quorum, interval: interval, timeout: timeout}
			inc.qs[key] = q
			inc.qlist = append(inc.qlist, q)
			inc.byID[id] = append(inc.byID[id], q)
			if probing {
				inc.byProbe[probeKey] = append(inc.byProbe[probeKey], q)
			}
			if !slices.Contains(inc.intervals, interval) {
				inc.intervals = append(inc.intervals, interval)
			}
		}
		return q
	}
	for ni, n := range names {
		inc.tq[ni] = make([]*question, len(n.Targets))
		for i, t := range n.Targets {
			q := add(verdictKey(n, t), t.ProbeKey(), t.ID, n.Quorum, t.Probe.Interval, t.Probe.Timeout)
			if g, ok := groupOf[q.key]; ok { // a shared target: the group's timing
				q.interval, q.timeout = g.Interval, g.Timeout
			}
			inc.tq[ni][i] = q
			if k := len(q.names); k == 0 || q.names[k-1] != int32(ni) {
				q.names = append(q.names, int32(ni))
			}
		}
	}
	for _, g := range groups {
		add(g.VKey, g.Key, g.ID, g.Quorum, g.Interval, g.Timeout).group = true
	}
}

// reindex points the questions at name ni's new targets (n replaced the
// name in place: same FQDN, other targets). It returns the name's
// questions, to ask, and the keys no name asks any more, to forget.
func (inc *incremental) reindex(ni int, n *nameConfig) (asked []*question, gone []string) {
	for _, q := range inc.tq[ni] {
		q.names = slices.DeleteFunc(q.names, func(i int32) bool { return i == int32(ni) })
		if len(q.names) > 0 || q.group || q.dead {
			continue
		}
		q.dead = true
		delete(inc.qs, q.key)
		inc.byID[q.id] = slices.DeleteFunc(inc.byID[q.id], func(o *question) bool { return o == q })
		if len(inc.byID[q.id]) == 0 {
			delete(inc.byID, q.id)
		}
		if ps, ok := inc.byProbe[q.probeKey]; ok {
			if ps = slices.DeleteFunc(ps, func(o *question) bool { return o == q }); len(ps) == 0 {
				delete(inc.byProbe, q.probeKey)
			} else {
				inc.byProbe[q.probeKey] = ps
			}
		}
		gone = append(gone, q.key)
	}
	tq := make([]*question, len(n.Targets))
	for i, t := range n.Targets {
		key := verdictKey(n, t)
		q := inc.qs[key]
		if q == nil {
			q = &question{key: key, probeKey: t.ProbeKey(), id: t.ID, quorum: n.Quorum, interval: t.Probe.Interval, timeout: t.Probe.Timeout}
			inc.qs[key] = q
			inc.qlist = append(inc.qlist, q)
			inc.byID[q.id] = append(inc.byID[q.id], q)
			if inc.probing {
				inc.byProbe[q.probeKey] = append(inc.byProbe[q.probeKey], q)
			}
			if !slices.Contains(inc.intervals, q.interval) {
				inc.intervals = append(inc.intervals, q.interval)
			}
		}
		if !slices.Contains(q.names, int32(ni)) {
			q.names = append(q.names, int32(ni))
		}
		tq[i] = q
		asked = append(asked, q)
	}
	inc.tq[ni] = tq
	// Forgotten keys may come back under a new question.
	gone = slices.DeleteFunc(gone, func(k string) bool { return inc.qs[k] != nil })
	return asked, gone
}

// replaced lists the names that a Merge replaced in place (the same FQDN
// at the same index, other content); ok is false when the names differ
// otherwise (added, removed, moved), or the verdict groups changed, or so
// many were replaced that judging everything is as cheap.
func (inc *incremental) replaced(names []*nameConfig, groups []recordmerge.Group) (idx []int, ok bool) {
	if len(names) != len(inc.names) || len(groups) != len(inc.groups) || (len(groups) > 0 && &groups[0] != &inc.groups[0]) {
		return nil, false
	}
	for i, n := range names {
		if n == inc.names[i] {
			continue
		}
		if n.FQDN != inc.names[i].FQDN || len(idx) > 64+len(names)/16 {
			return nil, false
		}
		idx = append(idx, i)
	}
	return idx, true
}

func sameNames(a, b []*nameConfig) bool { return slices.Equal(a, b) }

func sameZones(a, b []*zone.Data) bool { return slices.Equal(a, b) }

func viewKeys(views []gossip.ObserverView) []viewKey {
	out := make([]viewKey, len(views))
	for i, v := range views {
		out[i] = viewKey{node: v.Node, alive: v.Alive, left: v.State == gossip.MemberLeft}
	}
	return out
}

// peerUntil is when v's observations of a target checked every interval
// stop counting (see peerObservation).
func (h *HealthDNS) peerUntil(v gossip.ObserverView, interval time.Duration) time.Time {
	until := v.LastHeard.Add(interval + v.Silence)
	if cc := h.cfg.cluster; cc != nil && cc.stale > 0 {
		until = v.LastHeard.Add(cc.stale)
	}
	if silent := v.Heard.Add(v.Silence); silent.Before(until) {
		until = silent
	}
	return until
}

// viewFreshness appends, for every view and interval, whether the view's
// observations count at now.
func (h *HealthDNS) viewFreshness(out []bool, views []gossip.ObserverView, intervals []time.Duration, now time.Time) []bool {
	for _, v := range views {
		for _, iv := range intervals {
			out = append(out, !now.After(h.peerUntil(v, iv)))
		}
	}
	return out
}

// ownNow is what this server's probes say now, for each probe key of
// the names, and the soonest time a counted result of theirs expires.
func (h *HealthDNS) ownNow(now time.Time) (next time.Time, own map[string]ownRead) {
	inc := &h.inc
	own = make(map[string]ownRead, len(inc.byProbe))
	for k, qs := range inc.byProbe {
		next = h.readOwn(own, k, qs[0], now, next)
	}
	return next, own
}

// readOwn reads this server's probe k (of q's timing) into own, and
// returns next made sooner by when its result stops counting.
func (h *HealthDNS) readOwn(own map[string]ownRead, k string, q *question, now, next time.Time) time.Time {
	ps := h.pool.Status(k)
	until := ps.Checked.Add(2*q.interval + q.timeout)
	seen := ownSeen{state: ps.State, fresh: !now.After(until)}
	own[k] = ownRead{seen: seen, checked: ps.Checked}
	if ps.State != health.Unknown && seen.fresh {
		next = soonest(next, until, now)
	}
	return next
}

// peerExpiry is the soonest time after now at which a live observer's
// observations or a voter stop counting, with no news.
func (h *HealthDNS) peerExpiry(views []gossip.ObserverView, voters health.Voters, now time.Time) (next time.Time) {
	for _, v := range views {
		if !v.Alive {
			continue
		}
		for _, iv := range h.inc.intervals {
			next = soonest(next, h.peerUntil(v, iv), now)
		}
	}
	for _, o := range voters.Others {
		next = soonest(next, o.Until, now)
	}
	return next
}

// rebuildSome is rebuild when only some observations changed since the
// last rebuild; ok is false (and nothing done) when it cannot tell what
// changed, for rebuildAll. It costs what changed, plus the observers and
// this server's own probes.
func (h *HealthDNS) rebuildSome(now time.Time, names []*nameConfig, zones []*zone.Data, ovm *override.Matcher) (next time.Time, ok bool) {
	inc := &h.inc
	switch {
	case !inc.ok:
		return fullRebuild("first")
	case ovm != inc.ovm:
		return fullRebuild("overrides")
	case h.judge.Rounds() != inc.rounds:
		return fullRebuild("judge_round")
	}
	renamed, ok := inc.replaced(names, h.merger.Groups())
	if !ok {
		return fullRebuild("names")
	}
	dirty := map[*question]bool{}
	var ids []gossip.TargetID
	var own map[string]ownRead
	// This server's probes: what changed, and when the next counted
	// result expires.
	if inc.probing {
		next, own = h.ownNow(now)
		for k, r := range own {
			if r.seen != inc.own[k].seen {
				for _, q := range inc.byProbe[k] {
					dirty[q] = true
				}
			}
		}
	}
	var views []gossip.ObserverView
	voters := health.Voters{Known: 1}
	var vstates []voterState
	var cursor uint64
	if h.member != nil {
		var all bool
		ids, cursor, all = h.member.node.ChangesSince(inc.cursor)
		if all {
			return fullRebuild("observations")
		}
		for q := range dirty {
			ids = append(ids, q.id)
		}
		for _, ni := range renamed {
			for _, t := range names[ni].Targets {
				ids = append(ids, t.ID)
			}
		}
		pending := h.judge.PendingKeys(nil)
		for _, k := range pending {
			if q := inc.qs[k]; q != nil {
				ids = append(ids, q.id)
			}
		}
		views = peerViews(h.member.node.ViewsOf(ids), inc.self)
		if !slices.Equal(viewKeys(views), inc.views) {
			return fullRebuild("observers")
		}
		fresh := h.viewFreshness(make([]bool, 0, len(inc.fresh)), views, inc.intervals, now)
		if !slices.Equal(fresh, inc.fresh) {
			return fullRebuild("freshness")
		}
		voters, vstates = h.member.voters(now)
		for _, id := range ids {
			for _, q := range inc.byID[id] {
				dirty[q] = true
			}
		}
		for _, k := range pending {
			if q := inc.qs[k]; q != nil {
				dirty[q] = true
			}
		}
		next = earliest(next, h.peerExpiry(views, voters, now))
	} else {
		for _, k := range h.judge.PendingKeys(nil) {
			if q := inc.qs[k]; q != nil {
				dirty[q] = true
			}
		}
	}
	// From here on it commits.
	inc.cursor = cursor
	var overridden []nameAddr // the replaced names' old targets: their overrides may end
	if len(renamed) > 0 {
		var gone []string
		for _, ni := range renamed {
			if len(h.vs.ov.forced) > 0 {
				old := inc.names[ni]
				for i := range old.Targets {
					overridden = append(overridden, nameAddr{old.FQDN, old.Targets[i].Probe.Addr})
				}
			}
			asked, g := inc.reindex(ni, names[ni])
			for _, q := range asked {
				dirty[q] = true
				if _, ok := own[q.probeKey]; inc.probing && !ok {
					// A probe the names did not have when own was
					// read: the pool may know it (a target back within
					// its grace), and a full rebuild would count that.
					next = h.readOwn(own, q.probeKey, q, now, next)
				}
			}
			gone = append(gone, g...)
			inc.again[ni] = true // built below, from its new targets
		}
		h.judge.Forget(gone...)
		// A question a change or a pending key made dirty may have died
		// with its name's old targets: asking it would bring back the
		// verdict just forgotten, for a key no name has.
		for q := range dirty {
			if q.dead {
				delete(dirty, q)
			}
		}
		h.syncTargets(names)
	}
	h.names, inc.names = names, names
	if own != nil {
		inc.own = own
	}
	h.voters = vstates
	h.observersHeard, h.observersKnown = observerCounts(views, inc.probing, now)
	qs := make([]health.Question, 0, len(dirty))
	for q := range dirty {
		hq := health.Question{Key: q.key, Quorum: q.quorum}
		if inc.probing {
			hq.Obs = append(hq.Obs, inc.own[q.probeKey].observation(inc.self, q))
		}
		for _, v := range views {
			hq.Obs = append(hq.Obs, h.peerObservation(v, q.id, q.interval))
		}
		qs = append(qs, hq)
	}
	changes, partitionMoved := h.judge.Some(now, qs, voters)
	h.judge.SetNext(next)
	h.afterRound(now, changes, partitionMoved)
	touched := map[int]bool{}
	for _, c := range changes {
		for _, ni := range inc.qs[c.Key].names {
			touched[int(ni)] = true
		}
	}
	for ni := range inc.again {
		touched[ni] = true
	}
	clear(inc.again)
	changed := make([]snapshot.Name, 0, len(touched))
	builtOf := make(map[int]int, len(touched)) // name index to its index in changed
	for ni := range touched {
		n := names[ni]
		sn := h.nameInput(n)
		// A fresh array: the snapshot keeps the inputs it built from
		// (the last build's answers of untouched names say what they
		// were built from, see inputs), never to be written.
		sn.Targets = make([]snapshot.Target, len(n.Targets))
		counts := h.judgeTargets(ovm, n, inc.tq[ni], sn.Targets, now)
		for i := range counts {
			inc.byState[i] += int(counts[i] - inc.counts[ni][i])
		}
		inc.counts[ni] = counts
		builtOf[ni] = len(changed)
		changed = append(changed, sn)
	}
	h.endOverridesOf(now, overridden)
	prev := h.snap.Load()
	var s *snapshot.Snapshot
	s, ok = prev, true
	if !sameZones(inc.zones, zones) {
		// Records' static data changed (a TXT record, say): patch the
		// names that changed into the zones, or build them again.
		s, ok = snapshot.Rezone(prev, zones)
		inc.zones = zones
	}
	if ok {
		s, ok = snapshot.Update(s, changed)
	}
	if !ok {
		s = snapshot.Build(prev, zones, h.inputs(prev, ovm, names, changed, builtOf, now))
	}
	until := h.fresh.until(now, h.evidenceOf(views, inc.probing, inc.own))
	if len(touched) > 0 {
		states := make(map[string]string, len(touched))
		for ni := range touched {
			sn := changed[builtOf[ni]]
			states[sn.FQDN] = nameState(sn, s.Dynamic(sn.FQDN), int(inc.counts[ni][health.Down]))
			if names[ni].Fallback == snapshot.FallbackLastGood && h.noteLastGood(s.Dynamic(sn.FQDN)) {
				inc.again[ni] = true
			}
		}
		h.exportSomeNameStates(states)
	}
	h.snap.Store(s.Until(until, prev))
	rebuilds.WithLabelValues("incremental").Inc()
	return earliest(next, ovm.Next()), true
}

// fullRebuild counts a rebuild that has to judge every target, and why:
// operators (and the benches) see what makes rebuilds cost everything.
func fullRebuild(reason string) (time.Time, bool) {
	rebuilds.WithLabelValues(reason).Inc()
	return time.Time{}, false
}

// inputs is the snapshot input of every name: changed's for the names
// built again (builtOf: by name index), what prev's answer of a name was
// built from for the others (the input the last rebuild gave it, or one
// equal to it), judged again for a name prev has no answer of. So the
// server keeps one copy of every name's input, the snapshot's.
func (h *HealthDNS) inputs(prev *snapshot.Snapshot, ovm *override.Matcher, names []*nameConfig, changed []snapshot.Name, builtOf map[int]int, now time.Time) []snapshot.Name {
	out := make([]snapshot.Name, len(names))
	for ni, n := range names {
		if i, ok := builtOf[ni]; ok {
			out[ni] = changed[i]
			continue
		}
		if d := prev.Dynamic(n.FQDN); d != nil {
			out[ni] = d.Input()
			continue
		}
		sn := h.nameInput(n) // in no zone of prev: Build ignores it unless zones moved
		sn.Targets = make([]snapshot.Target, len(n.Targets))
		h.judgeTargets(ovm, n, h.inc.tq[ni], sn.Targets, now)
		out[ni] = sn
	}
	return out
}

// soonest is the earlier of next and t, counting t only if after now;
// zero next means none yet.
func soonest(next, t, now time.Time) time.Time {
	if t.After(now) && (next.IsZero() || t.Before(next)) {
		return t
	}
	return next
}
