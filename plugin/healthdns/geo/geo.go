// Package geo says where a query's client is: the region of its address
// (the EDNS Client Subnet, else the source address) from the topology
// table, longest prefix first, then from the country and continent codes
// that CoreDNS's geoip plugin puts in the request's metadata, then the
// block's default region. It reads no GeoIP database itself.
//
// The table is an immutable binary trie built at setup; a lookup walks at
// most one path and allocates nothing.
package geo

import (
	"net/netip"

	"github.com/coredns/coredns/plugin/metadata"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
)

// Metadata labels of the geoip plugin that regions may be mapped from.
const (
	CountryLabel   = "geoip/country/code"
	ContinentLabel = "geoip/continent/code"
)

// Entry is one line of the topology table: a network and its region.
type Entry struct {
	Prefix netip.Prefix
	Region int
}

// Table maps addresses to regions, the longest prefix winning.
type Table struct {
	nodes []node // nodes[0] is unused: child 0 means none
	roots [2]int32
}

type node struct {
	child  [2]int32
	region int32 // -1: no entry ends here
}

// NewTable builds the table. A prefix given twice keeps its last region.
func NewTable(entries []Entry) *Table {
	t := &Table{nodes: []node{{region: -1}}}
	for f := range t.roots {
		t.roots[f] = t.add()
	}
	for _, e := range entries {
		p := e.Prefix.Masked()
		a := p.Addr()
		n := t.roots[family(a)]
		for d := 0; d < p.Bits(); d++ {
			b := bit(a, d)
			if t.nodes[n].child[b] == 0 {
				c := t.add()
				t.nodes[n].child[b] = c
			}
			n = t.nodes[n].child[b]
		}
		t.nodes[n].region = int32(e.Region)
	}
	return t
}

func (t *Table) add() int32 {
	t.nodes = append(t.nodes, node{region: -1})
	return int32(len(t.nodes) - 1)
}

// Len is how many nodes the trie has, for tests of its shape.
func (t *Table) Len() int { return len(t.nodes) - 1 }

// Lookup returns the region of the longest prefix holding a (-1 for none)
// and the scope: the prefix length of a's network inside which every
// address gets the same result, what an ECS answer must say so that a
// resolver caches it no wider than it holds.
func (t *Table) Lookup(a netip.Addr) (region, scope int) {
	if t == nil || !a.IsValid() {
		return -1, 0
	}
	a = a.Unmap()
	n := t.roots[family(a)]
	region = -1
	for d := 0; ; d++ {
		nd := &t.nodes[n]
		if nd.region >= 0 {
			region = int(nd.region)
		}
		if d == a.BitLen() {
			return region, d
		}
		b := bit(a, d)
		c := nd.child[b]
		if c == 0 {
			if nd.child[1-b] == 0 {
				return region, d // nothing below: all of this network alike
			}
			return region, d + 1 // the other half holds more specific entries
		}
		n = c
	}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// bit is a's d-th bit from the left.
func bit(a netip.Addr, d int) int {
	if a.Is4() {
		b := a.As4()
		return int(b[d/8]>>(7-d%8)) & 1
	}
	b := a.As16()
	return int(b[d/8]>>(7-d%8)) & 1
}

// Locator finds a client's region: the table, then the geoip codes, then
// the default.
type Locator struct {
	Table      *Table         // may be nil
	Countries  map[string]int // ISO 3166 country code -> region
	Continents map[string]int // continent code (EU, NA, ...) -> region
	Default    int            // -1: none
}

var _ policy.Locator = (*Locator)(nil)

// Locate implements policy.Locator.
func (l *Locator) Locate(c policy.Client) (region, scope int) {
	if !c.Addr.IsValid() {
		return l.Default, 0
	}
	region, scope = l.Table.Lookup(c.Addr)
	if region >= 0 {
		return region, scope
	}
	if len(l.Countries) > 0 || len(l.Continents) > 0 {
		// The geoip database's networks are not known here: the answer
		// holds for the subnet the client gave.
		scope = c.Bits
		if r, ok := l.fromMetadata(c, CountryLabel, l.Countries); ok {
			return r, scope
		}
		if r, ok := l.fromMetadata(c, ContinentLabel, l.Continents); ok {
			return r, scope
		}
	}
	return l.Default, scope
}

func (l *Locator) fromMetadata(c policy.Client, label string, m map[string]int) (int, bool) {
	if len(m) == 0 || c.Ctx == nil {
		return -1, false
	}
	f := metadata.ValueFunc(c.Ctx, label)
	if f == nil {
		return -1, false
	}
	r, ok := m[f()]
	return r, ok
}
