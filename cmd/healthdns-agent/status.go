package main

import (
	"cmp"
	"net/http"
	"slices"
	"time"

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
		Node: a.node.Name(), Role: status.RoleAgent, Observer: a.opts.observer, Time: time.Now().UTC(),
	}
	d.Cluster = &status.Cluster{Insecure: a.opts.insecure, Label: a.opts.label}
	b := version.Get()
	d.Build = &status.Build{Version: b.Version, Commit: b.Commit, Date: b.Date, CoreDNS: b.CoreDNS, Go: b.Go}
	if a.opts.witness {
		d.Role = status.RoleWitness
	}
	for _, m := range a.node.Members() {
		d.Members = append(d.Members, status.Member{
			Name: m.Name, Addr: m.Addr, Role: m.Role.String(), Observer: m.Observer, State: m.State.String(), Since: utc(m.Since),
		})
	}
	for _, v := range a.node.Views() {
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
	a.mu.Lock()
	held := make([]*heldTarget, 0, len(a.held))
	for _, h := range a.held {
		held = append(held, h)
	}
	a.mu.Unlock()
	slices.SortFunc(held, func(x, y *heldTarget) int {
		if c := x.cat.Addr.Compare(y.cat.Addr); c != 0 {
			return c
		}
		return cmp.Compare(x.cat.ID, y.cat.ID)
	})
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
		st := a.pool.Status(h.key)
		d.Catalog = append(d.Catalog, status.CatalogEntry{
			ID: h.cat.ID.String(), Address: h.cat.Addr.String(), Checks: slices.Clone(h.cat.Checks), Interval: h.cat.Interval.String(),
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
