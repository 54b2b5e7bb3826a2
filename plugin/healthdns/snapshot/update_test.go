package snapshot_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// manyNames are n health-aware names of two targets each: more than one
// chunk of answers.
func manyNames(n int) []snapshot.Name {
	out := make([]snapshot.Name, n)
	for i := range out {
		out[i] = snapshot.Name{FQDN: fmt.Sprintf("n%d.example.org.", i), TTL: 30,
			Targets: []snapshot.Target{up(fmt.Sprintf("10.0.%d.%d", i/256, i%256)), up(fmt.Sprintf("10.1.%d.%d", i/256, i%256))}}
	}
	return out
}

// Update answers exactly as a Build from the same names would, leaves the
// snapshot it came from answering as before, and shares what it did not
// change.
func TestUpdateAnswersAsBuild(t *testing.T) {
	zones := []*zone.Data{loadZone(t, exampleOrg, "example.org.")}
	names := append(defaultNames(), manyNames(600)...)
	s0 := snapshot.Build(nil, zones, names)

	changed := slices.Clone(names)
	for _, i := range []int{3, 300, 602} { // three chunks
		n := changed[i]
		n.Targets = slices.Clone(n.Targets)
		n.Targets[0].Healthy = false
		changed[i] = n
	}
	s1, ok := snapshot.Update(s0, []snapshot.Name{changed[3], changed[300], changed[602]})
	if !ok || s1 == s0 {
		t.Fatalf("Update = %p, %v; want a new snapshot", s1, ok)
	}
	want := snapshot.Build(nil, zones, changed)
	for _, n := range changed {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY} {
			got, _ := ask(s1, n.FQDN, qt)
			exp, _ := ask(want, n.FQDN, qt)
			if g, e := sorted(addrs(got)), sorted(addrs(exp)); !slices.Equal(g, e) || got.Rcode != exp.Rcode {
				t.Errorf("%s %s: Update answers %v (rcode %d), Build %v (rcode %d)", n.FQDN, dns.TypeToString[qt], g, got.Rcode, e, exp.Rcode)
			}
		}
	}
	if got := addrs(first(ask(s0, changed[300].FQDN, dns.TypeA))); len(got) != 2 {
		t.Errorf("the snapshot updated from changed: %s answers %v, want both targets still", changed[300].FQDN, got)
	}
	if s1.Dynamic(names[4].FQDN) != s0.Dynamic(names[4].FQDN) {
		t.Error("an unchanged name's answer was rebuilt")
	}
	if got := len(s1.Names()); got != len(names) {
		t.Errorf("Names() = %d names, want %d", got, len(names))
	}
	// The same input again: nothing to do.
	if s2, ok := snapshot.Update(s1, []snapshot.Name{changed[3]}); !ok || s2 != s1 {
		t.Error("an Update that changes nothing made a new snapshot")
	}
	// A full Build from the updated snapshot reuses its answers.
	if s3 := snapshot.Build(s1, zones, changed); s3 != s1 {
		t.Error("Build of the same input after Update did not return the snapshot")
	}
	// A name the snapshot does not have needs a Build.
	if _, ok := snapshot.Update(s1, []snapshot.Name{{FQDN: "new.example.org.", TTL: 30, Targets: []snapshot.Target{up("192.0.2.1")}}}); ok {
		t.Error("Update took a new name")
	}
}

// A round-robin rotation goes on across an Update.
func TestUpdateKeepsRotation(t *testing.T) {
	zones := []*zone.Data{loadZone(t, exampleOrg, "example.org.")}
	names := manyNames(3)
	names[0].Targets = append(names[0].Targets, up("10.2.0.1"))
	s0 := snapshot.Build(nil, zones, names)
	a := addrs(first(ask(s0, names[0].FQDN, dns.TypeA)))
	n := names[0]
	n.Targets = slices.Clone(n.Targets)
	n.Targets[1].Healthy = false
	s1, _ := snapshot.Update(s0, []snapshot.Name{n})
	b := addrs(first(ask(s1, names[0].FQDN, dns.TypeA)))
	if len(b) != 2 || slices.Contains(b, "10.1.0.0") {
		t.Fatalf("after the update: %v", b)
	}
	if a[0] == b[0] && slices.Equal(addrs(first(ask(s1, names[0].FQDN, dns.TypeA))), b) {
		t.Errorf("rotation stuck: %v then %v", a, b)
	}
}

// The snapshot after one target's health changed, at two sizes (5
// targets a name, as test/bench/scale has them): Update's cost must not
// grow with the names; Build's, which the rebuild used before, does.
func BenchmarkUpdateOneChange(b *testing.B) {
	for _, targets := range []int{10000, 100000} {
		zones := []*zone.Data{loadZone(b, exampleOrg, "example.org.")}
		names := make([]snapshot.Name, targets/5)
		for i := range names {
			names[i] = snapshot.Name{FQDN: fmt.Sprintf("n%d.example.org.", i), TTL: 30}
			for k := range 5 {
				t := i*5 + k
				names[i].Targets = append(names[i].Targets, up(fmt.Sprintf("10.%d.%d.%d", t>>16&255, t>>8&255, t&255)))
			}
		}
		for _, how := range []string{"update", "build"} {
			b.Run(fmt.Sprintf("%s/targets=%d", how, targets), func(b *testing.B) {
				s := snapshot.Build(nil, zones, names)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					n := names[i%len(names)]
					n.Targets = slices.Clone(n.Targets)
					n.Targets[0].Healthy = !n.Targets[0].Healthy
					names[i%len(names)] = n
					if how == "update" {
						s, _ = snapshot.Update(s, []snapshot.Name{n})
					} else {
						s = snapshot.Build(s, zones, names)
					}
				}
			})
		}
	}
}

// Update never writes the snapshot it is given (a published one, that
// queries read): Updates of one snapshot may run at once, each giving a
// name a TTL no name had (so a negative SOA the zone has none of yet),
// and each answers NODATA with its own negative TTL.
func TestUpdateWritesNoPublishedSnapshot(t *testing.T) {
	zones := []*zone.Data{loadZone(t, exampleOrg, "example.org.")}
	names := manyNames(2) // IPv4 targets only: AAAA is NODATA
	s0 := snapshot.Build(nil, zones, names)
	const workers, each = 4, 70
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				n := names[0]
				n.TTL = uint32(1 + w*each + i) // under the zone's negative TTL (300)
				s, ok := snapshot.Update(s0, []snapshot.Name{n})
				if !ok {
					errs <- fmt.Errorf("TTL %d: Update refused", n.TTL)
					return
				}
				m, _ := ask(s, n.FQDN, dns.TypeAAAA)
				if len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Ttl != n.TTL {
					errs <- fmt.Errorf("TTL %d: AAAA answers %v, authority %v; want NODATA with the SOA at TTL %d", n.TTL, m.Answer, m.Ns, n.TTL)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := ask(s0, names[0].FQDN, dns.TypeAAAA); len(m.Ns) != 1 || m.Ns[0].Header().Ttl != 30 {
		t.Errorf("the snapshot updated from: AAAA authority %v, want the SOA at TTL 30", m.Ns)
	}
}

// Tailors follows the names' policies through Updates: once no name's
// answers depend on the client, queries need not look up who asks.
func TestUpdateTailors(t *testing.T) {
	zones := []*zone.Data{loadZone(t, exampleOrg, "example.org.")}
	sticky, err := policy.Lookup("sticky")
	if err != nil {
		t.Fatal(err)
	}
	names := manyNames(3)
	names[0].Policy, names[1].Policy = sticky, sticky
	s := snapshot.Build(nil, zones, names)
	if !s.Tailors() {
		t.Fatal("Build of two sticky names: Tailors() = false")
	}
	for _, step := range []struct {
		i    int
		p    policy.Policy
		want bool
	}{
		{0, policy.RoundRobin, true}, // one sticky name left
		{1, policy.RoundRobin, false},
		{2, sticky, true},
		{2, policy.RoundRobin, false},
	} {
		n := names[step.i]
		n.Policy = step.p
		names[step.i] = n
		var ok bool
		if s, ok = snapshot.Update(s, []snapshot.Name{n}); !ok {
			t.Fatalf("%s to %s: Update refused", n.FQDN, step.p.Name())
		}
		if s.Tailors() != step.want {
			t.Errorf("%s to %s: Tailors() = %v, want %v", n.FQDN, step.p.Name(), s.Tailors(), step.want)
		}
		if b := snapshot.Build(nil, zones, names); b.Tailors() != step.want {
			t.Errorf("%s to %s: Build's Tailors() = %v, want %v", n.FQDN, step.p.Name(), b.Tailors(), step.want)
		}
	}
}
