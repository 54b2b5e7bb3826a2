package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// nsdQuery is one query of the comparison corpus.
type nsdQuery struct {
	name  string
	qtype uint16
	edns  uint16 // 0: no EDNS
	// fit: the additional data does not all fit. Which records fit is
	// each server's choice, so only that section may differ; both must
	// leave out the rest without TC.
	fit bool
}

// nsdCorpus exercises what RFC 1034 4.3.2, 2308, 4592, 6672 and 2181
// decide, on the zones of testdata/rfc.
var nsdCorpus = []nsdQuery{
	// The apex and plain data.
	{"example.org.", dns.TypeSOA, 0, false},
	{"example.org.", dns.TypeNS, 0, false},
	{"example.org.", dns.TypeMX, 0, false},
	{"example.org.", dns.TypeA, 0, false},
	{"web.example.org.", dns.TypeA, 0, false},
	{"web.example.org.", dns.TypeAAAA, 0, false},
	{"nope.example.org.", dns.TypeA, 0, false},
	{"WEB.Example.ORG.", dns.TypeA, 0, false},
	// Additional data: MX and SRV targets in the zone, out of it, behind
	// a CNAME (no address), below a delegation, under a wildcard.
	{"_sip._tcp.example.org.", dns.TypeSRV, 0, false},
	{"mxalias.example.org.", dns.TypeMX, 0, false},
	{"mxsub.example.org.", dns.TypeMX, 0, false},
	{"mxwild.example.org.", dns.TypeMX, 0, false},
	{"example.org.", dns.TypeMX, 4096, false},
	{"example.org.", dns.TypeNS, 4096, false},
	// Additional data that does not fit is left out, without TC.
	{"big.example.org.", dns.TypeMX, 0, true},
	{"big.example.org.", dns.TypeMX, 1232, true},
	// CNAME: one link, and a chain of 16.
	{"www.example.org.", dns.TypeA, 0, false},
	{"www.example.org.", dns.TypeCNAME, 0, false},
	{"c1.example.org.", dns.TypeA, 4096, false},
	{"c9.example.org.", dns.TypeA, 0, false},
	// DNAME (RFC 6672): below the owner, at the owner, in-zone and
	// out-of-zone targets, a DNAME to a DNAME, a dangling target, a loop,
	// a name that grows too long.
	{"x.d.example.org.", dns.TypeA, 0, false},
	{"a.b.d.example.org.", dns.TypeAAAA, 0, false},
	{"d.example.org.", dns.TypeDNAME, 0, false},
	{"d.example.org.", dns.TypeA, 0, false},
	{"d.example.org.", dns.TypeTXT, 0, false},
	{"d.example.org.", dns.TypeANY, 0, false},
	{"x.d.example.org.", dns.TypeDNAME, 0, false},
	{"x.d.example.org.", dns.TypeCNAME, 0, false},
	{"x.alias.example.org.", dns.TypeA, 0, false},
	{"x.alias.example.org.", dns.TypeTXT, 0, false},
	{"y.alias.example.org.", dns.TypeA, 0, false},
	{"x.d2.example.org.", dns.TypeA, 0, false},
	{"x.dangle.example.org.", dns.TypeA, 0, false},
	{"x.loop.example.org.", dns.TypeA, 0, false},
	{strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("e", 40) + ".loop.example.org.", dns.TypeA, 0, false},
	// A DNAME at the apex: the apex itself answers, names below it move.
	{"alias.test.", dns.TypeSOA, 0, false},
	{"alias.test.", dns.TypeNS, 0, false},
	{"alias.test.", dns.TypeMX, 0, false},
	{"alias.test.", dns.TypeDNAME, 0, false},
	{"alias.test.", dns.TypeA, 0, false},
	{"www.alias.test.", dns.TypeA, 0, false},
	{"ns1.alias.test.", dns.TypeAAAA, 0, false},
	// Wildcards (RFC 4592), including one that is only an empty
	// non-terminal (4.9).
	{"foo.wild.example.org.", dns.TypeA, 0, false},
	{"foo.wild.example.org.", dns.TypeTXT, 0, false},
	{"a.b.wild.example.org.", dns.TypeA, 0, false},
	{"wild.example.org.", dns.TypeA, 0, false},
	{"x.wild2.example.org.", dns.TypeA, 0, false},
	{"x.wild2.example.org.", dns.TypeTXT, 0, false},
	{"y.x.wild2.example.org.", dns.TypeA, 0, false},
	{"*.wild2.example.org.", dns.TypeTXT, 0, false},
	{"a.*.wild2.example.org.", dns.TypeTXT, 0, false},
	{"b.*.wild2.example.org.", dns.TypeTXT, 0, false},
	// A delegation.
	{"sub.example.org.", dns.TypeNS, 0, false},
	{"host.sub.example.org.", dns.TypeA, 0, false},
	{"sub.example.org.", dns.TypeDS, 0, false},
	// Not ours.
	{"example.com.", dns.TypeA, 0, false},
}

// TestNSDComparison serves the same zones from NSD and healthdns and
// compares their replies to a corpus of queries, over UDP and TCP: rcode,
// AA, TC and every record of every section (the OPT record aside), after
// taking out what NSD adds to positive answers by default (nsdMinimal).
func TestNSDComparison(t *testing.T) {
	nsd, err := exec.LookPath("nsd")
	if err != nil {
		t.Skip("nsd is not installed (apt-get install nsd)")
	}
	const nsdIP, ourIP = "127.0.0.240", "127.0.0.241"
	ports := freePorts(t, 2, []string{nsdIP, ourIP})
	nsdAddr := net.JoinHostPort(nsdIP, strconv.Itoa(ports[0]))
	ourAddr := net.JoinHostPort(ourIP, strconv.Itoa(ports[1]))
	dir := t.TempDir()
	zones := map[string]string{"example.org.": "example.org.zone", "alias.test.": "alias.test.zone"}
	for _, f := range zones {
		b, err := os.ReadFile(filepath.Join("testdata", "rfc", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, f, string(b))
	}

	conf := fmt.Sprintf(`server:
  ip-address: %s
  port: %d
  zonesdir: %q
  database: ""
  zonelistfile: %q
  xfrdfile: %q
  pidfile: %q
  username: ""
  chroot: ""
  server-count: 1
  logfile: %q
remote-control:
  control-enable: no
`, nsdIP, ports[0], dir, filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"), filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "nsd.log"))
	var block, keys strings.Builder
	for _, origin := range slices.Sorted(func(yield func(string) bool) {
		for o := range zones {
			if !yield(o) {
				return
			}
		}
	}) {
		conf += fmt.Sprintf("zone:\n  name: %s\n  zonefile: %s\n", origin, zones[origin])
		fmt.Fprintf(&block, "        zonefile %s %s\n", filepath.Join(dir, zones[origin]), origin)
		fmt.Fprintf(&keys, "%s:%d ", origin, ports[1])
	}
	nsdConf := writeFile(t, dir, "nsd.conf", conf)
	np := launchCmd(t, "nsd", exec.Command(nsd, "-d", "-c", nsdConf))
	if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		m, err := exchange(nsdAddr, "udp", "example.org.", dns.TypeSOA, false)
		return np.Exited() || (err == nil && len(m.Answer) == 1)
	}); !ok || np.Exited() {
		log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
		t.Fatalf("nsd did not start on %s: %v\n%s%s", nsdAddr, np.Err, np.Out.String(), log)
	}
	startServer(t, dir, ourAddr, fmt.Sprintf(`%sgslb.example.com:%d {
    bind %s
    healthdns {
%s        zonefile %s gslb.example.com
    }
}
`, keys.String(), ports[1], ourIP, block.String(), writeFile(t, dir, "gslb.zone", zoneText)))

	same := 0
	for _, q := range nsdCorpus {
		for _, network := range []string{"udp", "tcp"} {
			want, err := nsdExchange(nsdAddr, network, q)
			if err != nil {
				t.Fatalf("nsd: %v", err)
			}
			got, err := nsdExchange(ourAddr, network, q)
			if err != nil {
				t.Fatalf("healthdns: %v", err)
			}
			key := fmt.Sprintf("%s %s", q.name, dns.TypeToString[q.qtype])
			if q.fit && network == "udp" {
				checkFit(t, key, q, want, got)
				want, got = want.Copy(), got.Copy()
				want.Extra, got.Extra = nil, nil
			}
			a, b := nsdNormal(nsdMinimal(want)), nsdNormal(got)
			if a == b {
				same++
			} else {
				t.Errorf("%s over %s (EDNS %d): healthdns and NSD differ\nNSD:\n%s\nhealthdns:\n%s", key, network, q.edns, a, b)
			}
		}
	}
	t.Logf("%d queries over UDP and TCP: %d replies identical to NSD's", 2*len(nsdCorpus), same)
}

// checkFit checks a reply whose additional data did not all fit: no TC,
// a complete answer, and as much additional data as NSD gives or more.
func checkFit(t *testing.T, key string, q nsdQuery, nsd, ours *dns.Msg) {
	t.Helper()
	extra := func(m *dns.Msg) int {
		n := 0
		for _, rr := range m.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				n++
			}
		}
		return n
	}
	size := 512
	if q.edns > 0 {
		size = int(q.edns)
	}
	c := ours.Copy()
	c.Compress = true // as it came over the wire
	packed, err := c.Pack()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s over UDP (EDNS %d): additional records that fit: NSD %d, healthdns %d (%d of %d bytes)", key, q.edns, extra(nsd), extra(ours), len(packed), size)
	if ours.Truncated || len(packed) > size || extra(ours) < extra(nsd) {
		t.Errorf("%s over UDP (EDNS %d): TC %t, %d bytes, %d additional records (NSD %d): want no TC, at most %d bytes, at least NSD's count", key, q.edns, ours.Truncated, len(packed), extra(ours), extra(nsd), size)
	}
}

func nsdExchange(addr, network string, q nsdQuery) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(q.name, q.qtype)
	m.RecursionDesired = false
	if q.edns > 0 {
		m.SetEdns0(q.edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s over %s: %w", q.name, dns.TypeToString[q.qtype], network, err)
	}
	return r, nil
}

// nsdMinimal removes what NSD adds to a positive answer by default
// (minimal-responses: no) and healthdns does not: the zone's NS RRset in
// the authority section and the addresses of those name servers in the
// additional one, unless the answer itself names them. RFC 2181 leaves
// both optional; healthdns keeps positive answers small.
func nsdMinimal(m *dns.Msg) *dns.Msg {
	if len(m.Answer) == 0 || len(m.Ns) == 0 {
		return m
	}
	hosts := map[string]bool{}
	for _, rr := range m.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			return m
		}
		hosts[strings.ToLower(ns.Ns)] = true
	}
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.NS:
			delete(hosts, strings.ToLower(rr.Ns))
		case *dns.MX:
			delete(hosts, strings.ToLower(rr.Mx))
		case *dns.SRV:
			delete(hosts, strings.ToLower(rr.Target))
		}
	}
	m = m.Copy()
	m.Ns = nil
	m.Extra = slices.DeleteFunc(m.Extra, func(rr dns.RR) bool {
		t := rr.Header().Rrtype
		return (t == dns.TypeA || t == dns.TypeAAAA) && hosts[strings.ToLower(rr.Header().Name)]
	})
	return m
}

// nsdNormal is a reply as text with each section sorted, the OPT record
// left out.
func nsdNormal(m *dns.Msg) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rcode %s aa %t tc %t\n", dns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated)
	for _, sec := range []struct {
		name string
		rrs  []dns.RR
	}{{"answer", m.Answer}, {"authority", m.Ns}, {"additional", m.Extra}} {
		var lines []string
		for _, rr := range sec.rrs {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			lines = append(lines, "  "+strings.ToLower(rr.String()))
		}
		slices.Sort(lines)
		fmt.Fprintf(&b, "%s:\n%s\n", sec.name, strings.Join(lines, "\n"))
	}
	return b.String()
}
