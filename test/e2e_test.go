package test

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Check timing shared by the tests that measure failover.
const (
	interval = 200 * time.Millisecond
	rise     = 2
	fall     = 2
	// failBound and riseBound are what the design promises for a single
	// server that probes by itself, with a second of slack.
	failBound = interval*fall + time.Second
	riseBound = interval*rise + time.Second
)

// failoverCorefile: app is active-standby (east tier 1, west tier 2), www
// is active-active over east, west and a target that is always down.
const failoverCorefile = `gslb.example.com:%[1]s {
    bind 127.0.0.1
    errors
    healthdns {
        zonefile %[2]s
        interval 200ms
        timeout 100ms
        rise 2
        fall 2
        name app {
            policy priority
            ttl 5
            target 192.0.2.10    tier 1 check %[3]s
            target 198.51.100.10 tier 2 check %[4]s
        }
        name www {
            policy roundrobin
            ttl 5
            target 192.0.2.20    check %[3]s
            target 198.51.100.20 check %[4]s
            target 203.0.113.20  check tcp %[5]s
        }
    }
}
`

func TestFailover(t *testing.T) {
	dir := t.TempDir()
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	closed := freeAddr(t) // nothing listens here
	addr := freeAddr(t)
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	s := startServer(t, dir, addr, fmt.Sprintf(failoverCorefile, portOf(t, addr), zf, east.check(), west.check(), closed))

	appEast, appWest := []string{"192.0.2.10"}, []string{"198.51.100.10"}
	wwwAll := sorted("192.0.2.20", "198.51.100.20")

	// The very first answers, right after the server is ready, already
	// leave out the targets that are down.
	for _, network := range []string{"udp", "tcp"} {
		m := s.query(t, network, "app.gslb.example.com", dns.TypeA, false)
		assertAnswer(t, m, network+" app A", appEast, 5)
		m = s.query(t, network, "www.gslb.example.com", dns.TypeA, false)
		assertAnswer(t, m, network+" www A", wwwAll, 5)
	}

	t.Run("case-insensitive", func(t *testing.T) {
		m := s.query(t, "udp", "APP.Gslb.Example.COM", dns.TypeA, false)
		assertAnswer(t, m, "APP.Gslb.Example.COM A", appEast, 5)
	})
	t.Run("static", func(t *testing.T) {
		m := s.query(t, "udp", "static.gslb.example.com", dns.TypeA, false)
		assertAnswer(t, m, "static A", []string{"192.0.2.200"}, 300)
	})
	t.Run("nxdomain", func(t *testing.T) {
		m := s.query(t, "udp", "nope.gslb.example.com", dns.TypeA, false)
		assertNegative(t, m, "nope A", dns.RcodeNameError, 30)
	})
	t.Run("nodata-aaaa", func(t *testing.T) {
		// app has only IPv4 targets: AAAA is NODATA, never SERVFAIL.
		for _, network := range []string{"udp", "tcp"} {
			m := s.query(t, network, "app.gslb.example.com", dns.TypeAAAA, false)
			assertNegative(t, m, network+" app AAAA", dns.RcodeSuccess, 30)
		}
	})
	t.Run("refused", func(t *testing.T) {
		m := s.query(t, "udp", "example.org", dns.TypeA, false)
		if m.Rcode != dns.RcodeRefused {
			t.Errorf("example.org A: rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
		}
		if len(m.Answer) != 0 {
			t.Errorf("example.org A: answer %v, want none", m.Answer)
		}
	})

	// Tier 1 dies: app fails over to tier 2.
	d := s.waitChange(t, "udp", "app.gslb.example.com", appEast, appWest, east.stop)
	t.Logf("failover took %v (udp, priority, bound %v)", d, failBound)
	if d > failBound {
		t.Errorf("failover took %v, want at most interval*fall + 1s = %v", d, failBound)
	}
	s.waitAnswer(t, "udp", "www.gslb.example.com", []string{"198.51.100.20"}, failBound)

	// Tier 1 comes back on the same port: app returns to it.
	d = s.waitChange(t, "udp", "app.gslb.example.com", appWest, appEast, east.start)
	t.Logf("recovery took %v (udp, priority, bound %v)", d, riseBound)
	if d > riseBound {
		t.Errorf("recovery took %v, want at most interval*rise + 1s = %v", d, riseBound)
	}
	s.waitAnswer(t, "udp", "www.gslb.example.com", wwwAll, riseBound)

	// The same over TCP, with the roundrobin name.
	d = s.waitChange(t, "tcp", "www.gslb.example.com", wwwAll, []string{"192.0.2.20"}, west.stop)
	t.Logf("failover took %v (tcp, roundrobin, bound %v)", d, failBound)
	if d > failBound {
		t.Errorf("failover over TCP took %v, want at most %v", d, failBound)
	}
	d = s.waitChange(t, "tcp", "www.gslb.example.com", []string{"192.0.2.20"}, wwwAll, west.start)
	t.Logf("recovery took %v (tcp, roundrobin, bound %v)", d, riseBound)
	if d > riseBound {
		t.Errorf("recovery over TCP took %v, want at most %v", d, riseBound)
	}
}

// waitChange runs act, then polls name A over network until the answer is
// no longer from. It fails unless the new answer is want, and returns the
// time from act to the change.
func (s *server) waitChange(t *testing.T, network, name string, from, want []string, act func()) time.Duration {
	t.Helper()
	var last []string
	start := time.Now()
	act()
	_, ok := poll(failBound+riseBound+2*time.Second, 20*time.Millisecond, func() bool {
		m, err := exchange(s.addr, network, name, dns.TypeA, false)
		if err != nil || m.Rcode != dns.RcodeSuccess {
			return false
		}
		last = addrs(m)
		return !slices.Equal(last, from)
	})
	took := time.Since(start)
	if !ok {
		t.Fatalf("%s A over %s still %v after %v", name, network, from, took)
	}
	if !slices.Equal(last, want) {
		t.Fatalf("%s A over %s changed from %v to %v, want %v", name, network, from, last, want)
	}
	return took
}

// waitAnswer polls name A over network until it answers want.
func (s *server) waitAnswer(t *testing.T, network, name string, want []string, timeout time.Duration) {
	t.Helper()
	var last []string
	if _, ok := poll(timeout, 20*time.Millisecond, func() bool {
		m, err := exchange(s.addr, network, name, dns.TypeA, false)
		if err != nil {
			return false
		}
		last = addrs(m)
		return slices.Equal(last, want)
	}); !ok {
		t.Fatalf("%s A over %s: %v after %v, want %v", name, network, last, timeout, want)
	}
}

// assertAnswer checks an authoritative NOERROR answer with exactly the
// addresses want, each with the TTL ttl.
func assertAnswer(t *testing.T, m *dns.Msg, what string, want []string, ttl uint32) {
	t.Helper()
	if m.Rcode != dns.RcodeSuccess {
		t.Errorf("%s: rcode %s, want NOERROR", what, dns.RcodeToString[m.Rcode])
	}
	if !m.Authoritative {
		t.Errorf("%s: AA not set", what)
	}
	if got := addrs(m); !slices.Equal(got, want) {
		t.Errorf("%s: answer %v, want %v", what, got, want)
	}
	for _, rr := range m.Answer {
		if rr.Header().Ttl != ttl {
			t.Errorf("%s: %s has TTL %d, want %d", what, rr, rr.Header().Ttl, ttl)
		}
	}
}

// assertNegative checks an authoritative NXDOMAIN or NODATA: no answer,
// the zone's SOA in the authority section with the negative TTL.
func assertNegative(t *testing.T, m *dns.Msg, what string, rcode int, negTTL uint32) {
	t.Helper()
	if m.Rcode != rcode {
		t.Errorf("%s: rcode %s, want %s", what, dns.RcodeToString[m.Rcode], dns.RcodeToString[rcode])
	}
	if !m.Authoritative {
		t.Errorf("%s: AA not set", what)
	}
	if len(m.Answer) != 0 {
		t.Errorf("%s: answer %v, want none", what, m.Answer)
	}
	if len(m.Ns) != 1 {
		t.Fatalf("%s: authority %v, want the SOA alone", what, m.Ns)
	}
	soa, ok := m.Ns[0].(*dns.SOA)
	if !ok || soa.Hdr.Name != zone {
		t.Fatalf("%s: authority %v, want the SOA of %s", what, m.Ns[0], zone)
	}
	if soa.Hdr.Ttl > negTTL {
		t.Errorf("%s: SOA TTL %d, want at most the negative TTL %d", what, soa.Hdr.Ttl, negTTL)
	}
}

// badCorefile is a Corefile around the body of a healthdns block.
const badCorefile = `gslb.example.com:%s {
    bind 127.0.0.1
    healthdns {
%s
    }
}
`

const goodName = `        name app {
            target 192.0.2.10 check tcp 127.0.0.1:1
        }`

func TestBadCorefile(t *testing.T) {
	dir := t.TempDir()
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	badZone := writeFile(t, dir, "bad.zone", zoneText+"broken  IN A    192.0.2.300\n")
	badZoneLine := strings.Count(zoneText, "\n") + 1
	port := portOf(t, freeAddr(t))

	cases := []struct {
		name   string
		body   string
		line   string   // the error names the line that contains this
		reason []string // and says this
	}{
		{
			name: "unknown option",
			body: "        zonefile " + zf + "\n        frobnicate 3\n" + goodName,
			line: "frobnicate", reason: []string{"unknown", `"frobnicate"`},
		},
		{
			name: "bad IP in target",
			body: "        zonefile " + zf + "\n        name app {\n            target 300.1.1.1 check tcp 127.0.0.1:1\n        }",
			line: "300.1.1.1", reason: []string{"300.1.1.1", "address"},
		},
		{
			name: "bad duration",
			body: "        zonefile " + zf + "\n        interval 5x\n" + goodName,
			line: "interval", reason: []string{`"5x"`, "duration"},
		},
		{
			name: "negative weight",
			body: "        zonefile " + zf + "\n        name app {\n            target 192.0.2.10 weight -1 check tcp 127.0.0.1:1\n        }",
			line: "weight -1", reason: []string{"weight", `"-1"`},
		},
		{
			name: "unknown policy",
			body: "        zonefile " + zf + "\n        name app {\n            policy fastest\n            target 192.0.2.10 check tcp 127.0.0.1:1\n        }",
			line: "policy fastest", reason: []string{"policy", `"fastest"`},
		},
		{
			name: "name outside the zone",
			body: "        zonefile " + zf + "\n        name app.example.org. {\n            target 192.0.2.10 check tcp 127.0.0.1:1\n        }",
			line: "app.example.org.", reason: []string{"app.example.org", "outside"},
		},
		{
			name: "missing zone file",
			body: "        zonefile " + filepath.Join(dir, "missing.zone") + "\n" + goodName,
			line: "zonefile", reason: []string{"missing.zone", "no such file"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			corefile := fmt.Sprintf(badCorefile, port, tc.body)
			path := writeFile(t, t.TempDir(), "Corefile", corefile)
			out := runToFailure(t, dir, path)
			line := lineOf(t, corefile, tc.line)
			for _, r := range tc.reason {
				if !strings.Contains(out, r) {
					t.Errorf("output does not say %q:\n%s", r, out)
				}
			}
			if want := path + ":" + strconv.Itoa(line); !strings.Contains(out, want) {
				t.Errorf("output does not name %s:\n%s", want, out)
			}
		})
	}

	t.Run("broken zone file", func(t *testing.T) {
		corefile := fmt.Sprintf(badCorefile, port, "        zonefile "+badZone+"\n"+goodName)
		path := writeFile(t, t.TempDir(), "Corefile", corefile)
		out := runToFailure(t, dir, path)
		// miekg/dns says "... at line: 7:..."; a file:line form is fine too.
		re := regexp.MustCompile(`(?s)bad\.zone.*(line:? ?` + strconv.Itoa(badZoneLine) + `\b|bad\.zone:` + strconv.Itoa(badZoneLine) + `\b)`)
		if !re.MatchString(out) {
			t.Errorf("output does not name bad.zone and its line %d:\n%s", badZoneLine, out)
		}
		if !strings.Contains(out, "192.0.2.300") {
			t.Errorf("output does not quote the bad value 192.0.2.300:\n%s", out)
		}
	})
}

// runToFailure runs the binary with -conf path and wants it to exit with a
// non-zero code, without a panic, within a deadline. It returns the output.
func runToFailure(t *testing.T, dir, path string) string {
	t.Helper()
	p := launch(t, dir, "-conf", path)
	code := p.waitExit(t, 10*time.Second)
	out := p.Out.String()
	if code == 0 {
		t.Fatalf("exit code 0, want non-zero; output:\n%s", out)
	}
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Errorf("it panicked:\n%s", out)
	}
	return out
}

// lineOf returns the 1-based number of the first line of text containing s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line contains %q", s)
	return 0
}

// free reports whether addr can be bound right now for TCP, and for UDP
// too if udp.
func free(addr string, udp bool) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	if udp {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}

func TestEmbeddedDefault(t *testing.T) {
	// Corefile.example binds these; 9001 must be closed for its tier-1
	// check to fail.
	if !free("127.0.0.1:1053", true) {
		t.Skip("127.0.0.1:1053 is in use")
	}
	if !free("[::1]:1053", true) {
		t.Skip("[::1]:1053 is in use or there is no ::1")
	}
	if !free("127.0.0.1:9001", false) {
		t.Skip("127.0.0.1:9001 is in use: app's tier 1 would be up")
	}
	for _, a := range []string{"127.0.0.1:8080", "127.0.0.1:8181", "127.0.0.1:9153"} {
		if !free(a, false) {
			t.Skipf("%s (used by Corefile.example) is in use", a)
		}
	}
	dir := t.TempDir() // no Corefile here
	p := launch(t, dir)
	const addr = "127.0.0.1:1053"
	_, ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		if p.Exited() {
			return true
		}
		m, err := exchange(addr, "udp", zone, dns.TypeSOA, false)
		return err == nil && m.Rcode == dns.RcodeSuccess
	})
	if p.Exited() {
		if strings.Contains(p.Out.String(), "address already in use") {
			t.Skipf("a port of Corefile.example was taken meanwhile:\n%s", p.Out.String())
		}
		t.Fatalf("healthdns exited (%v):\n%s", p.Err, p.Out.String())
	}
	if !ok {
		t.Fatal("embedded server not ready on 127.0.0.1:1053")
	}
	var last *dns.Msg
	d, ok := poll(8*time.Second, 50*time.Millisecond, func() bool {
		m, err := exchange(addr, "udp", "app.gslb.example.com", dns.TypeA, false)
		if err != nil {
			return false
		}
		last = m
		return slices.Equal(addrs(m), []string{"198.51.100.10"})
	})
	if !ok {
		t.Fatalf("app.gslb.example.com A: %v, want [198.51.100.10]", last)
	}
	t.Logf("app answered its tier 2 after %v", d)
	if !last.Authoritative {
		t.Errorf("app.gslb.example.com A: AA not set")
	}
}

// reloadCorefile has the reload plugin at its shortest interval (2s, see
// minInterval in coredns plugin/reload) without jitter. app has one target
// up and one down; dead has only a down target and fallback none.
const reloadCorefile = `gslb.example.com:%[1]s {
    bind 127.0.0.1
    reload 2s 0s
    healthdns {
        zonefile %[2]s
        interval 200ms
        timeout 100ms
        rise 2
        fall 2
        name app {
            policy roundrobin
            ttl %[5]d
            target 192.0.2.10 check %[3]s
            target 192.0.2.66 check tcp %[4]s
        }
        name dead {
            ttl %[5]d
            fallback none
            target 192.0.2.67 check tcp %[4]s
        }
    }
}
`

func TestReloadKeepsHealth(t *testing.T) {
	dir := t.TempDir()
	up := startBackend(t, "tcp")
	closed := freeAddr(t)
	addr := freeAddr(t)
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	port := portOf(t, addr)
	s := startServer(t, dir, addr, fmt.Sprintf(reloadCorefile, port, zf, up.check(), closed, 5))

	m := s.query(t, "udp", "app.gslb.example.com", dns.TypeA, false)
	assertAnswer(t, m, "app A", []string{"192.0.2.10"}, 5)
	m = s.query(t, "udp", "dead.gslb.example.com", dns.TypeA, false)
	assertNegative(t, m, "dead A", dns.RcodeSuccess, 5)

	replaceFile(t, s.corefile, fmt.Sprintf(reloadCorefile, port, zf, up.check(), closed, 7))
	edited := time.Now()

	// Poll both names through the reload and a while after it: the down
	// targets must never be served, and the new TTL must show up.
	var (
		polls, failures int
		reloadedAt      time.Time
		flaps           []string
	)
	poll(15*time.Second, 20*time.Millisecond, func() bool {
		for _, name := range []string{"app.gslb.example.com", "dead.gslb.example.com"} {
			polls++
			m, err := exchange(s.addr, "udp", name, dns.TypeA, false)
			if err != nil {
				failures++
				continue
			}
			for _, a := range addrs(m) {
				if a == "192.0.2.66" || a == "192.0.2.67" {
					flaps = append(flaps, fmt.Sprintf("%v after the edit: %s A answered %v", time.Since(edited).Round(time.Millisecond), name, addrs(m)))
				}
			}
			if name == "app.gslb.example.com" && reloadedAt.IsZero() && len(m.Answer) > 0 && m.Answer[0].Header().Ttl == 7 {
				reloadedAt = time.Now()
			}
		}
		// Keep watching for a second after the new config is live.
		return !reloadedAt.IsZero() && time.Since(reloadedAt) > time.Second
	})
	if len(flaps) > 0 {
		t.Errorf("a down target was served during the reload:\n%s", strings.Join(flaps, "\n"))
	}
	if reloadedAt.IsZero() {
		t.Fatalf("TTL 7 never showed up after the Corefile edit (%d polls, %d failed)", polls, failures)
	}
	t.Logf("reload live %v after the edit; %d queries, %d without answer, no flap", reloadedAt.Sub(edited).Round(time.Millisecond), polls, failures)
	m = s.query(t, "udp", "app.gslb.example.com", dns.TypeA, false)
	assertAnswer(t, m, "app A after reload", []string{"192.0.2.10"}, 7)
	m = s.query(t, "udp", "dead.gslb.example.com", dns.TypeA, false)
	assertNegative(t, m, "dead A after reload", dns.RcodeSuccess, 7)
}
