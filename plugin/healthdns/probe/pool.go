package probe

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// Target is an address with the checks that judge it and their timing.
type Target struct {
	Addr     netip.Addr
	Checks   []Check
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
}

// Key identifies a target: the same address with the same checks and timing
// is probed once however many names use it.
func (t Target) Key() string {
	// Appended into one buffer: a server computes it for each of up to
	// 100,000 targets several times at start. The format is the wire's
	// (a target's ID is its hash): it never changes.
	b := make([]byte, 0, 96)
	b = t.Addr.AppendTo(b)
	for _, c := range t.Checks {
		b = append(b, '|')
		b = append(b, c.String()...)
	}
	b = append(b, '|')
	b = append(b, t.Interval.String()...)
	b = append(b, '/')
	b = append(b, t.Timeout.String()...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(t.Rise), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(t.Fall), 10)
	return string(b)
}

// Status is a target's state as this observer sees it.
type Status struct {
	State   health.State
	Since   time.Time
	Checked time.Time // last completed probe round
	Err     string    // why the last failing check failed
}

// Result is one check run, for metrics.
type Result struct {
	Target   *Target
	Check    *Check
	Err      error
	Duration time.Duration
	// Local, when not "", is why Err is this process's trouble and not
	// the target's (see LocalReason): the check counted as unknown.
	Local string
}

// Pool runs the probes of every acquired target. Targets outlive a
// CoreDNS reload: a new instance acquires before the old one releases, so
// state carries over; a target nobody holds is forgotten after a grace
// period.
type Pool struct {
	// OnResult and OnChange, if set before the first Acquire, are called
	// from probe goroutines; they must not block.
	OnResult func(Result)
	OnChange func(t *Target, from, to health.State, why string)
	Now      func() time.Time
	Grace    time.Duration

	mu      sync.Mutex
	entries map[string]*entry
	subs    map[chan struct{}]bool
}

type entry struct {
	target   Target
	refs     int
	cancel   context.CancelFunc
	trackers []health.Tracker
	status   Status
	first    chan struct{} // closed after the first round
	firstSet bool
	forget   *time.Timer
}

// NewPool returns an empty pool.
func NewPool() *Pool {
	return &Pool{Now: time.Now, Grace: time.Minute, entries: map[string]*entry{}, subs: map[chan struct{}]bool{}}
}

// Acquire starts probing ts (those not running yet) and returns the
// function that gives them back.
func (p *Pool) Acquire(ts []Target) (release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(ts))
	for _, t := range ts {
		k := t.Key()
		keys = append(keys, k)
		e := p.entries[k]
		if e == nil {
			e = &entry{target: t, trackers: make([]health.Tracker, len(t.Checks)), first: make(chan struct{})}
			p.entries[k] = e
		}
		if e.forget != nil {
			e.forget.Stop()
			e.forget = nil
		}
		e.refs++
		if e.cancel == nil {
			ctx, cancel := context.WithCancel(context.Background())
			e.cancel = cancel
			go p.run(ctx, e)
		}
	}
	var once sync.Once
	return func() { once.Do(func() { p.release(keys) }) }
}

func (p *Pool) release(keys []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		e := p.entries[k]
		if e == nil {
			continue
		}
		e.refs--
		if e.refs > 0 {
			continue
		}
		e.cancel()
		e.cancel = nil
		e.forget = time.AfterFunc(p.Grace, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if e.refs == 0 && p.entries[k] == e {
				delete(p.entries, k)
			}
		})
	}
}

// WaitFirstRound blocks until every target in ts has finished one probe
// round, or ctx ends.
func (p *Pool) WaitFirstRound(ctx context.Context, ts []Target) error {
	for _, t := range ts {
		p.mu.Lock()
		e := p.entries[t.Key()]
		p.mu.Unlock()
		if e == nil {
			continue
		}
		select {
		case <-e.first:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Status returns what this observer knows of the target with key k.
func (p *Pool) Status(k string) Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.entries[k]; e != nil {
		return e.status
	}
	return Status{}
}

// Subscribe returns a channel that receives (coalesced) after every state
// change, and the function that ends the subscription.
func (p *Pool) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	p.subs[ch] = true
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.subs, ch)
		p.mu.Unlock()
	}
}

func (p *Pool) run(ctx context.Context, e *entry) {
	t := &e.target
	checks := make([]Check, len(t.Checks))
	copy(checks, t.Checks)
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		p.round(ctx, e, checks)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// round runs every check of the target at once, each bounded by the
// timeout, then updates the rise/fall state.
func (p *Pool) round(ctx context.Context, e *entry, checks []Check) {
	t := &e.target
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i := range checks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, t.Timeout)
			defer cancel()
			start := time.Now()
			errs[i] = checks[i].Run(cctx)
			if p.OnResult != nil {
				p.OnResult(Result{Target: t, Check: &checks[i], Err: errs[i], Duration: time.Since(start), Local: LocalReason(errs[i])})
			}
		}(i)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // stopped mid-round: a cancelled probe says nothing of the target
	}
	now := p.Now()
	p.mu.Lock()
	states := make([]health.State, len(checks))
	e.status.Err = ""
	if !e.status.Checked.IsZero() && now.Sub(e.status.Checked) > 2*t.Interval+t.Timeout {
		// The process was paused or starved: the old run of results is
		// history, not evidence. Let this result decide at once, as the
		// first one does, rather than vouch for a stale state for fall
		// more rounds.
		for i := range e.trackers {
			e.trackers[i].State = health.Unknown
		}
	}
	for i := range checks {
		if r := LocalReason(errs[i]); r != "" {
			// Not evidence about the target: unknown this round, and
			// the tracker keeps its run so rise and fall still hold.
			states[i] = health.Unknown
			if e.status.Err == "" {
				e.status.Err = checks[i].String() + ": local error (" + r + ", not the target's): " + errs[i].Error()
			}
			continue
		}
		e.trackers[i].Observe(errs[i] == nil, t.Rise, t.Fall, now)
		states[i] = e.trackers[i].State
		if errs[i] != nil && e.status.Err == "" {
			e.status.Err = checks[i].String() + ": " + errs[i].Error()
		}
	}
	from := e.status.State
	to := health.Combine(states...)
	e.status.Checked = now
	changed := from != to
	if changed {
		e.status.State, e.status.Since = to, now
	}
	if !e.firstSet {
		e.firstSet = true
		close(e.first)
	}
	why := e.status.Err
	var subs []chan struct{}
	if changed {
		for ch := range p.subs {
			subs = append(subs, ch)
		}
	}
	p.mu.Unlock()
	if !changed {
		return
	}
	if p.OnChange != nil {
		p.OnChange(t, from, to, why)
	}
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
