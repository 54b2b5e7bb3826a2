package gossip

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// recordSet builds a valid Set of owner with n A records and a TXT each.
func recordSet(t testing.TB, owner string, epoch, seq uint64, n int, salt string) records.Set {
	t.Helper()
	var c records.Changes
	for i := range n {
		c.Create = append(c.Create,
			records.Endpoint{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: "A", Targets: []string{fmt.Sprintf("192.0.2.%d", i%250+1)},
				RecordTTL: 30, Labels: map[string]string{"owner": owner, "resource": "service/default/app"},
				ProviderSpecific: []records.Property{{Name: records.PropWeight, Value: "2"}, {Name: records.PropCheck, Value: "http://{addr}/healthz"}}},
			records.Endpoint{DNSName: fmt.Sprintf("a-app%d.gslb.example.com", i), RecordType: "TXT",
				Targets: []string{`"heritage=external-dns,external-dns/owner=` + owner + `,external-dns/resource=service/default/app` + salt + `"`}})
	}
	eps, err := records.ApplyChanges(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	s := records.Set{Owner: owner, Version: records.Version{Epoch: epoch, Seq: seq}, Endpoints: eps}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

func sameSet(a, b records.Set) bool {
	return a.Owner == b.Owner && a.Version == b.Version && a.Digest() == b.Digest()
}

func TestRecordPagesAssemble(t *testing.T) {
	src, dst := newRecordState(), newRecordState()
	set := recordSet(t, "eu", 10, 1, 200, "") // tens of pages
	pages, err := src.publish(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 10 {
		t.Fatalf("%d pages for %d bytes", len(pages), set.Size())
	}
	for _, p := range pages {
		if b := p.encode(); len(b) > maxBroadcast {
			t.Fatalf("page of %d bytes", len(b))
		}
	}
	// Out of order, with duplicates: taken when the last page is in.
	order := rand.Perm(len(pages))
	for i, k := range order {
		m, err := decodeMessage(pages[k].encode())
		if err != nil {
			t.Fatal(err)
		}
		fresh, changed := dst.applyPage(m.(*recordPage))
		if !fresh || changed != (i == len(order)-1) {
			t.Fatalf("page %d (%d of %d): fresh %v changed %v", k, i, len(order), fresh, changed)
		}
		if fresh, _ := dst.applyPage(m.(*recordPage)); fresh {
			t.Fatal("a duplicate page was fresh")
		}
	}
	got := dst.list()
	if len(got) != 1 || !sameSet(got[0], set) {
		t.Fatalf("assembled %+v", got)
	}
	// Publishing it again sends nothing; an older version is not news.
	if again, _ := src.publish(set); again != nil {
		t.Error("republished the same set")
	}
	old, _ := newRecordState().publish(recordSet(t, "eu", 9, 7, 1, ""))
	if fresh, _ := dst.applyPage(old[0]); fresh {
		t.Error("a page of an older set was fresh")
	}
}

func TestRecordPagesNewerReplacesAssembly(t *testing.T) {
	dst := newRecordState()
	v1, _ := newRecordState().publish(recordSet(t, "eu", 1, 1, 50, ""))
	v2, _ := newRecordState().publish(recordSet(t, "eu", 1, 2, 5, ""))
	dst.applyPage(v1[0])
	for _, p := range v2 {
		dst.applyPage(p)
	}
	// The rest of v1 is older than what is known now.
	for _, p := range v1[1:] {
		if fresh, _ := dst.applyPage(p); fresh {
			t.Fatal("a page of a superseded set was fresh")
		}
	}
	if got := dst.list(); len(got) != 1 || got[0].Version.Seq != 2 {
		t.Fatalf("got %+v", got)
	}
}

func TestRecordPagesTwoWritersOneVersion(t *testing.T) {
	// Two writers of one owner published different Sets under one
	// version: their pages are never mixed, and every node keeps the one
	// with the higher digest, whatever the order.
	a := recordSet(t, "eu", 4, 4, 30, "-a")
	b := recordSet(t, "eu", 4, 4, 30, "-b")
	pa, _ := newRecordState().publish(a)
	pb, _ := newRecordState().publish(b)
	win := a
	if b.Digest() > a.Digest() {
		win = b
	}
	for trial := range 20 {
		dst := newRecordState()
		all := append(append([]*recordPage{}, pa...), pb...)
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for _, p := range all {
			dst.applyPage(p)
		}
		if got := dst.list(); len(got) != 1 || !sameSet(got[0], win) {
			t.Fatalf("trial %d: kept %+v", trial, got)
		}
	}
}

func TestRecordPagesForged(t *testing.T) {
	// Pages whose content is not the Set their digest names are dropped.
	set := recordSet(t, "eu", 1, 1, 3, "")
	pages, _ := newRecordState().publish(set)
	bad := *pages[0]
	bad.Chunk = bytes.Replace(bad.Chunk, []byte("192.0.2.1"), []byte("192.0.2.9"), 1)
	bad.Pages = 1
	dst := newRecordState()
	if _, changed := dst.applyPage(&bad); changed || len(dst.list()) != 0 {
		t.Fatal("took a forged set")
	}
}

func TestRecordStateFull(t *testing.T) {
	src := newRecordState()
	var sets []records.Set
	for i := range 5 {
		s := recordSet(t, fmt.Sprintf("owner%d", i), 1, 1, 20, "")
		sets = append(sets, s)
		if _, err := src.publish(s); err != nil {
			t.Fatal(err)
		}
	}
	// All fit.
	dst := newRecordState()
	m, err := decodeRecordState(src.full("n1", maxRecordState).encode())
	if err != nil {
		t.Fatal(err)
	}
	if !dst.mergeFull(m) || len(dst.list()) != 5 {
		t.Fatalf("merged %d sets", len(dst.list()))
	}
	if dst.mergeFull(m) {
		t.Error("merging the same state again changed something")
	}
	// A budget of two Sets: every Set still goes out within three states.
	dst = newRecordState()
	budget := 2*sets[0].Size() + 10
	for range 3 {
		m := src.full("n1", budget)
		if len(m.Sets) > 2 {
			t.Fatalf("%d sets over a budget of 2", len(m.Sets))
		}
		dst.mergeFull(m)
	}
	if got := dst.list(); len(got) != 5 {
		t.Fatalf("after 3 states of 2: %d sets", len(got))
	}
	for i, s := range dst.list() {
		if !sameSet(s, sets[i]) {
			t.Errorf("set %d differs", i)
		}
	}
}

func TestRecordSetTooLarge(t *testing.T) {
	big := strings.Repeat("x", records.MaxTXTLen-2)
	var c records.Changes
	for i := range 600 {
		c.Create = append(c.Create, records.Endpoint{DNSName: fmt.Sprintf("t%d.example.com", i), RecordType: "TXT", Targets: []string{big}})
	}
	eps, err := records.ApplyChanges(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	s := records.Set{Owner: "eu", Version: records.Version{Epoch: 1, Seq: 1}, Endpoints: eps}
	if s.Validate() == nil {
		t.Fatal("a Set over MaxSetSize validated")
	}
	if _, err := newRecordState().publish(s); err == nil {
		t.Fatal("published a Set over the limit")
	}
}

func recordSeeds(t testing.TB) [][]byte {
	set := recordSet(t, "eu", 1_700_000_000_000_000, 3, 12, "")
	set.Endpoints = append(set.Endpoints[:0:0], set.Endpoints...)
	small := recordSet(t, "us", 5, 1, 1, "")
	cname, _ := records.ApplyChanges(nil, records.Changes{Create: []records.Endpoint{
		{DNSName: "www.gslb.example.com", RecordType: "CNAME", Targets: []string{"lb.example.net"}, SetIdentifier: "eu"},
		{DNSName: "app.gslb.example.com", RecordType: "AAAA", Targets: []string{"2001:db8::1", "2001:db8::2"}},
	}})
	st := newRecordState()
	st.publish(set)
	st.publish(small)
	st.publish(records.Set{Owner: "ap", Version: records.Version{Epoch: 2, Seq: 2}, Endpoints: cname})
	st.publish(records.Set{Owner: "gone", Version: records.Version{Epoch: 2, Seq: 9}})
	pages, _ := paginateSet(set, set.Digest())
	rs := st.full("server-1", maxRecordState).encode()
	obs := (&fullState{Sender: "server-1"}).encode()
	seeds := [][]byte{rs, encodeStates(obs, rs), encodeStates(obs)}
	for _, p := range pages {
		seeds = append(seeds, p.encode())
	}
	return seeds
}

func TestRecordWireRoundTrip(t *testing.T) {
	for i, b := range recordSeeds(t) {
		got, err := decodeAny(b)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if again := reencodeAny(got); !bytes.Equal(again, b) {
			t.Errorf("seed %d: re-encoded differs", i)
		}
	}
	for _, bad := range [][]byte{
		{msgRecordState, wireVersion},
		{msgStates, wireVersion, 3},
		{msgStates, wireVersion, 1, 2, msgObservations, wireVersion},
		append(appendString(appendHeader(nil, msgRecordState), "n"), 1, 2, 'e', 'u', 0, 0), // version 0.0
	} {
		if _, err := decodeAny(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// decodeAny decodes a gossip message, a push/pull state, a record state or
// a states envelope.
func decodeAny(b []byte) (any, error) {
	if len(b) == 0 {
		return decodeMessage(b)
	}
	switch b[0] {
	case msgState:
		return decodeState(b)
	case msgRecordState:
		return decodeRecordState(b)
	case msgStates:
		parts, err := decodeStates(b)
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range parts {
			m, err := decodeAny(p)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	return decodeMessage(b)
}

func reencodeAny(m any) []byte {
	switch m := m.(type) {
	case *recordPage:
		return m.encode()
	case *recordStateMsg:
		return m.encode()
	case []any:
		var parts [][]byte
		for _, p := range m {
			parts = append(parts, reencodeAny(p))
		}
		return encodeStates(parts...)
	}
	return reencode(m)
}

// FuzzDecodeRecords feeds the record decoders anything: they must not
// panic, and what they accept must survive a re-encode unchanged.
func FuzzDecodeRecords(f *testing.F) {
	for _, s := range recordSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeAny(b)
		if err != nil {
			return
		}
		again := reencodeAny(m)
		m2, err := decodeAny(again)
		if err != nil {
			t.Fatalf("re-encoded does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
		if !bytes.Equal(reencodeAny(m2), again) {
			t.Fatal("encoding is not stable")
		}
	})
}
