package policy

import (
	"math/rand/v2"
	"net/netip"

	"github.com/miekg/dns"
)

// Weighted answers a subset of the healthy targets drawn by weight (up to
// max-answers, one by default). Weight 0 is standby capacity: used only
// when no healthy target has a weight.
var Weighted Policy = weighted{}

func init() { Register(Weighted) }

type weighted struct{}

// DefaultMaxAnswers implements Answering: one draw per query, as Route 53 does.
func (weighted) DefaultMaxAnswers() int { return 1 }

func (weighted) Name() string { return "weighted" }

func (weighted) Build(ts []Target, o Options) Answer {
	el := weightedEligible(ts)
	if len(el) == 0 {
		return nil
	}
	d := &draw{max: o.MaxAnswers}
	for _, t := range el {
		d.rrs = append(d.rrs, t.RR)
		d.addrs = append(d.addrs, t.Addr)
		d.weights = append(d.weights, t.Weight)
	}
	return d
}

// weightedEligible returns the healthy targets with a weight, or if there
// are none the healthy ones with weight 0.
func weightedEligible(ts []Target) []Target {
	var out []Target
	for _, t := range ts {
		if t.Healthy && t.Weight > 0 {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return healthy(ts)
	}
	return out
}

type draw struct {
	rrs     []dns.RR
	addrs   []netip.Addr
	weights []int
	max     int
}

func (d *draw) Pick(ans []dns.RR, _ Client) ([]dns.RR, Choice) {
	var buf [16]int
	for _, i := range Draw(buf[:0], d.weights, min(d.Len(), len(buf)), rand.Uint64) {
		ans = append(ans, d.rrs[i])
	}
	return ans, Choice{Region: -1}
}

func (d *draw) Addrs() []netip.Addr { return d.addrs }

func (d *draw) Len() int { return min(max(d.max, 1), len(d.rrs)) }

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
