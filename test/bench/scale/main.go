// Command scale measures healthdns's replication at scale: 10,000 targets
// (by default) observed by 10 agents and replicated to 5 servers, all over
// real memberlist gossip on loopback. The servers are real healthdns
// processes (probe off: only the agents vote); the agents are gossip nodes
// in this process that publish synthetic observations, so the machine
// spends its time on replication, not on 100,000 probes.
//
// It reports: the time a new (fifth) server takes to converge, the time a
// burst of verdict changes takes to reach every server (until the last one
// answers every change), RSS per server, and gossip Mbit/s per server at
// steady state. The last line has every figure.
//
// Progress is read with DNS queries, not /metrics: a scrape gathers every
// series (a target_healthy per target), about 0.6 s of a server's CPU at
// 100,000 targets whatever the name[] filter, so polling it would load the
// servers being measured. Every name has fallback none, so the number of
// A records in its answer is the number of its targets that are up; a
// check queries the names still pending, a window at a time, and stops at
// the first window with one not there yet (at most -poll apart). /metrics
// is read twice per server, around the steady window.
//
//	go run ./test/bench/scale                                  # 10,000 targets, burst 1,000
//	go run ./test/bench/scale -targets 50000 -burst 5000      # about 5 minutes
//	go run ./test/bench/scale -targets 100000 -burst 10000    # about 10 minutes, 4 GB
//
// -cpuprofile FILE saves a CPU profile of dns1 taken over the burst
// (-cpuseconds long, from just before it: make it cover the burst, e.g. 60
// at 100,000 today); -memprofile FILE the heap of dns1 at steady state
// (after a GC). dns1 serves pprof on 127.0.0.51:6060. Both listeners cut
// a response off after 5 s (CoreDNS's WriteTimeout): reads are retried.
package main

import (
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
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/test/bench/internal/cleanup"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

var (
	nTargets     = flag.Int("targets", 10000, "targets (names × 5)")
	nAgents      = flag.Int("agents", 10, "observers")
	nServers     = flag.Int("servers", 5, "servers, the last of which joins late")
	burst        = flag.Int("burst", 1000, "verdict changes in the burst (the first targets by address: whole names)")
	steady       = flag.Duration("steady", 65*time.Second, "window for the steady-state gossip rate (over two push/pull intervals)")
	gossipIv     = flag.Duration("gossip", 200*time.Millisecond, "gossip interval")
	pushPull     = flag.Duration("pushpull", 30*time.Second, "push/pull interval")
	poll         = flag.Duration("poll", 50*time.Millisecond, "pause between two DNS checks of a server")
	cpuProfile   = flag.String("cpuprofile", "", "write a CPU profile of dns1 over the burst to this file")
	cpuSeconds   = flag.Int("cpuseconds", 30, "length of the -cpuprofile profile, in seconds, from just before the burst")
	memProfile   = flag.String("memprofile", "", "write dns1's heap profile at steady state to this file")
	memLimit     = flag.String("gomemlimit", "", "GOMEMLIMIT of the servers, as a container's memory limit sets it (90% of it); empty for none")
	keep         = flag.Bool("keep", false, "keep the working directory, with the servers' logs")
	agentProfile = flag.String("agentprofile", "", "write a CPU profile of this process (the agents) over the burst to this file")
	convProfile  = flag.String("convprofile", "", "write a CPU profile of the new server over its convergence (from its pprof's start, -cpuseconds long) to this file")
)

const origin = "scale.example."

func serverIP(i int) string { return fmt.Sprintf("127.0.0.%d", 51+i) }
func agentIP(i int) string  { return fmt.Sprintf("127.0.0.%d", 71+i) }

func main() {
	flag.Parse()
	log.SetFlags(0)
	defer cleanup.Run()
	if *burst > *nTargets {
		cleanup.Fatalf("burst %d over %d targets", *burst, *nTargets)
	}
	dir, err := os.MkdirTemp("", "healthdns-scale")
	must(err)
	if *keep {
		fmt.Printf("working directory (servers' logs): %s\n", dir)
	} else {
		cleanup.Add(func() { os.RemoveAll(dir) })
	}
	bin := filepath.Join(dir, "healthdns")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/healthdns").CombinedOutput(); err != nil {
		cleanup.Fatalf("build: %v\n%s", err, out)
	}
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "gossip.key")
	must(os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "zone"), []byte("$ORIGIN "+origin+"\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.51\n"), 0o644))

	// 5 targets per name, addresses 10.x.y.z, a check each (never run:
	// the servers do not probe, the agents publish). Fallback none: an
	// answer holds exactly the name's targets that are up.
	nNames := (*nTargets + 4) / 5
	var names strings.Builder
	for n := 0; n < nNames; n++ {
		fmt.Fprintf(&names, "        name n%d {\n            quorum majority\n            fallback none\n", n)
		for t := 0; t < 5 && n*5+t < *nTargets; t++ {
			i := n*5 + t
			fmt.Fprintf(&names, "            target %s check tcp %s:443\n", targetAddr(i), targetAddr(i))
		}
		names.WriteString("        }\n")
	}
	size := func(n int) int { return min(5, *nTargets-n*5) } // targets of name n
	var join []string
	for i := 0; i < *nServers-1; i++ {
		join = append(join, serverIP(i)+":7946")
	}
	var procs []*exec.Cmd
	cleanup.Add(func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	startServer := func(i int) *exec.Cmd {
		ip := serverIP(i)
		pprof := ""
		if i == 0 || i == *nServers-1 {
			pprof = "    pprof " + ip + ":6060\n"
		}
		cf := fmt.Sprintf(`scale.example:1053 {
    bind %s
    prometheus %s:9153
%s    healthdns {
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
`, ip, ip, pprof, filepath.Join(dir, "zone"), names.String(), i+1, ip, strings.Join(join, " "), keyFile, *gossipIv, *pushPull)
		p := filepath.Join(dir, fmt.Sprintf("Corefile%d", i))
		must(os.WriteFile(p, []byte(cf), 0o644))
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("dns%d.log", i+1)))
		must(err)
		cmd := exec.Command(bin, "-conf", p)
		if *memLimit != "" {
			cmd.Env = append(os.Environ(), "GOMEMLIMIT="+*memLimit)
		}
		cmd.Stdout, cmd.Stderr = f, f
		must(cmd.Start())
		procs = append(procs, cmd)
		return cmd
	}
	allUp := map[int]int{}
	for n := 0; n < nNames; n++ {
		allUp[n] = size(n)
	}
	last := map[int]int{nNames - 1: 0} // serving: the last name answers (nothing up yet)

	t0 := time.Now()
	for i := 0; i < *nServers-1; i++ {
		startServer(i)
	}
	waitAll(*nServers-1, last, t0, 5*time.Minute)
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
			cleanup.Fatalf("agent %d join: %v", i+1, err)
		}
		nodes = append(nodes, n)
	}
	var cat []gossip.CatalogTarget
	deadline := time.Now().Add(5 * time.Minute)
	for len(cat) < *nTargets && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		cat = nodes[0].Catalog()
	}
	if len(cat) < *nTargets {
		cleanup.Fatalf("agents learned %d of %d targets", len(cat), *nTargets)
	}
	byIndex := make([]gossip.TargetID, *nTargets) // target index (address) -> ID
	for _, c := range cat {
		a := c.Addr.As4()
		byIndex[int(a[1])<<16|int(a[2])<<8|int(a[3])] = c.ID
	}
	states := map[gossip.TargetID]health.State{}
	for _, id := range byIndex {
		states[id] = health.Up
	}
	t1 := time.Now()
	publishAll(nodes, states)
	waitAll(*nServers-1, allUp, t1, 10*time.Minute)
	diag("after the agents' first views", nodes)
	fmt.Printf("%d agents' observations of %d targets reached %d servers in %.1fs\n", *nAgents, *nTargets, *nServers-1, time.Since(t1).Seconds())

	// A new server joins: convergence is the time until it answers every
	// name with all its targets up. It includes its start-up.
	var prof sync.WaitGroup
	t2 := time.Now()
	startServer(*nServers - 1)
	if *convProfile != "" {
		prof.Add(1)
		go func() {
			defer prof.Done()
			url := fmt.Sprintf("http://%s:6060/debug/pprof/profile?seconds=%d", serverIP(*nServers-1), *cpuSeconds)
			for time.Since(t2) < time.Minute { // until its pprof listens
				if fetch1(url, *convProfile) {
					fmt.Printf("cpu profile of dns%d from %.1fs after its start, %ds: %s\n", *nServers, time.Since(t2).Seconds()-float64(*cpuSeconds), *cpuSeconds, *convProfile)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	cv := waitAnswers(serverIP(*nServers-1), allUp, t2, 5*time.Minute)
	prof.Wait()
	fmt.Printf("new server converged (process start to %d names answering every target): a sample of them in %.2fs, every one confirmed in %.2fs (last seen short at %.2fs)\n", nNames, cv.sampled.Seconds(), cv.done.Seconds(), cv.lastMiss.Seconds())

	// A burst: every agent sees the same targets go down, the first
	// burst of them by address (whole names, 5 to a name).
	want := map[int]int{}
	for i := 0; i < *burst; i++ {
		states[byIndex[i]] = health.Down
		want[i/5] = size(i/5) - (min(*burst, i/5*5+size(i/5)) - i/5*5)
	}
	if *cpuProfile != "" {
		prof.Add(1)
		go func() {
			defer prof.Done()
			if !fetch(fmt.Sprintf("http://%s:6060/debug/pprof/profile?seconds=%d", serverIP(0), *cpuSeconds), *cpuProfile) {
				*cpuProfile = ""
			}
		}()
		time.Sleep(200 * time.Millisecond) // the profile has started
	}
	if *agentProfile != "" {
		f, err := os.Create(*agentProfile)
		if err != nil {
			cleanup.Fatalf("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			cleanup.Fatalf("%v", err)
		}
	}
	t3 := time.Now()
	publishAll(nodes, states)
	fmt.Printf("the %d agents published the burst in %.2fs\n", len(nodes), time.Since(t3).Seconds())
	per := waitAll(*nServers, want, t3, 5*time.Minute)
	var burstT, burstS time.Duration
	for i, r := range per {
		fmt.Printf("  dns%d: burst: sample %.2fs, all %.2fs (last seen short at %.2fs)\n", i+1, r.sampled.Seconds(), r.done.Seconds(), r.lastMiss.Seconds())
		burstT = max(burstT, r.done)
		burstS = max(burstS, r.sampled)
	}
	if *agentProfile != "" {
		pprof.StopCPUProfile()
		fmt.Printf("cpu profile of the agents over the burst: %s\n", *agentProfile)
	}
	fmt.Printf("burst of %d verdict changes (%d names) reached all %d servers: a sample of the names in %.2fs, every one confirmed in %.2fs\n", *burst, len(want), *nServers, burstS.Seconds(), burstT.Seconds())
	diag("after the burst", nodes)
	prof.Wait()
	if *cpuProfile != "" {
		fmt.Printf("cpu profile of dns1 (%ds from the burst): %s\n", *cpuSeconds, *cpuProfile)
	}

	// Steady state: nothing changes; gossip is heartbeats and push/pull.
	time.Sleep(2 * time.Second)
	// Each server's counters are read at its own times, and its rate is
	// over its own interval.
	before := make([]float64, *nServers)
	at := make([]time.Time, *nServers)
	okBefore := make([]bool, *nServers)
	for i := range before {
		before[i], okBefore[i] = gossipBytes(serverIP(i))
		at[i] = time.Now()
	}
	cpu0 := make([]float64, *nServers)
	for i := range cpu0 {
		cpu0[i] = cpuTime(procs[i].Process.Pid)
	}
	t4 := time.Now()
	time.Sleep(*steady)
	for i := range cpu0 {
		fmt.Printf("dns%d: cpu %.0f%% of a core at steady state\n", i+1, 100*(cpuTime(procs[i].Process.Pid)-cpu0[i])/time.Since(t4).Seconds())
	}
	var maxRSS float64
	maxRate, unread := 0.0, 0
	for i := 0; i < *nServers; i++ {
		after, ok := gossipBytes(serverIP(i))
		rss := rssMB(procs[i].Process.Pid)
		maxRSS = max(maxRSS, rss)
		if !ok || !okBefore[i] {
			unread++
			fmt.Printf("dns%d: rss %.0f MB, gossip not read (/metrics did not answer)\n", i+1, rss)
			continue
		}
		rate := (after - before[i]) * 8 / time.Since(at[i]).Seconds() / 1e6
		fmt.Printf("dns%d: rss %.0f MB, gossip %.3f Mbit/s (sent+received, messages+push/pull)\n", i+1, rss, rate)
		maxRate = max(maxRate, rate)
	}
	if *memProfile != "" {
		// After a GC for the live heap; without, if that is too slow.
		if fetch(fmt.Sprintf("http://%s:6060/debug/pprof/heap?gc=1", serverIP(0)), *memProfile) ||
			fetch(fmt.Sprintf("http://%s:6060/debug/pprof/heap", serverIP(0)), *memProfile) {
			fmt.Printf("heap profile of dns1 at steady state: %s\n", *memProfile)
		}
	}
	gossipFig := fmt.Sprintf("%.3fMbit/s", maxRate)
	if unread > 0 {
		gossipFig += fmt.Sprintf("(%d_unread)", unread)
	}
	fmt.Printf("\n%d targets, %d agents, %d servers; targets (issue 18, at 100,000): convergence <= 10s, burst of 10,000 <= 5s, rss <= 600MB, gossip <= 1 Mbit/s per node\n", *nTargets, *nAgents, *nServers)
	if *memLimit != "" {
		fmt.Printf("servers ran with GOMEMLIMIT=%s\n", *memLimit)
	}
	fmt.Printf("scale targets=%d convergence=%.2fs(all %.2fs) burst=%d:%.2fs(all %.2fs) rss=%.0fMB gossip=%s\n", *nTargets, cv.sampled.Seconds(), cv.done.Seconds(), *burst, burstS.Seconds(), burstT.Seconds(), maxRSS, gossipFig)
}

// diag prints the direct-message and inbound-drop counters of dns1 and
// of the first agent: where a slow step lost its messages.
func diag(when string, nodes []*gossip.Node) {
	pick := func(text string) string {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			for _, m := range []string{"gossip_direct_messages_total{", `gossip_messages_total{result="dropped"`, `gossip_messages_total{result="oversized"`, `gossip_states_total{result="garbled"`} {
				if strings.Contains(l, m) && !strings.HasPrefix(l, "#") {
					out = append(out, strings.TrimPrefix(l, "coredns_healthdns_"))
				}
			}
		}
		return strings.Join(out, " ")
	}
	b, _ := get("http://" + serverIP(0) + ":9153/metrics")
	reg := prometheus.NewRegistry()
	reg.MustRegister(gossip.NewCollector(nodes[0]))
	var sb strings.Builder
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			expfmt.MetricFamilyToText(&sb, mf)
		}
	}
	fmt.Printf("  %s: dns1 %s\n  %s: agent1 %s\n", when, pick(string(b)), when, pick(sb.String()))
}

// publishAll publishes states from every agent at once, as agents that
// are processes of their own would.
func publishAll(nodes []*gossip.Node, states map[gossip.TargetID]health.State) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.PublishObservations(states) }()
	}
	wg.Wait()
}

func targetAddr(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// result is when a server showed every change (done), and the latest
// time it was seen without one of them (lastMiss): the change arrived
// in between. Both from the start of the step.
//
// sampled is when a sample of the names (twenty spread over them, and
// the last) all answered as wanted, asked every 20 ms: a server applies
// a change of all of them in one rebuild, so this dates the change
// without the time a full pass of queries over every name takes on a
// loaded machine (seconds at 20,000 names); done confirms the rest.
type result struct{ done, lastMiss, sampled time.Duration }

// waitAll waits until the first n servers answer as want says, each
// checked on its own; it returns each one's result, from start.
func waitAll(n int, want map[int]int, start time.Time, limit time.Duration) []result {
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = waitAnswers(serverIP(i), want, start, limit)
		}()
	}
	wg.Wait()
	return out
}

const (
	window  = 64 // names queried at once
	workers = 8  // queries in flight per server
)

// waitAnswers waits until the server at ip answers every name in want
// with want[name] A records. Names only move towards want (up for up,
// down for down), so a name once seen right is not asked again. Each
// check asks the pending names a window at a time and stops at the first
// window with a name not there yet: at steady progress a check costs a
// window of queries, and the last check sweeps what is left.
func waitAnswers(ip string, want map[int]int, start time.Time, limit time.Duration) result {
	sampled := make(chan time.Duration, 1)
	go func() { sampled <- waitSample(ip, want, start, limit) }()
	res := waitAll1(ip, want, start, limit)
	res.sampled = <-sampled
	return res
}

// waitSample returns when a sample of the names of want all answered as
// wanted (see result).
func waitSample(ip string, want map[int]int, start time.Time, limit time.Duration) time.Duration {
	var all []int
	for n := range want {
		all = append(all, n)
	}
	slices.Sort(all)
	var sample []int
	for i := 0; i < len(all); i += max(1, len(all)/20) {
		sample = append(sample, all[i])
	}
	sample = append(sample, all[len(all)-1])
	client := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	for time.Since(start) < limit {
		left := sample[:0]
		for _, n := range sample {
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("n%d.%s", n, origin), dns.TypeA)
			r, _, err := client.Exchange(m, ip+":1053")
			a := 0
			if err == nil && r.Rcode == dns.RcodeSuccess {
				for _, rr := range r.Answer {
					if rr.Header().Rrtype == dns.TypeA {
						a++
					}
				}
			}
			if err != nil || r.Rcode != dns.RcodeSuccess || a != want[n] {
				left = append(left, n)
			}
		}
		if sample = left; len(sample) == 0 {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return limit
}

// waitAll1 is waitAnswers' full pass.
func waitAll1(ip string, want map[int]int, start time.Time, limit time.Duration) result {
	pending := make([]int, 0, len(want))
	for n := range want {
		pending = append(pending, n)
	}
	slices.Sort(pending)
	conns := make([]*dns.Conn, workers)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	client := &dns.Client{Net: "udp", Timeout: time.Second}
	addr := ip + ":1053"
	// ask reports whether name n answers with want[n] records: 1 yes,
	// 0 no, -1 no answer (not serving yet, lost).
	ask := func(w, n int) int {
		if conns[w] == nil {
			c, err := client.Dial(addr)
			if err != nil {
				return -1
			}
			conns[w] = c
		}
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("n%d.%s", n, origin), dns.TypeA)
		r, _, err := client.ExchangeWithConn(m, conns[w])
		if err != nil {
			conns[w].Close()
			conns[w] = nil
			return -1
		}
		if r.Rcode != dns.RcodeSuccess || r.Truncated {
			return -1
		}
		a := 0
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == dns.TypeA {
				a++
			}
		}
		if a == want[n] {
			return 1
		}
		return 0
	}
	var res result
	deadline := start.Add(limit)
	got := make([]int, window)
	for {
		var miss bool
		for off := 0; off < len(pending) && !miss; {
			win := pending[off:min(off+window, len(pending))]
			sent := time.Since(start)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := w; k < len(win); k += workers {
						got[k] = ask(w, win[k])
					}
				}()
			}
			wg.Wait()
			keep := win[:0]
			for k, n := range win {
				if got[k] != 1 {
					keep = append(keep, n)
					miss = true
					if got[k] == 0 {
						res.lastMiss = sent
					}
				}
			}
			pending = slices.Delete(pending, off+len(keep), off+len(win))
			off += len(keep)
		}
		if len(pending) == 0 {
			res.done = time.Since(start)
			return res
		}
		if time.Now().After(deadline) {
			cleanup.Fatalf("%s: %d names not answering as expected within %s (e.g. n%d, want %d A records)", ip, len(pending), limit, pending[0], want[pending[0]])
		}
		time.Sleep(*poll)
	}
}

// fetch saves what url serves to file, trying up to 5 times: CoreDNS's
// pprof and prometheus listeners cut a response off after 5 s (their
// WriteTimeout), which a loaded server at 100,000 targets can take.
// fetch1 is one try of fetch, quietly.
func fetch1(url, file string) bool {
	b, err := get(url)
	return err == nil && os.WriteFile(file, b, 0o644) == nil
}

func fetch(url, file string) bool {
	for try := 1; try <= tries; try++ {
		if try > 1 {
			time.Sleep(3 * time.Second)
		}
		b, err := get(url)
		if err == nil {
			if err := os.WriteFile(file, b, 0o644); err != nil {
				log.Printf("profile: %v", err)
				return false
			}
			return true
		}
		log.Printf("profile: try %d: %v", try, err)
	}
	return false
}

// tries: a server that rebuilds all the time (a second of CPU per
// rebuild at 100,000 targets on a loaded machine) can miss 5 s often.
const tries = 5

var httpClient = &http.Client{Timeout: 2 * time.Minute}

func get(url string) ([]byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// gossipBytes is the gossip traffic a server counted, sent and received,
// messages and push/pull states; false if it could not be read (5
// tries). The filter spares the transfer, not the gather: call it rarely.
func gossipBytes(ip string) (float64, bool) {
	for try := 1; try <= tries; try++ {
		if try > 1 {
			time.Sleep(3 * time.Second)
		}
		b, err := get("http://" + ip + ":9153/metrics?name[]=coredns_healthdns_gossip_bytes_total")
		if err != nil {
			log.Printf("%s: metrics: try %d: %v", ip, try, err)
			continue
		}
		total, n := 0.0, 0
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "coredns_healthdns_gossip_bytes_total{") {
				continue
			}
			if !strings.Contains(l, `kind="message"`) && !strings.Contains(l, `kind="state"`) {
				continue
			}
			f := strings.Fields(l)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				total += v
				n++
			}
		}
		if n > 0 {
			return total, true
		}
		log.Printf("%s: metrics: try %d: no gossip_bytes_total samples", ip, try)
	}
	return 0, false
}

// cpuTime is the CPU time (user and system) a process has used.
func cpuTime(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
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
		cleanup.Fatalf("%v", err)
	}
}
