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
// the same answers and keeps what it derived (each owner's part, parsed
// checks) while the records do not change, since a large owner's records
// take far longer to merge than verdicts to judge.
package recordmerge

import (
	"errors"
	"fmt"
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
	"github.com/prometheus/client_golang/prometheus"
)

// Name is a health-aware name: one of the Corefile, or one that records
// define, or one of the Corefile with records' targets merged in.
type Name struct {
	FQDN       string
	TTL        uint32
	Policy     policy.Policy
	MaxAnswers int
	MinHealthy int
	Fallback   snapshot.FallbackKind
	Fixed      []netip.Addr
	Quorum     health.Quorum
	Targets    []Target
	// Order is the name's own order (geo), as written: one chain for
	// every client region, and chains for some; Geo is it built.
	Order      []string
	OrderFor   map[string][]string
	Geo        *policy.Geo
	StickyBits [2]int
}

// Target is one address of a Name with its health check.
type Target struct {
	Owner        string // "" for targets of the Corefile
	Tier, Weight int
	Region       string // "" for none
	Probe        probe.Target
	ID           gossip.TargetID // the target's name on the wire
	// Key and VKey cache probe.Key and verdictKey for records' targets,
	// of which there may be hundreds of thousands; "" to compute them.
	Key, VKey string
	// Shared marks a target of a name that only records define: its
	// verdict is that of its address and check under the name's quorum,
	// shared by every such name (vkey is the group's), since it cannot
	// differ between them; one question a group, not one a name.
	Shared bool
	// Gauge is its targetHealthy gauge, looked up once, and Set its last
	// value (0 not yet, 1 down, 2 up).
	Gauge prometheus.Gauge
	Set   int8
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

// Merger merges records into one Config, keeping what it derived.
type Merger struct {
	cfg         Config
	origins     []string
	warned      map[string]bool
	recCache    recordsCache
	targetCache map[targetCacheKey]cachedTarget // records' probe targets by check and address
	frags       map[string]*fragment            // each owner's part of the answers, by owner
}

// New returns a Merger of records into cfg.
func New(cfg Config) *Merger {
	m := &Merger{cfg: cfg, warned: map[string]bool{}}
	for _, z := range cfg.Zones {
		m.origins = append(m.origins, z.Origin)
	}
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
	if !m.recCache.ok {
		return nil
	}
	return m.recCache.groups
}

// recordsCache is the last merge: rebuilds for health (a probe
// result, a verdict) reuse it while the records are the same, since a
// large owner's records take far longer to merge than verdicts to judge.
type recordsCache struct {
	heads  []records.OwnerHead
	names  []*Name
	zones  []*zone.Data
	groups []Group
	ok     bool
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

// Merge is merge, reused while every owner's head is the same: the
// names and zones to serve, shared with the fragments (read only).
func (m *Merger) Merge(st records.State) ([]*Name, []*zone.Data) {
	heads := st.Heads()
	if m.recCache.ok && slices.Equal(heads, m.recCache.heads) {
		return m.recCache.names, m.recCache.zones
	}
	names, zones := m.merge(st)
	m.recCache = recordsCache{heads: heads, names: names, zones: zones, ok: true}
	seen := map[string]bool{}
	for _, n := range names {
		for _, t := range n.Targets {
			if t.Shared && !seen[t.VKey] {
				seen[t.VKey] = true
				m.recCache.groups = append(m.recCache.groups, Group{VKey: t.VKey, Key: t.Key, ID: t.ID, Quorum: n.Quorum, Interval: t.Probe.Interval, Timeout: t.Probe.Timeout})
			}
		}
	}
	return names, zones
}

type targetCacheKey struct {
	check string
	addr  netip.Addr
}

// cachedTarget is what a records' target costs to derive once: its check
// parsed, its probe key and its ID.
type cachedTarget struct {
	probe probe.Target
	key   string
	id    gossip.TargetID
	err   error
}

// recordTarget returns the probe target of check spec at addr, derived
// once and then cached (records repeat a few load balancers' addresses
// over thousands of names).
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
		ct.probe = probe.Target{Addr: addr, Checks: []probe.Check{ch}, Interval: m.cfg.Timing.Interval, Timeout: m.cfg.Timing.Timeout, Rise: m.cfg.Timing.Rise, Fall: m.cfg.Timing.Fall}
		ct.key = ct.probe.Key()
		ct.id = gossip.IDOf(ct.probe)
	}
	if m.targetCache == nil {
		m.targetCache = map[targetCacheKey]cachedTarget{}
	}
	m.targetCache[k] = ct
	return ct
}

const maxTargetCache = 1 << 16

// fragment is what one owner's records contribute to the answers, built
// once per head of the owner (the Merger keeps them while the owner does
// not change), so that a change of one owner re-derives only its records:
// the names its A and AAAA records define (with their targets, checks
// parsed), and the RRs of its TXT and CNAME records.
type fragment struct {
	head   records.Head
	names  []*Name // in key order; shared: copy before changing
	static []staticRRs
}

type staticRRs struct {
	name  string
	cname bool
	rrs   []dns.RR
	types map[uint16][]dns.RR // {TXT: rrs}, for a name with nothing else
}

// fragmentOf returns owner's fragment, rebuilt only when its head moved.
func (m *Merger) fragmentOf(st records.State, owner string, cuts map[string]bool) *fragment {
	head := st.Head(owner)
	if f := m.frags[owner]; f != nil && f.head == head {
		return f
	}
	f := &fragment{head: head}
	var nc *Name
	st.Range(owner, func(e records.Endpoint) bool {
		name := e.DNSName + "."
		if !m.inZones(name) {
			return true
		}
		ttl := uint32(m.cfg.TTL)
		if e.RecordTTL > 0 {
			ttl = uint32(min(e.RecordTTL, 86400))
		}
		switch e.RecordType {
		case records.TypeA, records.TypeAAAA:
			if err := checkAgainstZoneCuts(name, m.cfg.Zones, cuts); err != nil {
				m.warnOnce(owner+" "+name, "owner %s: %s not served: %v", owner, name, err)
				return true
			}
			props := e.Properties()
			if nc == nil || nc.FQDN != name { // A and AAAA of a name are adjacent in key order
				nc = &Name{FQDN: name, TTL: ttl, Quorum: health.Quorum{Kind: health.Majority}}
				nc.Policy, nc.Geo = policy.Default(), m.cfg.Geo
				if k, err := policy.Lookup(props.Policy); err == nil {
					nc.Policy = k
				}
				nc.MaxAnswers = policy.DefaultMaxAnswers(nc.Policy)
				f.names = append(f.names, nc)
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
				ct := m.recordTarget(props.Check, addr)
				if ct.err != nil {
					m.warnOnce(owner+" "+name+" "+props.Check, "owner %s: %s: check %q: %v", owner, name, props.Check, ct.err)
					continue
				}
				tc := Target{Tier: 1, Weight: 1, Probe: ct.probe, ID: ct.id, Owner: owner, Key: ct.key,
					Shared: true, VKey: sharedKey(nc.Quorum, ct.key)}
				if props.Tier > 0 {
					tc.Tier = props.Tier
				}
				if props.HasWeight {
					tc.Weight = props.Weight
				}
				tc.Region = props.Region
				nc.Targets = append(nc.Targets, tc)
			}
		case records.TypeTXT:
			rrs := make([]dns.RR, 0, len(e.Targets))
			for _, t := range e.Targets {
				rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: records.TXTStrings(t)})
			}
			f.static = append(f.static, staticRRs{name: name, rrs: rrs, types: map[uint16][]dns.RR{dns.TypeTXT: rrs}})
		case records.TypeCNAME:
			if len(e.Targets) == 1 {
				f.static = append(f.static, staticRRs{name: name, cname: true,
					rrs: []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl}, Target: dns.Fqdn(e.Targets[0])}}})
			}
		}
		return true
	})
	f.names = slices.DeleteFunc(f.names, func(n *Name) bool { return len(n.Targets) == 0 })
	if m.frags == nil {
		m.frags = map[string]*fragment{}
	}
	m.frags[owner] = f
	return f
}

// merge merges the owners' records into the Corefile's names and
// zones: each A/AAAA endpoint's addresses become targets of its name (a
// name of the Corefile keeps its policy and options; a new one takes the
// endpoint's), TXT and CNAME endpoints become static records. Conflicts
// are settled for the zone file and the Corefile, and logged once. Each
// owner's part is derived once per change of that owner (fragmentOf);
// what is merged here is shared where only one owner has a name.
func (m *Merger) merge(st records.State) ([]*Name, []*zone.Data) {
	owners := st.Owners() // sorted: the first owner's target of a name wins
	for o := range m.frags {
		if !slices.Contains(owners, o) {
			delete(m.frags, o)
		}
	}
	if len(owners) == 0 {
		return m.cfg.Names, m.cfg.Zones
	}
	cuts := m.cuts()
	frags := make([]*fragment, len(owners))
	total := len(m.cfg.Names)
	for i, o := range owners {
		frags[i] = m.fragmentOf(st, o, cuts)
		total += len(frags[i].names)
	}
	byName := make(map[string]*Name, total)
	own := map[string]bool{} // names whose config is a copy of their own, which may change
	order := make([]string, 0, total)
	for _, n := range m.cfg.Names {
		cp := *n
		cp.Targets = append([]Target(nil), n.Targets...)
		byName[n.FQDN] = &cp
		own[n.FQDN] = true
		order = append(order, n.FQDN)
	}
	type static struct {
		rrs   []dns.RR
		types map[uint16][]dns.RR // the one owner's, while only it has the name
		owned bool                // rrs is this merge's own array
	}
	extra := map[string]*static{}
	for i, f := range frags {
		owner := owners[i]
		for _, fn := range f.names {
			nc := byName[fn.FQDN]
			if nc == nil {
				byName[fn.FQDN] = fn // shared with the fragment while only it has the name
				order = append(order, fn.FQDN)
				continue
			}
			if !own[fn.FQDN] {
				cp := *nc
				cp.Targets = append(make([]Target, 0, 2*len(nc.Targets)+len(fn.Targets)), nc.Targets...)
				nc = &cp
				byName[fn.FQDN], own[fn.FQDN] = nc, true
			}
			for _, t := range fn.Targets {
				if slices.ContainsFunc(nc.Targets, func(o Target) bool { return o.Probe.Addr == t.Probe.Addr }) {
					continue // the first owner's target of a name and address wins
				}
				if m.isCorefileName(fn.FQDN) {
					// A Corefile name's verdicts are its own (its quorum).
					t.Shared, t.VKey, t.Gauge, t.Set = false, fn.FQDN+" "+t.Key, nil, 0
				} else {
					t.Gauge, t.Set = nil, 0
				}
				nc.Targets = append(nc.Targets, t)
			}
		}
		for _, sr := range f.static {
			x := extra[sr.name]
			if sr.cname {
				if byName[sr.name] != nil || m.zoneHas(sr.name) || x != nil {
					m.warnOnce(owner+" "+sr.name+" cname", "owner %s: CNAME %s not served: the name has other data", owner, sr.name)
					continue
				}
				extra[sr.name] = &static{rrs: sr.rrs}
				continue
			}
			if x == nil {
				extra[sr.name] = &static{rrs: sr.rrs, types: sr.types}
				continue
			}
			if !x.owned { // never append into a fragment's array
				x.rrs = append(make([]dns.RR, 0, 2*len(x.rrs)+len(sr.rrs)), x.rrs...)
				x.owned = true
			}
			x.rrs = append(x.rrs, sr.rrs...)
			x.types = nil
		}
	}
	names := make([]*Name, 0, len(order))
	for _, n := range order {
		if len(byName[n].Targets) > 0 {
			names = append(names, byName[n])
		}
	}
	// A CNAME next to a health-aware name or a TXT would break RFC 1034.
	for n, x := range extra {
		if _, isCNAME := x.rrs[0].(*dns.CNAME); isCNAME && (len(x.rrs) > 1 || byName[n] != nil) {
			delete(extra, n)
		}
	}
	zones := make([]*zone.Data, 0, len(m.cfg.Zones))
	for _, d := range m.cfg.Zones {
		cp := &zone.Data{Origin: d.Origin, SOA: d.SOA, Names: make(map[string]map[uint16][]dns.RR, len(d.Names)+len(extra))}
		for k, v := range d.Names {
			cp.Names[k] = v
		}
		for n, x := range extra {
			if !snapshot.InZone(d.Origin, n) {
				continue
			}
			if x.types != nil && len(cp.Names[n]) == 0 {
				cp.Names[n] = x.types // immutable, shared with the fragment
				continue
			}
			types := make(map[uint16][]dns.RR, len(cp.Names[n])+1)
			for t, v := range cp.Names[n] {
				types[t] = v
			}
			for _, rr := range x.rrs {
				t := rr.Header().Rrtype
				types[t] = append(types[t], rr)
			}
			cp.Names[n] = types
		}
		zones = append(zones, cp)
	}
	return names, zones
}

// isCorefileName reports whether fqdn is a name block of the Corefile.
func (m *Merger) isCorefileName(fqdn string) bool {
	for _, n := range m.cfg.Names {
		if n.FQDN == fqdn {
			return true
		}
	}
	return false
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
