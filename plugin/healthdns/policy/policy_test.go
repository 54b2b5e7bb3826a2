package policy

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// target i of a table: an address 192.0.2.i.
func tgt(i int, healthy bool, tier, weight int) Target {
	a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	return Target{RR: &dns.A{Hdr: dns.RR_Header{Name: "app.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: a.AsSlice()}, Addr: a, Healthy: healthy, Tier: tier, Weight: weight}
}

// eligible is the indexes of the targets an answer may give.
func eligible(a Answer, ts []Target) []int {
	if a == nil {
		return nil
	}
	var out []int
	for i, t := range ts {
		if slices.Contains(a.Addrs(), t.Addr) {
			out = append(out, i)
		}
	}
	return out
}

func TestEligible(t *testing.T) {
	type c struct {
		healthy      bool
		tier, weight int
	}
	up := func(tier, weight int) c { return c{true, tier, weight} }
	down := func(tier, weight int) c { return c{false, tier, weight} }
	tests := []struct {
		name       string
		pol        Policy
		cands      []c
		minHealthy int
		want       []int
	}{
		{"roundrobin: only healthy", RoundRobin, []c{up(1, 1), down(1, 1), up(1, 1)}, 1, []int{0, 2}},
		{"roundrobin: none healthy", RoundRobin, []c{down(1, 1)}, 1, nil},
		{"priority: lowest tier wins", Priority, []c{up(2, 1), up(1, 1), up(3, 1)}, 1, []int{1}},
		{"priority: active-standby fails over", Priority, []c{down(1, 1), down(1, 1), up(2, 1)}, 1, []int{2}},
		{"priority: tiers below are not returned", Priority, []c{up(1, 1), down(1, 1), up(2, 1)}, 1, []int{0}},
		{"priority: min-healthy skips a thin tier", Priority, []c{up(1, 1), down(1, 1), up(2, 1), up(2, 1)}, 2, []int{2, 3}},
		{"priority: no tier thick enough, the lowest with any", Priority, []c{down(1, 1), up(2, 1), up(3, 1)}, 2, []int{1}},
		{"priority: nothing healthy", Priority, []c{down(1, 1), down(2, 1)}, 1, nil},
		{"weighted: weight 0 left out while others are up", Weighted, []c{up(1, 0), up(1, 5), down(1, 5)}, 1, []int{1}},
		{"weighted: weight 0 used when nothing else is", Weighted, []c{up(1, 0), down(1, 5), up(1, 0)}, 1, []int{0, 2}},
		{"weighted: nothing healthy", Weighted, []c{down(1, 0), down(1, 5)}, 1, nil},
		{"sticky: weight 0 left out while others are up", Sticky, []c{up(1, 0), up(1, 5), down(1, 5)}, 1, []int{1}},
		{"sticky: nothing healthy", Sticky, []c{down(1, 1)}, 1, nil},
		{"geo without regions: as priority", GeoPolicy, []c{down(1, 1), up(2, 1)}, 1, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ts []Target
			for i, c := range tc.cands {
				ts = append(ts, tgt(i, c.healthy, c.tier, c.weight))
			}
			if got := eligible(tc.pol.Build(ts, Options{MinHealthy: tc.minHealthy}), ts); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDrawFollowsWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, 3)
	const n = 30000
	for i := 0; i < n; i++ {
		got := Draw(nil, []int{1, 3, 6}, 1, r.Uint64)
		if len(got) != 1 {
			t.Fatalf("Draw returned %v, want one index", got)
		}
		counts[got[0]]++
	}
	for i, w := range []float64{0.1, 0.3, 0.6} {
		share := float64(counts[i]) / n
		if share < w-0.02 || share > w+0.02 {
			t.Errorf("target %d drawn %.3f of the time, want about %.1f", i, share, w)
		}
	}
}

func TestDrawDistinct(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 1000; i++ {
		got := Draw(nil, []int{5, 1, 1, 1}, 3, r.Uint64)
		if len(got) != 3 {
			t.Fatalf("Draw = %v, want three", got)
		}
		s := slices.Clone(got)
		slices.Sort(s)
		if len(slices.Compact(s)) != 3 {
			t.Fatalf("Draw = %v repeats a target", got)
		}
	}
	many := make([]int, 100)
	if got := Draw(nil, many, 100, r.Uint64); len(got) != 100 {
		t.Errorf("Draw over 100 all-zero weights gave %d, want 100 distinct", len(got))
	}
}

func TestLookup(t *testing.T) {
	for _, s := range []string{"roundrobin", "weighted", "priority", "geo", "sticky"} {
		p, err := Lookup(s)
		if err != nil || p.Name() != s || ID(p) < 0 || ID(p) >= Count() {
			t.Errorf("Lookup(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := Lookup("random"); err == nil || !strings.Contains(err.Error(), "geo, priority, roundrobin, sticky, weighted") {
		t.Errorf("Lookup(random): %v, want an error that lists the policies", err)
	}
}

// A one-target answer says its target's address, whether its record
// holds it as 4 bytes or, as net.ParseIP makes it, 16; and answers the
// record.
func TestRotateOneAddrs(t *testing.T) {
	for _, ip := range []string{"192.0.2.1", "2001:db8::1"} {
		addr := netip.MustParseAddr(ip)
		for _, rr := range []dns.RR{
			&dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: addr.AsSlice()},
			&dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.ParseIP(ip)},
		} {
			a := Rotate([]Target{{RR: rr, Addr: addr, Healthy: true}}, 0, nil)
			if got := a.Addrs(); !slices.Equal(got, []netip.Addr{addr}) {
				t.Errorf("%s as %d bytes: Addrs %v, want [%s]", ip, len(rr.(*dns.A).A), got, addr)
			}
			if got, _ := a.Pick(nil, Client{}); len(got) != 1 || got[0] != rr {
				t.Errorf("%s: Pick %v, want its record", ip, got)
			}
		}
	}
}
