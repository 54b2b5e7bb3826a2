package healthdns

import (
	"slices"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/healthdns/healthdns/plugin/healthdns/override"
	"github.com/healthdns/healthdns/plugin/healthdns/status"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Operators' overrides sit between the verdicts and the snapshot: the
// judge's verdicts stay what the probes say, and rebuild applies the
// overrides in force on top when it builds the snapshot's targets. The
// book is the gossip node's in a cluster (replicated to every server),
// else the zones' own; with a data directory it is kept in
// overrides.json there.

var (
	targetOverride = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "target_override",
		Help:      "1 while an operator's override is in force for the target, by its state (drain, down or up); no series otherwise. target_healthy still says what the probes say.",
	}, []string{"name", "target", "state"})

	overridesActive = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "healthdns",
		Name:      "overrides",
		Help:      "Operators' overrides in force on this server, by state (drain, down or up).",
	}, []string{"state"})
)

// book is the overrides this instance answers by.
func (h *HealthDNS) book() *override.Book {
	if h.member != nil {
		return h.member.node.Overrides()
	}
	return h.vs.ov.book
}

// selectable is what an override's selector sees of t, a target of the
// name fqdn: the one place to add what selectors may pick by (a region,
// when targets carry one).
func selectable(t *targetConfig, fqdn string) override.Target {
	return override.Target{Name: fqdn, Addr: t.Probe.Addr, Owner: t.Owner, Region: t.Region}
}

// forcedTarget is a target under an override as the last rebuild saw it.
type forcedTarget struct {
	entry override.Entry
	round uint64
}

// overrideState is the zones' override bookkeeping, kept across reloads
// with the verdicts. Targets are keyed by name and address, not by
// verdict key: records' targets of many names share one verdict, but a
// selector may pick some of those names and not others.
type overrideState struct {
	book    *override.Book // without a cluster
	matcher *override.Matcher
	from    *override.Book // the book and version matcher is of
	version uint64
	forced  map[nameAddr]*forcedTarget
	history map[nameAddr][]status.Change // changes of the override in force
	round   uint64
	// began and ended count, per override, the targets it started or
	// stopped being in force for this round: one log line each.
	began, ended map[string]int
}

func newOverrideState() overrideState {
	return overrideState{book: override.NewBook(), forced: map[nameAddr]*forcedTarget{}, history: map[nameAddr][]status.Change{}}
}

// maxOverrideHistory bounds the targets whose override history is kept
// once nothing is in force for them.
const maxOverrideHistory = 1 << 16

// matcherFor returns the matcher of the overrides in force at now,
// compiled again only when the book changed or an entry expired.
// h.mu must be held.
func (h *HealthDNS) matcherFor(now time.Time) *override.Matcher {
	ov := &h.vs.ov
	b := h.book()
	v := b.Version()
	if ov.from == b && ov.version == v && (ov.matcher.Next().IsZero() || now.Before(ov.matcher.Next())) {
		return ov.matcher
	}
	es, v := b.All()
	ov.matcher, ov.from, ov.version = override.Compile(es, now), b, v
	counts := map[override.State]int{}
	for _, e := range es {
		if e.Active(now) {
			counts[e.State]++
		}
	}
	for _, st := range []override.State{override.Drain, override.Down, override.Up} {
		overridesActive.WithLabelValues(st.String()).Set(float64(counts[st]))
	}
	return ov.matcher
}

// applyOverride is what the override in force (if any) makes of a
// target's verdict, noting a new one for history and metrics; those
// that ended are found by endOverrideRound, so that a target no override
// selects costs no map lookup. h.mu must be held.
func (h *HealthDNS) applyOverride(m *override.Matcher, n *nameConfig, t *targetConfig, up bool, now time.Time) (healthy, drained bool) {
	if m == nil {
		return up, false
	}
	e, found := m.For(selectable(t, n.FQDN))
	if !found {
		return up, false
	}
	ov := &h.vs.ov
	key := nameAddr{n.FQDN, t.Probe.Addr}
	if prev := ov.forced[key]; prev != nil && prev.entry == e {
		prev.round = ov.round
	} else {
		h.noteOverride(key, prev, &e, now)
	}
	return override.Apply(e, found, up)
}

// noteOverride records that the override in force for a target changed
// from prev to e (either may be nil).
func (h *HealthDNS) noteOverride(key nameAddr, prev *forcedTarget, e *override.Entry, now time.Time) {
	ov := &h.vs.ov
	addr := key.addr.String()
	c := status.Change{Time: now.UTC(), From: status.OverrideNone, To: status.OverrideNone, Kind: "override"}
	if prev != nil {
		c.From = prev.entry.State.String()
		targetOverride.DeleteLabelValues(key.name, addr, prev.entry.State.String())
		c.Reason, c.Who, c.Selector = "ended", prev.entry.Who, prev.entry.Key()
		if !prev.entry.Until.IsZero() && !now.Before(prev.entry.Until) {
			c.Reason = "expired"
		}
		delete(ov.forced, key)
		if e == nil {
			ov.count(&ov.ended, prev.entry.Key()+" "+prev.entry.State.String()+" "+c.Reason)
		}
	}
	if e != nil {
		c.To, c.Reason, c.Who, c.Until, c.Selector = e.State.String(), e.Reason, e.Who, utcOrZero(e.Until), e.Key()
		targetOverride.WithLabelValues(key.name, addr, e.State.String()).Set(1)
		ov.forced[key] = &forcedTarget{entry: *e, round: ov.round}
		ov.count(&ov.began, e.Key()+" "+e.State.String()+" by "+orDash(e.Who)+": "+orDash(e.Reason))
	}
	hist := append(ov.history[key], c)
	if len(hist) > historyLen {
		hist = hist[len(hist)-historyLen:]
	}
	ov.history[key] = hist
}

func (ov *overrideState) count(m *map[string]int, what string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[what]++
}

// endOverrideRound ends the overrides of the targets no override selected
// this round (cleared, expired, or the target gone with its records) and
// logs what began and ended, one line per override. h.mu must be held.
func (h *HealthDNS) endOverrideRound(now time.Time) {
	ov := &h.vs.ov
	for key, f := range ov.forced {
		if f.round != ov.round {
			h.noteOverride(key, f, nil, now)
		}
	}
	h.closeOverrideRound()
}

// endOverridesOf is endOverrideRound for a round that judged only some
// names (rebuildSome): of keys, the targets those names had before it,
// it ends the overrides no override selected this round; the other
// names' targets are as the last round left them. h.mu must be held.
func (h *HealthDNS) endOverridesOf(now time.Time, keys []nameAddr) {
	ov := &h.vs.ov
	for _, key := range keys {
		if f := ov.forced[key]; f != nil && f.round != ov.round {
			h.noteOverride(key, f, nil, now)
		}
	}
	h.closeOverrideRound()
}

// closeOverrideRound logs what began and ended this round and starts the
// next: every round closes, incremental ones too, or a target renewed by
// one would pass for selected in the next full round. h.mu must be held.
func (h *HealthDNS) closeOverrideRound() {
	ov := &h.vs.ov
	// Past the bound, only the targets in force are left: amortised over
	// the targets let go, so an incremental round that lets none go costs
	// nothing however many are in force (each of which has a history).
	if len(ov.history)-len(ov.forced) > maxOverrideHistory {
		for key := range ov.history {
			if ov.forced[key] == nil {
				delete(ov.history, key)
			}
		}
	}
	for what, n := range ov.began {
		log.Infof("override %s: in force for %d targets", what, n)
	}
	for what, n := range ov.ended {
		log.Infof("override %s: ended for %d targets; their verdicts rule again", what, n)
	}
	ov.began, ov.ended = nil, nil
	ov.round++
}

// historyOf is a target's history: its verdict changes and the changes
// of the override in force for it, oldest first. h.mu must be held.
func (h *HealthDNS) historyOf(vkey string, key nameAddr) []status.Change {
	out := append([]status.Change{}, h.history[vkey]...)
	if oh := h.vs.ov.history[key]; len(oh) > 0 {
		out = append(out, oh...)
		slices.SortStableFunc(out, func(a, b status.Change) int { return a.Time.Compare(b.Time) })
	}
	return out
}

// overrideDoc is an entry as status shows it.
func overrideDoc(e override.Entry, now time.Time) *status.Override {
	return &status.Override{
		Selector: e.Key(), State: e.State.String(), Reason: e.Reason, Who: e.Who, Node: e.Node,
		Set: e.At.UTC(), Until: utcOrZero(e.Until), Active: e.Active(now),
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// overrideFiles keeps one overrides file per data directory in the
// process, so that every instance and reload writes through one.
var (
	overrideFilesMu sync.Mutex
	overrideFiles   = map[string]*overrideFile{}
)

type overrideFile struct {
	*override.File
	loaded map[*override.Book]bool // books the file was loaded into
}

func overrideFileOf(dir string) *overrideFile {
	overrideFilesMu.Lock()
	defer overrideFilesMu.Unlock()
	f := overrideFiles[dir]
	if f == nil {
		f = &overrideFile{File: override.NewFile(dir), loaded: map[*override.Book]bool{}}
		overrideFiles[dir] = f
	}
	return f
}

// persist is how this instance stores an operator's write before it is
// acknowledged: nil without a data directory.
func (h *HealthDNS) persist() func([]override.Entry, uint64) error {
	if h.cfg.dataDir == "" {
		return nil
	}
	return overrideFileOf(h.cfg.dataDir).Save
}

// loadOverrides merges the data directory's overrides into the book once
// per book and process, and, in a cluster, keeps the file up to date
// with what peers send until the instance stops.
func (h *HealthDNS) loadOverrides() {
	if h.cfg.dataDir == "" {
		return
	}
	f := overrideFileOf(h.cfg.dataDir)
	b := h.book()
	overrideFilesMu.Lock()
	first := !f.loaded[b]
	f.loaded[b] = true
	overrideFilesMu.Unlock()
	if first {
		es, err := f.Load()
		if err != nil {
			log.Errorf("overrides: %v", err)
		}
		if h.member != nil {
			h.member.node.MergeOverrides(es...)
		} else {
			b.Merge(time.Now(), es...)
		}
		if len(es) > 0 {
			log.Infof("overrides: %d loaded from %s", len(es), f.Path())
		}
	}
	if h.member == nil {
		return
	}
	changed, stop := h.member.node.SubscribeOverrides()
	save := func() {
		es, v := b.All()
		if err := f.Save(es, v); err != nil {
			log.Errorf("overrides: not stored in %s: %v (in force here and replicated; a restart before the next store gets them from peers)", f.Path(), err)
		}
	}
	save()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer stop()
		for {
			select {
			case <-h.done:
				return
			case <-changed:
				save()
			}
		}
	}()
}
