package records

import (
	"testing"
)

// FuzzReadLog feeds log recovery anything: it must not panic, and must
// either refuse (corruption) or keep only whole, checksummed entries, a
// valid prefix that reads the same again.
func FuzzReadLog(f *testing.F) {
	cs, _ := writerChanges(f, "eu", 3)
	var log []byte
	log = append(log, frame(kindEpoch, appendUvarint(nil, 7))...)
	for _, c := range cs {
		log = append(log, frame(kindChange, AppendChange(nil, c))...)
	}
	eps, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("app.gslb.example.com", "192.0.2.1")}})
	log = append(log, frame(kindInstall, appendSetBody(nil, Set{Owner: "us", Head: Head{Version{7, 1}, Digest(eps)}, Endpoints: eps}))...)
	f.Add(log)
	f.Add(log[:len(log)-3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, good, err := readLog("dir", b)
		if err != nil {
			return
		}
		if good > len(b) {
			t.Fatalf("valid prefix %d of %d bytes", good, len(b))
		}
		again, good2, err := readLog("dir", b[:good])
		if err != nil || good2 != good || len(again) != len(entries) {
			t.Fatalf("the valid prefix reads differently: %v %d/%d %d/%d", err, good2, good, len(again), len(entries))
		}
		for _, e := range entries {
			if e.kind == kindChange {
				if err := e.change.validate(false); err != nil {
					t.Fatalf("kept an invalid change: %v", err)
				}
			}
		}
	})
}

// FuzzDecodeChange: decoding never panics, and what decodes encodes to
// the same bytes.
func FuzzDecodeChange(f *testing.F) {
	cs, _ := writerChanges(f, "eu", 5)
	for _, c := range cs {
		f.Add(AppendChange(nil, c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		c := d.Change()
		if d.Err() != nil {
			return
		}
		if got := AppendChange(nil, c); string(got) != string(b[:d.Offset()]) {
			t.Fatalf("re-encoded differently")
		}
	})
}
