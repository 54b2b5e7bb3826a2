package externaldns

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestEdgeClients runs, on 127.0.1.0/24 (a block no other test uses):
//
//	127.0.1.1-3   healthdns servers dns1-3: a cluster (servers 3) that
//	              does not probe (probe off), with a client port each
//	              (cluster clients); the Corefile's app has two targets
//	127.0.1.10    a healthdns-agent with -connect, connecting from this
//	              address: the only observer
//	127.0.1.11    a healthdns-agent ExternalDNS sidecar with -connect
//	              (-probe=false), connecting from this address
//	127.0.1.12    the pod-local listeners of those two (their status, the
//	              webhook), which only the test (ExternalDNS) uses
//	127.0.1.20-21 the backends of app
//	127.0.1.30    the backend of the records ExternalDNS writes
//
// iptables drops every new connection to 127.0.1.10 and 127.0.1.11: no
// server can reach the agent or the sidecar, which only connect out.
// Their observations decide every server's verdicts, and the records
// written by ExternalDNS's client through the sidecar are served by
// every server. Killing (-9) the server each is connected to moves it to
// another; no acknowledged record is lost and no verdict flaps. A client
// with another key is refused and changes nothing. Last, the time from a
// backend's death to every server dropping it, the agent deciding.
func TestEdgeClients(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables")
	}
	e := startEdge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The agent's observations decide: app answers both, then drops the
	// one whose backend stops.
	e.expectApp("both backends up", nil, "127.0.1.20", "127.0.1.21")
	e.appBack[1].stop()
	e.expectApp("backend 127.0.1.21 stopped", nil, "127.0.1.20")
	for i := range e.servers {
		v := e.view(i, "edge-agent")
		if v == nil || v.State != "alive" || v.Role != "agent" || v.Location != "edge" {
			t.Fatalf("dns%d: the edge agent's view is %+v, want an alive agent at edge", i+1, v)
		}
	}

	// Records through the sidecar, with ExternalDNS's client.
	eu := NewCluster(t, ctx, "eu", e.hookURL)
	var svcs []Service
	acked, refused := 0, 0
	// write adds services one at a time until n are written or stop
	// closes; a cycle that fails is tried again, as ExternalDNS does.
	write := func(n int, stop <-chan struct{}) {
		for len(svcs) < n {
			svcs = append(svcs, Service{Name: fmt.Sprintf("svc%d.%s", len(svcs), zone), Addrs: []string{"127.0.1.30"}})
			for {
				if _, err := eu.TryReconcile(ctx, svcs...); err == nil {
					break
				} else if ctx.Err() != nil {
					t.Errorf("writing %s: %v", svcs[len(svcs)-1].Name, err)
					return
				}
				refused++
				time.Sleep(100 * time.Millisecond)
			}
			acked = len(svcs)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	write(5, nil)
	e.expectRecords("5 records written through the sidecar", nil, acked)

	// Watch for flaps on every live server from now on: app must answer
	// the one backend up, whatever happens to the servers.
	w := e.watch("127.0.1.20")

	// Kill the sidecar's server, then the agent's (if it is another),
	// while ExternalDNS writes.
	for _, who := range []string{"sidecar", "agent"} {
		statusOf := map[string]string{"sidecar": e.sidecarStatus, "agent": e.agentStatus}
		at := e.connectedTo(statusOf[who])
		i := e.serverAt(at)
		if i < 0 || e.servers[i] == nil {
			t.Fatalf("the %s is connected to %q, no live server", who, at)
		}
		var moved []string
		for _, m := range []string{"sidecar", "agent"} {
			if e.connectedTo(statusOf[m]) == at {
				moved = append(moved, m)
			}
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		before, refusedBefore := acked, refused
		go func() { defer close(done); write(acked+1000, stop) }()
		time.Sleep(300 * time.Millisecond) // writes under way
		w.down(i)
		start := time.Now()
		e.kill(i)
		for _, m := range moved {
			d, ok := poll(10*time.Second, 20*time.Millisecond, func() bool {
				s := e.connectedTo(statusOf[m])
				return s != "" && s != at
			})
			if !ok {
				t.Fatalf("the %s did not move from dns%d within %v", m, i+1, d)
			}
			t.Logf("kill -9 dns%d: the %s connected to %s %v later", i+1, m, e.connectedTo(statusOf[m]), time.Since(start).Round(time.Millisecond))
		}
		// Longer than an observer's silence: its views must not age.
		time.Sleep(2 * time.Second)
		close(stop)
		<-done
		t.Logf("kill -9 dns%d: %d records written across it, %d attempts refused meanwhile", i+1, acked-before, refused-refusedBefore)
		live := e.liveSet()
		e.expectRecords(fmt.Sprintf("after kill -9 of dns%d", i+1), live, acked)
		e.expectApp(fmt.Sprintf("after kill -9 of dns%d", i+1), live, "127.0.1.20")
		e.restart(i)
		e.expectRecords(fmt.Sprintf("dns%d restarted", i+1), []int{i}, acked)
		e.expectApp(fmt.Sprintf("dns%d restarted", i+1), []int{i}, "127.0.1.20")
		w.up(i)
		if slices.Contains(moved, "agent") {
			break // the agent moved too: both were tested
		}
	}
	if flaps := w.stop(); len(flaps) > 0 {
		t.Fatalf("verdicts flapped: %d wrong answers, first %s", len(flaps), flaps[0])
	}
	t.Logf("no flaps: %d answers checked over UDP and TCP while servers were killed", w.checked)
	if code, body := get(t, e.hookURL+"/records"); code != http.StatusOK || strings.Count(body, "127.0.1.30") != acked {
		t.Fatalf("GET /records through the sidecar: %d, %d records of 127.0.1.30, want %d", code, strings.Count(body, "127.0.1.30"), acked)
	}

	// Another key: refused on every server, nothing changes.
	bad := writeFile(t, e.dir, "other.key", newGossipKey(t)+"\n")
	intruder := launch(t, "intruder", e.dir, agentBinary, "-name", "intruder", "-observer", "nowhere",
		"-connect", strings.Join(e.clients, ","), "-keyfile", bad, "-label", edgeLabel)
	if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		return strings.Count(intruder.Out.String(), "does not hold the gossip key") >= 3
	}); !ok {
		t.Fatalf("the intruder was not refused by every server: %s", intruder.Out.String())
	}
	intruder.Stop()
	for i := range e.servers {
		if v := e.view(i, "intruder"); v != nil {
			t.Fatalf("dns%d holds a view of the intruder: %+v", i+1, v)
		}
		if !strings.Contains(e.servers[i].Out.String(), "refused a client") {
			t.Fatalf("dns%d did not log the refusal", i+1)
		}
	}
	e.expectApp("after the intruder", nil, "127.0.1.20")

	// Backend death to every server dropping it, the agent over its edge
	// connection the only observer.
	const rounds = 5
	bound := edgeInterval*2 + time.Second + edgeGossip
	var times []time.Duration
	for r := range rounds {
		e.appBack[1].start()
		e.expectApp(fmt.Sprintf("round %d: backend back", r+1), nil, "127.0.1.20", "127.0.1.21")
		time.Sleep(time.Duration(r) * edgeInterval / rounds) // a different phase of the probe rounds each time
		start := time.Now()
		e.appBack[1].stop()
		var slowest time.Duration
		for i := range e.servers {
			d, ok := poll(5*time.Second, 5*time.Millisecond, func() bool {
				a, err := lookup(e.dnsAddr(i), "udp", app, dns.ClassINET, dns.TypeA)
				return err == nil && a.equal(noerror("127.0.1.20"))
			})
			if !ok {
				t.Fatalf("round %d: dns%d still answers the dead backend after %v", r+1, i+1, d)
			}
			slowest = max(slowest, time.Since(start))
		}
		times = append(times, slowest)
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	var shown []string
	for _, d := range times {
		shown = append(shown, d.Round(time.Millisecond).String())
	}
	t.Logf("backend killed → every server drops it (agent over an edge connection deciding), %d rounds: %s; median %v, max %v; bound interval×fall + 1s + one gossip round = %v",
		rounds, strings.Join(shown, " "), median.Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), bound)
	if median > bound {
		t.Fatalf("median %v over the bound %v", median, bound)
	}
}

const (
	edgeLabel    = "edge-e2e"
	edgeInterval = 300 * time.Millisecond
	edgeGossip   = 100 * time.Millisecond
)

const edgeCorefile = `gslb.example.com:%[1]d {
    bind %[2]s
    errors
    prometheus %[2]s:%[3]d
    healthdns {
        zonefile %[4]s
        interval 300ms
        timeout 150ms
        rise 2
        fall 2
        ttl 5
        data %[5]s
        status %[2]s:%[6]d
        name app {
            ttl 5
            target 127.0.1.20 check http://127.0.1.20:%[7]d/
            target 127.0.1.21 check http://127.0.1.21:%[7]d/
        }
        cluster {
            name %[8]s
            bind %[2]s:%[9]d
            join %[10]s
            clients %[2]s:%[11]d
            keyfile %[12]s
            label %[13]s
            servers 3
            probe off
            sync-timeout 2s
            gossip-interval 100ms
            pushpull-interval 1s
            probe-interval 200ms
        }
    }
}
`

type edgeEnv struct {
	t        *testing.T
	dir      string
	ports    []int
	servers  []*proc // nil while killed
	confs    []string
	clients  []string
	appBack  []*backend
	recBack  *backend
	hookURL  string
	keyFile  string
	metrics  []string
	statuses []string

	agentStatus, sidecarStatus string
}

func (e *edgeEnv) dnsAddr(i int) string {
	return net.JoinHostPort(fmt.Sprintf("127.0.1.%d", i+1), strconv.Itoa(e.ports[0]))
}

func startEdge(t *testing.T) *edgeEnv {
	t.Helper()
	dir := t.TempDir()
	ips := []string{"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.12", "127.0.1.20", "127.0.1.21", "127.0.1.30"}
	ports := freePorts(t, 10, ips)
	dnsPort, metPort, gossPort, cliPort, statPort, backPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	agentStat, sidecarStat, hookPort, hookHealth := ports[6], ports[7], ports[8], ports[9]
	e := &edgeEnv{t: t, dir: dir, ports: ports, servers: make([]*proc, 3)}
	for _, ip := range []string{"127.0.1.20", "127.0.1.21"} {
		b := &backend{t: t, addr: net.JoinHostPort(ip, strconv.Itoa(backPort))}
		b.start()
		t.Cleanup(b.stop)
		e.appBack = append(e.appBack, b)
	}
	e.recBack = &backend{t: t, addr: net.JoinHostPort("127.0.1.30", strconv.Itoa(backPort))}
	e.recBack.start()
	t.Cleanup(e.recBack.stop)

	e.keyFile = writeFile(t, dir, "gossip.key", newGossipKey(t)+"\n")
	zf := writeFile(t, dir, "gslb.zone", e2eZone)
	var gossip []string
	for i := range 3 {
		ip := fmt.Sprintf("127.0.1.%d", i+1)
		gossip = append(gossip, net.JoinHostPort(ip, strconv.Itoa(gossPort)))
		e.clients = append(e.clients, net.JoinHostPort(ip, strconv.Itoa(cliPort)))
		e.metrics = append(e.metrics, fmt.Sprintf("http://%s:%d/metrics", ip, metPort))
		e.statuses = append(e.statuses, fmt.Sprintf("http://%s:%d/status", ip, statPort))
	}
	for i := range 3 {
		ip := fmt.Sprintf("127.0.1.%d", i+1)
		var others []string
		for j, g := range gossip {
			if j != i {
				others = append(others, g)
			}
		}
		e.confs = append(e.confs, writeFile(t, dir, fmt.Sprintf("Corefile.dns%d", i+1), fmt.Sprintf(edgeCorefile,
			dnsPort, ip, metPort, zf, filepath.Join(dir, fmt.Sprintf("dns%d-data", i+1)), statPort, backPort,
			fmt.Sprintf("dns%d", i+1), gossPort, strings.Join(others, " "), cliPort, e.keyFile, edgeLabel)))
	}
	for i := range 3 {
		e.restart(i)
	}
	for i := range 3 {
		var why string
		if d, ok := poll(20*time.Second, 50*time.Millisecond, func() bool {
			v, err := metric(e.metrics[i], `coredns_healthdns_gossip_members{state="alive"}`)
			why = fmt.Sprintf("%v members alive (%v)", v, err)
			return err == nil && v == 3
		}); !ok {
			t.Fatalf("dns%d: cluster not formed after %v: %s", i+1, d, why)
		}
	}

	// No server can reach the agent's and the sidecar's addresses.
	for _, ip := range []string{"127.0.1.10", "127.0.1.11"} {
		rule := []string{"INPUT", "-i", "lo", "-d", ip, "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "healthdns-TestEdgeClients", "-j", "DROP"}
		// A run that was killed may have left its rule: remove it first.
		for range 10 {
			if exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() != nil {
				break
			}
		}
		if out, err := exec.Command("iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
			t.Skipf("iptables: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("iptables", append([]string{"-D"}, rule...)...).CombinedOutput(); err != nil {
				t.Errorf("removing the iptables rule for %s: %v: %s", ip, err, out)
			}
		})
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond)
		ln.Close()
		if err == nil {
			c.Close()
			t.Fatalf("the iptables rule does not stop connections to %s", ip)
		}
	}

	common := []string{"-connect", strings.Join(e.clients, ","), "-keyfile", e.keyFile, "-label", edgeLabel, "-gossip-interval", "100ms", "-leave-timeout", "1s"}
	e.agentStatus = fmt.Sprintf("http://127.0.1.12:%d/status", agentStat)
	launch(t, "edge agent", dir, agentBinary, append([]string{"-name", "edge-agent", "-observer", "edge",
		"-connect-from", "127.0.1.10", "-status", fmt.Sprintf("127.0.1.12:%d", agentStat)}, common...)...)
	e.sidecarStatus = fmt.Sprintf("http://127.0.1.12:%d/status", sidecarStat)
	e.hookURL = fmt.Sprintf("http://127.0.1.12:%d", hookPort)
	launch(t, "edge sidecar", dir, agentBinary, append([]string{"-name", "edge-sidecar", "-observer", "edge",
		"-connect-from", "127.0.1.11", "-probe=false", "-status", fmt.Sprintf("127.0.1.12:%d", sidecarStat),
		"-webhook", fmt.Sprintf("127.0.1.12:%d", hookPort), "-webhook-health", fmt.Sprintf("127.0.1.12:%d", hookHealth),
		"-owner", "eu", "-domain-filter", zone, "-default-check", fmt.Sprintf("http://{addr}:%d/", backPort)}, common...)...)
	if d, ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.1.12:%d/healthz", hookHealth))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); !ok {
		t.Fatalf("the sidecar's webhook not healthy after %v", d)
	}
	return e
}

// restart starts server i (again, over its data directory), and waits
// until it answers.
func (e *edgeEnv) restart(i int) {
	e.t.Helper()
	p := launch(e.t, fmt.Sprintf("healthdns dns%d", i+1), e.dir, serverBinary, "-conf", e.confs[i])
	if _, ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		a, err := lookup(e.dnsAddr(i), "udp", zone, dns.ClassINET, dns.TypeSOA)
		return p.Exited() || (err == nil && a.Rcode == "NOERROR")
	}); !ok || p.Exited() {
		e.t.Fatalf("dns%d not answering (exited %v)", i+1, p.Exited())
	}
	e.servers[i] = p
}

func (e *edgeEnv) kill(i int) {
	p := e.servers[i]
	e.servers[i] = nil
	p.Cmd.Process.Kill()
	<-p.Done
}

func (e *edgeEnv) liveSet() []int {
	var out []int
	for i, p := range e.servers {
		if p != nil {
			out = append(out, i)
		}
	}
	return out
}

func (e *edgeEnv) serverAt(addr string) int {
	return slices.Index(e.clients, addr)
}

type statusDoc struct {
	Views []struct {
		Node, Location, Role, State string
	} `json:"views"`
	Members []struct {
		Name, Addr, State string
	} `json:"members"`
}

func readStatus(url string) (*statusDoc, error) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var d statusDoc
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return nil, err
	}
	return &d, nil
}

// view is server i's view of node, nil if it holds none.
func (e *edgeEnv) view(i int, node string) *struct{ Node, Location, Role, State string } {
	d, err := readStatus(e.statuses[i])
	if err != nil {
		e.t.Fatalf("dns%d status: %v", i+1, err)
	}
	for _, v := range d.Views {
		if v.Node == node {
			return &v
		}
	}
	return nil
}

// connectedTo is the server an edge client's status says it is
// connected to, "" for none.
func (e *edgeEnv) connectedTo(statusURL string) string {
	d, err := readStatus(statusURL)
	if err != nil {
		return ""
	}
	for _, m := range d.Members {
		if m.State == "connected" {
			return m.Addr
		}
	}
	return ""
}

// expectApp waits until every server of which (every live one for nil)
// answers app with want over UDP and TCP.
func (e *edgeEnv) expectApp(step string, which []int, want ...string) {
	e.t.Helper()
	if which == nil {
		which = e.liveSet()
	}
	var slowest time.Duration
	for _, i := range which {
		var last answer
		var err error
		d, ok := poll(e2eWait, 20*time.Millisecond, func() bool {
			last, err = both(e.dnsAddr(i), app, dns.TypeA)
			return err == nil && last.equal(noerror(want...))
		})
		if !ok {
			e.t.Fatalf("%s: dns%d answers app %v (%v), want %v", step, i+1, last, err, want)
		}
		slowest = max(slowest, d)
	}
	e.t.Logf("%s: app answers %v on dns%v within %v", step, want, plus1(which), slowest.Round(time.Millisecond))
}

// expectRecords waits until every server of which answers the first n
// records ExternalDNS wrote.
func (e *edgeEnv) expectRecords(step string, which []int, n int) {
	e.t.Helper()
	if which == nil {
		which = e.liveSet()
	}
	start := time.Now()
	for _, i := range which {
		for k := range n {
			name := fmt.Sprintf("svc%d.%s", k, zone)
			var last answer
			var err error
			if _, ok := poll(e2eWait, 20*time.Millisecond, func() bool {
				last, err = both(e.dnsAddr(i), name, dns.TypeA)
				return err == nil && last.equal(noerror("127.0.1.30"))
			}); !ok {
				e.t.Fatalf("%s: dns%d answers %s %v (%v): an acknowledged record is missing", step, i+1, name, last, err)
			}
		}
	}
	e.t.Logf("%s: %d acknowledged records served by dns%v within %v", step, n, plus1(which), time.Since(start).Round(time.Millisecond))
}

func plus1(is []int) []int {
	out := make([]int, len(is))
	for k, i := range is {
		out[k] = i + 1
	}
	return out
}

// watcher asks every live server for app, all the time, and keeps the
// answers that are not want.
type watcher struct {
	e       *edgeEnv
	want    answer
	mu      sync.Mutex
	live    map[int]bool
	flaps   []string
	checked int
	done    chan struct{}
	wg      sync.WaitGroup
}

func (e *edgeEnv) watch(want ...string) *watcher {
	w := &watcher{e: e, want: noerror(want...), live: map[int]bool{}, done: make(chan struct{})}
	for _, i := range e.liveSet() {
		w.live[i] = true
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for k := 0; k < 100000; k++ {
			select {
			case <-w.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			w.mu.Lock()
			var live []int
			for i := range w.live {
				live = append(live, i)
			}
			w.mu.Unlock()
			sort.Ints(live)
			for _, i := range live {
				a, err := both(e.dnsAddr(i), app, dns.TypeA)
				w.mu.Lock()
				if w.live[i] { // not killed meanwhile
					w.checked++
					if err != nil || !a.equal(w.want) {
						w.flaps = append(w.flaps, fmt.Sprintf("dns%d at %s: %v (%v)", i+1, time.Now().Format("15:04:05.000"), a, err))
					}
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *watcher) down(i int) { w.mu.Lock(); delete(w.live, i); w.mu.Unlock() }
func (w *watcher) up(i int)   { w.mu.Lock(); w.live[i] = true; w.mu.Unlock() }

func (w *watcher) stop() []string {
	close(w.done)
	w.wg.Wait()
	return w.flaps
}
