package gossip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReasonsWire(t *testing.T) {
	m := &reasonsMsg{Node: "a1", Epoch: 7, Seq: 3, Entries: []reasonEntry{{ID: 1, Text: "tcp 192.0.2.1:80: timeout"}, {ID: 2}}}
	got, err := decodeMessage(m.encode())
	if err != nil {
		t.Fatal(err)
	}
	r := got.(*reasonsMsg)
	if r.Node != "a1" || r.Epoch != 7 || r.Seq != 3 || len(r.Entries) != 2 || r.Entries[0] != m.Entries[0] || r.Entries[1] != m.Entries[1] {
		t.Errorf("decoded %+v, want %+v", r, m)
	}
	long := &reasonsMsg{Node: "a1", Epoch: 1, Seq: 1, Entries: []reasonEntry{{ID: 1, Text: strings.Repeat("x", MaxReason+1)}}}
	if _, err := decodeMessage(long.encode()); err == nil {
		t.Error("a reason over MaxReason decoded")
	}
	zero := &reasonsMsg{Node: "a1", Epoch: 1}
	if _, err := decodeMessage(zero.encode()); err == nil {
		t.Error("reasons with seq 0 decoded")
	}
}

// TestReasonsPackAndRepeat: changes fit a gossip packet each, and the
// repeats go round every reason a few messages at a time.
func TestReasonsPackAndRepeat(t *testing.T) {
	var r reasonState
	reasons := map[TargetID]string{}
	for i := range 100 {
		reasons[TargetID(i+1)] = strings.Repeat("e", MaxReason)
	}
	msgs := r.publish("a1", 1, reasons)
	if len(msgs) != reasonsBurst {
		t.Errorf("a publish of 100 reasons sent %d messages, want the burst of %d", len(msgs), reasonsBurst)
	}
	// The rest goes out with the next heartbeats, a burst each.
	sent := map[TargetID]bool{}
	for beats := 0; len(msgs) > 0; beats++ {
		for _, m := range msgs {
			if b := m.encode(); len(b) > maxBroadcast {
				t.Errorf("message of %d bytes", len(b))
			}
			for _, e := range m.Entries {
				sent[e.ID] = true
			}
		}
		if beats > 100 {
			t.Fatal("changes still going out after 100 heartbeats")
		}
		msgs = r.repeat("a1", 1, func(string) bool { return true })
	}
	if len(sent) != 100 {
		t.Errorf("sent %d reasons, want 100", len(sent))
	}
	if again := r.publish("a1", 1, reasons); len(again) != 0 {
		t.Errorf("publishing the same reasons sent %d messages", len(again))
	}
	seen := map[TargetID]bool{}
	for range reasonsEvery * 20 {
		for _, m := range r.repeat("a1", 1, func(string) bool { return true }) {
			if len(m.Entries) == 0 {
				t.Fatal("empty repeat")
			}
			for _, e := range m.Entries {
				seen[e.ID] = true
			}
		}
	}
	if len(seen) != 100 {
		t.Errorf("repeats covered %d reasons, want 100", len(seen))
	}
}

// TestReasonsApply: per target, the newer seq wins; a new epoch starts
// over.
func TestReasonsApply(t *testing.T) {
	var r reasonState
	if !r.apply(&reasonsMsg{Node: "a1", Epoch: 1, Seq: 2, Entries: []reasonEntry{{ID: 1, Text: "new"}}}) {
		t.Fatal("first reason not news")
	}
	if r.apply(&reasonsMsg{Node: "a1", Epoch: 1, Seq: 1, Entries: []reasonEntry{{ID: 1, Text: "old"}}}) {
		t.Error("an older reason was news")
	}
	if got := r.others["a1"].rows[1].text; got != "new" {
		t.Errorf("reason %q, want new", got)
	}
	r.apply(&reasonsMsg{Node: "a1", Epoch: 2, Seq: 1, Entries: []reasonEntry{{ID: 2, Text: "other"}}})
	if _, ok := r.others["a1"].rows[1]; ok {
		t.Error("a new epoch kept the old reasons")
	}
	if r.apply(&reasonsMsg{Node: "a1", Epoch: 1, Seq: 9, Entries: []reasonEntry{{ID: 1, Text: "stale"}}}) {
		t.Error("a reason of an older epoch was news")
	}
}

func TestShortReason(t *testing.T) {
	refused := "http://127.0.0.1:9001/health: dial tcp 127.0.0.1:9001: connect: connection refused"
	for _, tc := range []struct{ in, want string }{
		{refused, refused},
		{"tcp 127.0.0.1:9001:\n  timeout", "tcp 127.0.0.1:9001: timeout"},
		// the check and the root cause stay
		{"http://127.0.0.1:9001/health: " + strings.Repeat("wrapped: ", 20) + "connect: connection refused",
			"http://127.0.0.1:9001/health: ...pped: wrapped: wrapped: wrapped: wrapped: wrapped: wrapped: connect: connection refused"},
	} {
		got := ShortReason(tc.in)
		if got != tc.want || len(got) > MaxReason {
			t.Errorf("ShortReason(%q) = %q (%d bytes), want %q", tc.in, got, len(got), tc.want)
		}
	}
	for n := range 300 {
		s := strings.Repeat("é", n) + strings.Repeat("x", n%7)
		if got := ShortReason(s); len(got) > MaxReason || !utf8.ValidString(got) {
			t.Fatalf("ShortReason of %d bytes: %q (%d bytes)", len(s), got, len(got))
		}
	}
}

// TestReasonsStickWhileDown: a target still down whose last check passed
// keeps its reason; one left out loses it.
func TestReasonsStickWhileDown(t *testing.T) {
	var r reasonState
	r.publish("a1", 1, map[TargetID]string{1: "tcp 192.0.2.1:80: timeout"})
	if msgs := r.publish("a1", 1, map[TargetID]string{1: ""}); len(msgs) != 0 || r.own[1] != "tcp 192.0.2.1:80: timeout" {
		t.Errorf("an empty reason for a target still down: %d messages, reason %q; want none and the old reason", len(msgs), r.own[1])
	}
	msgs := r.publish("a1", 1, nil)
	if len(msgs) != 1 || len(msgs[0].Entries) != 1 || msgs[0].Entries[0] != (reasonEntry{ID: 1}) || len(r.own) != 0 || len(r.dirty) != 0 {
		t.Errorf("a target left out: messages %+v, own %v; want one clear", msgs, r.own)
	}
}
