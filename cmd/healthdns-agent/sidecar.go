package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	for _, n := range []string{o.tier, o.weight} {
		if n != "" {
			if _, err := strconv.Atoi(n); err != nil {
				return fmt.Errorf("tier and weight are whole numbers: %q", n)
			}
		}
	}
	return nil
}

// sidecar is a running webhook with its store.
type sidecar struct {
	store *records.Store
	srv   *webhook.Server
}

func startSidecar(o sidecarOptions, gatherer prometheus.Gatherer, logf func(string, ...any)) (*sidecar, error) {
	defaults, err := o.defaults()
	if err != nil {
		return nil, err
	}
	filter, err := records.NewFilter(strings.Split(o.domains, ","), nil)
	if err != nil {
		return nil, fmt.Errorf("-domain-filter: %w", err)
	}
	st, err := records.Open(o.data, records.Options{Logf: logf})
	if err != nil {
		return nil, err
	}
	w, err := webhook.New(st, webhook.Config{Owner: o.owner, Filter: filter, Defaults: defaults, Logf: logf})
	if err != nil {
		st.Close()
		return nil, err
	}
	srv, err := webhook.Listen(w, o.addr, o.health, gatherer)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &sidecar{store: st, srv: srv}, nil
}

func (s *sidecar) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	s.store.Close()
}
