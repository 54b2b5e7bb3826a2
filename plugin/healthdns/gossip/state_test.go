package gossip

import (
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestStateRestartedObserverReplacesItsView(t *testing.T) {
	s := newState("me", "here", RoleServer, 100, time.Minute)
	old := &observations{Node: "a", Epoch: 10, Seq: 1, Pairs: []pair{{1, up}, {2, up}}}
	if o := s.applyObservations(old, t0); !o.fresh || !o.changed {
		t.Fatalf("first delta: %+v", o)
	}
	// The agent restarts: a later epoch, and it sees only target 2.
	nu := &observations{Node: "a", Epoch: 20, Seq: 1, Pairs: []pair{{2, down}}}
	s.applyObservations(nu, t0)
	want := map[TargetID]health.State{2: down}
	if got := s.peers["a"].view.states(); !maps.Equal(got, want) {
		t.Errorf("after restart %v, want %v", got, want)
	}
	// A late message of the old life changes nothing.
	if o := s.applyObservations(&observations{Node: "a", Epoch: 10, Seq: 2, Pairs: []pair{{1, down}}}, t0); o.fresh {
		t.Error("message of an older incarnation is fresh")
	}
}

func TestStateHeartbeat(t *testing.T) {
	s := newState("me", "here", RoleServer, 100, time.Minute)
	hb := &heartbeat{Node: "a", Label: "eu", Role: RoleAgent, Epoch: 10, Beat: 1, ObsSeq: 3}
	if o := s.applyHeartbeat(hb, t0); !o.fresh {
		t.Fatal("first heartbeat not fresh")
	}
	if o := s.applyHeartbeat(hb, t0.Add(time.Second)); o.fresh {
		t.Error("same heartbeat again is fresh")
	}
	p := s.peers["a"]
	if !p.heard.Equal(t0) || p.label != "eu" || p.role != RoleAgent {
		t.Errorf("peer %+v", p)
	}
	if p.view == nil || p.view.synced() {
		t.Error("heartbeat announcing seq 3 should leave an unsynced view")
	}
	// About ourselves from a later life: refute.
	if o := s.applyHeartbeat(&heartbeat{Node: "me", Role: RoleServer, Epoch: 200, Beat: 1}, t0); o.self != 200 {
		t.Errorf("self = %d, want 200", o.self)
	}
}

func TestStateCatalogPages(t *testing.T) {
	var ts []CatalogTarget
	for i := range 40 {
		ts = append(ts, testTarget(t, "192.0.2."+strconv.Itoa(i+1), "http://192.0.2."+strconv.Itoa(i+1)+"/healthz status 200 204"))
	}
	pub := newState("srv", "", RoleServer, 50, time.Minute)
	pages, err := pub.publishCatalog(ts, "srv")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 2 {
		t.Fatalf("%d pages; want the catalog split", len(pages))
	}
	for _, p := range pages {
		if n := len(p.encode()); n > maxBroadcast {
			t.Errorf("page of %d bytes, over %d", n, maxBroadcast)
		}
	}
	s := newState("me", "", RoleAgent, 100, time.Minute)
	// Deliver in reverse, with a duplicate; installed only when complete.
	for i := len(pages) - 1; i >= 0; i-- {
		o := s.applyPage(pages[i], t0)
		if !o.fresh {
			t.Errorf("page %d not fresh", i)
		}
		if o.changed != (i == 0) {
			t.Errorf("page %d: changed %v", i, o.changed)
		}
		if i == len(pages)-1 {
			if o := s.applyPage(pages[i], t0); o.fresh {
				t.Error("duplicate page fresh")
			}
		}
	}
	got := s.catalogUnion(func(string) bool { return false })
	if len(got) != len(ts) {
		t.Fatalf("catalog of %d targets, want %d", len(got), len(ts))
	}
	// A newer catalog replaces it; pages of the old one are ignored after.
	newPages, _ := pub.publishCatalog(ts[:3], "srv")
	for _, p := range newPages {
		s.applyPage(p, t0)
	}
	if o := s.applyPage(pages[0], t0); o.fresh {
		t.Error("page of an older catalog is fresh")
	}
	if got := s.catalogUnion(func(string) bool { return false }); len(got) != 3 {
		t.Errorf("catalog of %d targets, want 3", len(got))
	}
	if got := s.catalogUnion(func(n string) bool { return n == "srv" }); len(got) != 0 {
		t.Errorf("catalog of a skipped node: %d targets", len(got))
	}
}

func TestStateFullMerge(t *testing.T) {
	ts := []CatalogTarget{testTarget(t, "192.0.2.1", "tcp 192.0.2.1:80"), testTarget(t, "192.0.2.2", "tcp 192.0.2.2:80")}
	a := newState("a", "eu", RoleServer, 10, time.Minute)
	if _, err := a.publishCatalog(ts, "a"); err != nil {
		t.Fatal(err)
	}
	a.publishObservations(map[TargetID]health.State{ts[0].ID: up, ts[1].ID: down}, 100)
	a.heartbeat(t0)
	b := newState("b", "us", RoleAgent, 20, time.Minute)
	b.publishObservations(map[TargetID]health.State{ts[0].ID: down}, 100)
	b.heartbeat(t0)
	c := newState("c", "ap", RoleAgent, 30, time.Minute)

	// c hears a's state, and b's by way of a (relayed), 3s later.
	b2a, err := decodeState(b.full(t0).encode())
	if err != nil {
		t.Fatal(err)
	}
	a.mergeFull(b2a, t0)
	a2c, err := decodeState(a.full(t0.Add(time.Second)).encode())
	if err != nil {
		t.Fatal(err)
	}
	if o := c.mergeFull(a2c, t0.Add(3*time.Second)); !o.changed {
		t.Error("merge reported no change")
	}
	if got := c.catalogUnion(func(string) bool { return false }); len(got) != 2 {
		t.Errorf("catalog of %d targets, want 2", len(got))
	}
	if got, want := c.peers["a"].view.states(), a.self.view.states(); !maps.Equal(got, want) {
		t.Errorf("a's view at c: %v, want %v", got, want)
	}
	if got, want := c.peers["b"].view.states(), b.self.view.states(); !maps.Equal(got, want) {
		t.Errorf("b's view at c: %v, want %v", got, want)
	}
	// Freshness is carried as an age: a heard b at t0 and told c 1s
	// later that it was 1s old; c received it at t0+3s.
	if got, want := c.peers["b"].heard, t0.Add(2*time.Second); !got.Equal(want) {
		t.Errorf("b heard at %v, want %v", got, want)
	}
	if c.peers["a"].label != "eu" || c.peers["b"].role != RoleAgent {
		t.Errorf("labels and roles not carried: %+v %+v", c.peers["a"], c.peers["b"])
	}

	// Past the retention, b is forgotten and not revived by old state.
	c.gc(t0.Add(2 * time.Minute))
	if c.peers["b"] != nil {
		t.Error("b not forgotten")
	}
	old, _ := decodeState(a.full(t0.Add(2 * time.Minute)).encode())
	c.mergeFull(old, t0.Add(2*time.Minute))
	if c.peers["b"] != nil {
		t.Error("b revived by a state that heard of it too long ago")
	}
}

func TestStateRefute(t *testing.T) {
	ts := []CatalogTarget{testTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")}
	s := newState("me", "", RoleServer, 10, time.Minute)
	s.publishCatalog(ts, "me")
	s.publishObservations(map[TargetID]health.State{ts[0].ID: up}, 100)
	obs, pages := s.refute(500, 40, 100)
	if s.self.epoch != 501 {
		t.Errorf("epoch %d, want 501", s.self.epoch)
	}
	if len(obs) != 1 || obs[0].Epoch != 501 || obs[0].Seq != 1 || len(obs[0].Pairs) != 1 {
		t.Errorf("republished observations %+v", obs)
	}
	if len(pages) != 1 || pages[0].Epoch != 501 || len(pages[0].Targets) != 1 {
		t.Errorf("republished catalog %+v", pages)
	}
}

func TestStatePublishChunks(t *testing.T) {
	s := newState("me", "", RoleAgent, 10, time.Minute)
	states := map[TargetID]health.State{}
	for i := range 250 {
		states[TargetID(i)] = up
	}
	msgs := s.publishObservations(states, 100)
	if len(msgs) != 3 || msgs[0].Seq != 1 || msgs[2].Seq != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	// Removing one and changing one is one small delta.
	delete(states, 7)
	states[8] = down
	msgs = s.publishObservations(states, 100)
	if len(msgs) != 1 || len(msgs[0].Pairs) != 2 || msgs[0].Seq != 4 {
		t.Fatalf("delta %+v", msgs)
	}
	if n := len(msgs[0].encode()); n > 40 {
		t.Errorf("a two-target change costs %d bytes", n)
	}
	if msgs := s.publishObservations(states, 100); len(msgs) != 0 {
		t.Errorf("no change sent %d messages", len(msgs))
	}
}
