package observer

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// TestOnSchedule: a view is dated now while every probe is on schedule,
// and by when the first one became late otherwise.
func TestOnSchedule(t *testing.T) {
	now := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	late := 1500 * time.Millisecond // interval 1s + timeout 500ms
	current := OnSchedule(now, now.Add(-time.Second), late)
	current = OnSchedule(current, time.Time{}, late) // not probed yet
	if !current.Equal(now) {
		t.Errorf("on schedule: %v, want now", current)
	}
	// A 60 s check that ran 40 s ago is on schedule too.
	if c := OnSchedule(current, now.Add(-40*time.Second), 61*time.Second); !c.Equal(now) {
		t.Errorf("a slow check on schedule aged the view: %v", c)
	}
	// Paused for 10 s: the view dates from when the probe became late.
	if c := OnSchedule(current, now.Add(-10*time.Second), late); !c.Equal(now.Add(-10*time.Second + late)) {
		t.Errorf("paused: %v, want %v", c, now.Add(-10*time.Second+late))
	}
}

type recorder struct {
	states   map[gossip.TargetID]health.State
	reasons  map[gossip.TargetID]string
	observed time.Time
}

func (r *recorder) PublishObservations(s map[gossip.TargetID]health.State) { r.states = s }
func (r *recorder) PublishReasons(m map[gossip.TargetID]string)            { r.reasons = m }
func (r *recorder) ObservedAt(t time.Time)                                 { r.observed = t }

// TestCatalog: the catalog's targets are probed, a target that leaves it
// is no longer, and what the probes say is published: a listening port
// up, a closed one down.
func TestCatalog(t *testing.T) {
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
			c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	target := func(addr string) gossip.CatalogTarget {
		c, err := probe.ParseTCPCheck(addr)
		if err != nil {
			t.Fatal(err)
		}
		ap := netip.MustParseAddrPort(addr)
		ct, err := gossip.NewCatalogTarget(probe.Target{Addr: ap.Addr(), Checks: []probe.Check{c}, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 1, Fall: 1})
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	up, down := target(ln.Addr().String()), target(closedAddr)
	pool := probe.NewPool()
	c := NewCatalog(pool, t.Logf)
	defer c.Close()
	c.Sync([]gossip.CatalogTarget{up, down})
	if c.Len() != 2 {
		t.Fatalf("probing %d targets, want 2", c.Len())
	}
	var r recorder
	deadline := time.Now().Add(5 * time.Second)
	for r.states[up.ID] != health.Up || r.states[down.ID] != health.Down {
		if time.Now().After(deadline) {
			t.Fatalf("published %v, want %s up and %s down", r.states, up.ID, down.ID)
		}
		time.Sleep(20 * time.Millisecond)
		c.Publish(&r)
	}
	if r.observed.IsZero() {
		t.Error("the view was not dated")
	}
	if why := r.reasons[down.ID]; !strings.Contains(why, "refused") {
		t.Errorf("the closed port's reason is %q, want its connection refused", why)
	}
	c.Sync([]gossip.CatalogTarget{up})
	if h := c.Held(); len(h) != 1 || h[0].Target.ID != up.ID {
		t.Fatalf("after the catalog dropped a target: %+v", h)
	}
	c.Publish(&r)
	if _, ok := r.states[down.ID]; ok {
		t.Errorf("a target no longer in the catalog is still published: %v", r.states)
	}
}
