package policy

import (
	"math"
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// Sticky answers the same healthy target to the same client subnet (a /24
// or a /56 by default) by weighted rendezvous hashing: each client ranks
// the targets by a hash of its subnet and the target, scaled by weight,
// and gets the best. A target that fails loses only its own clients, who
// spread over the others by weight, and gets them back when it recovers.
// Weight 0 is standby capacity, as in Weighted. Every server computes the
// same ranking, so the cluster agrees without sharing state.
var Sticky Policy = sticky{}

func init() { Register(Sticky) }

type sticky struct{}

func (sticky) Tailors() bool { return true }

// DefaultMaxAnswers implements Answering: one target per client.
func (sticky) DefaultMaxAnswers() int { return 1 }

func (sticky) Name() string { return "sticky" }

// DefaultStickyBits are the prefix lengths sticky hashes IPv4 and IPv6
// clients by: what a resolver usually sends in ECS, and about one site.
var DefaultStickyBits = [2]int{24, 56}

func (sticky) Build(ts []Target, o Options) Answer {
	el := weightedEligible(ts)
	if len(el) == 0 {
		return nil
	}
	bits := o.StickyBits
	if bits == [2]int{} {
		bits = DefaultStickyBits
	}
	a := &stickyAnswer{bits: bits, max: min(max(o.MaxAnswers, 1), len(el), 16), uniformWeight: true}
	for _, t := range el {
		a.rrs = append(a.rrs, t.RR)
		a.addrs = append(a.addrs, t.Addr)
		a.seeds = append(a.seeds, addrHash(t.Addr, 128))
		w := float64(max(t.Weight, 1))
		a.weights = append(a.weights, w)
		if w != a.weights[0] {
			a.uniformWeight = false
		}
		region := -1
		if o.Geo != nil {
			region = slices.Index(o.Geo.Regions, t.Region)
		}
		a.regions = append(a.regions, region)
	}
	return a
}

type stickyAnswer struct {
	rrs           []dns.RR
	addrs         []netip.Addr
	seeds         []uint64
	weights       []float64
	regions       []int
	uniformWeight bool
	bits          [2]int
	max           int
}

// Subnet is the part of a client's address that sticky hashes: its first
// bits (24 for IPv4, 56 for IPv6 by default), or fewer when the client
// (an ECS option) gave fewer.
func Subnet(c Client, bits [2]int) (netip.Addr, int) {
	if !c.Addr.IsValid() {
		return netip.Addr{}, 0
	}
	b := bits[0]
	if c.Addr.Is6() {
		b = bits[1]
	}
	b = min(b, c.Bits, c.Addr.BitLen())
	p, _ := c.Addr.Prefix(b)
	return p.Addr(), b
}

func (a *stickyAnswer) Pick(ans []dns.RR, c Client) ([]dns.RR, Choice) {
	if len(a.rrs) == 1 {
		return append(ans, a.rrs[0]), Choice{Region: a.regions[0]}
	}
	sub, bits := Subnet(c, a.bits)
	h := addrHash(sub, bits)
	// The best max targets by score, best first: an insertion into a
	// small array.
	var best [16]int
	var score [16]float64
	n := 0
	for i, seed := range a.seeds {
		s := a.score(h, i, seed)
		j := n
		if j == a.max {
			if s <= score[j-1] {
				continue
			}
			j--
		} else {
			n++
		}
		for j > 0 && s > score[j-1] {
			best[j], score[j] = best[j-1], score[j-1]
			j--
		}
		best[j], score[j] = i, s
	}
	for _, i := range best[:n] {
		ans = append(ans, a.rrs[i])
	}
	return ans, Choice{Tailored: true, Scope: bits, Region: a.regions[best[0]]}
}

// score is target i's rank for the client hashed to h: the highest wins.
// With weights, -w/ln(u) for u uniform in (0,1) gives each target the
// clients in proportion to its weight (weighted rendezvous hashing).
func (a *stickyAnswer) score(h uint64, i int, seed uint64) float64 {
	x := mix(h ^ seed)
	if a.uniformWeight {
		return float64(x >> 11)
	}
	u := (float64(x>>11) + 0.5) / (1 << 53)
	return -a.weights[i] / math.Log(u)
}

func (a *stickyAnswer) Addrs() []netip.Addr { return a.addrs }

func (a *stickyAnswer) Len() int { return a.max }

// addrHash is a hash of an address's first bits, the same on every
// server and every run (FNV-1a, then mixed).
func addrHash(a netip.Addr, bits int) uint64 {
	h := uint64(14695981039346656037)
	b := a.As16()
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	h = (h ^ uint64(bits)) * 1099511628211
	return mix(h)
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
