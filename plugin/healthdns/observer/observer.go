// Package observer publishes an observer's probe results into the
// cluster and keeps its probes in step with the cluster's catalog: the
// one implementation behind a server that probes its own targets
// (plugin/healthdns) and an agent (cmd/healthdns-agent), whether a
// gossip member or an edge client.
package observer

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// Publisher takes an observer's observations: a *gossip.Node or a
// *gossip.EdgeClient.
type Publisher interface {
	PublishObservations(map[gossip.TargetID]health.State)
	// PublishReasons says why targets are down: the failing check and
	// its error, per target.
	PublishReasons(map[gossip.TargetID]string)
	ObservedAt(time.Time)
}

// Source is where the catalog comes from: a *gossip.Node or a
// *gossip.EdgeClient.
type Source interface {
	Catalog() []gossip.CatalogTarget
	Subscribe() (<-chan struct{}, func())
}

// Probed is a target the observer probes: its probe key in the pool,
// and how long after its last round the next one is late.
type Probed struct {
	Key  string
	Late time.Duration
}

// Publish sends the pool's state of every target (the publisher sends
// only what changed) and dates the view by when its probes last ran on
// schedule, so that a paused observer's view ages instead of being
// refreshed by its heartbeats.
func Publish(p Publisher, pool *probe.Pool, targets map[gossip.TargetID]Probed) {
	states := make(map[gossip.TargetID]health.State, len(targets))
	reasons := map[gossip.TargetID]string{}
	current := time.Now()
	for id, pt := range targets {
		st := pool.Status(pt.Key)
		if st.State != health.Unknown {
			states[id] = st.State
		}
		if st.State == health.Down && st.Err != "" {
			reasons[id] = st.Err
		}
		current = OnSchedule(current, st.Checked, pt.Late)
	}
	p.PublishObservations(states)
	p.PublishReasons(reasons)
	if len(targets) > 0 {
		p.ObservedAt(current)
	}
}

// OnSchedule dates an observer's view: current (at first now) stays
// while a target's last round (checked) is within late of it, and moves
// back to when that round became late otherwise. A view is then dated by
// when its probes last ran on schedule, whatever each target's interval:
// receivers judge each target's freshness by its own timing (a paused
// process's view ages at once, a 60 s check does not age a 1 s one).
func OnSchedule(current, checked time.Time, late time.Duration) time.Time {
	if checked.IsZero() {
		return current // not probed yet: it has no observation to date
	}
	if due := checked.Add(late); due.Before(current) {
		return due
	}
	return current
}

// Catalog keeps a pool probing the targets of a cluster's catalog: an
// agent's probes.
type Catalog struct {
	pool *probe.Pool
	logf func(format string, args ...any)

	mu   sync.Mutex
	held map[gossip.TargetID]*held
}

type held struct {
	cat     gossip.CatalogTarget
	probed  Probed
	release func()
}

// NewCatalog returns a Catalog probing with pool; logf gets a line per
// target taken or dropped.
func NewCatalog(pool *probe.Pool, logf func(format string, args ...any)) *Catalog {
	return &Catalog{pool: pool, logf: logf, held: map[gossip.TargetID]*held{}}
}

// Sync probes every target of cat and stops probing those not in it.
func (c *Catalog) Sync(cat []gossip.CatalogTarget) {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := make(map[gossip.TargetID]bool, len(cat))
	for _, ct := range cat {
		want[ct.ID] = true
		if c.held[ct.ID] != nil {
			continue
		}
		t, err := ct.Probe()
		if err != nil { // the gossip layer validated it; cannot happen
			c.logf("[ERR] catalog target %s (%s): %v", ct.ID, ct.Addr, err)
			continue
		}
		c.held[ct.ID] = &held{cat: ct, probed: Probed{Key: t.Key(), Late: ct.Interval + ct.Timeout}, release: c.pool.Acquire([]probe.Target{t})}
		c.logf("[INFO] probing %s (%s) every %s", ct.Addr, ct.Checks, ct.Interval)
	}
	for id, h := range c.held {
		if !want[id] {
			h.release()
			delete(c.held, id)
			c.logf("[INFO] stopped probing %s: no longer in the catalog", h.cat.Addr)
		}
	}
}

// Targets returns the targets probed.
func (c *Catalog) Targets() map[gossip.TargetID]Probed {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[gossip.TargetID]Probed, len(c.held))
	for id, h := range c.held {
		out[id] = h.probed
	}
	return out
}

// Len is the number of targets probed.
func (c *Catalog) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// Publish publishes the state of the targets probed.
func (c *Catalog) Publish(p Publisher) { Publish(p, c.pool, c.Targets()) }

// Close stops every probe.
func (c *Catalog) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, h := range c.held {
		h.release()
		delete(c.held, id)
	}
}

// Settle is how long catalog news settles before an agent re-reads the
// catalog, so a burst of gossip costs one pass; ObservedEvery how often
// it dates its view by its probes' latest results, even when nothing
// changed.
const (
	Settle        = 50 * time.Millisecond
	ObservedEvery = 250 * time.Millisecond
)

// Held is a target probed, for status pages.
type Held struct {
	Target gossip.CatalogTarget
	Probed Probed
}

// Held returns the targets probed, by address then ID.
func (c *Catalog) Held() []Held {
	c.mu.Lock()
	out := make([]Held, 0, len(c.held))
	for _, h := range c.held {
		out = append(out, Held{Target: h.cat, Probed: h.probed})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(x, y Held) int {
		if c := x.Target.Addr.Compare(y.Target.Addr); c != 0 {
			return c
		}
		return cmp.Compare(x.Target.ID, y.Target.ID)
	})
	return out
}
