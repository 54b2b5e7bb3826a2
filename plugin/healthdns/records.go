package healthdns

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/webhook"

	"github.com/prometheus/client_golang/prometheus"
)

// Stores and webhook listeners outlive reloads like the probe pool: a new
// instance takes them over before the old one lets go (a store's lock file
// would refuse a second open anyway).
//
// A store that cannot be opened (a damaged or full data directory) does
// not stop the server: DNS serves the zone and the Corefile's names (and,
// in a cluster, the records peers send, kept in memory), the webhook
// answers 503 with the reason, status says why, and the store is tried
// again until it opens.
type storeRef struct {
	dir string

	mu    sync.Mutex // guards the fields below
	store *records.Store
	err   error // why it is not open
	subs  map[int]func(*records.Store)
	next  int
	stop  chan struct{}
}

type webhookRef struct {
	srv    *webhook.Server
	hook   *webhook.Webhook
	cfg    webhookConfig
	cancel func()
}

var (
	stores   registry[string, *storeRef]
	webhooks registry[string, *webhookRef]
)

// Retries of a store that could not be opened.
const (
	storeRetry    = 5 * time.Second
	storeRetryMax = time.Minute
)

// acquireStore returns the store of dir, open or being retried.
func acquireStore(dir string) *storeRef {
	r, _ := stores.acquire(dir, func() (*storeRef, error) {
		r := &storeRef{dir: dir, subs: map[int]func(*records.Store){}, stop: make(chan struct{})}
		st, err := records.Open(dir, records.Options{Logf: logf})
		if err != nil {
			r.err = err
			log.Errorf("data %s: the record store is not open: %v. DNS serves the zone and the Corefile's names (and records from peers), the webhook answers 503; trying again every %s to %s", dir, err, storeRetry, storeRetryMax)
			go r.retry()
		} else {
			r.store = st
		}
		return r, nil
	}, nil)
	return r
}

// retry opens the store until it opens or the last reference goes.
func (r *storeRef) retry() {
	wait := storeRetry
	last := r.err.Error()
	for {
		select {
		case <-r.stop:
			return
		case <-time.After(wait):
		}
		st, err := records.Open(r.dir, records.Options{Logf: logf})
		if err != nil {
			if err.Error() != last {
				last = err.Error()
				log.Errorf("data %s: the record store is still not open: %v", r.dir, err)
			}
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			wait = min(2*wait, storeRetryMax)
			continue
		}
		r.mu.Lock()
		select {
		case <-r.stop: // released meanwhile
			r.mu.Unlock()
			st.Close()
			return
		default:
		}
		r.store, r.err = st, nil
		subs := make([]func(*records.Store), 0, len(r.subs))
		for _, f := range r.subs {
			subs = append(subs, f)
		}
		r.mu.Unlock()
		log.Infof("data %s: the record store is open (%d owners)", r.dir, len(st.State().Owners()))
		for _, f := range subs {
			f(st)
		}
		return
	}
}

// get returns the store, or why it is not open.
func (r *storeRef) get() (*records.Store, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store, r.err
}

// onOpen calls f with the store once it is open: now if it is, else when
// it opens. cancel stops a call not made yet.
func (r *storeRef) onOpen(f func(*records.Store)) (cancel func()) {
	r.mu.Lock()
	if st := r.store; st != nil {
		r.mu.Unlock()
		f(st)
		return func() {}
	}
	id := r.next
	r.next++
	r.subs[id] = f
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

func releaseStore(dir string) {
	stores.release(dir, func(r *storeRef, last bool) {
		if !last {
			return
		}
		r.mu.Lock()
		close(r.stop)
		st := r.store
		r.mu.Unlock()
		if st != nil {
			st.Close()
		}
	})
}

func acquireWebhook(wc *webhookConfig, ref *storeRef, origins []string) (*webhook.Webhook, error) {
	r, err := webhooks.acquire(wc.addr, func() (*webhookRef, error) {
		filter, err := records.NewFilter(origins, nil)
		if err != nil {
			return nil, err
		}
		w, err := webhook.New(nil, webhook.Config{Owner: wc.owner, Filter: filter, Defaults: wc.defaults, CheckNetworks: wc.checkNetworks, Logf: logf})
		if err != nil {
			return nil, err
		}
		if _, err := ref.get(); err != nil {
			w.Unavailable(err)
		}
		cancel := ref.onOpen(w.Attach)
		srv, err := webhook.Listen(w, wc.addr, wc.healthAddr, prometheus.DefaultGatherer)
		if err != nil {
			cancel()
			return nil, err
		}
		log.Infof("webhook for owner %s on %s (ExternalDNS --webhook-provider-url=http://%s)", wc.owner, srv.Addr(), srv.Addr())
		return &webhookRef{srv: srv, hook: w, cfg: *wc, cancel: cancel}, nil
	}, func(r *webhookRef, opened bool) {
		if !opened && (r.cfg.owner != wc.owner || r.cfg.healthAddr != wc.healthAddr || fmt.Sprint(r.cfg.defaults) != fmt.Sprint(wc.defaults)) {
			log.Warningf("webhook %s: owner, health and defaults changes take effect on restart, not reload", wc.addr)
		}
	})
	if err != nil {
		return nil, err
	}
	return r.hook, nil
}

func releaseWebhook(addr string) {
	webhooks.release(addr, func(r *webhookRef, last bool) {
		if !last {
			return
		}
		r.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
	})
}

// logf routes the records and webhook packages' "[LEVEL] healthdns ..."
// lines to CoreDNS's logger at that level.
func logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	level, rest, ok := strings.Cut(line, " ")
	rest = strings.TrimPrefix(rest, "healthdns ")
	switch {
	case ok && level == "[ERR]":
		log.Error(rest)
	case ok && level == "[WARN]":
		log.Warning(rest)
	case ok && level == "[INFO]":
		log.Info(rest)
	default:
		log.Info(line)
	}
}

// recordState is the owners' records this server knows: its store (which
// holds what gossip brought too), else what gossip holds in memory (no
// data directory, or a store that is not open).
func (h *HealthDNS) recordState() records.State {
	if h.storeRef != nil {
		if st, _ := h.storeRef.get(); st != nil {
			return st.State()
		}
	}
	if h.member != nil {
		return h.member.node.Records()
	}
	return records.State{}
}

// syncTargets starts probing targets that records added and stops those
// they removed, and republishes the catalog. Called from rebuild, with
// the names of the last Merge; it costs nothing while their targets are
// the same (Merger.Probes).
func (h *HealthDNS) syncTargets(names []*nameConfig) {
	if !h.started {
		return
	}
	all, changed := h.merger.Probes()
	if !changed {
		return
	}
	probing := h.cfg.cluster == nil || h.cfg.cluster.probe
	want := make(map[string]probe.Target, len(all))
	for _, t := range all {
		want[t.Key()] = t
	}
	changed = false
	for k, t := range want {
		if h.staticKeys[k] || h.dynamic[k] != nil {
			continue
		}
		changed = true
		if probing {
			h.dynamic[k] = h.pool.Acquire([]probe.Target{t})
		} else {
			h.dynamic[k] = func() {}
		}
	}
	for k, release := range h.dynamic {
		if _, ok := want[k]; !ok {
			release()
			delete(h.dynamic, k)
			changed = true
		}
	}
	if changed && h.member != nil {
		h.member.setCatalog(h, all, probing)
	}
}
