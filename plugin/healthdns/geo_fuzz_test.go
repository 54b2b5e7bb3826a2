package healthdns

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
)

// FuzzSetupGeo feeds topology blocks and geo/sticky name bodies to the
// Corefile parser: it must refuse or accept without panicking, and a
// block it accepts must locate any client.
func FuzzSetupGeo(f *testing.F) {
	for _, seed := range [][2]string{
		{"10.0.0.0/8 eu\n2001:db8:e0::/48 eu\n192.168.0.0/16 us\ncountry JP ap\ncontinent OC ap\ndefault eu", "policy geo\norder eu us ap\norder ap: ap us"},
		{"127.0.0.1 us\n::ffff:10.0.0.0/104 eu", "policy sticky\nsticky-prefix 16 48"},
		{"0.0.0.0/0 x\n::/0 y", "policy geo\norder x: y x"},
		{"10.0.0.0/33 eu", "order eu eu"},
		{"country DEU eu", "policy geo\norder eu:"},
	} {
		f.Add(seed[0], seed[1])
	}
	dir := f.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte(testZone), 0o644); err != nil {
		f.Fatal(err)
	}
	clients := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8:e0::1"), netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::")}
	f.Fuzz(func(t *testing.T, topo, body string) {
		c := caddy.NewTestController("dns", "healthdns example.org {\nzonefile "+zf+"\ntopology {\n"+topo+"\n}\nname app {\n"+body+"\ntarget 192.0.2.1 region eu check tcp 192.0.2.1:80\n}\n}")
		cfg, err := parse(c)
		if err != nil {
			return
		}
		for _, a := range clients {
			if cfg.where == nil {
				break
			}
			r, s := cfg.where.Locate(policy.Client{Addr: a, Bits: a.BitLen()})
			if r >= len(cfg.regions) || r < -1 || s < 0 || s > a.BitLen() {
				t.Fatalf("%s: region %d of %d, scope %d", a, r, len(cfg.regions), s)
			}
		}
		for _, n := range cfg.names {
			if n.Geo == nil || len(n.Geo.Chains) != len(cfg.regions)+1 {
				t.Fatalf("%s: chains %v for regions %v", n.FQDN, n.Geo, cfg.regions)
			}
		}
	})
}
