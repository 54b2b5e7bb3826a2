package externaldns

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/test/testproc"

	"github.com/miekg/dns"
)

// Helpers for the tests that run real healthdns processes: the processes,
// the backends their checks probe, and DNS over the wire. The main
// module's test package has its own; a test module cannot import them.

// poll calls cond every step until it returns true or timeout passes.
var poll = testproc.Poll

// proc is a running healthdns or healthdns-agent.
type proc struct{ *testproc.Process }

// launch starts bin with args in dir; it is stopped in t.Cleanup, and its
// output goes to the test log if the test failed.
func launch(t *testing.T, what, dir, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	return &proc{testproc.Start(t, what, cmd)}
}

// freePorts returns n distinct ports free for TCP and UDP on every ip,
// below the ephemeral range.
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
			addr := net.JoinHostPort(ip, strconv.Itoa(p))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				ok = false
				break
			}
			pc, err := net.ListenPacket("udp", addr)
			l.Close()
			if err != nil {
				ok = false
				break
			}
			pc.Close()
		}
		if ok {
			if out = append(out, p); len(out) == n {
				return out
			}
		}
	}
	t.Fatalf("no %d ports free on %v", n, ips)
	return nil
}

func newGossipKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// backend is an HTTP service that answers 200 on every path; a check
// "http://ADDR/" is up while it runs. It can be stopped and started again
// on the same address.
type backend struct {
	t    *testing.T
	addr string

	mu  sync.Mutex
	srv *http.Server
	wg  sync.WaitGroup
}

func startBackend(t *testing.T, ip string) *backend {
	t.Helper()
	b := &backend{t: t, addr: net.JoinHostPort(ip, "0")}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	if _, ok := poll(3*time.Second, 20*time.Millisecond, func() bool {
		ln, err = net.Listen("tcp", b.addr)
		return err == nil
	}); !ok {
		b.t.Fatalf("backend listen on %s: %v", b.addr, err)
	}
	b.addr = ln.Addr().String()
	b.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }),
		ReadHeaderTimeout: time.Second,
	}
	srv := b.srv
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		srv.Serve(ln)
	}()
}

// stop closes the listener and every connection: the next check fails.
func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return
	}
	b.srv.Close()
	b.wg.Wait()
	b.srv = nil
}

// check is the healthdns check of the backend.
func (b *backend) check() string { return "http://" + b.addr + "/" }

// answer is a DNS answer as the tests compare it: the rcode and the data
// of the answer section, sorted (addresses; TXT strings joined and quoted
// as ExternalDNS writes TXT targets).
type answer struct {
	Rcode string
	Data  []string
}

func (a answer) String() string { return fmt.Sprintf("%s %q", a.Rcode, a.Data) }

func (a answer) equal(b answer) bool { return a.Rcode == b.Rcode && slices.Equal(a.Data, b.Data) }

// lookup asks addr over network ("udp" or "tcp") for name in class IN
// (or CH), type qtype.
func lookup(addr, network, name string, qclass, qtype uint16) (answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Question[0].Qclass = qclass
	m.RecursionDesired = false
	c := &dns.Client{Net: network, Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return answer{}, err
	}
	if qclass == dns.ClassINET && !r.Authoritative {
		return answer{}, fmt.Errorf("%s %s over %s: AA not set", name, dns.TypeToString[qtype], network)
	}
	a := answer{Rcode: dns.RcodeToString[r.Rcode]}
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			a.Data = append(a.Data, rr.A.String())
		case *dns.AAAA:
			a.Data = append(a.Data, rr.AAAA.String())
		case *dns.TXT:
			a.Data = append(a.Data, `"`+strings.Join(rr.Txt, "")+`"`)
		case *dns.CNAME:
			a.Data = append(a.Data, rr.Target)
		default:
			a.Data = append(a.Data, rr.String())
		}
	}
	sort.Strings(a.Data)
	return a, nil
}

// both asks over UDP and over TCP; the two must agree.
func both(addr, name string, qtype uint16) (answer, error) {
	u, err := lookup(addr, "udp", name, dns.ClassINET, qtype)
	if err != nil {
		return answer{}, err
	}
	tc, err := lookup(addr, "tcp", name, dns.ClassINET, qtype)
	if err != nil {
		return answer{}, err
	}
	if !u.equal(tc) {
		return answer{}, fmt.Errorf("%s %s: UDP answers %v, TCP %v", name, dns.TypeToString[qtype], u, tc)
	}
	return u, nil
}

func noerror(data ...string) answer {
	if len(data) == 0 {
		data = nil
	}
	data = slices.Clone(data)
	sort.Strings(data)
	return answer{Rcode: "NOERROR", Data: data}
}

var nxdomain = answer{Rcode: "NXDOMAIN"}
