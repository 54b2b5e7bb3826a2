// Package snapshot turns zone data and verdicts into an immutable Snapshot
// and answers queries from it. A Snapshot is built off the query path
// whenever a verdict changes and swapped in atomically by the caller; the
// query path only reads it: no locks, and no allocation beyond the reply.
package snapshot

import (
	"iter"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// Outcome says where an answer came from, for metrics.
type Outcome uint8

const (
	// Static is an answer from the zone file (or a negative answer).
	Static Outcome = iota
	// Healthy is a health-aware answer from healthy targets.
	Healthy
	// Fallback is a health-aware answer given while nothing was healthy.
	Fallback
	// Empty is a health-aware NODATA given while nothing was healthy
	// (fallback none).
	Empty
	// Refused means no zone of the snapshot holds the name.
	Refused
	// Stale is a health-aware query answered SERVFAIL because the
	// snapshot is past its deadline (the server was paused; see
	// ValidUntil).
	Stale
)

// Outcomes is how many outcomes there are, for arrays indexed by one.
const Outcomes = int(Stale) + 1

func (o Outcome) String() string {
	return [...]string{"static", "healthy", "fallback", "none", "refused", "stale"}[o]
}

// Snapshot is the immutable state the query path reads.
type Snapshot struct {
	zones []*Zone // longest origin first
	// in and dyn are what it was built from: the zone data, and how many
	// health-aware names; Build returns it again for the same input.
	in  []*zone.Data
	dyn int
	// tailoring counts the names whose answers may depend on the client:
	// a count, not a flag, so that Update can tell when the last one goes.
	tailoring int
	// dyns holds the built answers of the health-aware names, by the
	// index their node carries, in chunks: Update replaces the answers of
	// a few names by copying their chunks and the chunk list, not the
	// zones' maps, so a verdict change costs what it changes.
	dyns [][]*Dynamic

	// ValidUntil is how long the snapshot may answer health-aware names;
	// zero means for ever. Whoever builds it sets it before publishing it:
	// a rebuild renews it, so a server whose rebuilds stopped (a paused
	// process) does not answer from what it knew before the pause.
	ValidUntil time.Time
}

// Expired reports whether the snapshot is past its ValidUntil. For the
// query path: with a ValidUntil from time.Now it reads only the monotonic
// clock (time.Until's fast path), half the cost of time.Now.
func (s *Snapshot) Expired() bool {
	return !s.ValidUntil.IsZero() && time.Until(s.ValidUntil) < 0
}

// ExpiredAt reports whether now is past the snapshot's ValidUntil.
func (s *Snapshot) ExpiredAt(now time.Time) bool {
	return !s.ValidUntil.IsZero() && now.After(s.ValidUntil)
}

// Until returns the snapshot with ValidUntil set to t: s itself while it
// is unpublished (fresh from Build), else a copy, since Build hands back a
// published snapshot unchanged when its input is, and a published one is
// never written. The copy shares everything else, which is immutable.
func (s *Snapshot) Until(t time.Time, published *Snapshot) *Snapshot {
	if s != published {
		s.ValidUntil = t
		return s
	}
	c := *s
	c.ValidUntil = t
	return &c
}

// Zone is one authoritative zone.
type Zone struct {
	Origin string
	src    *dns.SOA // the zone data's SOA, to tell a reload
	negSOA *dns.SOA // SOA with the RFC 2308 negative TTL
	// negByTTL shares the negative SOAs of names with a shorter TTL:
	// thousands of names from records have one TTL.
	negByTTL map[uint32]*dns.SOA
	// names are the nodes of the zone's owners, but those of single
	// (the zone data's owners of one type, a records' TXT name by the
	// hundred thousand), which it reads where they are; a health-aware
	// name is in names.
	names     *zone.NameMap[*node]
	single    *zone.NameMap[[]dns.RR]
	ents      map[string]bool // empty non-terminals
	cuts      map[string]bool // delegation points below the apex
	dnames    map[string]bool // DNAME owners (RFC 6672)
	wildcards bool
}

// lookup is the node of name, nil for none: its own, or one of single
// made in buf (the caller's, on its stack: the query path allocates
// nothing for it).
func (z *Zone) lookup(name string, buf *node) *node {
	if nd := z.names.Get(name); nd != nil {
		return nd
	}
	return z.lookupSingle(name, buf)
}

// lookupSingle is lookup's second half, for the query path to inline
// the first.
func (z *Zone) lookupSingle(name string, buf *node) *node {
	if z.single.Len() == 0 {
		return nil // a zone file's zone: no second hash of the name
	}
	if rrs, ok := z.single.Lookup(name); ok && len(rrs) > 0 {
		*buf = node{one: rrs}
		return buf
	}
	return nil
}

// has reports whether name is an owner of the zone.
func (z *Zone) has(name string) bool {
	var buf node
	return z.lookup(name, &buf) != nil
}

type node struct {
	rrs map[uint16][]dns.RR
	one []dns.RR // instead of rrs: the records of an owner of one type (zone.Data.Single)
	di  int32    // 1 + the index of its built answer in dyns; 0 for none
	// wild marks a node synthesised from a wildcard: its dynamic answers
	// carry the wildcard's name and are renamed per query.
	wild bool
}

// get is the node's records of type t.
func (n *node) get(t uint16) []dns.RR {
	if n.one != nil {
		if n.one[0].Header().Rrtype == t {
			return n.one
		}
		return nil
	}
	return n.rrs[t]
}

// types are the node's records by type.
func (n *node) types() iter.Seq2[uint16, []dns.RR] {
	return func(yield func(uint16, []dns.RR) bool) {
		if n.one != nil {
			yield(n.one[0].Header().Rrtype, n.one)
			return
		}
		for t, rrs := range n.rrs {
			if !yield(t, rrs) {
				return
			}
		}
	}
}

// nodeOf is the node of an owner of d: its records from Names or Single.
func nodeOf(d *zone.Data, owner string) (*node, bool) {
	if types, ok := d.Names[owner]; ok {
		return &node{rrs: types}, true
	}
	if rrs, ok := d.Single.Lookup(owner); ok && len(rrs) > 0 {
		return &node{one: rrs}, true
	}
	return nil, false
}

// Dynamic is the built answer of one health-aware name. A server may
// hold hundreds of thousands: what every name of a kind has alike is
// shared (see inputs), and an empty family costs no Set of its own.
type Dynamic struct {
	Name string
	A    Set
	// AAAA is never nil: noSet for a name with no IPv6 target (most).
	AAAA *Set
	// in, fallbacks and targets (with Name) are what it was built from:
	// the next build reuses it when they are the same (most names, most
	// rebuilds).
	in        *inputs
	fallbacks *fallbacks // nil: neither (most names)
	targets   []Target
}

// noSet is the answer of a family without targets, shared.
var noSet = &Set{}

// inputs are a Dynamic's settings and zone: one for every name with the
// same ones (a server's 100,000 records' names have a few).
type inputs struct {
	options
	src    *dns.SOA
	negSOA *dns.SOA // shorter negative TTL for fallback none
}

type fallbacks struct{ fixed, lastGood []netip.Addr }

// interned hands out one *inputs for equal ones, and one slice for
// equal targets of one target (most names), within a build.
type interned struct {
	in  map[inputs]*inputs
	one map[Target][]Target
}

func newInterned() interned {
	return interned{in: map[inputs]*inputs{}, one: map[Target][]Target{}}
}

func (m interned) of(old *Dynamic, in inputs) *inputs {
	if old != nil && *old.in == in {
		return old.in
	}
	p := m.in[in]
	if p == nil {
		p = &in
		m.in[in] = p
	}
	return p
}

// targets is a copy of ts: its own, since the caller's array is one for
// all names and a kept Dynamic must not keep it alive.
func (m interned) targets(ts []Target) []Target {
	if len(ts) != 1 {
		return slices.Clone(ts)
	}
	c := m.one[ts[0]]
	if c == nil {
		c = slices.Clone(ts)
		m.one[ts[0]] = c
	}
	return c
}

// Policy is the policy the name answers with (nil: round-robin).
func (d *Dynamic) Policy() policy.Policy { return d.in.policy }

// options are the scalar settings of a Name.
type options struct {
	ttl        uint32
	policy     policy.Policy
	maxAnswers int
	minHealthy int
	fallback   FallbackKind
	geo        *policy.Geo
	stickyBits [2]int
}

func optionsOf(n *Name) options {
	return options{ttl: n.TTL, policy: n.Policy, maxAnswers: n.MaxAnswers, minHealthy: n.MinHealthy,
		fallback: n.Fallback, geo: n.Geo, stickyBits: n.StickyBits}
}

// Set is the answer for one address family.
type Set struct {
	ans     policy.Answer // nil: no records
	rot     *atomic.Uint64
	Outcome Outcome
	records bool // a query may get records (else NODATA)
}

// Addrs are the addresses answered: the healthy ones, or the fallback's.
func (s *Set) Addrs() []netip.Addr {
	if s.ans == nil {
		return nil
	}
	return s.ans.Addrs()
}

// Target is a health-aware target as the builder sees it.
type Target struct {
	Addr    netip.Addr
	Tier    int
	Weight  int
	Region  string // "" for none
	Healthy bool
	// Drained: an operator took it out of rotation (package override);
	// answered only when no other target of its family may be. (Beside
	// Healthy: a Target of 64 bytes, not 72.)
	Drained bool
}

// FallbackKind is what a name answers when nothing is healthy.
type FallbackKind uint8

const (
	// FallbackAll answers every target (as Route 53 does).
	FallbackAll FallbackKind = iota
	// FallbackLastGood answers the last healthy set.
	FallbackLastGood
	// FallbackFixed answers a fixed list of addresses.
	FallbackFixed
	// FallbackNone answers NODATA with a short negative TTL.
	FallbackNone
)

// Name is a health-aware name as the builder sees it.
type Name struct {
	FQDN       string // lower case
	TTL        uint32
	Policy     policy.Policy // nil: round-robin
	MaxAnswers int
	MinHealthy int
	Fallback   FallbackKind
	Fixed      []netip.Addr
	LastGood   []netip.Addr // the previous healthy set, for FallbackLastGood
	Targets    []Target
	// Geo is the block's regions and the name's order (shared, never
	// written), for geo and for the region of sticky answers.
	Geo *policy.Geo
	// StickyBits are the client prefix lengths sticky hashes (0s: the
	// default).
	StickyBits [2]int
}

// Build makes a snapshot. prev (may be nil) passes round-robin positions on,
// so a rebuild does not restart every rotation.
func Build(prev *Snapshot, zones []*zone.Data, names []Name) *Snapshot {
	if prev != nil && prev.builtFrom(zones, names) {
		return prev // immutable: the same answers, rotations included
	}
	s := &Snapshot{in: zones}
	for _, d := range zones {
		z := &Zone{
			Origin: d.Origin,
			src:    d.SOA,
			names:  zone.NewNameMap[*node](),
			single: d.Single,
			ents:   make(map[string]bool),
			cuts:   make(map[string]bool),
			dnames: make(map[string]bool),
		}
		neg := dns.Copy(d.SOA).(*dns.SOA)
		neg.Hdr.Ttl = min(d.SOA.Hdr.Ttl, d.SOA.Minttl)
		z.negSOA = neg
		add := func(owner string, nd node) {
			if owner != d.Origin && len(nd.get(dns.TypeNS)) > 0 {
				z.cuts[owner] = true
			}
			if len(nd.get(dns.TypeDNAME)) > 0 {
				z.dnames[owner] = true
			}
			if strings.HasPrefix(owner, "*.") || strings.Contains(owner, ".*.") {
				z.wildcards = true // a wildcard, perhaps only an empty non-terminal
			}
		}
		for owner, types := range d.Names {
			z.names.Set(owner, &node{rrs: types})
			add(owner, node{rrs: types})
		}
		for owner, rrs := range d.Single.All() {
			if len(rrs) > 0 {
				add(owner, node{one: rrs}) // looked up in z.single
			}
		}
		s.zones = append(s.zones, z)
	}
	sort.Slice(s.zones, func(i, j int) bool { return len(s.zones[i].Origin) > len(s.zones[j].Origin) })
	in := newInterned()
	for _, n := range names {
		z := s.zoneOf(n.FQDN)
		if z == nil {
			continue
		}
		nd := z.names.Get(n.FQDN)
		if nd == nil {
			nd = &node{}
			if rrs, ok := z.single.Lookup(n.FQDN); ok && len(rrs) > 0 {
				nd.one = rrs
			}
			z.names.Set(n.FQDN, nd)
		}
		if nd.di == 0 {
			s.dyn++
		} else if policy.Tailors(s.dynOf(nd).Policy()) {
			s.tailoring-- // the same name twice: the last one counts
		}
		s.setDyn(nd, buildDynamic(prev, z, n, in))
		if policy.Tailors(n.Policy) {
			s.tailoring++
		}
		if strings.HasPrefix(n.FQDN, "*.") {
			z.wildcards = true // a health-aware wildcard (RFC 4592)
		}
	}
	for _, z := range s.zones {
		for owner := range z.names.All() {
			z.entsOf(owner)
		}
		for owner, rrs := range z.single.All() {
			if len(rrs) > 0 {
				z.entsOf(owner)
			}
		}
	}
	return s
}

// entsOf marks the ancestors of owner that are no owners as empty
// non-terminals.
func (z *Zone) entsOf(owner string) {
	for p := parent(owner); p != "" && len(p) > len(z.Origin); p = parent(p) {
		if !z.has(p) {
			z.ents[p] = true
		}
	}
}

func buildDynamic(prev *Snapshot, z *Zone, n Name, in interned) *Dynamic {
	var old *Dynamic
	if prev != nil {
		old = prev.Dynamic(n.FQDN)
	}
	return rebuildDynamic(old, z, n, in)
}

// rebuildDynamic builds the answer of n, taking old's rotation on; old
// itself when it was built from the same input.
func rebuildDynamic(old *Dynamic, z *Zone, n Name, in interned) *Dynamic {
	if reusable(old, z, n) {
		return old // immutable: shared, rotation included
	}
	ttl := negTTL(z, n)
	neg := z.negByTTL[ttl]
	if neg == nil { // z is unpublished (see Update)
		neg = dns.Copy(z.negSOA).(*dns.SOA)
		neg.Hdr.Ttl = ttl
		if z.negByTTL == nil {
			z.negByTTL = map[uint32]*dns.SOA{}
		}
		z.negByTTL[ttl] = neg
	}
	dy := &Dynamic{Name: n.FQDN, in: in.of(old, inputs{optionsOf(&n), z.src, neg}), targets: in.targets(n.Targets)}
	if len(n.Fixed) > 0 || len(n.LastGood) > 0 {
		dy.fallbacks = &fallbacks{n.Fixed, n.LastGood}
	}
	var prevA, prevAAAA *Set
	if old != nil {
		prevA, prevAAAA = &old.A, old.AAAA
	}
	buildSet(&dy.A, prevA, n, true)
	dy.AAAA = noSet
	var aaaa Set
	if buildSet(&aaaa, prevAAAA, n, false) {
		dy.AAAA = &aaaa
	}
	return dy
}

// Input is what d was built from (or an input equal to it): read only,
// its slices are the snapshot's. A caller that rebuilds some names needs
// no copy of the others' inputs of its own.
func (d *Dynamic) Input() Name {
	o := d.in.options
	n := Name{FQDN: d.Name, TTL: o.ttl, Policy: o.policy, MaxAnswers: o.maxAnswers, MinHealthy: o.minHealthy,
		Fallback: o.fallback, Targets: d.targets, Geo: o.geo, StickyBits: o.stickyBits}
	if f := d.fallbacks; f != nil {
		n.Fixed, n.LastGood = f.fixed, f.lastGood
	}
	return n
}

// builtFrom reports whether d builds the same answers as n would.
func (d *Dynamic) builtFrom(n *Name) bool {
	var fixed, lastGood []netip.Addr
	if f := d.fallbacks; f != nil {
		fixed, lastGood = f.fixed, f.lastGood
	}
	return d.Name == n.FQDN && d.in.options == optionsOf(n) && slices.Equal(fixed, n.Fixed) &&
		slices.Equal(lastGood, n.LastGood) && slices.Equal(d.targets, n.Targets)
}

// reusable reports whether old answers for n in z as it is.
func reusable(old *Dynamic, z *Zone, n Name) bool {
	return old != nil && old.in.src == z.src && old.builtFrom(&n)
}

// negTTL is the TTL of n's negative answers in z.
func negTTL(z *Zone, n Name) uint32 { return min(z.negSOA.Hdr.Ttl, n.TTL) }

// buildSet builds the answer of one family of n into s, and reports
// whether the family has targets (else s is empty).
func buildSet(s *Set, prev *Set, n Name, is4 bool) bool {
	var ts []policy.Target
	var drained []bool
	for _, t := range n.Targets {
		if t.Addr.Is4() == is4 {
			ts = append(ts, policy.Target{RR: addrRR(n.FQDN, n.TTL, t.Addr), Addr: t.Addr, Healthy: t.Healthy, Tier: t.Tier, Weight: t.Weight, Region: t.Region})
			drained = append(drained, t.Drained)
		}
	}
	if len(ts) == 0 {
		s.Outcome = Static // the family has no targets: plain NODATA
		return false
	}
	if prev != nil && prev.rot != nil {
		s.rot = prev.rot
	} else {
		s.rot = new(atomic.Uint64) // for a family with targets only
	}
	// The fallback first: a policy that has nothing for some clients (geo)
	// answers it to them.
	var fb []netip.Addr
	switch n.Fallback {
	case FallbackNone:
	case FallbackFixed:
		fb = family(n.Fixed, is4)
	case FallbackLastGood:
		fb = family(n.LastGood, is4)
		if len(fb) == 0 {
			fb = addrs(ts)
		}
	default:
		fb = addrs(ts)
	}
	var fbTargets []policy.Target
	for _, a := range fb {
		fbTargets = append(fbTargets, policy.Target{RR: rrOf(ts, a, n), Addr: a, Healthy: true})
	}
	pol := n.Policy
	if pol == nil {
		pol = policy.Default()
	}
	// The fallback's answer is made only where it may be answered: a
	// policy that answers some clients nothing (geo) gets it; the others
	// answer it only when they have nothing at all.
	var fallback policy.Answer
	if policy.Tailors(pol) {
		fallback = policy.Rotate(fbTargets, n.MaxAnswers, s.rot)
	}
	s.ans = buildDrained(pol, ts, drained, policy.Options{
		MaxAnswers: n.MaxAnswers, MinHealthy: max(n.MinHealthy, 1), Rot: s.rot,
		Geo: n.Geo, Fallback: fallback, StickyBits: n.StickyBits,
	})
	if s.ans != nil {
		s.Outcome = Healthy
		answered := s.ans.Addrs()
		for _, t := range ts {
			s.records = s.records || slices.Contains(answered, t.Addr)
		}
		if len(fbTargets) > 0 && len(answered) < len(ts) {
			// Some clients may get the fallback (geo): its records count.
			for _, t := range fbTargets {
				s.records = s.records || !slices.Contains(answered, t.Addr)
			}
		}
		return true
	}
	s.Outcome = Fallback
	if fallback == nil {
		fallback = policy.Rotate(fbTargets, n.MaxAnswers, s.rot)
	}
	s.ans = fallback // its addresses are fb's (Addrs)
	s.records = len(fbTargets) > 0
	if len(fb) == 0 {
		s.Outcome = Empty
	}
	return true
}

// rrOf is the record of address a: a target's own when a is one, else new.
func rrOf(ts []policy.Target, a netip.Addr, n Name) dns.RR {
	for _, t := range ts {
		if t.Addr == a {
			return t.RR
		}
	}
	return addrRR(n.FQDN, n.TTL, a)
}

// builtFrom reports whether s was built from the same zone data and names:
// most rebuilds on a large server change nothing (a verdict held, a
// record elsewhere).
func (s *Snapshot) builtFrom(zones []*zone.Data, names []Name) bool {
	if len(zones) != len(s.in) {
		return false
	}
	for i := range zones {
		if zones[i] != s.in[i] {
			return false
		}
	}
	n := 0
	for _, nm := range names {
		z := s.zoneOf(nm.FQDN)
		if z == nil {
			continue
		}
		nd := z.names.Get(nm.FQDN)
		if nd == nil || nd.di == 0 {
			return false
		}
		if dy := s.dynOf(nd); dy.in.src != z.src || !dy.builtFrom(&nm) {
			return false
		}
		n++
	}
	return n == s.dyn
}

func family(as []netip.Addr, is4 bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if a.Is4() == is4 {
			out = append(out, a)
		}
	}
	return out
}

func addrs(ts []policy.Target) []netip.Addr {
	out := make([]netip.Addr, len(ts))
	for i, t := range ts {
		out[i] = t.Addr
	}
	return out
}

func addrRR(name string, ttl uint32, a netip.Addr) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()}
}

// parent returns the name with its first label removed, "" at the root.
func parent(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

func (s *Snapshot) zoneOf(qname string) *Zone {
	for _, z := range s.zones {
		if InZone(z.Origin, qname) {
			return z
		}
	}
	return nil
}

// Tailors reports whether some name's answers may depend on the client.
func (s *Snapshot) Tailors() bool { return s.tailoring > 0 }

// Covers reports whether a zone of the snapshot holds qname (lower case).
func (s *Snapshot) Covers(qname string) bool { return s.zoneOf(qname) != nil }

// InZone reports whether name is origin or below it. Both are lower-case
// FQDNs. Unlike dns.IsSubDomain it does not allocate, which matters on the
// query path.
func InZone(origin, name string) bool {
	if origin == "." {
		return true
	}
	if !strings.HasSuffix(name, origin) {
		return false
	}
	i := len(name) - len(origin)
	if i == 0 {
		return true
	}
	if name[i-1] != '.' {
		return false
	}
	// The dot must end a label, not be an escaped "\." inside one.
	slashes := 0
	for j := i - 2; j >= 0 && name[j] == '\\'; j-- {
		slashes++
	}
	return slashes%2 == 0
}

// Dynamic returns the built answer of a health-aware name, or nil.
func (s *Snapshot) Dynamic(fqdn string) *Dynamic {
	z := s.zoneOf(fqdn)
	if z == nil {
		return nil
	}
	nd := z.names.Get(fqdn)
	if nd == nil {
		return nil
	}
	return s.dynOf(nd)
}

// chunk is how many answers a chunk of dyns holds.
const chunk = 256

// dynOf is the built answer of a node, nil for a static one.
func (s *Snapshot) dynOf(nd *node) *Dynamic {
	if nd.di == 0 {
		return nil
	}
	i := int(nd.di - 1)
	return s.dyns[i/chunk][i%chunk]
}

// setDyn sets the answer of a node, giving it an index if it has none:
// while Build fills a snapshot nobody reads yet.
func (s *Snapshot) setDyn(nd *node, d *Dynamic) {
	if nd.di == 0 {
		i := 0
		if k := len(s.dyns); k > 0 {
			i = (k-1)*chunk + len(s.dyns[k-1])
		}
		if i%chunk == 0 {
			s.dyns = append(s.dyns, make([]*Dynamic, 0, chunk))
		}
		s.dyns[i/chunk] = append(s.dyns[i/chunk], d)
		nd.di = int32(i + 1)
		return
	}
	i := int(nd.di - 1)
	s.dyns[i/chunk][i%chunk] = d
}

// Rezone returns a snapshot that answers as prev does, but from zones,
// each of which is prev's own or was made from it by changing a few
// names (zone.Data's From and Changed): only those names' nodes are made
// again. ok is false when a zone cannot be patched so (a name removed, a
// delegation, DNAME or wildcard changed, another SOA): Build it.
func Rezone(prev *Snapshot, zones []*zone.Data) (s *Snapshot, ok bool) {
	if len(zones) != len(prev.in) {
		return prev, false
	}
	c := *prev
	c.in = zones
	c.zones = slices.Clone(prev.zones)
	c.ValidUntil = time.Time{}
	changed := false
	for i, d := range zones {
		old := prev.in[i]
		if d == old {
			continue
		}
		if d.From == 0 || d.From != old.Gen || d.SOA != old.SOA || d.Origin != old.Origin {
			return prev, false
		}
		zi := slices.IndexFunc(c.zones, func(z *Zone) bool { return z.Origin == d.Origin })
		if zi < 0 {
			return prev, false
		}
		z, ok := rezone(c.zones[zi], d)
		if !ok {
			return prev, false
		}
		c.zones[zi] = z
		changed = true
	}
	if !changed {
		return prev, true
	}
	return &c, true
}

// rezone patches the changed names of d into a copy of z.
func rezone(z *Zone, d *zone.Data) (*Zone, bool) {
	nz := *z
	nz.names = z.names.Clone()
	nz.single = d.Single
	var ents map[string]bool
	for _, owner := range d.Changed {
		nd, ok := nodeOf(d, owner)
		var buf node
		old := z.lookup(owner, &buf)
		existed := old != nil
		if !ok || len(nd.get(dns.TypeNS)) > 0 || len(nd.get(dns.TypeDNAME)) > 0 || strings.Contains(owner, "*") ||
			(existed && (len(old.get(dns.TypeNS)) > 0 || len(old.get(dns.TypeDNAME)) > 0)) {
			return nil, false // removed, or a cut, DNAME or wildcard: Build
		}
		if existed {
			nd.di = old.di
		}
		switch {
		case nd.one == nil || nd.di != 0:
			nz.names.Set(owner, nd)
		case z.names.Get(owner) != nil:
			nz.names.Delete(owner) // single now: nz.single has it
		}
		if existed {
			continue
		}
		// A new owner: it is no longer an empty non-terminal, and its
		// ancestors may become ones.
		if ents == nil {
			ents = maps.Clone(z.ents)
		}
		delete(ents, owner)
		for p := parent(owner); p != "" && len(p) > len(z.Origin); p = parent(p) {
			if !nz.has(p) {
				ents[p] = true
			}
		}
	}
	if ents != nil {
		nz.ents = ents
	}
	return &nz, true
}

// Update returns a snapshot that answers as prev does, but for the names
// given, whose answers it builds again from them; prev itself when none
// differs from what prev was built from. It costs what changed (the
// chunks of the names changed), not the zones' names. ok is false when a
// name is not a health-aware name of prev, for Build. Names in no zone of
// prev are ignored, as Build ignores them.
//
// prev may be published: nothing it shares is written. A zone that needs
// a negative SOA at a TTL it has none of yet (a name given a new TTL:
// rare, names share a few) is copied, with its small map of them.
func Update(prev *Snapshot, names []Name) (s *Snapshot, ok bool) {
	s = prev
	copied := map[int]bool{}
	in := newInterned()
	var own map[*Zone]bool // the zones this Update copied
	for _, n := range names {
		z := s.zoneOf(n.FQDN)
		if z == nil {
			continue
		}
		nd := z.names.Get(n.FQDN)
		if nd == nil || nd.di == 0 {
			return prev, false
		}
		old := s.dynOf(nd)
		if reusable(old, z, n) {
			continue
		}
		if s == prev {
			c := *prev
			c.dyns = slices.Clone(prev.dyns)
			c.ValidUntil = time.Time{}
			s = &c
		}
		if z.negByTTL[negTTL(z, n)] == nil && !own[z] {
			if own == nil {
				own = map[*Zone]bool{}
				s.zones = slices.Clone(s.zones)
			}
			nz := *z
			nz.negByTTL = maps.Clone(z.negByTTL)
			s.zones[slices.Index(s.zones, z)] = &nz
			z = &nz
			own[z] = true
		}
		d := rebuildDynamic(old, z, n, in)
		i := int(nd.di - 1)
		if !copied[i/chunk] {
			s.dyns[i/chunk] = slices.Clone(s.dyns[i/chunk])
			copied[i/chunk] = true
		}
		s.dyns[i/chunk][i%chunk] = d
		if old != nil && policy.Tailors(old.Policy()) {
			s.tailoring--
		}
		if policy.Tailors(n.Policy) {
			s.tailoring++
		}
	}
	return s, true
}

// EachName calls fn for every health-aware name, in no order: for a
// caller that visits them all and needs no sorting.
func (s *Snapshot) EachName(fn func(*Dynamic)) {
	for _, c := range s.dyns {
		for _, d := range c {
			fn(d)
		}
	}
}

// Names returns the health-aware names of the snapshot.
func (s *Snapshot) Names() []*Dynamic {
	var out []*Dynamic
	s.EachName(func(d *Dynamic) { out = append(out, d) })
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pick appends this query's share of the set to ans.
func (s *Set) pick(ans []dns.RR, c policy.Client) ([]dns.RR, policy.Choice) {
	if s.ans == nil {
		return ans, policy.Choice{Region: -1}
	}
	return s.ans.Pick(ans, c)
}

func (s *Set) size() int {
	if s.ans == nil {
		return 0
	}
	return s.ans.Len()
}

// buildDrained builds with pol as if drained targets were down, and only
// if that leaves nothing, from the drained targets alone: a drained
// target answers only when nothing else may, under every policy.
func buildDrained(pol policy.Policy, ts []policy.Target, drained []bool, o policy.Options) policy.Answer {
	if !slices.Contains(drained, true) {
		return pol.Build(ts, o)
	}
	only := func(want bool) []policy.Target {
		out := slices.Clone(ts)
		for i := range out {
			out[i].Healthy = out[i].Healthy && drained[i] == want
		}
		return out
	}
	if a := pol.Build(only(false), o); a != nil {
		return a
	}
	return pol.Build(only(true), o)
}
