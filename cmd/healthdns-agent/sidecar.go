package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/webhook"

	"github.com/prometheus/client_golang/prometheus"
)

// sidecarOptions run the ExternalDNS webhook provider in the agent, next
// to ExternalDNS in a cluster: the same code as the server's webhook.
type sidecarOptions struct {
	addr, health string
	owner        string
	data         string
	domains      string
	check        string
	tier, weight string
	policy       string
	edge         bool // with -connect
	region       string
	networks     string // -check-networks
}

func (o sidecarOptions) enabled() bool { return o.addr != "" }

// defaults are the owner's webhook/* properties from the flags.
func (o sidecarOptions) defaults() ([]records.Property, error) {
	var out []records.Property
	for _, d := range []struct{ name, value, flag string }{
		{records.PropCheck, o.check, "-default-check"},
		{records.PropTier, o.tier, "-default-tier"},
		{records.PropWeight, o.weight, "-default-weight"},
		{records.PropPolicy, o.policy, "-default-policy"},
		{records.PropRegion, o.region, "-default-region"},
	} {
		if d.value == "" {
			continue
		}
		v, err := records.NormalizeProperty(d.name, d.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.flag, err)
		}
		out = append(out, records.Property{Name: d.name, Value: v})
	}
	return out, nil
}

func (o sidecarOptions) validate() error {
	if !o.enabled() {
		return nil
	}
	var missing []string
	for _, f := range []struct{ v, name string }{{o.owner, "-owner"}, {o.data, "-data"}, {o.domains, "-domain-filter"}, {o.check, "-default-check"}} {
		if f.name == "-data" && o.edge {
			continue // the servers store the records; -data is optional
		}
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("-webhook needs %s", strings.Join(missing, ", "))
	}
	if err := records.CheckOwner(o.owner); err != nil {
		return fmt.Errorf("-owner: %w", err)
	}
	if _, err := o.defaults(); err != nil {
		return err
	}
	if _, err := o.checkNetworks(); err != nil {
		return fmt.Errorf("-%w", err)
	}
	for _, n := range []string{o.tier, o.weight} {
		if n != "" {
			if _, err := strconv.Atoi(n); err != nil {
				return fmt.Errorf("tier and weight are whole numbers: %q", n)
			}
		}
	}
	return nil
}

// sidecar is a running webhook with its store. A store that cannot be
// opened (a damaged or full data directory) does not stop the agent: the
// webhook answers 503 with the reason while the store is tried again.
type sidecar struct {
	hook   *webhook.Webhook
	edge   *gossip.EdgeClient // nil without -connect
	srv    *webhook.Server
	opened chan *records.Store // receives the store once, when it opens
	stop   chan struct{}
	done   chan struct{}

	mu    sync.Mutex
	store *records.Store
}

// Retries of a store that could not be opened.
const (
	storeRetry    = 5 * time.Second
	storeRetryMax = time.Minute
)

// checkNetworks are -check-networks, comma-separated.
func (o sidecarOptions) checkNetworks() ([]netip.Prefix, error) {
	var args []string
	for _, a := range strings.Split(o.networks, ",") {
		if a = strings.TrimSpace(a); a != "" {
			args = append(args, a)
		}
	}
	return webhook.ParseCheckNetworks(args)
}

// startSidecar starts the webhook. With edge (-connect), a write is
// acknowledged only once a server stored it durably, and the store (in
// memory without -data) takes writes only once a server has said what it
// holds of the owner's records, and sent what the store lacked.
func startSidecar(o sidecarOptions, edge *gossip.EdgeClient, gatherer prometheus.Gatherer, logf func(string, ...any)) (*sidecar, error) {
	defaults, err := o.defaults()
	if err != nil {
		return nil, err
	}
	filter, err := records.NewFilter(strings.Split(o.domains, ","), nil)
	if err != nil {
		return nil, fmt.Errorf("-domain-filter: %w", err)
	}
	nets, err := o.checkNetworks()
	if err != nil {
		return nil, err
	}
	wc := webhook.Config{Owner: o.owner, Filter: filter, Defaults: defaults, CheckNetworks: nets, Logf: logf}
	if edge != nil {
		wc.Stored = edge.Stored
	}
	w, err := webhook.New(nil, wc)
	if err != nil {
		return nil, err
	}
	s := &sidecar{hook: w, edge: edge, opened: make(chan *records.Store, 1), stop: make(chan struct{}), done: make(chan struct{})}
	var st *records.Store
	if o.data == "" {
		st = records.Memory(records.Options{Logf: logf})
	} else {
		st, err = records.Open(o.data, records.Options{Logf: logf})
	}
	if err != nil {
		w.Unavailable(err)
		logf("[ERR] -data %s: the record store is not open: %v; the webhook answers 503; trying again every %s to %s", o.data, err, storeRetry, storeRetryMax)
	} else {
		s.attach(w, st)
	}
	srv, err := webhook.Listen(w, o.addr, o.health, gatherer)
	if err != nil {
		if st != nil {
			st.Close()
		}
		return nil, err
	}
	s.srv = srv
	if st == nil {
		go s.retry(o.data, err, logf)
	} else {
		close(s.done)
	}
	return s, nil
}

func (s *sidecar) attach(w *webhook.Webhook, st *records.Store) {
	s.mu.Lock()
	s.store = st
	s.mu.Unlock()
	s.opened <- st
	if s.edge == nil {
		w.Attach(st)
		return
	}
	w.Unavailable(errors.New("not connected to a server yet: no server has said what it holds of this owner's records"))
	s.edge.SyncRecords(st)
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if s.edge.WaitSynced(ctx) == nil {
			w.Attach(st)
		}
	}()
}

// retry opens the store until it opens or the sidecar closes.
func (s *sidecar) retry(dir string, err error, logf func(string, ...any)) {
	defer close(s.done)
	wait, last := storeRetry, err.Error()
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(wait):
		}
		st, err := records.Open(dir, records.Options{Logf: logf})
		if err != nil {
			if err.Error() != last {
				last = err.Error()
				logf("[ERR] -data %s: the record store is still not open: %v", dir, err)
			}
			s.hook.Unavailable(err)
			wait = min(2*wait, storeRetryMax)
			continue
		}
		logf("[INFO] -data %s: the record store is open", dir)
		s.attach(s.hook, st)
		return
	}
}

func (s *sidecar) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store != nil {
		s.store.Close()
	}
}
