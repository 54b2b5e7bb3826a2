package gossip_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
)

// TestJoinOneExchange: a node given every server's address (its own among
// them, as a headless service gives it) joins through one full state
// exchange, not one per address: at 100,000 targets each exchange is
// seconds of CPU on both ends, paid while the new server is not yet
// answering. It still learns every member and every catalog.
func TestJoinOneExchange(t *testing.T) {
	key := keyFile(t, newKey(t))
	cfg := func(name string) gossip.Config {
		c := testConfig(t, name, "", gossip.RoleServer, key, "")
		c.PushPullInterval = time.Hour // only the joins exchange states
		return c
	}
	var olds []*gossip.Node
	for i := range 4 {
		n := start(t, cfg(fmt.Sprintf("s%d", i)))
		if i > 0 {
			join(t, n, olds[0])
		}
		olds = append(olds, n)
	}
	for _, n := range olds { // the joins alone spread membership here
		waitFor(t, 10*time.Second, n.Name()+" knows every member", func() bool { return n.Stats().Members == 4 })
	}
	var cat []gossip.CatalogTarget
	for i := range 2000 {
		cat = append(cat, catalogTarget(t, fmt.Sprintf("10.1.%d.%d", i>>8, i&255), "tcp 127.0.0.1:9"))
	}
	if err := olds[0].PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}
	for _, n := range olds {
		waitFor(t, 10*time.Second, n.Name()+" has the catalog", func() bool { return len(n.Catalog()) == len(cat) })
	}

	// What one exchange costs: a node that joins through one address.
	one := start(t, cfg("one"))
	join(t, one, olds[1])
	single := one.Stats().StateRecv
	for _, n := range append(olds, one) {
		waitFor(t, 10*time.Second, n.Name()+" knows every member", func() bool { return n.Stats().Members == 5 })
	}

	late := start(t, cfg("late"))
	addrs := []string{late.Addr()}
	for _, n := range olds {
		addrs = append(addrs, n.Addr())
	}
	k, err := late.Join(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	got := late.Stats().StateRecv
	t.Logf("join through 1 address received %d bytes of state; through %d addresses %d bytes (joined %d)", single, len(addrs), got, k)
	if got > single*3/2 {
		t.Errorf("a join through %d addresses received %d bytes of state, %.1f times one exchange (%d): it exchanged with more than one", len(addrs), got, float64(got)/float64(single), single)
	}
	waitFor(t, 10*time.Second, "the late node knows every member and the catalog", func() bool {
		return late.Stats().Members == 6 && len(late.Catalog()) == len(cat)
	})
}

// TestJoinReachesEveryGroup: an address the first peer does not know as a
// member (a node that started alone) is joined too, so a join list still
// brings separate groups together, as memberlist's join of every address
// did.
func TestJoinReachesEveryGroup(t *testing.T) {
	key := keyFile(t, newKey(t))
	for i := range 4 { // the order is random: both orders, most likely
		a := start(t, testConfig(t, fmt.Sprintf("a%d", i), "", gossip.RoleServer, key, ""))
		b := start(t, testConfig(t, fmt.Sprintf("b%d", i), "", gossip.RoleServer, key, ""))
		join(t, b, a)
		c := start(t, testConfig(t, fmt.Sprintf("c%d", i), "", gossip.RoleServer, key, ""))
		late := start(t, testConfig(t, fmt.Sprintf("late%d", i), "", gossip.RoleServer, key, ""))
		k, err := late.Join(a.Addr(), c.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if k != 2 {
			t.Errorf("joined through %d addresses, want 2: a and c are two groups", k)
		}
		waitFor(t, 10*time.Second, "one cluster of four", func() bool {
			return late.Stats().Members == 4 && c.Stats().Members == 4 && a.Stats().Members == 4
		})
		for _, n := range []*gossip.Node{a, b, c, late} {
			n.Shutdown()
		}
	}
}
