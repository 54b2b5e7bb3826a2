// Package healthdns is the CoreDNS plugin that serves health-aware
// authoritative zones. It only wires: configuration from the Corefile, the
// probe pool, the snapshot builder, metrics and ServeDNS. The logic lives in
// the packages below it.
package healthdns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/recordmerge"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/status"

	"github.com/miekg/dns"
)

// HealthDNS answers queries for its zones from the current snapshot.
type HealthDNS struct {
	Next plugin.Handler

	origins []string
	cfg     *config
	pool    *probe.Pool
	snap    atomic.Pointer[snapshot.Snapshot]

	// mu serialises rebuilds (never taken on the query path). It and the
	// verdict state belong to the zones, not the instance: a reload shares
	// them, so verdicts, history and a partition's frozen answers survive it.
	mu          *sync.Mutex
	vs          *verdictState
	judge       *health.Judge
	history     map[string][]status.Change
	lastGood    map[string][]netip.Addr
	release     func()
	member      *member   // nil without a cluster block
	storeRef    *storeRef // nil without a data directory
	storeCancel func()
	// observersHeard and observersKnown count the observers (for status):
	// those alive and not silent, and those that did not leave.
	observersHeard, observersKnown int
	voters                         []voterState // as of the last rebuild

	started     bool
	ready       atomic.Bool // start has run: see Ready
	statusHeld  bool
	controlHeld bool
	webhookHeld bool
	names       []*nameConfig       // Corefile names with the records' targets merged in
	staticKeys  map[string]bool     // probe keys of Corefile targets
	dynamic     map[string]func()   // probe keys of record targets -> release
	fresh       freshness           // guarded by mu
	merger      *recordmerge.Merger // the records merged into cfg
	regionCtrs  regionCounters      // region_answers_total's series
	inc         incremental         // guarded by mu: what rebuildSome needs
	seriesOff   bool                // guarded by mu: records' names have no per-name series (logged)
	// answerNames, while seriesOff, is the names answers_total counts by
	// name (the Corefile's); the others count as name "". Read by the
	// query path, so swapped whole.
	answerNames atomic.Pointer[map[string]bool]

	done chan struct{}
	wg   sync.WaitGroup
}

// newHandler is a handler with its first answers built, as tests that do
// not start it want.
func newHandler(cfg *config, p *probe.Pool) *HealthDNS {
	h := handlerOf(cfg, p)
	h.rebuild()
	return h
}

// handlerOf is a handler whose answers start builds: CoreDNS runs
// OnStartup before its servers listen, and a build here would judge every
// target once more, with nothing observed yet (a second at 100,000
// targets, while the new server is not answering).
func handlerOf(cfg *config, p *probe.Pool) *HealthDNS {
	h := &HealthDNS{cfg: cfg, pool: p, staticKeys: map[string]bool{}, dynamic: map[string]func(){}, names: cfg.names}
	h.fresh.window = freshnessWindow(cfg)
	for _, t := range cfg.probeTargets() {
		h.staticKeys[t.Key()] = true
	}
	for _, z := range cfg.zones {
		h.origins = append(h.origins, z.Origin)
	}
	h.merger = recordmerge.New(recordmerge.Config{Zones: cfg.zones, Names: cfg.names, TTL: cfg.ttl, Geo: cfg.geo, Warnf: log.Warningf,
		Timing: recordmerge.Timing{Interval: cfg.timing.interval, Timeout: cfg.timing.timeout, Rise: cfg.timing.rise, Fall: cfg.timing.fall}})
	h.vs = verdictStateOf(h.origins)
	h.mu, h.judge, h.history, h.lastGood = &h.vs.mu, h.vs.judge, h.vs.history, h.vs.lastGood
	return h
}

// Name implements plugin.Handler.
func (h *HealthDNS) Name() string { return pluginName }

// ServeDNS implements plugin.Handler.
func (h *HealthDNS) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 {
		return reply(w, r, dns.RcodeFormatError)
	}
	state := request.Request{W: w, Req: r}
	qname := state.Name()
	s := h.snap.Load()
	if s == nil { // not started: CoreDNS does not serve before OnStartup
		return reply(w, r, dns.RcodeServerFailure)
	}
	if !s.Covers(qname) {
		// Not ours: the rest of the chain may serve it (a NOTIFY for a
		// secondary zone, say); with nothing after us, REFUSED as the
		// file plugin does.
		if h.Next == nil {
			return reply(w, r, dns.RcodeRefused)
		}
		return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
	}
	if r.Opcode != dns.OpcodeQuery {
		return reply(w, r, dns.RcodeNotImplemented)
	}
	switch {
	case state.QClass() == dns.ClassCHAOS:
		return h.serveMatrix(ctx, w, r, state)
	case state.QClass() != dns.ClassINET:
		return reply(w, r, dns.RcodeRefused)
	case state.QType() == dns.TypeAXFR || state.QType() == dns.TypeIXFR:
		return reply(w, r, dns.RcodeRefused) // no zone transfers of health-aware data
	}
	c, ecs, ok := h.client(ctx, w, r, s.Tailors())
	if !ok {
		// RFC 7871 7.1.3: an ECS option we cannot read is a format error.
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		state.SizeAndDo(m)
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	qtype := state.QType()
	size := 0 // only MX, SRV and NS answers carry optional records
	if qtype == dns.TypeMX || qtype == dns.TypeSRV || qtype == dns.TypeNS {
		size = state.Size()
		if r.IsEdns0() != nil {
			size -= optLen // SizeAndDo adds our OPT below
		}
		if ecs != nil {
			size -= 8 + (int(ecs.SourceNetmask)+7)/8 // and the ECS echoed
		}
	}
	res := s.Answer(m, qname, qtype, size, c)
	if res.Outcome != snapshot.Static {
		server := metrics.WithServer(ctx)
		name := res.Name
		if only := h.answerNames.Load(); only != nil && !(*only)[name] {
			name = "" // a records' name past record-series
		}
		if s.Expired() {
			// Paused past the deadline: our view may be long dead.
			countAnswer(server, name, res.Policy, snapshot.Stale)
			m = new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			state.SizeAndDo(m)
			w.WriteMsg(m)
			return dns.RcodeSuccess, nil
		}
		countAnswer(server, name, res.Policy, res.Outcome)
		if res.Tailored {
			h.regionCtrs.counter(server, h.cfg.regions, res.Policy, res.Region).Inc()
		}
	}
	state.SizeAndDo(m)
	if ecs != nil {
		echoECS(m, ecs, res.Choice)
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// client is who asks r: its ECS subnet (RFC 7871) unless ECS is off, else
// its source address; ecs is the option to echo (nil for none). ok is
// false for an ECS option that is malformed: an address longer than its
// SOURCE PREFIX-LENGTH says, or a family that does not match.
//
// The source address is looked up only when a name needs it (tailors).
func (h *HealthDNS) client(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, tailors bool) (c policy.Client, ecs *dns.EDNS0_SUBNET, ok bool) {
	c = policy.Client{Ctx: ctx, Where: h.cfg.where}
	if !h.cfg.ecsOff {
		if opt := r.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if e, isECS := o.(*dns.EDNS0_SUBNET); isECS {
					ecs = e
					break
				}
			}
		}
	}
	if ecs == nil {
		if tailors {
			c.Addr = sourceAddr(w)
			c.Bits = c.Addr.BitLen()
		}
		return c, nil, true
	}
	c.ECS = true
	bits := int(ecs.SourceNetmask)
	if bits == 0 {
		// "/0": the client asks that no address of its be used (RFC
		// 7871 7.1.2): answer as for a client with no region.
		return c, ecs, ecs.Family <= 2
	}
	a, isIP := netip.AddrFromSlice(ecs.Address)
	if !isIP {
		return c, nil, false
	}
	switch ecs.Family {
	case 1:
		if !a.Unmap().Is4() || bits > 32 {
			return c, nil, false
		}
		a = a.Unmap()
	case 2:
		if bits > 128 || a.Is4() {
			return c, nil, false
		}
	default:
		return c, nil, false
	}
	if p, err := a.Prefix(bits); err != nil || p.Addr() != a {
		return c, nil, false // bits set beyond SOURCE PREFIX-LENGTH
	}
	c.Addr, c.Bits = a, bits
	return c, ecs, true
}

// sourceAddr is the query's source address, without the allocations of
// request.IP.
func sourceAddr(w dns.ResponseWriter) netip.Addr {
	var ip net.IP
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// echoECS adds the query's ECS option to the reply's OPT (SizeAndDo drops
// it), with the SCOPE PREFIX-LENGTH of the answer: the choice's scope when
// the answer depends on the client, else 0 (RFC 7871 7.2.1).
func echoECS(m *dns.Msg, q *dns.EDNS0_SUBNET, ch policy.Choice) {
	opt := m.IsEdns0()
	if opt == nil {
		return
	}
	scope := 0
	if ch.Tailored && q.SourceNetmask > 0 {
		most := 128
		if q.Family == 1 {
			most = 32
		}
		scope = min(ch.Scope, most)
	}
	opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{
		Code: dns.EDNS0SUBNET, Family: q.Family, SourceNetmask: q.SourceNetmask, SourceScope: uint8(scope), Address: q.Address,
	})
}

// optLen is the wire size of an OPT record without options.
const optLen = 11

func reply(w dns.ResponseWriter, r *dns.Msg, rcode int) (int, error) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// start acquires the targets and waits for the first probe round, bounded
// by the longest check timeout, so a fresh server never answers from an
// empty view. In a cluster it also joins and syncs state from a peer
// first (cold start). CoreDNS runs it before the listeners open; on a
// reload the targets are already probed and it returns at once.
func (h *HealthDNS) start() error {
	targets := h.cfg.probeTargets()
	probing := h.cfg.cluster == nil || h.cfg.cluster.probe
	if probing {
		h.release = h.pool.Acquire(targets)
	}
	// Records changed: in the store, or (in a cluster) in what gossip
	// holds while there is no open store. Forwarders feed one channel,
	// and end with the loop.
	h.done = make(chan struct{})
	recordChanges := make(chan struct{}, 1)
	forward := func(ch <-chan struct{}, stop func()) {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer stop()
			for {
				select {
				case <-h.done:
					return
				case <-ch:
					select {
					case recordChanges <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	if h.cfg.dataDir != "" {
		h.storeRef = acquireStore(h.cfg.dataDir)
		if h.cfg.webhook != nil {
			w, err := acquireWebhook(h.cfg.webhook, h.storeRef, h.origins)
			if err != nil {
				h.stop()
				return plugin.Error(pluginName, err)
			}
			h.webhookHeld = true
			w.SetServable(h.merger.Servable)
		}
	}
	var gossipChanges <-chan struct{}
	unsubscribeGossip := func() {}
	if cc := h.cfg.cluster; cc != nil {
		cat := catalogOf(targets)
		m, err := acquireMember(cc, h.cfg.dataDir)
		if err != nil {
			h.stop()
			return plugin.Error(pluginName, fmt.Errorf("cluster: %w", err))
		}
		h.member = m
		m.setCatalogOf(h, cat, probing)
		forward(m.node.SubscribeRecords())
		gossipChanges, unsubscribeGossip = m.node.Subscribe()
	}
	h.loadOverrides()
	if h.storeRef != nil {
		// Now, or once a store that could not be opened opens.
		member := h.member
		var mu sync.Mutex // the call may come from the retry, as stop runs
		stopped := false
		cancel := h.storeRef.onOpen(func(st *records.Store) {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return
			}
			if member != nil {
				member.syncRecords(st)
			}
			forward(st.Subscribe())
			select {
			case recordChanges <- struct{}{}:
			default:
			}
		})
		h.storeCancel = func() {
			mu.Lock()
			stopped = true
			mu.Unlock()
			cancel()
		}
	}
	// Records (from disk or from peers) add targets: acquire them now so
	// that the first round covers them too.
	h.mu.Lock()
	h.started = true
	h.fresh.last = time.Time{} // the wait for setup, a join or a sync is no stall
	h.mu.Unlock()
	h.rebuild()
	if probing {
		h.mu.Lock()
		var all []probe.Target
		for _, n := range h.names {
			for _, t := range n.Targets {
				all = append(all, *t.Probe)
			}
		}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.maxTimeout()+time.Second)
		defer cancel()
		if err := h.pool.WaitFirstRound(ctx, all); err != nil {
			log.Warningf("first probe round not done after %s; answering with what is known", h.cfg.maxTimeout()+time.Second)
		}
		if h.member != nil {
			h.member.publishObservations(h.pool)
		}
	}
	h.rebuild()
	if h.cfg.statusAddr != "" {
		if err := acquireStatus(h.cfg.statusAddr, h); err != nil {
			h.stop()
			return plugin.Error(pluginName, fmt.Errorf("status %s: %w", h.cfg.statusAddr, err))
		}
		h.statusHeld = true
	}
	if cc := h.cfg.control; cc != nil {
		if err := acquireControl(cc.addr, h); err != nil {
			h.stop()
			return plugin.Error(pluginName, fmt.Errorf("control %s: %w", cc.addr, err))
		}
		h.controlHeld = true
		if cc.insecure {
			log.Warningf("control %s: insecure: anyone who reaches it can drain or force any target", cc.addr)
		}
		if h.cfg.dataDir == "" {
			log.Warningf("control %s: no data directory: overrides are kept in memory only (a restart loses those no peer holds)", cc.addr)
		}
	}
	probeChanges, unsubscribe := h.pool.Subscribe()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer unsubscribe()
		defer unsubscribeGossip()
		// Staleness, silence and partitions change with time alone:
		// rebuild when the judge says the next expiry is due, at least
		// every second.
		wake := time.NewTimer(time.Second)
		defer wake.Stop()
		observed := time.NewTicker(250 * time.Millisecond)
		defer observed.Stop()
		// A pending verdict change is confirmed by hearing a majority of
		// voters again, which is not news a subscriber is told of: look
		// at the voters every gossip round, ping them while a change
		// waits, and rebuild when it is due.
		var confirm <-chan time.Time
		acked := make(chan struct{}, 1)
		ping := func() {
			h.member.node.PingVoters(func() {
				select {
				case acked <- struct{}{}:
				default:
				}
			})
		}
		if h.member != nil {
			t := time.NewTicker(min(max(h.member.cfg.gossip.GossipInterval, 20*time.Millisecond), 250*time.Millisecond))
			defer t.Stop()
			confirm = t.C
		}
		for {
			select {
			case <-h.done:
				return
			case <-probeChanges:
				if h.member != nil && probing {
					h.member.publishObservations(h.pool)
				}
			case <-gossipChanges:
				h.member.logMembers()
			case <-recordChanges:
			case <-wake.C:
			case <-confirm:
				due, waiting := h.due()
				if !due {
					if waiting {
						ping()
					}
					continue
				}
			case <-acked:
				if due, _ := h.due(); !due {
					continue
				}
			case <-observed.C:
				// Keep our view dated by our latest probe results at our
				// peers; nothing to rebuild.
				if h.member != nil && probing {
					h.member.publishObservations(h.pool)
				}
				continue
			}
			wait := time.Second
			next := h.rebuild()
			if h.member != nil && h.waiting() {
				ping() // ask the voters now rather than at the next round
			}
			if !next.IsZero() {
				// Just past the expiry: at it, the observation still counts.
				wait = min(wait, time.Until(next)+time.Millisecond)
			}
			wake.Reset(max(wait, time.Millisecond))
		}
	}()
	running.Lock()
	running.hs[h] = true
	running.Unlock()
	h.ready.Store(true)
	return nil
}

// Ready is the ready plugin's readiness check: true once start has run,
// that is after the cold-start sync and the first probe round. Without it
// /ready says 200 while a starting server is still syncing, and a
// Kubernetes Service would send it queries before it answers.
func (h *HealthDNS) Ready() bool { return h.ready.Load() }

// waiting says whether a verdict change waits for the voters while this
// server hears a majority (while partitioned, asking is for the rounds).
func (h *HealthDNS) waiting() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.judge.Pendings() > 0 && !h.judge.Partitioned()
}

// due says whether the voters alone would move something now: a pending
// verdict change a majority confirms, or the partition state; and whether
// a change waits for them.
func (h *HealthDNS) due() (due, waiting bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	v, _ := h.member.voters(now)
	return h.judge.Due(now, v), h.judge.Pendings() > 0
}

// stop releases what start acquired; it also undoes a start that failed
// half-way, so it releases only what is held: on a failed reload the old
// instance's shared listeners must stay.
func (h *HealthDNS) stop() error {
	h.ready.Store(false)
	running.Lock()
	delete(running.hs, h)
	running.Unlock()
	if h.statusHeld {
		releaseStatus(h.cfg.statusAddr, h)
		h.statusHeld = false
	}
	if h.controlHeld {
		releaseControl(h.cfg.control.addr, h)
		h.controlHeld = false
	}
	if h.storeCancel != nil {
		h.storeCancel()
		h.storeCancel = nil
	}
	if h.done != nil {
		close(h.done)
		h.wg.Wait()
		h.done = nil
	}
	if h.member != nil {
		h.member.release(h)
		h.member = nil
	}
	if h.release != nil {
		h.release()
		h.release = nil
	}
	h.mu.Lock()
	for k, release := range h.dynamic {
		release()
		delete(h.dynamic, k)
	}
	h.started = false
	h.mu.Unlock()
	if h.webhookHeld {
		releaseWebhook(h.cfg.webhook.addr)
		h.webhookHeld = false
	}
	if h.storeRef != nil {
		releaseStore(h.cfg.dataDir)
		h.storeRef = nil
	}
	return nil
}
