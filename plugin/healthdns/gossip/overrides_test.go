package gossip

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/override"
)

func testOverride(t *testing.T, sel string, st override.State) override.Entry {
	t.Helper()
	s, err := override.ParseSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return override.Entry{Selector: s, State: st, Reason: "maintenance window", Who: "alice@ops",
		At: time.Unix(0, 1_800_000_000_123_456_789).UTC(), Node: "dns1", Until: time.Unix(0, 1_800_003_600_000_000_000).UTC()}
}

func TestOverrideWire(t *testing.T) {
	e := testOverride(t, "owner=east,name=app.*", override.Drain)
	b := encodeOverride(e)
	if len(b) > maxBroadcast {
		t.Fatalf("an override of %d bytes does not fit a gossip message", len(b))
	}
	_, es, err := decodeOverrides(b)
	if err != nil || len(es) != 1 || es[0] != e {
		t.Fatalf("round trip: %v, %v", es, err)
	}
	// The longest entry still fits one packet.
	long := e
	long.Selector.Name = strings.Repeat("a", 250)
	long.Reason, long.Who, long.Node = strings.Repeat("r", override.MaxReasonLen), strings.Repeat("w", override.MaxWhoLen), strings.Repeat("n", override.MaxNodeLen)
	if err := long.Validate(); err != nil {
		t.Fatal(err)
	}
	if b := encodeOverride(long); len(b) > maxBroadcast {
		t.Errorf("the longest override is %d bytes, over %d", len(b), maxBroadcast)
	}

	inner := (&fullState{Sender: "dns1"}).encode()
	wrapped := wrapOverrides(inner, []override.Entry{e, testOverride(t, "192.0.2.1", override.None)})
	got, es, err := decodeOverrides(wrapped)
	if err != nil || !bytes.Equal(got, inner) || len(es) != 2 {
		t.Fatalf("state round trip: %d bytes inner, %v, %v", len(got), es, err)
	}
	if !bytes.Equal(wrapOverrides(inner, nil), inner) {
		t.Error("a state with no overrides is wrapped")
	}
	// Every truncation and a bad state byte are refused, never a panic.
	for i := range len(wrapped) {
		if _, _, err := decodeOverrides(wrapped[:i]); err == nil {
			t.Errorf("truncated at %d of %d: accepted", i, len(wrapped))
		}
	}
	bad := bytes.Clone(b)
	bad[2+1+len(e.Key())] = 9
	if _, _, err := decodeOverrides(bad); err == nil {
		t.Error("state 9 accepted")
	}
}

func FuzzDecodeOverrides(f *testing.F) {
	e := override.Entry{Selector: override.Selector{Addr: "192.0.2.1"}, State: override.Down, At: time.Unix(1, 0), Node: "n"}
	f.Add(encodeOverride(e))
	f.Add(wrapOverrides((&fullState{Sender: "s"}).encode(), []override.Entry{e}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, es, err := decodeOverrides(b)
		if err != nil {
			return
		}
		for _, e := range es {
			if err := e.Validate(); err != nil {
				t.Errorf("decoded an invalid entry: %v", err)
			}
		}
	})
}
