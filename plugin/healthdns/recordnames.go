package healthdns

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
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
}

// parseWebhook reads "webhook [ADDR] { owner NAME; health ADDR; tier N;
// weight N; check SPEC; policy P }"; the cursor is on "webhook".
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
		case "tier", "weight", "check", "policy":
			name := map[string]string{"tier": records.PropTier, "weight": records.PropWeight, "check": records.PropCheck, "policy": records.PropPolicy}[key]
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
type storeRef struct {
	store *records.Store
	refs  int
}

type webhookRef struct {
	srv  *webhook.Server
	cfg  webhookConfig
	refs int
}

var (
	recordsMu sync.Mutex
	stores    = map[string]*storeRef{}
	webhooks  = map[string]*webhookRef{}
)

func acquireStore(dir string) (*records.Store, error) {
	recordsMu.Lock()
	defer recordsMu.Unlock()
	if r := stores[dir]; r != nil {
		r.refs++
		return r.store, nil
	}
	st, err := records.Open(dir, records.Options{Logf: logf})
	if err != nil {
		return nil, err
	}
	stores[dir] = &storeRef{store: st, refs: 1}
	return st, nil
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
		r.store.Close()
	}
}

func acquireWebhook(wc *webhookConfig, st *records.Store, origins []string) error {
	recordsMu.Lock()
	defer recordsMu.Unlock()
	if r := webhooks[wc.addr]; r != nil {
		if r.cfg.owner != wc.owner || r.cfg.healthAddr != wc.healthAddr || fmt.Sprint(r.cfg.defaults) != fmt.Sprint(wc.defaults) {
			log.Warningf("webhook %s: owner, health and defaults changes take effect on restart, not reload", wc.addr)
		}
		r.refs++
		return nil
	}
	filter, err := records.NewFilter(origins, nil)
	if err != nil {
		return err
	}
	w, err := webhook.New(st, webhook.Config{Owner: wc.owner, Filter: filter, Defaults: wc.defaults, Logf: logf})
	if err != nil {
		return err
	}
	srv, err := webhook.Listen(w, wc.addr, wc.healthAddr, prometheus.DefaultGatherer)
	if err != nil {
		return err
	}
	log.Infof("webhook for owner %s on %s (ExternalDNS --webhook-provider-url=http://%s)", wc.owner, srv.Addr(), srv.Addr())
	webhooks[wc.addr] = &webhookRef{srv: srv, cfg: *wc, refs: 1}
	return nil
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

// recordSets are the owners' record sets this server knows: its store
// (which holds what gossip brought too), else what gossip holds in memory.
func (h *HealthDNS) recordSets() []records.Set {
	switch {
	case h.store != nil:
		return h.store.Sets()
	case h.member != nil:
		return h.member.node.Records()
	}
	return nil
}

// withRecords merges the owners' record sets into the Corefile's names and
// zones: each A/AAAA endpoint's addresses become targets of its name (a
// name of the Corefile keeps its policy and options; a new one takes the
// endpoint's), TXT and CNAME endpoints become static records. Conflicts
// are settled for the zone file and the Corefile, and logged once.
func (h *HealthDNS) withRecords(sets []records.Set) ([]*nameConfig, []*zone.Data) {
	if len(sets) == 0 {
		return h.cfg.names, h.cfg.zones
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].Owner < sets[j].Owner })
	byName := map[string]*nameConfig{}
	var order []string
	for _, n := range h.cfg.names {
		cp := *n
		cp.targets = append([]targetConfig(nil), n.targets...)
		byName[n.fqdn] = &cp
		order = append(order, n.fqdn)
	}
	extra := map[string][]dns.RR{}
	seen := map[string]bool{} // name + address: the first owner's target wins
	for n, nc := range byName {
		for _, t := range nc.targets {
			seen[n+" "+t.probe.Addr.String()] = true
		}
	}
	for _, set := range sets {
		for _, e := range set.Endpoints {
			name := strings.ToLower(dns.Fqdn(e.DNSName))
			if !h.inZones(name) {
				continue
			}
			ttl := uint32(h.cfg.ttl)
			if e.RecordTTL > 0 {
				ttl = uint32(min(e.RecordTTL, 86400))
			}
			switch e.RecordType {
			case records.TypeA, records.TypeAAAA:
				if err := checkAgainstZone(name, h.cfg.zones); err != nil {
					h.warnOnce(set.Owner+" "+name, "owner %s: %s not served: %v", set.Owner, name, err)
					continue
				}
				props := e.Properties()
				nc := byName[name]
				if nc == nil {
					nc = &nameConfig{fqdn: name, ttl: ttl, quorum: health.Quorum{Kind: health.Majority}}
					if k, err := policy.ParseKind(props.Policy); err == nil {
						nc.policy = k
					}
					if nc.policy == policy.Weighted {
						nc.maxAnswers = 1
					}
					byName[name] = nc
					order = append(order, name)
				}
				for _, a := range e.Targets {
					addr, err := netip.ParseAddr(a)
					if err != nil {
						continue
					}
					addr = addr.Unmap()
					if seen[name+" "+addr.String()] {
						continue
					}
					seen[name+" "+addr.String()] = true
					if props.Check == "" {
						h.warnOnce(set.Owner+" "+name+" check", "owner %s: %s %s has no health check (webhook/check or the owner's default): not served", set.Owner, name, addr)
						continue
					}
					ch, err := records.CheckFor(props.Check, addr)
					if err != nil {
						h.warnOnce(set.Owner+" "+name+" "+props.Check, "owner %s: %s: check %q: %v", set.Owner, name, props.Check, err)
						continue
					}
					pt := probe.Target{Addr: addr, Checks: []probe.Check{ch}, Interval: h.cfg.timing.interval, Timeout: h.cfg.timing.timeout, Rise: h.cfg.timing.rise, Fall: h.cfg.timing.fall}
					tc := targetConfig{tier: 1, weight: 1, probe: pt, id: gossip.IDOf(pt), owner: set.Owner}
					if props.Tier > 0 {
						tc.tier = props.Tier
					}
					if props.HasWeight {
						tc.weight = props.Weight
					}
					nc.targets = append(nc.targets, tc)
				}
			case records.TypeTXT:
				for _, t := range e.Targets {
					extra[name] = append(extra[name], &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: records.TXTStrings(t)})
				}
			case records.TypeCNAME:
				if byName[name] != nil || h.zoneHas(name) || len(extra[name]) > 0 || len(e.Targets) != 1 {
					h.warnOnce(set.Owner+" "+name+" cname", "owner %s: CNAME %s not served: the name has other data", set.Owner, name)
					continue
				}
				extra[name] = append(extra[name], &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl}, Target: dns.Fqdn(e.Targets[0])})
			}
		}
	}
	names := make([]*nameConfig, 0, len(order))
	for _, n := range order {
		if len(byName[n].targets) > 0 {
			names = append(names, byName[n])
		}
	}
	// A CNAME next to a health-aware name or a TXT would break RFC 1034.
	for n, rrs := range extra {
		if _, isCNAME := rrs[0].(*dns.CNAME); isCNAME && len(rrs) > 1 {
			delete(extra, n)
		}
	}
	zones := make([]*zone.Data, 0, len(h.cfg.zones))
	for _, d := range h.cfg.zones {
		cp := &zone.Data{Origin: d.Origin, SOA: d.SOA, Names: make(map[string]map[uint16][]dns.RR, len(d.Names))}
		for k, v := range d.Names {
			cp.Names[k] = v
		}
		for n, rrs := range extra {
			if !snapshot.InZone(d.Origin, n) {
				continue
			}
			types := make(map[uint16][]dns.RR, len(cp.Names[n])+1)
			for t, v := range cp.Names[n] {
				types[t] = v
			}
			for _, rr := range rrs {
				t := rr.Header().Rrtype
				types[t] = append(types[t], rr)
			}
			cp.Names[n] = types
		}
		zones = append(zones, cp)
	}
	return names, zones
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
			k := t.probe.Key()
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
