package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The operator's drain, end to end: three real servers on 127.0.5.1-3
// with a gossip key, each with a control API and a data directory, and
// healthdns-agent drain against one of them. It uses 127.0.5.0/24 only.

const drainConf = `gslb.example.com:%[1]d {
    bind %[2]s
    errors
    prometheus %[2]s:%[3]d
    healthdns {
        zonefile %[4]s
        interval 300ms
        timeout 200ms
        rise 1
        fall 1
        data %[5]s
        control %[2]s:%[6]d {
            tokenfile %[7]s
        }
        name app {
            policy roundrobin
            ttl 5
            target 192.0.2.10 check %[8]s
            target 192.0.2.11 check %[9]s
            target 192.0.2.12 check tcp 127.0.5.10:1
        }
        cluster {
            name %[10]s
            bind %[2]s:%[11]d
%[12]s            keyfile %[13]s
            label drain-e2e
            servers 3
            sync-timeout 3s
            gossip-interval 100ms
            pushpull-interval 1s
            probe-interval 200ms
        }
    }
}
`

type drainServer struct {
	*process
	name, ip, addr, control, metrics, dir string
}

type drainCluster struct {
	t       *testing.T
	dir     string
	token   string
	servers []*drainServer
}

func (c *drainCluster) start(s *drainServer) {
	c.t.Helper()
	cmd := exec.Command(binary, "-conf", filepath.Join(s.dir, "Corefile"))
	cmd.Dir = s.dir
	s.process = launchCmd(c.t, "server "+s.name, cmd)
	s.waitReadyOn(c.t, s.addr, 15*time.Second)
}

// agent runs healthdns-agent with args and returns its output and exit
// code.
func (c *drainCluster) agent(args ...string) (string, int) {
	c.t.Helper()
	cmd := exec.Command(agentBinary, args...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return string(out), 0
}

// drain runs `healthdns-agent VERB -server S -token-file T args...`
// against server s and fails the test if it fails.
func (c *drainCluster) drain(s *drainServer, verb string, args ...string) string {
	c.t.Helper()
	out, code := c.agent(append([]string{verb, "-server", "http://" + s.control, "-token-file", c.token}, args...)...)
	if code != 0 {
		c.t.Fatalf("healthdns-agent %s %v: exit %d: %s", verb, args, code, out)
	}
	return out
}

// answersOf is each server's A answer for app, sorted ("error" if none).
func answersOf(servers []*drainServer) [][]string {
	var out [][]string
	for _, s := range servers {
		a, ok := answerA(s.addr, "app.gslb.example.com")
		if !ok {
			a = []string{"error"}
		}
		out = append(out, a)
	}
	return out
}

func allAnswer(servers []*drainServer, want []string) bool {
	for _, a := range answersOf(servers) {
		if !slices.Equal(a, want) {
			return false
		}
	}
	return true
}

// waitAnswers waits until every server answers want and returns how long
// that took.
func (c *drainCluster) waitAnswers(what string, want []string, timeout time.Duration) time.Duration {
	c.t.Helper()
	d, ok := poll(timeout, 5*time.Millisecond, func() bool { return allAnswer(c.servers, want) })
	if !ok {
		c.t.Fatalf("%s: after %v the servers answer %v, want %v everywhere", what, timeout, answersOf(c.servers), want)
	}
	return d
}

func TestDrainCluster(t *testing.T) {
	c := &drainCluster{t: t, dir: t.TempDir()}
	a := &backend{t: t, kind: "http", addr: "127.0.5.10:0"}
	a.start()
	t.Cleanup(a.stop)
	b := &backend{t: t, kind: "http", addr: "127.0.5.10:0"}
	b.start()
	t.Cleanup(b.stop)
	ips := []string{"127.0.5.1", "127.0.5.2", "127.0.5.3"}
	ports := freePorts(t, 4, ips)
	dnsPort, gossPort, metPort, ctlPort := ports[0], ports[1], ports[2], ports[3]
	keyFile := writeFile(t, c.dir, "gossip.key", newGossipKey(t)+"\n")
	c.token = writeFile(t, c.dir, "control.token", "e2e-"+newGossipKey(t)+"\n")
	zonefile := writeFile(t, c.dir, "gslb.zone", zoneText)
	for i, ip := range ips {
		name := "s" + strconv.Itoa(i+1)
		s := &drainServer{name: name, ip: ip, dir: filepath.Join(c.dir, name),
			addr:    net.JoinHostPort(ip, strconv.Itoa(dnsPort)),
			control: net.JoinHostPort(ip, strconv.Itoa(ctlPort)),
			metrics: "http://" + net.JoinHostPort(ip, strconv.Itoa(metPort)) + "/metrics"}
		join := ""
		if i > 0 {
			var peers []string
			for _, p := range ips[:i] {
				peers = append(peers, net.JoinHostPort(p, strconv.Itoa(gossPort)))
			}
			join = "            join " + strings.Join(peers, " ") + "\n"
		}
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, s.dir, "Corefile", fmt.Sprintf(drainConf, dnsPort, ip, metPort, zonefile, filepath.Join(s.dir, "data"), ctlPort, c.token,
			a.check(), b.check(), name, gossPort, join, keyFile))
		c.servers = append(c.servers, s)
		c.start(s)
	}
	s1, s2, s3 := c.servers[0], c.servers[1], c.servers[2]
	both := sorted("192.0.2.10", "192.0.2.11")
	c.waitAnswers("at start", both, 10*time.Second)

	// Without the token, or with a wrong one: 401, and nothing changes.
	wrong := writeFile(t, c.dir, "wrong.token", "not-the-token-0123456789\n")
	for _, args := range [][]string{
		{"drain", "-server", "http://" + s1.control, "-token-file", wrong, "192.0.2.10"},
		{"drain", "-server", "http://" + s1.control, "192.0.2.10"},
	} {
		out, code := c.agent(args...)
		if code != 1 || !strings.Contains(out, "401") {
			t.Errorf("%v: exit %d: %s; want exit 1 with 401", args, code, out)
		}
	}
	if d, _ := poll(500*time.Millisecond, 50*time.Millisecond, func() bool { return !allAnswer(c.servers, both) }); d < 500*time.Millisecond {
		t.Fatalf("a refused drain changed the answers: %v", answersOf(c.servers))
	}
	if out := c.drain(s2, "drain", "-list"); !strings.Contains(out, "no overrides in force on s2") {
		t.Errorf("after refused writes s2 lists: %s", out)
	}

	// Drain on s1: every server stops answering it. Rounds of drain and
	// undrain measure how long that takes, from the CLI's start.
	var took, afterAck []time.Duration
	for i := range 5 {
		start := time.Now()
		c.drain(s1, "drain", "-reason", "bad deploy", "-who", "alice", "192.0.2.10")
		acked := time.Now()
		c.waitAnswers("drained", []string{"192.0.2.11"}, 3*time.Second)
		took, afterAck = append(took, time.Since(start)), append(afterAck, time.Since(acked))
		if i < 4 {
			c.drain(s1, "undrain", "192.0.2.10")
			c.waitAnswers("undrained", both, 3*time.Second)
		}
	}
	slices.Sort(took)
	slices.Sort(afterAck)
	t.Logf("drain on s1 -> all 3 servers stop answering it: min %v median %v max %v from the CLI's start; min %v median %v max %v after its answer (gossip interval 100ms)",
		took[0].Round(time.Millisecond), took[2].Round(time.Millisecond), took[4].Round(time.Millisecond),
		afterAck[0].Round(time.Millisecond), afterAck[2].Round(time.Millisecond), afterAck[4].Round(time.Millisecond))
	if took[4] > 2*time.Second {
		t.Errorf("a drain took %v to reach every server", took[4])
	}

	// Every view on another server says who and why; the verdict stays up.
	m := new(dns.Msg)
	m.SetQuestion("app.gslb.example.com.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	cl := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := cl.Exchange(m, s3.addr)
	if err != nil || !strings.Contains(r.String(), "target 192.0.2.10 tier=1 weight=1 owner=- verdict=up override=drain") || !strings.Contains(r.String(), "who=alice") || !strings.Contains(r.String(), "reason=bad_deploy") {
		t.Errorf("s3's matrix: %v\n%v", err, r)
	}
	for _, sample := range []string{
		`coredns_healthdns_target_override{name="app.gslb.example.com.",state="drain",target="192.0.2.10"}`,
		`coredns_healthdns_target_healthy{name="app.gslb.example.com.",target="192.0.2.10"}`,
	} {
		if v, err := metric(s2.metrics, sample); err != nil || v != 1 {
			t.Errorf("s2 %s = %v, %v; want 1", sample, v, err)
		}
	}

	// It survives kill -9 of every server: no one holds it in memory, the
	// data directories do. A restarted server's first answer has it.
	for _, s := range c.servers {
		s.Cmd.Process.Kill()
	}
	for _, s := range c.servers {
		<-s.Done
	}
	for _, s := range c.servers {
		c.start(s)
		if got, ok := answerA(s.addr, "app.gslb.example.com"); !ok || !slices.Equal(got, []string{"192.0.2.11"}) {
			t.Errorf("restarted %s first answers %v, want the drain kept", s.name, got)
		}
	}
	c.waitAnswers("after every server restarted", []string{"192.0.2.11"}, 3*time.Second)
	// And a server restarted alone (SIGTERM) while the others hold it.
	s3.Stop()
	c.start(s3)
	if got, _ := answerA(s3.addr, "app.gslb.example.com"); !slices.Equal(got, []string{"192.0.2.11"}) {
		t.Errorf("restarted s3 first answers %v", got)
	}

	// Cleared on s2, drained again on s3 for 2s: it expires everywhere.
	c.drain(s2, "undrain", "192.0.2.10")
	c.waitAnswers("undrained on s2", both, 3*time.Second)
	set := time.Now()
	c.drain(s3, "drain", "-for", "2s", "-reason", "short", "*/192.0.2.11")
	c.waitAnswers("drained for 2s", []string{"192.0.2.10"}, 3*time.Second)
	c.waitAnswers("the 2s drain expired", both, 5*time.Second)
	if exp := time.Since(set); exp < 1900*time.Millisecond {
		t.Errorf("a 2s drain ended after %v", exp)
	}
	t.Logf("a 2s drain ended on every server %v after the CLI was started", time.Since(set).Round(time.Millisecond))

	// Forced down and up, set on different servers, override the probes.
	c.drain(s3, "force", "down", "-reason", "maintenance", "192.0.2.10")
	c.waitAnswers("192.0.2.10 forced down", []string{"192.0.2.11"}, 3*time.Second)
	if v, err := metric(s1.metrics, `coredns_healthdns_target_healthy{name="app.gslb.example.com.",target="192.0.2.10"}`); err != nil || v != 1 {
		t.Errorf("a forced down hides the probes' verdict from metrics: %v %v", v, err)
	}
	c.drain(s1, "force", "up", "192.0.2.12") // its check fails
	c.waitAnswers("192.0.2.12 forced up", sorted("192.0.2.11", "192.0.2.12"), 3*time.Second)
	if v, err := metric(s2.metrics, `coredns_healthdns_target_override{name="app.gslb.example.com.",state="up",target="192.0.2.12"}`); err != nil || v != 1 {
		t.Errorf("s2 target_override for the forced up: %v %v", v, err)
	}
	out := c.drain(s2, "drain", "-list")
	if !strings.Contains(out, "down   addr=192.0.2.10  1 target") || !strings.Contains(out, "up     addr=192.0.2.12  1 target") {
		t.Errorf("s2 lists:\n%s", out)
	}
	// A reload (SIGUSR1) keeps the overrides and the control listener.
	if err := s2.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool { return strings.Contains(s2.Out.String(), "Reload") }); !ok {
		t.Fatalf("s2 did not reload:\n%s", s2.Out.String())
	}
	if d, _ := poll(time.Second, 20*time.Millisecond, func() bool { return !allAnswer(c.servers, sorted("192.0.2.11", "192.0.2.12")) }); d < time.Second {
		t.Errorf("after s2's reload the answers are %v", answersOf(c.servers))
	}
	if out := c.drain(s2, "drain", "-list"); !strings.Contains(out, "addr=192.0.2.10") {
		t.Errorf("s2 lists after its reload:\n%s", out)
	}
	c.drain(s2, "force", "-clear", "192.0.2.10")
	c.drain(s3, "force", "-clear", "192.0.2.12")
	c.waitAnswers("forced states cleared", both, 3*time.Second)
	if v, err := metric(s1.metrics, `coredns_healthdns_overrides{state="down"}`); err != nil || v != 0 {
		t.Errorf("s1 overrides{down} after the clears: %v %v", v, err)
	}
}
