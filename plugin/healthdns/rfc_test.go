package healthdns

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"

	"github.com/miekg/dns"
)

// rfcZone holds what RFC 4592 (an empty wildcard), RFC 6672 (DNAME) and
// the additional-data rules decide, for TestWireRFC and TestServeDNSRFC.
func rfcZone() string {
	var b strings.Builder
	b.WriteString(`$ORIGIN example.org.
$TTL 3600
@         IN SOA   ns1.example.org. hostmaster.example.org. 2026010101 7200 900 1209600 300
@         IN NS    ns1.example.org.
@         IN MX    10 mail.example.org.
ns1       IN A     192.0.2.53
mail      IN A     192.0.2.25
mail      IN AAAA  2001:db8::25
web       IN A     192.0.2.80
_sip._tcp IN SRV   10 60 5060 sip.example.org.
sip       IN A     192.0.2.60
mxapp     IN MX    10 app.example.org.
d         IN DNAME example.net.
alias 120 IN DNAME example.org.
a.*.wild2 IN TXT   "below an empty wildcard"
`)
	for i := 1; i < 16; i++ {
		fmt.Fprintf(&b, "c%d IN CNAME c%d\n", i, i+1)
	}
	b.WriteString("c16 IN CNAME web\n")
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, "big IN MX %d mx%d.example.org.\nmx%d IN A 192.0.2.%d\nmx%d IN AAAA 2001:db8::%d\n", i, i, i, 100+i, i, 100+i)
	}
	return b.String()
}

// rfcCases are the answers both the wire and ServeDNS must give. app has
// one healthy IPv4 target (TTL 30) and no IPv6 one.
func rfcCases() []test.Case {
	soa := func(ttl int) dns.RR {
		return test.SOA(fmt.Sprintf("example.org. %d IN SOA ns1.example.org. hostmaster.example.org. 2026010101 7200 900 1209600 300", ttl))
	}
	dn := test.DNAME("d.example.org. 3600 IN DNAME example.net.")
	alias := test.DNAME("alias.example.org. 120 IN DNAME example.org.")
	chain := []dns.RR{}
	for i := 1; i < 16; i++ {
		chain = append(chain, test.CNAME(fmt.Sprintf("c%d.example.org. 3600 IN CNAME c%d.example.org.", i, i+1)))
	}
	chain = append(chain, test.CNAME("c16.example.org. 3600 IN CNAME web.example.org."), test.A("web.example.org. 3600 IN A 192.0.2.80"))
	return []test.Case{
		// DNAME (RFC 6672 3): DNAME + synthesised CNAME, chased in zone.
		{Qname: "x.d.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{dn, test.CNAME("x.d.example.org. 3600 IN CNAME x.example.net.")}},
		{Qname: "d.example.org.", Qtype: dns.TypeDNAME, Authoritative: true, Answer: []dns.RR{dn}},
		{Qname: "d.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(300)}},
		{Qname: "web.alias.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{alias, test.CNAME("web.alias.example.org. 120 IN CNAME web.example.org."), test.A("web.example.org. 3600 IN A 192.0.2.80")}},
		{Qname: "app.alias.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{alias, test.CNAME("app.alias.example.org. 120 IN CNAME app.example.org."), test.A("app.example.org. 30 IN A 192.0.2.10")}},
		// An empty wildcard matches with no data (RFC 4592 4.9).
		{Qname: "x.wild2.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(300)}},
		// Additional data for MX and SRV.
		{Qname: "example.org.", Qtype: dns.TypeMX, Authoritative: true,
			Answer: []dns.RR{test.MX("example.org. 3600 IN MX 10 mail.example.org.")},
			Extra:  []dns.RR{test.A("mail.example.org. 3600 IN A 192.0.2.25"), test.AAAA("mail.example.org. 3600 IN AAAA 2001:db8::25")}},
		{Qname: "_sip._tcp.example.org.", Qtype: dns.TypeSRV, Authoritative: true,
			Answer: []dns.RR{test.SRV("_sip._tcp.example.org. 3600 IN SRV 10 60 5060 sip.example.org.")},
			Extra:  []dns.RR{test.A("sip.example.org. 3600 IN A 192.0.2.60")}},
		{Qname: "mxapp.example.org.", Qtype: dns.TypeMX, Authoritative: true,
			Answer: []dns.RR{test.MX("mxapp.example.org. 3600 IN MX 10 app.example.org.")},
			Extra:  []dns.RR{test.A("app.example.org. 30 IN A 192.0.2.10")}},
		// 16 CNAMEs are followed.
		{Qname: "c1.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: chain},
		// A health-aware name's NODATA is cached no longer than its TTL.
		{Qname: "app.example.org.", Qtype: dns.TypeAAAA, Authoritative: true, Ns: []dns.RR{soa(30)}},
	}
}

// TestWireRFC puts rfcCases over UDP and TCP through a real server, and
// checks that additional data that does not fit in a UDP reply is left out
// without TC.
func TestWireRFC(t *testing.T) {
	up := upServer(t)
	zf := filepath.Join(t.TempDir(), "example.org.zone")
	if err := os.WriteFile(zf, []byte(rfcZone()), 0o644); err != nil {
		t.Fatal(err)
	}
	udp, tcp := startWire(t, `example.org:0 {
    bind 127.0.0.1
    healthdns {
        zonefile `+zf+`
        name app {
            ttl 30
            target 192.0.2.10 check `+up+`
        }
    }
}
`)
	for _, network := range []string{"udp", "tcp"} {
		addr := udp
		if network == "tcp" {
			addr = tcp
		}
		for _, tc := range rfcCases() {
			checkReply(t, network, exchange(t, network, addr, tc.Msg()), tc)
		}
	}
	for _, c := range []struct {
		network string
		edns    uint16
		all     bool // all 40 addresses fit
	}{
		{"udp", 0, false},
		{"udp", 1232, false},
		{"tcp", 0, true},
	} {
		addr := udp
		if c.network == "tcp" {
			addr = tcp
		}
		r := new(dns.Msg)
		r.SetQuestion("big.example.org.", dns.TypeMX)
		if c.edns > 0 {
			r.SetEdns0(c.edns, false)
		}
		m := exchange(t, c.network, addr, r)
		extra := len(m.Extra)
		if c.edns > 0 {
			extra-- // the OPT
		}
		if m.Truncated || len(m.Answer) != 20 || extra == 0 || (extra == 40) != c.all {
			t.Errorf("%s EDNS %d: TC %t, %d MX, %d addresses; want no TC, all 20 MX, and all 40 addresses: %t", c.network, c.edns, m.Truncated, len(m.Answer), extra, c.all)
		}
	}
}

// TestServeDNSRFC puts rfcCases through ServeDNS, and checks that the
// reply to a UDP query without EDNS holds only the additional data that
// fits in 512 bytes, so the server's truncation finds nothing to cut.
func TestServeDNSRFC(t *testing.T) {
	h := newServeHandler(t, rfcZone(), snapshot.Name{
		FQDN: "app.example.org.", TTL: 30, Policy: policy.RoundRobin,
		Targets: []snapshot.Target{{Addr: netip.MustParseAddr("192.0.2.10"), Healthy: true, Tier: 1, Weight: 1}},
	})
	for _, tc := range rfcCases() {
		checkReply(t, "ServeDNS", serve(t, h, &test.ResponseWriter{}, tc.Msg()), tc)
	}
	for _, edns := range []uint16{0, 1232} {
		r := new(dns.Msg)
		r.SetQuestion("big.example.org.", dns.TypeMX)
		size := 512
		if edns > 0 {
			r.SetEdns0(edns, false)
			size = int(edns)
		}
		m := serve(t, h, &test.ResponseWriter{}, r)
		m.Compress = true
		if l := m.Len(); l > size || len(m.Answer) != 20 || m.Truncated {
			t.Errorf("EDNS %d: %d bytes (limit %d), %d MX, TC %t", edns, l, size, len(m.Answer), m.Truncated)
		}
	}
}
