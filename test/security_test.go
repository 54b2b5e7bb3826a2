package test

import (
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/status"

	"github.com/miekg/dns"
)

// The security process tests use 127.0.2.0/24 only.

// securityCorefile is a one-server Corefile on ip:dnsPort with a cluster
// block (cluster is its body) and a status listener on ip:statusPort.
func securityCorefile(ip string, dnsPort, statusPort int, backend, cluster string) string {
	return fmt.Sprintf(`gslb.example.com:%[2]d {
    bind %[1]s
    healthdns {
        zonefile zone.db
        interval 200ms
        timeout 150ms
        name app {
            target 192.0.2.10 check %[4]s
        }
        status %[1]s:%[3]d
        cluster {
%[5]s
        }
    }
}
`, ip, dnsPort, statusPort, backend, cluster)
}

// newLocalBackend starts a backend of kind on ip (an address of this
// file's block), stopped in t.Cleanup.
func newLocalBackend(t *testing.T, kind, ip string) *backend {
	t.Helper()
	b := &backend{t: t, kind: kind, addr: ip + ":0"}
	b.start()
	t.Cleanup(b.stop)
	return b
}

// TestGossipNeedsKey: a cluster block without a key file stops start-up
// with an error naming the line; with insecure the server starts, says so
// loudly and in /status; and an agent without the key can neither join a
// keyed cluster nor publish into it, while one with the key can.
func TestGossipNeedsKey(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "zone.db", zoneText)
	key := writeFile(t, dir, "gossip.key", newGossipKey(t)+"\n")
	be := newLocalBackend(t, "tcp", "127.0.2.9")
	const ip = "127.0.2.1"

	// No key: refused, naming the cluster line (line 11 of the Corefile).
	keyless := securityCorefile(ip, 27053, 27080, be.check(), "            name dns1\n            bind "+ip+":27946")
	p := launch(t, dir, "-conf", writeFile(t, dir, "Corefile.keyless", keyless))
	if code := p.waitExit(t, 20*time.Second); code == 0 {
		t.Fatalf("keyless cluster started; output:\n%s", p.Out.String())
	}
	if out := p.Out.String(); !regexp.MustCompile(`Corefile.keyless:11 - Error during parsing: cluster: no keyfile`).MatchString(out) || !strings.Contains(out, "insecure") {
		t.Fatalf("keyless cluster: the error does not name line 11 and the way out:\n%s", out)
	}

	// insecure: starts, warns, and says so in /status.
	insecure := securityCorefile(ip, 27053, 27080, be.check(), "            name dns1\n            bind "+ip+":27946\n            insecure")
	s := &server{process: launch(t, dir, "-conf", writeFile(t, dir, "Corefile.insecure", insecure)), addr: ip + ":27053"}
	s.waitReady(t, 15*time.Second)
	if !strings.Contains(s.Out.String(), "INSECURE") {
		t.Errorf("insecure server: no INSECURE warning in its log:\n%s", s.Out.String())
	}
	d, err := getDoc("http://" + ip + ":27080/status")
	if err != nil || d.Cluster == nil || !d.Cluster.Insecure {
		t.Fatalf("insecure server /status cluster = %+v, %v; want insecure true", d.Cluster, err)
	}
	s.Stop()

	// Keyed: a keyless agent is refused, a keyed one joins.
	keyed := securityCorefile(ip, 27053, 27080, be.check(), "            name dns1\n            bind "+ip+":27946\n            keyfile "+key+"\n            label sec\n            gossip-interval 50ms\n            pushpull-interval 500ms")
	s = &server{process: launch(t, dir, "-conf", writeFile(t, dir, "Corefile", keyed)), addr: ip + ":27053"}
	s.waitReady(t, 15*time.Second)
	statusURL := "http://" + ip + ":27080/status"
	if d, err := getDoc(statusURL); err != nil || d.Cluster == nil || d.Cluster.Insecure {
		t.Fatalf("keyed server /status cluster = %+v, %v; want insecure false", d, err)
	}
	agent := func(name, ip string, extra ...string) *process {
		args := append([]string{"-name", name, "-observer", name, "-bind", ip + ":27946", "-join", "127.0.2.1:27946",
			"-label", "sec", "-gossip-interval", "50ms", "-pushpull-interval", "500ms", "-leave-timeout", "1s"}, extra...)
		return launchCmd(t, "healthdns-agent "+name, exec.Command(agentBinary, args...))
	}
	knows := func(d *status.Document, name string) bool {
		return slices.ContainsFunc(d.Members, func(m status.Member) bool { return m.Name == name }) ||
			slices.ContainsFunc(d.Views, func(v status.View) bool { return v.Node == name })
	}
	intruder := agent("intruder", "127.0.2.2", "-insecure")
	if _, ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		return intruder.Exited() || strings.Count(intruder.Out.String(), "retrying in") >= 2
	}); !ok || intruder.Exited() {
		t.Fatalf("keyless agent: no failed join attempts logged (exited %v):\n%s", intruder.Exited(), intruder.Out.String())
	}
	friend := agent("friend", "127.0.2.3", "-keyfile", key)
	var last *status.Document
	if _, ok := poll(15*time.Second, 100*time.Millisecond, func() bool {
		last, err = getDoc(statusURL)
		return err == nil && knows(last, "friend") && slices.ContainsFunc(last.Views, func(v status.View) bool { return v.Node == "friend" && v.Up > 0 })
	}); !ok {
		t.Fatalf("keyed agent did not join and publish: %+v, %v\n%s", last, err, friend.Out.String())
	}
	if knows(last, "intruder") {
		t.Fatalf("the server lists the keyless agent: %+v", last)
	}
}

// TestIdleClientsDoNotStarveProbes: with the server's descriptors limited
// to 256 (prlimit), 1,000 clients that keep connections open to the status
// listener and reconnect when closed would once have used every
// descriptor, so probes failed with "too many open files" and every name
// answered its fallback. Now the listener holds at most its bound and
// closes the rest: the healthy target alone is answered, over UDP and
// TCP, all through the attack, and the refusals are counted.
func TestIdleClientsDoNotStarveProbes(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("no prlimit")
	}
	dir := t.TempDir()
	writeFile(t, dir, "zone.db", zoneText)
	up := newLocalBackend(t, "http", "127.0.2.19")
	const ip = "127.0.2.11"
	// 127.0.2.18:1 refuses: the second target is down, so an answer of
	// the first alone is the healthy answer and both is the fallback.
	corefile := fmt.Sprintf(`gslb.example.com:27153 {
    bind %[1]s
    prometheus %[1]s:27191
    healthdns {
        zonefile zone.db
        interval 200ms
        timeout 150ms
        rise 1
        fall 2
        name app {
            target 192.0.2.10 check %[2]s
            target 192.0.2.11 check tcp 127.0.2.18:1
        }
        status %[1]s:27180
    }
}
`, ip, up.check())
	path := writeFile(t, dir, "Corefile", corefile)
	cmd := exec.Command("prlimit", "--nofile=256:256", binary, "-conf", path)
	cmd.Dir = dir
	s := &server{process: launchCmd(t, "healthdns (256 descriptors)", cmd), addr: ip + ":27153"}
	s.waitReady(t, 15*time.Second)
	healthy := func(network string) error {
		m, err := exchange(s.addr, network, "app."+zone, dns.TypeA, false)
		if err != nil {
			return err
		}
		if got := addrs(m); !slices.Equal(got, []string{"192.0.2.10"}) {
			return fmt.Errorf("answer %v", got)
		}
		return nil
	}
	if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool { return healthy("udp") == nil }); !ok {
		t.Fatalf("never the healthy answer: %v", healthy("udp"))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var dials atomic.Int64
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", ip+":27180", time.Second)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				dials.Add(1)
				// Say nothing and hold it until the server closes it.
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				go func() { <-stop; c.Close() }()
				c.Read(make([]byte, 1))
				c.Close()
			}
		}()
	}
	// Six seconds: the idle ones outlive the header timeout (5 s) and
	// are replaced; fall 2 × 200 ms would have turned the target down
	// many times over.
	var bad []string
	deadline := time.Now().Add(6 * time.Second)
	queries := 0
	for time.Now().Before(deadline) && queries < 300 {
		for _, network := range []string{"udp", "tcp"} {
			if err := healthy(network); err != nil {
				bad = append(bad, network+": "+err.Error())
			}
		}
		queries++
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d answers during the attack were not the healthy one, e.g. %v", len(bad), 2*queries, bad[0])
	}
	t.Logf("%d connections made to the status listener during the attack; %d queries over UDP and TCP", dials.Load(), 2*queries)
	refused, err := metric("http://"+ip+":27191/metrics", `coredns_healthdns_listener_refused_total{listener="status"}`)
	if err != nil || refused == 0 {
		t.Errorf("refusals counted: %v, %v; want some", refused, err)
	}
	if strings.Contains(s.Out.String(), "too many open files") {
		t.Errorf("the server ran out of descriptors:\n%s", s.Out.String())
	}
	// The status listener serves again once the clients are gone.
	if _, ok := poll(10*time.Second, 100*time.Millisecond, func() bool {
		d, err := getDoc("http://" + ip + ":27180/status")
		return err == nil && len(d.Names) == 1
	}); !ok {
		t.Fatal("status listener does not serve after the attack")
	}
}

// TestSecondServerOnOneAddress: a second healthdns on a DNS address that
// another serves stops at start-up naming the first one's pid, instead of
// splitting the queries with it; shared (or multisocket) lets it on
// purpose; and the lock goes with the first process, kill -9 included.
func TestSecondServerOnOneAddress(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "zone.db", zoneText)
	const addr = "127.0.2.21:27253"
	corefile := func(extra, plugins string) string {
		return fmt.Sprintf(`gslb.example.com:27253 {
    bind 127.0.2.21
%s
    healthdns {
        zonefile zone.db
%s
    }
}
`, plugins, extra)
	}
	first := startServer(t, dir, addr, corefile("", ""))
	second := launch(t, dir, "-conf", writeFile(t, dir, "Corefile.second", corefile("", "")))
	if code := second.waitExit(t, 20*time.Second); code == 0 {
		t.Fatal("the second server started")
	}
	want := fmt.Sprintf("Corefile.second:4 - Error during parsing: another healthdns process (pid %d) already serves DNS on 127.0.2.21:27253", first.Cmd.Process.Pid)
	if !strings.Contains(second.Out.String(), want) {
		t.Fatalf("second server's error does not say %q:\n%s", want, second.Out.String())
	}
	if m := first.query(t, "udp", zone, dns.TypeSOA, false); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("the first server after the refused second: %v", m)
	}

	// On purpose: shared, or multisocket.
	for _, c := range []struct{ extra, plugins string }{{"        shared", ""}, {"", "    multisocket 2"}} {
		p := launch(t, dir, "-conf", writeFile(t, dir, "Corefile.on-purpose", corefile(c.extra, c.plugins)))
		p.waitReadyOn(t, addr, 15*time.Second)
		p.Stop()
	}

	// kill -9 drops the lock: a new server starts at once.
	first.Cmd.Process.Kill()
	<-first.Done
	third := launch(t, dir, "-conf", writeFile(t, dir, "Corefile.third", corefile("", "")))
	third.waitReadyOn(t, addr, 15*time.Second)
}
