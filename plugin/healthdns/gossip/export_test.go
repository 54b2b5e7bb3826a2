package gossip

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Hooks for the cluster tests (package gossip_test).

// Cut plays a firewall in front of one node: it drops every packet the
// node sends to a blocked address and refuses its connections to one.
// Blocking both ways takes a Cut on each side.
type Cut struct {
	mu      sync.Mutex
	blocked map[string]bool
}

// WithDeafness returns cfg with a switch that, while on, drops every
// gossip delta the node receives (heartbeats among them), as a survivor
// misses them when the fan-out goes to members that just died.
func WithDeafness(cfg Config) (Config, *atomic.Bool) {
	cfg.deaf = new(atomic.Bool)
	return cfg, cfg.deaf
}

// WithCut returns cfg with its transport behind a new Cut.
func WithCut(cfg Config) (Config, *Cut) {
	c := &Cut{blocked: map[string]bool{}}
	cfg.wrapTransport = func(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		return &cutTransport{NodeAwareTransport: t, cut: c}
	}
	return cfg, c
}

// Block cuts the node off from addrs (host:port).
func (c *Cut) Block(addrs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range addrs {
		c.blocked[a] = true
	}
}

// Heal lifts every block.
func (c *Cut) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.blocked)
}

func (c *Cut) cuts(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocked[addr]
}

type cutTransport struct {
	memberlist.NodeAwareTransport
	cut *Cut
}

var errCut = errors.New("cut off by the test")

func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.cut.cuts(addr) {
		return time.Now(), nil // lost on the way
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.cut.cuts(a.Addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *cutTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	if t.cut.cuts(addr) {
		return nil, errCut
	}
	return t.NodeAwareTransport.DialTimeout(addr, d)
}

func (t *cutTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	if t.cut.cuts(a.Addr) {
		return nil, errCut
	}
	return t.NodeAwareTransport.DialAddressTimeout(a, d)
}

// Skip moves the node's clock forward by d at once, as a process that was
// paused for d sees it when it resumes.
func (n *Node) Skip(d time.Duration) { n.skew.Add(int64(d)) }

// HoldRecords takes the node's record lock, as its applier holds it across
// a slow disk write, until release is called.
func HoldRecords(n *Node) (release func()) {
	n.recMu.Lock()
	return n.recMu.Unlock
}
