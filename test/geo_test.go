package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/miekg/dns"
)

// The geo tests run on 127.0.3.0/24 only: healthdns on 127.0.3.1, the
// backends on 127.0.3.1 too, clients from 127.0.3.20 (us by the topology)
// and 127.0.3.40 (eu), unbound on 127.0.3.53.

// geoAddr returns 127.0.3.1:PORT with PORT free for TCP and UDP.
func geoAddr(t *testing.T, ip string) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Skipf("cannot listen on %s: %v", ip, err)
		}
		addr := l.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatalf("no free TCP+UDP port on %s", ip)
	return ""
}

// geoBackend is an HTTP backend on 127.0.3.1 that can be stopped.
func geoBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{t: t, kind: "http", addr: "127.0.3.1:0"}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func geoCorefile(port string, eu, us *backend) string {
	return `gslb.example.com:` + port + ` {
    bind 127.0.3.1
    healthdns {
        zonefile zone.db
        interval 1s
        timeout 500ms
        rise 1
        fall 2
        topology {
            10.0.0.0/8       eu
            192.168.0.0/16   us
            127.0.3.16/28    us
            127.0.3.32/28    eu
        }
        name app {
            policy geo
            order eu us
            ttl 30
            target 192.0.2.10    region eu check ` + eu.check() + `
            target 198.51.100.10 region us check ` + us.check() + `
        }
    }
}
`
}

// geoQuery asks addr for app's A over network from source (or any), with
// ECS subnet (or none).
func geoQuery(addr, network, source, subnet string, rd bool) (*dns.Msg, error) {
	r := new(dns.Msg)
	r.SetQuestion("app."+zone, dns.TypeA)
	r.RecursionDesired = rd
	if subnet != "" {
		p, err := netipPrefix(subnet)
		if err != nil {
			return nil, err
		}
		r.SetEdns0(1232, false)
		r.IsEdns0().Option = append(r.IsEdns0().Option, p)
	}
	c := &dns.Client{Net: network, Timeout: time.Second}
	if source != "" {
		ip := net.ParseIP(source)
		if network == "udp" {
			c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: ip}}
		} else {
			c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		}
	}
	m, _, err := c.Exchange(r, addr)
	return m, err
}

func netipPrefix(s string) (*dns.EDNS0_SUBNET, error) {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, err
	}
	bits, _ := n.Mask.Size()
	return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(bits), Address: n.IP.To4()}, nil
}

func scopeOf(m *dns.Msg) int {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_SUBNET); ok {
				return int(e.SourceScope)
			}
		}
	}
	return -1
}

// A real healthdns process answers by the client's region, and moves eu's
// clients to us when eu's backend dies, within interval × fall + 1 s.
func TestGeoFailover(t *testing.T) {
	eu, us := geoBackend(t), geoBackend(t)
	dir := t.TempDir()
	writeFile(t, dir, "zone.db", zoneText)
	addr := geoAddr(t, "127.0.3.1")
	startServer(t, dir, addr, geoCorefile(portOf(t, addr), eu, us))
	ask := func(network, source, subnet string) *dns.Msg {
		t.Helper()
		m, err := geoQuery(addr, network, source, subnet, false)
		if err != nil {
			t.Fatalf("%s from %s subnet %s: %v", network, source, subnet, err)
		}
		return m
	}
	// The first probe round is in before the server answers.
	for _, network := range []string{"udp", "tcp"} {
		if m := ask(network, "", "10.1.2.0/24"); !slices1(addrs(m), "192.0.2.10") || scopeOf(m) != 8 {
			t.Errorf("%s +subnet=10.1.2.0/24: %v scope %d, want eu's 192.0.2.10 scope 8", network, addrs(m), scopeOf(m))
		}
		if m := ask(network, "", "192.168.7.0/24"); !slices1(addrs(m), "198.51.100.10") || scopeOf(m) != 16 {
			t.Errorf("%s +subnet=192.168.7.0/24: %v scope %d, want us's 198.51.100.10 scope 16", network, addrs(m), scopeOf(m))
		}
		if m := ask(network, "127.0.3.20", ""); !slices1(addrs(m), "198.51.100.10") {
			t.Errorf("%s from 127.0.3.20, no ECS: %v, want us's", network, addrs(m))
		}
		if m := ask(network, "127.0.3.40", ""); !slices1(addrs(m), "192.0.2.10") {
			t.Errorf("%s from 127.0.3.40, no ECS: %v, want eu's", network, addrs(m))
		}
	}
	eu.stop()
	killed := time.Now()
	limit := 2*time.Second + time.Second // interval × fall + 1 s
	took, ok := poll(limit+3*time.Second, 20*time.Millisecond, func() bool {
		m, err := geoQuery(addr, "udp", "", "10.1.2.0/24", false)
		return err == nil && slices1(addrs(m), "198.51.100.10")
	})
	if !ok {
		t.Fatalf("eu's clients not moved to us %s after eu's backend died", time.Since(killed))
	}
	t.Logf("eu's backend killed: eu's clients answered us after %s", took.Round(10*time.Millisecond))
	if took > limit {
		t.Errorf("failover took %s, want at most interval × fall + 1 s = %s", took, limit)
	}
	if m := ask("tcp", "", "10.1.2.0/24"); !slices1(addrs(m), "198.51.100.10") {
		t.Errorf("tcp after the failover: %v", addrs(m))
	}
	eu.start()
	if _, ok := poll(5*time.Second, 20*time.Millisecond, func() bool {
		m, err := geoQuery(addr, "udp", "", "10.1.2.0/24", false)
		return err == nil && slices1(addrs(m), "192.0.2.10")
	}); !ok {
		t.Errorf("eu's clients not back on eu after eu's backend came back")
	}
}

func slices1(got []string, want string) bool { return len(got) == 1 && got[0] == want }

// Through a real resolver: unbound with its subnet cache sends the
// clients' subnets on, and two client subnets get two answers, each
// cached for its own subnet.
func TestGeoThroughUnbound(t *testing.T) {
	bin, err := exec.LookPath("unbound")
	if err != nil {
		t.Skip("unbound is not installed (apt-get install unbound)")
	}
	eu, us := geoBackend(t), geoBackend(t)
	dir := t.TempDir()
	writeFile(t, dir, "zone.db", zoneText)
	addr := geoAddr(t, "127.0.3.1")
	startServer(t, dir, addr, geoCorefile(portOf(t, addr), eu, us))
	host, p, _ := net.SplitHostPort(addr)
	ub := geoAddr(t, "127.0.3.53")
	_, ubPort, _ := net.SplitHostPort(ub)
	conf := writeFile(t, dir, "unbound.conf", fmt.Sprintf(`server:
  interface: 127.0.3.53
  port: %s
  do-daemonize: no
  username: ""
  chroot: ""
  directory: %q
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "subnetcache iterator"
  send-client-subnet: %s
  max-client-subnet-ipv4: 24
  qname-minimisation: no
  do-ip6: no
stub-zone:
  name: "gslb.example.com"
  stub-addr: %s@%s
`, ubPort, dir, host, host, p))
	proc := launchCmd(t, "unbound", exec.Command(bin, "-d", "-c", conf))
	if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		m, err := resolve(ub, zone, dns.TypeSOA)
		return proc.Exited() || (err == nil && m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1)
	}); !ok || proc.Exited() {
		if strings.Contains(proc.Out.String(), "subnetcache") {
			t.Skipf("this unbound has no subnet cache:\n%s", proc.Out.String())
		}
		t.Fatalf("unbound not answering on %s: %v\n%s", ub, proc.Err, proc.Out.String())
	}
	for round := range 2 { // the second round comes from unbound's cache
		for subnet, want := range map[string]string{"10.1.2.0/24": "192.0.2.10", "192.168.7.0/24": "198.51.100.10"} {
			m, err := geoQuery(ub, "udp", "", subnet, true)
			if err != nil {
				t.Fatalf("unbound, subnet %s: %v", subnet, err)
			}
			if !slices1(addrs(m), want) {
				t.Errorf("round %d, through unbound, subnet %s: %v, want %s", round, subnet, addrs(m), want)
			}
		}
	}
}

// The README's geo walk-through, on Corefile.example moved to 127.0.3.1.
func TestGeoReadmeWalkthrough(t *testing.T) {
	b, err := os.ReadFile("../Corefile.example")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "zones"), os.DirFS("../zones")); err != nil {
		t.Fatal(err)
	}
	addr := geoAddr(t, "127.0.3.1")
	conf := string(b)
	conf = strings.ReplaceAll(conf, "bind 127.0.0.1 ::1", "bind 127.0.0.1")
	conf = strings.ReplaceAll(conf, "matrix 127.0.0.0/8 ::1", "matrix 127.0.0.0/8")
	conf = strings.ReplaceAll(conf, "gslb.example.com:1053", "gslb.example.com:"+portOf(t, addr))
	// Every other listener on a free port of 127.0.3.1; 9001 stays the
	// backend's port, on 127.0.3.1.
	for _, port := range []string{"9153", "8080", "8181", "8053", "8888"} {
		conf = strings.ReplaceAll(conf, "127.0.0.1:"+port, "127.0.0.1:"+portOf(t, geoAddr(t, "127.0.3.1")))
	}
	conf = strings.ReplaceAll(conf, "127.0.0.1", "127.0.3.1")
	startServer(t, dir, addr, conf)

	ask := func(name, subnet string) (string, int) {
		t.Helper()
		r := new(dns.Msg)
		r.SetQuestion(name+"."+zone, dns.TypeA)
		r.RecursionDesired = false
		if subnet != "" {
			e, _ := netipPrefix(subnet)
			r.SetEdns0(1232, false)
			r.IsEdns0().Option = append(r.IsEdns0().Option, e)
		}
		m, _, err := (&dns.Client{Timeout: time.Second}).Exchange(r, addr)
		if err != nil {
			t.Fatalf("%s +subnet=%s: %v", name, subnet, err)
		}
		return strings.Join(addrs(m), ","), scopeOf(m)
	}
	expect := func(name, subnet, want string, scope int) {
		t.Helper()
		if got, s := ask(name, subnet); got != want || s != scope {
			t.Errorf("%s +subnet=%s: %s scope %d, want %s scope %d", name, subnet, got, s, want, scope)
		}
	}
	// eu's port is closed: everyone gets us, scope 0.
	expect("geo", "10.1.2.0/24", "198.51.100.30", 0)
	eu := &backend{t: t, kind: "tcp", addr: "127.0.3.1:9001"}
	eu.start()
	t.Cleanup(eu.stop)
	if _, ok := poll(5*time.Second, 50*time.Millisecond, func() bool {
		got, _ := ask("geo", "10.1.2.0/24")
		return got == "192.0.2.30"
	}); !ok {
		t.Fatal("eu's clients not on eu after its backend started")
	}
	expect("geo", "10.1.2.0/24", "192.0.2.30", 8)
	expect("geo", "192.168.1.0/24", "198.51.100.30", 16)
	expect("geo", "", "198.51.100.30", -1)
	shop := map[string]string{"10.1.1.0": "192.0.2.40", "10.1.2.0": "192.0.2.40", "10.1.3.0": "198.51.100.40", "172.16.9.0": "203.0.113.40"}
	for s, want := range shop {
		expect("shop", s+"/24", want, 24)
	}
	eu.stop()
	after := map[string]string{"10.1.1.0": "198.51.100.40", "10.1.2.0": "203.0.113.40", "10.1.3.0": "198.51.100.40", "172.16.9.0": "203.0.113.40"}
	if _, ok := poll(5*time.Second, 50*time.Millisecond, func() bool {
		got, _ := ask("shop", "10.1.1.0/24")
		return got != "192.0.2.40"
	}); !ok {
		t.Fatal("shop's clients of 192.0.2.40 not moved after its backend stopped")
	}
	for s, want := range after {
		expect("shop", s+"/24", want, 24)
	}
}

// The healthdns build links metadata and geoip: a subnet that a generated
// GeoIP2 City database puts in Japan is answered ap's target.
func TestGeoIPBinary(t *testing.T) {
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", IncludeReservedNetworks: true, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	_, jp, _ := net.ParseCIDR("172.20.0.0/16")
	if err := w.Insert(jp, mmdbtype.Map{
		"country":   mmdbtype.Map{"iso_code": mmdbtype.String("JP")},
		"continent": mmdbtype.Map{"code": mmdbtype.String("AS")},
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "city.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	writeFile(t, dir, "zone.db", zoneText)
	up := geoBackend(t)
	addr := geoAddr(t, "127.0.3.1")
	startServer(t, dir, addr, `gslb.example.com:`+portOf(t, addr)+` {
    bind 127.0.3.1
    metadata
    geoip city.mmdb {
        edns-subnet
    }
    healthdns {
        zonefile zone.db
        interval 1s
        timeout 500ms
        topology {
            country JP ap
            default us
        }
        name app {
            policy geo
            target 198.51.100.10 region us check `+up.check()+`
            target 203.0.113.10  region ap check `+up.check()+`
        }
    }
}
`)
	for _, network := range []string{"udp", "tcp"} {
		for subnet, want := range map[string]string{"172.20.5.0/24": "203.0.113.10", "172.30.5.0/24": "198.51.100.10"} {
			m, err := geoQuery(addr, network, "", subnet, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices1(addrs(m), want) || scopeOf(m) != 24 {
				t.Errorf("%s +subnet=%s: %v scope %d, want %s scope 24", network, subnet, addrs(m), scopeOf(m), want)
			}
		}
	}
}
