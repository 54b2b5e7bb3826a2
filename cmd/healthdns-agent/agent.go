package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/listen"
	"github.com/healthdns/healthdns/plugin/healthdns/observer"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"

	"github.com/prometheus/client_golang/prometheus"
)

// agent probes the cluster's catalog and publishes its observations: as
// a gossip member (-bind/-join), or as an edge client of one server at a
// time (-connect) when no server can reach it.
type agent struct {
	opts    options
	log     *log.Logger
	node    *gossip.Node       // nil with -connect
	edge    *gossip.EdgeClient // nil without -connect
	link    link               // node or edge
	pool    *probe.Pool
	cat     *observer.Catalog
	reg     *prometheus.Registry
	status  net.Listener // nil without -status
	srv     *http.Server
	sidecar *sidecar // nil without -webhook
}

// link is how the agent reaches the cluster.
type link interface {
	observer.Publisher
	observer.Source
	Name() string
}

func newAgent(o options, logOut io.Writer) (*agent, error) {
	switch {
	case o.keyFile == "" && !o.insecure:
		return nil, fmt.Errorf("no -keyfile: without a key anyone who can reach the gossip port (%s) can change every owner's records and observations; give -keyfile FILE (the cluster's key), or -insecure to gossip in the clear on purpose", o.bind)
	case o.keyFile != "" && o.insecure:
		return nil, errors.New("-keyfile and -insecure: choose one")
	}
	if o.name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("no -name and no host name: %w", err)
		}
		o.name = h
	}
	if o.observer == "" {
		o.observer = o.name
	}
	a := &agent{
		opts: o,
		log:  log.New(logOut, "[healthdns-agent] ", log.LstdFlags),
		pool: probe.NewPool(),
		reg:  prometheus.NewRegistry(),
	}
	a.cat = observer.NewCatalog(a.pool, a.log.Printf)
	bindHost, bindPort, _ := splitHostPort(o.bind)
	role := gossip.RoleAgent
	if o.witness {
		role = gossip.RoleWitness
	}
	cfg := gossip.Config{
		Name:             o.name,
		Observer:         o.observer,
		Role:             role,
		BindAddr:         bindHost,
		BindPort:         bindPort,
		Join:             o.join,
		KeyFile:          o.keyFile,
		Label:            o.label,
		GossipInterval:   o.gossipInterval,
		PushPullInterval: o.pushPullInterval,
		ProbeInterval:    o.probeInterval,
		LogOutput:        &levelFilter{w: logOut, debug: o.debug},
	}
	if o.advertise != "" {
		cfg.AdvertiseAddr, cfg.AdvertisePort, _ = splitHostPort(o.advertise)
	}
	if o.insecure {
		a.log.Printf("[WARN] INSECURE: gossip on %s is neither encrypted nor authenticated (-insecure): anyone who can reach it can create and delete any owner's records and observations", o.bind)
	}
	m := newMetrics(a.reg)
	m.logf = a.log.Printf
	a.pool.OnResult = m.observeProbe
	a.pool.OnChange = func(t *probe.Target, from, to health.State, why string) {
		m.transitions.WithLabelValues(t.Addr.String(), to.String()).Inc()
		if why != "" {
			why = ": " + why
		}
		a.log.Printf("[INFO] target %s is %s, was %s%s", t.Addr, to, from, why)
	}
	if o.status != "" {
		ln, err := listen.Listen("agent-status", o.status, listen.Default)
		if err != nil {
			return nil, fmt.Errorf("status listener: %w", err)
		}
		a.status = ln
	}
	if len(o.connect) > 0 {
		owner := ""
		if o.sidecar.enabled() {
			owner = o.sidecar.owner
		}
		ec, err := gossip.NewEdgeClient(gossip.EdgeConfig{
			Name: o.name, Observer: o.observer, Servers: o.connect, KeyFile: o.keyFile, Label: o.label,
			Probes: o.probe, Owner: owner, LocalAddr: o.from, HeartbeatInterval: 2 * o.gossipInterval, LogOutput: &levelFilter{w: logOut, debug: o.debug},
		})
		if err != nil {
			if a.status != nil {
				a.status.Close()
			}
			return nil, err
		}
		a.edge, a.link = ec, ec
	} else {
		node, err := gossip.New(cfg)
		if err != nil {
			if a.status != nil {
				a.status.Close()
			}
			return nil, err
		}
		a.node, a.link = node, node
	}
	m.watch(a)
	if o.sidecar.enabled() {
		logf := func(f string, args ...any) { a.log.Printf(f, args...) }
		sc, err := startSidecar(o.sidecar, a.edge, prometheus.Gatherers{a.reg, prometheus.DefaultGatherer}, logf)
		if err != nil {
			a.closeLink(false)
			if a.status != nil {
				a.status.Close()
			}
			return nil, fmt.Errorf("webhook: %w", err)
		}
		a.sidecar = sc
	}
	return a, nil
}

// run joins the cluster and probes until ctx ends, then leaves.
func (a *agent) run(ctx context.Context) error {
	if a.status != nil {
		a.srv = listen.Server(a.handler(), listen.Default)
		go a.srv.Serve(a.status)
		a.log.Printf("[INFO] status on http://%s/status", a.status.Addr())
	}
	what := "agent"
	switch {
	case a.opts.witness && a.opts.probe:
		what = "witness (it votes and probes)"
	case a.opts.witness:
		what = "witness (it votes; it does not probe)"
	}
	if a.edge != nil {
		a.log.Printf("[INFO] %s %s (observer %q) connecting out to a server of %v (edge client)", what, a.edge.Name(), a.opts.observer, a.opts.connect)
	} else {
		a.log.Printf("[INFO] %s %s (observer %q) gossiping on %s", what, a.node.Name(), a.opts.observer, a.node.Addr())
	}
	nodeCh, unsubNode := a.link.Subscribe()
	defer unsubNode()
	poolCh, unsubPool := a.pool.Subscribe()
	defer unsubPool()

	joinCtx, stopJoin := context.WithCancel(ctx)
	defer stopJoin()
	refused := make(chan error, 1)
	if a.node != nil {
		go func() {
			if err := a.join(joinCtx); err != nil {
				refused <- err
			}
		}()
	}
	if a.sidecar != nil {
		a.log.Printf("[INFO] webhook for owner %s on http://%s", a.opts.sidecar.owner, a.sidecar.srv.Addr())
	}
	if a.sidecar != nil && a.node != nil {
		go func() {
			// Once the store is open (at once, unless it could not be).
			select {
			case <-joinCtx.Done():
				return
			case st := <-a.sidecar.opened:
				if err := a.node.SyncRecords(joinCtx, st, a.opts.sidecar.owner); err != nil && joinCtx.Err() == nil {
					a.log.Printf("[ERR] record replication: %v", err)
				}
			}
		}()
	}

	// With no catalog yet the agent is still an observer, of nothing; a
	// witness that does not probe is no observer at all.
	if a.opts.probe {
		a.link.PublishObservations(nil)
	}
	a.syncCatalog()
	settle := time.NewTimer(observer.Settle)
	settle.Stop()
	observed := time.NewTicker(observer.ObservedEvery)
	defer observed.Stop()
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case err := <-refused:
			// No leave: it would speak for the member that has the name.
			a.stop(false)
			return err
		case <-observed.C:
			a.publish()
		case <-nodeCh:
			settle.Reset(observer.Settle)
		case <-settle.C:
			a.syncCatalog()
		case <-poolCh:
			a.publish()
		}
	}
}

// join contacts the -join addresses until one answers, backing off; after
// that the gossip node itself rejoins whenever it finds itself alone. A
// live member with this agent's name refuses it: that is not transient.
func (a *agent) join(ctx context.Context) error {
	if len(a.opts.join) == 0 {
		a.log.Printf("[WARN] no -join: waiting for a member to join this agent")
		return nil
	}
	wait := 500 * time.Millisecond
	for {
		n, err := a.node.Join()
		if errors.Is(err, gossip.ErrNameTaken) {
			return err
		}
		if err == nil {
			a.log.Printf("[INFO] joined the cluster via %d of %v", n, a.opts.join)
			return nil
		}
		a.log.Printf("[WARN] %v; retrying in %s", err, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// syncCatalog probes every target of the catalog, stops probing those that
// left it, and publishes.
func (a *agent) syncCatalog() {
	if !a.opts.probe {
		return
	}
	a.cat.Sync(a.link.Catalog())
	a.publish()
}

// publish sends the current state of every target probed; the link sends
// only what changed.
func (a *agent) publish() {
	if !a.opts.probe {
		return
	}
	a.cat.Publish(a.link)
}

func (a *agent) shutdown() error { return a.stop(true) }

// stop ends the agent, leaving the cluster first if leave.
func (a *agent) stop(leave bool) error {
	if a.sidecar != nil {
		a.sidecar.close()
	}
	errs := []error{a.closeLink(leave)}
	a.cat.Close()
	if a.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.srv.Shutdown(ctx)
	}
	a.log.Printf("[INFO] stopped")
	return errors.Join(errs...)
}

// closeLink leaves the cluster if leave, and closes the gossip node or
// the edge connection.
func (a *agent) closeLink(leave bool) error {
	if a.edge != nil {
		if leave {
			a.log.Printf("[INFO] leaving the cluster")
		}
		a.edge.Close(leave)
		return nil
	}
	var errs []error
	if leave {
		a.log.Printf("[INFO] leaving the cluster")
		if err := a.node.Leave(a.opts.leaveTimeout); err != nil {
			errs = append(errs, fmt.Errorf("leave: %w", err))
		}
	}
	if err := a.node.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}
	return errors.Join(errs...)
}

// levelFilter drops memberlist's [DEBUG] lines unless asked for.
type levelFilter struct {
	w     io.Writer
	debug bool
}

func (f *levelFilter) Write(b []byte) (int, error) {
	if !f.debug && bytes.Contains(b, []byte("[DEBUG]")) {
		return len(b), nil
	}
	return f.w.Write(b)
}
