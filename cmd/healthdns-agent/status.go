package main

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (a *agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", a.serveStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("OK")) })
	return mux
}

// status is the read-only JSON of /status.
type status struct {
	Name     string         `json:"name"`
	Observer string         `json:"observer"`
	Addr     string         `json:"addr"`
	Members  []memberJSON   `json:"members"`
	Targets  []targetJSON   `json:"targets"`
	Views    []viewJSON     `json:"views"`
	Gossip   map[string]any `json:"gossip"`
}

type memberJSON struct {
	Name     string    `json:"name"`
	Addr     string    `json:"addr"`
	Role     string    `json:"role"`
	Observer string    `json:"observer"`
	State    string    `json:"state"`
	Since    time.Time `json:"since,omitzero"`
}

type targetJSON struct {
	ID       string    `json:"id"`
	Addr     string    `json:"addr"`
	Checks   []string  `json:"checks"`
	Interval string    `json:"interval"`
	State    string    `json:"state"`
	Since    time.Time `json:"since,omitzero"`
	Checked  time.Time `json:"checked,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// viewJSON summarises an observer's view; per-target states are in
// targets for this agent and in the servers' status for all.
type viewJSON struct {
	Node      string    `json:"node"`
	Observer  string    `json:"observer"`
	Role      string    `json:"role"`
	State     string    `json:"state"`
	LastHeard time.Time `json:"last_heard,omitzero"`
	Synced    bool      `json:"synced"`
	Up        int       `json:"up"`
	Down      int       `json:"down"`
}

func (a *agent) serveStatus(w http.ResponseWriter, _ *http.Request) {
	s := status{Name: a.node.Name(), Observer: a.opts.observer, Addr: a.node.Addr()}
	for _, m := range a.node.Members() {
		s.Members = append(s.Members, memberJSON{Name: m.Name, Addr: m.Addr, Role: m.Role.String(), Observer: m.Observer, State: m.State.String(), Since: m.Since})
	}
	a.mu.Lock()
	for id, h := range a.held {
		st := a.pool.Status(h.key)
		s.Targets = append(s.Targets, targetJSON{
			ID: id.String(), Addr: h.cat.Addr.String(), Checks: h.cat.Checks, Interval: h.cat.Interval.String(),
			State: st.State.String(), Since: st.Since, Checked: st.Checked, Error: st.Err,
		})
	}
	a.mu.Unlock()
	sort.Slice(s.Targets, func(i, j int) bool { return s.Targets[i].Addr < s.Targets[j].Addr })
	for _, v := range a.node.Views() {
		vj := viewJSON{Node: v.Node, Observer: v.Observer, Role: v.Role.String(), State: v.State.String(), LastHeard: v.LastHeard, Synced: v.Synced}
		for _, st := range v.States {
			switch st {
			case health.Up:
				vj.Up++
			case health.Down:
				vj.Down++
			}
		}
		s.Views = append(s.Views, vj)
	}
	st := a.node.Stats()
	s.Gossip = map[string]any{
		"received": st.Received, "fresh": st.Fresh, "garbled": st.Garbled, "oversized": st.Oversized, "dropped": st.Dropped,
		"states_merged": st.StatesMerged, "states_garbled": st.StatesGarbled, "queued": st.Queued, "members_alive": st.Members,
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s)
}
