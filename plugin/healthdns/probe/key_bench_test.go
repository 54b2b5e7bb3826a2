package probe

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkKey: a server computes a target's key several times at start,
// for each of up to 100,000 targets.
func BenchmarkKey(b *testing.B) {
	c, err := Parse("tcp 10.1.2.3:443")
	if err != nil {
		b.Fatal(err)
	}
	t := Target{Addr: netip.MustParseAddr("10.1.2.3"), Checks: []Check{c}, Interval: 30 * time.Second, Timeout: time.Second, Rise: 2, Fall: 2}
	b.ReportAllocs()
	for b.Loop() {
		_ = t.Key()
	}
}
