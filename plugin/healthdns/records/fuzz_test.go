package records

import (
	"testing"
)

// FuzzReadLog feeds log recovery anything: it must not panic, must keep
// only whole, checksummed entries, and what it keeps must read the same
// again.
func FuzzReadLog(f *testing.F) {
	eps, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("app.gslb.example.com", "192.0.2.1")}})
	e1, _ := frame(kindEpoch, epochEntry{Epoch: 7})
	e2, _ := frame(kindSet, Set{Owner: "eu", Version: Version{7, 1}, Endpoints: eps})
	e3, _ := frame(kindSnapshot, snapshotEntry{Format: snapFormat, Epoch: 7, Sets: []Set{{Owner: "eu", Version: Version{7, 1}, Endpoints: eps}}})
	f.Add(append(append([]byte{}, e1...), e2...))
	f.Add(e3)
	f.Add(e2[:len(e2)-3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, good, err := readLog(b)
		if err != nil {
			return
		}
		if good > len(b) {
			t.Fatalf("valid prefix %d of %d bytes", good, len(b))
		}
		again, good2, err := readLog(b[:good])
		if err != nil || good2 != good || len(again) != len(entries) {
			t.Fatalf("the valid prefix reads differently: %v %d/%d %d/%d", err, good2, good, len(again), len(entries))
		}
		for _, e := range entries {
			if e.kind == kindSet {
				if err := e.set.Validate(); err != nil {
					t.Fatalf("kept an invalid set: %v", err)
				}
			}
		}
	})
}
