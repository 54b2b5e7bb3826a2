package policy

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestEligible(t *testing.T) {
	up := func(tier, weight int) Candidate { return Candidate{Healthy: true, Tier: tier, Weight: weight} }
	down := func(tier, weight int) Candidate { return Candidate{Tier: tier, Weight: weight} }
	tests := []struct {
		name       string
		kind       Kind
		cands      []Candidate
		minHealthy int
		want       []int
	}{
		{"roundrobin: only healthy", RoundRobin, []Candidate{up(1, 1), down(1, 1), up(1, 1)}, 1, []int{0, 2}},
		{"roundrobin: none healthy", RoundRobin, []Candidate{down(1, 1)}, 1, nil},
		{"priority: lowest tier wins", Priority, []Candidate{up(2, 1), up(1, 1), up(3, 1)}, 1, []int{1}},
		{"priority: active-standby fails over", Priority, []Candidate{down(1, 1), down(1, 1), up(2, 1)}, 1, []int{2}},
		{"priority: tiers below are not returned", Priority, []Candidate{up(1, 1), down(1, 1), up(2, 1)}, 1, []int{0}},
		{"priority: min-healthy skips a thin tier", Priority, []Candidate{up(1, 1), down(1, 1), up(2, 1), up(2, 1)}, 2, []int{2, 3}},
		{"priority: no tier thick enough, the lowest with any", Priority, []Candidate{down(1, 1), up(2, 1), up(3, 1)}, 2, []int{1}},
		{"priority: nothing healthy", Priority, []Candidate{down(1, 1), down(2, 1)}, 1, nil},
		{"weighted: weight 0 left out while others are up", Weighted, []Candidate{up(1, 0), up(1, 5), down(1, 5)}, 1, []int{1}},
		{"weighted: weight 0 used when nothing else is", Weighted, []Candidate{up(1, 0), down(1, 5), up(1, 0)}, 1, []int{0, 2}},
		{"weighted: nothing healthy", Weighted, []Candidate{down(1, 0), down(1, 5)}, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Eligible(tc.kind, tc.cands, tc.minHealthy); !slices.Equal(got, tc.want) {
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

func TestParseKind(t *testing.T) {
	for _, s := range []string{"roundrobin", "weighted", "priority"} {
		k, err := ParseKind(s)
		if err != nil || k.String() != s {
			t.Errorf("ParseKind(%q) = %v, %v", s, k, err)
		}
	}
	if _, err := ParseKind("random"); err == nil {
		t.Error("ParseKind accepted random")
	}
}
