// Package test holds the end-to-end tests: they build the healthdns binary
// once, start it as a real process with generated Corefiles, start real
// HTTP and TCP backends, and query it over the wire.
package test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/test/testproc"

	"github.com/miekg/dns"
)

// binary is the healthdns binary and agentBinary the healthdns-agent
// binary, both built by TestMain.
var binary, agentBinary string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	bins, err := testproc.Build("..") // the module root, relative to this package
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer bins.Remove()
	binary, agentBinary = bins.Server, bins.Agent
	return m.Run()
}

// zoneText is the static part of the test zone. Its negative TTL is
// min(SOA TTL 300, MINIMUM 30) = 30 s.
const zoneText = `$ORIGIN gslb.example.com.
$TTL 300
@       IN SOA  ns1.gslb.example.com. hostmaster.example.com. 1 3600 600 604800 30
        IN NS   ns1.gslb.example.com.
ns1     IN A    127.0.0.1
static  IN A    192.0.2.200
`

const zone = "gslb.example.com."

// writeFile writes text to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceFile swaps the content of path in one rename, so a reader never
// sees half a file.
func replaceFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns 127.0.0.1:PORT with PORT free for both TCP and UDP
// right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no free TCP+UDP port on 127.0.0.1")
	return ""
}

// portOf returns the port of host:port.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// poll calls cond every step until it returns true or timeout passes.
var poll = testproc.Poll

// process is a running healthdns or healthdns-agent binary.
type process struct{ *testproc.Process }

// launch starts the binary in dir with args. The process is stopped in
// t.Cleanup, and its output goes to the test log if the test failed.
func launch(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	return launchCmd(t, "healthdns "+strings.Join(args, " "), cmd)
}

// launchCmd starts cmd (its output is collected) and stops it in
// t.Cleanup; what names the process in the test log if the test failed.
func launchCmd(t *testing.T, what string, cmd *exec.Cmd) *process {
	t.Helper()
	return &process{testproc.Start(t, what, cmd)}
}

// waitExit waits up to timeout for the process to exit by itself and
// returns its exit code, or fails the test.
func (p *process) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.Done:
	case <-time.After(timeout):
		t.Fatalf("healthdns still running after %v; output:\n%s", timeout, p.Out.String())
	}
	var ee *exec.ExitError
	if errors.As(p.Err, &ee) {
		return ee.ExitCode()
	}
	if p.Err != nil {
		t.Fatalf("wait: %v", p.Err)
	}
	return 0
}

// server is a healthdns process serving the test zone on addr.
type server struct {
	*process
	addr     string
	corefile string // path
}

// startServer writes corefile to dir/Corefile, runs the binary with it and
// waits until it answers the zone's SOA on addr.
func startServer(t *testing.T, dir, addr, corefile string) *server {
	t.Helper()
	path := writeFile(t, dir, "Corefile", corefile)
	s := &server{process: launch(t, dir, "-conf", path), addr: addr, corefile: path}
	s.waitReady(t, 15*time.Second)
	return s
}

// waitReadyOn polls the zone's SOA on addr until an authoritative answer
// comes back.
func (p *process) waitReadyOn(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	_, ok := poll(timeout, 50*time.Millisecond, func() bool {
		if p.Exited() {
			return true
		}
		m, err := exchange(addr, "udp", zone, dns.TypeSOA, false)
		return err == nil && m.Rcode == dns.RcodeSuccess && m.Authoritative && len(m.Answer) == 1
	})
	if p.Exited() {
		t.Fatalf("healthdns exited before it was ready (%v); output:\n%s", p.Err, p.Out.String())
	}
	if !ok {
		t.Fatalf("healthdns on %s not ready after %v", addr, timeout)
	}
}

// waitReady is waitReadyOn for the server's own address.
func (s *server) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	s.waitReadyOn(t, s.addr, timeout)
}

// exchange sends one query for name/qtype to addr over network ("udp" or
// "tcp"), with the DO bit if do.
func exchange(addr, network, name string, qtype uint16, do bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	if do {
		m.SetEdns0(4096, true)
	}
	c := &dns.Client{Net: network, Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// query is exchange that fails the test on a transport error.
func (s *server) query(t *testing.T, network, name string, qtype uint16, do bool) *dns.Msg {
	t.Helper()
	m, err := exchange(s.addr, network, name, qtype, do)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return m
}

// addrs returns the A and AAAA addresses of the answer section, sorted.
func addrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	sort.Strings(out)
	return out
}

// sorted returns a sorted copy of ss.
func sorted(ss ...string) []string {
	out := slices.Clone(ss)
	sort.Strings(out)
	return out
}

// backend is a real HTTP or TCP service a check points at. It can be
// stopped and started again on the same address.
type backend struct {
	t    *testing.T
	kind string // "http" or "tcp"
	addr string

	mu  sync.Mutex
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup
	up  bool
}

// startBackend starts a backend of kind on a fresh 127.0.0.1 port; it is
// stopped in t.Cleanup.
func startBackend(t *testing.T, kind string) *backend {
	t.Helper()
	b := &backend{t: t, kind: kind, addr: "127.0.0.1:0"}
	b.start()
	t.Cleanup(b.stop)
	return b
}

// start listens on the backend's address (retrying for a while if the
// port is not free yet) and serves.
func (b *backend) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.up {
		return
	}
	var ln net.Listener
	var lerr error
	if _, ok := poll(3*time.Second, 20*time.Millisecond, func() bool {
		ln, lerr = net.Listen("tcp", b.addr)
		return lerr == nil
	}); !ok {
		b.t.Fatalf("backend listen on %s: %v", b.addr, lerr)
	}
	b.ln, b.addr, b.up = ln, ln.Addr().String(), true
	switch b.kind {
	case "http":
		mux := http.NewServeMux()
		mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
		srv := b.srv
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			srv.Serve(ln)
		}()
	case "tcp":
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	default:
		b.t.Fatalf("unknown backend kind %q", b.kind)
	}
}

// stop closes the listener (and, for HTTP, every open connection), so
// the next check fails at once with a refused connection.
func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.up {
		return
	}
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	} else {
		b.ln.Close()
	}
	b.wg.Wait()
	b.up = false
}

// check is the healthdns check spec that points at the backend.
func (b *backend) check() string {
	if b.kind == "http" {
		return "http://" + b.addr + "/health"
	}
	return "tcp " + b.addr
}
