package gossip

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// dialer is the part of a transport streamTransport uses.
type dialer struct{ memberlist.NodeAwareTransport }

func (dialer) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, d)
}

func (t dialer) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, d)
}

func (dialer) Shutdown() error { return nil }

// TestStreamDeadline: a write to a peer that stopped reading (a paused
// process) gives up at the deadline instead of blocking for the pause, and
// Shutdown ends the writes still under way.
func TestStreamDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never read
		}
	}()
	big := make([]byte, 64<<20)

	st := newStreamTransport(dialer{}, 200*time.Millisecond)
	c, err := st.DialAddressTimeout(memberlist.Address{Addr: ln.Addr().String()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("write to a peer that does not read: %v after %v", err, time.Since(start))
	}
	c.Close()

	st = newStreamTransport(dialer{}, time.Hour)
	c, err = st.DialAddressTimeout(memberlist.Address{Addr: ln.Addr().String()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := c.Write(big); done <- err }()
	time.Sleep(100 * time.Millisecond)
	st.Shutdown()
	select {
	case err := <-done:
		if err == nil {
			t.Error("write finished after shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Error("shutdown left a write blocked")
	}
	if _, err := st.DialAddressTimeout(memberlist.Address{Addr: ln.Addr().String()}, time.Second); err == nil {
		t.Error("dialed after shutdown")
	}
}
