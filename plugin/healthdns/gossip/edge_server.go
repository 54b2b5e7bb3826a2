package gossip

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// The server's side of edge connections (edge.go): a listener, and a
// session per client that carries what the client sends into the cluster
// and sends it the catalog and its owner's records. A session never
// holds up the node: it reads on its own goroutine, and what it sends
// goes through a bounded queue; a client that does not keep up is cut
// off (it reconnects, and is sent its state again).

const (
	// DefaultEdgeClients bounds the edge connections a server holds at
	// once, handshakes included.
	DefaultEdgeClients = 512
	// edgeQueue bounds the messages waiting to go to one client.
	edgeQueue = 256
	// edgeSettle is how long catalog news settles before a session
	// re-reads the catalog.
	edgeSettle = 50 * time.Millisecond
)

// edgeServer is a node's client port.
type edgeServer struct {
	n    *Node
	ln   net.Listener
	keys [][]byte
	sem  chan struct{}

	mu       sync.Mutex
	sessions map[string]*edgeSession // by client name
	// catMu guards catMsg, the catalog as last sent to the clients that
	// probe: encoded once for all of them (catalogLoop).
	catMu   sync.Mutex
	catMsg  []byte
	closed  bool // close ran: admit no one more
	wg      sync.WaitGroup
	clients atomic.Int64
	refused atomic.Uint64
}

// ServeEdge accepts edge clients on addr (host:port) until Shutdown, at
// most max at once (DefaultEdgeClients for 0). The node must have a key
// file: it authenticates the clients. It returns the address bound.
func (n *Node) ServeEdge(addr string, max int) (net.Addr, error) {
	keys, err := keysOf(n.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("gossip: clients: %w", err)
	}
	if n.cfg.Role != RoleServer {
		return nil, errors.New("gossip: clients: only servers take edge clients")
	}
	if max <= 0 {
		max = DefaultEdgeClients
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gossip: clients: %w", err)
	}
	s := &edgeServer{n: n, ln: ln, keys: keys, sem: make(chan struct{}, max), sessions: map[string]*edgeSession{}}
	n.courMu.Lock()
	if n.closed.Load() || n.edge != nil {
		n.courMu.Unlock()
		ln.Close()
		return nil, errors.New("gossip: clients: node shut down, or serving clients already")
	}
	n.edge = s
	n.wg.Add(2)
	n.courMu.Unlock()
	go s.accept()
	go s.catalogLoop()
	n.logger.Printf("[INFO] healthdns edge: accepting edge clients on %s", ln.Addr())
	return ln.Addr(), nil
}

// EdgeClients returns the names of the edge clients connected to this
// node, sorted.
func (n *Node) EdgeClients() []string {
	s := n.edgeSrv()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sessions))
	for name := range s.sessions {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func (n *Node) edgeSrv() *edgeServer {
	n.courMu.Lock()
	defer n.courMu.Unlock()
	return n.edge
}

func (s *edgeServer) close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for _, ss := range s.sessions {
		ss.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *edgeServer) accept() {
	defer s.n.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.n.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.refused.Add(1)
			s.n.logger.Printf("[WARN] healthdns edge: refused a client from %s: %d connections already (the limit)", c.RemoteAddr(), cap(s.sem))
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed { // close is waiting on wg: no Add after it
			s.mu.Unlock()
			c.Close()
			<-s.sem
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.serve(c)
		}()
	}
}

// edgeSession is one connected client.
type edgeSession struct {
	s     *edgeServer
	sc    *secureConn
	hello *edgeHello
	out   chan []byte
	done  chan struct{}
	once  sync.Once
}

func (ss *edgeSession) close() { ss.once.Do(func() { close(ss.done); ss.sc.Close() }) }

// send queues msg for the client; a client whose queue is full is not
// reading, and is cut off rather than let it hold anything up.
func (ss *edgeSession) send(msg []byte) {
	select {
	case ss.out <- msg:
	case <-ss.done:
	default:
		ss.s.n.logger.Printf("[WARN] healthdns edge: client %s does not keep up (%d messages waiting); closing its connection", ss.hello.Node, edgeQueue)
		ss.close()
	}
}

func (s *edgeServer) serve(c net.Conn) {
	n := s.n
	from := c.RemoteAddr().String()
	sc, err := serverHandshake(c, s.keys, n.cfg.Label)
	if err != nil {
		c.Close()
		s.refused.Add(1)
		n.logger.Printf("[WARN] healthdns edge: refused a client from %s: %v", from, err)
		return
	}
	defer sc.Close()
	b, err := sc.read(handshakeTimeout)
	var hello *edgeHello
	if err == nil {
		var m any
		if m, err = decodeMessage(b); err == nil {
			if h, ok := m.(*edgeHello); ok {
				hello = h
			} else {
				err = errors.New("no hello")
			}
		}
	}
	if err == nil {
		err = s.admit(hello)
	}
	if err != nil {
		s.refused.Add(1)
		n.logger.Printf("[WARN] healthdns edge: refused a client from %s: %v", from, err)
		return
	}
	ss := &edgeSession{s: s, sc: sc, hello: hello, out: make(chan []byte, edgeQueue), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		// The server shut down during the handshake: close found no
		// session to close, so this one must not start.
		s.mu.Unlock()
		return
	}
	if old := s.sessions[hello.Node]; old != nil {
		old.close() // it reconnected; the old connection is half dead
	}
	s.sessions[hello.Node] = ss
	s.mu.Unlock()
	s.clients.Add(1)
	n.logger.Printf("[INFO] healthdns edge: client %s (observer %q) connected from %s", hello.Node, hello.Label, from)
	defer func() {
		s.mu.Lock()
		if s.sessions[hello.Node] == ss {
			delete(s.sessions, hello.Node)
		}
		s.mu.Unlock()
		s.clients.Add(-1)
		ss.close()
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ss.writer() }()
	if hello.Probes {
		s.catMu.Lock()
		if s.catMsg != nil {
			ss.send(s.catMsg)
		}
		s.catMu.Unlock()
	}
	if hello.Owner != "" {
		n.recMu.Lock()
		memory := n.rec.store.Dir() == ""
		n.recMu.Unlock()
		if memory {
			n.logger.Printf("[WARN] healthdns edge: client %s writes the records of owner %s, which this server keeps in memory only (no data directory): give servers a data directory", hello.Node, hello.Owner)
		}
		ss.sendRecords(hello.Head)
	}
	err = ss.reader()
	ss.close()
	wg.Wait()
	select {
	case <-n.stop:
	default:
		n.logger.Printf("[INFO] healthdns edge: client %s from %s disconnected: %v", hello.Node, from, err)
	}
}

// admit checks a client's hello.
func (s *edgeServer) admit(h *edgeHello) error {
	if h.Role != RoleAgent {
		return fmt.Errorf("client %s: role %s; edge clients are agents", h.Node, h.Role)
	}
	if h.Node == s.n.cfg.Name {
		return fmt.Errorf("client %s: that is this server's name", h.Node)
	}
	for _, m := range s.n.ml.Members() {
		if m.Name == h.Node {
			return fmt.Errorf("client %s: a member of the cluster has that name", h.Node)
		}
	}
	return nil
}

// idle is how long a client may send nothing: it heartbeats far more
// often.
func (s *edgeServer) idle() time.Duration { return max(edgeIdleMin, 10*s.n.cfg.HeartbeatInterval) }

func (ss *edgeSession) writer() {
	keep := time.NewTicker(ss.s.n.cfg.HeartbeatInterval)
	defer keep.Stop()
	for {
		var b []byte
		select {
		case <-ss.done:
			return
		case b = <-ss.out:
		case <-keep.C:
			b = ss.s.n.storedMsg(ss.hello.Owner, ss.s.n.ownerHead(ss.hello.Owner))
		}
		if err := ss.sc.write(b); err != nil {
			ss.close()
			return
		}
	}
}

// catalogLoop sends the clients that probe the cluster's catalog when it
// changes: read and encoded once for all of them, however many.
func (s *edgeServer) catalogLoop() {
	defer s.n.wg.Done()
	n := s.n
	ch, stop := n.Subscribe()
	defer stop()
	var last []CatalogTarget
	settle := time.NewTimer(0)
	defer settle.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-ch:
			settle.Reset(edgeSettle)
			continue
		case <-settle.C:
		}
		cat := n.Catalog()
		if last != nil && slices.EqualFunc(cat, last, func(a, b CatalogTarget) bool { return a.equal(b) }) {
			continue
		}
		last = cat
		msg := (&edgeCatalog{Targets: cat}).encode()
		s.catMu.Lock() // held while sending, so that a new session's first catalog is not sent after a newer one
		s.catMsg = msg
		s.mu.Lock()
		for _, ss := range s.sessions {
			if ss.hello.Probes {
				ss.send(msg)
			}
		}
		s.mu.Unlock()
		s.catMu.Unlock()
	}
}

// sendRecords sends a client that connects what the server has of its
// owner's records past head (the changes since, or the records whole),
// then the server's head.
func (ss *edgeSession) sendRecords(head records.Head) {
	n, owner := ss.s.n, ss.hello.Owner
	n.recMu.Lock()
	st := n.rec.store.State()
	n.recMu.Unlock()
	if mine := st.Head(owner); mine.After(head) {
		for _, b := range n.encodeRecordsSince(st, owner, head) {
			ss.send(b)
		}
	}
	ss.send(n.storedMsg(owner, st.Head(owner)))
}

// reader handles what the client sends until the connection ends.
func (ss *edgeSession) reader() error {
	idle := ss.s.idle()
	for {
		b, err := ss.sc.read(idle)
		if err != nil {
			return err
		}
		if err := ss.handle(b); err != nil {
			ss.s.n.logger.Printf("[WARN] healthdns edge: client %s: %v; closing its connection", ss.hello.Node, err)
			return err
		}
	}
}

// handle carries one message of the client's into the cluster. A client
// speaks only for itself: of its own observations and its own owner.
func (ss *edgeSession) handle(b []byte) error {
	n, name := ss.s.n, ss.hello.Node
	k := kinds[b[0]]
	if k == nil || !k.fromEdge || b[0] == msgEdgeHello {
		return fmt.Errorf("message type %d is not one a client sends", b[0])
	}
	m, err := decodeMessage(b)
	if err != nil {
		return fmt.Errorf("%s: %w", k.name, err)
	}
	switch m := m.(type) {
	case *observations:
		if m.Node != name {
			return fmt.Errorf("observations of %s", m.Node)
		}
		k.handle(n, m, b)
		if m.Bulk { // direct: not relayed, so sent on to every member
			n.sendDirect("", b, false)
		} else {
			n.tellServers(b)
		}
	case *heartbeat:
		if m.Node != name || !m.Edge || m.Role != RoleAgent {
			return fmt.Errorf("a heartbeat of %s (edge %v, role %s)", m.Node, m.Edge, m.Role)
		}
		k.handle(n, m, b)
	case *reasonsMsg:
		if m.Node != name {
			return fmt.Errorf("reasons of %s", m.Node)
		}
		k.handle(n, m, b)
	case *fullState:
		if m.Sender != name {
			return fmt.Errorf("a state of %s", m.Sender)
		}
		for _, p := range m.Peers {
			if p.Node != name || !p.Edge || p.Cat != nil {
				return fmt.Errorf("a state with %s in it", p.Node)
			}
		}
		k.handle(n, m, b)
		n.sendDirect("", b, true)
	case *recordDelta:
		if m.Sender != name {
			return fmt.Errorf("records sent by %s", m.Sender)
		}
		for _, c := range m.Changes {
			if c.Owner != ss.hello.Owner {
				return fmt.Errorf("records of owner %q", c.Owner)
			}
		}
		ss.stored(n.storeEdge(m.Changes, nil), b, m.Changes)
	case *recordPart:
		if m.Sender != name || m.Owner != ss.hello.Owner {
			return fmt.Errorf("records of owner %q sent by %s", m.Owner, m.Sender)
		}
		ss.stored(n.storeEdge(nil, m), b, nil)
	}
	return nil
}

// stored tells the client how far its owner's records are stored here,
// and sends its message on to the other servers, gossiping a few small
// changes too, as the client would if it were a member.
func (ss *edgeSession) stored(head records.Head, b []byte, cs []records.Change) {
	n := ss.s.n
	if n.cfg.DurableRecords && !n.durable() && notDurableLog.Allow() {
		n.logger.Printf("[WARN] healthdns gossip: records of owner %s from edge client %s not acknowledged: the data directory's store is not open yet (the client's webhook answers 503, and ExternalDNS retries)", ss.hello.Owner, ss.hello.Node)
	}
	ss.send(n.storedMsg(ss.hello.Owner, head))
	for _, to := range n.recordServers() {
		n.sendDirect(to, b, false)
	}
	if len(cs) > 0 && len(cs) <= broadcastChanges && n.queue.NumQueued() < busyQueue {
		for _, c := range cs {
			if msg := encodeRecordChange(c); len(msg) <= maxBroadcast {
				n.queue.QueueBroadcast(&broadcast{name: recordChangeName(c), msg: msg})
			}
		}
	}
}

// storeEdge stores an edge client's changes (or a part of its owner's
// records whole) at once, durably when the node's store has a data
// directory, and returns the owner's head here after.
func (n *Node) storeEdge(cs []records.Change, part *recordPart) records.Head {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	owner := ""
	if part != nil {
		owner = part.Owner
		n.installPart(part)
	} else if len(cs) > 0 {
		owner = cs[0].Owner
		n.mergeChanges(cs)
	}
	return n.rec.store.Head(owner)
}

// notDurableLog keeps a store that will not open from flooding the log
// with one line per edge write: one line per 10 s says it.
var notDurableLog = probe.NewEvery(10 * time.Second)

// storedMsg tells a client how far its owner's records are stored here:
// head, or only a keepalive while a server that will keep records in a
// data directory has not opened it, since what is in memory until then
// could be lost.
func (n *Node) storedMsg(owner string, head records.Head) []byte {
	if owner == "" || (n.cfg.DurableRecords && !n.durable()) {
		return (&edgeStored{}).encode()
	}
	return (&edgeStored{Owner: owner, Head: head}).encode()
}

// durable reports whether the records store holds writes on disk.
func (n *Node) durable() bool {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	return n.rec.store != nil && n.rec.store.Dir() != ""
}

// ownerHead is the head of owner's records here; zero for "".
func (n *Node) ownerHead(owner string) records.Head {
	if owner == "" {
		return records.Head{}
	}
	n.recMu.Lock()
	defer n.recMu.Unlock()
	if n.rec.store == nil {
		return records.Head{}
	}
	return n.rec.store.Head(owner)
}
