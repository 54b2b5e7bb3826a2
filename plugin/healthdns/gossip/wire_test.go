package gossip

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/override"
)

func wireSeeds(t testing.TB) [][]byte {
	ts := []CatalogTarget{
		testTarget(t, "192.0.2.1", "http://192.0.2.1/healthz host app.example.com status 200,204"),
		testTarget(t, "2001:db8::1", "tcp [2001:db8::1]:443", "https://[2001:db8::1]/ insecure"),
	}
	s := newState("server-1", "eu-west", RoleServer, 1_700_000_000_000_000, time.Minute)
	pages, err := s.publishCatalog(ts, "server-1")
	if err != nil {
		t.Fatal(err)
	}
	obs := s.publishObservations(map[TargetID]health.State{ts[0].ID: health.Up, ts[1].ID: health.Down}, 100)
	obs = append(obs, s.publishObservations(map[TargetID]health.State{ts[0].ID: health.Down}, 100)...)
	hb := s.heartbeat(t0)
	s.self.leaving = true
	leaving := s.heartbeat(t0)
	other := newState("agent-1", "us-east", RoleAgent, 5, time.Minute)
	other.publishObservations(map[TargetID]health.State{ts[0].ID: health.Up}, 100)
	other.heartbeat(t0)
	s.mergeFull(other.full(t0), t0)
	witness := newState("witness-1", "third", RoleWitness, 6, time.Minute)
	witness.every = 400 * time.Millisecond
	whb := witness.heartbeat(t0)
	s.applyHeartbeat(whb, t0)
	// A view with a gap, so the state carries newer rows and pending seqs,
	// and rows of targets in no catalog (extra IDs).
	s.applyObservations(&observations{Node: "agent-2", Epoch: 9, Seq: 3, Pairs: []pair{{ts[1].ID, health.Up}, {77, health.Down}}}, t0)
	s.applyObservations(&observations{Node: "agent-2", Epoch: 9, Seq: 1, Pairs: []pair{{42, health.Up}}}, t0)
	bulk := &observations{Node: "agent-3", Epoch: 4, Seq: 1, Pairs: []pair{{ts[0].ID, health.Up}, {ts[1].ID, health.Down}}, Bulk: true}
	dg := s.digest(t0)
	cs, _ := ownerChanges(t, "eu", 2)
	dg.Sets = []setVersion{{Owner: "eu", Version: cs[1].To.Version, Digest: cs[1].To.Digest}}
	seeds := [][]byte{hb.encode(), leaving.encode(), whb.encode(), pages[0].encode(), s.full(t0).encode(), bulk.encode(), dg.encode(),
		s.selfCatalog(t0).encode(), encodeRecordDeltas("server-1", cs)[0],
		(&reasonsMsg{Node: "agent-1", Epoch: 5, Seq: 1, Entries: []reasonEntry{{ts[1].ID, "tcp [2001:db8::1]:443: connect: connection refused"}, {ts[0].ID, ""}}}).encode()}
	for _, m := range obs {
		seeds = append(seeds, m.encode())
	}
	return append(seeds, garbage...)
}

var garbage = [][]byte{{}, {msgHeartbeat}, {msgObservations, wireVersion, 0xff}, {msgState, wireVersion, 1, 'x', 0xff, 0xff, 0xff, 0xff, 0x0f}}

func TestWireRoundTrip(t *testing.T) {
	for i, b := range wireSeeds(t) {
		var got any
		var err error
		if len(b) > 0 && b[0] == msgState {
			got, err = decodeState(b)
		} else {
			got, err = decodeMessage(b)
		}
		if i >= len(wireSeeds(t))-len(garbage) {
			if err == nil {
				t.Errorf("seed %d (%x): decoded", i, b)
			}
			continue
		}
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if again := reencode(got); !bytes.Equal(again, b) {
			t.Errorf("seed %d: re-encoded differs:\n%x\n%x", i, again, b)
		}
	}
}

func reencode(m any) []byte {
	switch m := m.(type) {
	case *observations:
		return m.encode()
	case *heartbeat:
		return m.encode()
	case *catalogPage:
		return m.encode()
	case *fullState:
		return m.encode()
	case *digest:
		return m.encode()
	case *recordDelta:
		return encodeRecordDeltas(m.Sender, m.Changes)[0]
	case *reasonsMsg:
		return m.encode()
	case []override.Entry:
		if len(m) == 1 {
			return encodeOverride(m[0])
		}
	}
	return nil // a kind without a test encoder: decoding it must not panic
}

// TestWireCompactState: a state names targets by their index in its
// table, so a view of every target costs about a byte a target, and a
// target's ID, which the receiver computes, is not sent.
func TestWireCompactState(t *testing.T) {
	var ts []CatalogTarget
	for i := range 300 {
		a := fmt.Sprintf("10.0.%d.%d", i>>8, i&255)
		ts = append(ts, testTarget(t, a, "tcp "+a+":80"))
	}
	srv := newState("srv", "", RoleServer, 1, time.Minute)
	srv.publishCatalog(ts, "srv")
	states := map[TargetID]health.State{}
	for i, c := range ts {
		states[c.ID] = health.State(1 + i%2)
	}
	catalogOnly := len(srv.full(t0).encode())
	srv.publishObservations(states, 100)
	withView := len(srv.full(t0).encode())
	if per := float64(withView-catalogOnly) / float64(len(ts)); per > 1.1 {
		t.Errorf("a view costs %.2f bytes a target", per)
	}
	if per := float64(catalogOnly) / float64(len(ts)); per > 40 {
		t.Errorf("a catalog target costs %.1f bytes", per)
	}
	fs, err := decodeState(srv.full(t0).encode())
	if err != nil {
		t.Fatal(err)
	}
	other := newState("other", "", RoleServer, 1, time.Minute)
	other.mergeFull(fs, t0)
	if got := other.peers["srv"].view.states(); !maps.Equal(got, states) {
		t.Error("view changed on the way")
	}
	slices.SortFunc(ts, func(a, b CatalogTarget) int { return cmpID(a.ID, b.ID) })
	if got := other.catalogUnion(func(string) bool { return false }); !slices.EqualFunc(got, ts, CatalogTarget.equal) {
		t.Error("catalog changed on the way")
	}
}

func TestWireLimits(t *testing.T) {
	if _, err := decodeMessage(make([]byte, maxInbound+1)); err != errTooLarge {
		t.Errorf("oversized message: %v", err)
	}
	// Direct messages may be larger; not gossip ones.
	big := (&observations{Node: "n", Epoch: 1, Seq: 1, Pairs: make([]pair, 1000), Bulk: true}).encode()
	if _, err := decodeMessage(big); err != nil {
		t.Errorf("bulk of %d bytes: %v", len(big), err)
	}
	big[0] = msgObservations
	if _, err := decodeMessage(big); err != errTooLarge {
		t.Errorf("gossip observations of %d bytes: %v", len(big), err)
	}
	// A state whose view points past its table.
	past := appendHeader(nil, msgState)
	past = appendString(past, "n")
	past = appendUvarint(past, 0) // no targets
	past = appendUvarint(past, 1) // one extra ID
	past = appendID(past, 7)
	past = appendUvarint(past, 1)
	past = (&peerInfo{Node: "o", Role: RoleAgent, Epoch: 1}).append(past, 1)
	past = appendUvarint(past, 1)      // complete
	past = appendUvarint(past, 0)      // latest
	past = appendUvarint(past, 1)      // one row
	past = appendUvarint(past, 2<<2|1) // index 1 of 1
	past = append(past, 0, 0)          // no newer rows, no pending
	if _, err := decodeState(past); err == nil || !strings.Contains(err.Error(), "index") {
		t.Errorf("row past the table: %v", err)
	}
	hb := (&heartbeat{Node: "n", Role: RoleAgent, Epoch: 1, Beat: 1}).encode()
	bad := append([]byte(nil), hb...)
	bad[1] = wireVersion + 1
	if _, err := decodeMessage(bad); err == nil {
		t.Error("future wire version decoded")
	}
	if _, err := decodeMessage(append(hb, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	role := (&heartbeat{Node: "n", Role: Role(4), Epoch: 1, Beat: 1}).encode()
	if _, err := decodeMessage(role); err == nil || !strings.Contains(err.Error(), "role") {
		t.Errorf("unknown role: %v", err)
	}
	// A count that claims more than the bytes left is refused before any
	// allocation.
	huge := appendHeader(nil, msgObservations)
	huge = appendString(huge, "n")
	huge = appendUvarint(huge, 1)
	huge = appendUvarint(huge, 1)
	huge = appendUvarint(huge, 1<<40)
	if _, err := decodeMessage(huge); err == nil {
		t.Error("huge count accepted")
	}
	m := meta{Role: RoleAgent, Observer: string(make([]byte, maxLabelLen))}.encode()
	if len(m) >= 512 {
		t.Errorf("node meta of %d bytes", len(m))
	}
	if got, err := decodeMeta(m); err != nil || got.Role != RoleAgent {
		t.Errorf("meta: %v %+v", err, got)
	}
}

// FuzzDecode feeds the decoders anything: they must not panic, and what
// they accept must survive a re-encode unchanged in meaning.
func FuzzDecode(f *testing.F) {
	for _, s := range wireSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeMeta(b)
		if m, err := decodeMessage(b); err == nil && reencode(m) != nil {
			m2, err := decodeMessage(reencode(m))
			if err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
			if !reflect.DeepEqual(m, m2) {
				t.Fatalf("round trip changed %+v into %+v", m, m2)
			}
		}
		if s, err := decodeState(b); err == nil {
			s2, err := decodeState(s.encode())
			if err != nil {
				t.Fatalf("re-encoded state does not decode: %v", err)
			}
			if !reflect.DeepEqual(s, s2) {
				t.Fatalf("round trip changed %+v into %+v", s, s2)
			}
		}
	})
}
