// Command scale measures healthdns's replication at scale: 10,000 targets
// observed by 10 agents and replicated to 5 servers, all over real
// memberlist gossip on loopback. The servers are real healthdns processes
// (probe off: only the agents vote); the agents are gossip nodes in this
// process that publish synthetic observations, so the machine spends its
// time on replication, not on 100,000 probes.
//
// It reports: the time a new (fifth) server takes to converge, the time a
// burst of 1,000 verdict changes takes to reach every server, RSS per
// server, and gossip bytes per second per server at steady state.
//
//	go run ./test/bench/scale
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

var (
	nTargets = flag.Int("targets", 10000, "targets (names × 5)")
	nAgents  = flag.Int("agents", 10, "observers")
	nServers = flag.Int("servers", 5, "servers, the last of which joins late")
	burst    = flag.Int("burst", 1000, "verdict changes in the burst")
	steady   = flag.Duration("steady", 65*time.Second, "window for the steady-state gossip rate (over two push/pull intervals)")
	gossipIv = flag.Duration("gossip", 200*time.Millisecond, "gossip interval")
	pushPull = flag.Duration("pushpull", 30*time.Second, "push/pull interval")
)

func serverIP(i int) string { return fmt.Sprintf("127.0.0.%d", 51+i) }
func agentIP(i int) string  { return fmt.Sprintf("127.0.0.%d", 71+i) }

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "healthdns-scale")
	must(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "healthdns")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/healthdns").CombinedOutput(); err != nil {
		log.Fatalf("build: %v\n%s", err, out)
	}
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "gossip.key")
	must(os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "zone"), []byte("$ORIGIN scale.example.\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.51\n"), 0o644))

	// 5 targets per name, addresses 10.x.y.z, a check each (never run:
	// the servers do not probe, the agents publish).
	var names strings.Builder
	for n := 0; n < *nTargets/5; n++ {
		fmt.Fprintf(&names, "        name n%d {\n            quorum majority\n", n)
		for t := 0; t < 5; t++ {
			i := n*5 + t
			fmt.Fprintf(&names, "            target 10.%d.%d.%d check tcp 10.%d.%d.%d:443\n", i>>16&255, i>>8&255, i&255, i>>16&255, i>>8&255, i&255)
		}
		names.WriteString("        }\n")
	}
	var join []string
	for i := 0; i < *nServers-1; i++ {
		join = append(join, serverIP(i)+":7946")
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	startServer := func(i int) *exec.Cmd {
		ip := serverIP(i)
		cf := fmt.Sprintf(`scale.example:1053 {
    bind %s
    prometheus %s:9153
    healthdns {
        zonefile %s
        interval 30s
        timeout 1s
%s        cluster {
            name dns%d
            bind %s:7946
            join %s
            keyfile %s
            label scale
            probe off
            stale 30s
            gossip-interval %s
            pushpull-interval %s
        }
    }
}
`, ip, ip, filepath.Join(dir, "zone"), names.String(), i+1, ip, strings.Join(join, " "), keyFile, *gossipIv, *pushPull)
		p := filepath.Join(dir, fmt.Sprintf("Corefile%d", i))
		must(os.WriteFile(p, []byte(cf), 0o644))
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("dns%d.log", i+1)))
		must(err)
		cmd := exec.Command(bin, "-conf", p)
		cmd.Stdout, cmd.Stderr = f, f
		must(cmd.Start())
		procs = append(procs, cmd)
		return cmd
	}
	t0 := time.Now()
	for i := 0; i < *nServers-1; i++ {
		startServer(i)
	}
	for i := 0; i < *nServers-1; i++ {
		waitMetric(serverIP(i), "coredns_healthdns_verdicts", `state="unknown"`, float64(*nTargets), 5*time.Minute)
	}
	fmt.Printf("%d servers up with %d targets each in %.1fs\n", *nServers-1, *nTargets, time.Since(t0).Seconds())

	// The agents: learn the catalog, publish every target up.
	var nodes []*gossip.Node
	for i := 0; i < *nAgents; i++ {
		n, err := gossip.New(gossip.Config{
			Name: fmt.Sprintf("agent%d", i+1), Observer: fmt.Sprintf("site%d", i+1), Role: gossip.RoleAgent,
			BindAddr: agentIP(i), BindPort: 7946, KeyFile: keyFile, Label: "scale",
			GossipInterval: *gossipIv, PushPullInterval: *pushPull, LogOutput: io.Discard,
		})
		must(err)
		defer n.Shutdown()
		if _, err := n.Join(join...); err != nil {
			log.Fatalf("agent %d join: %v", i+1, err)
		}
		nodes = append(nodes, n)
	}
	var ids []gossip.TargetID
	deadline := time.Now().Add(time.Minute)
	for len(ids) < *nTargets && time.Now().Before(deadline) {
		ids = ids[:0]
		for _, c := range nodes[0].Catalog() {
			ids = append(ids, c.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(ids) < *nTargets {
		log.Fatalf("agents learned %d of %d targets", len(ids), *nTargets)
	}
	states := map[gossip.TargetID]health.State{}
	for _, id := range ids {
		states[id] = health.Up
	}
	t1 := time.Now()
	for _, n := range nodes {
		n.PublishObservations(states)
	}
	for i := 0; i < *nServers-1; i++ {
		waitMetric(serverIP(i), "coredns_healthdns_verdicts", `state="up"`, float64(*nTargets), 5*time.Minute)
	}
	fmt.Printf("%d agents' observations of %d targets reached %d servers in %.1fs\n", *nAgents, *nTargets, *nServers-1, time.Since(t1).Seconds())

	// A new server joins: convergence is the time until it holds every
	// observation and every verdict is up. It includes its start-up.
	t2 := time.Now()
	startServer(*nServers - 1)
	waitMetric(serverIP(*nServers-1), "coredns_healthdns_verdicts", `state="up"`, float64(*nTargets), 5*time.Minute)
	converge := time.Since(t2)
	fmt.Printf("new server converged (process start to %d verdicts up) in %.2fs\n", *nTargets, converge.Seconds())

	// A burst: every agent sees the same 1,000 targets go down.
	for _, id := range ids[:*burst] {
		states[id] = health.Down
	}
	t3 := time.Now()
	for _, n := range nodes {
		n.PublishObservations(states)
	}
	for i := 0; i < *nServers; i++ {
		waitMetric(serverIP(i), "coredns_healthdns_verdicts", `state="down"`, float64(*burst), 5*time.Minute)
	}
	burstT := time.Since(t3)
	fmt.Printf("burst of %d verdict changes reached all %d servers in %.2fs\n", *burst, *nServers, burstT.Seconds())

	// Steady state: nothing changes; gossip is heartbeats and push/pull.
	time.Sleep(2 * time.Second)
	before := make([]float64, *nServers)
	for i := range before {
		before[i] = gossipBytes(serverIP(i))
	}
	time.Sleep(*steady)
	var maxRate, maxRSS float64
	for i := 0; i < *nServers; i++ {
		rate := (gossipBytes(serverIP(i)) - before[i]) * 8 / steady.Seconds() / 1e6
		rss := rssMB(procs[i].Process.Pid)
		fmt.Printf("dns%d: rss %.0f MB, gossip %.3f Mbit/s (sent+received, messages+push/pull)\n", i+1, rss, rate)
		maxRate, maxRSS = max(maxRate, rate), max(maxRSS, rss)
	}
	fmt.Printf("\n%d targets, %d agents, %d servers; targets: convergence <= 5s, rss <= 150MB, gossip <= 1 Mbit/s per node\n", *nTargets, *nAgents, *nServers)
	fmt.Printf("burst of %d changes: %.2fs; max gossip %.3f Mbit/s per server\n", *burst, burstT.Seconds(), maxRate)
	fmt.Printf("scale convergence: %.1fs rss: %.0fMB\n", converge.Seconds(), maxRSS)
}

// metric reads one sample from a server's /metrics.
func metric(ip, name, label string) (float64, bool) {
	resp, err := http.Get("http://" + ip + ":9153/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, name) && strings.Contains(l, label) {
			f := strings.Fields(l)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

func waitMetric(ip, name, label string, want float64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if v, ok := metric(ip, name, label); ok && v == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, _ := metric(ip, name, label)
	log.Fatalf("%s: %s{%s} = %v, never %v within %s", ip, name, label, v, want, limit)
}

func gossipBytes(ip string) float64 {
	total := 0.0
	for _, l := range []string{`direction="sent",kind="message"`, `direction="received",kind="message"`, `direction="sent",kind="state"`, `direction="received",kind="state"`} {
		v, _ := metric(ip, "coredns_healthdns_gossip_bytes_total", l)
		total += v
	}
	return total
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
