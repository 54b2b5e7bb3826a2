package healthdns

import (
	"net/netip"
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

// forcedTarget is a target under an override as the last rebuild saw it.
type forcedTarget struct {
	name  string
	addr  netip.Addr
	entry override.Entry
	round uint64
}

// overrideState is the zones' override bookkeeping, kept across reloads
// with the verdicts.
type overrideState struct {
	book    *override.Book // without a cluster
	matcher *override.Matcher
	from    *override.Book // the book and version matcher is of
	version uint64
	forced  map[string]*forcedTarget // by verdict key
	round   uint64
	exports map[override.State]bool
}

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
// target's verdict, noting a change of it for history and metrics.
// h.mu must be held.
func (h *HealthDNS) applyOverride(m *override.Matcher, n *nameConfig, t *targetConfig, up bool, now time.Time) (healthy, drained bool) {
	ov := &h.vs.ov
	if m == nil && len(ov.forced) == 0 {
		return up, false
	}
	key, fqdn := verdictKey(n, *t), n.fqdn
	e, found := m.For(override.Target{Name: fqdn, Addr: t.probe.Addr, Owner: t.owner, Region: t.region})
	prev := ov.forced[key]
	switch {
	case found && prev != nil && prev.entry == e:
		prev.round = ov.round
	case found:
		h.noteOverride(key, fqdn, t.probe.Addr, prev, &e, now)
	case prev != nil:
		h.noteOverride(key, fqdn, t.probe.Addr, prev, nil, now)
	}
	return override.Apply(e, found, up)
}

// noteOverride records that the override in force for a target changed
// from prev to e (either may be nil).
func (h *HealthDNS) noteOverride(key, fqdn string, addr netip.Addr, prev *forcedTarget, e *override.Entry, now time.Time) {
	ov := &h.vs.ov
	c := status.Change{Time: now.UTC(), From: status.OverrideNone, To: status.OverrideNone, Kind: "override"}
	if prev != nil {
		c.From = prev.entry.State.String()
		targetOverride.DeleteLabelValues(fqdn, addr.String(), prev.entry.State.String())
		c.Reason, c.Who, c.Selector = "ended", prev.entry.Who, prev.entry.Key()
		if !prev.entry.Until.IsZero() && !now.Before(prev.entry.Until) {
			c.Reason = "expired"
		}
		delete(ov.forced, key)
	}
	if e != nil {
		c.To, c.Reason, c.Who, c.Until, c.Selector = e.State.String(), e.Reason, e.Who, e.Until.UTC(), e.Key()
		if e.Until.IsZero() {
			c.Until = time.Time{}
		}
		targetOverride.WithLabelValues(fqdn, addr.String(), e.State.String()).Set(1)
		ov.forced[key] = &forcedTarget{name: fqdn, addr: addr, entry: *e, round: ov.round}
		log.Infof("override %s %s: %s (%s by %s): %s", fqdn, addr, e.State, e.Key(), orDash(e.Who), orDash(e.Reason))
	} else if prev != nil {
		log.Infof("override %s %s: %s %s; the verdict rules again", fqdn, addr, prev.entry.State, c.Reason)
	}
	hist := append(h.history[key], c)
	if len(hist) > historyLen {
		hist = hist[len(hist)-historyLen:]
	}
	h.history[key] = hist
}

// endOverrideRound forgets the overrides of targets that are gone (their
// records removed). h.mu must be held.
func (h *HealthDNS) endOverrideRound() {
	ov := &h.vs.ov
	for key, f := range ov.forced {
		if f.round != ov.round {
			targetOverride.DeleteLabelValues(f.name, f.addr.String(), f.entry.State.String())
			delete(ov.forced, key)
		}
	}
	ov.round++
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
