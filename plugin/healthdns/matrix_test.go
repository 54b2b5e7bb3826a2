package healthdns

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"

	"github.com/miekg/dns"
)

// remoteWriter is a ResponseWriter whose client address the test picks.
type remoteWriter struct {
	test.ResponseWriter
	ip string
}

func (w *remoteWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.ParseIP(w.ip), Port: 40000}
}

func TestMatrixCHTXT(t *testing.T) {
	zf := writeZone(t, testZone)
	cfg, err := parse(caddy.NewTestController("dns", `healthdns example.org {
		zonefile `+zf+`
		name app {
			target 192.0.2.1 tier 1 check tcp 127.0.0.1:1
			target 2001:db8::1 tier 2 check tcp 127.0.0.1:1
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(cfg, probe.NewPool())
	ask := func(ip, name string, qtype uint16) *dns.Msg {
		r := new(dns.Msg)
		r.SetQuestion(name, qtype)
		r.Question[0].Qclass = dns.ClassCHAOS
		rec := dnstest.NewRecorder(&remoteWriter{ip: ip})
		if _, err := h.ServeDNS(t.Context(), rec, r); err != nil {
			t.Fatal(err)
		}
		return rec.Msg
	}
	name := h.cfg.names[0].FQDN
	m := ask("127.0.0.1", strings.ToUpper(name), dns.TypeTXT)
	if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) < 1+len(h.cfg.names[0].Targets) {
		t.Fatalf("matrix from loopback:\n%s", m)
	}
	all := ""
	for _, rr := range m.Answer {
		txt := rr.(*dns.TXT)
		if txt.Hdr.Class != dns.ClassCHAOS {
			t.Errorf("matrix record in class %d, want CH", txt.Hdr.Class)
		}
		all += strings.Join(txt.Txt, "") + "\n"
	}
	for _, tg := range h.cfg.names[0].Targets {
		if !strings.Contains(all, "target "+tg.Probe.Addr.String()+" ") {
			t.Errorf("matrix lacks target %s:\n%s", tg.Probe.Addr, all)
		}
	}
	if m := ask("192.0.2.99", name, dns.TypeTXT); m.Rcode != dns.RcodeRefused || len(m.Answer) != 0 {
		t.Errorf("matrix for a client outside the allowed networks: %s", dns.RcodeToString[m.Rcode])
	}
	if m := ask("::1", name, dns.TypeA); m.Rcode != dns.RcodeRefused {
		t.Errorf("CH A got %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
	h.cfg.matrixNets = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	if m := ask("192.0.2.99", name, dns.TypeTXT); m.Rcode != dns.RcodeSuccess {
		t.Errorf("matrix for an allowed network got %s", dns.RcodeToString[m.Rcode])
	}
	h.cfg.matrixOff = true
	if m := ask("192.0.2.99", name, dns.TypeTXT); m.Rcode != dns.RcodeRefused {
		t.Errorf("matrix off still answered %s", dns.RcodeToString[m.Rcode])
	}
}
