package policy

import (
	"math/rand/v2"
	"testing"
)

// Build-time selection for a name with 10 targets in two tiers.
func BenchmarkBuild(b *testing.B) {
	ts := make([]Target, 10)
	for i := range ts {
		ts[i] = tgt(i, i%3 != 0, 1+i/5, i)
	}
	for _, p := range []Policy{RoundRobin, Weighted, Priority, Sticky} {
		b.Run(p.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Build(ts, Options{MinHealthy: 2})
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
