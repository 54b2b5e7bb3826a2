package gossip_test

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// logBuf keeps log lines for a test to look for.
type logBuf struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *logBuf) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(b)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

func edgeClient(t *testing.T, cfg gossip.EdgeConfig) *gossip.EdgeClient {
	t.Helper()
	if cfg.LogOutput == nil {
		cfg.LogOutput = logTo(t)
	}
	cfg.HeartbeatInterval = 300 * time.Millisecond
	c, err := gossip.NewEdgeClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(false) })
	return c
}

// TestEdgeClient: a client that only connects out gets the catalog, its
// observations reach every server under its own name, its owner's record
// changes are acknowledged once a server stored them and reach every
// server; when its server goes it moves to the other, and a client with
// another key is refused and changes nothing.
func TestEdgeClient(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	s2 := start(t, testConfig(t, "s2", "dc2", gossip.RoleServer, kf, "test"))
	// A gossip member agent beside the edge client: both kinds mix.
	m1 := start(t, testConfig(t, "m1", "us", gossip.RoleAgent, kf, "test"))
	join(t, s2, s1)
	join(t, m1, s1)
	waitMembers(t, 3, s1, s2, m1)
	syncRecords(t, s1, records.Memory(records.Options{}))
	syncRecords(t, s2, records.Memory(records.Options{}))
	a1, err := s1.ServeEdge("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s2.ServeEdge("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.10", "tcp 192.0.2.10:80"), catalogTarget(t, "192.0.2.11", "tcp 192.0.2.11:80")}
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}

	c := edgeClient(t, gossip.EdgeConfig{Name: "edge1", Observer: "eu", Servers: []string{a1.String(), a2.String()},
		KeyFile: kf, Label: "test", Probes: true, Owner: "eu"})
	st := records.Memory(records.Options{})
	c.SyncRecords(st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the catalog at the client", func() bool { return len(c.Catalog()) == 2 })

	states := map[gossip.TargetID]health.State{cat[0].ID: health.Up, cat[1].ID: health.Down}
	c.PublishObservations(states)
	c.ObservedAt(time.Now())
	alive := func(n *gossip.Node) bool {
		v, ok := view(n, "edge1")
		return ok && v.Alive && v.Observer == "eu" && seesStates(n, "edge1", states)
	}
	waitFor(t, 5*time.Second, "the client's observations on both servers", func() bool { return alive(s1) && alive(s2) })
	m1.PublishObservations(states)
	waitFor(t, 5*time.Second, "the member agent's observations beside the client's, and the client's at the member", func() bool {
		v, ok := view(s2, "m1")
		return ok && v.Alive && seesStates(s2, "m1", states) && alive(s1) && alive(m1)
	})

	// Why it sees a target down reaches every server too.
	why := map[gossip.TargetID]string{cat[1].ID: "tcp 127.0.0.1:9: connect: connection refused"}
	c.PublishReasons(why)
	hasWhy := func(n *gossip.Node) bool { v, ok := view(n, "edge1"); return ok && maps.Equal(v.Reasons, why) }
	waitFor(t, 5*time.Second, "the client's reasons on both servers", func() bool { return hasWhy(s1) && hasWhy(s2) })

	ch := apply(t, st, endpointsOf(3, "192.0.2.20"))
	if err := c.Stored(ctx, ch); err != nil {
		t.Fatal(err)
	}
	first := c.Server()
	var at, other *gossip.Node = s1, s2
	if first == a2.String() {
		at, other = s2, s1
	}
	if h := at.Records().Head("eu"); h != ch.To {
		t.Fatalf("acknowledged, but the server holds %v, want %v", h, ch.To)
	}
	waitFor(t, 5*time.Second, "the records on the other server", func() bool { return hasHead(other, "eu", ch.To) })

	// The server goes: the client moves to the other, and its views stay.
	at.Shutdown()
	waitFor(t, 5*time.Second, "the client on the other server", func() bool { s := c.Server(); return s != "" && s != first })
	states[cat[1].ID] = health.Up
	c.PublishObservations(states)
	waitFor(t, 5*time.Second, "the change on the remaining server", func() bool { return alive(other) })
	ch = apply(t, st, records.Changes{Delete: []records.Endpoint{{DNSName: "app0.gslb.example.com", RecordType: "A"}}})
	if err := c.Stored(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if h := other.Records().Head("eu"); h != ch.To {
		t.Fatalf("acknowledged, but the server holds %v, want %v", h, ch.To)
	}

	// Gone without a word: its view ages into unknown like a silent
	// member's, within its silence window.
	c.Close(false)
	gone := time.Now()
	waitFor(t, 5*time.Second, "the client's view no longer alive", func() bool {
		v, ok := view(other, "edge1")
		return ok && !v.Alive
	})
	if v, _ := view(other, "edge1"); time.Since(gone) < v.Silence/2 {
		t.Fatalf("the view went unknown %v after the client, well within its silence %v", time.Since(gone), v.Silence)
	}

	// A client restarted with an empty store gets its owner's records back.
	c2 := edgeClient(t, gossip.EdgeConfig{Name: "edge1", Observer: "eu", Servers: []string{a1.String(), a2.String()},
		KeyFile: kf, Label: "test", Probes: true, Owner: "eu"})
	st2 := records.Memory(records.Options{})
	c2.SyncRecords(st2)
	if err := c2.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if h := st2.Head("eu"); h != ch.To || st2.State().Len("eu") != 2 {
		t.Fatalf("restarted client has %v (%d records), want %v (2)", h, st2.State().Len("eu"), ch.To)
	}
	// Leaving: its view counts as unknown at once.
	c2.PublishObservations(states)
	waitFor(t, 5*time.Second, "the restarted client's observations", func() bool { return alive(other) })
	c2.Close(true)
	waitFor(t, 2*time.Second, "the client left", func() bool {
		v, ok := view(other, "edge1")
		return ok && v.State == gossip.MemberLeft && !v.Alive
	})

	// Another key: refused, logged on both ends, nothing changes.
	var clientLog logBuf
	bad := edgeClient(t, gossip.EdgeConfig{Name: "intruder", Servers: []string{a1.String(), a2.String()},
		KeyFile: keyFile(t, newKey(t)), Label: "test", Probes: true, LogOutput: &clientLog})
	bad.PublishObservations(states)
	time.Sleep(time.Second)
	if bad.Server() != "" || len(bad.Catalog()) != 0 {
		t.Fatalf("a client with another key connected to %q, got %d targets", bad.Server(), len(bad.Catalog()))
	}
	if _, ok := view(other, "intruder"); ok {
		t.Fatal("the server holds a view of a client with another key")
	}
	if !strings.Contains(clientLog.String(), "does not hold the gossip key") {
		t.Fatalf("the refused client did not say why: %s", clientLog.String())
	}
}

// TestEdgeClientReasons: why an edge agent reports a target down reaches
// the server it connects to and the servers that server gossips with, as
// a member agent's reasons do.
func TestEdgeClientReasons(t *testing.T) {
	kf := keyFile(t, newKey(t))
	cfg := func(name, obs string) gossip.Config {
		c := testConfig(t, name, obs, gossip.RoleServer, kf, "test")
		c.BindAddr = "127.0.6.1"
		return c
	}
	s1 := start(t, cfg("s1", "dc1"))
	s2 := start(t, cfg("s2", "dc2"))
	join(t, s2, s1)
	waitMembers(t, 2, s1, s2)
	addr, err := s1.ServeEdge("127.0.6.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	down := catalogTarget(t, "192.0.2.30", "tcp 192.0.2.30:80")
	up := catalogTarget(t, "192.0.2.31", "tcp 192.0.2.31:80")
	if err := s1.PublishCatalog([]gossip.CatalogTarget{down, up}); err != nil {
		t.Fatal(err)
	}
	c := edgeClient(t, gossip.EdgeConfig{Name: "edge1", Observer: "eu", Servers: []string{addr.String()},
		KeyFile: kf, Label: "test", Probes: true})
	waitFor(t, 5*time.Second, "the catalog at the client", func() bool { return len(c.Catalog()) == 2 })
	states := map[gossip.TargetID]health.State{down.ID: health.Down, up.ID: health.Up}
	c.PublishObservations(states)
	c.ObservedAt(time.Now())
	waitFor(t, 5*time.Second, "the client's observations on both servers", func() bool {
		return seesStates(s1, "edge1", states) && seesStates(s2, "edge1", states)
	})
	refused := "tcp 192.0.2.30:80: dial tcp 192.0.2.30:80: connect: connection refused"
	c.PublishReasons(map[gossip.TargetID]string{down.ID: refused})
	want := map[gossip.TargetID]string{down.ID: refused}
	for _, n := range []*gossip.Node{s1, s2} {
		waitFor(t, 5*time.Second, n.Name()+" has the edge client's reason", func() bool {
			v, ok := view(n, "edge1")
			return ok && maps.Equal(v.Reasons, want)
		})
	}
}

// TestEdgeAckOnlyDurable: a server that will keep records in a data
// directory does not acknowledge an edge client's write before that
// store is open (a cold start, a disk that cannot open yet): the
// acknowledgement would come from memory, and a crash would lose it.
// Once the store is open, the next write is acknowledged and both are on
// disk.
func TestEdgeAckOnlyDurable(t *testing.T) {
	kf := keyFile(t, newKey(t))
	cfg := testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test")
	cfg.DurableRecords = true
	s1 := start(t, cfg)
	a1, err := s1.ServeEdge("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := edgeClient(t, gossip.EdgeConfig{Name: "edge1", Observer: "eu", Servers: []string{a1.String()}, KeyFile: kf, Label: "test", Owner: "eu"})
	st := records.Memory(records.Options{})
	c.SyncRecords(st)
	waitFor(t, 5*time.Second, "the client connected", func() bool { return c.Server() != "" })

	early := apply(t, st, endpointsOf(2, "192.0.2.20"))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := c.Stored(ctx, early); err == nil {
		t.Fatal("a write was acknowledged before the server's data directory store was open")
	}

	dir := t.TempDir()
	syncRecords(t, s1, openStore(t, dir))
	later := apply(t, st, endpointsOf(3, "192.0.2.20"))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := c.Stored(ctx2, later); err != nil {
		t.Fatalf("once the store is open: %v", err)
	}
	if h := s1.Records().Head("eu"); h != later.To {
		t.Fatalf("server holds %v, want %v", h, later.To)
	}
}
