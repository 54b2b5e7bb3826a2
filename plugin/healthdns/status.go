package healthdns

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/listen"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
	"github.com/healthdns/healthdns/plugin/healthdns/version"
)

// historyLen bounds the verdict changes kept per target for the status API.
const historyLen = 20

// recordHistory keeps the last verdict changes per target. Called from
// rebuild with h.mu held.
func (h *HealthDNS) recordHistory(changes []health.Change) {
	for _, c := range changes {
		hist := append(h.history[c.Key], status.Change{Time: c.To.Since.UTC(), From: c.From.State.String(), To: c.To.State.String(), Reason: c.To.Reason})
		if len(hist) > historyLen {
			hist = hist[len(hist)-historyLen:]
		}
		h.history[c.Key] = hist
	}
}

// document builds the status document from the current state, only when
// asked. only, if not "", keeps that one name (lower-case FQDN).
func (h *HealthDNS) document(only string) *status.Document {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now().UTC()
	doc := &status.Document{
		Node: "self", Role: status.RoleServer, Time: now,
		Partition: h.partitionDoc(),
		Members:   []status.Member{}, Views: []status.View{}, Names: []status.Name{}, Owners: []status.Owner{}, Catalog: []status.CatalogEntry{},
	}
	b := version.Get()
	doc.Build = &status.Build{Version: b.Version, Commit: b.Commit, Date: b.Date, CoreDNS: b.CoreDNS, Go: b.Go}
	var views []gossip.ObserverView
	var ownReasons map[gossip.TargetID]string // what this server gossips of its own probes
	if h.member != nil {
		n := h.member.node
		doc.Node, doc.Observer = n.Name(), h.member.cfg.gossip.Observer
		doc.Cluster = &status.Cluster{Insecure: h.member.cfg.insecure, Label: h.member.cfg.gossip.Label}
		for _, m := range n.Members() {
			doc.Members = append(doc.Members, status.Member{Name: m.Name, Addr: m.Addr, Role: m.Role.String(), Observer: m.Observer, State: m.State.String(), Since: m.Since.UTC()})
		}
		for _, v := range n.Views() {
			sv := status.View{Node: v.Node, Location: v.Observer, Role: v.Role.String(), State: v.State.String(), LastHeard: v.LastHeard.UTC(), Synced: v.Synced}
			for _, s := range v.States {
				switch s {
				case health.Up:
					sv.Up++
				case health.Down:
					sv.Down++
				}
			}
			doc.Views = append(doc.Views, sv)
			if v.Node != n.Name() {
				views = append(views, v)
			} else {
				ownReasons = v.Reasons
			}
		}
	}
	probing := h.cfg.cluster == nil || h.cfg.cluster.probe
	snap := h.snap.Load()
	ovm := h.matcherFor(now)
	entries, _ := h.book().All()
	for _, e := range entries {
		doc.Overrides = append(doc.Overrides, *overrideDoc(e, now))
	}
	for _, n := range h.names {
		if only != "" && n.FQDN != only {
			continue
		}
		sn := status.Name{
			Name: n.FQDN, Policy: n.Policy.Name(), Quorum: n.Quorum.String(), TTL: n.TTL,
			Fallback: fallbackString(n), MinHealthy: n.MinHealthy, MaxAnswers: n.MaxAnswers,
			AnswerA: []string{}, AnswerAAAA: []string{}, Targets: []status.Target{},
		}
		if d := snap.Dynamic(n.FQDN); d != nil {
			sn.AnswerA, sn.AnswerAAAA = addrStrings(d.A.Addrs()), addrStrings(d.AAAA.Addrs())
			sn.Outcome = worstOutcome(&d.A, d.AAAA)
		}
		sn.State = h.vs.nameStates[n.FQDN]
		for _, t := range n.Targets {
			key := verdictKey(n, t)
			v := h.judge.Verdict(key)
			st := status.Target{
				ID: t.ID.String(), Address: t.Probe.Addr.String(), Owner: t.Owner, Tier: t.Tier, Weight: t.Weight, Region: t.Region,
				Verdict: v.State.String(), Since: v.Since.UTC(), Reason: v.Reason,
				Checks: []string{}, Observations: []status.Observation{}, History: h.historyOf(key, nameAddr{n.FQDN, t.Probe.Addr}),
			}
			for _, c := range t.Probe.Checks {
				st.Checks = append(st.Checks, c.String())
			}
			if e, ok := ovm.For(selectable(&t, n.FQDN)); ok {
				st.Override = overrideDoc(e, now)
			}
			if p, ok := h.judge.Pending(key); ok {
				st.Pending, st.PendingSince = p.To.String(), p.Since.UTC()
			}
			if probing {
				o := h.ownObservation(doc.Node, t.ProbeKey(), t.Probe.Interval, t.Probe.Timeout)
				st.Observations = append(st.Observations, status.Observation{
					Observer: doc.Node, Location: doc.Observer, State: o.State.String(), LastHeard: utcOrZero(o.At), AgeSeconds: ageOf(now, o.At), Stale: !o.Fresh(now),
					Error: h.pool.Status(t.ProbeKey()).Err,
				})
				if o := &st.Observations[len(st.Observations)-1]; o.Error == "" && o.State == status.StateDown {
					o.Error = ownReasons[t.ID] // its last check passed, before rise: the failure stands
				}
			}
			for _, view := range views {
				o := h.peerObservation(view, t.ID, t.Probe.Interval)
				stale := !view.Alive || !o.Fresh(now)
				st.Observations = append(st.Observations, status.Observation{
					Observer: view.Node, Location: view.Observer, State: o.State.String(), LastHeard: view.LastHeard.UTC(), AgeSeconds: ageOf(now, view.LastHeard), Stale: stale,
					Error: view.Reasons[t.ID],
				})
			}
			sort.Slice(st.Observations, func(i, j int) bool { return st.Observations[i].Observer < st.Observations[j].Observer })
			sn.Targets = append(sn.Targets, st)
		}
		doc.Names = append(doc.Names, sn)
	}
	sort.Slice(doc.Names, func(i, j int) bool { return doc.Names[i].Name < doc.Names[j].Name })
	rs := h.recordState()
	for _, o := range rs.Owners() {
		doc.Owners = append(doc.Owners, status.Owner{Name: o, Records: rs.Len(o)})
	}
	if h.storeRef != nil {
		doc.Store = &status.Store{Dir: h.cfg.dataDir}
		if _, err := h.storeRef.get(); err != nil {
			doc.Store.Error = err.Error()
		}
	}
	return doc
}

// partitionDoc is the partition state for status: the voters as the last
// rebuild counted them. Called with h.mu held.
func (h *HealthDNS) partitionDoc() *status.Partition {
	st := h.judge.Standing()
	p := &status.Partition{
		Partitioned: st.Partitioned, Heard: h.observersHeard, Known: h.observersKnown, Since: h.vs.partitionSince,
		VotersHeard: st.Heard, VotersKnown: st.Known, VotersNeeded: st.Needed, VotersRule: "alone",
		Voters: []status.Voter{}, Pending: h.judge.Pendings(),
	}
	if h.member != nil {
		p.VotersRule = "servers"
		if h.member.cfg.servers == 0 {
			p.VotersRule = "remembered"
		}
	}
	for _, v := range h.voters {
		p.Voters = append(p.Voters, status.Voter{Name: v.name, Role: v.role, State: v.state, LastHeard: utcOrZero(v.heard)})
	}
	return p
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func ageOf(now, t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return now.Sub(t).Seconds()
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// worstOutcome is the status of a name: the worse of its two families.
func worstOutcome(a, aaaa *snapshot.Set) string {
	rank := func(o snapshot.Outcome) int {
		switch o {
		case snapshot.Empty:
			return 0
		case snapshot.Fallback:
			return 1
		case snapshot.Healthy:
			return 2
		}
		return 3 // no targets of that family: says nothing
	}
	worst := a.Outcome
	if rank(aaaa.Outcome) < rank(worst) {
		worst = aaaa.Outcome
	}
	switch worst {
	case snapshot.Empty:
		return status.OutcomeNone
	case snapshot.Fallback:
		return status.OutcomeFallback
	}
	return status.OutcomeHealthy
}

func fallbackString(n *nameConfig) string {
	switch n.Fallback {
	case snapshot.FallbackLastGood:
		return "last-good"
	case snapshot.FallbackNone:
		return "none"
	case snapshot.FallbackFixed:
		return strings.Join(addrStrings(n.Fixed), " ")
	}
	return "all"
}

// statusServer is one status listener, shared across reloads: a new
// instance takes it over before the old one lets go, so the port never
// closes during a reload.
type statusServer struct {
	srv    *http.Server
	source atomic.Pointer[HealthDNS]
}

var statusServers registry[string, *statusServer]

func acquireStatus(addr string, h *HealthDNS) error {
	_, err := statusServers.acquire(addr, func() (*statusServer, error) {
		ln, err := listen.Listen("status", addr, listen.Default)
		if err != nil {
			return nil, err
		}
		s := &statusServer{}
		s.srv = listen.Server(status.Handler(func() *status.Document {
			if src := s.source.Load(); src != nil {
				return src.document("")
			}
			return nil
		}), listen.Default)
		go func() {
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Errorf("status listener %s: %v", addr, err)
			}
		}()
		return s, nil
	}, func(s *statusServer, _ bool) { s.source.Store(h) })
	return err
}

func releaseStatus(addr string, h *HealthDNS) {
	statusServers.release(addr, func(s *statusServer, last bool) {
		s.source.CompareAndSwap(h, nil)
		if last {
			shutdown(s.srv)
		}
	})
}

// shutdown closes a listener that no instance holds any more, giving
// requests under way a moment to finish.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}
