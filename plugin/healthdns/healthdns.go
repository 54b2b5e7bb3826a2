// Package healthdns is the CoreDNS plugin that serves health-aware
// authoritative zones. It only wires: configuration from the Corefile, the
// probe pool, the snapshot builder, metrics and ServeDNS. The logic lives in
// the packages below it.
package healthdns

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"

	"github.com/miekg/dns"
)

// HealthDNS answers queries for its zones from the current snapshot.
type HealthDNS struct {
	Next plugin.Handler

	origins []string
	cfg     *config
	pool    *probe.Pool
	snap    atomic.Pointer[snapshot.Snapshot]

	mu       sync.Mutex // serialises rebuilds; never taken on the query path
	verdicts map[string]health.State
	lastGood map[string][]netip.Addr
	release  func()
	done     chan struct{}
	wg       sync.WaitGroup
}

func newHandler(cfg *config, p *probe.Pool) *HealthDNS {
	h := &HealthDNS{cfg: cfg, pool: p, verdicts: map[string]health.State{}, lastGood: map[string][]netip.Addr{}}
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
// empty view. CoreDNS runs it before the listeners open; on a reload the
// targets are already probed and it returns at once.
func (h *HealthDNS) start() error {
	h.release = h.pool.Acquire(h.cfg.probeTargets())
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.maxTimeout()+time.Second)
	defer cancel()
	if err := h.pool.WaitFirstRound(ctx, h.cfg.probeTargets()); err != nil {
		log.Warningf("first probe round not done after %s; answering with what is known", h.cfg.maxTimeout()+time.Second)
	}
	h.rebuild()
	ch, unsubscribe := h.pool.Subscribe()
	h.done = make(chan struct{})
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer unsubscribe()
		for {
			select {
			case <-h.done:
				return
			case <-ch:
				h.rebuild()
			}
		}
	}()
	return nil
}

func (h *HealthDNS) stop() error {
	if h.done != nil {
		close(h.done)
		h.wg.Wait()
		h.done = nil
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
	names := make([]snapshot.Name, 0, len(h.cfg.names))
	for _, n := range h.cfg.names {
		sn := snapshot.Name{
			FQDN: n.fqdn, TTL: n.ttl, Policy: n.policy, MaxAnswers: n.maxAnswers, MinHealthy: n.minHealthy,
			Fallback: n.fallback, Fixed: n.fixed, LastGood: h.lastGood[n.fqdn],
		}
		for _, t := range n.targets {
			k := t.probe.Key()
			st := h.pool.Status(k)
			v := health.Decide(n.quorum, []health.Observation{{Observer: "self", State: st.State, At: st.Checked}}, now, 0)
			if v == health.Unknown {
				v = h.verdicts[k] // no evidence: keep what we had
			}
			h.verdicts[k] = v
			targetHealthy.WithLabelValues(n.fqdn, t.probe.Addr.String()).Set(b2f(v == health.Up))
			sn.Targets = append(sn.Targets, snapshot.Target{Addr: t.probe.Addr, Healthy: v == health.Up, Tier: t.tier, Weight: t.weight})
		}
		names = append(names, sn)
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

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
