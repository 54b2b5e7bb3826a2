package gossip_test

import (
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/override"
)

func holds(n *gossip.Node, e override.Entry) bool {
	got, ok := n.Overrides().Get(e.Key())
	return ok && got == e
}

// An override taken on one server reaches every server at once (sent
// directly), a later clear replaces it everywhere, and a server that
// joins late has the book when Join returns.
func TestOverridesReplicate(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	s2 := start(t, testConfig(t, "s2", "dc2", gossip.RoleServer, kf, "test"))
	s3 := start(t, testConfig(t, "s3", "dc3", gossip.RoleServer, kf, "test"))
	join(t, s2, s1)
	join(t, s3, s1)
	waitFor(t, 5*time.Second, "three members", func() bool { return s3.Stats().Members == 3 && s2.Stats().Members == 3 })

	sel, _ := override.ParseSelector("owner=east")
	drain := override.Entry{Selector: sel, State: override.Drain, Reason: "bad deploy", Who: "alice", At: time.Now().UTC(), Node: "s1", Until: time.Now().Add(time.Hour).UTC()}
	changed, stop := s3.SubscribeOverrides()
	defer stop()
	if news := s1.MergeOverrides(drain); len(news) != 1 {
		t.Fatalf("news %v", news)
	}
	s1.SendOverrides(drain)
	took := waitFor(t, 2*time.Second, "s2 and s3 hold the drain", func() bool { return holds(s2, drain) && holds(s3, drain) })
	t.Logf("an override reached two servers in %v", took)
	select {
	case <-changed:
	default:
		t.Error("s3's subscriber was not told")
	}

	clear := drain
	clear.State, clear.At, clear.Node, clear.Until = override.None, drain.At.Add(time.Millisecond), "s2", drain.At.Add(time.Millisecond)
	s2.MergeOverrides(clear)
	s2.SendOverrides(clear)
	waitFor(t, 2*time.Second, "the clear everywhere", func() bool { return holds(s1, clear) && holds(s3, clear) })
	// An old copy arriving late changes nothing.
	if news := s3.MergeOverrides(drain); len(news) != 0 {
		t.Errorf("an older entry replaced the clear: %v", news)
	}

	forced := override.Entry{Selector: override.Selector{Addr: "192.0.2.9"}, State: override.Down, At: time.Now().UTC(), Node: "s1"}
	s1.MergeOverrides(forced) // not sent: only push/pull carries it
	late := start(t, testConfig(t, "late", "dc4", gossip.RoleServer, kf, "test"))
	join(t, late, s1)
	if !holds(late, forced) || !holds(late, clear) {
		all, _ := late.Overrides().All()
		t.Errorf("right after Join the late server holds %v", all)
	}
	// And push/pull carries it to the others too.
	waitFor(t, 5*time.Second, "push/pull spreads the unsent entry", func() bool { return holds(s2, forced) && holds(s3, forced) })
}
