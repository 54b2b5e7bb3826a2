package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// EdgeConfig configures an edge client (edge.go).
type EdgeConfig struct {
	Name     string // unique in the cluster, like a member's
	Observer string // location label; default Name
	// Servers are the servers' client ports (host:port); the client
	// keeps one connection, to one of them at a time.
	Servers []string
	KeyFile string // the cluster's gossip key file
	Label   string // the cluster's gossip label
	// Probes: the client is an observer and wants the catalog.
	Probes bool
	// Owner is the owner whose records it writes (a webhook sidecar); ""
	// for none.
	Owner string
	// HeartbeatInterval is how often it says it is alive (default
	// 400 ms, the members' default).
	HeartbeatInterval time.Duration
	DialTimeout       time.Duration // default 2 s
	// LocalAddr is the address to connect from (an IP); "" lets the
	// system choose.
	LocalAddr string
	LogOutput io.Writer // default stderr
}

// EdgeClient is an agent's or sidecar's connection to the cluster when
// no server can reach it: it publishes its observations and its owner's
// records through one server at a time, and reconnects to another when
// that one goes.
type EdgeClient struct {
	cfg    EdgeConfig
	local  net.Addr // nil: the system's choice
	key    []byte
	logger *log.Logger
	perMsg int

	mu     sync.Mutex // guards the fields below
	st     *state     // this client's own data only
	cat    []CatalogTarget
	conn   *edgeLink // nil while disconnected
	server string
	rec    edgeRecords
	asm    *recordState // collects the parts of records sent whole

	subsMu sync.Mutex
	subs   map[chan struct{}]struct{}

	connects atomic.Uint64
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// edgeRecords is the client's side of its owner's records. Guarded by
// EdgeClient.mu.
type edgeRecords struct {
	store *records.Store
	// server is the owner's head on the server's disk, as it last said;
	// known once it said so on this connection. inflight counts the
	// record messages sent that it has not answered: one run of changes
	// at a time is in flight.
	server   records.Head
	known    bool
	inflight int
	synced   chan struct{} // closed once a server first said its head
	changed  chan struct{} // closed and replaced whenever server moves
}

// edgeLink is one connection.
type edgeLink struct {
	sc   *secureConn
	out  chan []byte
	done chan struct{}
	once sync.Once
}

func (l *edgeLink) close() { l.once.Do(func() { close(l.done); l.sc.Close() }) }

const (
	// edgeClientQueue bounds what waits to go to the server; a server
	// that does not take it is given up for another.
	edgeClientQueue = 1024
	// edgeBackoffMax bounds the wait between connection attempts once
	// every server failed.
	edgeBackoffMax = 5 * time.Second
	// edgeStoredWait bounds how long a record change waits for a server
	// to store it before the webhook says 503.
	edgeStoredWait = 15 * time.Second
)

// NewEdgeClient starts a client: it connects in the background, and
// keeps connected until Close.
func NewEdgeClient(cfg EdgeConfig) (*EdgeClient, error) {
	if cfg.Name == "" || len(cfg.Name) > maxNameLen {
		return nil, fmt.Errorf("gossip: edge client: a name of 1 to %d bytes is needed", maxNameLen)
	}
	if cfg.Observer == "" {
		cfg.Observer = cfg.Name
	}
	if len(cfg.Observer) > maxLabelLen {
		return nil, fmt.Errorf("gossip: observer label longer than %d bytes", maxLabelLen)
	}
	if len(cfg.Label) > 255 {
		return nil, errors.New("gossip: cluster label longer than 255 bytes")
	}
	if len(cfg.Servers) == 0 {
		return nil, errors.New("gossip: edge client: no server to connect to")
	}
	for _, s := range cfg.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("gossip: edge client: server %q: want host:port", s)
		}
	}
	if cfg.Owner != "" {
		if err := records.CheckOwner(cfg.Owner); err != nil {
			return nil, fmt.Errorf("gossip: edge client: %w", err)
		}
	}
	keys, err := keysOf(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("gossip: edge client: %w", err)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 400 * time.Millisecond
	}
	var local net.Addr
	if cfg.LocalAddr != "" {
		ip := net.ParseIP(cfg.LocalAddr)
		if ip == nil {
			return nil, fmt.Errorf("gossip: edge client: local address %q: not an IP address", cfg.LocalAddr)
		}
		local = &net.TCPAddr{IP: ip}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.LogOutput == nil {
		cfg.LogOutput = os.Stderr
	}
	c := &EdgeClient{
		cfg:    cfg,
		local:  local,
		key:    keys[0],
		logger: log.New(cfg.LogOutput, "", log.LstdFlags),
		st:     newState(cfg.Name, cfg.Observer, RoleAgent, uint64(time.Now().UnixMicro()), time.Hour),
		asm:    newRecordState(RoleAgent),
		subs:   map[chan struct{}]struct{}{},
		stop:   make(chan struct{}),
	}
	c.st.self.edge = true
	c.st.feed, c.st.reasons.feed = nil, nil // nobody reads a client's views
	c.st.bulkAfter = bulkAfter
	c.st.every = cfg.HeartbeatInterval
	c.perMsg = (maxBroadcast - (2 + 2 + len(cfg.Name) + 10 + 10 + 3)) / minPair
	c.rec.synced = make(chan struct{})
	c.rec.changed = make(chan struct{})
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// Name is the client's node name.
func (c *EdgeClient) Name() string { return c.cfg.Name }

// Server returns the address of the server it is connected to, "" while
// it is not.
func (c *EdgeClient) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return ""
	}
	return c.server
}

// Connects counts the connections made.
func (c *EdgeClient) Connects() uint64 { return c.connects.Load() }

// Catalog returns the catalog the server sent last.
func (c *EdgeClient) Catalog() []CatalogTarget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cat
}

// Subscribe returns a channel that receives (coalesced) after the
// catalog changed, and the function that ends the subscription.
func (c *EdgeClient) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.subsMu.Lock()
	c.subs[ch] = struct{}{}
	c.subsMu.Unlock()
	return ch, func() {
		c.subsMu.Lock()
		delete(c.subs, ch)
		c.subsMu.Unlock()
	}
}

func (c *EdgeClient) notify() {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// PublishObservations is Node.PublishObservations: what changed goes to
// the server, under the client's own versions. While disconnected it is
// kept, and the view goes whole to the next server.
func (c *EdgeClient) PublishObservations(states map[TargetID]health.State) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs := c.st.publishObservations(states, c.perMsg)
	c.st.observe(now)
	for _, m := range msgs {
		c.sendLocked(m.encode())
	}
}

// PublishReasons is Node.PublishReasons: the server the client is
// connected to relays them into the cluster. They are sent when they
// change; a server that missed them (a reconnect) has them again at the
// next change.
func (c *EdgeClient) PublishReasons(reasons map[TargetID]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.st.reasons.publish(c.cfg.Name, c.st.self.epoch, reasons) {
		c.sendLocked(m.encode())
	}
}

// ObservedAt is Node.ObservedAt: the client's observations are current
// as of t (heartbeats carry the age).
func (c *EdgeClient) ObservedAt(t time.Time) {
	if now := time.Now(); t.After(now) {
		t = now
	}
	c.mu.Lock()
	c.st.observe(t)
	c.mu.Unlock()
}

// sendLocked queues msg on the connection, if there is one; c.mu is held.
func (c *EdgeClient) sendLocked(msg []byte) {
	l := c.conn
	if l == nil {
		return
	}
	select {
	case l.out <- msg:
	default:
		c.logger.Printf("[WARN] healthdns edge: server %s does not keep up; trying another", c.server)
		l.close()
	}
}

// SyncRecords makes st the store of the client's owner's records: the
// webhook writes into it, the client sends its changes to the server,
// and what a server has past it (a sidecar restarted with an empty
// store) is installed into it. Call it once, before the webhook takes
// writes; see WaitSynced.
func (c *EdgeClient) SyncRecords(st *records.Store) {
	if c.cfg.Owner == "" {
		return
	}
	ch, stop := st.Subscribe()
	c.mu.Lock()
	c.rec.store = st
	if c.conn != nil {
		// Connected without a store: the hello said no head, so the
		// server may have sent records that were dropped. Again, with it.
		c.conn.close()
		c.conn = nil
	}
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer stop()
		for {
			select {
			case <-c.stop:
				return
			case <-ch:
			}
			c.mu.Lock()
			c.pushLocked()
			c.mu.Unlock()
		}
	}()
}

// WaitSynced waits until a server has said what it holds of the owner's
// records (and sent what the store lacked), or ctx ends.
func (c *EdgeClient) WaitSynced(ctx context.Context) error {
	select {
	case <-c.rec.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return errors.New("edge client closed")
	}
}

// Stored waits until a server has stored ch durably, and returns an
// error if none did within a while (or ctx ended first).
func (c *EdgeClient) Stored(ctx context.Context, ch records.Change) error {
	ctx, cancel := context.WithTimeout(ctx, edgeStoredWait)
	defer cancel()
	for {
		c.mu.Lock()
		head, wait := c.rec.server, c.rec.changed
		c.mu.Unlock()
		if !ch.To.After(head) {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			where := "no server is connected"
			if s := c.Server(); s != "" {
				where = "server " + s + " has not stored it"
			}
			return fmt.Errorf("change %s of owner %s not acknowledged: %s", ch.To.Version, ch.Owner, where)
		case <-c.stop:
			return errors.New("edge client closed")
		}
	}
}

// pushLocked sends the server the owner's changes it lacks, one run at
// a time; c.mu is held.
func (c *EdgeClient) pushLocked() {
	r := &c.rec
	if r.store == nil || c.conn == nil || !r.known || r.inflight > 0 {
		return
	}
	st := r.store.State()
	head := st.Head(c.cfg.Owner)
	if !head.After(r.server) {
		return
	}
	var msgs [][]byte
	if cs, ok := st.Since(c.cfg.Owner, r.server); ok {
		msgs = encodeRecordDeltas(c.cfg.Name, cs)
	} else {
		msgs = encodeRecordParts(c.cfg.Name, st.Set(c.cfg.Owner))
	}
	r.inflight = len(msgs)
	for _, b := range msgs {
		c.sendLocked(b)
	}
}

// Close ends the client; with leave it first tells the server that it
// leaves, so that its observations count as unknown at once.
func (c *EdgeClient) Close(leave bool) {
	c.once.Do(func() {
		if leave {
			c.mu.Lock()
			c.st.self.leaving = true
			hb := c.st.heartbeat(time.Now())
			l := c.conn
			c.sendLocked(hb.encode())
			c.mu.Unlock()
			if l != nil { // give the writer a moment to send it
				deadline := time.Now().Add(time.Second)
				for len(l.out) > 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		close(c.stop)
		c.mu.Lock()
		if c.conn != nil {
			c.conn.close()
		}
		c.mu.Unlock()
		c.wg.Wait()
	})
}

// run connects, and reconnects when the connection breaks: at once to
// the next server, then, once every server failed, after a backoff with
// jitter.
func (c *EdgeClient) run() {
	defer c.wg.Done()
	servers := c.cfg.Servers
	i := rand.IntN(len(servers))
	fails := 0
	for {
		addr := servers[i%len(servers)]
		i++
		start := time.Now()
		err := c.session(addr)
		select {
		case <-c.stop:
			return
		default:
		}
		if time.Since(start) > 10*time.Second {
			fails = 0
		}
		level := "[WARN]"
		if errors.Is(err, errWrongKey) {
			level = "[ERR]"
		}
		c.logger.Printf("%s healthdns edge: %s: %v", level, addr, err)
		wait := time.Duration(rand.Int64N(int64(100 * time.Millisecond)))
		if fails >= len(servers) {
			d := min(250*time.Millisecond<<min(fails-len(servers), 5), edgeBackoffMax)
			wait = d/2 + time.Duration(rand.Int64N(int64(d)))
		}
		fails++
		select {
		case <-c.stop:
			return
		case <-time.After(wait):
		}
	}
}

// session runs one connection until it breaks.
func (c *EdgeClient) session(addr string) error {
	d := net.Dialer{Timeout: c.cfg.DialTimeout, LocalAddr: c.local}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	sc, err := clientHandshake(nc, c.key, c.cfg.Label)
	if err != nil {
		nc.Close()
		return err
	}
	l := &edgeLink{sc: sc, out: make(chan []byte, edgeClientQueue), done: make(chan struct{})}
	defer l.close()
	hello := &edgeHello{Node: c.cfg.Name, Label: c.cfg.Observer, Role: RoleAgent, Probes: c.cfg.Probes, Owner: c.cfg.Owner}
	now := time.Now()
	c.mu.Lock()
	select {
	case <-c.stop:
		// Close ran during the handshake and found no connection to
		// close: this one must not start.
		c.mu.Unlock()
		return errors.New("edge client closed")
	default:
	}
	if c.rec.store != nil {
		hello.Head = c.rec.store.Head(c.cfg.Owner)
	}
	// The hello first, then the client's view whole (the server may not
	// have it, or not all of it), then a heartbeat.
	l.out <- hello.encode()
	if c.st.self.view != nil {
		fs := &fullState{Sender: c.cfg.Name, Peers: []peerState{c.st.peerState(c.st.self, now, true, false)}}
		for _, b := range splitState(fs, maxEdgeIn) {
			l.out <- b
		}
	}
	l.out <- c.st.heartbeat(now).encode()
	c.conn, c.server = l, addr
	c.rec.known, c.rec.inflight = false, 0
	c.mu.Unlock()
	c.connects.Add(1)
	c.logger.Printf("[INFO] healthdns edge: %s connected to server %s", c.cfg.Name, addr)
	defer func() {
		c.mu.Lock()
		if c.conn == l {
			c.conn = nil
		}
		c.mu.Unlock()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.close()
	wg.Add(2)
	go func() { defer wg.Done(); c.writer(l) }()
	go func() { defer wg.Done(); c.heartbeats(l) }()
	idle := max(3*time.Second, 5*c.cfg.HeartbeatInterval)
	for {
		b, err := sc.read(idle)
		if err != nil {
			select {
			case <-l.done:
				return errors.New("connection closed")
			default:
			}
			return err
		}
		if err := c.handle(l, b); err != nil {
			return err
		}
	}
}

func (c *EdgeClient) writer(l *edgeLink) {
	for {
		select {
		case <-l.done:
			return
		case b := <-l.out:
			if err := l.sc.write(b); err != nil {
				l.close()
				return
			}
		}
	}
}

func (c *EdgeClient) heartbeats(l *edgeLink) {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		if c.conn == l && !c.st.self.leaving {
			c.sendLocked(c.st.heartbeat(time.Now()).encode())
		}
		c.mu.Unlock()
	}
}

// handle acts on one message from the server over l.
func (c *EdgeClient) handle(l *edgeLink, b []byte) error {
	k := kinds[b[0]]
	if k == nil || !k.toEdge {
		return fmt.Errorf("the server sent a message of type %d", b[0])
	}
	m, err := decodeMessage(b)
	if err != nil {
		return fmt.Errorf("%s from the server: %w", k.name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != l {
		return errors.New("connection replaced")
	}
	switch m := m.(type) {
	case *edgeCatalog:
		c.cat = m.Targets
		go c.notify()
	case *edgeStored:
		if m.Owner == "" || m.Owner != c.cfg.Owner || c.rec.store == nil {
			return nil // a keepalive, or before there is a store
		}
		r := &c.rec
		r.server = m.Head
		if r.inflight > 0 {
			r.inflight--
		}
		if !r.known {
			r.known = true
			select {
			case <-r.synced:
			default:
				close(r.synced)
			}
		}
		close(r.changed)
		r.changed = make(chan struct{})
		c.pushLocked()
	case *recordDelta:
		if c.rec.store == nil {
			return nil
		}
		if _, _, err := c.rec.store.Merge(m.Changes...); err != nil {
			c.logger.Printf("[ERR] healthdns edge: the owner's records from the server not stored: %v", err)
		}
	case *recordPart:
		if c.rec.store == nil || m.Owner != c.cfg.Owner {
			return nil
		}
		if set, ok := c.asm.addPart(m, time.Now()); ok {
			if _, err := c.rec.store.Install(set); err != nil {
				c.logger.Printf("[ERR] healthdns edge: the owner's records from the server not stored: %v", err)
			}
		}
	}
	return nil
}
