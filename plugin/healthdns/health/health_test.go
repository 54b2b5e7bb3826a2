package health

import (
	"testing"
	"time"
)

func TestTrackerRiseFall(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name       string
		rise, fall int
		results    string // '+' success, '-' failure
		want       string // state after each result: u(p), d(own)
	}{
		{"first result decides at once", 3, 3, "+", "u"},
		{"first failure decides at once", 3, 3, "-", "d"},
		{"one lost probe flips nothing", 2, 2, "+-+-+", "uuuuu"},
		{"fall consecutive failures take it down", 2, 2, "+--", "uud"},
		{"rise consecutive successes bring it back", 2, 3, "+---++", "uuuddu"},
		{"a success resets the failure run", 2, 3, "+--+--", "uuuuuu"},
		{"rise 1 fall 1 follows every result", 1, 1, "+-+-", "udud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr Tracker
			got := ""
			for i, r := range tc.results {
				tr.Observe(r == '+', tc.rise, tc.fall, t0.Add(time.Duration(i)*time.Second))
				got += tr.State.String()[:1]
			}
			if got != tc.want {
				t.Errorf("states %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTrackerSince(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var tr Tracker
	tr.Observe(true, 2, 2, t0)
	tr.Observe(false, 2, 2, t0.Add(time.Second))
	if tr.Since != t0 {
		t.Errorf("since moved on a result that changed nothing: %v", tr.Since)
	}
	if !tr.Observe(false, 2, 2, t0.Add(2*time.Second)) || !tr.Since.Equal(t0.Add(2*time.Second)) {
		t.Errorf("since = %v, want the time of the deciding probe", tr.Since)
	}
}

func TestCombine(t *testing.T) {
	tests := []struct {
		in   []State
		want State
	}{
		{nil, Unknown},
		{[]State{Up}, Up},
		{[]State{Up, Up}, Up},
		{[]State{Up, Down}, Down},
		{[]State{Unknown, Down}, Down},
		{[]State{Up, Unknown}, Unknown},
	}
	for _, tc := range tests {
		if got := Combine(tc.in...); got != tc.want {
			t.Errorf("Combine(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	now := time.Unix(5000, 0)
	fresh, stale := now.Add(-time.Second), now.Add(-time.Minute)
	until := now.Add(time.Second) // fresh ones count until then
	obs := func(states ...State) []Observation {
		var out []Observation
		for i, s := range states {
			out = append(out, Observation{Observer: string(rune('a' + i)), State: s, At: fresh, Until: until})
		}
		return out
	}
	mustQ := func(s string) Quorum {
		q, err := ParseQuorum(s)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	tests := []struct {
		name string
		q    string
		obs  []Observation
		want State
	}{
		{"majority: one of two down keeps it", "majority", obs(Up, Down), Up},
		{"majority: two of three down removes it", "majority", obs(Down, Up, Down), Down},
		{"any: one of two down removes it", "any", obs(Up, Down), Down},
		{"all: one up keeps it", "all", obs(Down, Up, Down), Up},
		{"all: every view down removes it", "all", obs(Down, Down), Down},
		{"at least 2: one down keeps it", "2", obs(Down, Up, Up), Up},
		{"at least 2: two down removes it", "2", obs(Down, Down, Up), Down},
		{"unknown views do not vote", "majority", obs(Down, Unknown, Unknown), Down},
		{"no evidence is unknown, not down", "any", obs(Unknown), Unknown},
		{"nothing at all is unknown", "majority", nil, Unknown},
		{"a stale down counts as unknown", "any", []Observation{{"a", Down, stale, stale.Add(time.Second)}, {"b", Up, fresh, until}}, Up},
		{"only stale views is unknown", "any", []Observation{{"a", Down, stale, stale.Add(time.Second)}}, Unknown},
		{"an observation expires just after its Until", "any", []Observation{{"a", Down, fresh, now}}, Down},
		{"no Until never expires", "any", []Observation{{"a", Down, stale, time.Time{}}}, Down},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(mustQ(tc.q), tc.obs, now); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseQuorum(t *testing.T) {
	for _, s := range []string{"any", "majority", "all", "1", "3"} {
		q, err := ParseQuorum(s)
		if err != nil || q.String() != s {
			t.Errorf("ParseQuorum(%q) = %v, %v", s, q, err)
		}
	}
	for _, s := range []string{"", "0", "-1", "most", "1.5"} {
		if _, err := ParseQuorum(s); err == nil {
			t.Errorf("ParseQuorum(%q) accepted", s)
		}
	}
}
