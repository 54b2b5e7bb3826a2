package healthdns

import (
	"fmt"
	"io"
	stdlog "log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// BenchmarkRebuildOneChange is the snapshot rebuild a server runs after one
// observation changed (issue 18), at two sizes: a server (a real gossip
// member, probe off) whose views hold 10 agents' observations of N
// targets, 5 to a name, as test/bench/scale sets it up. The agents are
// gossip nodes in this process on 127.0.10.x.
//
//   - change: one agent flips one target (up <-> down) and the change
//     crosses gossip; once the server's node holds it, rebuild is timed.
//     Agents 1-5 see that target down, so the sixth agent's flip flips
//     its verdict: each rebuild has one verdict and one answer to change.
//   - nochange: nothing changed, the rebuild the 1-second timer runs.
//   - full: a full rebuild, for reference.
//
// A cost that does not grow with the total has a 100k/10k ratio near 1.
// Setup of the 100,000 case takes about half a minute; -short skips it.
//
//	go test -run '^$' -bench RebuildOneChange -benchmem ./plugin/healthdns/
func BenchmarkRebuildOneChange(b *testing.B) {
	for i, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			if n > 10000 && testing.Short() {
				b.Skip("100,000 targets under -short")
			}
			sc := newScaleCluster(b, n, 10*(i+1))
			defer sc.close()
			b.Run("change", sc.benchChange)
			b.Run("nochange", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					sc.h.rebuild()
				}
			})
			// full: every target judged again (a new server's first
			// round, a view that came or went), which grows with the
			// total by design.
			b.Run("full", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					sc.h.mu.Lock()
					sc.h.inc.ok = false
					sc.h.mu.Unlock()
					sc.h.rebuild()
				}
			})
		})
	}
}

// scaleCluster is one server handler and the agents that feed it.
type scaleCluster struct {
	h       *HealthDNS
	agents  []*gossip.Node
	states  []map[gossip.TargetID]health.State // what each agent publishes
	swing   gossip.TargetID                    // the target that flips
	key     string                             // its verdict key
	logOut  io.Writer
	logFlag int
}

const scaleAgents, scaleSwingAgent = 10, 5

// newScaleCluster starts a server for n targets on 127.0.10.base and
// scaleAgents agents on 127.0.10.base+1..., and waits until the server
// holds every agent's view of every target.
func newScaleCluster(b *testing.B, n, base int) *scaleCluster {
	b.Helper()
	start := time.Now()
	// The verdict log lines (one per change) would flood the output; they
	// are formatted all the same.
	sc := &scaleCluster{logOut: stdlog.Writer(), logFlag: stdlog.Flags()}
	stdlog.SetOutput(io.Discard)
	origin := fmt.Sprintf("scale%d.example.", n) // a verdict state of its own
	dir := b.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte("$ORIGIN "+origin+"\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.10.1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	server := fmt.Sprintf("127.0.10.%d:7946", base)
	var cf strings.Builder
	fmt.Fprintf(&cf, "healthdns %s {\nzonefile %s\ninterval 30s\ntimeout 1s\n", origin, zf)
	for nm := 0; nm < n/5; nm++ {
		fmt.Fprintf(&cf, "name n%d {\nquorum majority\n", nm)
		for t := 0; t < 5; t++ {
			i := nm*5 + t
			fmt.Fprintf(&cf, "target 10.%d.%d.%d check tcp 10.%d.%d.%d:443\n", i>>16&255, i>>8&255, i&255, i>>16&255, i>>8&255, i&255)
		}
		cf.WriteString("}\n")
	}
	fmt.Fprintf(&cf, "cluster {\nname dns1\nbind %s\ninsecure\nprobe off\nstale 1h\ngossip-interval 20ms\n}\n}\n", server)
	cfg, err := parse(caddy.NewTestController("dns", cf.String()))
	if err != nil {
		b.Fatal(err)
	}
	h := newHandler(cfg, probe.NewPool())
	m, err := acquireMember(cfg.cluster, "")
	if err != nil {
		b.Fatal(err)
	}
	h.member = m
	sc.h = h
	targets := cfg.probeTargets()
	m.setCatalog(h, targets, false)
	if len(targets) != n {
		sc.close()
		b.Fatalf("%d targets configured, want %d", len(targets), n)
	}
	sc.swing = gossip.IDOf(targets[0])
	sc.key = verdictKey(h.names[0], h.names[0].Targets[0])

	for a := range scaleAgents {
		node, err := gossip.New(gossip.Config{
			Name: fmt.Sprintf("agent%d", a+1), Observer: fmt.Sprintf("site%d", a+1), Role: gossip.RoleAgent,
			BindAddr: fmt.Sprintf("127.0.10.%d", base+1+a), BindPort: 7946,
			// Quick gossip so a change crosses fast; heartbeats slow enough
			// that a busy machine (a 100k rebuild, GC) does not make
			// an agent silent (3 heartbeats) in the middle of a run.
			GossipInterval: 20 * time.Millisecond, HeartbeatInterval: time.Second, PushPullInterval: 30 * time.Second, LogOutput: io.Discard,
		})
		if err != nil {
			sc.close()
			b.Fatal(err)
		}
		sc.agents = append(sc.agents, node)
		if _, err := node.Join(server); err != nil {
			sc.close()
			b.Fatalf("agent %d join: %v", a+1, err)
		}
	}
	// Agents publish once they know the catalog, as real ones do.
	sc.waitFor(b, time.Minute, "agents to learn the catalog", func() bool {
		for _, a := range sc.agents {
			if len(a.Catalog()) < n {
				return false
			}
		}
		return true
	})
	for a, node := range sc.agents {
		st := make(map[gossip.TargetID]health.State, n)
		for _, t := range targets {
			st[gossip.IDOf(t)] = health.Up
		}
		if a < scaleSwingAgent {
			st[sc.swing] = health.Down
		}
		sc.states = append(sc.states, st)
		node.PublishObservations(st)
	}
	// Every view complete, and its silence window the agent's own (known
	// from its first heartbeat; until then the server's far shorter one
	// applies and a view can go unknown between two heartbeats).
	sc.waitFor(b, time.Minute, "the server to hold every agent's observations", func() bool {
		full := 0
		for _, v := range m.node.Views() {
			if v.Role == gossip.RoleAgent && v.Alive && len(v.States) == n && v.Silence >= 3*time.Second {
				full++
			}
		}
		return full == scaleAgents
	})
	h.rebuild()
	up := 0
	for _, nc := range h.names {
		for _, t := range nc.Targets {
			if h.judge.Verdict(verdictKey(nc, t)).State == health.Up {
				up++
			}
		}
	}
	if up != n {
		var seen []string
		for _, v := range m.node.Views() {
			o := h.peerObservation(v, sc.swing, time.Second)
			seen = append(seen, fmt.Sprintf("%s alive=%v states=%d fresh=%v until=%s", v.Node, v.Alive, len(v.States), o.Fresh(time.Now()), time.Until(o.Until)))
		}
		sc.close()
		b.Fatalf("%d of %d verdicts up after the first rebuild; views: %s", up, n, strings.Join(seen, "; "))
	}
	b.Logf("setup of %d targets × %d agents: %.1fs", n, scaleAgents, time.Since(start).Seconds())
	return sc
}

// benchChange: per iteration one agent flips the swing target, the
// server's node receives it over gossip (untimed), then rebuild (timed).
func (sc *scaleCluster) benchChange(b *testing.B) {
	agent, st := sc.agents[scaleSwingAgent], sc.states[scaleSwingAgent]
	node := sc.h.member.node
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		want := health.Down
		if st[sc.swing] == health.Down {
			want = health.Up
		}
		st[sc.swing] = want
		agent.PublishObservations(st)
		sc.waitFor(b, 10*time.Second, "the change to reach the server", func() bool {
			for _, v := range node.Views() {
				if v.Node == agent.Name() {
					return v.States[sc.swing] == want
				}
			}
			return false
		})
		b.StartTimer()
		sc.h.rebuild()
		b.StopTimer()
		if got := sc.h.judge.Verdict(sc.key).State; got != want {
			b.Fatalf("iteration %d: verdict %s after the rebuild, want %s", i, got, want)
		}
		b.StartTimer()
	}
}

func (sc *scaleCluster) waitFor(b *testing.B, limit time.Duration, what string, ok func() bool) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			sc.close()
			b.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (sc *scaleCluster) close() {
	for _, a := range sc.agents {
		a.Shutdown()
	}
	sc.agents = nil
	if sc.h != nil {
		sc.h.stop()
		sc.h = nil
	}
	stdlog.SetOutput(sc.logOut)
	stdlog.SetFlags(sc.logFlag)
}
