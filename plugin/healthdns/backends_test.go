package healthdns

import (
	"github.com/healthdns/healthdns/plugin/healthdns/records"

	"fmt"
	"net"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// backends are TCP backends on n loopback addresses of one block
// (block+"10", block+"11", ...), all on one port, so that a check
// template "tcp {addr}:port" reaches each one's own listener. flip
// stops a running one or starts a stopped one.
type backends struct {
	t     *testing.T
	block string
	port  int
	lns   []net.Listener
}

func newBackends(t *testing.T, block string, n int) *backends {
	t.Helper()
	b := &backends{t: t, block: block, lns: make([]net.Listener, n)}
	first, err := net.Listen("tcp", b.addr(0)+":0")
	if err != nil {
		t.Fatal(err)
	}
	b.port = first.Addr().(*net.TCPAddr).Port
	b.lns[0] = first
	acceptAndClose(first)
	for i := 1; i < n; i++ {
		b.flip(i)
	}
	t.Cleanup(func() {
		for _, ln := range b.lns {
			if ln != nil {
				ln.Close()
			}
		}
	})
	return b
}

func (b *backends) addr(i int) string { return fmt.Sprintf("%s%d", b.block, 10+i) }

// index is the backend of a target address of the block.
func (b *backends) index(t probe.Target) int { return int(t.Addr.As4()[3]) - 10 }

func (b *backends) up(i int) bool { return b.lns[i] != nil }

func (b *backends) flip(i int) {
	b.t.Helper()
	if b.lns[i] != nil {
		b.lns[i].Close()
		b.lns[i] = nil
		return
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", b.addr(i), b.port))
	if err != nil {
		b.t.Fatal(err)
	}
	b.lns[i] = ln
	acceptAndClose(ln)
}

// settled waits until every probe of the names of hs agrees with its
// backend (no rebuild meanwhile).
func (b *backends) settled(pool *probe.Pool, hs ...*HealthDNS) {
	b.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ok := true
		for _, h := range hs {
			for _, n := range h.names {
				for _, tg := range n.Targets {
					want := health.Down
					if b.up(b.index(*tg.Probe)) {
						want = health.Up
					}
					if pool.Status(tg.ProbeKey()).State != want {
						ok = false
					}
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatal("the probes never agreed with the backends")
		}
	}
}

// acceptAndClose accepts and closes every connection on ln until it is
// closed: a TCP backend whose check passes.
func acceptAndClose(ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// recordA is an A record of webhook records with its own check, as the
// incremental and shared-judge tests write them.
func recordA(fqdn, check string, addrs ...string) records.Endpoint {
	return records.Endpoint{DNSName: fqdn, RecordType: "A", Targets: addrs,
		ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: check}}}
}
