package test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// chainCorefile puts cache and dnssec in front of healthdns; the binary's
// directive list fixes the order (cache, dnssec, healthdns), not the order
// here. The cache's minimum TTL is set to 0: by default CoreDNS's cache
// keeps every answer at least 5 s, longer than app's 2 s TTL.
const chainCorefile = `gslb.example.com:%[1]s {
    bind 127.0.0.1
    healthdns {
        zonefile %[2]s
        interval 200ms
        timeout 100ms
        rise 2
        fall 2
        name app {
            policy roundrobin
            ttl 2
            target 192.0.2.10    check %[4]s
            target 198.51.100.10 check %[5]s
        }
    }
    dnssec {
        key file %[3]s
    }
    cache 30 {
        success 1000 30 0
        denial 1000 30 0
    }
}
`

// writeKey makes an ECDSA P-256 key for zone and writes it as
// dnssec-keygen does: K<zone>+013+<tag>.key and .private in dir. It
// returns the public key and the base path the dnssec plugin takes.
func writeKey(t *testing.T, dir string) (*dns.DNSKEY, string) {
	t.Helper()
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     257, // a combined signing key
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := k.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, fmt.Sprintf("K%s+%03d+%05d", zone, k.Algorithm, k.KeyTag()))
	writeFile(t, dir, filepath.Base(base)+".key", fmt.Sprintf("; This is a key-signing key, keyid %d, for %s\n%s\n", k.KeyTag(), zone, k.String()))
	writeFile(t, dir, filepath.Base(base)+".private", k.PrivateKeyString(priv))
	return k, base
}

func TestChain(t *testing.T) {
	dir := t.TempDir()
	key, base := writeKey(t, dir)
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	addr := freeAddr(t)
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	s := startServer(t, dir, addr, fmt.Sprintf(chainCorefile, portOf(t, addr), zf, base, east.check(), west.check()))
	both := sorted("192.0.2.10", "198.51.100.10")

	t.Run("signed answer", func(t *testing.T) {
		for i := range 2 { // the second comes from the cache
			m := s.query(t, "udp", "app.gslb.example.com", dns.TypeA, true)
			if got := addrs(m); !slices.Equal(got, both) {
				t.Fatalf("query %d: app A %v, want %v", i, got, both)
			}
			if !m.Authoritative {
				t.Errorf("query %d: AA not set", i)
			}
			verifySigned(t, key, m.Answer, dns.TypeA)
		}
		m := s.query(t, "udp", "app.gslb.example.com", dns.TypeA, false)
		for _, rr := range m.Answer {
			if rr.Header().Rrtype == dns.TypeRRSIG {
				t.Errorf("without DO: %s, want no RRSIG", rr)
			}
		}
	})
	t.Run("dnskey", func(t *testing.T) {
		m := s.query(t, "udp", zone, dns.TypeDNSKEY, true)
		found := false
		for _, rr := range m.Answer {
			if k, ok := rr.(*dns.DNSKEY); ok && k.KeyTag() == key.KeyTag() {
				found = true
			}
		}
		if !found {
			t.Errorf("DNSKEY: %v, want the key with tag %d", m.Answer, key.KeyTag())
		}
	})
	t.Run("signed denial", func(t *testing.T) {
		for _, q := range []struct {
			name  string
			qtype uint16
		}{
			{"nope.gslb.example.com", dns.TypeA},    // NXDOMAIN
			{"app.gslb.example.com", dns.TypeAAAA},  // NODATA on a health-aware name
			{"static.gslb.example.com", dns.TypeMX}, // NODATA on a static name
		} {
			for i := range 2 {
				m := s.query(t, "udp", q.name, q.qtype, true)
				what := fmt.Sprintf("%s %s (query %d)", q.name, dns.TypeToString[q.qtype], i)
				// Black lies (RFC 4470 style): CoreDNS's dnssec turns
				// NXDOMAIN into NOERROR with an NSEC; either rcode is fine.
				if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
					t.Errorf("%s: rcode %s", what, dns.RcodeToString[m.Rcode])
				}
				if len(m.Answer) != 0 {
					t.Errorf("%s: answer %v, want none", what, m.Answer)
				}
				verifySigned(t, key, m.Ns, dns.TypeSOA)
				verifySigned(t, key, m.Ns, dns.TypeNSEC)
			}
		}
	})

	// Failover through the cache: with a 2 s TTL, once the dead target has
	// left healthdns's answers the cache may serve it only until its
	// cached copy expires.
	bound := 2*time.Second + interval*fall + time.Second
	kill := time.Now()
	east.stop()
	var lastDead time.Duration
	var polls, failures, unsigned int
	var last []string
	poll(bound+1500*time.Millisecond, 25*time.Millisecond, func() bool {
		for _, do := range []bool{true, false} {
			polls++
			m, err := exchange(s.addr, "udp", "app.gslb.example.com", dns.TypeA, do)
			if err != nil || m.Rcode != dns.RcodeSuccess {
				failures++
				continue
			}
			last = addrs(m)
			if slices.Contains(last, "192.0.2.10") {
				lastDead = time.Since(kill)
			}
			if do && !hasRRSIG(m.Answer, dns.TypeA) {
				unsigned++
			}
		}
		return time.Since(kill) > bound+time.Second
	})
	t.Logf("through cache+dnssec: dead target last served %v after the kill (bound ttl+interval*fall+1s = %v); %d queries, %d failed", lastDead.Round(time.Millisecond), bound, polls, failures)
	if lastDead > bound {
		t.Errorf("dead target served %v after the kill, want at most %v", lastDead, bound)
	}
	if !slices.Equal(last, []string{"198.51.100.10"}) {
		t.Errorf("app A at the end: %v, want [198.51.100.10]", last)
	}
	if failures*10 > polls { // a lost UDP packet is not a failure; many are
		t.Errorf("%d of %d queries failed", failures, polls)
	}
	if unsigned > 0 {
		t.Errorf("%d answers with DO had no RRSIG over the A RRset", unsigned)
	}
}

// hasRRSIG reports whether rrs has an RRSIG covering type covered.
func hasRRSIG(rrs []dns.RR, covered uint16) bool {
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == covered {
			return true
		}
	}
	return false
}

// verifySigned checks that rrs has an RRset of type typ and an RRSIG over
// it that key verifies.
func verifySigned(t *testing.T, key *dns.DNSKEY, rrs []dns.RR, typ uint16) {
	t.Helper()
	var set []dns.RR
	var sig *dns.RRSIG
	for _, rr := range rrs {
		if rr.Header().Rrtype == typ {
			set = append(set, rr)
		}
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == typ {
			sig = s
		}
	}
	var dump []string
	for _, rr := range rrs {
		dump = append(dump, rr.String())
	}
	if len(set) == 0 {
		t.Errorf("no %s in:\n%s", dns.TypeToString[typ], strings.Join(dump, "\n"))
		return
	}
	if sig == nil {
		t.Errorf("no RRSIG over %s in:\n%s", dns.TypeToString[typ], strings.Join(dump, "\n"))
		return
	}
	if sig.KeyTag != key.KeyTag() || sig.SignerName != zone {
		t.Errorf("RRSIG %s: want key tag %d, signer %s", sig, key.KeyTag(), zone)
	}
	if err := sig.Verify(key, set); err != nil {
		t.Errorf("RRSIG over %s does not verify: %v\n%s", dns.TypeToString[typ], err, strings.Join(dump, "\n"))
	}
	if !sig.ValidityPeriod(time.Now()) {
		t.Errorf("RRSIG %s is not valid now", sig)
	}
}
