package policy

import (
	"math/rand/v2"
	"testing"
)

// Build-time selection for a name with 10 targets in two tiers.
func BenchmarkEligible(b *testing.B) {
	cands := make([]Candidate, 10)
	for i := range cands {
		cands[i] = Candidate{Healthy: i%3 != 0, Tier: 1 + i/5, Weight: i}
	}
	for _, k := range []Kind{RoundRobin, Weighted, Priority} {
		b.Run(k.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Eligible(k, cands, 2)
			}
		})
	}
}

// Per-query selection: what ServeDNS pays.
func BenchmarkDraw(b *testing.B) {
	weights := []int{1, 3, 6, 2, 8}
	r := rand.New(rand.NewPCG(1, 2))
	var buf [16]int
	b.ReportAllocs()
	for b.Loop() {
		Draw(buf[:0], weights, 2, r.Uint64)
	}
}
