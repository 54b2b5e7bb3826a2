// Package healthdns is the CoreDNS plugin that serves health-aware
// authoritative zones. It only wires: configuration from the Corefile, the
// probe pool, the snapshot builder, metrics and ServeDNS. The logic lives in
// the packages below it.
package healthdns

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
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

	mu             sync.Mutex // serialises rebuilds; never taken on the query path
	judge          *health.Judge
	history        map[string][]status.Change
	heard, known   int
	partitionSince time.Time
	lastGood       map[string][]netip.Addr
	release        func()
	member         *member // nil without a cluster block
	done           chan struct{}
	wg             sync.WaitGroup
}

func newHandler(cfg *config, p *probe.Pool) *HealthDNS {
	stale := time.Duration(0)
	if cfg.cluster != nil {
		stale = cfg.cluster.stale
	}
	h := &HealthDNS{cfg: cfg, pool: p, judge: health.NewJudge(stale), lastGood: map[string][]netip.Addr{}, history: map[string][]status.Change{}}
	for _, z := range cfg.zones {
		h.origins = append(h.origins, z.Origin)
	}
	h.rebuild()
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
		return h.serveMatrix(w, r, state)
	case state.QClass() != dns.ClassINET:
		return reply(w, r, dns.RcodeRefused)
	case state.QType() == dns.TypeAXFR || state.QType() == dns.TypeIXFR:
		return reply(w, r, dns.RcodeRefused) // no zone transfers of health-aware data
	}
	m := new(dns.Msg)
	m.SetReply(r)
	out, pol := s.Answer(m, qname, state.QType())
	if out != snapshot.Static {
		answers.WithLabelValues(metrics.WithServer(ctx), pol.String(), out.String()).Inc()
	}
	state.SizeAndDo(m)
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

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
	var gossipChanges <-chan struct{}
	unsubscribeGossip := func() {}
	if cc := h.cfg.cluster; cc != nil {
		m, err := acquireMember(cc)
		if err != nil {
			if h.release != nil {
				h.release()
			}
			return plugin.Error(pluginName, fmt.Errorf("cluster: %w", err))
		}
		h.member = m
		m.setCatalog(h, targets, probing)
		gossipChanges, unsubscribeGossip = m.node.Subscribe()
	}
	if probing {
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.maxTimeout()+time.Second)
		defer cancel()
		if err := h.pool.WaitFirstRound(ctx, targets); err != nil {
			log.Warningf("first probe round not done after %s; answering with what is known", h.cfg.maxTimeout()+time.Second)
		}
		if h.member != nil {
			h.member.publishObservations(h.pool)
		}
	}
	h.rebuild()
	if h.cfg.statusAddr != "" {
		if err := acquireStatus(h.cfg.statusAddr, h); err != nil {
			h.stopEarly()
			return plugin.Error(pluginName, fmt.Errorf("status %s: %w", h.cfg.statusAddr, err))
		}
	}
	probeChanges, unsubscribe := h.pool.Subscribe()
	h.done = make(chan struct{})
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer unsubscribe()
		defer unsubscribeGossip()
		// Staleness and partitions change with time alone.
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-probeChanges:
				if h.member != nil && probing {
					h.member.publishObservations(h.pool)
				}
			case <-gossipChanges:
			case <-tick.C:
			}
			h.rebuild()
		}
	}()
	return nil
}

// stopEarly undoes what start did before it failed.
func (h *HealthDNS) stopEarly() {
	h.stop()
}

func (h *HealthDNS) stop() error {
	if h.cfg.statusAddr != "" {
		releaseStatus(h.cfg.statusAddr, h)
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
	return nil
}

// rebuild turns the current observations into verdicts and a new snapshot.
func (h *HealthDNS) rebuild() {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	probing := h.cfg.cluster == nil || h.cfg.cluster.probe
	self := "self"
	var views []gossip.ObserverView
	heard, known := 0, 0
	if probing {
		heard, known = 1, 1
	}
	if h.member != nil {
		self = h.member.node.Name()
		for _, v := range h.member.node.Views() {
			if v.Node == self {
				continue // our own probes come straight from the pool
			}
			views = append(views, v)
			if v.State == gossip.MemberLeft {
				continue // a planned departure is not a partition
			}
			known++
			if v.Alive && now.Sub(v.LastHeard) <= h.judge.Stale {
				heard++
			}
		}
	}
	var qs []health.Question
	for _, n := range h.cfg.names {
		for _, t := range n.targets {
			q := health.Question{Key: verdictKey(n, t), Quorum: n.quorum}
			if probing {
				q.Obs = append(q.Obs, health.Observation{Observer: self, State: h.pool.Status(t.probe.Key()).State, At: now})
			}
			for _, v := range views {
				q.Obs = append(q.Obs, v.Observation(t.id))
			}
			qs = append(qs, q)
		}
	}
	changes, partitionMoved := h.judge.Round(now, qs, heard, known)
	h.heard, h.known = heard, known
	h.recordHistory(changes)
	if partitionMoved {
		h.partitionSince = now.UTC()
		if h.judge.Partitioned() {
			log.Warningf("partition entered: hearing %d of %d observers; keeping the last verdicts until more are heard", heard, known)
		} else {
			log.Infof("partition left: hearing %d of %d observers; verdicts follow the observers again", heard, known)
		}
	}
	partitioned.Set(b2f(h.judge.Partitioned()))
	if h.member != nil {
		for _, c := range changes {
			if c.From.State != health.Unknown {
				name, addr, _ := strings.Cut(c.Key, " ")
				addr, _, _ = strings.Cut(addr, "|")
				log.Infof("verdict %s %s: %s -> %s: %s", name, addr, c.From.State, c.To.State, c.To.Reason)
			}
		}
	}
	byState := map[health.State]int{}
	names := make([]snapshot.Name, 0, len(h.cfg.names))
	for _, n := range h.cfg.names {
		sn := snapshot.Name{
			FQDN: n.fqdn, TTL: n.ttl, Policy: n.policy, MaxAnswers: n.maxAnswers, MinHealthy: n.minHealthy,
			Fallback: n.fallback, Fixed: n.fixed, LastGood: h.lastGood[n.fqdn],
		}
		for _, t := range n.targets {
			v := h.judge.Verdict(verdictKey(n, t)).State
			byState[v]++
			up := v == health.Up
			targetHealthy.WithLabelValues(n.fqdn, t.probe.Addr.String()).Set(b2f(up))
			sn.Targets = append(sn.Targets, snapshot.Target{Addr: t.probe.Addr, Healthy: up, Tier: t.tier, Weight: t.weight})
		}
		names = append(names, sn)
	}
	for _, st := range []health.State{health.Up, health.Down, health.Unknown} {
		verdicts.WithLabelValues(st.String()).Set(float64(byState[st]))
	}
	s := snapshot.Build(h.snap.Load(), h.cfg.zones, names)
	for _, d := range s.Names() {
		var good []netip.Addr
		if d.A.Outcome == snapshot.Healthy {
			good = append(good, d.A.Addrs...)
		}
		if d.AAAA.Outcome == snapshot.Healthy {
			good = append(good, d.AAAA.Addrs...)
		}
		if len(good) > 0 {
			h.lastGood[d.Name] = good
		}
	}
	h.snap.Store(s)
}

// verdictKey names a target of a name: "app.example.org. 192.0.2.1|checks".
// Two names may share a target under different quorum rules, so verdicts
// are per name.
func verdictKey(n *nameConfig, t targetConfig) string { return n.fqdn + " " + t.probe.Key() }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
