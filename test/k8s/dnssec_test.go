package k8s

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestChartDNSSEC runs one server with examples/dnssec.yaml, the deploy
// guide's recipe, and a key made as dnssec-keygen would: the zone's
// answers are signed, and the DS the operator hands to the parent (made
// from the key file) matches the DNSKEY the server serves.
func TestChartDNSSEC(t *testing.T) {
	objs := render(t, chartDir, "hd", "-f", filepath.Join(examplesDir, "dnssec.yaml"), "--set", "servers.replicas=1")
	k := &kubelet{t: t, bins: binaries(t), root: t.TempDir(), objs: objs, hosts: map[string][]string{}, secrets: map[string]map[string][]byte{}}
	ss := find[*appsv1.StatefulSet](objs)[0]
	ip := "127.0.0.250"
	k.hosts[ss.Name+"-0."+ss.Spec.ServiceName+"."+namespace+".svc.cluster.local"] = []string{ip}
	for _, s := range find[*corev1.Secret](objs) {
		k.secrets[s.Name] = s.Data
	}

	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "gslb.example.com.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	const base = "Kgslb.example.com.+013+12345" // the name examples/dnssec.yaml uses
	k.secrets["healthdns-dnssec"] = map[string][]byte{
		base + ".key":     []byte(key.String() + "\n"),
		base + ".private": []byte(key.PrivateKeyString(priv)),
	}
	ds := key.ToDS(dns.SHA256)

	p := k.start(ss.Name+"-0", ip, ss.Spec.Template.Spec, ss.Spec.VolumeClaimTemplates)
	p.waitReady(60 * time.Second)
	addr := ip + ":1053"
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("gslb.example.com.", dns.TypeDNSKEY)
		m.SetEdns0(1232, true)
		r, _, err := (&dns.Client{Net: network, Timeout: time.Second}).Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		var served *dns.DNSKEY
		signed := false
		for _, rr := range r.Answer {
			switch rr := rr.(type) {
			case *dns.DNSKEY:
				served = rr
			case *dns.RRSIG:
				signed = true
			}
		}
		if served == nil || !signed {
			t.Fatalf("%s DNSKEY: %v", network, r)
		}
		if got := served.ToDS(dns.SHA256); got.Digest != ds.Digest || got.KeyTag != ds.KeyTag {
			t.Errorf("the DS from the key file (%s) does not match the served DNSKEY's (%s)", ds, got)
		}
		m = new(dns.Msg)
		m.SetQuestion("gslb.example.com.", dns.TypeSOA)
		m.SetEdns0(1232, true)
		r, _, err = (&dns.Client{Net: network, Timeout: time.Second}).Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 2 || !strings.Contains(r.Answer[1].String(), "RRSIG") {
			t.Errorf("%s SOA with DO: want the SOA and its RRSIG, got %v", network, r.Answer)
		}
	}
	t.Logf("DS for the parent: %s", ds)
}
