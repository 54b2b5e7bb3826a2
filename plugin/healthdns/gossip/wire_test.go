package gossip

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

func wireSeeds(t testing.TB) [][]byte {
	ts := []CatalogTarget{
		testTarget(t, "192.0.2.1", "http://192.0.2.1/healthz host app.example.com status 200 204"),
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
	// A view with a gap, so the state carries newer rows and pending seqs.
	s.applyObservations(&observations{Node: "agent-2", Epoch: 9, Seq: 3, Pairs: []pair{{ts[1].ID, health.Up}}}, t0)
	seeds := [][]byte{hb.encode(), leaving.encode(), pages[0].encode(), s.full(t0).encode()}
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
	case *recordPage:
		return m.encode()
	}
	return nil
}

func TestWireLimits(t *testing.T) {
	if _, err := decodeMessage(make([]byte, maxInbound+1)); err != errTooLarge {
		t.Errorf("oversized message: %v", err)
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
		if m, err := decodeMessage(b); err == nil {
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
