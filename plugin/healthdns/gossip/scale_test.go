package gossip

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// TestStateAtScale builds the state DESIGN.md plans for (10,000 targets
// observed by 10 agents, catalogued by 5 servers) and checks the push/pull
// size and the cost of a change.
func TestStateAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 targets")
	}
	const targets, agents, servers = 10000, 10, 5
	tcp := mustCheck(t, "tcp 127.0.0.1:80")
	cat := make([]CatalogTarget, targets)
	for i := range cat {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		c := mustCheck(t, fmt.Sprintf("http://%s/healthz", a))
		ct, err := NewCatalogTarget(probe.Target{Addr: a, Checks: []probe.Check{c, tcp}, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2})
		if err != nil {
			t.Fatal(err)
		}
		cat[i] = ct
	}
	me := newState("server-0", "dc0", RoleServer, 1, time.Hour)
	for s := range servers {
		pages, err := newState(fmt.Sprintf("server-%d", s), "dc", RoleServer, 1, time.Hour).publishCatalog(cat, fmt.Sprintf("server-%d", s))
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			t.Logf("one catalog of %d targets: %d gossip pages", targets, len(pages))
		}
		for _, p := range pages {
			me.applyPage(p, t0)
		}
	}
	var delta []byte
	for a := range agents {
		obs := newState(fmt.Sprintf("agent-%d", a), "loc", RoleAgent, 1, time.Hour)
		states := make(map[TargetID]health.State, targets)
		for i, c := range cat {
			states[c.ID] = health.State(1 + (i+a)%2)
		}
		for _, m := range obs.publishObservations(states, 100) {
			me.applyObservations(m, t0)
		}
		for _, id := range []TargetID{cat[0].ID, cat[1].ID} {
			states[id] = map[health.State]health.State{health.Up: health.Down, health.Down: health.Up}[states[id]]
		}
		msgs := obs.publishObservations(states, 100)
		delta = msgs[0].encode()
		me.applyObservations(msgs[0], t0)
	}
	start := time.Now()
	b := me.full(t0).encode()
	enc := time.Since(start)
	start = time.Now()
	fs, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	dec := time.Since(start)
	start = time.Now()
	other := newState("server-9", "dc", RoleServer, 1, time.Hour)
	other.mergeFull(fs, t0)
	merge := time.Since(start)
	t.Logf("push/pull state: %d bytes (%.2f MiB); encode %v, decode %v, merge into an empty node %v", len(b), float64(len(b))/(1<<20), enc, dec, merge)
	t.Logf("a change of 2 targets by one observer: one %d-byte message", len(delta))
	if len(b) > 1<<20 {
		t.Errorf("state of %d bytes; want under a MiB", len(b))
	}
	// After join, push/pull sends a digest.
	dg := me.digest(t0).encode()
	t.Logf("push/pull digest after join: %d bytes", len(dg))
	if len(dg) > 2048 {
		t.Errorf("digest of %d bytes", len(dg))
	}
	// An agent's first observations: one bulk change, sent directly.
	obs := newState("agent-x", "loc", RoleAgent, 1, time.Hour)
	obs.bulkAfter = 2
	all := make(map[TargetID]health.State, targets)
	for _, c := range cat {
		all[c.ID] = health.Up
	}
	msgs := obs.publishObservations(all, 100)
	if len(msgs) != 1 || !msgs[0].Bulk {
		t.Fatalf("%d messages", len(msgs))
	}
	t.Logf("an agent's first %d observations: one direct message of %d bytes", targets, len(msgs[0].encode()))
	if len(other.catalogUnion(func(string) bool { return false })) != targets || len(other.peers["agent-3"].view.states()) != targets {
		t.Error("merged state incomplete")
	}
}
