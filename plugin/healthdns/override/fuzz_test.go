package override

import (
	"encoding/json"
	"net/netip"
	"testing"
)

// Selectors come from operators and peers: never a panic, and what
// parses is canonical (its text parses back to itself).
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"192.0.2.10", "app.gslb.example.com/*", "*/10.1.*", "owner=east,name=app.*", "region=eu", "name=[a", "a=b=c", ",,", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		again, err := ParseSelector(sel.String())
		if err != nil || again != sel {
			t.Fatalf("%q -> %q -> %q, %v", s, sel, again, err)
		}
		sel.Match(Target{Name: "app.gslb.example.com.", Addr: netip.MustParseAddr("192.0.2.10"), Owner: "east"})
	})
}

// Entries come from the data directory and the control API as JSON.
func FuzzEntryJSON(f *testing.F) {
	f.Add(`{"selector":"owner=east","state":"drain","reason":"x","who":"a","set":"2026-12-02T03:00:00Z","node":"dns1","until":"2026-12-02T04:00:00Z"}`)
	f.Add(`{"selector":"192.0.2.1","state":"none","set":"2026-12-02T03:00:00Z","node":"dns1","until":"2026-12-02T03:00:00Z"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var e Entry
		if json.Unmarshal([]byte(s), &e) != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded an invalid entry: %v", err)
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Entry
		if err := json.Unmarshal(b, &back); err != nil || !back.At.Equal(e.At) || back.Key() != e.Key() || back.State != e.State {
			t.Fatalf("%s -> %s -> %v, %v", s, b, back, err)
		}
	})
}
