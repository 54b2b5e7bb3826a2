package healthdns

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"
)

// TestNameState: a name's state from its built answer, as the status views
// and name_state show it.
func TestNameState(t *testing.T) {
	east, west, spare := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.10")
	v6 := netip.MustParseAddr("2001:db8::10")
	tgt := func(a netip.Addr, healthy bool, tier, weight int) snapshot.Target {
		return snapshot.Target{Addr: a, Healthy: healthy, Tier: tier, Weight: weight}
	}
	for _, tc := range []struct {
		what     string
		pol      policy.Policy
		fallback snapshot.FallbackKind
		min      int
		targets  []snapshot.Target
		down     int
		want     string
	}{
		{"all up", policy.Priority, 0, 0, []snapshot.Target{tgt(east, true, 1, 1), tgt(west, true, 2, 1)}, 0, status.NameHealthy},
		{"tier 2 down, tier 1 answers", policy.Priority, 0, 0, []snapshot.Target{tgt(east, true, 1, 1), tgt(west, false, 2, 1)}, 1, status.NameDegraded},
		{"tier 1 down: failed over", policy.Priority, 0, 0, []snapshot.Target{tgt(east, false, 1, 1), tgt(west, true, 2, 1)}, 1, status.NameStandby},
		{"tier 1 below min-healthy", policy.Priority, 0, 2, []snapshot.Target{tgt(east, true, 1, 1), tgt(spare, false, 1, 1), tgt(west, true, 2, 1), tgt(netip.MustParseAddr("198.51.100.11"), true, 2, 1)}, 1, status.NameStandby},
		{"tier 1 below min-healthy, tier 2 too: tier 1 answers", policy.Priority, 0, 2, []snapshot.Target{tgt(east, true, 1, 1), tgt(spare, false, 1, 1), tgt(west, true, 2, 1)}, 1, status.NameDegraded},
		{"tier 1 unknown, not down", policy.Priority, 0, 0, []snapshot.Target{tgt(east, false, 1, 1), tgt(west, true, 2, 1)}, 0, status.NameStandby},
		{"only weight 0 left", policy.Weighted, 0, 0, []snapshot.Target{tgt(east, false, 0, 5), tgt(spare, true, 0, 0)}, 1, status.NameStandby},
		{"weighted, one down", policy.Weighted, 0, 0, []snapshot.Target{tgt(east, false, 0, 5), tgt(west, true, 0, 1), tgt(spare, true, 0, 0)}, 1, status.NameDegraded},
		{"roundrobin, one down", policy.RoundRobin, 0, 0, []snapshot.Target{tgt(east, false, 0, 1), tgt(west, true, 0, 1)}, 1, status.NameDegraded},
		{"IPv6 failed over, IPv4 fine", policy.Priority, 0, 0, []snapshot.Target{tgt(east, true, 1, 1), tgt(v6, false, 1, 1), tgt(netip.MustParseAddr("2001:db8::20"), true, 2, 1)}, 1, status.NameStandby},
		{"nothing healthy: fallback all", policy.Priority, snapshot.FallbackAll, 0, []snapshot.Target{tgt(east, false, 1, 1), tgt(west, false, 2, 1)}, 2, status.NameFallback},
		{"nothing healthy: fallback none", policy.RoundRobin, snapshot.FallbackNone, 0, []snapshot.Target{tgt(east, false, 0, 1)}, 1, status.NameNone},
	} {
		n := snapshot.Name{FQDN: "app.example.org.", TTL: 10, Policy: tc.pol, MinHealthy: tc.min, Fallback: tc.fallback, Targets: tc.targets}
		d, err := zone.Parse(strings.NewReader(serveZone), "test.zone", "example.org.")
		if err != nil {
			t.Fatal(err)
		}
		s := snapshot.Build(nil, []*zone.Data{d}, []snapshot.Name{n})
		if got := nameState(n, s.Dynamic(n.FQDN), tc.down); got != tc.want {
			t.Errorf("%s: state %q, want %q", tc.what, got, tc.want)
		}
	}
	if got := nameState(snapshot.Name{}, nil, 0); got != "" {
		t.Errorf("no built answer: state %q, want none", got)
	}
}
