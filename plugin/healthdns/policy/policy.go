// Package policy chooses which of a name's targets answer a query. Build
// time work (which targets are eligible, given their verdicts) is separated
// from per-query work (a draw by weight) so the query path does a few
// integer operations and no allocation. Round-robin rotation is a counter
// in the snapshot.
//
// Everything here is pure; randomness comes from the caller.
package policy

import "fmt"

// Kind is a name's answer policy.
type Kind uint8

const (
	// RoundRobin answers every eligible target, rotated per query.
	RoundRobin Kind = iota
	// Weighted answers a subset drawn by weight.
	Weighted
	// Priority answers the lowest tier that is healthy enough.
	Priority
)

func (k Kind) String() string {
	switch k {
	case Weighted:
		return "weighted"
	case Priority:
		return "priority"
	}
	return "roundrobin"
}

// ParseKind reads a Corefile policy word.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "roundrobin":
		return RoundRobin, nil
	case "weighted":
		return Weighted, nil
	case "priority":
		return Priority, nil
	}
	return 0, fmt.Errorf("policy %q: want roundrobin, weighted or priority", s)
}

// Candidate is one target as the policy sees it.
type Candidate struct {
	Healthy bool
	Tier    int
	Weight  int
}

// Eligible returns the indexes of the candidates that may answer, in input
// order. An empty result means nothing is healthy and the name's fallback
// decides.
//
//   - RoundRobin: every healthy candidate.
//   - Weighted: every healthy candidate with weight > 0; if there is none,
//     the healthy ones with weight 0 (standby capacity).
//   - Priority: the healthy candidates of the lowest tier with at least
//     minHealthy healthy candidates; if no tier has that many, the lowest
//     tier with any healthy candidate, because a degraded answer beats none.
func Eligible(k Kind, cands []Candidate, minHealthy int) []int {
	var out []int
	switch k {
	case Weighted:
		for i, c := range cands {
			if c.Healthy && c.Weight > 0 {
				out = append(out, i)
			}
		}
		if len(out) == 0 {
			for i, c := range cands {
				if c.Healthy {
					out = append(out, i)
				}
			}
		}
	case Priority:
		best, bestAny := -1, -1
		for _, tier := range tiers(cands) {
			n := 0
			for _, c := range cands {
				if c.Healthy && c.Tier == tier {
					n++
				}
			}
			if n > 0 && bestAny < 0 {
				bestAny = tier
			}
			if n >= minHealthy && n > 0 {
				best = tier
				break
			}
		}
		if best < 0 {
			best = bestAny
		}
		for i, c := range cands {
			if c.Healthy && c.Tier == best {
				out = append(out, i)
			}
		}
	default:
		for i, c := range cands {
			if c.Healthy {
				out = append(out, i)
			}
		}
	}
	return out
}

// tiers returns the distinct tiers in ascending order.
func tiers(cands []Candidate) []int {
	var ts []int
	for _, c := range cands {
		i := 0
		for i < len(ts) && ts[i] < c.Tier {
			i++
		}
		if i < len(ts) && ts[i] == c.Tier {
			continue
		}
		ts = append(ts, 0)
		copy(ts[i+1:], ts[i:])
		ts[i] = c.Tier
	}
	return ts
}

// Draw writes up to k distinct indexes into dst, drawn without replacement
// with probability proportional to weights. Zero weights are treated as 1
// so that an all-zero (standby) set is drawn uniformly. rnd must return
// uniform random uint64s. The result order is the draw order.
func Draw(dst []int, weights []int, k int, rnd func() uint64) []int {
	n := len(weights)
	if k <= 0 || k > n {
		k = n
	}
	total := 0
	for _, w := range weights {
		total += weight(w)
	}
	// A bitmask keeps the common case (≤64 targets) free of allocation.
	var small uint64
	var big []bool
	if n > 64 {
		big = make([]bool, n)
	}
	taken := func(i int) bool {
		if big != nil {
			return big[i]
		}
		return small&(1<<uint(i)) != 0
	}
	for len(dst) < k && total > 0 {
		r := int(rnd() % uint64(total))
		for i, w := range weights {
			if taken(i) {
				continue
			}
			r -= weight(w)
			if r < 0 {
				dst = append(dst, i)
				total -= weight(w)
				if big != nil {
					big[i] = true
				} else {
					small |= 1 << uint(i)
				}
				break
			}
		}
	}
	return dst
}

func weight(w int) int {
	if w <= 0 {
		return 1
	}
	return w
}
