package gossip_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

func endpointsOf(n int, ip string) records.Changes {
	var c records.Changes
	for i := range n {
		c.Create = append(c.Create, records.Endpoint{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: "A",
			Targets: []string{ip}, Labels: map[string]string{"owner": "eu", "resource": fmt.Sprintf("ingress/default/app%d", i)},
			ProviderSpecific: []records.Property{{Name: records.PropTier, Value: "1"}}})
	}
	return c
}

func openStore(t *testing.T, dir string) *records.Store {
	t.Helper()
	s, err := records.Open(dir, records.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// hasHead reports whether n holds owner's records at head h.
func hasHead(n *gossip.Node, owner string, h records.Head) bool {
	return n.Records().Head(owner) == h
}

func syncRecords(t *testing.T, n *gossip.Node, st *records.Store, owners ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.SyncRecords(ctx, st, owners...); err != nil {
			t.Errorf("sync %s: %v", n.Name(), err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func apply(t *testing.T, st *records.Store, c records.Changes) records.Change {
	t.Helper()
	ch, err := st.Apply("eu", c)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestRecordsReplicate(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	s2 := start(t, testConfig(t, "s2", "dc2", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	a2 := start(t, testConfig(t, "a2", "us", gossip.RoleAgent, kf, "test"))
	join(t, s2, s1)
	join(t, a1, s1)
	join(t, a2, s2)
	servers := []*gossip.Node{s1, s2}
	waitFor(t, 5*time.Second, "4 members", func() bool { return s1.Stats().Members == 4 && a2.Stats().Members == 4 })

	// The agent a1 is the owner's writer: its webhook stores, and the node
	// sends the change on.
	st := openStore(t, t.TempDir())
	syncRecords(t, a1, st, "eu")
	ch, cancel := s2.SubscribeRecords()
	defer cancel()
	big := apply(t, st, endpointsOf(40, "192.0.2.10")) // too large to gossip: direct
	d := waitFor(t, 5*time.Second, "the records on every server", func() bool {
		return hasHead(s1, "eu", big.To) && hasHead(s2, "eu", big.To)
	})
	t.Logf("a change of %d records reached every server in %v", big.Len(), d)
	select {
	case <-ch:
	default:
		t.Error("no record notification on s2")
	}
	// One record: gossiped, relayed by the agent that keeps no records.
	small := apply(t, st, records.Changes{Delete: []records.Endpoint{{DNSName: "app0.gslb.example.com", RecordType: "A"}}})
	waitFor(t, 5*time.Second, "the delete on every server", func() bool {
		return hasHead(s1, "eu", small.To) && hasHead(s2, "eu", small.To)
	})
	for _, n := range servers {
		if got := n.Records().Len("eu"); got != 39 {
			t.Errorf("%s holds %d records", n.Name(), got)
		}
	}
	if n := len(a2.Records().Owners()); n != 0 {
		t.Errorf("an agent without a store keeps %d owners", n)
	}

	// A late joiner learns on join what it lacks, and has it when
	// WaitRecords returns.
	s3 := start(t, testConfig(t, "s3", "dc3", gossip.RoleServer, kf, "test"))
	join(t, s3, s2)
	if !s3.WaitRecords(5*time.Second) || !hasHead(s3, "eu", small.To) {
		t.Error("late joiner lacks the records after Join and WaitRecords")
	}
	if st := s3.Stats(); st.StatesGarbled != 0 {
		t.Errorf("garbled states: %d", st.StatesGarbled)
	}
}

func TestRecordsSurviveRestartOfEveryServer(t *testing.T) {
	kf := keyFile(t, newKey(t))
	dirs := []string{filepath.Join(t.TempDir(), "s1"), filepath.Join(t.TempDir(), "s2")}
	writerDir := t.TempDir()

	// Round 1: the writer publishes; the servers store what they learn.
	w := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	wst := openStore(t, writerDir)
	syncRecords(t, w, wst, "eu")
	var servers []*gossip.Node
	var stores []*records.Store
	for i, dir := range dirs {
		n := start(t, testConfig(t, fmt.Sprintf("s%d", i+1), "dc", gossip.RoleServer, kf, "test"))
		join(t, n, w)
		st := openStore(t, dir)
		syncRecords(t, n, st)
		servers, stores = append(servers, n), append(stores, st)
	}
	waitFor(t, 5*time.Second, "3 members", func() bool { return w.Stats().Members == 3 })
	apply(t, wst, endpointsOf(5, "192.0.2.20"))
	last := apply(t, wst, records.Changes{Delete: []records.Endpoint{{DNSName: "app0.gslb.example.com", RecordType: "A"}}})
	waitFor(t, 5*time.Second, "the records in every server's store", func() bool {
		for _, st := range stores {
			if st.Head("eu") != last.To {
				return false
			}
		}
		return true
	})

	// Every node goes down, the writer for good.
	w.Shutdown()
	wst.Close()
	for i := range servers {
		servers[i].Shutdown()
		stores[i].Close()
	}

	// The servers come back from their data directories alone, and a new
	// server with an empty directory learns the records from them.
	var back []*gossip.Node
	for i, dir := range dirs {
		n := start(t, testConfig(t, fmt.Sprintf("s%d", i+1), "dc", gossip.RoleServer, kf, "test"))
		if i > 0 {
			join(t, n, back[0])
		}
		syncRecords(t, n, openStore(t, dir))
		back = append(back, n)
	}
	fresh := start(t, testConfig(t, "s9", "dc", gossip.RoleServer, kf, "test"))
	freshStore := openStore(t, t.TempDir())
	syncRecords(t, fresh, freshStore)
	join(t, fresh, back[1])
	waitFor(t, 10*time.Second, "the records on the new server, on disk", func() bool {
		return freshStore.Head("eu") == last.To
	})
	if got := freshStore.State().Len("eu"); got != 4 {
		t.Errorf("new server stored %d records", got)
	}
}

// recordBytes sums what nodes sent: gossip messages and direct and
// push/pull state.
func recordBytes(nodes []*gossip.Node) uint64 {
	var n uint64
	for _, node := range nodes {
		s := node.Stats()
		n += s.SentBytes + s.StateSent
	}
	return n
}

// TestRecordsCostPerChange: a one-record change to an owner of 20,000
// records costs bytes on the wire in proportion to the change, not to
// the owner; and a server cut off while changes happen catches up with
// the changes it missed, not the owner whole.
func TestRecordsCostPerChange(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 records")
	}
	kf := keyFile(t, newKey(t))
	wcfg, wcut := gossip.WithCut(testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	w := start(t, wcfg)
	wst := openStore(t, t.TempDir())
	syncRecords(t, w, wst, "eu")
	nodes := []*gossip.Node{w}
	cuts := []*gossip.Cut{wcut}
	for i := range 3 {
		cfg, cut := gossip.WithCut(testConfig(t, fmt.Sprintf("s%d", i+1), "dc", gossip.RoleServer, kf, "test"))
		n := start(t, cfg)
		join(t, n, w)
		nodes, cuts = append(nodes, n), append(cuts, cut)
	}
	servers := nodes[1:]
	waitFor(t, 5*time.Second, "4 members", func() bool { return w.Stats().Members == 4 && servers[2].Stats().Members == 4 })
	bulk := apply(t, wst, endpointsOf(20000, "192.0.2.30"))
	whole := wst.State().Size("eu")
	waitFor(t, 20*time.Second, "20,000 records on every server", func() bool {
		for _, s := range servers {
			if !hasHead(s, "eu", bulk.To) {
				return false
			}
		}
		return true
	})
	// quiet waits until the broadcast queues are empty and no more than
	// background traffic flows (no transfer still under way).
	quiet := func() {
		waitFor(t, 20*time.Second, "the cluster quiet", func() bool {
			for _, n := range nodes {
				if n.Stats().Queued > 0 {
					return false
				}
			}
			b := recordBytes(nodes)
			time.Sleep(300 * time.Millisecond)
			return recordBytes(nodes)-b < 8<<10
		})
	}
	quiet()

	// Background traffic (heartbeats, push/pull digests) over a second,
	// to tell it apart.
	b0 := recordBytes(nodes)
	time.Sleep(time.Second)
	background := recordBytes(nodes) - b0

	b0 = recordBytes(nodes)
	t0 := time.Now()
	one := apply(t, wst, records.Changes{UpdateNew: []records.Endpoint{{DNSName: "app7.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.31"},
		Labels: map[string]string{"owner": "eu", "resource": "ingress/default/app7"}, ProviderSpecific: []records.Property{{Name: records.PropTier, Value: "1"}}}}})
	d := waitFor(t, 5*time.Second, "the one-record change on every server", func() bool {
		for _, s := range servers {
			if !hasHead(s, "eu", one.To) {
				return false
			}
		}
		return true
	})
	quiet()
	time.Sleep(time.Second - min(time.Second, time.Since(t0)))
	spent := recordBytes(nodes) - b0
	t.Logf("owner of %d records (%d bytes); a one-record change (%d bytes) reached 3 servers in %v; the cluster sent %d bytes meanwhile, %d in a quiet second",
		bulk.Len(), whole, one.Size(), d, spent, background)
	if spent > background+32<<10 {
		t.Errorf("a one-record change cost %d bytes on the wire (%d in a quiet second); the owner is %d bytes", spent, background, whole)
	}

	// s3 is cut off; 50 changes happen; once healed it catches up by
	// changes.
	var others []string
	for i, n := range nodes[:3] {
		others = append(others, n.Addr())
		cuts[i].Block(servers[2].Addr())
	}
	cuts[3].Block(others...)
	var lastCh records.Change
	for i := range 50 {
		lastCh = apply(t, wst, records.Changes{Delete: []records.Endpoint{{DNSName: fmt.Sprintf("app%d.gslb.example.com", 100+i), RecordType: "A"}}})
	}
	waitFor(t, 5*time.Second, "the changes on s1 and s2", func() bool {
		return hasHead(servers[0], "eu", lastCh.To) && hasHead(servers[1], "eu", lastCh.To)
	})
	if hasHead(servers[2], "eu", lastCh.To) {
		t.Fatal("s3 got the changes through the cut")
	}
	quiet()
	b0 = recordBytes(nodes)
	t0 = time.Now()
	for _, c := range cuts {
		c.Heal()
	}
	d = waitFor(t, 20*time.Second, "s3 caught up", func() bool { return hasHead(servers[2], "eu", lastCh.To) })
	spent = recordBytes(nodes) - b0
	t.Logf("s3, cut off for 50 changes, caught up %v after the cut healed; the cluster sent %d bytes meanwhile", d, spent)
	if limit := uint64(time.Since(t0).Seconds()+1)*background + 64<<10; spent > limit {
		t.Errorf("catching up on 50 changes cost %d bytes (over %d); the owner is %d bytes", spent, limit, whole)
	}
	if got := servers[2].Records().Len("eu"); got != 20000-50 {
		t.Errorf("s3 holds %d records", got)
	}
}

// TestRecordsDoNotHoldUpObservations: a server whose record store is slow
// (its applier holds the record lock across an fsync, or an owner
// installed whole) still takes observations at once while gossiped record
// changes keep coming: they share its receive loop, which waited for that
// lock, and in a storm of record changes its queue overflowed and dropped
// observations with them. The records follow once the store is free.
func TestRecordsDoNotHoldUpObservations(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	s2 := start(t, testConfig(t, "s2", "dc2", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	join(t, s2, s1)
	join(t, a1, s1)
	waitFor(t, 5*time.Second, "3 members", func() bool { return s1.Stats().Members == 3 && s2.Stats().Members == 3 })
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.1", "http://192.0.2.1/healthz")}
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}
	states := map[gossip.TargetID]health.State{cat[0].ID: health.Up}
	a1.PublishObservations(states)
	waitFor(t, 5*time.Second, "s2 has a1's observation", func() bool { return seesStates(s2, "a1", states) })

	st := openStore(t, t.TempDir())
	syncRecords(t, s1, st, "eu")
	release := gossip.HoldRecords(s2)
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	var last records.Change
	for i := range 5 {
		last = apply(t, st, records.Changes{Create: []records.Endpoint{{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: "A", Targets: []string{"192.0.2.7"}}}})
		time.Sleep(100 * time.Millisecond) // gossiped to s2 meanwhile
	}
	states[cat[0].ID] = health.Down
	a1.PublishObservations(states)
	d := waitFor(t, 3*time.Second, "s2 has a1's change while its record store is busy", func() bool { return seesStates(s2, "a1", states) })
	t.Logf("observation reached s2 in %v with its record lock held", d.Round(time.Millisecond))
	release()
	held = false
	waitFor(t, 5*time.Second, "s2 has the records once its store is free", func() bool { return hasHead(s2, "eu", last.To) })
}

// A burst of one-record writes reaches a server as a few deltas of many
// changes, not a TCP connection each (a storm of 1,800 a second held 23
// MB of a server's heap in connection buffers), while a write after a
// quiet spell still goes at once.
func TestRecordBurstGoesAsFewDeltas(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	join(t, a1, s1)
	waitFor(t, 5*time.Second, "2 members", func() bool { return s1.Stats().Members == 2 && a1.Stats().Members == 2 })
	st := records.Memory(records.Options{})
	syncRecords(t, a1, st, "eu")
	first := apply(t, st, records.Changes{Create: []records.Endpoint{{DNSName: "app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}}}})
	waitFor(t, 5*time.Second, "s1 has the first write", func() bool { return hasHead(s1, "eu", first.To) })

	const burst = 300
	before := a1.Stats().DirectSent
	var last records.Change
	for i := range burst {
		last = apply(t, st, records.Changes{Create: []records.Endpoint{{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: "A", Targets: []string{"192.0.2.7"}}}})
		time.Sleep(time.Millisecond) // a writer's pace: an fsync each
	}
	waitFor(t, 10*time.Second, "s1 has the burst", func() bool { return hasHead(s1, "eu", last.To) })
	msgs := a1.Stats().DirectSent - before
	t.Logf("%d writes went as %d direct messages", burst, msgs)
	if msgs > burst/5 {
		t.Errorf("%d one-record writes went to the server as %d direct messages; want a few deltas", burst, msgs)
	}

	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	one := apply(t, st, records.Changes{Create: []records.Endpoint{{DNSName: "late.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.9"}}}})
	d := waitFor(t, 5*time.Second, "s1 has a write after a quiet spell", func() bool { return hasHead(s1, "eu", one.To) })
	t.Logf("a write after a quiet spell reached the server in %v", time.Since(t0).Round(time.Millisecond))
	if d > time.Second {
		t.Errorf("a write after a quiet spell took %v", d)
	}
}
