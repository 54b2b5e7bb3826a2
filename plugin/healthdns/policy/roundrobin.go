package policy

import (
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"
)

// RoundRobin answers every healthy target (up to max-answers), rotated
// per query.
var RoundRobin Policy = roundRobin{}

func init() { Register(RoundRobin) }

type roundRobin struct{}

func (roundRobin) Name() string { return "roundrobin" }

func (roundRobin) Build(ts []Target, o Options) Answer {
	return rotation(healthy(ts), o.MaxAnswers, o.Rot)
}

// rotation is Rotate for the policies' own answers.
func rotation(ts []Target, max int, rot *atomic.Uint64) Answer { return Rotate(ts, max, rot) }

// Rotate is NewRotation as an Answer: nil, not a nil *Rotation, for none,
// and for one target an answer of that one alone, a third of the size:
// most names that records define have one target, by the hundred
// thousand.
func Rotate(ts []Target, max int, rot *atomic.Uint64) Answer {
	switch len(ts) {
	case 0:
		return nil
	case 1:
		if a, ok := addrOf(ts[0].RR); ok && a == ts[0].Addr {
			return &single{rr: ts[0].RR}
		}
		return &singleAddr{single{rr: ts[0].RR}, [1]netip.Addr{ts[0].Addr}}
	}
	return NewRotation(ts, max, rot)
}

// single answers one target: a rotation of one. Its address is its
// record's, made again for Addrs (status, last good: not the query
// path), which keeps it 16 bytes.
type single struct{ rr dns.RR }

func (s *single) Pick(ans []dns.RR, _ Client) ([]dns.RR, Choice) {
	return append(ans, s.rr), Choice{Region: -1}
}

func (s *single) Addrs() []netip.Addr {
	a, _ := addrOf(s.rr)
	return []netip.Addr{a}
}

func (s *single) Len() int { return 1 }

// singleAddr is single with a target whose address its record does not
// say as it is.
type singleAddr struct {
	single
	addrs [1]netip.Addr
}

func (s *singleAddr) Addrs() []netip.Addr { return s.addrs[:] }

// addrOf is the address of an A or AAAA record.
func addrOf(rr dns.RR) (netip.Addr, bool) {
	switch rr := rr.(type) {
	case *dns.A:
		return netip.AddrFromSlice(rr.A)
	case *dns.AAAA:
		return netip.AddrFromSlice(rr.AAAA)
	}
	return netip.Addr{}, false
}

// healthy returns the healthy targets, in order.
func healthy(ts []Target) []Target {
	var out []Target
	for _, t := range ts {
		if t.Healthy {
			out = append(out, t)
		}
	}
	return out
}

// Rotation answers its targets, up to max, from a start that moves on
// each query: the round-robin of every policy that rotates.
type Rotation struct {
	rrs    []dns.RR
	addrs  []netip.Addr
	max    int
	rot    *atomic.Uint64
	region int
}

// NewRotation returns the rotation of ts, or nil for none. rot may be nil
// for a fresh counter.
func NewRotation(ts []Target, max int, rot *atomic.Uint64) *Rotation {
	if len(ts) == 0 {
		return nil
	}
	if rot == nil {
		rot = new(atomic.Uint64)
	}
	r := &Rotation{max: max, rot: rot, region: -1}
	for _, t := range ts {
		r.rrs = append(r.rrs, t.RR)
		r.addrs = append(r.addrs, t.Addr)
	}
	return r
}

// Pick implements Answer.
func (r *Rotation) Pick(ans []dns.RR, _ Client) ([]dns.RR, Choice) {
	return r.pick(ans), Choice{Region: r.region}
}

func (r *Rotation) pick(ans []dns.RR) []dns.RR {
	n := len(r.rrs)
	if n == 1 {
		return append(ans, r.rrs[0]) // the common case: no rotation to share
	}
	k := r.Len()
	start := int(r.rot.Add(1) % uint64(n))
	for i := 0; i < k; i++ {
		ans = append(ans, r.rrs[(start+i)%n])
	}
	return ans
}

// Addrs implements Answer.
func (r *Rotation) Addrs() []netip.Addr { return r.addrs }

// Len implements Answer.
func (r *Rotation) Len() int {
	if r.max > 0 && r.max < len(r.rrs) {
		return r.max
	}
	return len(r.rrs)
}
