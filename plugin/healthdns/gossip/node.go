package gossip

import (
	"errors"
	"fmt"
	"log"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"

	"github.com/hashicorp/memberlist"
)

// Node is this process's member of the gossip cluster.
type Node struct {
	cfg    Config
	ml     *memberlist.Memberlist
	queue  *memberlist.TransmitLimitedQueue
	perMsg int // observation pairs per delta
	now    func() time.Time
	logger *log.Logger

	mu sync.Mutex // guards st
	st *state

	memMu   sync.Mutex // guards members; never held while calling memberlist
	members map[string]*Member
	alive   atomic.Int64

	inbox chan []byte

	subsMu sync.Mutex
	subs   map[chan struct{}]struct{}

	recMu     sync.Mutex // guards rec; never held with mu
	rec       *recordState
	recSubsMu sync.Mutex
	recSubs   map[chan struct{}]struct{}

	stats struct {
		received, dropped, garbled, oversized, stale atomic.Uint64
		merged, stateGarbled, stateTooLarge          atomic.Uint64
		sentMsgs, sentBytes, recvBytes               atomic.Uint64
		stateSentBytes, stateRecvBytes               atomic.Uint64
	}

	stop     chan struct{}
	wg       sync.WaitGroup
	shutdown sync.Once
	closed   atomic.Bool
	left     atomic.Bool
}

// New starts a node: it binds the gossip port and starts memberlist, but
// joins no one until Join.
func New(cfg Config) (*Node, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	var keyring *memberlist.Keyring
	if cfg.KeyFile != "" {
		k, err := LoadKeyring(cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		keyring = k
	}
	n := &Node{
		cfg:     cfg,
		now:     time.Now,
		logger:  log.New(cfg.LogOutput, "", log.LstdFlags),
		st:      newState(cfg.Name, cfg.Observer, cfg.Role, uint64(time.Now().UnixMicro()), cfg.Retention),
		members: map[string]*Member{},
		inbox:   make(chan []byte, inboxDepth),
		subs:    map[chan struct{}]struct{}{},
		rec:     newRecordState(),
		recSubs: map[chan struct{}]struct{}{},
		stop:    make(chan struct{}),
	}
	header := 2 + 2 + len(cfg.Name) + 10 + 10 + 3
	n.perMsg = (maxBroadcast - header) / minPair
	mc := cfg.memberlistConfig(keyring)
	mc.Delegate = &delegate{n: n}
	mc.Events = &events{n: n}
	n.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return max(1, int(n.alive.Load())) },
		RetransmitMult: mc.RetransmitMult,
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	n.ml = ml
	n.wg.Add(3)
	go n.receive()
	go n.tick()
	go n.rejoin()
	return n, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Addr is the host:port other nodes reach this one at; with BindPort 0 it
// tells the port picked.
func (n *Node) Addr() string { return n.ml.LocalNode().Address() }

// Join contacts addrs (Config.Join when none are given) and returns how
// many it reached. It returns after a full state exchange (push/pull) with
// each, so a cold node has the cluster's state when Join succeeds.
func (n *Node) Join(addrs ...string) (int, error) {
	if len(addrs) == 0 {
		addrs = n.cfg.Join
	}
	if len(addrs) == 0 {
		return 0, nil
	}
	k, err := n.ml.Join(addrs)
	if err != nil {
		return k, fmt.Errorf("gossip: join %v: %w", addrs, oneLine{err})
	}
	return k, nil
}

// oneLine shows memberlist's multi-line multierror on one line.
type oneLine struct{ error }

func (e oneLine) Error() string {
	var parts []string
	for _, l := range strings.Split(e.error.Error(), "\n") {
		if l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "* ")); l != "" && !strings.HasSuffix(l, "error occurred:") && !strings.HasSuffix(l, "errors occurred:") {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

func (e oneLine) Unwrap() error { return e.error }

// PublishCatalog replaces the catalog this node publishes: the targets it
// serves, for agents to probe. Targets are built with NewCatalogTarget.
func (n *Node) PublishCatalog(ts []CatalogTarget) error {
	for _, t := range ts {
		if err := t.validate(); err != nil {
			return fmt.Errorf("gossip: %w", err)
		}
	}
	n.mu.Lock()
	pages, err := n.st.publishCatalog(ts, n.cfg.Name)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	n.queuePages(pages)
	n.notify()
	return nil
}

// PublishObservations sets this node's observations to states (targets
// absent or Unknown have no observation) and sends what changed as deltas
// under new versions. With nothing changed it sends nothing; heartbeats
// keep the node fresh.
func (n *Node) PublishObservations(states map[TargetID]health.State) {
	n.mu.Lock()
	msgs := n.st.publishObservations(states, n.perMsg)
	n.mu.Unlock()
	n.queueObservations(msgs)
	if len(msgs) > 0 {
		n.notify()
	}
}

// Catalog returns the union of the catalogs of the cluster's servers (this
// node's included), each target once, sorted by ID. The catalog of a node
// that left is dropped at once; that of a dead one after the retention.
func (n *Node) Catalog() []CatalogTarget {
	states := n.memberStates()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.catalogUnion(func(node string) bool { return states[node] == MemberLeft })
}

// ObserverView is one observer's observations as this node knows them.
type ObserverView struct {
	Node     string // the observer's node name, the key of its view
	Observer string // its location label
	Role     Role
	State    MemberState
	// Alive is true while the observer is a live member (alive or
	// suspect). Observations of a node that left or died are unknown.
	Alive bool
	// LastHeard is the local time news of the observer last arrived (an
	// update or a heartbeat, directly or relayed); observations older
	// than the consumer's staleness window are unknown.
	LastHeard time.Time
	// Synced is false while this node knows it missed some of the
	// observer's changes (a lost packet); push/pull will repair it.
	Synced bool
	States map[TargetID]health.State
}

// Observation is what v says of target id, for health.Decide: Unknown when
// the observer is not alive or has no opinion, dated LastHeard. Observers
// are counted by node name, which is unique, not by location label, which
// two agents at one place may share.
func (v ObserverView) Observation(id TargetID) health.Observation {
	o := health.Observation{Observer: v.Node, At: v.LastHeard}
	if v.Alive {
		o.State = v.States[id]
	}
	return o
}

// Views returns the view of every observer, this node's own included,
// sorted by node name.
func (n *Node) Views() []ObserverView {
	states := n.memberStates()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []ObserverView
	add := func(p *peer, st MemberState) {
		if p.view == nil {
			return
		}
		out = append(out, ObserverView{
			Node: p.node, Observer: p.label, Role: p.role, State: st,
			Alive: st == MemberAlive || st == MemberSuspect, LastHeard: p.heard,
			Synced: p.view.synced(), States: p.view.states(),
		})
	}
	add(n.st.self, states[n.cfg.Name])
	for _, p := range n.st.peers {
		add(p, states[p.node])
	}
	slices.SortFunc(out, func(a, b ObserverView) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Subscribe returns a channel that receives (coalesced, never blocking the
// node) after the catalog, an observation or membership changed, and the
// function that ends the subscription. Staleness is a matter of time, not
// of news: consumers also re-evaluate on a timer.
func (n *Node) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.subsMu.Lock()
	n.subs[ch] = struct{}{}
	n.subsMu.Unlock()
	return ch, func() {
		n.subsMu.Lock()
		delete(n.subs, ch)
		n.subsMu.Unlock()
	}
}

func (n *Node) notify() {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Stats counts what the node received and dropped.
type Stats struct {
	Received      uint64 // gossip messages decoded
	Fresh         uint64 // of those, news (the rest were duplicates or old)
	Dropped       uint64 // not handled: the inbound queue was full
	Garbled       uint64 // could not be decoded
	Oversized     uint64 // over the size limit, not decoded
	StatesMerged  uint64 // push/pull states merged
	StatesGarbled uint64 // push/pull states that could not be decoded
	StateTooLarge uint64 // own push/pull states over the limit, not sent
	IDCollisions  uint64 // target IDs published with two definitions
	SentMsgs      uint64 // gossip messages handed to memberlist to send
	SentBytes     uint64 // their bytes
	RecvBytes     uint64 // bytes of gossip messages received
	StateSent     uint64 // bytes of push/pull state sent
	StateRecv     uint64 // bytes of push/pull state received
	Queued        int    // broadcasts waiting to go out
	Members       int    // live members, this node included
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{
		Received:      n.stats.received.Load(),
		Fresh:         n.stats.received.Load() - n.stats.stale.Load(),
		Dropped:       n.stats.dropped.Load(),
		Garbled:       n.stats.garbled.Load(),
		Oversized:     n.stats.oversized.Load(),
		StatesMerged:  n.stats.merged.Load(),
		StatesGarbled: n.stats.stateGarbled.Load(),
		StateTooLarge: n.stats.stateTooLarge.Load(),
		SentMsgs:      n.stats.sentMsgs.Load(),
		SentBytes:     n.stats.sentBytes.Load(),
		RecvBytes:     n.stats.recvBytes.Load(),
		StateSent:     n.stats.stateSentBytes.Load(),
		StateRecv:     n.stats.stateRecvBytes.Load(),
		Queued:        n.queue.NumQueued(),
		Members:       int(n.alive.Load()),
	}
	n.mu.Lock()
	s.IDCollisions = uint64(len(n.st.collided))
	n.mu.Unlock()
	return s
}

// Leave tells the cluster this node is leaving and waits up to timeout for
// that to go out. Its observations then count as unknown everywhere, and
// its catalog leaves the union. Call Shutdown after.
//
// memberlist reports a node that left and one that died alike, so the node
// first gossips its intent (as serf does), for up to half the timeout.
func (n *Node) Leave(timeout time.Duration) error {
	if n.closed.Load() {
		return errors.New("gossip: leave after shutdown")
	}
	deadline := time.Now().Add(timeout)
	if !n.left.Swap(true) {
		n.mu.Lock()
		n.st.self.leaving = true
		hb := n.st.heartbeat(n.now())
		n.mu.Unlock()
		b := &broadcast{name: "h/" + hb.Node, msg: hb.encode(), done: make(chan struct{})}
		n.queue.QueueBroadcast(b)
		if n.alive.Load() > 1 {
			select {
			case <-b.done:
			case <-time.After(timeout / 2):
			}
		}
	}
	return n.ml.Leave(max(time.Until(deadline), 0))
}

// Shutdown stops the node without a word to the cluster (call Leave
// first for a clean exit). It is safe to call more than once.
func (n *Node) Shutdown() error {
	var err error
	n.shutdown.Do(func() {
		n.closed.Store(true)
		close(n.stop)
		err = n.ml.Shutdown()
		n.wg.Wait()
	})
	return err
}

// Loops.

// receive handles gossip messages off memberlist's receive path.
func (n *Node) receive() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case b := <-n.inbox:
			n.handle(b)
		}
	}
}

func (n *Node) handle(b []byte) {
	m, err := decodeMessage(b)
	if err != nil {
		n.stats.garbled.Add(1)
		return
	}
	n.stats.received.Add(1)
	if p, ok := m.(*recordPage); ok {
		n.handleRecordPage(p, b)
		return
	}
	now := n.now()
	var o outcome
	var name string
	n.mu.Lock()
	switch m := m.(type) {
	case *observations:
		o = n.st.applyObservations(m, now)
		name = obsName(m.Node, m.Epoch, m.Seq)
	case *heartbeat:
		o = n.st.applyHeartbeat(m, now)
		name = "h/" + m.Node
	case *catalogPage:
		o = n.st.applyPage(m, now)
		name = "c/" + m.Node + "/" + strconv.Itoa(m.Page)
	}
	n.mu.Unlock()
	if o.self != 0 {
		n.refute(o.self)
	}
	if !o.fresh {
		n.stats.stale.Add(1)
		return
	}
	// Pass news on, as serf does: memberlist only sends what is queued
	// here, so relaying is what makes the spread epidemic.
	n.queue.QueueBroadcast(&broadcast{name: name, msg: b})
	if o.changed {
		n.notify()
	}
}

func (n *Node) refute(seen uint64) {
	n.mu.Lock()
	obs, pages := n.st.refute(seen, uint64(n.now().UnixMicro()), n.perMsg)
	hb := n.st.heartbeat(n.now())
	n.mu.Unlock()
	n.logger.Printf("[WARN] healthdns gossip: heard of node %s from a later incarnation; republishing under a new one (clock went back, or a second node uses this name)", n.cfg.Name)
	n.queueObservations(obs)
	n.queuePages(pages)
	n.queue.QueueBroadcast(&broadcast{name: "h/" + hb.Node, msg: hb.encode()})
}

// tick sends heartbeats and forgets nodes gone past the retention.
func (n *Node) tick() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		n.mu.Lock()
		now := n.now()
		var hb *heartbeat
		if !n.left.Load() { // after Leave, the leaving heartbeat must not be replaced
			hb = n.st.heartbeat(now)
		}
		forgot := n.st.gc(now)
		n.mu.Unlock()
		if hb != nil {
			n.queue.QueueBroadcast(&broadcast{name: "h/" + hb.Node, msg: hb.encode()})
		}
		n.queue.Prune(maxQueued)
		if forgot {
			n.notify()
		}
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

// rejoin retries the join addresses while the node is alone, so a cluster
// heals after every peer restarted or the node started first.
func (n *Node) rejoin() {
	defer n.wg.Done()
	if len(n.cfg.Join) == 0 {
		return
	}
	t := time.NewTicker(n.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if n.alive.Load() <= 1 && !n.left.Load() {
			if _, err := n.ml.Join(n.cfg.Join); err == nil {
				n.logger.Printf("[INFO] healthdns gossip: %s rejoined via %v", n.cfg.Name, n.cfg.Join)
			}
		}
	}
}

func obsName(node string, epoch, seq uint64) string {
	return "o/" + node + "/" + strconv.FormatUint(epoch, 10) + "/" + strconv.FormatUint(seq, 10)
}

func (n *Node) queueObservations(msgs []*observations) {
	for _, m := range msgs {
		n.queue.QueueBroadcast(&broadcast{name: obsName(m.Node, m.Epoch, m.Seq), msg: m.encode()})
	}
}

func (n *Node) queuePages(pages []*catalogPage) {
	for _, p := range pages {
		n.queue.QueueBroadcast(&broadcast{name: "c/" + p.Node + "/" + strconv.Itoa(p.Page), msg: p.encode()})
	}
}
