package policy

import (
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// GeoPolicy answers the healthy targets of the client's region, rotated;
// if it has none, those of the next region of the client's chain (the
// name's order), then the targets with no region, then the name's
// fallback. Inside a region tiers work as in Priority (active-standby
// per region). A client with no region takes the block's default region
// if there is one, else the order from its start.
var GeoPolicy Policy = geoPolicy{}

func init() { Register(GeoPolicy) }

type geoPolicy struct{}

func (geoPolicy) Tailors() bool { return true }

func (geoPolicy) Name() string { return "geo" }

func (geoPolicy) Build(ts []Target, o Options) Answer {
	g := o.Geo
	if g == nil || len(g.Chains) != len(g.Regions)+1 {
		return Priority.Build(ts, o) // no regions: one region for all
	}
	a := &geoAnswer{bySlot: make([]*Rotation, len(g.Chains)), fallback: o.Fallback, regions: len(g.Regions)}
	byRegion := map[string]*Rotation{}
	in := func(region string) *Rotation {
		if r, ok := byRegion[region]; ok {
			return r
		}
		var of []Target
		for _, t := range ts {
			if t.Region == region {
				of = append(of, t)
			}
		}
		r := NewRotation(lowestTier(of, o.MinHealthy), o.MaxAnswers, o.Rot)
		if r != nil {
			r.region = slices.Index(g.Regions, region)
		}
		byRegion[region] = r
		return r
	}
	for slot, chain := range g.Chains {
		for _, region := range chain {
			if r := in(region); r != nil {
				a.bySlot[slot] = r
				break
			}
		}
		if a.bySlot[slot] == nil {
			a.bySlot[slot] = in("") // targets of no region serve anyone
		}
	}
	a.uniform = true
	any := false
	for _, r := range a.bySlot {
		if r != a.bySlot[0] {
			a.uniform = false
		}
		if r != nil {
			any = true
			a.n = max(a.n, r.Len())
		}
	}
	if !any {
		return nil
	}
	if a.fallback != nil {
		a.n = max(a.n, a.fallback.Len())
	}
	for _, t := range ts {
		for _, r := range a.bySlot {
			if r != nil && slices.Contains(r.addrs, t.Addr) && !slices.Contains(a.addrs, t.Addr) {
				a.addrs = append(a.addrs, t.Addr)
			}
		}
	}
	return a
}

type geoAnswer struct {
	bySlot   []*Rotation // by client region; the last for clients with none; nil: fallback
	regions  int
	fallback Answer
	uniform  bool // every client gets the same: scope 0
	addrs    []netip.Addr
	n        int
}

func (a *geoAnswer) Pick(ans []dns.RR, c Client) ([]dns.RR, Choice) {
	if a.uniform {
		return a.pickSlot(ans, c, 0, Choice{Region: -1})
	}
	region, scope := c.Region()
	slot := region
	if slot < 0 || slot >= a.regions {
		slot = a.regions
	}
	return a.pickSlot(ans, c, slot, Choice{Tailored: true, Scope: scope, Region: -1})
}

func (a *geoAnswer) pickSlot(ans []dns.RR, c Client, slot int, ch Choice) ([]dns.RR, Choice) {
	r := a.bySlot[slot]
	if r == nil {
		ch.Fell = true
		if a.fallback != nil {
			ans, _ = a.fallback.Pick(ans, c)
		}
		return ans, ch
	}
	ch.Region = r.region
	return r.pick(ans), ch
}

func (a *geoAnswer) Addrs() []netip.Addr { return a.addrs }

func (a *geoAnswer) Len() int { return a.n }
