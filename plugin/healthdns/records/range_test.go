package records

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
)

// RangeName finds one name's records among names that sort around it,
// RangeKeys lists every key in order, and neither the one nor
// RangeServed carries labels, which the answers never read.
func TestRangeName(t *testing.T) {
	st := Memory(Options{})
	labels := map[string]string{"owner": "eu"}
	var c Changes
	for _, n := range []string{"a.example.org", "a-b.example.org", "a.example.org.x", "b.example.org"} {
		c.Create = append(c.Create, Endpoint{DNSName: n, RecordType: TypeTXT, Targets: []string{`"t"`}, Labels: labels})
	}
	c.Create = append(c.Create, Endpoint{DNSName: "a.example.org", RecordType: TypeA, Targets: []string{"192.0.2.1"}, Labels: labels},
		Endpoint{DNSName: "a.example.org", RecordType: TypeA, SetIdentifier: "x", Targets: []string{"192.0.2.2"}, Labels: labels})
	if _, err := st.Apply("eu", c); err != nil {
		t.Fatal(err)
	}
	s := st.State()
	var got []Key
	s.RangeName("eu", "a.example.org", func(e Endpoint) bool {
		if e.Labels != nil {
			t.Errorf("%s has labels", e.Key())
		}
		got = append(got, e.Key())
		return true
	})
	want := []Key{{"a.example.org", TypeA, ""}, {"a.example.org", TypeA, "x"}, {"a.example.org", TypeTXT, ""}}
	if !slices.Equal(got, want) {
		t.Errorf("RangeName: %v, want %v", got, want)
	}
	var keys []Key
	s.RangeKeys("eu", func(k Key) bool { keys = append(keys, k); return true })
	var all []Key
	s.Range("eu", func(e Endpoint) bool {
		if e.Labels["owner"] != "eu" {
			t.Errorf("Range: %s lost its labels", e.Key())
		}
		all = append(all, e.Key())
		return true
	})
	if !slices.Equal(keys, all) || len(keys) != 6 {
		t.Errorf("RangeKeys: %v, Range: %v", keys, all)
	}
	n := 0
	s.RangeServed("eu", func(e Endpoint) bool { n++; return e.Labels == nil })
	if n != 6 {
		t.Errorf("RangeServed stopped after %d, or gave labels", n)
	}
	if _, ok := s.Lookup("eu", Key{"a.example.org", "MX", ""}); ok {
		t.Errorf("found a type never stored")
	}
}

// The log of recent changes drops its oldest in O(1), and does not keep
// what it dropped: a bulk change too large for it is let go at once, and
// the dropped one-record changes its array holds stay under half the
// log's limit.
func TestLogLetsDroppedChangesGo(t *testing.T) {
	st := Memory(Options{})
	var c Changes
	for i := range 2000 {
		c.Create = append(c.Create, Endpoint{DNSName: fmt.Sprintf("app%d.example.org", i), RecordType: TypeTXT, Targets: []string{`"registry record of some length, as ExternalDNS writes them"`}})
	}
	if _, err := st.Apply("eu", c); err != nil {
		t.Fatal(err)
	}
	o := st.State().owners["eu"]
	if cap(o.log.entries) != 0 {
		t.Fatalf("a bulk change past the log's limit: the log holds %d changes, its array %d", len(o.log.entries), cap(o.log.entries))
	}
	for i := range 3000 {
		e := Endpoint{DNSName: fmt.Sprintf("app%d.example.org", i%2000), RecordType: TypeTXT, Targets: []string{fmt.Sprintf(`"v=%d"`, i)}}
		if _, err := st.Apply("eu", Changes{UpdateNew: []Endpoint{e}}); err != nil {
			t.Fatal(err)
		}
	}
	o = st.State().owners["eu"]
	limit := min(maxLogBytes, max(minLogBytes, o.size/2))
	if o.log.bytes > limit || o.log.dead > limit/2 {
		t.Errorf("log of %d changes, %d bytes, %d bytes dropped but held (limit %d)", len(o.log.entries), o.log.bytes, o.log.dead, limit)
	}
	if cs, ok := st.State().Since("eu", o.log.from); !ok || len(cs) != len(o.log.entries) || cs[len(cs)-1].To != o.head {
		t.Errorf("Since from the log's first change: %d changes, %v", len(cs), ok)
	}
}

// A replica thousands of one-record changes behind a large owner (a
// burst of ExternalDNS updates) still catches up by changes, not by the
// owner's records whole, which cost the owner's size on the wire, on disk
// and in memory each time; and the log holds them at their encoded size.
func TestLogReachesBackByBytesNotCount(t *testing.T) {
	st := Memory(Options{})
	var c Changes
	for i := range 20000 {
		c.Create = append(c.Create, Endpoint{DNSName: fmt.Sprintf("app%d.c1.example.org", i), RecordType: TypeA, Targets: []string{"192.0.2.1"},
			Labels: map[string]string{"owner": "cluster1", "resource": fmt.Sprintf("service/default/app%d", i)}})
	}
	if _, err := st.Apply("cluster1", c); err != nil {
		t.Fatal(err)
	}
	from := st.Head("cluster1")
	const changes = 5000
	for i := range changes {
		e := Endpoint{DNSName: fmt.Sprintf("app%d.c1.example.org", i), RecordType: TypeA, Targets: []string{fmt.Sprintf("192.0.2.%d", i%200+2)},
			Labels: map[string]string{"owner": "cluster1", "resource": fmt.Sprintf("service/default/app%d", i)}}
		if _, err := st.Apply("cluster1", Changes{UpdateNew: []Endpoint{e}}); err != nil {
			t.Fatal(err)
		}
	}
	cs, ok := st.State().Since("cluster1", from)
	if !ok || len(cs) != changes {
		t.Fatalf("Since %d one-record changes back: %d changes, %v; want them all, not the whole state", changes, len(cs), ok)
	}
	want, _ := st.State().Lookup("cluster1", Key{Name: "app4999.c1.example.org", Type: TypeA})
	if got := cs[len(cs)-1]; got.To != st.Head("cluster1") || len(got.Put) != 1 || !got.Put[0].equal(want) {
		t.Errorf("the last change: %+v, want the record %+v up to the head", got, want)
	}
	o := st.State().owners["cluster1"]
	if limit := min(maxLogBytes, o.size/2); o.log.bytes > limit {
		t.Errorf("the log holds %d bytes, past half the state (%d)", o.log.bytes, limit)
	}
}

// ChangedNames finds what differs between two states of an owner that
// no log links (the owner installed whole): the names of records put,
// replaced and removed, and no other.
func TestChangedNames(t *testing.T) {
	a := func(name, addr string) Endpoint {
		return Endpoint{DNSName: name, RecordType: TypeA, Targets: []string{addr}}
	}
	w := Memory(Options{})
	var c Changes
	for i := range 500 {
		c.Create = append(c.Create, a(fmt.Sprintf("app%03d.example.org", i), "192.0.2.1"))
	}
	if _, err := w.Apply("eu", c); err != nil {
		t.Fatal(err)
	}
	old := w.State()
	if _, err := w.Apply("eu", Changes{
		Create:    []Endpoint{a("new.example.org", "192.0.2.9"), a("app000.example.org", "192.0.2.9")}, // app000 has an A already: replaced
		UpdateNew: []Endpoint{a("app250.example.org", "192.0.2.7")},
		Delete:    []Endpoint{a("app499.example.org", "192.0.2.1"), a("app100.example.org", "192.0.2.1")},
	}); err != nil {
		t.Fatal(err)
	}
	// As a peer sees it: installed whole, no log back to old.
	r := Memory(Options{})
	if _, err := r.Install(w.Set("eu")); err != nil {
		t.Fatal(err)
	}
	var got []string
	r.State().ChangedNames(old, "eu", func(n string) { got = append(got, n) })
	slices.Sort(got)
	want := []string{"app000.example.org", "app100.example.org", "app250.example.org", "app499.example.org", "new.example.org"}
	if !slices.Equal(got, want) {
		t.Errorf("changed names %v, want %v", got, want)
	}
	got = nil
	old.ChangedNames(State{}, "eu", func(n string) { got = append(got, n) })
	if len(got) != 500 {
		t.Errorf("against nothing: %d names, want every one of the 500", len(got))
	}
}

// The log of recent changes shares each record it put with the state's
// tree: 10,000 one-record changes to a 20,000-record owner grow the heap
// by about 250 bytes a change (the log's entry about 60, the tree's
// copied nodes the rest), not by a copy of each record too (530 before:
// 28 MB across a server's 10 owners after a storm), and Since still
// gives back every change as it was made, removals too.
func TestLogSharesRecordsWithTheTree(t *testing.T) {
	rec := registryTXT
	st := withRecords(t, "cluster1", 20000, func(i int) Endpoint { return rec(i, 0) })
	from := st.Head("cluster1")
	at := st.State().Set("cluster1")
	const changes = 10000
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := range changes {
		if _, err := st.Apply("cluster1", Changes{UpdateNew: []Endpoint{rec(i, 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	grew := int64(heap()) - int64(before)
	t.Logf("%d one-record changes grew the heap by %d bytes a change", changes, grew/changes)
	if per := grew / changes; per > 400 {
		t.Errorf("%d one-record changes grew the heap by %d bytes, %d a change; want the log to share the records it put", changes, grew, per)
	}
	gone := Endpoint{DNSName: "a-app19999.c1.example.org", RecordType: TypeTXT}
	if _, err := st.Apply("cluster1", Changes{Delete: []Endpoint{gone}}); err != nil {
		t.Fatal(err)
	}
	cs, ok := st.State().Since("cluster1", from)
	if !ok || len(cs) != changes+1 {
		t.Fatalf("Since: %d changes, %v; want %d", len(cs), ok, changes+1)
	}
	for i, c := range cs[:changes] {
		want, err := Normalize(rec(i, 1))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Put) != 1 || !c.Put[0].equal(want) || len(c.Remove) != 0 {
			t.Fatalf("change %d: %+v, want the put of %s", i, c, rec(i, 1).DNSName)
		}
	}
	last := cs[changes]
	if len(last.Put) != 0 || len(last.Remove) != 1 || last.Remove[0] != gone.Key() || last.To != st.Head("cluster1") {
		t.Errorf("the removal: %+v", last)
	}
	// A replica at from that applies them ends where the writer is.
	r := Memory(Options{})
	if _, err := r.Install(at); err != nil {
		t.Fatal(err)
	}
	applied, ahead, err := r.Merge(cs...)
	if err != nil || len(applied) != len(cs) || len(ahead) != 0 || r.Head("cluster1") != st.Head("cluster1") {
		t.Errorf("a replica applied %d of %d (%d ahead, %v), head %s, want %s", len(applied), len(cs), len(ahead), err, r.Head("cluster1"), st.Head("cluster1"))
	}
}

// A run of changes stored in one Merge writes one copy of the owner's
// tree, not one a change: a reader's state from before is untouched, and
// a run that fails part way leaves the store as it was.
func TestMergeRunLeavesReadersAlone(t *testing.T) {
	rec := func(i, v int) Endpoint {
		return Endpoint{DNSName: fmt.Sprintf("app%d.example.org", i), RecordType: TypeA, Targets: []string{fmt.Sprintf("192.0.2.%d", v)}}
	}
	w := withRecords(t, "eu", 1000, func(i int) Endpoint { return rec(i, 1) })
	r := Memory(Options{})
	if _, err := r.Install(w.State().Set("eu")); err != nil {
		t.Fatal(err)
	}
	var run []Change
	for i := range 300 {
		ch, err := w.Apply("eu", Changes{UpdateNew: []Endpoint{rec((i*37)%1000, 2)}})
		if err != nil {
			t.Fatal(err)
		}
		run = append(run, ch)
	}
	before := r.State()
	head := before.Head("eu")

	bad := slices.Clone(run)
	bad[200].To.Digest++ // a change that does not make what it says
	if _, _, err := r.Merge(bad...); err == nil {
		t.Fatal("a run with a bad change was stored")
	}
	if got := r.Head("eu"); got != head {
		t.Fatalf("after a failed run the head is %s, want %s", got, head)
	}
	if _, _, err := r.Merge(run...); err != nil {
		t.Fatal(err)
	}
	if r.Head("eu") != w.Head("eu") {
		t.Fatalf("after the run the head is %s, want %s", r.Head("eu"), w.Head("eu"))
	}
	for i := range 1000 {
		e, ok := before.Lookup("eu", rec(i, 1).Key())
		if !ok || e.Targets[0] != "192.0.2.1" {
			t.Fatalf("the state read before the run changed under its reader: %s is %+v", rec(i, 1).DNSName, e)
		}
	}
	want, got := w.State().Set("eu").Endpoints, r.State().Set("eu").Endpoints
	if len(want) != len(got) || Digest(want) != Digest(got) {
		t.Errorf("the replica holds %d records (digest %x), the writer %d (%x)", len(got), Digest(got), len(want), Digest(want))
	}
}

// registryTXT is an owner's ExternalDNS TXT registry record i, version v.
func registryTXT(i, v int) Endpoint {
	return Endpoint{DNSName: fmt.Sprintf("a-app%d.c1.example.org", i), RecordType: TypeTXT,
		Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=cluster1,external-dns/resource=ingress/default/app%d,v=%d"`, i, v)},
		Labels:  map[string]string{"owner": "cluster1", "resource": fmt.Sprintf("ingress/default/app%d", i)}}
}

// withRecords is a store whose owner holds n records, record(0) to
// record(n-1).
func withRecords(tb testing.TB, owner string, n int, record func(int) Endpoint) *Store {
	tb.Helper()
	st := Memory(Options{})
	var c Changes
	for i := range n {
		c.Create = append(c.Create, record(i))
	}
	if _, err := st.Apply(owner, c); err != nil {
		tb.Fatal(err)
	}
	return st
}
