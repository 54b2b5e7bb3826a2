package main

import (
	"net/http"
	"slices"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
	"github.com/healthdns/healthdns/plugin/healthdns/version"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// handler serves the agent's status (/status, the page at /, /health) and
// its metrics (/metrics).
func (a *agent) handler() http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(prometheus.Gatherers{a.reg, prometheus.DefaultGatherer}, promhttp.HandlerOpts{})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	mux.Handle("/", status.Handler(a.document))
	return mux
}

// document is the agent's status: its members, the observers' views it
// holds, the owners of the records its webhook's store holds, and the
// targets it probes with its own state of each. An agent decides no
// verdicts and answers no names, so it has neither Names nor Partition.
func (a *agent) document() *status.Document {
	d := &status.Document{
		Node: a.link.Name(), Role: status.RoleAgent, Observer: a.opts.observer, Time: time.Now().UTC(),
	}
	d.Cluster = &status.Cluster{Insecure: a.opts.insecure, Label: a.opts.label}
	b := version.Get()
	d.Build = &status.Build{Version: b.Version, Commit: b.Commit, Date: b.Date, CoreDNS: b.CoreDNS, Go: b.Go}
	if a.opts.witness {
		d.Role = status.RoleWitness
	}
	if a.node == nil {
		// An edge client has no members and holds no views (its server
		// does); it lists the server it is connected to.
		if srv := a.edge.Server(); srv != "" {
			d.Members = append(d.Members, status.Member{Name: srv, Addr: srv, Role: gossip.RoleServer.String(), State: "connected"})
		}
	}
	var members []gossip.Member
	var views []gossip.ObserverView
	if a.node != nil {
		members, views = a.node.Members(), a.node.Views()
	}
	for _, m := range members {
		d.Members = append(d.Members, status.Member{
			Name: m.Name, Addr: m.Addr, Role: m.Role.String(), Observer: m.Observer, State: m.State.String(), Since: utc(m.Since),
		})
	}
	for _, v := range views {
		sv := status.View{
			Node: v.Node, Location: v.Observer, Role: v.Role.String(), State: v.State.String(),
			LastHeard: utc(v.LastHeard), Synced: v.Synced,
		}
		for _, st := range v.States {
			switch st {
			case health.Up:
				sv.Up++
			case health.Down:
				sv.Down++
			}
		}
		d.Views = append(d.Views, sv)
	}
	held := a.cat.Held()
	if a.sidecar != nil {
		a.sidecar.mu.Lock()
		st := a.sidecar.store
		a.sidecar.mu.Unlock()
		if st != nil { // nil while the store cannot be opened
			rs := st.State()
			for _, o := range rs.Owners() {
				d.Owners = append(d.Owners, status.Owner{Name: o, Records: rs.Len(o)})
			}
		}
	}
	for _, h := range held {
		st := a.pool.Status(h.Probed.Key)
		c := h.Target
		d.Catalog = append(d.Catalog, status.CatalogEntry{
			ID: c.ID.String(), Address: c.Addr.String(), Checks: slices.Clone(c.Checks), Interval: c.Interval.String(),
			State: st.State.String(), Since: utc(st.Since), Checked: utc(st.Checked), Error: st.Err,
		})
	}
	return d
}

// utc shows times in UTC; the zero time stays zero (absent in JSON).
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
