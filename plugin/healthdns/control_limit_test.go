package healthdns

import (
	"net"
	"testing"
	"time"
)

// The control listener is bounded as every other HTTP listener is: with
// its connections all held by clients that send nothing, one more is
// closed at once instead of holding another descriptor.
func TestControlConnectionBound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.6.3:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &HealthDNS{cfg: &config{control: &controlConfig{addr: addr, insecure: true}}}
	if err := acquireControl(addr, h); err != nil {
		t.Fatal(err)
	}
	defer releaseControl(addr, h)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range controlLimits.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them all
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
		t.Fatalf("a connection over the bound of %d: %v, want closed at once", controlLimits.MaxConns, err)
	}
}
