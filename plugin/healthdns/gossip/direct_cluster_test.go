package gossip_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// manyTargets builds n catalog targets, 10.x.y.z with a TCP check each.
func manyTargets(t *testing.T, n int) []gossip.CatalogTarget {
	t.Helper()
	out := make([]gossip.CatalogTarget, n)
	for i := range out {
		a := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		out[i] = catalogTarget(t, a, "tcp "+a+":80")
	}
	return out
}

func allUp(cat []gossip.CatalogTarget) map[gossip.TargetID]health.State {
	m := make(map[gossip.TargetID]health.State, len(cat))
	for _, c := range cat {
		m[c.ID] = health.Up
	}
	return m
}

func waitMembers(t *testing.T, want int, nodes ...*gossip.Node) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%d live members everywhere", want), func() bool {
		for _, n := range nodes {
			if n.Stats().Members != want {
				return false
			}
		}
		return true
	})
}

// TestBulkChangesGoDirect: a change too large for a couple of packets
// (a catalog of 3,000 targets, an agent's first 3,000 observations, then
// a burst of 1,000 changes) reaches every member directly, in well under
// a second, and nobody relays it.
func TestBulkChangesGoDirect(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	s2 := start(t, testConfig(t, "s2", "dc2", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	join(t, s2, s1)
	join(t, a1, s1)
	nodes := []*gossip.Node{s1, s2, a1}
	waitMembers(t, 3, nodes...)

	cat := manyTargets(t, 3000)
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 5*time.Second, "the catalog everywhere", func() bool { return hasCatalog(a1, cat) && hasCatalog(s2, cat) })
	t.Logf("catalog of %d targets reached 2 members in %v", len(cat), d)
	// Publishing it again is no news.
	sent := s1.Stats().DirectSent
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}

	states := allUp(cat)
	a1.PublishObservations(states)
	converged := func() bool { return seesStates(s1, "a1", states) && seesStates(s2, "a1", states) }
	d = waitFor(t, 5*time.Second, "3,000 observations everywhere", converged)
	t.Logf("%d observations reached 2 members in %v", len(states), d)

	for _, c := range cat[:1000] {
		states[c.ID] = health.Down
	}
	a1.PublishObservations(states)
	d = waitFor(t, 5*time.Second, "a burst of 1,000 changes everywhere", converged)
	t.Logf("a burst of 1,000 changes reached 2 members in %v", d)
	if d > 2*time.Second {
		t.Errorf("the burst took %v", d)
	}

	if got := s1.Stats().DirectSent - sent; got != 0 {
		t.Errorf("an unchanged catalog went out again (%d direct messages)", got)
	}
	if st := a1.Stats(); st.DirectSent < 4 {
		t.Errorf("a1 sent %d direct messages, want 2 changes × 2 members", st.DirectSent)
	}
	for _, n := range nodes {
		st := n.Stats()
		// Nothing of it was gossiped or relayed: the queues hold
		// heartbeats, three nodes' worth.
		if st.Queued > 10 {
			t.Errorf("%s: %d broadcasts queued", n.Name(), st.Queued)
		}
		if st.Garbled+st.StatesGarbled+st.Oversized+st.Dropped+st.DirectFailed+st.DirectDropped > 0 {
			t.Errorf("%s: %+v", n.Name(), st)
		}
	}
}

// TestRepairAfterMissedBulk: a member that cannot be reached when a bulk
// change goes out learns from heartbeats (relayed by others) that it
// lacks it, and asks for it, long before the next push/pull.
func TestRepairAfterMissedBulk(t *testing.T) {
	kf := keyFile(t, newKey(t))
	cfg := func(name, obs string, role gossip.Role) gossip.Config {
		c := testConfig(t, name, obs, role, kf, "test")
		c.PushPullInterval = time.Hour // only the repair path can help
		return c
	}
	s1 := start(t, cfg("s1", "dc1", gossip.RoleServer))
	a1cfg, a1cut := gossip.WithCut(cfg("a1", "eu", gossip.RoleAgent))
	a1 := start(t, a1cfg)
	s2cfg, s2cut := gossip.WithCut(cfg("s2", "dc2", gossip.RoleServer))
	s2 := start(t, s2cfg)
	join(t, a1, s1)
	join(t, s2, s1)
	waitMembers(t, 3, s1, a1, s2)
	cat := manyTargets(t, 500)
	states := allUp(cat)
	a1.PublishObservations(states) // a bulk change

	waitFor(t, 5*time.Second, "the first change everywhere", func() bool { return seesStates(s1, "a1", states) && seesStates(s2, "a1", states) })
	// a1 and s2 cannot reach each other; s1 reaches both, so memberlist
	// still holds them alive (indirect probes).
	a1cut.Block(s2.Addr())
	s2cut.Block(a1.Addr())
	for _, c := range cat[:300] {
		states[c.ID] = health.Down
	}
	a1.PublishObservations(states)
	waitFor(t, 5*time.Second, "s1 has the second change", func() bool { return seesStates(s1, "a1", states) })
	if seesStates(s2, "a1", states) {
		t.Fatal("s2 has the change through the cut")
	}
	d := waitFor(t, 10*time.Second, "s2 repaired", func() bool { return seesStates(s2, "a1", states) })
	t.Logf("s2 got the change it missed in %v (a1 direct sends failed: %d)", d, a1.Stats().DirectFailed)
	if v, _ := view(s2, "a1"); !v.Synced {
		t.Error("s2's view of a1 not synced")
	}
}

// TestPushPullSendsDigests: after join, push/pull carries versions, not
// the state: with nothing changing, a node sends a few hundred bytes a
// second, not its whole state at every exchange.
func TestPushPullSendsDigests(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	a2 := start(t, testConfig(t, "a2", "us", gossip.RoleAgent, kf, "test"))
	cat := manyTargets(t, 2000)
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}
	join(t, a1, s1)
	join(t, a2, s1)
	a1.PublishObservations(allUp(cat))
	a2.PublishObservations(allUp(cat))
	waitFor(t, 5*time.Second, "every view everywhere", func() bool {
		for _, n := range []*gossip.Node{s1, a1, a2} {
			if !seesStates(n, "a1", allUp(cat)) || !seesStates(n, "a2", allUp(cat)) || !hasCatalog(n, cat) {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	before := s1.Stats()
	time.Sleep(3 * time.Second) // push/pull every second, from each node
	after := s1.Stats()
	rate := float64(after.StateSent+after.StateRecv-before.StateSent-before.StateRecv) / 3
	t.Logf("s1 at rest: %.0f bytes/s of push/pull, %d states merged", rate, after.StatesMerged-before.StatesMerged)
	if after.StatesMerged == before.StatesMerged {
		t.Error("no push/pull in 3s")
	}
	if rate > 4000 {
		t.Errorf("%.0f bytes/s of push/pull at rest; the whole state would be ~30 KB an exchange", rate)
	}
}

// TestPartitionHeals: two halves of two nodes each that lost each other
// (each declared the other dead, and memberlist stopped gossiping to
// them) find each other again once the network is back, and what each
// half published meanwhile crosses over.
func TestPartitionHeals(t *testing.T) {
	kf := keyFile(t, newKey(t))
	var nodes []*gossip.Node
	var cuts []*gossip.Cut
	for i, name := range []string{"a1", "a2", "b1", "b2"} {
		cfg := testConfig(t, name, name, gossip.RoleAgent, kf, "test")
		cfg.ProbeInterval = 100 * time.Millisecond // dead sooner, gossip to the dead stops after 3s
		cfg, cut := gossip.WithCut(cfg)
		n := start(t, cfg)
		if i > 0 {
			join(t, n, nodes[0])
		}
		nodes, cuts = append(nodes, n), append(cuts, cut)
	}
	waitMembers(t, 4, nodes...)

	a, b := nodes[:2], nodes[2:]
	for i := range nodes {
		for _, o := range nodes {
			if (i < 2) != (o == a[0] || o == a[1]) {
				cuts[i].Block(o.Addr())
			}
		}
	}
	waitMembers(t, 2, nodes...)
	dead := func(n *gossip.Node, name string) bool {
		m, ok := member(n, name)
		return ok && m.State == gossip.MemberDead
	}
	waitFor(t, 10*time.Second, "each half sees the other dead", func() bool {
		return dead(a[0], "b1") && dead(a[0], "b2") && dead(b[0], "a1") && dead(b[0], "a2")
	})
	// Past memberlist's gossip to the dead (30 probe intervals), only a
	// reconnect can bring the halves together.
	time.Sleep(3500 * time.Millisecond)
	if st := a[0].Stats(); st.Members != 2 {
		t.Fatalf("a1 sees %d live members during the partition", st.Members)
	}
	ids := manyTargets(t, 2)
	inA := map[gossip.TargetID]health.State{ids[0].ID: health.Up}
	inB := map[gossip.TargetID]health.State{ids[1].ID: health.Down}
	a[0].PublishObservations(inA)
	b[0].PublishObservations(inB)

	for _, c := range cuts {
		c.Heal()
	}
	d := waitFor(t, 15*time.Second, "one cluster of 4 again", func() bool {
		for _, n := range nodes {
			if n.Stats().Members != 4 {
				return false
			}
		}
		return true
	})
	reconnects := uint64(0)
	for _, n := range nodes {
		reconnects += n.Stats().Reconnects
	}
	t.Logf("the halves merged %v after the network healed (%d reconnects)", d, reconnects)
	waitFor(t, 5*time.Second, "what each half published meanwhile, everywhere", func() bool {
		for _, n := range nodes {
			if !seesStates(n, "a1", inA) || !seesStates(n, "b1", inB) {
				return false
			}
		}
		return true
	})
}

// TestObservedDatesViews: once an observer marks its rounds with
// Observed, its view is dated by them, not by its heartbeats: when it
// stops observing, its view ages everywhere while it stays alive.
func TestObservedDatesViews(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	join(t, a1, s1)
	cat := manyTargets(t, 3)
	states := allUp(cat)
	a1.PublishObservations(states)
	a1.Observed()
	waitFor(t, 5*time.Second, "s1 sees a1", func() bool { return seesStates(s1, "a1", states) })
	observed := time.Now()
	// Rounds go on: the view stays fresh.
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		a1.Observed()
	}
	waitFor(t, 2*time.Second, "a fresh view", func() bool {
		v, _ := view(s1, "a1")
		return time.Since(v.LastHeard) < 700*time.Millisecond
	})
	// Rounds stop; heartbeats go on.
	stopped := time.Now()
	time.Sleep(1500 * time.Millisecond)
	v, _ := view(s1, "a1")
	if !v.Alive {
		t.Fatal("a1 not alive")
	}
	if v.LastHeard.After(stopped.Add(200 * time.Millisecond)) {
		t.Errorf("a1's view dated %v after its last round, with no round since", v.LastHeard.Sub(stopped))
	}
	if v.LastHeard.Before(observed) {
		t.Errorf("a1's view dated before its rounds")
	}
	// A round dates it again, as does a publication.
	a1.Observed()
	waitFor(t, 2*time.Second, "a fresh view after a round", func() bool {
		v, _ := view(s1, "a1")
		return time.Since(v.LastHeard) < 700*time.Millisecond
	})
}

// TestPausedObserverAges: an observer that never calls Observed dates its
// view at every heartbeat, except after its process was paused: then its
// pre-pause view stays old until it publishes or its probes had time to
// run, though it heartbeats at once.
func TestPausedObserverAges(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	join(t, a1, s1)
	// Probe interval 1s + timeout 0.5s: a1's probes have all run 1.5s
	// after it resumes.
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")}
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}
	states := allUp(cat)
	a1.PublishObservations(states)
	waitFor(t, 5*time.Second, "s1 sees a1 and a1 the catalog", func() bool { return seesStates(s1, "a1", states) && hasCatalog(a1, cat) })
	time.Sleep(time.Second)
	if v, _ := view(s1, "a1"); time.Since(v.LastHeard) > 800*time.Millisecond {
		t.Fatalf("a1's view is %v old with heartbeats every 300ms", time.Since(v.LastHeard))
	}

	// a1's process "resumes" after 10s: its clock jumps. (s1 heard it
	// all along, so its view of a1 is as of the jump, not 10s old: it
	// must not move past it.)
	paused := time.Now()
	a1.Skip(10 * time.Second)
	waitFor(t, 2*time.Second, "a1 noticed", func() bool { return a1.Stats().Stalls == 1 })
	beat := a1.Stats().SentMsgs
	waitFor(t, 2*time.Second, "a1 heartbeats again", func() bool { return a1.Stats().SentMsgs > beat+1 })
	time.Sleep(300 * time.Millisecond)
	v, _ := view(s1, "a1")
	// A heartbeat in flight at the pause may date it a few milliseconds
	// past it (seen under load); one sent after the resume would date it
	// 300ms or more past.
	if v.LastHeard.After(paused.Add(100 * time.Millisecond)) {
		t.Errorf("a1's view dated %v after the pause; its heartbeats made it fresh", v.LastHeard.Sub(paused))
	}
	if !v.Alive {
		t.Error("a1 not alive")
	}
	// Its probes had time to run: fresh again.
	waitFor(t, 3*time.Second, "a1's view fresh again", func() bool {
		v, _ := view(s1, "a1")
		return time.Since(v.LastHeard) < time.Second
	})

	// Another pause; this time a1 publishes soon after: fresh at once.
	a1.Skip(10 * time.Second)
	waitFor(t, 2*time.Second, "a1 noticed", func() bool { return a1.Stats().Stalls == 2 })
	a1.PublishObservations(states)
	waitFor(t, time.Second, "a1's view fresh after it published", func() bool {
		v, _ := view(s1, "a1")
		return time.Since(v.LastHeard) < 700*time.Millisecond
	})
}
