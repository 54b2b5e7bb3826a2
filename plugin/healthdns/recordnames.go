package healthdns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/webhook"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// webhookConfig is the webhook block: the ExternalDNS provider API of one
// owner, served by this server.
type webhookConfig struct {
	addr, healthAddr string
	owner            string
	defaults         []records.Property
	checkNetworks    []netip.Prefix // where records' own checks may connect besides their address
}

// parseWebhook reads "webhook [ADDR] { owner NAME; health ADDR; tier N;
// weight N; check SPEC; policy P; region R }"; the cursor is on "webhook".
func parseWebhook(c *caddy.Controller) (*webhookConfig, error) {
	wc := &webhookConfig{addr: webhook.DefaultAddr}
	args := c.RemainingArgs()
	if len(args) > 1 {
		return nil, c.ArgErr()
	}
	if len(args) == 1 {
		wc.addr = args[0]
	}
	if _, _, err := splitHostPort(wc.addr); err != nil {
		return nil, c.Errf("webhook %q: want a listen address like 127.0.0.1:8888", wc.addr)
	}
	err := eachBlockLine(c, "webhook", func(key string, args []string) error {
		if len(args) == 0 {
			return c.Errf("webhook %s: want a value", key)
		}
		switch key {
		case "owner":
			if err := records.CheckOwner(args[0]); err != nil || len(args) != 1 {
				return c.Errf("webhook owner %q: %v", strings.Join(args, " "), err)
			}
			wc.owner = args[0]
		case "health":
			if _, _, err := splitHostPort(args[0]); err != nil || len(args) != 1 {
				return c.Errf("webhook health %q: want a listen address", strings.Join(args, " "))
			}
			wc.healthAddr = args[0]
		case "check-networks":
			nets, err := webhook.ParseCheckNetworks(args)
			if err != nil {
				return c.Errf("webhook %v", err)
			}
			wc.checkNetworks = append(wc.checkNetworks, nets...)
		case "tier", "weight", "check", "policy", "region":
			name := map[string]string{"tier": records.PropTier, "weight": records.PropWeight, "check": records.PropCheck, "policy": records.PropPolicy, "region": records.PropRegion}[key]
			value := strings.Join(args, " ")
			if key == "check" {
				// The Corefile has unquoted the words; a body with
				// spaces must stay one word.
				ch, n, err := probe.ParseArgs(args)
				if err != nil {
					return c.Errf("webhook check: %v", err)
				}
				if n < len(args) {
					return c.Errf("webhook check: unknown option %q (want %s)", args[n], strings.Join(ch.Kind.Options(), ", "))
				}
				value = ch.String()
			}
			v, err := records.NormalizeProperty(name, value)
			if err != nil {
				return c.Errf("webhook %s: %v", key, err)
			}
			wc.defaults = append(wc.defaults, records.Property{Name: name, Value: v})
		default:
			return c.Errf("webhook: unknown property %q", key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if wc.owner == "" {
		return nil, c.Err("webhook: owner is required: the cluster name ExternalDNS runs in (its --txt-owner-id)")
	}
	hasCheck := false
	for _, d := range wc.defaults {
		hasCheck = hasCheck || d.Name == records.PropCheck
	}
	if !hasCheck {
		return nil, c.Err("webhook: check is required: the owner's default health check, e.g. check tcp {addr}:443")
	}
	return wc, nil
}

// Stores and webhook listeners outlive reloads like the probe pool: a new
// instance takes them over before the old one lets go (a store's lock file
// would refuse a second open anyway).
//
// A store that cannot be opened (a damaged or full data directory) does
// not stop the server: DNS serves the zone and the Corefile's names (and,
// in a cluster, the records peers send, kept in memory), the webhook
// answers 503 with the reason, status says why, and the store is tried
// again until it opens.
type storeRef struct {
	dir  string
	refs int

	mu    sync.Mutex // guards the fields below
	store *records.Store
	err   error // why it is not open
	subs  map[int]func(*records.Store)
	next  int
	stop  chan struct{}
}

type webhookRef struct {
	srv    *webhook.Server
	hook   *webhook.Webhook
	cfg    webhookConfig
	refs   int
	cancel func()
}

var (
	recordsMu sync.Mutex
	stores    = map[string]*storeRef{}
	webhooks  = map[string]*webhookRef{}
)

// Retries of a store that could not be opened.
const (
	storeRetry    = 5 * time.Second
	storeRetryMax = time.Minute
)

// acquireStore returns the store of dir, open or being retried.
func acquireStore(dir string) *storeRef {
	recordsMu.Lock()
	defer recordsMu.Unlock()
	if r := stores[dir]; r != nil {
		r.refs++
		return r
	}
	r := &storeRef{dir: dir, refs: 1, subs: map[int]func(*records.Store){}, stop: make(chan struct{})}
	st, err := records.Open(dir, records.Options{Logf: logf})
	if err != nil {
		r.err = err
		log.Errorf("data %s: the record store is not open: %v. DNS serves the zone and the Corefile's names (and records from peers), the webhook answers 503; trying again every %s to %s", dir, err, storeRetry, storeRetryMax)
		go r.retry()
	} else {
		r.store = st
	}
	stores[dir] = r
	return r
}

// retry opens the store until it opens or the last reference goes.
func (r *storeRef) retry() {
	wait := storeRetry
	last := r.err.Error()
	for {
		select {
		case <-r.stop:
			return
		case <-time.After(wait):
		}
		st, err := records.Open(r.dir, records.Options{Logf: logf})
		if err != nil {
			if err.Error() != last {
				last = err.Error()
				log.Errorf("data %s: the record store is still not open: %v", r.dir, err)
			}
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			wait = min(2*wait, storeRetryMax)
			continue
		}
		r.mu.Lock()
		select {
		case <-r.stop: // released meanwhile
			r.mu.Unlock()
			st.Close()
			return
		default:
		}
		r.store, r.err = st, nil
		subs := make([]func(*records.Store), 0, len(r.subs))
		for _, f := range r.subs {
			subs = append(subs, f)
		}
		r.mu.Unlock()
		log.Infof("data %s: the record store is open (%d owners)", r.dir, len(st.State().Owners()))
		for _, f := range subs {
			f(st)
		}
		return
	}
}

// get returns the store, or why it is not open.
func (r *storeRef) get() (*records.Store, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store, r.err
}

// onOpen calls f with the store once it is open: now if it is, else when
// it opens. cancel stops a call not made yet.
func (r *storeRef) onOpen(f func(*records.Store)) (cancel func()) {
	r.mu.Lock()
	if st := r.store; st != nil {
		r.mu.Unlock()
		f(st)
		return func() {}
	}
	id := r.next
	r.next++
	r.subs[id] = f
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

func releaseStore(dir string) {
	recordsMu.Lock()
	defer recordsMu.Unlock()
	r := stores[dir]
	if r == nil {
		return
	}
	if r.refs--; r.refs == 0 {
		delete(stores, dir)
		r.mu.Lock()
		close(r.stop)
		st := r.store
		r.mu.Unlock()
		if st != nil {
			st.Close()
		}
	}
}

func acquireWebhook(wc *webhookConfig, ref *storeRef, origins []string) (*webhook.Webhook, error) {
	recordsMu.Lock()
	defer recordsMu.Unlock()
	if r := webhooks[wc.addr]; r != nil {
		if r.cfg.owner != wc.owner || r.cfg.healthAddr != wc.healthAddr || fmt.Sprint(r.cfg.defaults) != fmt.Sprint(wc.defaults) {
			log.Warningf("webhook %s: owner, health and defaults changes take effect on restart, not reload", wc.addr)
		}
		r.refs++
		return r.hook, nil
	}
	filter, err := records.NewFilter(origins, nil)
	if err != nil {
		return nil, err
	}
	w, err := webhook.New(nil, webhook.Config{Owner: wc.owner, Filter: filter, Defaults: wc.defaults, CheckNetworks: wc.checkNetworks, Logf: logf})
	if err != nil {
		return nil, err
	}
	if _, err := ref.get(); err != nil {
		w.Unavailable(err)
	}
	cancel := ref.onOpen(w.Attach)
	srv, err := webhook.Listen(w, wc.addr, wc.healthAddr, prometheus.DefaultGatherer)
	if err != nil {
		cancel()
		return nil, err
	}
	log.Infof("webhook for owner %s on %s (ExternalDNS --webhook-provider-url=http://%s)", wc.owner, srv.Addr(), srv.Addr())
	webhooks[wc.addr] = &webhookRef{srv: srv, hook: w, cfg: *wc, refs: 1, cancel: cancel}
	return w, nil
}

func releaseWebhook(addr string) {
	recordsMu.Lock()
	defer recordsMu.Unlock()
	r := webhooks[addr]
	if r == nil {
		return
	}
	if r.refs--; r.refs == 0 {
		delete(webhooks, addr)
		r.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
	}
}

// logf routes the records and webhook packages' "[LEVEL] healthdns ..."
// lines to CoreDNS's logger at that level.
func logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	level, rest, ok := strings.Cut(line, " ")
	rest = strings.TrimPrefix(rest, "healthdns ")
	switch {
	case ok && level == "[ERR]":
		log.Error(rest)
	case ok && level == "[WARN]":
		log.Warning(rest)
	case ok && level == "[INFO]":
		log.Info(rest)
	default:
		log.Info(line)
	}
}

// recordState is the owners' records this server knows: its store (which
// holds what gossip brought too), else what gossip holds in memory (no
// data directory, or a store that is not open).
func (h *HealthDNS) recordState() records.State {
	if h.storeRef != nil {
		if st, _ := h.storeRef.get(); st != nil {
			return st.State()
		}
	}
	if h.member != nil {
		return h.member.node.Records()
	}
	return records.State{}
}

// recordsCache is the last withRecords: rebuilds for health (a probe
// result, a verdict) reuse it while the records are the same, since a
// large owner's records take far longer to merge than verdicts to judge.
type recordsCache struct {
	heads  []records.OwnerHead
	names  []*nameConfig
	zones  []*zone.Data
	groups []sharedTarget
	ok     bool
}

// sharedTarget is a group of records' names' targets with one verdict.
type sharedTarget struct {
	vkey, key         string
	id                gossip.TargetID
	quorum            health.Quorum
	interval, timeout time.Duration // its check's timing, for freshness
}

// sharedKey names a group of shared targets, as verdict logs show it.
func sharedKey(q health.Quorum, probeKey string) string {
	return "records/" + q.String() + " " + probeKey
}

// withRecordsCached is withRecords, reused while every owner's head is
// the same.
func (h *HealthDNS) withRecordsCached(st records.State) ([]*nameConfig, []*zone.Data) {
	heads := st.Heads()
	if h.recCache.ok && slices.Equal(heads, h.recCache.heads) {
		return h.recCache.names, h.recCache.zones
	}
	names, zones := h.withRecords(st)
	h.recCache = recordsCache{heads: heads, names: names, zones: zones, ok: true}
	seen := map[string]bool{}
	for _, n := range names {
		for _, t := range n.targets {
			if t.shared && !seen[t.vkey] {
				seen[t.vkey] = true
				h.recCache.groups = append(h.recCache.groups, sharedTarget{vkey: t.vkey, key: t.key, id: t.id, quorum: n.quorum, interval: t.probe.Interval, timeout: t.probe.Timeout})
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
func (h *HealthDNS) recordTarget(spec string, addr netip.Addr) cachedTarget {
	k := targetCacheKey{spec, addr}
	if ct, ok := h.targetCache[k]; ok {
		return ct
	}
	if len(h.targetCache) >= maxTargetCache {
		clear(h.targetCache)
	}
	ch, err := records.CheckFor(spec, addr)
	ct := cachedTarget{err: err}
	if err == nil {
		ct.probe = probe.Target{Addr: addr, Checks: []probe.Check{ch}, Interval: h.cfg.timing.interval, Timeout: h.cfg.timing.timeout, Rise: h.cfg.timing.rise, Fall: h.cfg.timing.fall}
		ct.key = ct.probe.Key()
		ct.id = gossip.IDOf(ct.probe)
	}
	if h.targetCache == nil {
		h.targetCache = map[targetCacheKey]cachedTarget{}
	}
	h.targetCache[k] = ct
	return ct
}

const maxTargetCache = 1 << 16

// fragment is what one owner's records contribute to the answers, built
// once per head of the owner (recordnames keeps them while the owner does
// not change), so that a change of one owner re-derives only its records:
// the names its A and AAAA records define (with their targets, checks
// parsed), and the RRs of its TXT and CNAME records.
type fragment struct {
	head   records.Head
	names  []*nameConfig // in key order; shared: copy before changing
	static []staticRRs
}

type staticRRs struct {
	name  string
	cname bool
	rrs   []dns.RR
	types map[uint16][]dns.RR // {TXT: rrs}, for a name with nothing else
}

// fragmentOf returns owner's fragment, rebuilt only when its head moved.
func (h *HealthDNS) fragmentOf(st records.State, owner string, cuts map[string]bool) *fragment {
	head := st.Head(owner)
	if f := h.frags[owner]; f != nil && f.head == head {
		return f
	}
	f := &fragment{head: head}
	var nc *nameConfig
	st.Range(owner, func(e records.Endpoint) bool {
		name := e.DNSName + "."
		if !h.inZones(name) {
			return true
		}
		ttl := uint32(h.cfg.ttl)
		if e.RecordTTL > 0 {
			ttl = uint32(min(e.RecordTTL, 86400))
		}
		switch e.RecordType {
		case records.TypeA, records.TypeAAAA:
			if err := checkAgainstZoneCuts(name, h.cfg.zones, cuts); err != nil {
				h.warnOnce(owner+" "+name, "owner %s: %s not served: %v", owner, name, err)
				return true
			}
			props := e.Properties()
			if nc == nil || nc.fqdn != name { // A and AAAA of a name are adjacent in key order
				nc = &nameConfig{fqdn: name, ttl: ttl, quorum: health.Quorum{Kind: health.Majority}}
				nc.policy, nc.geo = policy.Default(), h.cfg.geo
				if k, err := policy.Lookup(props.Policy); err == nil {
					nc.policy = k
				}
				nc.maxAnswers = policy.DefaultMaxAnswers(nc.policy)
				f.names = append(f.names, nc)
			}
			for _, a := range e.Targets {
				addr, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				addr = addr.Unmap()
				if slices.ContainsFunc(nc.targets, func(t targetConfig) bool { return t.probe.Addr == addr }) {
					continue
				}
				if props.Check == "" {
					h.warnOnce(owner+" "+name+" check", "owner %s: %s %s has no health check (webhook/check or the owner's default): not served", owner, name, addr)
					continue
				}
				ct := h.recordTarget(props.Check, addr)
				if ct.err != nil {
					h.warnOnce(owner+" "+name+" "+props.Check, "owner %s: %s: check %q: %v", owner, name, props.Check, ct.err)
					continue
				}
				tc := targetConfig{tier: 1, weight: 1, probe: ct.probe, id: ct.id, owner: owner, key: ct.key,
					shared: true, vkey: sharedKey(nc.quorum, ct.key)}
				if props.Tier > 0 {
					tc.tier = props.Tier
				}
				if props.HasWeight {
					tc.weight = props.Weight
				}
				tc.region = props.Region
				nc.targets = append(nc.targets, tc)
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
	f.names = slices.DeleteFunc(f.names, func(n *nameConfig) bool { return len(n.targets) == 0 })
	if h.frags == nil {
		h.frags = map[string]*fragment{}
	}
	h.frags[owner] = f
	return f
}

// withRecords merges the owners' records into the Corefile's names and
// zones: each A/AAAA endpoint's addresses become targets of its name (a
// name of the Corefile keeps its policy and options; a new one takes the
// endpoint's), TXT and CNAME endpoints become static records. Conflicts
// are settled for the zone file and the Corefile, and logged once. Each
// owner's part is derived once per change of that owner (fragmentOf);
// what is merged here is shared where only one owner has a name.
func (h *HealthDNS) withRecords(st records.State) ([]*nameConfig, []*zone.Data) {
	owners := st.Owners() // sorted: the first owner's target of a name wins
	for o := range h.frags {
		if !slices.Contains(owners, o) {
			delete(h.frags, o)
		}
	}
	if len(owners) == 0 {
		return h.cfg.names, h.cfg.zones
	}
	cuts := h.cuts()
	frags := make([]*fragment, len(owners))
	total := len(h.cfg.names)
	for i, o := range owners {
		frags[i] = h.fragmentOf(st, o, cuts)
		total += len(frags[i].names)
	}
	byName := make(map[string]*nameConfig, total)
	own := map[string]bool{} // names whose config is a copy of their own, which may change
	order := make([]string, 0, total)
	for _, n := range h.cfg.names {
		cp := *n
		cp.targets = append([]targetConfig(nil), n.targets...)
		byName[n.fqdn] = &cp
		own[n.fqdn] = true
		order = append(order, n.fqdn)
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
			nc := byName[fn.fqdn]
			if nc == nil {
				byName[fn.fqdn] = fn // shared with the fragment while only it has the name
				order = append(order, fn.fqdn)
				continue
			}
			if !own[fn.fqdn] {
				cp := *nc
				cp.targets = append(make([]targetConfig, 0, 2*len(nc.targets)+len(fn.targets)), nc.targets...)
				nc = &cp
				byName[fn.fqdn], own[fn.fqdn] = nc, true
			}
			for _, t := range fn.targets {
				if slices.ContainsFunc(nc.targets, func(o targetConfig) bool { return o.probe.Addr == t.probe.Addr }) {
					continue // the first owner's target of a name and address wins
				}
				if h.isCorefileName(fn.fqdn) {
					// A Corefile name's verdicts are its own (its quorum).
					t.shared, t.vkey, t.gauge, t.set = false, fn.fqdn+" "+t.key, nil, 0
				} else {
					t.gauge, t.set = nil, 0
				}
				nc.targets = append(nc.targets, t)
			}
		}
		for _, sr := range f.static {
			x := extra[sr.name]
			if sr.cname {
				if byName[sr.name] != nil || h.zoneHas(sr.name) || x != nil {
					h.warnOnce(owner+" "+sr.name+" cname", "owner %s: CNAME %s not served: the name has other data", owner, sr.name)
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
	names := make([]*nameConfig, 0, len(order))
	for _, n := range order {
		if len(byName[n].targets) > 0 {
			names = append(names, byName[n])
		}
	}
	// A CNAME next to a health-aware name or a TXT would break RFC 1034.
	for n, x := range extra {
		if _, isCNAME := x.rrs[0].(*dns.CNAME); isCNAME && (len(x.rrs) > 1 || byName[n] != nil) {
			delete(extra, n)
		}
	}
	zones := make([]*zone.Data, 0, len(h.cfg.zones))
	for _, d := range h.cfg.zones {
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
func (h *HealthDNS) isCorefileName(fqdn string) bool {
	for _, n := range h.cfg.names {
		if n.fqdn == fqdn {
			return true
		}
	}
	return false
}

// servable says why this server would not answer a record as written, so
// that the webhook refuses it (422) rather than acknowledge it: a name
// below a delegation (the child zone's servers answer it), a name the zone
// file holds records for that the record would clash with, a CNAME beside
// other data. A wildcard (*.name) is served as RFC 4592 says, the zone's
// own names taking precedence, under the same rules for the wildcard's
// name. Clashes between owners are not known at write time: they are
// settled when answers are built, and logged.
func (h *HealthDNS) servable(e records.Endpoint) error {
	name := e.DNSName + "."
	if !h.inZones(name) {
		return fmt.Errorf("not in the zones this server is authoritative for (%s)", strings.Join(h.origins, " "))
	}
	for _, d := range h.cfg.zones {
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
		for _, n := range h.cfg.names {
			if n.fqdn == name {
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
func (h *HealthDNS) cuts() map[string]bool {
	out := map[string]bool{}
	for _, d := range h.cfg.zones {
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

func (h *HealthDNS) inZones(name string) bool {
	for _, o := range h.origins {
		if snapshot.InZone(o, name) {
			return true
		}
	}
	return false
}

func (h *HealthDNS) zoneHas(name string) bool {
	for _, d := range h.cfg.zones {
		if len(d.Names[name]) > 0 {
			return true
		}
	}
	return false
}

// warnOnce logs a record problem once per key, not on every rebuild.
func (h *HealthDNS) warnOnce(key, format string, args ...any) {
	if h.warned[key] {
		return
	}
	h.warned[key] = true
	log.Warningf(format, args...)
}

// syncTargets starts probing targets that records added and stops those
// they removed, and republishes the catalog. Called from rebuild.
func (h *HealthDNS) syncTargets(names []*nameConfig) {
	if !h.started {
		return
	}
	probing := h.cfg.cluster == nil || h.cfg.cluster.probe
	want := map[string]probe.Target{}
	var all []probe.Target
	for _, n := range names {
		for _, t := range n.targets {
			k := t.probeKey()
			if _, dup := want[k]; !dup {
				want[k] = t.probe
				all = append(all, t.probe)
			}
		}
	}
	changed := false
	for k, t := range want {
		if h.staticKeys[k] || h.dynamic[k] != nil {
			continue
		}
		changed = true
		if probing {
			h.dynamic[k] = h.pool.Acquire([]probe.Target{t})
		} else {
			h.dynamic[k] = func() {}
		}
	}
	for k, release := range h.dynamic {
		if _, ok := want[k]; !ok {
			release()
			delete(h.dynamic, k)
			changed = true
		}
	}
	if changed && h.member != nil {
		h.member.setCatalog(h, all, probing)
	}
}
