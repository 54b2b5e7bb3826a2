package recordmerge

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"
)

// zoneExtra is every record of zones that is not the zone file's, as
// "rr NAME TYPE DATA" lines, sorted.
func zoneExtra(cfg Config, zones []*zone.Data) []string {
	var extra []string
	for _, z := range zones {
		var orig map[string]map[uint16][]dns.RR
		for _, d := range cfg.Zones {
			if d.Origin == z.Origin {
				orig = d.Names
			}
		}
		for n, types := range z.All() {
			for typ, rrs := range types {
				for _, rr := range rrs[min(len(orig[n][typ]), len(rrs)):] {
					data := strings.TrimPrefix(rr.String(), rr.Header().String())
					extra = append(extra, fmt.Sprintf("rr %s %s %s", n, dns.TypeToString[typ], data))
				}
			}
		}
	}
	slices.Sort(extra)
	return extra
}

func mergeConfig(t testing.TB, names ...*Name) Config {
	t.Helper()
	d, err := zone.Parse(strings.NewReader(mergeZone), "merge.zone", "example.org.")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Zones: []*zone.Data{d}, Names: names, TTL: 30, Timing: Timing{Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 2}}
}

// The contract the plugin's incremental rebuild relies on: after a
// change, every name whose answers did not change is the same *Name as
// before, a changed one is a new *Name (the old one is left as it was),
// the order is the pure Merge's, and the zones are the same *zone.Data
// until a static record changes.
func TestMergerKeepsWhatDidNotChange(t *testing.T) {
	check := "check=tcp {addr}:443"
	cfg := mergeConfig(t, corefileName("web.example.org.", policy.Weighted, 2, "192.0.2.1"))
	st := records.Memory(records.Options{})
	for _, o := range []string{"eu", "us"} {
		var c records.Changes
		for i := range 50 {
			c.Create = append(c.Create,
				ep(fmt.Sprintf("app%d.example.org", i), "A", []string{fmt.Sprintf("192.0.2.%d", 10+i%5)}, check),
				ep(fmt.Sprintf("a-app%d.example.org", i), "TXT", []string{`"owner=` + o + `"`}))
		}
		c.Create = append(c.Create, ep(o+".example.org", "A", []string{"192.0.2.50"}, check))
		if _, err := st.Apply(o, c); err != nil {
			t.Fatal(err)
		}
	}
	m := New(cfg)
	names0, zones0 := m.Merge(st.State())
	before := map[string]*Name{}
	summary := map[string]string{}
	for _, n := range names0 {
		before[n.FQDN] = n
		summary[n.FQDN] = strings.Join(mergeSummary([]*Name{n}, nil), "\n")
	}

	// An A record of one owner changes address: only its name is new.
	if _, err := st.Apply("us", records.Changes{UpdateNew: []records.Endpoint{ep("app7.example.org", "A", []string{"192.0.2.99"}, check)}}); err != nil {
		t.Fatal(err)
	}
	names1, zones1 := m.Merge(st.State())
	if !slices.Equal(zones0, zones1) {
		t.Errorf("an A record changed: the zones are new")
	}
	for _, n := range names1 {
		old := before[n.FQDN]
		switch {
		case n.FQDN == "app7.example.org.":
			if n == old {
				t.Errorf("%s changed but is the same *Name", n.FQDN)
			}
			if got := strings.Join(mergeSummary([]*Name{old}, nil), "\n"); got != summary[n.FQDN] {
				t.Errorf("the old *Name of %s was written over:\n%s", n.FQDN, got)
			}
		case n != old:
			t.Errorf("%s did not change but is a new *Name", n.FQDN)
		}
	}
	want, _ := Merge(cfg, st.State())
	if got, want := mergeSummary(names1, nil), mergeSummary(want, nil); !slices.Equal(got, want) {
		t.Errorf("Merger:\n%s\nMerge:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A TXT record changes: the names are the same, the zone is new and
	// has it; the zone file's Data is not written.
	if _, err := st.Apply("eu", records.Changes{UpdateNew: []records.Endpoint{ep("a-app3.example.org", "TXT", []string{`"owner=eu,v=2"`})}}); err != nil {
		t.Fatal(err)
	}
	names2, zones2 := m.Merge(st.State())
	if !slices.Equal(names1, names2) {
		t.Errorf("a TXT record changed: the names changed")
	}
	if zones2[0] == zones1[0] {
		t.Errorf("a TXT record changed: the zone is the same *zone.Data")
	}
	if z := zones2[0]; z.From != zones1[0].Gen || z.Gen == z.From || !slices.Equal(z.Changed, []string{"a-app3.example.org."}) {
		t.Errorf("the new zone says it is Gen %d made from %d (want %d) by changing %q", z.Gen, z.From, zones1[0].Gen, z.Changed)
	}
	if got := zoneExtra(cfg, zones2); !slices.Contains(got, `rr a-app3.example.org. TXT "owner=eu,v=2"`) || slices.Contains(got, `rr a-app3.example.org. TXT "owner=eu"`) {
		t.Errorf("zone after the TXT change:\n%s", strings.Join(got, "\n"))
	}
	if len(cfg.Zones[0].Names["a-app3.example.org."]) != 0 || cfg.Zones[0].Single.Len() != 0 {
		t.Errorf("the zone file's data was written")
	}

	// Nothing changes: the very same slices.
	names3, zones3 := m.Merge(st.State())
	if &names3[0] != &names2[0] || &zones3[0] != &zones2[0] {
		t.Errorf("no change: new slices")
	}
}

// A Merger fed random changes of three owners answers exactly as the pure
// Merge of the same records, names in the same order, zones alike.
func TestMergerMatchesMerge(t *testing.T) {
	check := "check=tcp {addr}:443"
	cfg := mergeConfig(t, corefileName("web.example.org.", policy.Weighted, 2, "192.0.2.1"))
	st := records.Memory(records.Options{})
	m := New(cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	owners := []string{"eu", "us", "ap"}
	names := []string{"web", "app1", "app2", "app3", "fixed", "alias", "x.sub", "docs", "a-app1", "a-app2", "*.wild"}
	random := func() records.Endpoint {
		n := names[rng.IntN(len(names))] + ".example.org"
		switch rng.IntN(4) {
		case 0:
			return ep(n, "TXT", []string{fmt.Sprintf(`"v=%d"`, rng.IntN(3))})
		case 1:
			return ep(n, "CNAME", []string{"elsewhere.example.net"})
		case 2:
			return ep(n, "AAAA", []string{fmt.Sprintf("2001:db8::%d", 1+rng.IntN(3))}, check, fmt.Sprintf("tier=%d", 1+rng.IntN(2)))
		default:
			return ep(n, "A", []string{fmt.Sprintf("192.0.2.%d", 1+rng.IntN(4)), fmt.Sprintf("192.0.2.%d", 1+rng.IntN(4))}, check, fmt.Sprintf("weight=%d", rng.IntN(3)))
		}
	}
	var prevNames []*Name
	var prevZones []*zone.Data
	var prevProbes []string
	for step := range 400 {
		o := owners[rng.IntN(len(owners))]
		var c records.Changes
		for range 1 + rng.IntN(3) {
			e := random()
			if old, ok := st.State().Lookup(o, records.Key{Name: e.DNSName, Type: e.RecordType}); ok {
				if rng.IntN(2) == 0 {
					c.Delete = append(c.Delete, old)
				} else {
					c.UpdateNew = append(c.UpdateNew, e)
				}
			} else if !slices.ContainsFunc(c.Create, func(x records.Endpoint) bool { return x.Key() == e.Key() }) {
				c.Create = append(c.Create, e)
			}
		}
		if _, err := st.Apply(o, c); err != nil {
			continue // a change that clashes with itself
		}
		m.whole = step%7 == 0 // now and then the whole way, which must keep pointers too
		gotNames, gotZones := m.Merge(st.State())
		wantNames, wantZones := Merge(cfg, st.State())
		if got, want := mergeSummary(gotNames, nil), mergeSummary(wantNames, nil); !slices.Equal(got, want) {
			t.Fatalf("step %d: Merger:\n%s\nMerge:\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if got, want := zoneExtra(cfg, gotZones), zoneExtra(cfg, wantZones); !slices.Equal(got, want) {
			t.Fatalf("step %d: Merger's zone:\n%s\nMerge's:\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if got, want := len(m.Groups()), len(New(cfg).groupsOf(st.State())); got != want {
			t.Fatalf("step %d: %d verdict groups, want %d", step, got, want)
		}
		// Probes are the distinct probe targets of the names, and say
		// whether they changed.
		wantKeys := map[string]bool{}
		for _, n := range wantNames {
			for _, t := range n.Targets {
				wantKeys[t.ProbeKey()] = true
			}
		}
		ps, changed := m.Probes()
		var gotKeys []string
		for _, p := range ps {
			gotKeys = append(gotKeys, p.Key())
		}
		if !slices.Equal(gotKeys, slices.Sorted(maps.Keys(wantKeys))) {
			t.Fatalf("step %d: probes %q, want %q", step, gotKeys, slices.Sorted(maps.Keys(wantKeys)))
		}
		if changed != !slices.Equal(gotKeys, prevProbes) {
			t.Fatalf("step %d: probes changed %v: %q -> %q", step, changed, prevProbes, gotKeys)
		}
		if _, again := m.Probes(); again {
			t.Fatalf("step %d: probes changed twice", step)
		}
		prevProbes = gotKeys
		// Unchanged names keep their pointer.
		old := map[string]*Name{}
		for _, n := range prevNames {
			old[n.FQDN] = n
		}
		for _, n := range gotNames {
			if p := old[n.FQDN]; p != nil && p != n && sameName(p, n) {
				t.Fatalf("step %d: %s is unchanged but a new *Name", step, n.FQDN)
			}
		}
		if prevZones != nil {
			same, samePtr := slices.Equal(zoneExtra(cfg, prevZones), zoneExtra(cfg, gotZones)), slices.Equal(prevZones, gotZones)
			if same != samePtr {
				t.Fatalf("step %d: zones the same records %v, the same *zone.Data %v", step, same, samePtr)
			}
		}
		if step%100 == 99 {
			t.Logf("step %d: %d names, %d extra rrs, %d groups", step, len(gotNames), len(zoneExtra(cfg, gotZones)), len(m.Groups()))
		}
		prevNames, prevZones = gotNames, gotZones
	}
}

// groupsOf is the verdict groups of a fresh Merge.
func (m *Merger) groupsOf(st records.State) []Group {
	m.Merge(st)
	return m.Groups()
}

// A replica that gets an owner whole (it fell further behind than the
// log of changes, in a burst) merges again only the names that differ:
// the others stay the same *Name, and the answers are the pure Merge's.
func TestMergerInstalledWholeKeepsWhatDidNotChange(t *testing.T) {
	check := "check=tcp {addr}:443"
	cfg := mergeConfig(t)
	writer := records.Memory(records.Options{})
	var c records.Changes
	for i := range 5000 {
		c.Create = append(c.Create, ep(fmt.Sprintf("app%d.example.org", i), "A", []string{fmt.Sprintf("192.0.2.%d", 10+i%5)}, check))
	}
	if _, err := writer.Apply("eu", c); err != nil {
		t.Fatal(err)
	}
	replica := records.Memory(records.Options{})
	if _, err := replica.Install(writer.Set("eu")); err != nil {
		t.Fatal(err)
	}
	m := New(cfg)
	names0, _ := m.Merge(replica.State())
	before := map[string]*Name{}
	for _, n := range names0 {
		before[n.FQDN] = n
	}
	for _, ch := range []records.Changes{
		{UpdateNew: []records.Endpoint{ep("app7.example.org", "A", []string{"192.0.2.99"}, check)}},
		{Delete: []records.Endpoint{ep("app9.example.org", "A", []string{"192.0.2.14"}, check)}},
	} {
		if _, err := writer.Apply("eu", ch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := replica.Install(writer.Set("eu")); err != nil {
		t.Fatal(err)
	}
	if _, ok := replica.State().Since("eu", m.prev.Head("eu")); ok {
		t.Fatal("the replica's log reaches back: the test does not test an install")
	}
	full := allocated(func() { New(cfg).Merge(replica.State()) })
	var names1 []*Name
	inc := allocated(func() { names1, _ = m.Merge(replica.State()) })
	if inc > full/4 {
		t.Errorf("merging two changed names of 5,000 allocated %d bytes, a whole merge %d: it read every name again", inc, full)
	}
	for _, n := range names1 {
		switch old := before[n.FQDN]; {
		case n.FQDN == "app7.example.org.":
			if n == old {
				t.Errorf("%s changed but is the same *Name", n.FQDN)
			}
		case n.FQDN == "app9.example.org.":
			t.Errorf("%s was removed but is still served", n.FQDN)
		case n != old:
			t.Errorf("%s did not change but is a new *Name", n.FQDN)
		}
	}
	want, _ := Merge(cfg, replica.State())
	if got, want := mergeSummary(names1, nil), mergeSummary(want, nil); !slices.Equal(got, want) {
		t.Errorf("Merger:\n%s\nMerge:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// allocated is the bytes fn allocates.
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}
