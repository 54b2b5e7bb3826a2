// Command failover measures how long a cluster of healthdns servers takes to
// drop a killed backend from every server's answers, and to take it back
// when it returns. It starts 3 servers and 2 agents on 127.0.0.41-45 with 1 s
// checks and fall 2 (rise 2), kills the preferred backend N times in a row,
// and prints p50/p95/max for both directions. Only loopback is used.
//
//	go run ./test/bench/failover -rounds 20
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
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
)

var (
	rounds   = flag.Int("rounds", 20, "kills (and recoveries) to measure")
	interval = flag.Duration("interval", time.Second, "check interval")
	fall     = flag.Int("fall", 2, "failures in a row to go down (rise is the same)")
	gossipIv = flag.Duration("gossip", 200*time.Millisecond, "gossip interval")
	bin      = flag.String("bin", "", "directory with healthdns and healthdns-agent (default: build them)")
)

var servers = []string{"127.0.0.41", "127.0.0.42", "127.0.0.43"}
var agents = []string{"127.0.0.44", "127.0.0.45"}

const (
	east = "192.0.2.10"
	west = "198.51.100.10"
	port = "127.0.0.1:9041"
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "healthdns-failover")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if *bin == "" {
		*bin = dir
		for _, c := range []string{"healthdns", "healthdns-agent"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "./cmd/"+c).CombinedOutput()
			if err != nil {
				log.Fatalf("build %s: %v\n%s", c, err, out)
			}
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	must(os.WriteFile(filepath.Join(dir, "gossip.key"), []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	zone := "$ORIGIN gslb.example.com.\n@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.41\n"
	must(os.WriteFile(filepath.Join(dir, "zone"), []byte(zone), 0o644))

	westSrv := backend("127.0.0.1:9042")
	defer westSrv.Close()
	eastSrv := backend(port)

	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	join := strings.Join([]string{servers[0] + ":7946", servers[1] + ":7946", servers[2] + ":7946"}, " ")
	for i, ip := range servers {
		cf := fmt.Sprintf(`gslb.example.com:1053 {
    bind %s
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
            target %s tier 2 check http://127.0.0.1:9042/
        }
        cluster {
            name dns%d
            bind %s:7946
            join %s
            keyfile %s
            label bench
            gossip-interval %s
        }
    }
}
`, ip, filepath.Join(dir, "zone"), *interval, *interval/2, *fall, *fall, east, port, west, i+1, ip, join, filepath.Join(dir, "gossip.key"), *gossipIv)
		p := filepath.Join(dir, fmt.Sprintf("Corefile%d", i))
		must(os.WriteFile(p, []byte(cf), 0o644))
		procs = append(procs, start(dir, filepath.Join(*bin, "healthdns"), "-conf", p))
	}
	for i, ip := range agents {
		procs = append(procs, start(dir, filepath.Join(*bin, "healthdns-agent"), "-name", fmt.Sprintf("agent%d", i+1),
			"-bind", ip+":7946", "-join", servers[0]+":7946,"+servers[1]+":7946", "-keyfile", filepath.Join(dir, "gossip.key"),
			"-label", "bench", "-gossip-interval", gossipIv.String()))
	}
	if _, err := waitAll(east, time.Minute); err != nil {
		log.Fatalf("cluster never answered %s: %v", east, err)
	}
	var down, up []time.Duration
	for i := 0; i < *rounds; i++ {
		eastSrv.Close()
		d, err := waitAll(west, 30*time.Second)
		if err != nil {
			log.Fatalf("round %d: failover: %v", i+1, err)
		}
		down = append(down, d)
		eastSrv = backend(port)
		u, err := waitAll(east, 30*time.Second)
		if err != nil {
			log.Fatalf("round %d: recovery: %v", i+1, err)
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

// waitAll polls every server until each answers exactly want, and returns
// the time that took.
func waitAll(want string, limit time.Duration) (time.Duration, error) {
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
		log.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })}
	go s.Serve(ln)
	return s
}

func start(dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(context.Background(), name, args...)
	cmd.Dir = dir
	f, err := os.Create(filepath.Join(dir, filepath.Base(name)+"-"+strings.ReplaceAll(strings.Join(args, "_"), "/", "")[:20]+".log"))
	must(err)
	cmd.Stdout, cmd.Stderr = f, f
	must(cmd.Start())
	return cmd
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
