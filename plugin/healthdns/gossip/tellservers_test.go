package gossip_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// TestChangeReachesServersAtOnce: an observer's change reaches a live
// server at once, not at the next gossip round, even while half the
// members have just died (a datacenter lost: memberlist's fan-out still
// picks them). The observer gossips every 2 s, probes every 5 s and never
// pushes/pulls, so only the direct packet can carry a change within half a
// second.
func TestChangeReachesServersAtOnce(t *testing.T) {
	kf := keyFile(t, newKey(t))
	slow := func(name string, role gossip.Role) gossip.Config {
		cfg := testConfig(t, name, name, role, kf, "test")
		cfg.GossipInterval = 2 * time.Second
		cfg.HeartbeatInterval = 2 * time.Second
		cfg.PushPullInterval = time.Hour
		cfg.ProbeInterval = 5 * time.Second // probes and acks carry gossip too
		return cfg
	}
	s1 := start(t, slow("s1", gossip.RoleServer))
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.1", "http://192.0.2.1/healthz")}
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}
	var dead []*gossip.Node
	for i := range 3 {
		d := start(t, testConfig(t, fmt.Sprintf("d%d", i+1), "east", gossip.RoleServer, kf, "test"))
		join(t, d, s1)
		dead = append(dead, d)
	}
	a1 := start(t, slow("a1", gossip.RoleAgent))
	join(t, a1, s1)
	waitFor(t, 5*time.Second, "a1 knows s1 as a server among 5 members", func() bool {
		m, ok := member(a1, "s1")
		return ok && m.Role == gossip.RoleServer && a1.Stats().Members == 5
	})
	states := map[gossip.TargetID]health.State{cat[0].ID: health.Up}
	a1.PublishObservations(states)
	waitFor(t, 5*time.Second, "s1 has a1's first observation", func() bool { return seesStates(s1, "a1", states) })

	for _, d := range dead {
		d.Shutdown() // no leave: as a datacenter dies
	}
	for i := range 3 {
		if states[cat[0].ID] == health.Up {
			states[cat[0].ID] = health.Down
		} else {
			states[cat[0].ID] = health.Up
		}
		a1.PublishObservations(states)
		d := waitFor(t, 5*time.Second, "s1 has a1's change", func() bool { return seesStates(s1, "a1", states) })
		t.Logf("change %d (%s) reached s1 in %v", i+1, states[cat[0].ID], d.Round(time.Millisecond))
		if d > 500*time.Millisecond {
			t.Errorf("change %d reached s1 after %v, with gossip every 2 s: not sent to the server at once", i+1, d.Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
