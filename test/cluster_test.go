package test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"

	"github.com/miekg/dns"
)

// The cluster tests run real healthdns servers and agents, each on its own
// 127.0.0.x address (a block of ten per test, so tests cannot collide),
// with the fast timing below, a gossip key made for the test, and real
// HTTP and TCP backends. Every node of a test uses the same DNS, gossip
// and metrics (or agent status) port on its own address. Some tests add
// in-process gossip nodes to speak for observers the test controls.
//
// TestClusterPartition needs root and iptables (it skips without them);
// the rules it adds carry a comment with the test process's pid and are
// deleted in t.Cleanup, or by the next run if this one was killed.
const (
	cInterval   = 300 * time.Millisecond
	cTimeout    = 150 * time.Millisecond
	cRise       = 2
	cFall       = 2
	cGossip     = 100 * time.Millisecond
	cPushPull   = time.Second
	cMemberProb = 200 * time.Millisecond
	// cStale bounds the age of a live observer's view: its heartbeat
	// lag, far less than this.
	cStale = 2 * time.Second
	cLabel = "e2e"

	// cFailBound and cRiseBound are the design's promise for a cluster:
	// interval × fall (or rise) plus one gossip round, with a second of
	// slack.
	cFailBound = cInterval*cFall + cGossip + time.Second
	cRiseBound = cInterval*cRise + cGossip + time.Second
)

// clusterNames is the names block of the clusters with real backends: app
// answers every healthy target of east (HTTP) and west (TCP).
const clusterNames = `        name app {
            policy roundrobin
            ttl 5
            target 192.0.2.10    check %s
            target 198.51.100.10 check %s
        }
`

var (
	appBoth = sorted("192.0.2.10", "198.51.100.10")
	appWest = []string{"198.51.100.10"}
)

// cluster is one test's set of nodes.
type cluster struct {
	t        *testing.T
	base     int    // node i listens on 127.0.0.(base+i)
	block    string // the first three bytes of its addresses, "127.0.0" unless newClusterIn says
	dir      string
	keyFile  string
	zonefile string
	names    string // the Corefile's name blocks
	dnsPort  int
	gossPort int
	metPort  int
	servers  []*clusterServer
	agents   []*clusterAgent
	// voters is the servers option of every server (servers and
	// witnesses); 0 leaves it out (voters remembered instead).
	voters int

	mu    sync.Mutex
	procs []*process
}

// clusterServer is a healthdns server of a cluster.
type clusterServer struct {
	*process
	name    string
	ip      string
	addr    string // DNS host:port
	metrics string // /metrics URL
	conf    string // Corefile text
	dir     string
	gid     int // run with this group ID (0: the test's own)
}

// clusterAgent is a healthdns-agent of a cluster.
type clusterAgent struct {
	*process
	name   string
	ip     string
	status string // /status URL
	args   []string
	gid    int
}

// newCluster prepares a cluster on 127.0.0.(base+1...): a gossip key
// made for this test, the test zone, and ports free on every address. Its
// servers say servers 1; a test with more voters sets c.voters.
func newCluster(t *testing.T, base int, names string) *cluster {
	t.Helper()
	return newClusterIn(t, "127.0.0", base, names)
}

// newClusterIn is newCluster on block.(base+1...), block being the first
// three bytes of a 127.x.y.0/24 address block.
func newClusterIn(t *testing.T, block string, base int, names string) *cluster {
	t.Helper()
	c := &cluster{t: t, base: base, block: block, dir: t.TempDir(), names: names, voters: 1}
	c.keyFile = writeFile(t, c.dir, "gossip.key", newGossipKey(t)+"\n")
	c.zonefile = writeFile(t, c.dir, "gslb.zone", zoneText)
	var ips []string
	for i := 1; i <= 9; i++ {
		ips = append(ips, c.ip(i))
	}
	ports := freePorts(t, 3, ips)
	c.dnsPort, c.gossPort, c.metPort = ports[0], ports[1], ports[2]
	return c
}

// newGossipKey is `head -c 32 /dev/urandom | base64`.
func newGossipKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

func (c *cluster) ip(i int) string { return fmt.Sprintf("%s.%d", c.block, c.base+i) }

func (c *cluster) gossipAddr(ip string) string {
	return net.JoinHostPort(ip, strconv.Itoa(c.gossPort))
}

// freePorts returns n distinct ports free for TCP and UDP on every ip. They
// are picked below the usual ephemeral range (32768 up), so no outgoing
// connection's source port can be one of them: a firewall rule on the
// gossip port then matches gossip only.
func freePorts(t *testing.T, n int, ips []string) []int {
	t.Helper()
	var out []int
	for range 500 {
		r, err := rand.Int(rand.Reader, big.NewInt(10000))
		if err != nil {
			t.Fatal(err)
		}
		p := 20000 + int(r.Int64())
		if slices.Contains(out, p) {
			continue
		}
		ok := true
		for _, ip := range ips {
			if !free(net.JoinHostPort(ip, strconv.Itoa(p)), true) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, p)
			if len(out) == n {
				return out
			}
		}
	}
	t.Fatalf("no %d ports free on %v", n, ips)
	return nil
}

// track remembers p so stopAll can stop it, and makes sure stopAll runs
// before the one-by-one stops of launchCmd: cleanups run last-in first-out.
func (c *cluster) track(p *process) {
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	c.t.Cleanup(c.stopAll)
}

// stopAll stops every process at once, so a test does not wait for each
// node's leave in turn.
func (c *cluster) stopAll() {
	c.mu.Lock()
	procs := slices.Clone(c.procs)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.Exited() {
				p.Cmd.Process.Signal(syscall.SIGCONT) // in case a test stopped it
			}
			p.Stop()
		}()
	}
	wg.Wait()
}

// serverConf is a cluster server's Corefile.
const serverConf = `gslb.example.com:%[1]d {
    bind %[2]s
    errors
    prometheus %[2]s:%[3]d
    healthdns {
        zonefile %[4]s
        interval %[5]s
        timeout %[6]s
        rise %[7]d
        fall %[8]d
%[9]s
        cluster {
            name %[10]s
            observer %[10]s
            bind %[11]s
%[12]s            keyfile %[13]s
            label %[14]s
%[15]s            sync-timeout 3s
            gossip-interval %[16]s
            pushpull-interval %[17]s
            probe-interval %[18]s
            probe %[19]s
        }
    }
}
`

// addServer writes the Corefile of server name on 127.0.0.(base+i), which
// joins the servers at joinIdx, probes its targets itself if probe, and
// runs as group gid if not 0; then it starts it and waits until it
// answers.
func (c *cluster) addServer(name string, i int, joinIdx []int, probe bool, gid int) *clusterServer {
	t := c.t
	t.Helper()
	ip := c.ip(i)
	join := ""
	if len(joinIdx) > 0 {
		var addrs []string
		for _, j := range joinIdx {
			addrs = append(addrs, c.gossipAddr(c.ip(j)))
		}
		join = "            join " + strings.Join(addrs, " ") + "\n"
	}
	onOff := "off"
	if probe {
		onOff = "on"
	}
	s := &clusterServer{
		name: name, ip: ip, gid: gid,
		addr:    net.JoinHostPort(ip, strconv.Itoa(c.dnsPort)),
		metrics: "http://" + net.JoinHostPort(ip, strconv.Itoa(c.metPort)) + "/metrics",
		dir:     filepath.Join(c.dir, name),
	}
	voters := ""
	if c.voters > 0 {
		voters = fmt.Sprintf("            servers %d\n", c.voters)
	}
	s.conf = fmt.Sprintf(serverConf, c.dnsPort, ip, c.metPort, c.zonefile, cInterval, cTimeout, cRise, cFall,
		c.names, name, c.gossipAddr(ip), join, c.keyFile, cLabel, voters, cGossip, cPushPull, cMemberProb, onOff)
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.dir, "Corefile", s.conf)
	c.servers = append(c.servers, s)
	c.startServer(s)
	return s
}

// startServer runs s and waits until it answers the zone's SOA.
func (c *cluster) startServer(s *clusterServer) {
	c.t.Helper()
	c.launchServer(s)
	s.waitReadyOn(c.t, s.addr, 15*time.Second)
}

// launchServer runs s without waiting for it.
func (c *cluster) launchServer(s *clusterServer) {
	c.t.Helper()
	cmd := exec.Command(binary, "-conf", filepath.Join(s.dir, "Corefile"))
	cmd.Dir = s.dir
	if s.gid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(s.gid)}}
	}
	s.process = launchCmd(c.t, "server "+s.name, cmd)
	c.track(s.process)
}

// addAgent starts agent name on 127.0.0.(base+i), joining every server.
func (c *cluster) addAgent(name string, i int) *clusterAgent {
	c.t.Helper()
	return c.addAgentWith(name, i, agentOpts{})
}

// agentOpts are an agent's options beyond the cluster's.
type agentOpts struct {
	gid     int  // run as this group (0: the test's own)
	witness bool // -witness
}

// addAgentWith starts agent name on 127.0.0.(base+i) with o, joining
// every server.
func (c *cluster) addAgentWith(name string, i int, o agentOpts) *clusterAgent {
	t := c.t
	t.Helper()
	ip := c.ip(i)
	var join []string
	for _, s := range c.servers {
		join = append(join, c.gossipAddr(s.ip))
	}
	status := net.JoinHostPort(ip, strconv.Itoa(c.metPort))
	args := []string{
		"-name", name, "-observer", name,
		"-bind", c.gossipAddr(ip), "-join", strings.Join(join, ","),
		"-keyfile", c.keyFile, "-label", cLabel, "-status", status,
		"-gossip-interval", cGossip.String(), "-pushpull-interval", cPushPull.String(),
		"-member-probe-interval", cMemberProb.String(), "-leave-timeout", "1s"}
	if o.witness {
		args = append(args, "-witness")
	}
	a := &clusterAgent{name: name, ip: ip, status: "http://" + status + "/status", args: args, gid: o.gid}
	c.launchAgent(a)
	c.agents = append(c.agents, a)
	return a
}

// launchAgent runs a (again).
func (c *cluster) launchAgent(a *clusterAgent) {
	c.t.Helper()
	cmd := exec.Command(agentBinary, a.args...)
	cmd.Dir = c.dir
	if a.gid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(a.gid)}}
	}
	a.process = launchCmd(c.t, "agent "+a.name, cmd)
	c.track(a.process)
}

// agentStatus is the part of an agent's /status the tests read (keys of
// the status package's Document, which are only ever added to).
type agentStatus struct {
	Members []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"members"`
	Views []agentView `json:"views"`
}

// agentView is an observer's view as an agent sees it.
type agentView struct {
	Node      string    `json:"node"`
	State     string    `json:"state"`
	LastHeard time.Time `json:"last_heard"`
	Up        int       `json:"up"`
	Down      int       `json:"down"`
}

func (a *clusterAgent) readStatus() (*agentStatus, error) {
	cl := &http.Client{Timeout: time.Second}
	resp, err := cl.Get(a.status)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st agentStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// memberState is how the agent sees node: alive, dead, left, or "".
func (st *agentStatus) memberState(node string) string {
	for _, m := range st.Members {
		if m.Name == node {
			return m.State
		}
	}
	return ""
}

// waitFormed waits until every server counts every node alive and holds
// a live view from each observer (its gossip metrics), and every agent
// sees the same and a full view (all targets) from each observer (its
// /status).
func (c *cluster) waitFormed(observers []string, targets int) {
	t := c.t
	t.Helper()
	var nodes []string
	for _, s := range c.servers {
		nodes = append(nodes, s.name)
	}
	for _, a := range c.agents {
		nodes = append(nodes, a.name)
	}
	var why string
	d, ok := poll(20*time.Second, 50*time.Millisecond, func() bool {
		for _, s := range c.servers {
			m, err := metric(s.metrics, `coredns_healthdns_gossip_members{state="alive"}`)
			o, err2 := metric(s.metrics, `coredns_healthdns_observers{state="alive"}`)
			if err != nil || err2 != nil || int(m) != len(nodes) || int(o) != len(observers) {
				why = fmt.Sprintf("%s counts %v members and %v observers alive (%v, %v)", s.name, m, o, err, err2)
				return false
			}
		}
		for _, a := range c.agents {
			st, err := a.readStatus()
			if err != nil {
				why = fmt.Sprintf("%s: %v", a.name, err)
				return false
			}
			for _, n := range nodes {
				if s := st.memberState(n); s != "alive" {
					why = fmt.Sprintf("%s sees %s as %q", a.name, n, s)
					return false
				}
			}
			for _, o := range observers {
				if !slices.ContainsFunc(st.Views, func(v agentView) bool { return v.Node == o && v.Up+v.Down == targets }) {
					why = fmt.Sprintf("%s has no full view from %s", a.name, o)
					return false
				}
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("cluster not formed after %v: %s", d, why)
	}
	t.Logf("cluster of %v formed %v after the last start", nodes, d.Round(time.Millisecond))
}

// answerA returns the sorted A addresses of name from addr, over UDP; ok
// is false on a transport error or a non-NOERROR rcode.
func answerA(addr, name string) ([]string, bool) {
	m, err := exchange(addr, "udp", name, dns.TypeA, false)
	if err != nil || m.Rcode != dns.RcodeSuccess {
		return nil, false
	}
	return addrs(m), true
}

// waitAll waits until every server answers name A with want.
func waitAll(t *testing.T, servers []*clusterServer, name string, want []string, timeout time.Duration) {
	t.Helper()
	for _, s := range servers {
		var last []string
		if _, ok := poll(timeout, 20*time.Millisecond, func() bool {
			last, _ = answerA(s.addr, name)
			return slices.Equal(last, want)
		}); !ok {
			t.Fatalf("%s: %s A is %v after %v, want %v", s.name, name, last, timeout, want)
		}
	}
}

// watchChange runs act, then polls name A on every server until each
// answers something other than from. It fails unless each new answer is
// want, and returns each server's time from act to the change.
func watchChange(t *testing.T, servers []*clusterServer, name string, from, want []string, timeout time.Duration, act func()) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(servers))
	got := make([][]string, len(servers))
	done := make([]bool, len(servers))
	start := time.Now()
	act()
	poll(timeout, 20*time.Millisecond, func() bool {
		all := true
		for i, s := range servers {
			if done[i] {
				continue
			}
			a, ok := answerA(s.addr, name)
			if ok && !slices.Equal(a, from) {
				took[i], got[i], done[i] = time.Since(start), a, true
				continue
			}
			all = false
		}
		return all
	})
	for i, s := range servers {
		if !done[i] {
			t.Fatalf("%s: %s A still %v %v after the change", s.name, name, from, time.Since(start).Round(time.Millisecond))
		}
		if !slices.Equal(got[i], want) {
			t.Fatalf("%s: %s A changed from %v to %v, want %v", s.name, name, from, got[i], want)
		}
	}
	return took
}

// flaps counts answers over a watch: each must be want. A query that
// gets no answer (the machine is busy, the 500 ms client timeout passed)
// is not a flap, but most queries must be answered.
type flaps struct {
	since   time.Time
	what    string // "after SIGSTOP"
	answers int
	lost    int
	bad     []string
}

func newFlaps(what string) *flaps { return &flaps{since: time.Now(), what: what} }

// check queries name A on s once.
func (f *flaps) check(s *clusterServer, name string, want []string) {
	m, err := exchange(s.addr, "udp", name, dns.TypeA, false)
	if err != nil {
		f.lost++
		return
	}
	f.answers++
	if m.Rcode != dns.RcodeSuccess || !slices.Equal(addrs(m), want) {
		f.bad = append(f.bad, fmt.Sprintf("%v %s: %s: %s A %s %v, want %v",
			time.Since(f.since).Round(time.Millisecond), f.what, s.name, name, dns.RcodeToString[m.Rcode], addrs(m), want))
	}
}

func (f *flaps) String() string {
	return fmt.Sprintf("%d answers (%d queries unanswered) over %v %s", f.answers, f.lost, time.Since(f.since).Round(time.Millisecond), f.what)
}

// verify fails the test if an answer flapped or most queries went
// unanswered.
func (f *flaps) verify(t *testing.T) {
	t.Helper()
	if len(f.bad) > 0 {
		t.Fatalf("answers flapped: %d bad of %s:\n%s", len(f.bad), f, strings.Join(f.bad[:min(len(f.bad), 20)], "\n"))
	}
	if f.lost > f.answers {
		t.Fatalf("most queries went unanswered: %s", f)
	}
}

// hold polls name A on every server every step for d; each answer must be
// want.
func hold(t *testing.T, servers []*clusterServer, name string, want []string, d, step time.Duration) *flaps {
	t.Helper()
	f := newFlaps("of a hold")
	poll(d, step, func() bool {
		for _, s := range servers {
			f.check(s, name, want)
		}
		return time.Since(f.since) >= d
	})
	f.verify(t)
	return f
}

// metric returns the value of the sample name (with its labels, as
// written in the exposition) from a /metrics URL.
func metric(url, sample string) (float64, error) {
	cl := &http.Client{Timeout: time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s: no sample %s", url, sample)
}

func metricsText(url string) (string, error) {
	cl := &http.Client{Timeout: time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// logTimes logs one duration per server.
func logTimes(t *testing.T, what string, servers []*clusterServer, took []time.Duration, bound time.Duration) {
	t.Helper()
	var parts []string
	for i, s := range servers {
		parts = append(parts, fmt.Sprintf("%s %v", s.name, took[i].Round(time.Millisecond)))
	}
	t.Logf("%s: %s (bound %v)", what, strings.Join(parts, ", "), bound)
	for i, s := range servers {
		if took[i] > bound {
			t.Errorf("%s on %s took %v, want at most %v", what, s.name, took[i], bound)
		}
	}
}

// startThreeAndTwo starts servers s1..s3 (probing too) at base+1..3,
// agents a1, a2 at base+4..5, each server joining the ones before it and
// after it, and waits for the cluster to form and agree on appBoth.
func startThreeAndTwo(t *testing.T, base int, east, west *backend, gid3 int) *cluster {
	t.Helper()
	c := newCluster(t, base, fmt.Sprintf(clusterNames, east.check(), west.check()))
	c.voters = 3
	c.addServer("s1", 1, []int{2, 3}, true, 0)
	c.addServer("s2", 2, []int{1, 3}, true, 0)
	c.addServer("s3", 3, []int{1, 2}, true, gid3)
	c.addAgent("a1", 4)
	c.addAgent("a2", 5)
	c.waitFormed([]string{"s1", "s2", "s3", "a1", "a2"}, 2)
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, 5*time.Second)
	return c
}

// TestClusterFailover: three servers and two agents probe the same two
// backends; one dies and every server drops it within interval × fall +
// one gossip round (+1 s); it comes back on every server within
// interval × rise + one gossip round (+1 s).
func TestClusterFailover(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	c := startThreeAndTwo(t, 20, east, west, 0)

	for _, s := range c.servers {
		m, err := exchange(s.addr, "udp", "app.gslb.example.com", dns.TypeA, false)
		if err != nil {
			t.Fatal(err)
		}
		assertAnswer(t, m, s.name+" app A", appBoth, 5)
	}

	took := watchChange(t, c.servers, "app.gslb.example.com", appBoth, appWest, cFailBound+3*time.Second, east.stop)
	logTimes(t, "failover", c.servers, took, cFailBound)
	waitAll(t, c.servers, "app.gslb.example.com", appWest, time.Second)

	took = watchChange(t, c.servers, "app.gslb.example.com", appWest, appBoth, cRiseBound+3*time.Second, east.start)
	logTimes(t, "recovery", c.servers, took, cRiseBound)
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, time.Second)
}

// quorumNames: four names over the same two targets, one per quorum rule.
// The checks never run: the server does not probe (probe off), and the
// only observers are the test's own.
const quorumNames = `        name maj {
            quorum majority
            target 192.0.2.10    check tcp 127.0.0.1:1
            target 198.51.100.10 check tcp 127.0.0.1:2
        }
        name any {
            quorum any
            target 192.0.2.10    check tcp 127.0.0.1:1
            target 198.51.100.10 check tcp 127.0.0.1:2
        }
        name all {
            quorum all
            target 192.0.2.10    check tcp 127.0.0.1:1
            target 198.51.100.10 check tcp 127.0.0.1:2
        }
        name two {
            quorum 2
            target 192.0.2.10    check tcp 127.0.0.1:1
            target 198.51.100.10 check tcp 127.0.0.1:2
        }
`

// observer is an in-process gossip node the test speaks through.
type observer struct {
	*gossip.Node
	a, b gossip.TargetID // catalog IDs of 192.0.2.10 and 198.51.100.10
}

// gossipLog passes memberlist's warnings and errors to t.Log until the
// test ends.
type gossipLog struct {
	mu   sync.Mutex
	t    *testing.T
	name string
	done bool
}

func (l *gossipLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done && !strings.Contains(string(b), "[DEBUG]") {
		l.t.Logf("%s: %s", l.name, strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

// newNode starts an in-process gossip node on 127.0.0.(base+i); it is shut
// down in t.Cleanup.
func (c *cluster) newNode(name string, i int, role gossip.Role, keyFile, label string) *gossip.Node {
	t := c.t
	t.Helper()
	lg := &gossipLog{t: t, name: name}
	t.Cleanup(func() { lg.mu.Lock(); lg.done = true; lg.mu.Unlock() })
	n, err := gossip.New(gossip.Config{
		Name: name, Observer: name, Role: role,
		BindAddr: c.ip(i), BindPort: c.gossPort,
		Join:    []string{c.gossipAddr(c.servers[0].ip)},
		KeyFile: keyFile, Label: label,
		GossipInterval: cGossip, PushPullInterval: cPushPull, ProbeInterval: cMemberProb,
		RejoinInterval: 300 * time.Millisecond,
		LogOutput:      lg,
	})
	if err != nil {
		t.Fatalf("gossip node %s: %v", name, err)
	}
	t.Cleanup(func() { n.Shutdown() })
	return n
}

// catalogIDs waits until n has the catalog of the servers and returns the
// ID of each target address.
func catalogIDs(t *testing.T, n *gossip.Node, want int) map[string]gossip.TargetID {
	t.Helper()
	ids := map[string]gossip.TargetID{}
	if _, ok := poll(5*time.Second, 20*time.Millisecond, func() bool {
		clear(ids)
		for _, ct := range n.Catalog() {
			ids[ct.Addr.String()] = ct.ID
		}
		return len(ids) == want
	}); !ok {
		t.Fatalf("%s: catalog %v, want %d targets", n.Name(), ids, want)
	}
	return ids
}

// TestClusterQuorum: one server that does not probe (probe off, so only
// the test's two observers vote and the test controls every vote) and two
// in-process observers. Their gossip nodes heartbeat by themselves (every
// 2 × gossip interval = 200 ms, well inside the 800 ms silence window),
// and date their views at each heartbeat, so a view stays fresh without
// republishing. Target 192.0.2.10 (A) is what the observers
// disagree about; 198.51.100.10 (B) is up for both, so a name whose A is
// down answers B alone instead of falling back to both.
func TestClusterQuorum(t *testing.T) {
	c := newCluster(t, 30, quorumNames)
	s := c.addServer("s1", 1, nil, false, 0)
	var obs []*observer
	for i, name := range []string{"obs1", "obs2"} {
		n := c.newNode(name, 2+i, gossip.RoleAgent, c.keyFile, cLabel)
		if _, err := n.Join(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ids := catalogIDs(t, n, 2)
		obs = append(obs, &observer{Node: n, a: ids["192.0.2.10"], b: ids["198.51.100.10"]})
	}
	say := func(o *observer, a health.State) {
		o.PublishObservations(map[gossip.TargetID]health.State{o.a: a, o.b: health.Up})
	}
	names := []string{"maj", "any", "all", "two"}
	both := []string{"192.0.2.10", "198.51.100.10"}
	onlyB := []string{"198.51.100.10"}
	// expect polls until every name answers its entry of want, then holds
	// that for a second: the names are judged in one round from the same
	// views, so once the last one moved the others had their chance to.
	expect := func(step string, want map[string][]string) {
		t.Helper()
		var last map[string][]string
		d, ok := poll(5*time.Second, 20*time.Millisecond, func() bool {
			last = map[string][]string{}
			match := true
			for _, n := range names {
				last[n], _ = answerA(s.addr, n+".gslb.example.com")
				match = match && slices.Equal(last[n], want[n])
			}
			return match
		})
		if !ok {
			t.Fatalf("%s: answers %v after %v, want %v", step, last, d, want)
		}
		var bad []string
		start := time.Now()
		poll(time.Second, 50*time.Millisecond, func() bool {
			for _, n := range names {
				if a, ok := answerA(s.addr, n+".gslb.example.com"); ok && !slices.Equal(a, want[n]) {
					bad = append(bad, fmt.Sprintf("%v later: %s answered %v", time.Since(start).Round(time.Millisecond), n, a))
				}
			}
			return time.Since(start) >= time.Second
		})
		if len(bad) > 0 {
			t.Fatalf("%s: answers moved after matching %v:\n%s", step, want, strings.Join(bad, "\n"))
		}
		t.Logf("%s: %v after %v, held 1s", step, want, d.Round(time.Millisecond))
	}
	all := func(a []string) map[string][]string {
		return map[string][]string{"maj": a, "any": a, "all": a, "two": a}
	}

	// Both see A down: every rule removes it. This also shows the server
	// hears both observers: "two" needs both.
	say(obs[0], health.Down)
	say(obs[1], health.Down)
	expect("both down", all(onlyB))

	// One down, one up, coming from both down: majority (1 of 2 is not
	// more than half), all and 2 bring A back; any keeps it out.
	say(obs[1], health.Up)
	expect("obs1 down, obs2 up", map[string][]string{"maj": both, "any": onlyB, "all": both, "two": both})

	say(obs[0], health.Up)
	expect("both up", all(both))

	// One down, one up, coming from both up: only any removes A.
	say(obs[1], health.Down)
	expect("obs1 up, obs2 down", map[string][]string{"maj": both, "any": onlyB, "all": both, "two": both})

	say(obs[1], health.Up)
	expect("both up again", all(both))

	// obs2 leaves the cluster: only obs1 votes. Alone and down, it is a
	// majority and all of the observers, but never 2.
	if err := obs[1].Leave(2 * time.Second); err != nil {
		t.Fatalf("obs2 leave: %v", err)
	}
	obs[1].Shutdown()
	say(obs[0], health.Down)
	expect("obs2 left, obs1 down", map[string][]string{"maj": onlyB, "any": onlyB, "all": onlyB, "two": both})
}

// TestClusterStaleObserver: an agent that stops (SIGSTOP) goes silent: its
// observations turn unknown, never down, so no answer flaps, and the other
// agent still decides. When it resumes, its view is older than the
// targets' check timing allows until it probes again, so nothing flaps;
// nor when it is killed.
func TestClusterStaleObserver(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	closed := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1, []string{"127.0.0.1"})[0]))
	// app (majority) and any (quorum any) answer the same targets, plus a
	// third that is always down: the server answers without it only once
	// it has verdicts from the agents (with none it falls back to every
	// target). Under majority a stale view counted as fresh would keep a
	// dead target; under any a stale view counted as down would drop a
	// live one.
	app := fmt.Sprintf(clusterNames, east.check(), west.check())
	app = strings.Replace(app, "        }\n", "            target 203.0.113.10  check tcp "+closed+"\n        }\n", 1)
	anyName := strings.Replace(strings.Replace(app, "name app {", "name any {", 1), "ttl 5\n", "ttl 5\n            quorum any\n", 1)
	c := newCluster(t, 40, app+anyName)
	s := c.addServer("s1", 1, nil, false, 0)
	a1 := c.addAgent("a1", 2)
	a2 := c.addAgent("a2", 3)
	c.waitFormed([]string{"a1", "a2"}, 3)
	srv := []*clusterServer{s}
	names := []string{"app.gslb.example.com", "any.gslb.example.com"}
	for _, n := range names {
		waitAll(t, srv, n, appBoth, 5*time.Second)
	}
	check := func(f *flaps, want []string) {
		for _, n := range names {
			f.check(s, n, want)
		}
	}

	// a1 stops answering anything. Watch every 50 ms while it goes silent
	// and memberlist declares it dead.
	if err := a1.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	f := newFlaps("after SIGSTOP")
	_, ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		check(f, appBoth)
		st, err := a2.readStatus()
		return err == nil && st.memberState("a1") == "dead" && time.Since(f.since) > cStale+time.Second
	})
	f.verify(t)
	if !ok {
		t.Fatal("a2 never saw a1 dead")
	}
	t.Logf("a1 stopped, dead and stale: no flap in %s", f)

	// a2 alone decides: east dies and leaves both answers.
	took := watchChange(t, srv, names[0], appBoth, appWest, cFailBound+3*time.Second, east.stop)
	logTimes(t, "failover with a1 stale", srv, took, cFailBound)
	waitAll(t, srv, names[1], appWest, time.Second)

	// a1 resumes. Its last view (east up) is older than the targets'
	// check timing allows, and its own probes have yet to see east down:
	// that old view must not bring east back. (Polled every 20 ms: such a flap lasts
	// about one probe interval.)
	if err := a1.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	f = newFlaps("after SIGCONT")
	var back time.Duration
	poll(10*time.Second, 20*time.Millisecond, func() bool {
		check(f, appWest)
		if back == 0 {
			if st, err := a2.readStatus(); err == nil && st.memberState("a1") == "alive" {
				back = time.Since(f.since)
			}
		}
		return back > 0 && time.Since(f.since) > 2*time.Second
	})
	if back == 0 {
		t.Fatal("a1 never came back alive after SIGCONT")
	}
	if f.lost > f.answers {
		t.Fatalf("most queries went unanswered: %s", f)
	}
	resumeFlaps := f.bad
	if len(resumeFlaps) > 0 {
		t.Logf("a1 resumed (alive again after %v): %d bad of %s:\n%s", back.Round(time.Millisecond), len(f.bad), f, strings.Join(f.bad, "\n"))
	} else {
		t.Logf("a1 resumed (alive again after %v): no flap in %s", back.Round(time.Millisecond), f)
	}

	// kill -9 a1: its view goes stale again; nothing flaps.
	if err := a1.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	f = newFlaps("after kill -9")
	poll(cStale+2*time.Second, 50*time.Millisecond, func() bool {
		check(f, appWest)
		return time.Since(f.since) >= cStale+2*time.Second
	})
	f.verify(t)
	t.Logf("a1 killed: no flap in %s", f)

	// a2 still decides alone: east comes back.
	took = watchChange(t, srv, names[0], appWest, appBoth, cRiseBound+3*time.Second, east.start)
	logTimes(t, "recovery with a1 dead", srv, took, cRiseBound)
	waitAll(t, srv, names[1], appBoth, time.Second)

	if len(resumeFlaps) > 0 {
		// Fixed in probe/pool.go (a pause resets the rise/fall run) and
		// gossip (views dated by the observer's last probe round).
		t.Errorf("a resumed observer's pre-pause view counted as fresh again: %d answers brought the dead target back after SIGCONT (first: %s)",
			len(resumeFlaps), resumeFlaps[0])
	}
}

// partitionGID is the group a partitioned server runs as. memberlist dials
// TCP without binding its source address, and on lo the kernel picks
// 127.0.0.1, so a server's outgoing gossip streams cannot be told apart by
// source address; an owner match on its group ID can.
const partitionGID = 54321

// firewall cuts a node's gossip with iptables: everything to its gossip
// port, and everything its process sends to a gossip port.
type firewall struct {
	t     *testing.T
	rules [][]string
	on    bool
}

func canFirewall(t *testing.T) {
	t.Helper()
	if why := firewallProblem(); why != "" {
		t.Skip(why)
	}
}

// firewallProblem says why iptables cannot cut nodes off here, or "" when
// it can (and then sweeps the rules of dead runs).
func firewallProblem() string {
	if os.Geteuid() != 0 {
		return "not root: cannot use iptables to cut a server off"
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return "iptables missing: cannot cut a server off"
	}
	if out, err := exec.Command("iptables", "-w", "5", "-S", "OUTPUT").CombinedOutput(); err != nil {
		return fmt.Sprintf("iptables does not work here: %v: %s", err, out)
	}
	sweepFirewall()
	return ""
}

// ruleComment marks this process's rules, so a later run can tell them
// from a concurrent run's.
var ruleComment = "healthdns-e2e-" + strconv.Itoa(os.Getpid())

// sweepFirewall deletes the rules a killed test run left behind (its
// cleanups never ran): those marked with the pid of a process that is gone.
func sweepFirewall() {
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		out, err := exec.Command("iptables", "-w", "5", "-S", chain).Output()
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			i := slices.Index(f, "--comment")
			if len(f) < 2 || f[0] != "-A" || i < 0 || i+1 >= len(f) {
				continue
			}
			pid, ok := strings.CutPrefix(strings.Trim(f[i+1], `"`), "healthdns-e2e-")
			if !ok {
				continue
			}
			if _, err := os.Stat("/proc/" + pid); err == nil {
				continue // a live run's rule
			}
			f[0] = "-D"
			exec.Command("iptables", append([]string{"-w", "5"}, f...)...).Run()
		}
	}
}

func newFirewall(t *testing.T, ip string, port, gid int) *firewall {
	p := strconv.Itoa(port)
	f := &firewall{t: t}
	for _, proto := range []string{"udp", "tcp"} {
		f.rules = append(f.rules,
			[]string{"INPUT", "-d", ip, "-p", proto, "--dport", p, "-m", "comment", "--comment", ruleComment, "-j", "DROP"},
			[]string{"OUTPUT", "-m", "owner", "--gid-owner", strconv.Itoa(gid), "-p", proto, "--dport", p, "-m", "comment", "--comment", ruleComment, "-j", "DROP"})
	}
	t.Cleanup(f.remove)
	return f
}

func (f *firewall) install() {
	f.t.Helper()
	f.on = true
	for _, r := range f.rules {
		if out, err := exec.Command("iptables", append([]string{"-w", "5", "-I"}, r...)...).CombinedOutput(); err != nil {
			f.remove()
			f.t.Skipf("iptables -I %s: %v: %s", strings.Join(r, " "), err, out)
		}
	}
}

// remove deletes the rules; it is safe to call more than once.
func (f *firewall) remove() {
	if !f.on {
		return
	}
	f.on = false
	for _, r := range f.rules {
		// -D fails on a rule that was never inserted; nothing to do then.
		exec.Command("iptables", append([]string{"-w", "5", "-D"}, r...)...).Run()
	}
}

// waitLog waits until the process's output contains s.
func waitLog(t *testing.T, p *process, who, s string, timeout time.Duration) time.Duration {
	t.Helper()
	d, ok := poll(timeout, 50*time.Millisecond, func() bool { return strings.Contains(p.Out.String(), s) })
	if !ok {
		t.Fatalf("%s did not log %q within %v", who, s, timeout)
	}
	return d
}

// logLine returns the first line of out that contains s, trimmed.
func logLine(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// waitMetric waits until sample on url reads want.
func waitMetric(t *testing.T, url, sample string, want float64, timeout time.Duration) {
	t.Helper()
	var v float64
	var err error
	if _, ok := poll(timeout, 50*time.Millisecond, func() bool {
		v, err = metric(url, sample)
		return err == nil && v == want
	}); !ok {
		t.Fatalf("%s %s = %v (%v), want %v", url, sample, v, err, want)
	}
}

// TestClusterPartition: s3 is cut off from the gossip with iptables, and
// east's backend dies at the same moment. s1 and s2 (two of three voters)
// fail over. s3 sees east die with its own probes before it can notice
// the cut by silence; under quorum any its own "down" alone would remove
// east, but a change is applied only once a majority of voters is heard
// after it was wanted, which never happens while it is cut off. So s3
// keeps its last answers the whole time, then says it is partitioned
// (log, metric, matrix); once the network is back it converges.
func TestClusterPartition(t *testing.T) {
	canFirewall(t)
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	app := fmt.Sprintf(clusterNames, east.check(), west.check())
	anyName := strings.Replace(strings.Replace(app, "name app {", "name any {", 1), "ttl 5\n", "ttl 5\n            quorum any\n", 1)
	c := newCluster(t, 50, app+anyName)
	c.voters = 3
	c.addServer("s1", 1, []int{2, 3}, true, 0)
	c.addServer("s2", 2, []int{1, 3}, true, 0)
	c.addServer("s3", 3, []int{1, 2}, true, partitionGID)
	c.addAgent("a1", 4)
	c.addAgent("a2", 5)
	c.waitFormed([]string{"s1", "s2", "s3", "a1", "a2"}, 2)
	names := []string{"app.gslb.example.com", "any.gslb.example.com"}
	for _, n := range names {
		waitAll(t, c.servers, n, appBoth, 5*time.Second)
	}
	s3 := c.servers[2]
	others := c.servers[:2]
	for _, s := range c.servers {
		waitMetric(t, s.metrics, "coredns_healthdns_partitioned", 0, 2*time.Second)
	}

	// Cut s3 off, and kill east's backend right after. Watch s3 from the
	// start: neither name may move.
	fw := newFirewall(t, s3.ip, c.gossPort, partitionGID)
	f := newFlaps("after the cut and east's death")
	stopS3, s3Done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s3Done)
		poll(time.Minute, 20*time.Millisecond, func() bool {
			for _, n := range names {
				f.check(s3, n, appBoth)
			}
			select {
			case <-stopS3:
				return true
			default:
				return false
			}
		})
	}()
	fw.install()
	cut := time.Now()
	took := watchChange(t, others, names[1], appBoth, appWest, cFailBound+3*time.Second, east.stop)
	logTimes(t, "failover of the majority side (quorum any)", others, took, cFailBound)
	waitAll(t, others, names[0], appWest, time.Second)
	waitLog(t, s3.process, "s3", "partition entered: hearing 1 of 3 voters (need 2); keeping the last verdicts", 15*time.Second)
	t.Logf("s3 said so within %v of the cut: %s", time.Since(cut).Round(time.Millisecond), logLine(s3.Out.String(), "partition entered"))
	waitMetric(t, s3.metrics, "coredns_healthdns_partitioned", 1, 2*time.Second)
	t.Logf("s3: %s", waitVotersTXT(t, s3, "partitioned=yes heard=1 known=3 need=2", time.Second))
	for _, s := range others {
		if v, err := metric(s.metrics, "coredns_healthdns_partitioned"); err != nil || v != 0 {
			t.Errorf("%s: coredns_healthdns_partitioned = %v (%v), want 0", s.name, v, err)
		}
	}
	// Keep watching s3 for a while after the others moved.
	hold(t, others, names[0], appWest, 3*time.Second, 100*time.Millisecond)
	close(stopS3)
	<-s3Done
	f.verify(t)
	t.Logf("partitioned s3 kept %v on both names from the cut on: %s", appBoth, f)
	if strings.Contains(s3.Out.String(), "partition left") {
		t.Fatalf("s3 left the partition while cut off:\n%s", s3.Out.String())
	}
	if time.Since(cut) < 3*time.Second {
		t.Fatalf("watched s3 for only %v", time.Since(cut))
	}

	// The network comes back: s3 converges to the others' answer.
	healed := time.Now()
	took = watchChange(t, []*clusterServer{s3}, names[1], appBoth, appWest, 30*time.Second, fw.remove)
	waitLog(t, s3.process, "s3", "partition left", 30*time.Second)
	left := time.Since(healed)
	waitMetric(t, s3.metrics, "coredns_healthdns_partitioned", 0, 2*time.Second)
	t.Logf("after the heal s3 converged to %v in %v; within %v it logged: %s", appWest, took[0].Round(time.Millisecond), left.Round(time.Millisecond), logLine(s3.Out.String(), "partition left"))
	for _, n := range names {
		waitAll(t, c.servers, n, appWest, 2*time.Second)
	}
}

// TestClusterRestartedServer: a server killed with -9 misses a failover;
// restarted with the same Corefile, its very first answer already equals
// its peers' (cold-start sync before it serves).
func TestClusterRestartedServer(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	c := startThreeAndTwo(t, 60, east, west, 0)
	s3 := c.servers[2]
	others := c.servers[:2]

	if err := s3.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s3.Done
	took := watchChange(t, others, "app.gslb.example.com", appBoth, appWest, cFailBound+3*time.Second, east.stop)
	logTimes(t, "failover with s3 down", others, took, cFailBound)

	// Its own probes say east is down too, so this shows it does not
	// answer from an empty view (which would fall back to both).
	first, at := restartAndFirstAnswer(t, c, s3)
	t.Logf("restarted s3 answered first %v after the launch: %v", at.Round(time.Millisecond), first)
	if !slices.Equal(first, appWest) {
		t.Errorf("restarted s3's first answer %v, want its peers' %v", first, appWest)
	}
	hold(t, c.servers, "app.gslb.example.com", appWest, time.Second, 50*time.Millisecond)

	// Again, with s3's own probes disagreeing with its peers: east comes
	// back just before s3 restarts. s3's first probe says up at once (the
	// first result decides) while its peers need rise = 2 results, so for
	// at least one interval they still answer west alone. A server that
	// judged by its own probes would serve east in that window; one that
	// synced from its peers answers what they answer.
	if err := s3.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s3.Done
	east.start()
	first, at = restartAndFirstAnswer(t, c, s3)
	var peers [][]string
	for _, s := range others {
		a, _ := answerA(s.addr, "app.gslb.example.com")
		peers = append(peers, a)
	}
	t.Logf("restarted s3 (east back) answered first %v after the launch: %v; peers right after: %v", at.Round(time.Millisecond), first, peers)
	if slices.IndexFunc(peers, func(p []string) bool { return !slices.Equal(p, appWest) }) < 0 {
		// The peers had not moved yet: s3 must not have either.
		if !slices.Equal(first, appWest) {
			t.Errorf("restarted s3's first answer %v while its peers still answered %v: it judged by its own probes", first, appWest)
		}
	} else {
		t.Logf("the peers had already seen east rise; this run does not tell a synced s3 from a lone one")
	}
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, cRiseBound+time.Second)
}

// restartAndFirstAnswer starts s (not running) again with its Corefile and
// returns its very first answer for app A, polled from the launch on, and
// how long after the launch it came. s must log that it synced first.
func restartAndFirstAnswer(t *testing.T, c *cluster, s *clusterServer) ([]string, time.Duration) {
	t.Helper()
	c.launchServer(s)
	launched := time.Now()
	var first []string
	var at time.Duration
	if _, ok := poll(15*time.Second, 5*time.Millisecond, func() bool {
		if s.Exited() {
			return true
		}
		a, ok := answerA(s.addr, "app.gslb.example.com")
		if ok {
			first, at = a, time.Since(launched)
		}
		return ok
	}); !ok || s.Exited() {
		t.Fatalf("restarted %s did not answer (exited %v)", s.name, s.Exited())
	}
	if !strings.Contains(s.Out.String(), "cold-start sync done") {
		t.Errorf("restarted %s answered without logging \"cold-start sync done\":\n%s", s.name, s.Out.String())
	}
	return first, at
}

// TestClusterWrongKeyAndLabel: nodes with the wrong key, the wrong label or
// no key at all cannot join, and what they claim (every target down) never
// reaches the server's answers. The name's quorum is any and its fallback
// none, so a single accepted claim would empty the answer at once; a
// legitimate node making the same claim at the end proves it.
func TestClusterWrongKeyAndLabel(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	names := strings.Replace(fmt.Sprintf(clusterNames, east.check(), west.check()), "ttl 5\n", "ttl 5\n            quorum any\n            fallback none\n", 1)
	c := newCluster(t, 70, names)
	s := c.addServer("s1", 1, nil, true, 0)
	srv := []*clusterServer{s}
	waitAll(t, srv, "app.gslb.example.com", appBoth, 5*time.Second)

	// A legitimate node (right key and label) reads the catalog's IDs and
	// watches the membership.
	spy := c.newNode("spy", 2, gossip.RoleAgent, c.keyFile, cLabel)
	if _, err := spy.Join(); err != nil {
		t.Fatalf("spy: %v", err)
	}
	ids := catalogIDs(t, spy, 2)
	allDown := map[gossip.TargetID]health.State{}
	for _, id := range ids {
		allDown[id] = health.Down
	}

	otherKey := writeFile(t, t.TempDir(), "other.key", newGossipKey(t)+"\n")
	bad := []struct {
		name, key, label string
	}{
		{"wrongkey", otherKey, cLabel},
		{"wronglabel", c.keyFile, "other"},
		{"nokey", "", cLabel},
	}
	var badNodes []*gossip.Node
	for i, b := range bad {
		n := c.newNode(b.name, 3+i, gossip.RoleAgent, b.key, b.label)
		n.PublishObservations(allDown)
		k, err := n.Join()
		if err == nil {
			t.Errorf("%s: Join reached %d nodes, want an error", b.name, k)
		} else {
			t.Logf("%s: Join: %v", b.name, err)
		}
		badNodes = append(badNodes, n)
	}

	// For three seconds they keep trying (they rejoin every 300 ms while
	// alone) and keep claiming everything is down: the answer never moves.
	f := hold(t, srv, "app.gslb.example.com", appBoth, 3*time.Second, 50*time.Millisecond)
	t.Logf("while the intruders tried, no change in %s", f)
	for _, bn := range badNodes {
		if m := bn.Members(); len(m) > 1 {
			t.Errorf("%s sees members %v, want itself alone", bn.Name(), m)
		}
	}
	for _, m := range spy.Members() {
		for _, b := range bad {
			if m.Name == b.name {
				t.Errorf("spy sees %s as a member (%v)", b.name, m.State)
			}
		}
	}
	for _, v := range spy.Views() {
		for _, b := range bad {
			if v.Node == b.name {
				t.Errorf("spy has a view from %s", b.name)
			}
		}
	}
	out := s.Out.String()
	if strings.Contains(out, "plugin/healthdns: verdict ") {
		t.Errorf("server logged a verdict change:\n%s", out)
	}
	mt, err := metricsText(s.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		if strings.Contains(out, b.name) || strings.Contains(mt, b.name) {
			t.Errorf("server log or metrics mention %s", b.name)
		}
	}
	// Its gossip metrics count the spy and itself, and only its own view.
	for sample, want := range map[string]float64{
		`coredns_healthdns_gossip_members{state="alive"}`:   2,
		`coredns_healthdns_gossip_members{state="dead"}`:    0,
		`coredns_healthdns_gossip_members{state="suspect"}`: 0,
		`coredns_healthdns_observers{state="alive"}`:        1,
		`coredns_healthdns_observers{state="dead"}`:         0,
	} {
		if v, err := metric(s.metrics, sample); err != nil || v != want {
			t.Errorf("%s = %v (%v), want %v", sample, v, err, want)
		}
	}
	for _, addr := range appBoth {
		sample := fmt.Sprintf(`coredns_healthdns_target_healthy{name="app.gslb.example.com.",target=%q}`, addr)
		if v, err := metric(s.metrics, sample); err != nil || v != 1 {
			t.Errorf("%s = %v (%v), want 1", sample, v, err)
		}
	}

	// The control: the same claim from a member is heard at once.
	took := watchChange(t, srv, "app.gslb.example.com", appBoth, nil, 5*time.Second, func() { spy.PublishObservations(allDown) })
	t.Logf("the legitimate node's \"all down\" reached the answer in %v", took[0].Round(time.Millisecond))
}
