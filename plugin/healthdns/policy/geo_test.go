package policy

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// fixedRegion is a Locator that puts every client in one region.
type fixedRegion struct{ region, scope int }

func (f fixedRegion) Locate(Client) (int, int) { return f.region, f.scope }

// regionTarget is target i in a region.
func regionTarget(i int, healthy bool, region string, tier int) Target {
	t := tgt(i, healthy, tier, 1)
	t.Region = region
	return t
}

func answered(rrs []dns.RR) []int {
	var out []int
	for _, rr := range rrs {
		out = append(out, int(rr.(*dns.A).A.To4()[3]))
	}
	slices.Sort(out)
	return out
}

func TestGeoOrder(t *testing.T) {
	regions := []string{"ap", "eu", "us"}
	const ap, eu, us, none = 0, 1, 2, -1
	// order eu us ap, and ap's own chain: ap us eu.
	g := &Geo{Regions: regions, Chains: [][]string{
		ap: {"ap", "us", "eu"},
		eu: {"eu", "us", "ap"},
		us: {"us", "eu", "ap"},
		3:  {"eu", "us", "ap"}, // no region
	}}
	fallback := NewRotation([]Target{tgt(99, true, 1, 1)}, 0, nil)
	tests := []struct {
		name    string
		targets []Target
		client  int
		want    []int
		region  int
		fell    bool
	}{
		{"own region", []Target{regionTarget(1, true, "eu", 1), regionTarget(2, true, "us", 1)}, eu, []int{1}, eu, false},
		{"own region, all its healthy targets", []Target{regionTarget(1, true, "eu", 1), regionTarget(3, true, "eu", 1), regionTarget(4, false, "eu", 1), regionTarget(2, true, "us", 1)}, eu, []int{1, 3}, eu, false},
		{"own region down: the next in order", []Target{regionTarget(1, false, "eu", 1), regionTarget(2, true, "us", 1), regionTarget(5, true, "ap", 1)}, eu, []int{2}, us, false},
		{"a region's own chain", []Target{regionTarget(1, true, "eu", 1), regionTarget(2, true, "us", 1), regionTarget(5, false, "ap", 1)}, ap, []int{2}, us, false},
		{"no region: the order from its start", []Target{regionTarget(1, true, "eu", 1), regionTarget(2, true, "us", 1)}, none, []int{1}, eu, false},
		{"tiers inside a region: active-standby", []Target{regionTarget(1, false, "eu", 1), regionTarget(6, true, "eu", 2), regionTarget(2, true, "us", 1)}, eu, []int{6}, eu, false},
		{"targets of no region after the chain", []Target{regionTarget(1, false, "eu", 1), regionTarget(7, true, "", 1)}, eu, []int{7}, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := GeoPolicy.Build(tc.targets, Options{MinHealthy: 1, Geo: g, Fallback: fallback})
			if a == nil {
				t.Fatal("no answer built")
			}
			ans, ch := a.Pick(nil, Client{Where: fixedRegion{tc.client, 24}, Addr: netip.MustParseAddr("10.1.2.0"), Bits: 24})
			if got := answered(ans); !slices.Equal(got, tc.want) || ch.Region != tc.region || ch.Fell != tc.fell {
				t.Errorf("got %v region %d fell %v, want %v region %d fell %v", got, ch.Region, ch.Fell, tc.want, tc.region, tc.fell)
			}
		})
	}
}

func TestGeoFallback(t *testing.T) {
	// eu's clients try eu only; us's try us then eu.
	g := &Geo{Regions: []string{"eu", "us"}, Chains: [][]string{{"eu"}, {"us", "eu"}, {"eu"}}}
	fallback := NewRotation([]Target{tgt(99, true, 1, 1)}, 0, nil)
	ts := []Target{regionTarget(1, false, "eu", 1), regionTarget(2, true, "us", 1)}
	a := GeoPolicy.Build(ts, Options{Geo: g, Fallback: fallback})
	ans, ch := a.Pick(nil, Client{Where: fixedRegion{0, 8}})
	if got := answered(ans); !slices.Equal(got, []int{99}) || !ch.Fell {
		t.Errorf("eu's chain exhausted: got %v fell %v, want the fallback", got, ch.Fell)
	}
	ans, ch = a.Pick(nil, Client{Where: fixedRegion{1, 8}})
	if got := answered(ans); !slices.Equal(got, []int{2}) || ch.Fell {
		t.Errorf("us: got %v fell %v, want us's target", got, ch.Fell)
	}
	// No chain reaches a healthy target: nothing built, the name's
	// fallback answers everyone.
	if a := GeoPolicy.Build([]Target{regionTarget(1, false, "eu", 1), regionTarget(8, true, "mars", 1)}, Options{Geo: g}); a != nil {
		t.Errorf("only a region no chain names is healthy, yet an answer: %v", a.Addrs())
	}
}

func TestGeoScope(t *testing.T) {
	g := &Geo{Regions: []string{"eu", "us"}, Chains: [][]string{{"eu", "us"}, {"us", "eu"}, {"eu", "us"}}}
	two := []Target{regionTarget(1, true, "eu", 1), regionTarget(2, true, "us", 1)}
	_, ch := GeoPolicy.Build(two, Options{Geo: g}).Pick(nil, Client{Where: fixedRegion{0, 8}})
	if !ch.Tailored || ch.Scope != 8 {
		t.Errorf("regions answer differently: tailored %v scope %d, want scope 8", ch.Tailored, ch.Scope)
	}
	// eu down: every client gets us, whatever its region.
	oneUp := []Target{regionTarget(1, false, "eu", 1), regionTarget(2, true, "us", 1)}
	_, ch = GeoPolicy.Build(oneUp, Options{Geo: g}).Pick(nil, Client{Where: fixedRegion{0, 8}})
	if ch.Tailored {
		t.Errorf("every client gets the same answer, yet tailored (scope %d)", ch.Scope)
	}
	if a := GeoPolicy.Build([]Target{regionTarget(1, false, "eu", 1)}, Options{Geo: g}); a != nil {
		t.Errorf("nothing healthy, yet an answer: %v", a.Addrs())
	}
}

// client is the /24 number i, 10.x.y.0/24.
func client(i int) Client {
	return Client{Addr: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), Bits: 24}
}

func stickyPick(a Answer, c Client) int {
	ans, _ := a.Pick(nil, c)
	return int(ans[0].(*dns.A).A.To4()[3])
}

func TestStickySpreadFollowsWeights(t *testing.T) {
	ts := []Target{tgt(1, true, 1, 1), tgt(2, true, 1, 2), tgt(3, true, 1, 3), tgt(4, true, 1, 4)}
	a := Sticky.Build(ts, Options{MaxAnswers: 1})
	const n = 10000
	counts := map[int]int{}
	for i := 0; i < n; i++ {
		counts[stickyPick(a, client(i))]++
	}
	for i, w := range []float64{0.1, 0.2, 0.3, 0.4} {
		share := float64(counts[i+1]) / n
		if share < w-0.02 || share > w+0.02 {
			t.Errorf("target %d has %.3f of the subnets, want %.2f±0.02", i+1, share, w)
		}
	}
	// Equal weights: an even spread.
	even := Sticky.Build([]Target{tgt(1, true, 1, 1), tgt(2, true, 1, 1), tgt(3, true, 1, 1)}, Options{})
	counts = map[int]int{}
	for i := 0; i < n; i++ {
		counts[stickyPick(even, client(i))]++
	}
	for id, c := range counts {
		if share := float64(c) / n; share < 0.313 || share > 0.353 {
			t.Errorf("target %d has %.3f of the subnets, want a third ±0.02", id, share)
		}
	}
}

func TestStickyMinimalDisruption(t *testing.T) {
	up := []Target{tgt(1, true, 1, 1), tgt(2, true, 1, 2), tgt(3, true, 1, 1), tgt(4, true, 1, 1)}
	before := Sticky.Build(up, Options{})
	down := slices.Clone(up)
	down[1].Healthy = false // target 2 fails
	after := Sticky.Build(down, Options{})
	const n = 10000
	moved, lost := 0, 0
	for i := 0; i < n; i++ {
		b, a := stickyPick(before, client(i)), stickyPick(after, client(i))
		if b == 2 {
			lost++
			if a == 2 {
				t.Fatalf("subnet %d still answered the failed target", i)
			}
			continue
		}
		if a != b {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d subnets of healthy targets moved when target 2 failed, want 0", moved)
	}
	if share := float64(lost) / n; share < 0.38 || share > 0.42 {
		t.Errorf("target 2 (weight 2 of 5) had %.3f of the subnets, want 0.40±0.02", share)
	}
	// Recovery moves them back: the same answers as before the failure.
	again := Sticky.Build(up, Options{})
	for i := 0; i < n; i++ {
		if stickyPick(again, client(i)) != stickyPick(before, client(i)) {
			t.Fatalf("subnet %d answered differently after the recovery", i)
		}
	}
}

func TestStickySubnet(t *testing.T) {
	a := Sticky.Build([]Target{tgt(1, true, 1, 1), tgt(2, true, 1, 1), tgt(3, true, 1, 1)}, Options{})
	// Addresses of one /24 get the same target; the scope is the /24.
	c := Client{Addr: netip.MustParseAddr("10.1.2.3"), Bits: 32}
	first := stickyPick(a, c)
	for i := 0; i < 256; i++ {
		c.Addr = netip.AddrFrom4([4]byte{10, 1, 2, byte(i)})
		if got := stickyPick(a, c); got != first {
			t.Fatalf("10.1.2.%d got target %d, 10.1.2.3 target %d", i, got, first)
		}
	}
	_, ch := a.Pick(nil, c)
	if !ch.Tailored || ch.Scope != 24 {
		t.Errorf("scope %d tailored %v, want 24", ch.Scope, ch.Tailored)
	}
	// A client that gives only a /16 is hashed by it, with scope 16.
	_, ch = a.Pick(nil, Client{Addr: netip.MustParseAddr("10.1.0.0"), Bits: 16})
	if ch.Scope != 16 {
		t.Errorf("ECS /16: scope %d, want 16", ch.Scope)
	}
	v6, bits := Subnet(Client{Addr: netip.MustParseAddr("2001:db8:1:2:3::1"), Bits: 128}, DefaultStickyBits)
	if v6 != netip.MustParseAddr("2001:db8:1::") || bits != 56 {
		t.Errorf("IPv6 subnet %s/%d, want 2001:db8:1::/56", v6, bits)
	}
}
