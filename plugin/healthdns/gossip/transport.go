package gossip

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// streamTimeout bounds a stream the node dials, as memberlist's TCPTimeout
// bounds those it accepts.
const streamTimeout = 10 * time.Second

// streamTransport wraps memberlist's network transport. memberlist sets no
// deadline on the streams that carry direct messages (SendReliable), so a
// write to a member that stopped reading (a paused process, its window
// full) would block for as long as the pause; every stream dialed here gets
// one. memberlist's own exchanges (push/pull) set theirs after dialing.
// Shutdown closes the streams still open, so no send outlives the node.
type streamTransport struct {
	memberlist.NodeAwareTransport
	timeout time.Duration

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

var _ memberlist.NodeAwareTransport = &streamTransport{}

func newStreamTransport(t memberlist.NodeAwareTransport, timeout time.Duration) *streamTransport {
	return &streamTransport{NodeAwareTransport: t, timeout: timeout, conns: map[*trackedConn]struct{}{}}
}

func (t *streamTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	return t.track(t.NodeAwareTransport.DialTimeout(addr, d))
}

func (t *streamTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	return t.track(t.NodeAwareTransport.DialAddressTimeout(a, d))
}

func (t *streamTransport) track(c net.Conn, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(t.timeout)); err != nil {
		c.Close()
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return nil, errors.New("gossip: transport shut down")
	}
	t.conns[tc] = struct{}{}
	return tc, nil
}

func (t *streamTransport) Shutdown() error {
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Conn.Close()
	}
	clear(t.conns)
	t.mu.Unlock()
	return t.NodeAwareTransport.Shutdown()
}

type trackedConn struct {
	net.Conn
	t *streamTransport
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}
