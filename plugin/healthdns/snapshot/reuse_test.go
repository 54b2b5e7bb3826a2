package snapshot_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// A name's built answer is reused by the next Build and Update only when
// its input is the same; any change of it (a target's health, an
// address, an option, the last good set) builds it again, and the new
// answer is what a Build from nothing gives. Input gives back what the
// answer was built from.
func TestReuseOnlyTheSameInput(t *testing.T) {
	zones := []*zone.Data{loadZone(t, exampleOrg, "example.org.")}
	base := snapshot.Name{FQDN: "r.example.org.", TTL: 30, Policy: policy.RoundRobin, Fallback: snapshot.FallbackLastGood,
		LastGood: []netip.Addr{ip("192.0.2.1")}, Targets: []snapshot.Target{up("192.0.2.1"), up("192.0.2.2")}}
	s0 := snapshot.Build(nil, zones, []snapshot.Name{base})
	d0 := s0.Dynamic(base.FQDN)
	if in := d0.Input(); in.FQDN != base.FQDN || in.TTL != 30 || in.Policy != policy.RoundRobin || !slices.Equal(in.Targets, base.Targets) || !slices.Equal(in.LastGood, base.LastGood) || in.Fallback != snapshot.FallbackLastGood {
		t.Fatalf("Input = %+v, want %+v", in, base)
	}
	same := base
	same.Targets = slices.Clone(base.Targets) // equal, not the same array
	if s := snapshot.Build(s0, zones, []snapshot.Name{same}); s != s0 {
		t.Error("Build of the same input made a new snapshot")
	}
	other := snapshot.Name{FQDN: "o.example.org.", TTL: 30, Targets: []snapshot.Target{up("192.0.2.9")}}
	if s := snapshot.Build(s0, zones, []snapshot.Name{same, other}); s.Dynamic(base.FQDN) != d0 {
		t.Error("Build with another name too built an unchanged name's answer again")
	}
	change := func(f func(*snapshot.Name)) snapshot.Name {
		n := base
		n.Targets = slices.Clone(base.Targets)
		f(&n)
		return n
	}
	for _, tc := range []struct {
		what string
		n    snapshot.Name
	}{
		{"a target down", change(func(n *snapshot.Name) { n.Targets[1].Healthy = false })},
		{"another address", change(func(n *snapshot.Name) { n.Targets[1].Addr = ip("192.0.2.3") })},
		{"a weight", change(func(n *snapshot.Name) { n.Targets[1].Weight = 5 })},
		{"drained", change(func(n *snapshot.Name) { n.Targets[0].Drained = true })},
		{"the TTL", change(func(n *snapshot.Name) { n.TTL = 60 })},
		{"the policy", change(func(n *snapshot.Name) { n.Policy = policy.Priority })},
		{"max answers", change(func(n *snapshot.Name) { n.MaxAnswers = 1 })},
		{"min healthy", change(func(n *snapshot.Name) { n.MinHealthy = 2 })},
		{"the fallback", change(func(n *snapshot.Name) { n.Fallback = snapshot.FallbackNone })},
		{"the fixed fallback", change(func(n *snapshot.Name) { n.Fixed = []netip.Addr{ip("192.0.2.99")} })},
		{"the last good set", change(func(n *snapshot.Name) { n.LastGood = []netip.Addr{ip("192.0.2.2")} })},
		{"sticky bits", change(func(n *snapshot.Name) { n.StickyBits = [2]int{16, 48} })},
	} {
		want := snapshot.Build(nil, zones, []snapshot.Name{tc.n})
		for name, s := range map[string]*snapshot.Snapshot{
			"Build":  snapshot.Build(s0, zones, []snapshot.Name{tc.n}),
			"Update": must(snapshot.Update(s0, []snapshot.Name{tc.n})),
		} {
			d := s.Dynamic(base.FQDN)
			if d == d0 {
				t.Errorf("%s: %s reused the answer built before", tc.what, name)
				continue
			}
			if in := d.Input(); in.TTL != tc.n.TTL || in.Policy != tc.n.Policy || in.MaxAnswers != tc.n.MaxAnswers || in.MinHealthy != tc.n.MinHealthy ||
				in.Fallback != tc.n.Fallback || !slices.Equal(in.Fixed, tc.n.Fixed) || !slices.Equal(in.LastGood, tc.n.LastGood) ||
				!slices.Equal(in.Targets, tc.n.Targets) || in.StickyBits != tc.n.StickyBits {
				t.Errorf("%s: %s: Input = %+v, want %+v", tc.what, name, in, tc.n)
			}
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
				got, _ := ask(s, base.FQDN, qt)
				exp, _ := ask(want, base.FQDN, qt)
				if g, e := sorted(addrs(got)), sorted(addrs(exp)); !slices.Equal(g, e) || ttlOf(got) != ttlOf(exp) || got.Rcode != exp.Rcode {
					t.Errorf("%s: %s answers %v (TTL %d), a Build from nothing %v (TTL %d)", tc.what, name, g, ttlOf(got), e, ttlOf(exp))
				}
			}
		}
	}
	// The answer for a target down is not the one for all up.
	down := change(func(n *snapshot.Name) { n.Targets[1].Healthy = false })
	s1 := must(snapshot.Update(s0, []snapshot.Name{down}))
	if got := addrs(first(ask(s1, base.FQDN, dns.TypeA))); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("after 192.0.2.2 went down: %v", got)
	}
	// And back up: built again, both answered.
	if got := sorted(addrs(first(ask(must(snapshot.Update(s1, []snapshot.Name{base})), base.FQDN, dns.TypeA)))); !slices.Equal(got, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Errorf("after 192.0.2.2 came back: %v", got)
	}
}

func must(s *snapshot.Snapshot, ok bool) *snapshot.Snapshot {
	if !ok {
		panic("Update could not update")
	}
	return s
}

func ttlOf(m *dns.Msg) uint32 {
	if len(m.Answer) == 0 {
		return 0
	}
	return m.Answer[0].Header().Ttl
}
