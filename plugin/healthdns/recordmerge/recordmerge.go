// Package recordmerge is the record-merging model: it turns the zone
// files, the Corefile's health-aware names and every owner's records (as
// ExternalDNS wrote them through the webhook, or gossip brought them) into
// the names and zones a server answers from. An owner's A and AAAA records
// become targets of their name (a name of the Corefile keeps its policy
// and options), TXT and CNAME records become static records, and records
// that the zone file or the Corefile already answers, or that would break
// RFC 1034, are left out and logged once.
//
// Merge is a pure function of its Config and the records. A Merger gives
// the same answers and keeps what it derived, so that a change of a few
// records costs what they touch, not what every owner has (see Merger).
package recordmerge

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// Name is a health-aware name: one of the Corefile, or one that records
// define, or one of the Corefile with records' targets merged in.
type Name struct {
	FQDN    string
	Targets []Target
	// Settings are the rest: one for every name that records define
	// alike (100,000 records' names have a few), never written once the
	// name is merged.
	*Settings
}

// Settings are a Name's settings, but its targets.
type Settings struct {
	TTL        uint32
	Fallback   snapshot.FallbackKind
	Policy     policy.Policy
	MaxAnswers int
	MinHealthy int
	Fixed      []netip.Addr
	Quorum     health.Quorum
	// Order is the name's own order (geo), as written: one chain for
	// every client region, and chains for some; Geo is it built.
	Order      []string
	OrderFor   map[string][]string
	Geo        *policy.Geo
	StickyBits [2]int
}

// Target is one address of a Name with its health check: its spec,
// which the records' targets alike share (100,000 records' names have a
// few owners, addresses and checks), never written once the name is
// merged.
type Target struct{ *TargetSpec }

// TargetSpec is what a Target is.
type TargetSpec struct {
	Owner        string // "" for targets of the Corefile
	Tier, Weight int
	Region       string          // "" for none
	Probe        *probe.Target   // shared by the records' targets of one check and address (never written once made)
	ID           gossip.TargetID // the target's name on the wire
	// Key and VKey cache probe.Key and verdictKey for records' targets,
	// of which there may be hundreds of thousands; "" to compute them.
	Key, VKey string
	// Shared marks a target of a name that only records define: its
	// verdict is that of its address and check under the name's quorum,
	// shared by every such name (vkey is the group's), since it cannot
	// differ between them; one question a group, not one a name.
	Shared bool
}

// ProbeKey is t.Probe.Key(), cached when it can be.
func (t Target) ProbeKey() string {
	if t.Key != "" {
		return t.Key
	}
	return t.Probe.Key()
}

// Timing is the check timing of the targets that records define.
type Timing struct {
	Interval, Timeout time.Duration
	Rise, Fall        int
}

// Config is what the records are merged into: a healthdns block.
type Config struct {
	Zones  []*zone.Data
	Names  []*Name // the Corefile's health-aware names
	TTL    uint32  // records' TTL when they give none
	Timing Timing
	Geo    *policy.Geo // the order of a records' name
	// Warnf logs a record that is not served, once per record and
	// problem; nil logs nothing.
	Warnf func(format string, args ...any)
}

// Merger merges records into one Config, keeping what it derived, so that
// a change costs what it changes: only the names whose records a change
// touches are merged again. For every name whose merged content did not
// change, Merge returns the same *Name as the Merge before, and the same
// *zone.Data while no static record (TXT, CNAME) changed; what changed is
// new, never written over: the caller must not write a returned Name.
// The names come in Merge's order: the Corefile's, then those only
// records define by their first owner and name; a new Data says what it
// changed (zone.Data.From, Changed). Groups keep their order, new ones
// last; Probes follows the targets the same way.
type Merger struct {
	cfg         Config
	origins     []string
	warned      map[string]bool
	cutsOnce    map[string]bool                 // the zones' delegation points
	corefile    map[string]*Name                // the Corefile's names by FQDN
	targetCache map[targetCacheKey]cachedTarget // records' probe targets by check and address
	specs       map[specKey]*TargetSpec         // records' targets
	settings    map[settingsKey]*Settings       // records' names' settings

	ok     bool
	prev   records.State // what the last Merge merged
	heads  []records.OwnerHead
	names  []*Name
	zones  []*zone.Data
	groups []Group
	// byName is every name of the last Merge with targets, by FQDN.
	byName map[string]*Name
	// order is the names only records define, in Merge's order: by their
	// first owner, then by name.
	order []*Name
	refs  map[string]int // shared targets a verdict group has, by VKey
	// probes counts the targets of the names of the last Merge by probe
	// key; probeList is its targets (nil: to be made), probesTaken says
	// whether Probes gave them since they last changed.
	probes      map[string]*probeCount
	probeList   []probe.Target
	probesTaken bool
	unprobed    []string // probe keys whose count fell to 0 in this Merge
	whole       bool     // merge every name next time (tests)
}

// New returns a Merger of records into cfg.
func New(cfg Config) *Merger {
	m := &Merger{cfg: cfg, warned: map[string]bool{}, corefile: map[string]*Name{}}
	for _, z := range cfg.Zones {
		m.origins = append(m.origins, z.Origin)
	}
	for _, n := range cfg.Names {
		m.corefile[n.FQDN] = n
	}
	m.cutsOnce = m.cuts()
	return m
}

// Merge returns the names and zones to serve of cfg with the records of
// st merged in. Its results are read only: they share the Config's and
// the records' data.
func Merge(cfg Config, st records.State) ([]*Name, []*zone.Data) {
	return New(cfg).Merge(st)
}

// Groups are the verdict groups of the last Merge.
func (m *Merger) Groups() []Group {
	if !m.ok {
		return nil
	}
	return m.groups
}

// Group is a group of records' names' targets with one verdict: the
// targets (Shared) of every name that only records define, of one address
// and check under one quorum. The verdict round asks one question a group.
type Group struct {
	VKey, Key         string
	ID                gossip.TargetID
	Quorum            health.Quorum
	Interval, Timeout time.Duration // its check's timing, for freshness
}

// sharedKey names a group of shared targets, as verdict logs show it.
func sharedKey(q health.Quorum, probeKey string) string {
	return "records/" + q.String() + " " + probeKey
}

// Merge returns the names and zones to serve with the records of st
// merged in: the last Merge's while every owner's head is the same, else
// the last one with the names that the owners' changes since touch merged
// again (every name an owner had or has when its log of changes does not
// reach back that far; all names the first time, or when the changes
// touch so many that reading every record once costs less).
func (m *Merger) Merge(st records.State) ([]*Name, []*zone.Data) {
	heads := st.Heads()
	if m.ok && slices.Equal(heads, m.heads) {
		return m.names, m.zones
	}
	if !m.ok {
		m.names, m.zones = m.cfg.Names, m.cfg.Zones
		m.byName, m.refs, m.probes = map[string]*Name{}, map[string]int{}, map[string]*probeCount{}
		for _, n := range m.cfg.Names {
			if len(n.Targets) > 0 {
				m.byName[n.FQDN] = n
				m.countProbes(n, 1)
			}
		}
	}
	owners := st.Owners()
	touched, all := m.touched(st, owners)
	var res map[string]merged
	if all {
		res = m.mergeAll(st, owners)
	} else {
		res = make(map[string]merged, len(touched))
		for name := range touched {
			res[name+"."] = m.mergeName(st, owners, name)
		}
	}
	m.apply(res, all, len(owners) == 0)
	m.ok, m.prev, m.heads = true, st, heads
	return m.names, m.zones
}

// touched returns the names (canonical, as records spell them) whose
// records changed since the last Merge, or all when they had better be
// merged whole: the first Merge, an owner whose log of changes does not
// reach back to the last head seen, a change that touches most names.
func (m *Merger) touched(st records.State, owners []string) (map[string]bool, bool) {
	if !m.ok || m.whole {
		m.whole = false
		return nil, true
	}
	names := map[string]bool{}
	total := 0
	for _, o := range owners {
		total += st.Len(o)
	}
	// Merging a name asks every owner for it (a tree search each), where
	// merging all decodes every record once.
	limit := max(1024, 2*total/max(1, len(owners)))
	all := slices.Clone(owners)
	for _, o := range m.prev.Owners() {
		if !slices.Contains(owners, o) {
			all = append(all, o)
		}
	}
	for _, o := range all {
		from, to := m.prev.Head(o), st.Head(o)
		if from == to {
			continue
		}
		cs, ok := st.Since(o, from)
		if !ok {
			// Further behind than the log (the owner was installed whole,
			// as a peer sent it in a burst): what differs between what
			// it had and what it has, not every name it has, which made
			// a storm of such installs a storm of whole merges.
			st.ChangedNames(m.prev, o, func(name string) { names[name] = true })
		}
		for _, c := range cs {
			for _, e := range c.Put {
				names[e.DNSName] = true
			}
			for _, k := range c.Remove {
				names[k.Name] = true
			}
		}
		if len(names) > limit {
			return nil, true
		}
	}
	return names, false
}

// merged is what the records of one name make: a health-aware name (nil
// for none) and the static RRs to serve at it.
type merged struct {
	name   *Name
	static []dns.RR
}

// mergeAll merges every name, reading each owner's records once.
func (m *Merger) mergeAll(st records.State, owners []string) map[string]merged {
	bs := map[string]*nameBuilder{}
	for _, o := range owners {
		var b *nameBuilder
		st.RangeServed(o, func(e records.Endpoint) bool {
			if b == nil || b.dnsName != e.DNSName {
				if b = bs[e.DNSName]; b == nil {
					b = m.newBuilder(e.DNSName)
					bs[e.DNSName] = b
				}
			}
			b.add(o, e)
			return true
		})
	}
	res := make(map[string]merged, len(bs))
	for _, b := range bs {
		if r := b.finish(); r.name != nil || r.static != nil {
			res[b.fqdn] = r
		}
	}
	return res
}

// mergeName merges one name's records of every owner.
func (m *Merger) mergeName(st records.State, owners []string, dnsName string) merged {
	b := m.newBuilder(dnsName)
	for _, o := range owners {
		st.RangeName(o, dnsName, func(e records.Endpoint) bool {
			b.add(o, e)
			return true
		})
	}
	return b.finish()
}

// apply makes res (the names merged again, by FQDN; with all, every name
// records define) the Merger's answers, keeping the Name and zone.Data of
// whatever did not change.
func (m *Merger) apply(res map[string]merged, all, noOwners bool) {
	if all {
		for fqdn := range m.byName {
			if _, ok := res[fqdn]; !ok {
				res[fqdn] = merged{}
			}
		}
		for i, d := range m.zones {
			file := m.cfg.Zones[i].Names
			for fqdn, types := range d.Names {
				if _, ok := res[fqdn]; !ok && len(recordsRRs(types, file[fqdn])) > 0 {
					res[fqdn] = merged{}
				}
			}
			for fqdn := range d.Single.All() {
				if _, ok := res[fqdn]; !ok {
					res[fqdn] = merged{}
				}
			}
		}
	}
	var gone, added []*Name // names only records define
	corefileChanged := false
	staticChanged := map[string][]dns.RR{}
	for fqdn, r := range res {
		cf := m.corefile[fqdn]
		nw := r.name
		if nw == nil && cf != nil && len(cf.Targets) > 0 {
			nw = cf
		}
		old := m.byName[fqdn]
		if !sameName(old, nw) {
			m.countProbes(old, -1)
			m.countProbes(nw, 1)
			if nw != nil {
				m.byName[fqdn] = nw
			} else {
				delete(m.byName, fqdn)
			}
			if cf != nil {
				corefileChanged = true
			} else {
				if old != nil {
					gone = append(gone, old)
				}
				if nw != nil {
					added = append(added, nw)
				}
			}
		}
		if !sameRRs(m.staticOf(fqdn), r.static) {
			staticChanged[fqdn] = r.static
		}
	}
	m.dropUnprobed()
	m.updateGroups(gone, added)
	if corefileChanged || len(gone) > 0 || len(added) > 0 {
		m.order = splice(m.order, gone, added)
		if noOwners {
			m.names = m.cfg.Names
		} else {
			names := make([]*Name, 0, len(m.cfg.Names)+len(m.order))
			for _, n := range m.cfg.Names {
				if n := m.byName[n.FQDN]; n != nil {
					names = append(names, n)
				}
			}
			m.names = append(names, m.order...)
		}
	}
	if len(staticChanged) > 0 {
		m.zones = m.patchZones(staticChanged)
	}
}

type probeCount struct {
	t probe.Target
	n int
}

// countProbes counts n's targets in (d 1) or out (d -1) of m.probes.
func (m *Merger) countProbes(n *Name, d int) {
	if n == nil {
		return
	}
	for _, t := range n.Targets {
		k := t.ProbeKey()
		c := m.probes[k]
		if c == nil {
			c = &probeCount{t: *t.Probe}
			m.probes[k] = c
			m.probeList, m.probesTaken = nil, false
		}
		if c.n += d; c.n == 0 {
			m.unprobed = append(m.unprobed, k) // unless a name takes it again
		}
	}
}

// dropUnprobed forgets the probe targets no name has any more.
func (m *Merger) dropUnprobed() {
	for _, k := range m.unprobed {
		if c := m.probes[k]; c != nil && c.n <= 0 {
			delete(m.probes, k)
			m.probeList, m.probesTaken = nil, false
		}
	}
	m.unprobed = m.unprobed[:0]
}

// Probes returns the probe targets of the names of the last Merge, one a
// probe key, sorted by it, and whether they changed since the last call:
// what follows them (probing, the catalog) costs what changed.
func (m *Merger) Probes() ([]probe.Target, bool) {
	changed := !m.probesTaken
	m.probesTaken = true
	if m.probeList == nil {
		keys := slices.Sorted(maps.Keys(m.probes))
		m.probeList = make([]probe.Target, 0, len(keys))
		for _, k := range keys {
			m.probeList = append(m.probeList, m.probes[k].t)
		}
	}
	return m.probeList, changed
}

// staticOf is the records' static RRs the zones serve at fqdn: what its
// first zone has beyond the zone file's.
func (m *Merger) staticOf(fqdn string) []dns.RR {
	for i, d := range m.zones {
		if snapshot.InZone(d.Origin, fqdn) {
			if rrs, ok := d.Single.Lookup(fqdn); ok {
				return rrs // the zone file has none at fqdn
			}
			return recordsRRs(d.Names[fqdn], m.cfg.Zones[i].Names[fqdn])
		}
	}
	return nil
}

// oneType reports whether rrs are all of one type.
func oneType(rrs []dns.RR) bool {
	for _, rr := range rrs[1:] {
		if rr.Header().Rrtype != rrs[0].Header().Rrtype {
			return false
		}
	}
	return true
}

// recordsRRs returns the RRs of types beyond those of file (the zone file's
// at the same name): the records' ones, all of one type (TXT or CNAME).
func recordsRRs(types, file map[uint16][]dns.RR) []dns.RR {
	for t, rrs := range types {
		if len(rrs) > len(file[t]) {
			return rrs[len(file[t]):]
		}
	}
	return nil
}

// patchZones returns the zones with the records' static RRs of the names
// in changed as given (nil: none), sharing every other name's.
func (m *Merger) patchZones(changed map[string][]dns.RR) []*zone.Data {
	zones := slices.Clone(m.zones)
	for i, d := range zones {
		file := m.cfg.Zones[i]
		var cp *zone.Data
		for n, rrs := range changed {
			if !snapshot.InZone(d.Origin, n) {
				continue
			}
			if cp == nil {
				// A map copy of every name: a few ms for 100,000 names, and
				// what the snapshot's zone data is today.
				cp = &zone.Data{Origin: d.Origin, SOA: d.SOA, Names: maps.Clone(d.Names), Single: d.Single.Clone(), Gen: zone.NextGen(), From: d.Gen}
			}
			cp.Changed = append(cp.Changed, n)
			cp.Single.Delete(n)
			if len(rrs) > 0 && file.Names[n] == nil && oneType(rrs) {
				// Most records' names: a slice, not a map of one type.
				delete(cp.Names, n)
				cp.Single.Set(n, rrs)
				continue
			}
			if len(rrs) == 0 {
				if ts := file.Names[n]; ts != nil {
					cp.Names[n] = ts
				} else {
					delete(cp.Names, n)
				}
				continue
			}
			types := make(map[uint16][]dns.RR, len(file.Names[n])+1)
			for t, v := range file.Names[n] {
				types[t] = v
			}
			for _, rr := range rrs {
				t := rr.Header().Rrtype
				if len(types[t]) == len(file.Names[n][t]) {
					types[t] = slices.Clip(types[t]) // never append into the zone file's array
				}
				types[t] = append(types[t], rr)
			}
			cp.Names[n] = types
		}
		if cp != nil {
			slices.Sort(cp.Changed)
			if 2*len(cp.Changed) > len(cp.Names)+cp.Single.Len() {
				// Most names changed (the first Merge): a Data made whole,
				// which a build costs no more than a patch, and no list of
				// them all kept with it.
				cp.From, cp.Changed = 0, nil
			}
			zones[i] = cp
		}
	}
	return zones
}

// updateGroups counts the shared targets of names gone and added into
// the verdict groups: a group is added when its first target comes and
// dropped with its last, the others keep their place.
func (m *Merger) updateGroups(gone, added []*Name) {
	drop := false
	for _, n := range gone {
		for _, t := range n.Targets {
			if t.Shared {
				m.refs[t.VKey]--
				drop = drop || m.refs[t.VKey] == 0
			}
		}
	}
	var fresh []Group
	for _, n := range added {
		for _, t := range n.Targets {
			if !t.Shared {
				continue
			}
			if m.refs[t.VKey]++; m.refs[t.VKey] == 1 && !slices.ContainsFunc(m.groups, func(g Group) bool { return g.VKey == t.VKey }) {
				fresh = append(fresh, Group{VKey: t.VKey, Key: t.Key, ID: t.ID, Quorum: n.Quorum, Interval: t.Probe.Interval, Timeout: t.Probe.Timeout})
			}
		}
	}
	if !drop && len(fresh) == 0 {
		return
	}
	groups := make([]Group, 0, len(m.groups)+len(fresh))
	for _, g := range m.groups {
		if m.refs[g.VKey] > 0 {
			groups = append(groups, g)
		}
	}
	for vk, c := range m.refs {
		if c <= 0 {
			delete(m.refs, vk)
		}
	}
	m.groups = append(groups, fresh...)
}

// orderKey is a records' name's place in Merge's order: its first
// owner's (that of its first target), then its name as records spell it.
func orderKey(a, b *Name) int {
	if c := strings.Compare(a.Targets[0].Owner, b.Targets[0].Owner); c != 0 {
		return c
	}
	return strings.Compare(strings.TrimSuffix(a.FQDN, "."), strings.TrimSuffix(b.FQDN, "."))
}

// splice returns order (sorted by orderKey) without gone and with added:
// a copy of the pointers, which costs little beside merging a name.
func splice(order, gone, added []*Name) []*Name {
	type cut struct {
		at   int
		add  *Name // nil: drop order[at]
		rank int
	}
	cuts := make([]cut, 0, len(gone)+len(added))
	for _, n := range gone {
		if i, ok := slices.BinarySearchFunc(order, n, orderKey); ok && order[i] == n {
			cuts = append(cuts, cut{at: i, rank: 1})
		}
	}
	slices.SortFunc(added, orderKey)
	for j, n := range added {
		i, _ := slices.BinarySearchFunc(order, n, orderKey)
		cuts = append(cuts, cut{at: i, add: n, rank: -len(added) + j})
	}
	slices.SortFunc(cuts, func(a, b cut) int {
		if a.at != b.at {
			return a.at - b.at
		}
		return a.rank - b.rank // adds, in order, before the drop of order[at]
	})
	out := make([]*Name, 0, len(order)-len(gone)+len(added))
	next := 0
	for _, c := range cuts {
		out = append(out, order[next:c.at]...)
		next = c.at
		if c.add != nil {
			out = append(out, c.add)
		} else {
			next = c.at + 1
		}
	}
	return append(out, order[next:]...)
}

// sameName reports whether a and b answer alike.
func sameName(a, b *Name) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.FQDN != b.FQDN || a.Settings != b.Settings && !sameSettings(a.Settings, b.Settings) || len(a.Targets) != len(b.Targets) {
		return false
	}
	for i := range a.Targets {
		x, y := a.Targets[i].TargetSpec, b.Targets[i].TargetSpec
		if x != y && (x.Owner != y.Owner || x.Tier != y.Tier || x.Weight != y.Weight || x.Region != y.Region ||
			x.ID != y.ID || x.VKey != y.VKey || x.Shared != y.Shared || x.Probe.Addr != y.Probe.Addr ||
			x.Key != y.Key || a.Targets[i].ProbeKey() != b.Targets[i].ProbeKey()) {
			return false
		}
	}
	return true
}

// sameSettings reports whether a and b answer alike.
func sameSettings(a, b *Settings) bool {
	if a.TTL != b.TTL || a.Policy != b.Policy || a.MaxAnswers != b.MaxAnswers ||
		a.MinHealthy != b.MinHealthy || a.Fallback != b.Fallback || !slices.Equal(a.Fixed, b.Fixed) ||
		a.Quorum != b.Quorum || a.Geo != b.Geo || a.StickyBits != b.StickyBits ||
		!slices.Equal(a.Order, b.Order) || len(a.OrderFor) != len(b.OrderFor) {
		return false
	}
	for k, v := range a.OrderFor {
		if !slices.Equal(v, b.OrderFor[k]) {
			return false
		}
	}
	return true
}

// sameRRs reports whether two lists of records are the same records.
func sameRRs(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		// Not String(): it formatted two RRs a name, 62 MB of a storm's
		// garbage. IsDuplicate ignores the TTL and the names' case.
		ha, hb := a[i].Header(), b[i].Header()
		if ha.Name != hb.Name || ha.Ttl != hb.Ttl || !dns.IsDuplicate(a[i], b[i]) {
			return false
		}
	}
	return true
}

type targetCacheKey struct {
	check string
	addr  netip.Addr
}

// cachedTarget is what a records' target costs to derive once: its check
// parsed, its probe key, its group's key and its ID.
type cachedTarget struct {
	probe *probe.Target
	key   string
	vkey  string // sharedKey under the majority quorum of records' names
	id    gossip.TargetID
	err   error
}

// recordTarget returns the probe target of check spec at addr, derived
// once and then cached (records repeat a few load balancers' addresses
// over thousands of names), so that their targets share its strings and
// checks.
func (m *Merger) recordTarget(spec string, addr netip.Addr) cachedTarget {
	k := targetCacheKey{spec, addr}
	if ct, ok := m.targetCache[k]; ok {
		return ct
	}
	if len(m.targetCache) >= maxTargetCache {
		clear(m.targetCache)
	}
	ch, err := records.CheckFor(spec, addr)
	ct := cachedTarget{err: err}
	if err == nil {
		ct.probe = &probe.Target{Addr: addr, Checks: []probe.Check{ch}, Interval: m.cfg.Timing.Interval, Timeout: m.cfg.Timing.Timeout, Rise: m.cfg.Timing.Rise, Fall: m.cfg.Timing.Fall}
		ct.key = ct.probe.Key()
		ct.vkey = sharedKey(health.Quorum{Kind: health.Majority}, ct.key)
		ct.id = gossip.IDOf(*ct.probe)
	}
	if m.targetCache == nil {
		m.targetCache = map[targetCacheKey]cachedTarget{}
	}
	m.targetCache[k] = ct
	return ct
}

const maxTargetCache = 1 << 16

type specKey struct {
	owner, check, region string
	addr                 netip.Addr
	tier, weight         int
	hasWeight            bool
}

// recordSpec returns the spec of owner's target at addr with the
// record's properties, made once and then shared by every such target.
func (m *Merger) recordSpec(owner string, props records.Properties, addr netip.Addr) (*TargetSpec, error) {
	k := specKey{owner: owner, check: props.Check, region: props.Region, addr: addr, tier: props.Tier, weight: props.Weight, hasWeight: props.HasWeight}
	if sp := m.specs[k]; sp != nil {
		return sp, nil
	}
	ct := m.recordTarget(props.Check, addr)
	if ct.err != nil {
		return nil, ct.err
	}
	sp := &TargetSpec{Tier: 1, Weight: 1, Probe: ct.probe, ID: ct.id, Owner: owner, Key: ct.key, Shared: true, VKey: ct.vkey, Region: props.Region}
	if props.Tier > 0 {
		sp.Tier = props.Tier
	}
	if props.HasWeight {
		sp.Weight = props.Weight
	}
	if m.specs == nil || len(m.specs) >= maxTargetCache {
		m.specs = map[specKey]*TargetSpec{}
	}
	m.specs[k] = sp
	return sp, nil
}

type settingsKey struct {
	ttl    uint32
	policy string
}

// recordSettings are the settings of a records' name of the given TTL
// and policy (as the record names it): one for all such names.
func (m *Merger) recordSettings(ttl uint32, pol string) *Settings {
	k := settingsKey{ttl, pol}
	if s := m.settings[k]; s != nil {
		return s
	}
	if m.settings == nil || len(m.settings) >= maxTargetCache {
		m.settings = map[settingsKey]*Settings{}
	}
	s := &Settings{TTL: ttl, Quorum: health.Quorum{Kind: health.Majority}, Policy: policy.Default(), Geo: m.cfg.Geo}
	if p, err := policy.Lookup(pol); err == nil {
		s.Policy = p
	}
	s.MaxAnswers = policy.DefaultMaxAnswers(s.Policy)
	m.settings[k] = s
	return s
}

// nameBuilder merges the records of one name, fed owner by owner (sorted)
// and each owner's records in key order, as the answers have it: each
// owner's A and AAAA records make its part of the name (its first record
// gives a new name its policy and TTL), the first owner's target of an
// address wins, a name of the Corefile keeps its own settings; TXT and
// CNAME records become static records, a CNAME only where the name has
// nothing else (RFC 1034).
type nameBuilder struct {
	m        *Merger
	dnsName  string
	fqdn     string
	inZones  bool
	cutErr   error
	corefile *Name

	out     *Name // the merged name so far
	hasName bool  // the name is health-aware as of the owners so far

	owner   string
	part    *Name // the current owner's part
	pending []ownerStatic

	static []dns.RR
}

type ownerStatic struct {
	cname bool
	rrs   []dns.RR
}

func (m *Merger) newBuilder(dnsName string) *nameBuilder {
	fqdn := dnsName + "."
	b := &nameBuilder{m: m, dnsName: dnsName, fqdn: fqdn, inZones: m.inZones(fqdn), corefile: m.corefile[fqdn]}
	if b.inZones {
		b.cutErr = checkAgainstZoneCuts(fqdn, m.cfg.Zones, m.cutsOnce)
	}
	b.hasName = b.corefile != nil
	return b
}

// add feeds one record of owner.
func (b *nameBuilder) add(owner string, e records.Endpoint) {
	if owner != b.owner {
		b.flush()
		b.owner = owner
	}
	if !b.inZones {
		return
	}
	m := b.m
	ttl := uint32(m.cfg.TTL)
	if e.RecordTTL > 0 {
		ttl = uint32(min(e.RecordTTL, 86400))
	}
	name := b.fqdn
	switch e.RecordType {
	case records.TypeA, records.TypeAAAA:
		if b.cutErr != nil {
			m.warnOnce(owner+" "+name, "owner %s: %s not served: %v", owner, name, b.cutErr)
			return
		}
		props := e.Properties()
		nc := b.part
		if nc == nil {
			nc = &Name{FQDN: name, Settings: m.recordSettings(ttl, props.Policy)}
			b.part = nc
		}
		for _, a := range e.Targets {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				continue
			}
			addr = addr.Unmap()
			if slices.ContainsFunc(nc.Targets, func(t Target) bool { return t.Probe.Addr == addr }) {
				continue
			}
			if props.Check == "" {
				m.warnOnce(owner+" "+name+" check", "owner %s: %s %s has no health check (webhook/check or the owner's default): not served", owner, name, addr)
				continue
			}
			spec, err := m.recordSpec(owner, props, addr)
			if err != nil {
				m.warnOnce(owner+" "+name+" "+props.Check, "owner %s: %s: check %q: %v", owner, name, props.Check, err)
				continue
			}
			nc.Targets = append(nc.Targets, Target{TargetSpec: spec})
		}
	case records.TypeTXT:
		rrs := make([]dns.RR, 0, len(e.Targets))
		for _, t := range e.Targets {
			rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: records.TXTStrings(t)})
		}
		b.pending = append(b.pending, ownerStatic{rrs: rrs})
	case records.TypeCNAME:
		if len(e.Targets) == 1 {
			b.pending = append(b.pending, ownerStatic{cname: true,
				rrs: []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl}, Target: dns.Fqdn(e.Targets[0])}}})
		}
	}
}

// flush merges the current owner's part: its targets, then its static
// records.
func (b *nameBuilder) flush() {
	owner, name := b.owner, b.fqdn
	if p := b.part; p != nil && len(p.Targets) > 0 {
		switch {
		case b.out == nil && b.corefile == nil:
			b.out = p
		default:
			if b.out == nil {
				cp := *b.corefile
				cp.Targets = append(make([]Target, 0, len(b.corefile.Targets)+len(p.Targets)), b.corefile.Targets...)
				b.out = &cp
			}
			for _, t := range p.Targets {
				if slices.ContainsFunc(b.out.Targets, func(o Target) bool { return o.Probe.Addr == t.Probe.Addr }) {
					continue // the first owner's target of a name and address wins
				}
				if b.corefile != nil {
					// A Corefile name's verdicts are its own (its quorum):
					// a spec of its own.
					own := *t.TargetSpec
					own.Shared, own.VKey = false, name+" "+t.Key
					t.TargetSpec = &own
				}
				b.out.Targets = append(b.out.Targets, t)
			}
		}
		b.hasName = true
	}
	b.part = nil
	for _, sr := range b.pending {
		if sr.cname {
			if b.hasName || b.m.zoneHas(name) || len(b.static) > 0 {
				b.m.warnOnce(owner+" "+name+" cname", "owner %s: CNAME %s not served: the name has other data", owner, name)
				continue
			}
		}
		b.static = append(b.static, sr.rrs...)
	}
	b.pending = b.pending[:0]
}

// finish returns what the name's records make.
func (b *nameBuilder) finish() merged {
	b.flush()
	r := merged{name: b.out, static: b.static}
	// A CNAME next to a health-aware name or a TXT would break RFC 1034.
	if len(r.static) > 0 {
		if _, isCNAME := r.static[0].(*dns.CNAME); isCNAME && (len(r.static) > 1 || b.hasName) {
			r.static = nil
		}
	}
	if len(r.static) == 0 {
		r.static = nil
	}
	return r
}

// Servable says why this server would not answer a record as written, so
// that the webhook refuses it (422) rather than acknowledge it: a name
// below a delegation (the child zone's servers answer it), a name the zone
// file holds records for that the record would clash with, a CNAME beside
// other data. A wildcard (*.name) is served as RFC 4592 says, the zone's
// own names taking precedence, under the same rules for the wildcard's
// name. Clashes between owners are not known at write time: they are
// settled when answers are built, and logged.
func (m *Merger) Servable(e records.Endpoint) error {
	name := e.DNSName + "."
	if !m.inZones(name) {
		return fmt.Errorf("not in the zones this server is authoritative for (%s)", strings.Join(m.origins, " "))
	}
	for _, d := range m.cfg.Zones {
		if !snapshot.InZone(d.Origin, name) {
			continue
		}
		for p := name; len(p) > len(d.Origin); p = parentName(p) {
			if len(d.Names[p][dns.TypeNS]) > 0 {
				return fmt.Errorf("at or below the delegation %s: the servers of that zone answer it, not this one", p)
			}
		}
		types := d.Names[name]
		switch e.RecordType {
		case records.TypeA, records.TypeAAAA:
			for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME} {
				if len(types[t]) > 0 {
					return fmt.Errorf("the zone file has %s records for %s, which answer it", dns.TypeToString[t], name)
				}
			}
		case records.TypeTXT:
			if len(types[dns.TypeCNAME]) > 0 {
				return fmt.Errorf("the zone file has a CNAME for %s: it can have no other records", name)
			}
		case records.TypeCNAME:
			if name == d.Origin {
				return errors.New("a CNAME at the zone's apex would hide its SOA and NS")
			}
			if len(types) > 0 {
				return fmt.Errorf("the zone file has records for %s: a CNAME can have no other records beside it", name)
			}
		}
	}
	if e.RecordType == records.TypeCNAME {
		for _, n := range m.cfg.Names {
			if n.FQDN == name {
				return fmt.Errorf("%s is a health-aware name of the Corefile: a CNAME can have no other records beside it", name)
			}
		}
	}
	return nil
}

// parentName returns name without its first label, "" for the root.
func parentName(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

// cuts returns the delegation points of the zones (names below an apex
// with NS records).
func (m *Merger) cuts() map[string]bool {
	out := map[string]bool{}
	for _, d := range m.cfg.Zones {
		for owner, ts := range d.Names {
			if owner != d.Origin && len(ts[dns.TypeNS]) > 0 {
				out[owner] = true
			}
		}
	}
	return out
}

// checkAgainstZoneCuts is checkAgainstZone with the delegation points
// found once for many names.
func checkAgainstZoneCuts(fqdn string, zones []*zone.Data, cuts map[string]bool) error {
	for _, d := range zones {
		if !snapshot.InZone(d.Origin, fqdn) {
			continue
		}
		types := d.Names[fqdn]
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME} {
			if len(types[t]) > 0 {
				return fmt.Errorf("name %s also has %s records in the zone file; a health-aware name gets its addresses from its targets only", fqdn, dns.TypeToString[t])
			}
		}
		for p := fqdn; len(p) > len(d.Origin); p = parentName(p) {
			if cuts[p] {
				return fmt.Errorf("name %s is at or below the delegation %s", fqdn, p)
			}
		}
	}
	return nil
}

func (m *Merger) inZones(name string) bool {
	for _, o := range m.origins {
		if snapshot.InZone(o, name) {
			return true
		}
	}
	return false
}

func (m *Merger) zoneHas(name string) bool {
	for _, d := range m.cfg.Zones {
		if len(d.Names[name]) > 0 {
			return true
		}
	}
	return false
}

// warnOnce logs a record problem once per key, not on every rebuild.
func (m *Merger) warnOnce(key, format string, args ...any) {
	if m.warned[key] {
		return
	}
	m.warned[key] = true
	if m.cfg.Warnf != nil {
		m.cfg.Warnf(format, args...)
	}
}
