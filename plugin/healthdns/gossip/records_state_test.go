package gossip

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// ownerChanges writes n changes of owner on a memory store, as its writer
// would, and returns them and the store.
func ownerChanges(t testing.TB, owner string, n int) ([]records.Change, *records.Store) {
	t.Helper()
	w := records.Memory(records.Options{})
	var out []records.Change
	for i := range n {
		c := records.Changes{Create: []records.Endpoint{{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: "A", Targets: []string{"192.0.2.1"},
			Labels: map[string]string{"owner": owner}, ProviderSpecific: []records.Property{{Name: records.PropTier, Value: "1"}}}}}
		if i >= 2 {
			c.Delete = []records.Endpoint{{DNSName: fmt.Sprintf("app%d.gslb.example.com", i-2), RecordType: "A"}}
		}
		ch, err := w.Apply(owner, c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ch)
	}
	return out, w
}

func recordSeeds(t testing.TB) [][]byte {
	cs, w := ownerChanges(t, "eu", 5)
	cname, err := w.Apply("eu", records.Changes{Create: []records.Endpoint{
		{DNSName: "www.gslb.example.com", RecordType: "CNAME", Targets: []string{"lb.example.net"}, SetIdentifier: "eu"},
		{DNSName: "app.gslb.example.com", RecordType: "AAAA", Targets: []string{"2001:db8::1", "2001:db8::2"}},
		{DNSName: "txt.gslb.example.com", RecordType: "TXT", Targets: []string{`"heritage=external-dns"`}, RecordTTL: 30},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cs = append(cs, cname)
	heads := (&recordHeads{Sender: "server-1", All: true, Heads: []records.OwnerHead{{Owner: "eu", Head: cs[2].To}, {Owner: "us"}}}).encode()
	seeds := [][]byte{heads, encodeStates((&fullState{Sender: "server-1"}).encode(), heads)}
	for _, c := range cs {
		seeds = append(seeds, encodeRecordChange(c))
	}
	seeds = append(seeds, encodeRecordDeltas("server-1", cs)...)
	seeds = append(seeds, encodeRecordParts("server-1", w.Set("eu"))...)
	return seeds
}

func TestRecordWireRoundTrip(t *testing.T) {
	for i, b := range recordSeeds(t) {
		got, err := decodeAny(b)
		if err != nil {
			t.Fatalf("seed %d (type %d): %v", i, b[0], err)
		}
		if again := reencodeAny(got); !bytes.Equal(again, b) {
			t.Errorf("seed %d (type %d): re-encoded differs", i, b[0])
		}
	}
	for _, bad := range [][]byte{
		{msgRecordDelta, wireVersion},
		{msgStates, wireVersion, 3},
		{msgStates, wireVersion, 1, 2, msgObservations, wireVersion},
		append(appendString(appendHeader(nil, msgRecordHeads), "n"), 2, 0), // unknown flag
		append(appendString(appendHeader(nil, msgRecordDelta), "n"), 0),    // no change
	} {
		if _, err := decodeAny(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// TestRecordParts: a large owner is cut into parts that each fit a
// direct message, and they assemble back in any order.
func TestRecordParts(t *testing.T) {
	w := records.Memory(records.Options{})
	var c records.Changes
	for i := range 40000 {
		c.Create = append(c.Create, records.Endpoint{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: "TXT",
			Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=eu,external-dns/resource=ingress/default/app%d"`, i)}})
	}
	if _, err := w.Apply("eu", c); err != nil {
		t.Fatal(err)
	}
	set := w.Set("eu")
	parts := encodeRecordParts("s1", set)
	if len(parts) < 2 {
		t.Fatalf("%d parts for %d bytes of records", len(parts), set.Size())
	}
	r := newRecordState(RoleServer)
	now := time.Now()
	for i := len(parts) - 1; i >= 0; i-- {
		m, err := decodeAny(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(parts[i]) > maxRecordDirect {
			t.Errorf("part %d of %d bytes", i, len(parts[i]))
		}
		got, done := r.addPart(m.(*recordPart), now)
		if done != (i == 0) {
			t.Fatalf("part %d: done %v", i, done)
		}
		if done {
			if got.Head != set.Head || len(got.Endpoints) != len(set.Endpoints) || got.Validate() != nil {
				t.Fatalf("assembled %v, %d endpoints", got.Head, len(got.Endpoints))
			}
		}
	}
	// A part of an older head after a newer one began is dropped, and the
	// newer one replaces an older assembly.
	m0, _ := decodeAny(parts[0])
	p := m0.(*recordPart)
	r.addPart(p, now)
	newer := *p
	newer.Head.Version.Seq++
	r.addPart(&newer, now)
	if len(r.asm) != 1 {
		t.Errorf("%d assemblies after a newer head", len(r.asm))
	}
}

func TestRecordPending(t *testing.T) {
	cs, _ := ownerChanges(t, "eu", 6)
	r := newRecordState(RoleServer)
	now := time.Now()
	// 3, 5, 4 arrive before 1 and 2.
	for _, i := range []int{3, 5, 4} {
		if !r.addPending(cs[i], now) {
			t.Fatalf("change %d not news", i)
		}
	}
	if r.addPending(cs[5], now) {
		t.Error("a pending change twice is news")
	}
	if _, behind := r.behind["eu"]; !behind || r.wanted["eu"] != cs[5].To {
		t.Error("not behind")
	}
	// Nothing follows the store's head yet.
	if chain := r.takePending("eu", cs[0].To); len(chain) != 0 {
		t.Errorf("chain from 1: %d", len(chain))
	}
	// Once 2 is in, 3, 4 and 5 follow in order.
	chain := r.takePending("eu", cs[2].To)
	if len(chain) != 3 || chain[0].To != cs[3].To || chain[2].To != cs[5].To {
		t.Fatalf("chain %d", len(chain))
	}
	if len(r.pending) != 0 || r.pendingBytes != 0 {
		t.Errorf("pending left: %d, %d bytes", len(r.pending), r.pendingBytes)
	}
	r.caughtUp("eu", cs[5].To)
	if len(r.behind)+len(r.wanted) != 0 {
		t.Error("still behind after catching up")
	}
}

// decodeAny decodes a gossip message, a push/pull state or a states
// envelope.
func decodeAny(b []byte) (any, error) {
	if len(b) == 0 {
		return decodeMessage(b)
	}
	switch b[0] {
	case msgState:
		return decodeState(b)
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
	case *recordChange:
		return encodeRecordChange(m.Change)
	case *recordHeads:
		return m.encode()
	case *recordDelta:
		return encodeRecordDeltas(m.Sender, m.Changes)[0]
	case *recordPart:
		b := appendHeader(nil, msgRecordPart)
		b = appendString(b, m.Sender)
		b = appendString(b, m.Owner)
		b = records.AppendHead(b, m.Head)
		b = appendUvarint(b, uint64(m.Part))
		b = appendUvarint(b, uint64(m.Parts))
		b = appendUvarint(b, uint64(len(m.Endpoints)))
		for _, e := range m.Endpoints {
			b = records.AppendEndpoint(b, e)
		}
		return b
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
