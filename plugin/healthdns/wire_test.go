package healthdns

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	"github.com/coredns/coredns/plugin/metrics/vars"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

var wireDirectives sync.Once

// startWire starts a real CoreDNS server from a Corefile, as the healthdns
// binary would (healthdns just before file in the plugin order), and
// returns its UDP and TCP addresses. The server stops when the test ends.
// It is the equivalent of coredns test.CoreDNSServerAndPorts without
// importing every upstream plugin.
func startWire(t *testing.T, corefile string) (udp, tcp string) {
	t.Helper()
	wireDirectives.Do(func() {
		if slices.Contains(dnsserver.Directives, pluginName) {
			return
		}
		d := slices.Clone(dnsserver.Directives)
		if i := slices.Index(d, "file"); i >= 0 {
			d = slices.Insert(d, i, pluginName)
		} else {
			d = append(d, pluginName)
		}
		if err := dnsserver.SetDirectives(d); err != nil {
			panic(err)
		}
	})
	caddy.Quiet, dnsserver.Quiet = true, true
	i, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"})
	if err != nil {
		t.Fatalf("start CoreDNS: %v\n%s", err, corefile)
	}
	t.Cleanup(func() {
		err := errors.Join(i.ShutdownCallbacks()...)
		err = errors.Join(err, i.Stop())
		i.Wait()
		if err != nil {
			t.Errorf("stop CoreDNS: %v", err)
		}
	})
	srvs := i.Servers()
	if len(srvs) == 0 || srvs[0].LocalAddr() == nil || srvs[0].Addr() == nil {
		t.Fatalf("CoreDNS has no UDP and TCP listener")
	}
	return srvs[0].LocalAddr().String(), srvs[0].Addr().String()
}

// wireZone writes the zone file of the wire tests.
func wireZone(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "example.org.zone")
	if err := os.WriteFile(p, []byte(serveZone), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wireCorefile serves example.org with targets that are really probed: the
// HTTP checks against a local server are up, the TCP checks against the
// closed port 1 are down.
func wireCorefile(zonefile, upURL string) string {
	var many strings.Builder
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&many, "            target 2001:db8:40::%x check %s\n", i, upURL)
	}
	return `example.org:0 {
    bind 127.0.0.1
    healthdns {
        zonefile ` + zonefile + `
        interval 1s
        timeout 500ms
        name app {
            policy roundrobin
            ttl 30
            target 192.0.2.10 check ` + upURL + `
            target 192.0.2.11 check tcp 127.0.0.1:1
            target 2001:db8::10 check ` + upURL + `
        }
        name none {
            ttl 5
            fallback none
            target 192.0.2.41 check tcp 127.0.0.1:1
        }
        name many {
            policy roundrobin
` + many.String() + `        }
    }
}
`
}

func upServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(srv.Close)
	return srv.URL + "/healthz"
}

func exchange(t *testing.T, network, addr string, r *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m, _, err := c.Exchange(r, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, r.Question[0].Name, dns.TypeToString[r.Question[0].Qtype], err)
	}
	if m.Id != r.Id {
		t.Fatalf("reply id %d, want %d", m.Id, r.Id)
	}
	return m
}

// panics is CoreDNS's count of panics its server recovered from
// (coredns_panics_total).
func panics(t *testing.T) float64 {
	t.Helper()
	vars.Panic.Add(0) // make sure it is exported
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "coredns_panics_total" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("coredns_panics_total is not registered")
	return 0
}

func TestWire(t *testing.T) {
	up := upServer(t)
	udp, tcp := startWire(t, wireCorefile(wireZone(t), up))
	soa := test.SOA("example.org. 300 IN SOA ns1.example.org. hostmaster.example.org. 2026010101 7200 900 1209600 300")

	t.Run("answers", func(t *testing.T) {
		cases := []test.Case{
			// Only the healthy targets, as the probes saw them.
			{Qname: "app.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{test.A("app.example.org. 30 IN A 192.0.2.10")}},
			{Qname: "APP.Example.ORG.", Qtype: dns.TypeAAAA, Authoritative: true, Answer: []dns.RR{test.AAAA("app.example.org. 30 IN AAAA 2001:db8::10")}},
			{Qname: "app.example.org.", Qtype: dns.TypeMX, Authoritative: true, Ns: []dns.RR{test.SOA("example.org. 30 IN SOA ns1.example.org. hostmaster.example.org. 2026010101 7200 900 1209600 300")}},
			// Nothing healthy, fallback none: NODATA with the name's TTL.
			{Qname: "none.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{test.SOA("example.org. 5 IN SOA ns1.example.org. hostmaster.example.org. 2026010101 7200 900 1209600 300")}},
			{Qname: "web.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{test.A("web.example.org. 3600 IN A 192.0.2.80")}},
			{Qname: "www.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{
				test.A("web.example.org. 3600 IN A 192.0.2.80"),
				test.CNAME("www.example.org. 3600 IN CNAME web.example.org."),
			}},
			{Qname: "example.org.", Qtype: dns.TypeNS, Authoritative: true,
				Answer: []dns.RR{test.NS("example.org. 3600 IN NS ns1.example.org."), test.NS("example.org. 3600 IN NS ns2.example.org.")},
				Extra: []dns.RR{
					test.AAAA("ns1.example.org. 3600 IN AAAA 2001:db8::53"),
					test.A("ns1.example.org. 3600 IN A 192.0.2.53"),
					test.A("ns2.example.org. 3600 IN A 192.0.2.54"),
				},
			},
			{Qname: "nope.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{soa}},
			{Qname: "c.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa}},
			{Qname: "host.sub.example.org.", Qtype: dns.TypeA,
				Ns:    []dns.RR{test.NS("sub.example.org. 3600 IN NS ns.sub.example.org.")},
				Extra: []dns.RR{test.A("ns.sub.example.org. 3600 IN A 192.0.2.100")},
			},
			// Not a zone of this server.
			{Qname: "example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
		}
		for _, network := range []string{"udp", "tcp"} {
			addr := udp
			if network == "tcp" {
				addr = tcp
			}
			for _, tc := range cases {
				checkReply(t, network, exchange(t, network, addr, tc.Msg()), tc)
			}
		}
	})

	t.Run("EDNS", func(t *testing.T) {
		r := new(dns.Msg)
		r.SetQuestion("app.example.org.", dns.TypeA)
		r.SetEdns0(1232, true)
		m := exchange(t, "udp", udp, r)
		opt := m.IsEdns0()
		if opt == nil || !opt.Do() || opt.Version() != 0 {
			t.Errorf("EDNS query with DO: reply OPT %v, want version 0 with DO", opt)
		}
		r = new(dns.Msg)
		r.SetQuestion("app.example.org.", dns.TypeA)
		if m := exchange(t, "udp", udp, r); m.IsEdns0() != nil {
			t.Errorf("query without EDNS: reply has an OPT")
		}
	})

	t.Run("truncation", func(t *testing.T) {
		for _, c := range []struct {
			name    string
			network string
			edns    uint16
			trunc   bool
		}{
			{"UDP without EDNS", "udp", 0, true},
			{"TCP", "tcp", 0, false},
			{"UDP with EDNS 4096", "udp", 4096, false},
		} {
			addr := udp
			if c.network == "tcp" {
				addr = tcp
			}
			r := new(dns.Msg)
			r.SetQuestion("many.example.org.", dns.TypeAAAA)
			if c.edns > 0 {
				r.SetEdns0(c.edns, false)
			}
			m := exchange(t, c.network, addr, r)
			if m.Truncated != c.trunc {
				t.Errorf("%s: TC %t, want %t", c.name, m.Truncated, c.trunc)
			}
			if !c.trunc && len(m.Answer) != 40 {
				t.Errorf("%s: %d answers, want all 40", c.name, len(m.Answer))
			}
			if c.trunc && len(m.Answer) >= 40 {
				t.Errorf("%s: TC set with all 40 answers", c.name)
			}
			if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
				t.Errorf("%s: rcode %s AA %t", c.name, dns.RcodeToString[m.Rcode], m.Authoritative)
			}
		}
	})

	t.Run("garbage", func(t *testing.T) {
		before := panics(t)
		query := new(dns.Msg)
		query.SetQuestion("web.example.org.", dns.TypeA)
		valid, err := query.Pack()
		if err != nil {
			t.Fatal(err)
		}
		junk := [][]byte{
			{},
			{0x00},
			{0x12, 0x34, 0x01},
			valid[:12],           // a header promising a question that is not there
			valid[:len(valid)-3], // a question cut short
			append(valid, 0xff, 0xff, 0xff, 0xff),
			[]byte("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"),
			// A question name that is a compression pointer to itself.
			{0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01},
			// Counts far beyond the packet.
			{0xab, 0xce, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00},
		}
		for i := range 64 { // deterministic noise
			b := make([]byte, 12+i*7)
			for j := range b {
				b[j] = byte(i*31 + j*17 + j*j)
			}
			junk = append(junk, b)
		}
		conn, err := net.Dial("udp", udp)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, b := range junk {
			if _, err := conn.Write(b); err != nil {
				t.Fatalf("write junk: %v", err)
			}
		}
		tconn, err := net.Dial("tcp", tcp)
		if err != nil {
			t.Fatal(err)
		}
		tconn.Write([]byte{0x00, 0x20, 0xde, 0xad, 0xbe, 0xef})
		tconn.Close()

		// The server still answers, over both transports.
		for _, network := range []string{"udp", "tcp"} {
			addr := udp
			if network == "tcp" {
				addr = tcp
			}
			m := exchange(t, network, addr, query.Copy())
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
				t.Errorf("%s after garbage: %s", network, m)
			}
		}
		if after := panics(t); after != before {
			t.Errorf("the server recovered from %v panics while reading garbage", after-before)
		}
	})
}

// TestWireRootBlock: healthdns in a server block for the root serves its
// own zone and refuses everything else (DESIGN.md: out-of-zone queries get
// REFUSED), also when no plugin follows it.
func TestWireRootBlock(t *testing.T) {
	zf := wireZone(t)
	udp, _ := startWire(t, `.:0 {
    bind 127.0.0.1
    healthdns example.org {
        zonefile `+zf+`
    }
}
`)
	r := new(dns.Msg)
	r.SetQuestion("web.example.org.", dns.TypeA)
	if m := exchange(t, "udp", udp, r); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || !m.Authoritative {
		t.Errorf("in zone: %s", m)
	}
	r = new(dns.Msg)
	r.SetQuestion("example.com.", dns.TypeA)
	if m := exchange(t, "udp", udp, r); m.Rcode != dns.RcodeRefused {
		t.Errorf("out-of-zone query in a root server block answered %s, want REFUSED (healthdns.go ServeDNS: NextOrFailure with no next plugin gives SERVFAIL)", dns.RcodeToString[m.Rcode])
	}
}
