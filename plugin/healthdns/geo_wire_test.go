package healthdns

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/coredns/coredns/plugin/geoip"
	_ "github.com/coredns/coredns/plugin/metadata"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// The geo tests listen and send from 127.0.3.0/24 only.

// geoBackend is an HTTP health endpoint on 127.0.3.1 that can be killed.
func geoBackend(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.3.1:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.3.1: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, srv.URL + "/healthz"
}

// geoMMDB writes a GeoIP2 City database: 172.20.0.0/16 is in Japan,
// 172.21.0.0/16 in Australia (continent OC), 172.22.0.0/16 in Germany.
func geoMMDB(t *testing.T) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", IncludeReservedNetworks: true, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ net, country, continent string }{
		{"172.20.0.0/16", "JP", "AS"},
		{"172.21.0.0/16", "AU", "OC"},
		{"172.22.0.0/16", "DE", "EU"},
	} {
		_, n, _ := net.ParseCIDR(r.net)
		err := w.Insert(n, mmdbtype.Map{
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(r.country)},
			"continent": mmdbtype.Map{"code": mmdbtype.String(r.continent)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "test-city.mmdb")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return p
}

func geoCorefile(zonefile, mmdb, eu, us, ecs string) string {
	return `example.org:0 {
    bind 127.0.3.1
    metadata
    geoip ` + mmdb + ` {
        edns-subnet
    }
    healthdns {
        zonefile ` + zonefile + `
        interval 1s
        timeout 500ms
        rise 1
        fall 2
        ecs ` + ecs + `
        matrix 127.0.0.0/8
        topology {
            10.0.0.0/8       eu
            2001:db8:e0::/48 eu
            192.168.0.0/16   us
            127.0.3.16/28    us
            127.0.3.32/28    eu
            country JP ap
            continent OC ap
            default eu
        }
        name app {
            policy geo
            order eu us ap
            ttl 30
            target 192.0.2.10    region eu check ` + eu + `
            target 198.51.100.10 region us check ` + us + `
            target 203.0.113.10  region ap check ` + us + `
            target 2001:db8:e0::10 region eu check ` + eu + `
            target 2001:db8:5::10 region us check ` + us + `
        }
        name shop {
            policy sticky
            target 192.0.2.21 check ` + us + `
            target 192.0.2.22 check ` + us + `
            target 192.0.2.23 check ` + us + `
        }
        name rr {
            target 192.0.2.31 check ` + us + `
        }
    }
}
`
}

// geoAsk sends a query for name from source (or any), with ECS subnet
// (or none), and returns the reply.
func geoAsk(t *testing.T, network, server, source, name string, qtype uint16, subnet string) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	if subnet != "" {
		r.SetEdns0(1232, false)
		r.IsEdns0().Option = append(r.IsEdns0().Option, ecsOption(t, subnet))
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	if source != "" {
		ip := net.ParseIP(source)
		if network == "udp" {
			c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: ip}}
		} else {
			c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		}
	}
	m, _, err := c.Exchange(r, server)
	if err != nil {
		t.Fatalf("%s %s from %s subnet %s: %v", network, name, source, subnet, err)
	}
	return m
}

// ecsOption is an ECS option for "ADDR/BITS", the address sent as is (a
// malformed option keeps its extra bits).
func ecsOption(t *testing.T, subnet string) *dns.EDNS0_SUBNET {
	addr, bits, _ := strings.Cut(subnet, "/")
	ip := net.ParseIP(addr)
	e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, Address: ip}
	if ip.To4() == nil {
		e.Family = 2
	}
	n := 0
	for _, c := range bits {
		n = n*10 + int(c-'0')
	}
	e.SourceNetmask = uint8(n)
	return e
}

func answerAddrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

// echoed is the reply's ECS option, or nil.
func echoed(m *dns.Msg) *dns.EDNS0_SUBNET {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_SUBNET); ok {
				return e
			}
		}
	}
	return nil
}

func TestGeoWire(t *testing.T) {
	euSrv, eu := geoBackend(t)
	_, us := geoBackend(t)
	udp, tcp := startWire(t, geoCorefile(wireZone(t), geoMMDB(t), eu, us, "on"))
	servers := map[string]string{"udp": udp, "tcp": tcp}

	t.Run("ECS decides, scope echoed", func(t *testing.T) {
		cases := []struct {
			subnet, name string
			qtype        uint16
			want         string
			scope        uint8
		}{
			{"10.1.2.0/24", "app.example.org.", dns.TypeA, "192.0.2.10", 8},        // topology: eu, 10/8 holds no other entry
			{"192.168.7.0/24", "app.example.org.", dns.TypeA, "198.51.100.10", 16}, // us
			{"2001:db8:e0:500::/56", "app.example.org.", dns.TypeAAAA, "2001:db8:e0::10", 48},
			{"172.20.5.0/24", "app.example.org.", dns.TypeA, "203.0.113.10", 24}, // geoip: JP -> ap, scope as sent
			{"172.21.5.0/24", "app.example.org.", dns.TypeA, "203.0.113.10", 24}, // geoip: continent OC -> ap
			{"172.22.5.0/24", "app.example.org.", dns.TypeA, "192.0.2.10", 24},   // DE is mapped to nothing: the default, eu
			{"10.1.2.0/24", "rr.example.org.", dns.TypeA, "192.0.2.31", 0},       // not client-dependent: scope 0
			{"10.1.2.0/24", "web.example.org.", dns.TypeA, "192.0.2.80", 0},      // static data: scope 0
		}
		for network, server := range servers {
			for _, tc := range cases {
				m := geoAsk(t, network, server, "127.0.3.2", tc.name, tc.qtype, tc.subnet)
				got := answerAddrs(m)
				e := echoed(m)
				if len(got) != 1 || got[0] != tc.want {
					t.Errorf("%s %s subnet %s: answer %v, want %s", network, tc.name, tc.subnet, got, tc.want)
				}
				if e == nil {
					t.Errorf("%s %s subnet %s: no ECS in the reply", network, tc.name, tc.subnet)
					continue
				}
				sent := ecsOption(t, tc.subnet)
				if e.SourceScope != tc.scope || e.SourceNetmask != sent.SourceNetmask || e.Family != sent.Family || !e.Address.Equal(sent.Address) {
					t.Errorf("%s %s subnet %s: ECS echoed %s scope %d, want %s scope %d", network, tc.name, tc.subnet, e, e.SourceScope, sent, tc.scope)
				}
			}
		}
	})

	t.Run("no ECS: the source address decides", func(t *testing.T) {
		for network, server := range servers {
			for source, want := range map[string]string{"127.0.3.20": "198.51.100.10", "127.0.3.40": "192.0.2.10"} {
				m := geoAsk(t, network, server, source, "app.example.org.", dns.TypeA, "")
				if got := answerAddrs(m); len(got) != 1 || got[0] != want {
					t.Errorf("%s from %s: %v, want %s", network, source, got, want)
				}
				if echoed(m) != nil {
					t.Errorf("%s from %s: an ECS option in the reply to a query without one", network, source)
				}
			}
		}
	})

	t.Run("malformed ECS is FORMERR", func(t *testing.T) {
		for _, tc := range []struct {
			what string
			data []byte // the option's body as sent
		}{
			{"address bits beyond the source prefix length", []byte{0, 1, 16, 0, 10, 1, 2}},
			{"IPv4 prefix longer than 32", []byte{0, 1, 33, 0, 10, 1, 2, 3, 4}},
			{"unknown family", []byte{0, 7, 8, 0, 10}},
		} {
			for network, server := range servers {
				r := new(dns.Msg)
				r.SetQuestion("app.example.org.", dns.TypeA)
				r.SetEdns0(1232, false)
				// Sent raw: miekg/dns would mask or refuse it.
				r.IsEdns0().Option = append(r.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: tc.data})
				c := &dns.Client{Net: network, Timeout: 2 * time.Second}
				m, _, err := c.Exchange(r, server)
				if err != nil {
					t.Fatalf("%s %s: %v", network, tc.what, err)
				}
				if m.Rcode != dns.RcodeFormatError || len(m.Answer) != 0 {
					t.Errorf("%s %s: rcode %s with %d answers, want FORMERR", network, tc.what, dns.RcodeToString[m.Rcode], len(m.Answer))
				}
			}
		}
	})

	t.Run("sticky: one target per subnet, scope /24", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 64; i++ {
			subnet := "10.7." + itoa(i) + ".0/24"
			first := ""
			for network, server := range servers {
				for range 3 {
					m := geoAsk(t, network, server, "127.0.3.2", "shop.example.org.", dns.TypeA, subnet)
					got := answerAddrs(m)
					if len(got) != 1 {
						t.Fatalf("%s %s: %v, want one target", network, subnet, got)
					}
					if first == "" {
						first = got[0]
					} else if got[0] != first {
						t.Fatalf("%s %s: %s, earlier %s: not sticky", network, subnet, got[0], first)
					}
					if e := echoed(m); e == nil || e.SourceScope != 24 {
						t.Fatalf("%s %s: ECS %v, want scope 24", network, subnet, e)
					}
				}
			}
			seen[first] = true
		}
		if len(seen) != 3 {
			t.Errorf("64 subnets went to %d targets, want all 3", len(seen))
		}
	})

	t.Run("CH TXT with ECS says the region and the answer", func(t *testing.T) {
		for network, server := range servers {
			r := new(dns.Msg)
			r.SetQuestion("app.example.org.", dns.TypeTXT)
			r.Question[0].Qclass = dns.ClassCHAOS
			r.SetEdns0(4096, false)
			r.IsEdns0().Option = append(r.IsEdns0().Option, ecsOption(t, "192.168.7.0/24"))
			c := &dns.Client{Net: network, Timeout: 2 * time.Second, Dialer: &net.Dialer{}}
			m, _, err := c.Exchange(r, server)
			if err != nil {
				t.Fatal(err)
			}
			var txt []string
			for _, rr := range m.Answer {
				txt = append(txt, strings.Join(rr.(*dns.TXT).Txt, ""))
			}
			all := strings.Join(txt, "\n")
			if !strings.Contains(all, "client 192.168.7.0/24 region=us answer=198.51.100.10,2001:db8:5::10 scope=16") {
				t.Errorf("%s: matrix has no client line for 192.168.7.0/24:\n%s", network, all)
			}
			if !strings.Contains(all, "target 192.0.2.10 tier=1 weight=1 region=eu ") {
				t.Errorf("%s: matrix does not give the targets' regions:\n%s", network, all)
			}
		}
	})

	t.Run("answers counted by policy and region", func(t *testing.T) {
		counts := regionAnswerCounts(t)
		for _, k := range []string{"geo eu", "geo us", "geo ap", "sticky none"} {
			if counts[k] == 0 {
				t.Errorf("region_answers_total{%s} is 0 after such answers; have %v", k, counts)
			}
		}
		for k := range counts {
			if p, _, _ := strings.Cut(k, " "); p != "geo" && p != "sticky" {
				t.Errorf("region_answers_total has a series for %s, whose answers never depend on the client", k)
			}
		}
	})

	t.Run("eu's backend killed: eu's clients get us", func(t *testing.T) {
		euSrv.Close()
		start := time.Now()
		limit := 1*time.Second*2 + time.Second // interval × fall + 1 s
		for {
			m := geoAsk(t, "udp", udp, "127.0.3.2", "app.example.org.", dns.TypeA, "10.1.2.0/24")
			if got := answerAddrs(m); len(got) == 1 && got[0] == "198.51.100.10" {
				break
			}
			if time.Since(start) > limit+2*time.Second {
				t.Fatalf("eu's clients still get %v %s after eu's backend died", answerAddrs(m), time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(start)
		t.Logf("failover from eu to us in %s", took.Round(10*time.Millisecond))
		if took > limit {
			t.Errorf("failover took %s, want at most interval × fall + 1 s = %s", took, limit)
		}
		m := geoAsk(t, "tcp", tcp, "127.0.3.2", "app.example.org.", dns.TypeA, "10.1.2.0/24")
		if got := answerAddrs(m); len(got) != 1 || got[0] != "198.51.100.10" {
			t.Errorf("tcp after failover: %v", got)
		}
	})
}

func TestGeoWireECSOff(t *testing.T) {
	_, eu := geoBackend(t)
	udp, tcp := startWire(t, geoCorefile(wireZone(t), geoMMDB(t), eu, eu, "off"))
	for network, server := range map[string]string{"udp": udp, "tcp": tcp} {
		// The subnet says eu, the source says us: with ecs off the source wins.
		m := geoAsk(t, network, server, "127.0.3.20", "app.example.org.", dns.TypeA, "10.1.2.0/24")
		if got := answerAddrs(m); len(got) != 1 || got[0] != "198.51.100.10" {
			t.Errorf("%s ecs off: %v, want us's 198.51.100.10 by the source address", network, got)
		}
		if echoed(m) != nil {
			t.Errorf("%s ecs off: the reply carries ECS", network)
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// A target ExternalDNS writes through the webhook takes its region from
// webhook/region (here the owner's default) and joins a geo name of the
// Corefile.
func TestGeoWireWebhookRegion(t *testing.T) {
	_, up := geoBackend(t)
	ln, err := net.Listen("tcp", "127.0.3.1:0")
	if err != nil {
		t.Skip(err)
	}
	hook := ln.Addr().String()
	ln.Close()
	udp, tcp := startWire(t, `example.org:0 {
    bind 127.0.3.1
    healthdns {
        zonefile `+wireZone(t)+`
        interval 1s
        timeout 500ms
        rise 1
        data `+t.TempDir()+`
        webhook `+hook+` {
            owner eu-cluster
            check `+up+`
            region eu
        }
        topology {
            10.0.0.0/8     eu
            192.168.0.0/16 us
        }
        name app {
            policy geo
            order eu us
            target 198.51.100.10 region us check `+up+`
        }
    }
}
`)
	body := `{"Create":[{"dnsName":"app.example.org","recordType":"A","targets":["192.0.2.50"]}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+hook+"/records", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/external.dns.webhook+json;version=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /records: %s", resp.Status)
	}
	for network, server := range map[string]string{"udp": udp, "tcp": tcp} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := answerAddrs(geoAsk(t, network, server, "127.0.3.2", "app.example.org.", dns.TypeA, "10.1.2.0/24"))
			if len(got) == 1 && got[0] == "192.0.2.50" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: eu's client gets %v, want the webhook's eu target 192.0.2.50", network, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := answerAddrs(geoAsk(t, network, server, "127.0.3.2", "app.example.org.", dns.TypeA, "192.168.7.0/24")); len(got) != 1 || got[0] != "198.51.100.10" {
			t.Errorf("%s: us's client gets %v, want the Corefile's us target", network, got)
		}
	}
}

// regionAnswerCounts sums coredns_healthdns_region_answers_total by
// "policy region".
func regionAnswerCounts(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "coredns_healthdns_region_answers_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["policy"]+" "+labels["region"]] += m.GetCounter().GetValue()
		}
	}
	return out
}
