package geo

import (
	"net/netip"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
)

func TestTableLookup(t *testing.T) {
	const eu, us, ap, lab = 0, 1, 2, 3
	tab := NewTable([]Entry{
		{netip.MustParsePrefix("10.0.0.0/8"), eu},
		{netip.MustParsePrefix("10.9.0.0/16"), us}, // a hole in eu's network
		{netip.MustParsePrefix("10.9.8.0/24"), lab},
		{netip.MustParsePrefix("192.168.0.0/16"), us},
		{netip.MustParsePrefix("2001:db8:e0::/48"), eu},
		{netip.MustParsePrefix("2001:db8:a0::/48"), ap},
		{netip.MustParsePrefix("127.0.3.16/28"), us},
	})
	tests := []struct {
		addr          string
		region, scope int
	}{
		// The longest prefix wins; the scope is as long as needed for
		// every address inside it to get the same region.
		{"10.1.2.0", eu, 13},         // 10.0.0.0/13 holds no more specific entry
		{"10.200.0.0", eu, 9},        // 10.128.0.0/9 neither
		{"10.9.1.0", us, 21},         // inside 10.9/16, beside 10.9.8/24
		{"10.9.8.7", lab, 24},        // the most specific entry
		{"192.168.77.1", us, 16},     // nothing below it
		{"172.16.0.1", -1, 2},        // no entry: 128.0.0.0/2 holds none
		{"127.0.3.20", us, 28},       //
		{"127.0.3.40", -1, 27},       // 127.0.3.32/27 holds none
		{"2001:db8:e0:1::1", eu, 48}, //
		{"2001:db8:a0::5", ap, 48},
		{"2001:db8:b0::5", -1, 44},  // differs from e0 and a0 at bit 44
		{"::ffff:10.1.2.3", eu, 13}, // a mapped IPv4 address is IPv4
	}
	for _, tc := range tests {
		r, s := tab.Lookup(netip.MustParseAddr(tc.addr))
		if r != tc.region || s != tc.scope {
			t.Errorf("Lookup(%s) = region %d scope %d, want %d scope %d", tc.addr, r, s, tc.region, tc.scope)
		}
	}
	var none *Table
	if r, s := none.Lookup(netip.MustParseAddr("10.0.0.1")); r != -1 || s != 0 {
		t.Errorf("nil table: %d %d", r, s)
	}
}

// The scope a lookup returns is exact enough for a resolver's cache:
// every address inside the scope's network gets the same region.
func TestTableScopeHolds(t *testing.T) {
	tab := NewTable([]Entry{
		{netip.MustParsePrefix("10.0.0.0/8"), 0},
		{netip.MustParsePrefix("10.9.0.0/16"), 1},
		{netip.MustParsePrefix("10.9.8.0/24"), 2},
		{netip.MustParsePrefix("10.9.8.128/25"), 0},
	})
	for _, a := range []string{"10.1.2.3", "10.9.1.1", "10.9.8.1", "10.9.8.200", "11.0.0.1"} {
		addr := netip.MustParseAddr(a)
		r, s := tab.Lookup(addr)
		p, _ := addr.Prefix(s)
		// Walk the network's addresses at a coarse stride.
		step := uint32(1) << max(0, (32-s)-8)
		b := p.Addr().As4()
		base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		for off := uint64(0); off < uint64(1)<<(32-s); off += uint64(step) {
			v := base + uint32(off)
			x := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			if r2, _ := tab.Lookup(x); r2 != r {
				t.Fatalf("%s: region %d in scope %s, but %s gets %d", a, r, p, x, r2)
			}
		}
	}
}

func TestLocatorDefault(t *testing.T) {
	l := &Locator{Table: NewTable([]Entry{{netip.MustParsePrefix("10.0.0.0/8"), 0}}), Default: 1}
	if r, s := l.Locate(policy.Client{Addr: netip.MustParseAddr("10.1.0.0"), Bits: 16}); r != 0 || s != 8 {
		t.Errorf("in the table: %d /%d", r, s)
	}
	if r, _ := l.Locate(policy.Client{Addr: netip.MustParseAddr("172.16.0.0"), Bits: 16}); r != 1 {
		t.Errorf("outside the table: region %d, want the default 1", r)
	}
	if r, s := l.Locate(policy.Client{}); r != 1 || s != 0 {
		t.Errorf("no address (ECS /0): region %d scope %d, want the default, scope 0", r, s)
	}
}
