package gossip

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// The shape of issue 18: targets × 10 agents × 5 servers, at two sizes, so
// that the ratio of the two shows what grows with the total.
const benchAgents, benchServers = 10, 5

var benchSizes = []int{10_000, 100_000}

type benchCluster struct {
	cat    []CatalogTarget
	agents []*state
	states []map[TargetID]health.State
	cats   []*fullState // each server's catalog, as sent directly
}

var (
	benchMu       sync.Mutex
	benchClusters = map[int]*benchCluster{}
)

// clusterOf builds (once per size) the catalog, 5 servers' catalog pages
// and 10 agents that observe every target.
func clusterOf(b testing.TB, targets int) *benchCluster {
	benchMu.Lock()
	defer benchMu.Unlock()
	if c := benchClusters[targets]; c != nil {
		return c
	}
	tcp := mustCheck(b, "tcp 127.0.0.1:80")
	c := &benchCluster{cat: make([]CatalogTarget, targets)}
	for i := range c.cat {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		ct, err := NewCatalogTarget(probe.Target{Addr: a, Checks: []probe.Check{mustCheck(b, fmt.Sprintf("http://%s/healthz", a)), tcp},
			Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2})
		if err != nil {
			b.Fatal(err)
		}
		c.cat[i] = ct
	}
	for s := range benchServers {
		name := fmt.Sprintf("server-%d", s)
		s := newState(name, "dc", RoleServer, 1, time.Hour)
		s.self.cat = &catalog{epoch: 1, seq: 1, targets: c.cat}
		s.heartbeat(t0)
		c.cats = append(c.cats, s.selfCatalog(t0))
	}
	for a := range benchAgents {
		s := newState(fmt.Sprintf("agent-%d", a), "loc", RoleAgent, 1, time.Hour)
		s.bulkAfter = bulkAfter
		states := make(map[TargetID]health.State, targets)
		for i, t := range c.cat {
			states[t.ID] = health.State(1 + (i+a)%2)
		}
		s.publishObservations(states, 100)
		s.heartbeat(t0)
		c.agents, c.states = append(c.agents, s), append(c.states, states)
	}
	benchClusters[targets] = c
	return c
}

// server fills s with the cluster's catalogs and views, as a server
// that has been up a while holds them.
func (c *benchCluster) server(s *state) {
	for _, cat := range c.cats {
		s.mergeFull(cat, t0)
	}
	for _, a := range c.agents {
		s.mergeFull(a.full(t0), t0)
	}
}

func benchServer(b testing.TB, targets int) *state {
	s := newState("server-0", "dc", RoleServer, 1, time.Hour)
	clusterOf(b, targets).server(s)
	return s
}

func eachSize(b *testing.B, f func(b *testing.B, targets int)) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) { f(b, n) })
	}
}

// BenchmarkStateEncode: the push/pull state a joining node gets.
func BenchmarkStateEncode(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		s := benchServer(b, targets)
		b.ReportAllocs()
		b.ResetTimer()
		var size int
		for range b.N {
			size = len(s.full(t0).encode())
		}
		b.ReportMetric(float64(size), "bytes")
	})
}

// BenchmarkStateDecode decodes it.
func BenchmarkStateDecode(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		enc := benchServer(b, targets).full(t0).encode()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := decodeState(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStateDecodeCold decodes it on a node that never saw its
// targets (an agent's first join): each is parsed and hashed.
func BenchmarkStateDecodeCold(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		enc := benchServer(b, targets).full(t0).encode()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			knownTargets.mu.Lock()
			clear(knownTargets.m)
			knownTargets.mu.Unlock()
			b.StartTimer()
			if _, err := decodeState(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJoinMerge merges it into an empty node: the join of a new
// server, from received bytes to a state that holds everything.
func BenchmarkJoinMerge(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		enc := benchServer(b, targets).full(t0).encode()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			fs, err := decodeState(enc)
			if err != nil {
				b.Fatal(err)
			}
			newState("server-9", "dc", RoleServer, 1, time.Hour).mergeFull(fs, t0)
		}
	})
}

// BenchmarkRepairMerge merges an observer's whole view, one change newer,
// into a node that holds the rest: what answering a lost packet costs.
func BenchmarkRepairMerge(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		c := clusterOf(b, targets)
		s := benchServer(b, targets)
		a := newState("agent-0", "loc", RoleAgent, 1, time.Hour)
		states := maps.Clone(c.states[0])
		a.publishObservations(states, 100)
		s.peers["agent-0"].view.applyFull(a.self.view.state())
		flip := c.cat[0].ID
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			states[flip] = 3 - states[flip] // up <-> down
			a.publishObservations(states, 100)
			vs := a.self.view.state()
			b.StartTimer()
			if !s.peers["agent-0"].view.applyFull(vs) {
				b.Fatal("no change")
			}
		}
	})
}

// BenchmarkDelta applies one observer's change of one target.
func BenchmarkDelta(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		c := clusterOf(b, targets)
		s := benchServer(b, targets)
		p := s.peers["agent-0"]
		seq := p.view.latest
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			seq++
			s.applyObservations(&observations{Node: "agent-0", Epoch: 1, Seq: seq, Pairs: []pair{{ID: c.cat[i%targets].ID, State: health.State(1 + i%2)}}}, t0)
		}
	})
}

// BenchmarkDeltaPastGap is BenchmarkDelta while a lost packet leaves a
// removed target waiting for the gap to close.
func BenchmarkDeltaPastGap(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		c := clusterOf(b, targets)
		s := benchServer(b, targets)
		p := s.peers["agent-0"]
		seq := p.view.latest + 1 // lost
		seq++
		s.applyObservations(&observations{Node: "agent-0", Epoch: 1, Seq: seq, Pairs: []pair{{ID: c.cat[0].ID, State: health.Unknown}}}, t0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			seq++
			s.applyObservations(&observations{Node: "agent-0", Epoch: 1, Seq: seq, Pairs: []pair{{ID: c.cat[1+i%(targets-1)].ID, State: health.State(1 + i%2)}}}, t0)
		}
	})
}

func benchNode(b *testing.B, targets int) *Node {
	n, err := New(Config{Name: "server-0", Observer: "dc", Role: RoleServer, BindAddr: "127.0.8.2", LogOutput: io.Discard,
		HeartbeatInterval: time.Hour, GossipInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Shutdown() })
	n.mu.Lock()
	clusterOf(b, targets).server(n.st)
	for _, p := range n.st.peers {
		p.heard = n.now()
	}
	n.mu.Unlock()
	return n
}

// BenchmarkViews reads every view whole, with one target changed between
// reads (a full rebuild after one change).
func BenchmarkViews(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		n := benchNode(b, targets)
		c := clusterOf(b, targets)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			n.mu.Lock()
			n.st.peers["agent-1"].view.applyDelta(n.st.peers["agent-1"].view.latest+1, []pair{{ID: c.cat[i%targets].ID, State: health.State(1 + i%2)}})
			n.mu.Unlock()
			if vs := n.Views(); len(vs) != benchAgents {
				b.Fatalf("%d views", len(vs))
			}
		}
	})
}

// BenchmarkChangesSince is the incremental read after one change.
func BenchmarkChangesSince(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		n := benchNode(b, targets)
		c := clusterOf(b, targets)
		_, cursor, _ := n.ChangesSince(0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			n.mu.Lock()
			n.st.peers["agent-1"].view.applyDelta(n.st.peers["agent-1"].view.latest+1, []pair{{ID: c.cat[i%targets].ID, State: health.State(1 + i%2)}})
			n.mu.Unlock()
			ids, next, all := n.ChangesSince(cursor)
			if all || len(ids) != 1 {
				b.Fatalf("%d ids, all %v", len(ids), all)
			}
			cursor = next
			n.ViewsOf(ids)
		}
	})
}

// BenchmarkServerMemory reports the heap a server's gossip state holds
// per target (5 catalogs and 10 views of it).
func BenchmarkServerMemory(b *testing.B) {
	eachSize(b, func(b *testing.B, targets int) {
		clusterOf(b, targets)
		var before, after runtime.MemStats
		for range b.N {
			runtime.GC()
			runtime.ReadMemStats(&before)
			s := benchServer(b, targets)
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(s)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(targets), "heapB/target")
	})
}
