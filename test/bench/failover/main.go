// Command failover measures how long a cluster of healthdns servers takes to
// drop a killed backend from every server's answers, and to take it back
// when it returns. It starts 3 servers and 2 agents on 127.0.0.41-45 with 1 s
// checks and fall 2 (rise 2), kills the preferred backend N times in a row,
// and prints p50/p95/max for both directions. Only loopback is used.
//
// With -mode datacenter it measures the failure healthdns exists for: a
// datacenter dies whole. Three servers (servers 3) and three agents on
// 127.0.0.151-156: east holds dns1, agent1 and agent2 and the preferred
// backend; west dns2 and agent3; a third site dns3. Each round kills east's
// backend, dns1 and both its agents at once (SIGKILL) and times until dns2
// and dns3 both answer west; then restarts them all and times until the
// survivors answer east again.
//
//	go run ./test/bench/failover -rounds 20
//	go run ./test/bench/failover -mode datacenter -rounds 10
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/healthdns/healthdns/test/bench/internal/cleanup"
)

var (
	mode     = flag.String("mode", "backend", "backend: kill the preferred backend; datacenter: kill east's backend, server and agents at once")
	rounds   = flag.Int("rounds", 20, "kills (and recoveries) to measure")
	interval = flag.Duration("interval", time.Second, "check interval")
	fall     = flag.Int("fall", 2, "failures in a row to go down (rise is the same)")
	gossipIv = flag.Duration("gossip", 200*time.Millisecond, "gossip interval")
	verbose  = flag.Bool("v", false, "datacenter mode: print the survivors' last log lines after each loss")
	slowLogs = flag.Duration("slow", 0, "datacenter mode: print every survivor's log since the kill for a round slower than this (0: never)")
	bin      = flag.String("bin", "", "directory with healthdns and healthdns-agent (default: build them)")
)

var (
	servers = []string{"127.0.0.41", "127.0.0.42", "127.0.0.43"}
	agents  = []string{"127.0.0.44", "127.0.0.45"}
	// agentJoin lists the servers each agent joins.
	agentJoin = []string{"127.0.0.41:7946,127.0.0.42:7946", "127.0.0.41:7946,127.0.0.42:7946"}
	port      = "127.0.0.1:9041" // east's backend
	westPort  = "127.0.0.1:9042"
	voters    = "            servers 3\n"
)

const (
	east = "192.0.2.10"
	west = "198.51.100.10"
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	defer cleanup.Run()
	dir, err := os.MkdirTemp("", "healthdns-failover")
	if err != nil {
		log.Fatal(err)
	}
	cleanup.Add(func() { os.RemoveAll(dir) })
	if *bin == "" {
		*bin = dir
		for _, c := range []string{"healthdns", "healthdns-agent"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "./cmd/"+c).CombinedOutput()
			if err != nil {
				cleanup.Fatalf("build %s: %v\n%s", c, err, out)
			}
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	must(os.WriteFile(filepath.Join(dir, "gossip.key"), []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	zone := "$ORIGIN gslb.example.com.\n@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.41\n"
	must(os.WriteFile(filepath.Join(dir, "zone"), []byte(zone), 0o644))

	datacenter := *mode == "datacenter"
	if datacenter {
		servers = []string{"127.0.0.151", "127.0.0.152", "127.0.0.153"}
		agents = []string{"127.0.0.154", "127.0.0.155", "127.0.0.156"}
		// agent1 and agent2 live in east, next to dns1; agent3 in west.
		agentJoin = []string{"127.0.0.151:7946,127.0.0.152:7946", "127.0.0.151:7946,127.0.0.153:7946", "127.0.0.152:7946,127.0.0.153:7946"}
		port, westPort = "127.0.0.1:9151", "127.0.0.1:9152"
	} else if *mode != "backend" {
		cleanup.Fatalf("-mode %q: want backend or datacenter", *mode)
	}

	westSrv := backend(westPort)
	defer westSrv.Close()
	eastSrv := backend(port)

	var procs []*exec.Cmd
	cleanup.Add(func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	join := strings.Join([]string{servers[0] + ":7946", servers[1] + ":7946", servers[2] + ":7946"}, " ")
	serverArgs := make([][]string, len(servers))
	for i, ip := range servers {
		cf := fmt.Sprintf(`gslb.example.com:1053 {
    bind %s
    prometheus %s:9153
    healthdns {
        zonefile %s
        interval %s
        timeout %s
        rise %d
        fall %d
        name app {
            policy priority
            ttl 1
            target %s tier 1 check http://%s/
            target %s tier 2 check http://%s/
        }
        cluster {
            name dns%d
            bind %s:7946
            join %s
            keyfile %s
            label bench
%s            gossip-interval %s
        }
    }
}
`, ip, ip, filepath.Join(dir, "zone"), *interval, *interval/2, *fall, *fall, east, port, west, westPort, i+1, ip, join, filepath.Join(dir, "gossip.key"), voters, *gossipIv)
		p := filepath.Join(dir, fmt.Sprintf("Corefile%d", i))
		must(os.WriteFile(p, []byte(cf), 0o644))
		serverArgs[i] = []string{"-conf", p}
		procs = append(procs, start(dir, fmt.Sprintf("dns%d", i+1), filepath.Join(*bin, "healthdns"), serverArgs[i]...))
	}
	agentArgs := make([][]string, len(agents))
	for i, ip := range agents {
		agentArgs[i] = []string{"-name", fmt.Sprintf("agent%d", i+1),
			"-bind", ip + ":7946", "-join", agentJoin[i], "-keyfile", filepath.Join(dir, "gossip.key"),
			"-label", "bench", "-gossip-interval", gossipIv.String()}
		procs = append(procs, start(dir, fmt.Sprintf("agent%d", i+1), filepath.Join(*bin, "healthdns-agent"), agentArgs[i]...))
	}
	if _, err := waitAll(servers, east, time.Minute); err != nil {
		cleanup.Fatalf("cluster never answered %s: %v", east, err)
	}
	if datacenter {
		// dns1 is procs[0]; agent1 and agent2 come after the servers.
		eastProcs := []int{0, len(servers), len(servers) + 1}
		survivors := servers[1:]
		var down, up []time.Duration
		for i := 0; i < *rounds; i++ {
			if err := waitVoters(servers, 3, time.Minute); err != nil {
				cleanup.Fatalf("round %d: %v", i+1, err)
			}
			killed := time.Now()
			for _, k := range eastProcs {
				procs[k].Process.Kill()
			}
			eastSrv.Close()
			for _, k := range eastProcs {
				procs[k].Wait()
			}
			d, err := waitAll(survivors, west, 30*time.Second)
			if err != nil {
				cleanup.Fatalf("round %d: failover: %v", i+1, err)
			}
			down = append(down, d)
			if *slowLogs > 0 && d > *slowLogs {
				fmt.Printf("round %d took %.3fs; logs since the kill (seconds after it):\n", i+1, d.Seconds())
				for _, n := range []string{"dns2", "dns3", "agent3"} {
					printSince(filepath.Join(dir, n+".log"), n, killed)
				}
			}
			if *verbose {
				for _, n := range []string{"dns2", "dns3"} {
					b, _ := os.ReadFile(filepath.Join(dir, n+".log"))
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					fmt.Printf("  %s: %s\n", n, strings.Join(lines[max(0, len(lines)-4):], "\n    "))
				}
			}
			eastSrv = backend(port)
			procs[0] = start(dir, "dns1", filepath.Join(*bin, "healthdns"), serverArgs[0]...)
			procs[len(servers)] = start(dir, "agent1", filepath.Join(*bin, "healthdns-agent"), agentArgs[0]...)
			procs[len(servers)+1] = start(dir, "agent2", filepath.Join(*bin, "healthdns-agent"), agentArgs[1]...)
			u, err := waitAll(survivors, east, 30*time.Second)
			if err != nil {
				cleanup.Fatalf("round %d: recovery: %v", i+1, err)
			}
			up = append(up, u)
			fmt.Printf("round %2d: datacenter loss %6.3fs  recovery %6.3fs\n", i+1, d.Seconds(), u.Seconds())
			if _, err := waitAll(servers, east, 30*time.Second); err != nil {
				cleanup.Fatalf("round %d: dns1 after its restart: %v", i+1, err)
			}
			// Let the rise/fall counters settle before the next kill.
			time.Sleep(time.Duration(*fall) * *interval)
		}
		eastSrv.Close()
		bound := time.Duration(*fall)**interval + *gossipIv + time.Second
		fmt.Printf("\ndatacenter loss: east's backend, dns1 and 2 of 3 agents killed at once; 3 servers (servers 3), interval %s, fall/rise %d, gossip %s, %d rounds (bound interval*fall+gossip+1s = %s)\n",
			*interval, *fall, *gossipIv, *rounds, bound)
		fmt.Printf("failover (dns2 and dns3 answer west): p50 %.2fs p95 %.2fs max %.2fs\n", pct(down, 50), pct(down, 95), pct(down, 100))
		fmt.Printf("recovery (dns2 and dns3 answer east): p50 %.2fs p95 %.2fs max %.2fs\n", pct(up, 50), pct(up, 95), pct(up, 100))
		fmt.Printf("datacenter loss p95: %.1fs\n", pct(down, 95))
		return
	}
	var down, up []time.Duration
	for i := 0; i < *rounds; i++ {
		eastSrv.Close()
		d, err := waitAll(servers, west, 30*time.Second)
		if err != nil {
			cleanup.Fatalf("round %d: failover: %v", i+1, err)
		}
		down = append(down, d)
		eastSrv = backend(port)
		u, err := waitAll(servers, east, 30*time.Second)
		if err != nil {
			cleanup.Fatalf("round %d: recovery: %v", i+1, err)
		}
		up = append(up, u)
		fmt.Printf("round %2d: failover %6.3fs  recovery %6.3fs\n", i+1, d.Seconds(), u.Seconds())
		// Let the rise/fall counters settle before the next kill.
		time.Sleep(time.Duration(*fall) * *interval)
	}
	eastSrv.Close()
	bound := time.Duration(*fall)**interval + time.Second
	fmt.Printf("\n3 servers, 2 agents, interval %s, fall/rise %d, gossip %s, %d rounds (target p95 <= interval*fall+1s = %s)\n", *interval, *fall, *gossipIv, *rounds, bound)
	fmt.Printf("failover: p50 %.2fs p95 %.2fs max %.2fs\n", pct(down, 50), pct(down, 95), pct(down, 100))
	fmt.Printf("recovery: p50 %.2fs p95 %.2fs max %.2fs\n", pct(up, 50), pct(up, 95), pct(up, 100))
	fmt.Printf("failover p95: %.1fs\n", pct(down, 95))
}

// waitVoters waits until every server hears n voters (its
// coredns_healthdns_voters_heard).
func waitVoters(servers []string, n int, limit time.Duration) error {
	start := time.Now()
	cl := &http.Client{Timeout: time.Second}
	want := fmt.Sprintf("coredns_healthdns_voters_heard %d\n", n)
	for time.Since(start) < limit {
		ok := true
		for _, s := range servers {
			resp, err := cl.Get("http://" + s + ":9153/metrics")
			if err != nil {
				ok = false
				break
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), want) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not every server hears %d voters within %s", n, limit)
}

// waitAll polls every server until each answers exactly want, and returns
// the time that took.
func waitAll(servers []string, want string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("app.gslb.example.com.", dns.TypeA)
	for time.Since(start) < limit {
		ok := true
		for _, s := range servers {
			r, _, err := c.Exchange(m, s+":1053")
			if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want {
				ok = false
				break
			}
		}
		if ok {
			return time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("not every server answered %s within %s", want, limit)
}

func pct(ds []time.Duration, p int) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Seconds()
}

// backend is a minimal HTTP server; Close kills it like a crash would
// (its listener and connections go away).
func backend(addr string) *http.Server {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		cleanup.Fatalf("%v", err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })}
	go s.Serve(ln)
	return s
}

// start runs a process with its output appended to dir/label.log, each
// line prefixed with the wall-clock time it was read (Unix nanoseconds),
// so that a slow round's logs can be laid out against the kill.
func start(dir, label, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(context.Background(), name, args...)
	cmd.Dir = dir
	f, err := os.OpenFile(filepath.Join(dir, label+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	must(err)
	r, w, err := os.Pipe()
	must(err)
	cmd.Stdout, cmd.Stderr = w, w
	must(cmd.Start())
	w.Close()
	go func() {
		defer f.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(f, "%d %s\n", time.Now().UnixNano(), sc.Text())
		}
	}()
	return cmd
}

// printSince prints the lines of a log written by start after t, with
// their time relative to t.
func printSince(path, label string, t time.Time) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		ns, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var at int64
		if _, err := fmt.Sscan(ns, &at); err != nil || at < t.UnixNano() {
			continue
		}
		fmt.Printf("  %7.3f %-6s %s\n", float64(at-t.UnixNano())/1e9, label, rest)
	}
}

func must(err error) {
	if err != nil {
		cleanup.Fatalf("%v", err)
	}
}
