package snapshot_test

import (
	"slices"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"

	"github.com/miekg/dns"
)

// A drained target is answered only when no other target of its family
// may be, under every policy; a drained target that is down is not.
func TestDrained(t *testing.T) {
	target := func(addr string, tier, weight int, healthy, drained bool) snapshot.Target {
		return snapshot.Target{Addr: ip(addr), Healthy: healthy, Tier: tier, Weight: weight, Drained: drained}
	}
	for _, c := range []struct {
		name       string
		pol        policy.Policy
		minHealthy int
		targets    []snapshot.Target
		want       []string
	}{
		{"roundrobin: drained left out while others are up", policy.RoundRobin, 1,
			[]snapshot.Target{target("192.0.2.1", 1, 1, true, true), target("192.0.2.2", 1, 1, true, false)}, []string{"192.0.2.2"}},
		{"roundrobin: drained answer when nothing else may", policy.RoundRobin, 1,
			[]snapshot.Target{target("192.0.2.1", 1, 1, true, true), target("192.0.2.2", 1, 1, false, false), target("192.0.2.3", 1, 1, true, true)}, []string{"192.0.2.1", "192.0.2.3"}},
		{"roundrobin: drained and down, nothing healthy: the fallback (all)", policy.RoundRobin, 1,
			[]snapshot.Target{target("192.0.2.1", 1, 1, false, true), target("192.0.2.2", 1, 1, false, false)}, []string{"192.0.2.1", "192.0.2.2"}},
		{"priority: a drained tier 1 fails over to tier 2", policy.Priority, 1,
			[]snapshot.Target{target("192.0.2.1", 1, 1, true, true), target("192.0.2.2", 1, 1, true, true), target("192.0.2.3", 2, 1, true, false)}, []string{"192.0.2.3"}},
		{"priority: drained targets do not count for min-healthy", policy.Priority, 2,
			[]snapshot.Target{target("192.0.2.1", 1, 1, true, false), target("192.0.2.2", 1, 1, true, true), target("192.0.2.3", 2, 1, true, false), target("192.0.2.4", 2, 1, true, false)}, []string{"192.0.2.3", "192.0.2.4"}},
		{"priority: only drained left: the lowest drained tier", policy.Priority, 1,
			[]snapshot.Target{target("192.0.2.1", 2, 1, true, true), target("192.0.2.2", 1, 1, true, true), target("192.0.2.3", 1, 1, false, false)}, []string{"192.0.2.2"}},
		{"weighted: drained below a weight-0 standby", policy.Weighted, 1,
			[]snapshot.Target{target("192.0.2.1", 1, 5, true, true), target("192.0.2.2", 1, 0, true, false)}, []string{"192.0.2.2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := build(t, snapshot.Name{FQDN: "app.example.org.", TTL: 10, Policy: c.pol, MinHealthy: c.minHealthy, MaxAnswers: 8, Targets: c.targets})
			seen := map[string]bool{}
			for range 20 {
				m, _ := ask(s, "app.example.org.", dns.TypeA)
				for _, a := range addrs(m) {
					seen[a] = true
				}
			}
			var got []string
			for a := range seen {
				got = append(got, a)
			}
			if slices.Sort(got); !slices.Equal(got, c.want) {
				t.Errorf("answered %v, want %v", got, c.want)
			}
		})
	}
}
