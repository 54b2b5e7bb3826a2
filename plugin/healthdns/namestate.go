package healthdns

import (
	"slices"
	"sync/atomic"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
)

// nameState is how a name's answer stands against the one it gives with
// every target up, for the status views and metrics: none or fallback
// when nothing is healthy (the worse family decides), standby when a
// family answers none of the targets it prefers (a priority failover,
// only weight-0 targets left), degraded when targets are down, healthy
// otherwise. d nil (not built yet) is "".
func nameState(n snapshot.Name, d *snapshot.Dynamic, down int) string {
	if d == nil {
		return ""
	}
	switch worstOutcome(&d.A, d.AAAA) {
	case status.OutcomeNone:
		return status.NameNone
	case status.OutcomeFallback:
		return status.NameFallback
	}
	if standby(n, &d.A, true) || standby(n, d.AAAA, false) {
		return status.NameStandby
	}
	if down > 0 {
		return status.NameDegraded
	}
	return status.NameHealthy
}

// standby says whether a healthy answer of one family holds none of the
// targets the policy would answer with every target of that family up.
// Round-robin prefers every target, so it is never on standby; nor is a
// policy whose answer depends on the client (geo, sticky): what it
// prefers differs per client.
func standby(n snapshot.Name, s *snapshot.Set, is4 bool) bool {
	pol := n.Policy
	if pol == nil {
		pol = policy.Default()
	}
	if s.Outcome != snapshot.Healthy || pol == policy.RoundRobin || policy.Tailors(pol) {
		return false
	}
	var ts []policy.Target
	for _, t := range n.Targets {
		if t.Addr.Is4() == is4 {
			ts = append(ts, policy.Target{Addr: t.Addr, Healthy: true, Tier: t.Tier, Weight: t.Weight, Region: t.Region})
		}
	}
	all := pol.Build(ts, policy.Options{MinHealthy: max(n.MinHealthy, 1), Rot: new(atomic.Uint64)})
	if all == nil {
		return false
	}
	preferred := all.Addrs()
	for _, a := range preferred {
		if slices.Contains(s.Addrs(), a) {
			return false
		}
	}
	return len(preferred) > 0
}

// exportNameStates keeps each name's state for name_state and how many
// names are in each state for names (which the state collector reads at
// scrape time). Called from rebuild with h.mu held; states is what it
// computed, for every name.
func (h *HealthDNS) exportNameStates(states map[string]string) {
	counts := map[string]int{}
	for _, st := range states {
		counts[st]++
	}
	var gone map[string]bool
	for fqdn := range h.vs.nameStates {
		if _, ok := states[fqdn]; !ok { // the name is gone
			if gone == nil {
				gone = map[string]bool{}
			}
			gone[fqdn] = true
		}
	}
	forgetAnswers(gone)
	h.vs.nameStates = states
	h.vs.nameCounts = counts
}

// exportSomeNameStates is exportNameStates for some names, all of which
// exportNameStates had.
func (h *HealthDNS) exportSomeNameStates(states map[string]string) {
	for fqdn, st := range states {
		old, ok := h.vs.nameStates[fqdn]
		if ok && old == st {
			continue
		}
		if ok {
			h.vs.nameCounts[old]--
		}
		h.vs.nameStates[fqdn] = st
		h.vs.nameCounts[st]++
	}
}
