package healthdns

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
)

// The syntax: topology, policy geo, order (one chain and a
// region's own), target ... region, policy sticky.
func TestSetupGeo(t *testing.T) {
	zf := writeZone(t, testZone)
	c := caddy.NewTestController("dns", `healthdns example.org {
		zonefile `+zf+`
		topology {
			10.0.0.0/8       eu
			2001:db8:e0::/48 eu
			192.168.0.0/16   us
			country JP KR ap
			continent OC ap
			default us
		}
		name app {
			policy geo
			order eu us ap
			order ap: ap us
			ttl 30
			target 192.0.2.10    region eu check tcp 192.0.2.10:443
			target 198.51.100.10 region us check tcp 198.51.100.10:443
		}
		name shop {
			policy sticky
			sticky-prefix 20
			target 192.0.2.21 check tcp 192.0.2.21:443
			target 192.0.2.22 check tcp 192.0.2.22:443
		}
	}`)
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ap", "eu", "us"}; !slices.Equal(cfg.regions, want) {
		t.Errorf("regions %v, want %v", cfg.regions, want)
	}
	app, shop := cfg.names[0], cfg.names[1]
	if app.Policy != policy.GeoPolicy || shop.Policy != policy.Sticky || shop.MaxAnswers != 1 {
		t.Errorf("policies %s %s (shop max-answers %d)", app.Policy.Name(), shop.Policy.Name(), shop.MaxAnswers)
	}
	want := [][]string{{"ap", "us"}, {"eu", "us", "ap"}, {"us", "eu", "ap"}, {"eu", "us", "ap"}}
	for i, ch := range app.Geo.Chains {
		if !slices.Equal(ch, want[i]) {
			t.Errorf("chain %d: %v, want %v", i, ch, want[i])
		}
	}
	if app.Targets[0].Region != "eu" || app.Targets[1].Region != "us" {
		t.Errorf("target regions %q %q", app.Targets[0].Region, app.Targets[1].Region)
	}
	if shop.StickyBits != [2]int{20, 56} {
		t.Errorf("sticky-prefix %v, want [20 56]", shop.StickyBits)
	}
	for addr, region := range map[string]string{"10.1.2.3": "eu", "2001:db8:e0::1": "eu", "192.168.1.1": "us", "172.16.0.1": "us"} {
		a := netip.MustParseAddr(addr)
		r, _ := cfg.where.Locate(policy.Client{Addr: a, Bits: a.BitLen()})
		if r < 0 || cfg.regions[r] != region {
			t.Errorf("%s: region %d, want %s", addr, r, region)
		}
	}
}
