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
	// A witness says how often it beats: receivers size its silence by it.
	s.applyHeartbeat(&heartbeat{Node: "w", Role: RoleWitness, Epoch: 3, Beat: 1, EveryMS: 400}, t0)
	if w := s.peers["w"]; w.role != RoleWitness || !w.role.Votes() || w.every != 400*time.Millisecond {
		t.Errorf("witness peer: role %v every %v", w.role, w.every)
	}
	if RoleAgent.Votes() || !RoleServer.Votes() {
		t.Error("agents vote or servers do not")
	}
	// About ourselves from a later life: refute.
	if o := s.applyHeartbeat(&heartbeat{Node: "me", Role: RoleServer, Epoch: 200, Beat: 1}, t0); o.self != 200 {
		t.Errorf("self = %d, want 200", o.self)
	}
}

func TestStateCatalogPages(t *testing.T) {
	var ts []CatalogTarget
	for i := range 40 {
		ts = append(ts, testTarget(t, "192.0.2."+strconv.Itoa(i+1), "http://192.0.2."+strconv.Itoa(i+1)+"/healthz status 200,204"))
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

func TestStateBulk(t *testing.T) {
	s := newState("me", "", RoleAgent, 10, time.Minute)
	s.bulkAfter = 2
	states := map[TargetID]health.State{}
	for i := range 200 {
		states[TargetID(i)] = up
	}
	// Two messages' worth gossips.
	if msgs := s.publishObservations(states, 100); len(msgs) != 2 || msgs[0].Bulk || msgs[1].Bulk {
		t.Fatalf("200 changes: %d messages", len(msgs))
	}
	// More goes whole, under one version.
	for i := range 201 {
		states[TargetID(i)] = down
	}
	msgs := s.publishObservations(states, 100)
	if len(msgs) != 1 || !msgs[0].Bulk || len(msgs[0].Pairs) != 201 || msgs[0].Seq != 3 {
		t.Fatalf("201 changes: %+v", msgs)
	}
	b := msgs[0].encode()
	if b[0] != msgBulk {
		t.Errorf("bulk encoded as type %d", b[0])
	}
	r := newState("r", "", RoleServer, 1, time.Minute)
	m, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if o := r.applyObservations(m.(*observations), t0); !o.fresh || !o.changed {
		t.Errorf("bulk applied: %+v", o)
	}
	if v := r.peers["me"].view; v.complete != 0 || v.latest != 3 || len(v.states()) != 201 {
		t.Errorf("after the bulk alone: complete %d latest %d, %d states", v.complete, v.latest, len(v.states()))
	}
}

func TestStatePublishCatalogUnchanged(t *testing.T) {
	ts := []CatalogTarget{testTarget(t, "192.0.2.1", "tcp 192.0.2.1:80"), testTarget(t, "192.0.2.2", "tcp 192.0.2.2:80")}
	s := newState("srv", "", RoleServer, 10, time.Minute)
	if pages, _ := s.publishCatalog(ts, "srv"); len(pages) != 1 {
		t.Fatalf("%d pages", len(pages))
	}
	if pages, _ := s.publishCatalog([]CatalogTarget{ts[1], ts[0]}, "srv"); len(pages) != 0 || s.catSeq != 1 {
		t.Errorf("the same catalog again: %d pages, seq %d", len(pages), s.catSeq)
	}
	if pages, _ := s.publishCatalog(ts[:1], "srv"); len(pages) != 1 || s.catSeq != 2 {
		t.Errorf("a new catalog: %d pages, seq %d", len(pages), s.catSeq)
	}
}

// TestStateObservationDating: a view is dated by its observer's latest
// observation round (the age its heartbeat carries, or a new change), not
// by the heartbeat itself.
func TestStateObservationDating(t *testing.T) {
	obs := newState("a", "eu", RoleAgent, 10, time.Minute)
	obs.publishObservations(map[TargetID]health.State{1: up}, 100)
	obs.observe(t0)
	r := newState("r", "", RoleServer, 1, time.Minute)
	r.applyHeartbeat(obs.heartbeat(t0.Add(400*time.Millisecond)), t0.Add(time.Second))
	p := r.peers["a"]
	if want := t0.Add(600 * time.Millisecond); !p.observed.Equal(want) {
		t.Errorf("observed %v, want %v (received at t0+1s, 400ms after the round)", p.observed.Sub(t0), want.Sub(t0))
	}
	if !p.heard.Equal(t0.Add(time.Second)) {
		t.Errorf("heard %v", p.heard.Sub(t0))
	}
	// The observer is paused 30s; its heartbeats come back at once, its
	// rounds do not.
	r.applyHeartbeat(obs.heartbeat(t0.Add(30*time.Second)), t0.Add(30*time.Second))
	if want := t0.Add(600 * time.Millisecond); !p.observed.Equal(want) {
		t.Errorf("after the pause observed %v, want %v", p.observed.Sub(t0), want.Sub(t0))
	}
	// A change is a round.
	obs.observe(t0.Add(32 * time.Second))
	msgs := obs.publishObservations(map[TargetID]health.State{1: down}, 100)
	r.applyObservations(msgs[0], t0.Add(33*time.Second))
	if !p.observed.Equal(t0.Add(33 * time.Second)) {
		t.Errorf("after a change observed %v", p.observed.Sub(t0))
	}
	// An older change arriving late does not date it.
	r.applyObservations(&observations{Node: "a", Epoch: 10, Seq: 1, Pairs: []pair{{1, up}}}, t0.Add(40*time.Second))
	if !p.observed.Equal(t0.Add(33 * time.Second)) {
		t.Errorf("a late old change dated the view at %v", p.observed.Sub(t0))
	}
	// Relayed by push/pull: the age carries over.
	c := newState("c", "", RoleServer, 1, time.Minute)
	fs, _ := decodeState(r.full(t0.Add(34 * time.Second)).encode())
	c.mergeFull(fs, t0.Add(50*time.Second))
	if got, want := c.peers["a"].observed, t0.Add(49*time.Second); !got.Equal(want) {
		t.Errorf("relayed: observed %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	// An observer with nothing to say is always current.
	empty := newState("e", "", RoleAgent, 10, time.Minute)
	empty.publishObservations(nil, 100)
	if hb := empty.heartbeat(t0); hb.ObsAgeMS != 0 {
		t.Errorf("empty view: age %d", hb.ObsAgeMS)
	}
	// A node that does not observe says so.
	if hb := newState("s", "", RoleServer, 10, time.Minute).heartbeat(t0); hb.ObsAgeMS != ageNever {
		t.Errorf("no view: age %d", hb.ObsAgeMS)
	}
}

// TestStateDigest: a digest lets each side of a push/pull find what the
// other lacks, and only that.
func TestStateDigest(t *testing.T) {
	ts := []CatalogTarget{testTarget(t, "192.0.2.1", "tcp 192.0.2.1:80"), testTarget(t, "192.0.2.2", "tcp 192.0.2.2:80")}
	srv := newState("srv", "dc", RoleServer, 10, time.Minute)
	srv.publishCatalog(ts, "srv")
	srv.heartbeat(t0)
	ag := newState("ag", "eu", RoleAgent, 20, time.Minute)
	ag.publishObservations(map[TargetID]health.State{ts[0].ID: up}, 100)
	ag.observe(t0)
	ag.heartbeat(t0)

	// Each knows only itself: each lacks all of the other.
	exchange := func(a, b *state, now time.Time) (aToB, bToA *fullState) {
		da, _ := decodeMessage(a.digest(now).encode())
		db, _ := decodeMessage(b.digest(now).encode())
		a.mergeDigest(db.(*digest), now)
		b.mergeDigest(da.(*digest), now)
		return a.lacks(db.(*digest), now), b.lacks(da.(*digest), now)
	}
	toAg, toSrv := exchange(srv, ag, t0)
	if len(toAg.Peers) != 1 || toAg.Peers[0].Node != "srv" || toAg.Peers[0].Cat == nil || toAg.Peers[0].View != nil {
		t.Errorf("srv sends ag %+v", toAg.Peers)
	}
	if len(toSrv.Peers) != 1 || toSrv.Peers[0].Node != "ag" || toSrv.Peers[0].View == nil {
		t.Errorf("ag sends srv %+v", toSrv.Peers)
	}
	// The digest told each what exists: srv knows it lacks ag's view.
	if p := srv.peers["ag"]; p == nil || !p.lacking() {
		t.Error("srv does not know it lacks ag's view")
	}
	if p := ag.peers["srv"]; p == nil || !p.lacking() {
		t.Error("ag does not know it lacks srv's catalog")
	}
	ag.mergeFull(toAg, t0)
	srv.mergeFull(toSrv, t0)
	if srv.peers["ag"].lacking() || ag.peers["srv"].lacking() {
		t.Error("still lacking after the answers")
	}
	if toAg, toSrv = exchange(srv, ag, t0.Add(time.Second)); len(toAg.Peers)+len(toSrv.Peers) != 0 {
		t.Errorf("in step, yet %d and %d peers to send", len(toAg.Peers), len(toSrv.Peers))
	}

	// A third node that missed ag's latest change: srv sends ag's view.
	late := newState("late", "", RoleServer, 30, time.Minute)
	late.mergeFull(srv.full(t0), t0)
	msgs := ag.publishObservations(map[TargetID]health.State{ts[0].ID: down, ts[1].ID: up}, 100)
	srv.applyObservations(msgs[0], t0.Add(time.Second))
	toLate, _ := exchange(srv, late, t0.Add(2*time.Second))
	if len(toLate.Peers) != 1 || toLate.Peers[0].Node != "ag" || toLate.Peers[0].View == nil || toLate.Peers[0].Cat != nil {
		t.Fatalf("srv sends late %+v", toLate.Peers)
	}
	late.mergeFull(toLate, t0.Add(2*time.Second))
	if got, want := late.peers["ag"].view.states(), ag.self.view.states(); !maps.Equal(got, want) {
		t.Errorf("late has %v, want %v", got, want)
	}
	b := srv.digest(t0).encode()
	t.Logf("a digest of %d nodes: %d bytes", len(srv.digest(t0).Peers), len(b))
}

func TestStateLagging(t *testing.T) {
	s := newState("me", "", RoleServer, 1, time.Minute)
	s.applyHeartbeat(&heartbeat{Node: "a", Role: RoleAgent, Epoch: 5, Beat: 1, ObsSeq: 2}, t0)
	if l := s.lagging(t0, time.Second, 2*time.Second); len(l) != 0 {
		t.Errorf("lagging at once: %v", l)
	}
	if l := s.lagging(t0.Add(time.Second), time.Second, 2*time.Second); len(l) != 1 || l[0].node != "a" || l[0].asked != 0 {
		t.Errorf("lagging after 1s: %v", l)
	}
	if l := s.lagging(t0.Add(2*time.Second), time.Second, 2*time.Second); len(l) != 0 {
		t.Errorf("asked again within 2s: %v", l)
	}
	if l := s.lagging(t0.Add(3*time.Second), time.Second, 2*time.Second); len(l) != 1 || l[0].asked != 1 {
		t.Errorf("asked again after 2s: %v", l)
	}
	s.applyObservations(&observations{Node: "a", Epoch: 5, Seq: 1}, t0)
	s.applyObservations(&observations{Node: "a", Epoch: 5, Seq: 2}, t0)
	if l := s.lagging(t0.Add(9*time.Second), time.Second, 2*time.Second); len(l) != 0 || s.peers["a"].asks != 0 {
		t.Errorf("lagging once synced: %v", l)
	}
	// A catalog announced and not received.
	s.applyHeartbeat(&heartbeat{Node: "srv", Role: RoleServer, Epoch: 5, Beat: 1, CatEpoch: 5, CatSeq: 1}, t0)
	s.lagging(t0.Add(10*time.Second), time.Second, 2*time.Second)
	if l := s.lagging(t0.Add(11*time.Second), time.Second, 2*time.Second); len(l) != 1 || l[0].node != "srv" {
		t.Errorf("catalog: %v", l)
	}
}
