package test

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestReadyWaitsForColdStart: the ready plugin's /ready (a Kubernetes
// readinessProbe) says 200 only once the server answers. Here its only
// peer accepts the join's connection and never replies, so the cold-start
// sync waits its whole sync-timeout; /ready must say 503 all that time,
// and DNS must answer as soon as it says 200.
func TestReadyWaitsForColdStart(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.251:26946")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	dir := t.TempDir()
	writeFile(t, dir, "zone.db", zoneText)
	writeFile(t, dir, "gossip.key", newGossipKey(t)+"\n")
	const ip = "127.0.0.250"
	dnsAddr, readyURL := ip+":26353", "http://"+ip+":26181/ready"
	writeFile(t, dir, "Corefile", fmt.Sprintf(`gslb.example.com:26353 {
    bind %[1]s
    ready %[1]s:26181
    healthdns {
        zonefile zone.db
        cluster {
            name solo
            bind %[1]s:26946
            join 127.0.0.251:26946
            keyfile gossip.key
            sync-timeout 3s
        }
    }
}
`, ip))
	cmd := exec.Command(binary, "-conf", "Corefile")
	cmd.Dir = dir
	p := launchCmd(t, "healthdns", cmd)

	start := time.Now()
	cl := &http.Client{Timeout: time.Second}
	var unready int
	var readyAt time.Duration
	if _, ok := poll(20*time.Second, 20*time.Millisecond, func() bool {
		if p.Exited() {
			return true
		}
		resp, err := cl.Get(readyURL)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			unready++
			return false
		}
		readyAt = time.Since(start)
		return true
	}); !ok || p.Exited() {
		t.Fatalf("never ready (exited %v):\n%s", p.Exited(), p.Out.String())
	}
	if unready == 0 {
		t.Errorf("/ready said 200 from the start, before the cold-start sync was over")
	}
	// The listeners open right after the plugins' start-up.
	if _, ok := poll(time.Second, 20*time.Millisecond, func() bool {
		m, err := exchange(dnsAddr, "udp", zone, dns.TypeSOA, false)
		return err == nil && m.Rcode == dns.RcodeSuccess
	}); !ok {
		t.Errorf("ready after %v, but not answering DNS a second later", readyAt)
	}
	t.Logf("/ready said 503 %d times, then 200 after %v (sync-timeout 3s)", unready, readyAt.Round(time.Millisecond))
}
