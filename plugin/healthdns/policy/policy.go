// Package policy chooses which of a name's targets answer a query. A
// Policy builds, off the query path, an Answer from one address family's
// targets and their verdicts; the Answer's Pick runs per query, with the
// query's Client, and does a few integer operations and no allocation
// beyond the records it appends.
//
// A new policy is one file: a type implementing Policy, registered from
// init with Register. Nothing else switches on policies.
//
// Everything here is pure; randomness and the client's region come from
// the caller.
package policy

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Policy is a name's answer policy.
type Policy interface {
	// Name is the Corefile word (policy NAME) and the metrics label.
	Name() string
	// Build makes the answer of one address family from its targets, in
	// the name's order. It returns nil when no target may answer:
	// nothing is healthy, and the name's fallback decides.
	Build(ts []Target, o Options) Answer
}

// Tailoring is implemented by policies whose answers may depend on the
// client: a server finds a query's source address only when a name needs
// it.
type Tailoring interface {
	Tailors() bool
}

// Tailors reports whether p's answers may depend on the client.
func Tailors(p Policy) bool {
	t, ok := p.(Tailoring)
	return ok && t.Tailors()
}

// Answering is implemented by policies that answer fewer addresses than
// every eligible one unless max-answers says otherwise.
type Answering interface {
	DefaultMaxAnswers() int
}

// DefaultMaxAnswers is a name's max-answers when it sets none (0: all).
func DefaultMaxAnswers(p Policy) int {
	if a, ok := p.(Answering); ok {
		return a.DefaultMaxAnswers()
	}
	return 0
}

// Answer is a built answer: immutable but for rotation counters, and
// shared by every query.
type Answer interface {
	// Pick appends this query's records to ans and says how it chose.
	Pick(ans []dns.RR, c Client) ([]dns.RR, Choice)
	// Addrs are the addresses it may answer, for status and last-good.
	Addrs() []netip.Addr
	// Len is the most records one Pick appends.
	Len() int
}

// Target is one target as a policy sees it.
type Target struct {
	RR      dns.RR // its address record, shared by every answer
	Addr    netip.Addr
	Healthy bool
	Tier    int
	Weight  int
	Region  string // "" for none
}

// Options are a name's settings that policies read.
type Options struct {
	MaxAnswers int // 0: no limit
	MinHealthy int // at least 1
	// Rot is the name's rotation counter, kept across rebuilds so a
	// rebuild does not restart every rotation.
	Rot *atomic.Uint64
	// Geo is the block's regions and the name's order, for geo.
	Geo *Geo
	// Fallback is what the name answers when the policy has nothing for
	// a client (geo: no region of its chain is healthy); nil for NODATA.
	Fallback Answer
	// StickyBits are the prefix lengths sticky hashes a client by, for
	// IPv4 and IPv6 clients.
	StickyBits [2]int
}

// Client is who asks: the EDNS Client Subnet (RFC 7871) when the query
// has one, else the source address. It is passed by value so the query
// path allocates nothing for it.
type Client struct {
	Addr netip.Addr // masked to Bits; invalid when unknown
	Bits int        // significant bits of Addr: ECS SOURCE PREFIX-LENGTH, or the address length
	ECS  bool       // Addr came from an ECS option
	Ctx  context.Context
	// Where finds the client's region; nil when the block has none.
	Where Locator
}

// Locator maps a client to a region of the block.
type Locator interface {
	// Locate returns the client's region index (-1 for none) and the
	// prefix length over which that answer holds (the ECS scope).
	Locate(c Client) (region, scope int)
}

// Region returns the client's region (-1 for none) and its scope.
func (c Client) Region() (region, scope int) {
	if c.Where == nil {
		return -1, 0
	}
	return c.Where.Locate(c)
}

// Choice says how a Pick chose, for the ECS reply and metrics.
type Choice struct {
	// Tailored is true when the answer depends on the client: a reply to
	// an ECS query carries Scope as its SCOPE PREFIX-LENGTH, and 0
	// otherwise.
	Tailored bool
	Scope    int
	// Region is the region whose targets answered, -1 for none.
	Region int
	// Fell is true when the policy had nothing for this client and
	// answered the name's fallback.
	Fell bool
}

// Geo is what the geo policy needs beyond the targets: the block's
// regions (a client's region is an index into Regions) and, for each
// client region, the regions to try in turn.
type Geo struct {
	Regions []string
	// Chains[r] is the order for clients of region r; Chains[len(Regions)]
	// is the order for clients with no region.
	Chains [][]string
}

var (
	registry = map[string]Policy{}
	byID     []Policy // in registration order
	names    []string
)

// Register makes a policy known by its name. It is for init functions and
// panics on a duplicate name, a programming error. p must be comparable
// (an empty struct or a pointer): policies are told apart with ==.
func Register(p Policy) {
	n := p.Name()
	if _, dup := registry[n]; dup {
		panic("policy " + n + " registered twice")
	}
	registry[n] = p
	byID = append(byID, p)
	names = append(names, n)
}

// Lookup returns the registered policy of a Corefile word.
func Lookup(s string) (Policy, error) {
	if p, ok := registry[s]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("policy %q: want %s", s, strings.Join(Names(), ", "))
}

// Names lists the registered policies, sorted.
func Names() []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}

// ID is a small dense number for a registered policy (for arrays of
// metrics), or -1.
func ID(p Policy) int {
	// A scan of a handful of interface comparisons: cheaper on the query
	// path than hashing the name.
	for i, q := range byID {
		if q == p {
			return i
		}
	}
	return -1
}

// Count is how many policies are registered.
func Count() int { return len(names) }

// Default is the policy of a name that says none.
func Default() Policy { return RoundRobin }
