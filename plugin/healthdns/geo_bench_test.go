package healthdns

import (
	"context"
	"net/netip"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/geo"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"

	"github.com/miekg/dns"
)

// geoServeHandler is newServeHandler with serveNames, a topology and a
// geo, a sticky and a round-robin name of four targets each, as a resolver would ask
// them: with ECS.
func geoServeHandler(tb testing.TB) *HealthDNS {
	tb.Helper()
	h := newServeHandler(tb, serveZone)
	regions := []string{"eu", "us"}
	h.cfg.regions = regions
	h.cfg.where = &geo.Locator{Default: 0, Table: geo.NewTable([]geo.Entry{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Region: 0},
		{Prefix: netip.MustParsePrefix("192.168.0.0/16"), Region: 1},
	})}
	g := &policy.Geo{Regions: regions, Chains: [][]string{{"eu", "us"}, {"us", "eu"}, {"eu", "us"}}}
	four := func(region1, region2 string, base byte) []snapshot.Target {
		var ts []snapshot.Target
		for i := range byte(4) {
			r := region1
			if i >= 2 {
				r = region2
			}
			ts = append(ts, snapshot.Target{Addr: netip.AddrFrom4([4]byte{192, 0, 2, base + i}), Healthy: true, Tier: 1, Weight: 1, Region: r})
		}
		return ts
	}
	names := append(serveNames(), []snapshot.Name{
		{FQDN: "geo.example.org.", TTL: 30, Policy: policy.GeoPolicy, Geo: g, Targets: four("eu", "us", 10)},
		{FQDN: "sticky.example.org.", TTL: 30, Policy: policy.Sticky, MaxAnswers: 1, Geo: g, Targets: four("eu", "us", 20)},
		{FQDN: "rr.example.org.", TTL: 30, Policy: policy.RoundRobin, MaxAnswers: 1, Geo: g, Targets: four("", "", 30)},
	}...)
	h.snap.Store(snapshot.Build(h.snap.Load(), h.cfg.zones, names))
	return h
}

func ecsQuery(qname, subnet string) *dns.Msg {
	r := new(dns.Msg)
	r.SetQuestion(qname, dns.TypeA)
	r.SetEdns0(1232, false)
	p := netip.MustParsePrefix(subnet)
	r.IsEdns0().Option = append(r.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(p.Bits()), Address: p.Addr().AsSlice()})
	return r
}

// BenchmarkServeDNSGeo: geo and sticky beside round-robin, each asked with
// ECS (go test -bench ServeDNSGeo -benchmem).
func BenchmarkServeDNSGeo(b *testing.B) {
	h := geoServeHandler(b)
	ctx := context.Background()
	w := &test.ResponseWriter{}
	for _, name := range []string{"rr", "geo", "sticky"} {
		b.Run(name, func(b *testing.B) {
			r := ecsQuery(name+".example.org.", "10.1.2.0/24")
			rec := &rcodeWriter{ResponseWriter: w}
			h.ServeDNS(ctx, rec, r)
			if rec.rcode != dns.RcodeSuccess || rec.answers != 1 && name != "geo" {
				b.Fatalf("%s: rcode %s with %d answers", name, dns.RcodeToString[rec.rcode], rec.answers)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(ctx, w, r)
			}
		})
	}
}

// A geo or sticky answer costs no allocation more than a round-robin one
// asked the same way (with ECS): the client travels by value, the region
// is a trie walk.
func TestServeDNSGeoAllocs(t *testing.T) {
	h := geoServeHandler(t)
	ctx := context.Background()
	w := &test.ResponseWriter{}
	cost := func(name string) float64 {
		r := ecsQuery(name+".example.org.", "10.1.2.0/24")
		return testing.AllocsPerRun(200, func() {
			// SizeAndDo takes the request's OPT: give it its ECS back.
			r.IsEdns0().Option = r.IsEdns0().Option[:0]
			r.IsEdns0().Option = append(r.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{10, 1, 2, 0}})
			h.ServeDNS(ctx, w, r)
		})
	}
	rr := cost("rr")
	for _, name := range []string{"geo", "sticky"} {
		if n := cost(name); n > rr {
			t.Errorf("%s costs %.0f allocations, round-robin %.0f", name, n, rr)
		}
	}
}
