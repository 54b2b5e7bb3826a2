package snapshot

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
)

// TestBuildDrained: a drained target answers only when nothing else may,
// under every policy, and a drained target that is down never answers.
func TestBuildDrained(t *testing.T) {
	type tgt struct {
		healthy, drained bool
		tier, weight     int
	}
	up := func(tier, weight int) tgt { return tgt{healthy: true, tier: tier, weight: weight} }
	down := func(tier, weight int) tgt { return tgt{tier: tier, weight: weight} }
	dr := func(x tgt) tgt { x.drained = true; return x }
	tests := []struct {
		name string
		pol  policy.Policy
		ts   []tgt
		min  int
		want []int
	}{
		{"roundrobin: drained left out while others are up", policy.RoundRobin, []tgt{dr(up(1, 1)), up(1, 1)}, 1, []int{1}},
		{"roundrobin: drained answer when nothing else may", policy.RoundRobin, []tgt{dr(up(1, 1)), down(1, 1), dr(up(1, 1))}, 1, []int{0, 2}},
		{"roundrobin: drained and down is not answered", policy.RoundRobin, []tgt{dr(down(1, 1)), down(1, 1)}, 1, nil},
		{"priority: a drained tier 1 fails over to tier 2", policy.Priority, []tgt{dr(up(1, 1)), dr(up(1, 1)), up(2, 1)}, 1, []int{2}},
		{"priority: drained targets do not count for min-healthy", policy.Priority, []tgt{up(1, 1), dr(up(1, 1)), up(2, 1), up(2, 1)}, 2, []int{2, 3}},
		{"priority: only drained left, the lowest drained tier", policy.Priority, []tgt{dr(up(2, 1)), dr(up(1, 1)), down(1, 1)}, 1, []int{1}},
		{"weighted: drained below weight 0", policy.Weighted, []tgt{dr(up(1, 5)), up(1, 0)}, 1, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ts []policy.Target
			var drained []bool
			for i, x := range tc.ts {
				a := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
				ts = append(ts, policy.Target{RR: addrRR("app.example.org.", 10, a), Addr: a, Healthy: x.healthy, Tier: x.tier, Weight: x.weight})
				drained = append(drained, x.drained)
			}
			ans := buildDrained(tc.pol, ts, drained, policy.Options{MinHealthy: tc.min, Rot: new(atomic.Uint64)})
			var got []int
			if ans != nil {
				for i, t := range ts {
					if slices.Contains(ans.Addrs(), t.Addr) {
						got = append(got, i)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("answers %v, want %v", got, tc.want)
			}
		})
	}
}
