package healthdns

import (
	"fmt"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/override"
)

// BenchmarkRebuildOverrides: what overrides cost a rebuild of 100,000
// records' targets, side by side with none: ten overrides, one draining a
// whole owner (10,000 targets), globs over names and addresses, exact
// addresses.
func BenchmarkRebuildOverrides(b *testing.B) {
	st := scaleStore(b, 10, 20000)
	for _, n := range []int{0, 10} {
		b.Run(fmt.Sprintf("overrides=%d", n), func(b *testing.B) {
			h := scaleHandler(b, st)
			h.vs.ov = newOverrideState()
			b.Cleanup(func() { h.vs.ov = newOverrideState() })
			sels := []string{"owner=cluster3", "name=app1*.gslb.example.org", "*/192.0.2.4*", "192.0.2.9", "owner=cluster5,name=app2*",
				"name=app99*", "192.0.2.30", "*/192.0.2.3?", "owner=cluster7,addr=192.0.2.29", "name=nothing.*"}
			now := time.Now()
			for i, s := range sels[:n] {
				sel, err := override.ParseSelector(s)
				if err != nil {
					b.Fatal(err)
				}
				h.vs.ov.book.Merge(now, override.Entry{Selector: sel, State: override.State(1 + i%3), At: now.Add(time.Duration(i)), Node: "dns1"})
			}
			h.rebuild()
			if n > 0 && len(h.vs.ov.forced) < 10000 {
				b.Fatalf("%d targets under an override, want over 10,000", len(h.vs.ov.forced))
			}
			b.ReportAllocs()
			for b.Loop() {
				h.rebuild()
			}
		})
	}
}
