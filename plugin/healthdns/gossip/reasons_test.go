package gossip_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// TestReasonsTravel: why an agent reports a target down reaches a server,
// and a node that joins later, cut to MaxReason bytes; it goes when the
// target comes back.
func TestReasonsTravel(t *testing.T) {
	kf := keyFile(t, newKey(t))
	cfg := func(name, obs string, role gossip.Role) gossip.Config {
		c := testConfig(t, name, obs, role, kf, "test")
		c.BindAddr = "127.0.4.201"
		return c
	}
	s1 := start(t, cfg("s1", "dc1", gossip.RoleServer))
	a1 := start(t, cfg("a1", "eu", gossip.RoleAgent))
	join(t, a1, s1)
	down := catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")
	up := catalogTarget(t, "192.0.2.2", "tcp 192.0.2.2:80")
	if err := s1.PublishCatalog([]gossip.CatalogTarget{down, up}); err != nil {
		t.Fatal(err)
	}
	refused := "tcp 192.0.2.1:80: dial tcp 192.0.2.1:80: connect: connection refused"
	states := map[gossip.TargetID]health.State{down.ID: health.Down, up.ID: health.Up}
	a1.PublishObservations(states)
	// A reason for a target reported up is not shown.
	a1.PublishReasons(map[gossip.TargetID]string{down.ID: refused, up.ID: "tcp 192.0.2.2:80: timeout"})
	want := map[gossip.TargetID]string{down.ID: refused}
	hasReasons := func(n *gossip.Node, want map[gossip.TargetID]string) func() bool {
		return func() bool {
			v, ok := view(n, "a1")
			return ok && maps.Equal(v.Reasons, want)
		}
	}
	took := waitFor(t, 5*time.Second, "s1 has a1's reason", hasReasons(s1, want))
	t.Logf("reason gossiped in %v", took)
	if v, _ := view(a1, "a1"); !maps.Equal(v.Reasons, want) {
		t.Errorf("a1's own view has reasons %v, want %v", v.Reasons, want)
	}

	// A node that joins later hears it from the repeats.
	late := start(t, cfg("late", "ap", gossip.RoleServer))
	join(t, late, s1)
	took = waitFor(t, 10*time.Second, "late has a1's reason", hasReasons(late, want))
	t.Logf("late joiner has the reason after %v", took)

	// Long reasons are cut.
	long := "http://192.0.2.1/healthz: " + strings.Repeat("é", 200)
	a1.PublishReasons(map[gossip.TargetID]string{down.ID: long})
	waitFor(t, 5*time.Second, "s1 has the long reason, cut", func() bool {
		v, _ := view(s1, "a1")
		r := v.Reasons[down.ID]
		return r == gossip.ShortReason(long) && len(r) <= gossip.MaxReason && strings.HasPrefix(r, "http://192.0.2.1/healthz: ...") && strings.HasSuffix(r, "é")
	})

	// Back up: no reason anywhere.
	states[down.ID] = health.Up
	a1.PublishObservations(states)
	a1.PublishReasons(nil)
	waitFor(t, 5*time.Second, "s1 drops the reason", hasReasons(s1, nil))
	waitFor(t, 5*time.Second, "late drops the reason", hasReasons(late, nil))
}
