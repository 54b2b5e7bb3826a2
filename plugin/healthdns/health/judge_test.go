package health

import (
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// alone is a server that is the cluster's only voter.
var alone = Voters{Known: 1}

// heard is a voter last heard at ms, counted for silence more.
func heard(ms int, silence time.Duration) Voter {
	return Voter{Heard: at(ms), Until: at(ms).Add(silence)}
}

func TestJudgeRounds(t *testing.T) {
	maj := Quorum{Kind: Majority}
	j := NewJudge()
	q := func(seen time.Time, states ...State) []Question {
		var obs []Observation
		for i, s := range states {
			obs = append(obs, Observation{Observer: string(rune('a' + i)), State: s, At: seen, Until: seen.Add(5 * time.Second)})
		}
		return []Question{{Key: "t", Quorum: maj, Obs: obs}}
	}

	ch, _ := j.Round(t0, q(t0, Up, Up, Up), alone)
	if len(ch) != 1 || j.Verdict("t").State != Up {
		t.Fatalf("first round: %v, verdict %v", ch, j.Verdict("t"))
	}
	if ch, _ := j.Round(at(1000), q(t0, Down, Up, Up), alone); len(ch) != 0 {
		t.Errorf("one observer of three saw it down and the verdict moved: %v", ch)
	}
	ch, _ = j.Round(at(2000), q(at(2000), Down, Down, Up), alone)
	if len(ch) != 1 || j.Verdict("t").State != Down {
		t.Fatalf("two of three down: %v", ch)
	}
	if got := j.Verdict("t").Reason; got != "a=down b=down c=up by quorum majority" {
		t.Errorf("reason %q", got)
	}

	// Every observation goes stale: no evidence, the verdict holds.
	if ch, _ := j.Round(t0.Add(time.Minute), q(at(2000), Up, Up, Up), alone); len(ch) != 0 || j.Verdict("t").State != Down {
		t.Errorf("stale ups changed the verdict: %v", ch)
	}
	// Unknown observations never vote down.
	if ch, _ := j.Round(t0.Add(time.Minute), q(t0.Add(time.Minute), Unknown, Unknown, Up), alone); len(ch) != 1 || j.Verdict("t").State != Up {
		t.Errorf("one fresh up among unknowns: %v, verdict %v", ch, j.Verdict("t"))
	}
}

func TestStanding(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		v         Voters
		now       time.Time
		heard     int
		needed    int
		part      bool
		confirmed time.Time
	}{
		{"alone, no cluster", Voters{}, at(0), 1, 1, false, at(0)},
		{"alone of one", Voters{Known: 1}, at(0), 1, 1, false, at(0)},
		{"two of two", Voters{Known: 2, Others: []Voter{heard(-300, s)}}, at(0), 2, 2, false, at(-300)},
		{"one of two is no majority", Voters{Known: 2}, at(0), 1, 2, true, time.Time{}},
		{"two of three", Voters{Known: 3, Others: []Voter{heard(-100, s)}}, at(0), 2, 2, false, at(-100)},
		{"three of three: the second most recent confirms", Voters{Known: 3, Others: []Voter{heard(-400, s), heard(-100, s)}}, at(0), 3, 2, false, at(-100)},
		{"a voter silent past its window is not heard", Voters{Known: 3, Others: []Voter{heard(-1500, s)}}, at(0), 1, 2, true, time.Time{}},
		{"a dead voter is not heard", Voters{Known: 3, Others: []Voter{{Heard: at(-10)}}}, at(0), 1, 2, true, time.Time{}},
		{"half of four is no majority", Voters{Known: 4, Others: []Voter{heard(-100, s)}}, at(0), 2, 3, true, time.Time{}},
		{"three of five", Voters{Known: 5, Others: []Voter{heard(-100, s), heard(-200, s), heard(-1200, s)}}, at(0), 3, 3, false, at(-200)},
		{"news from the future counts as now", Voters{Known: 2, Others: []Voter{heard(50, s)}}, at(0), 2, 2, false, at(0)},
		{"more voters heard than known", Voters{Known: 1, Others: []Voter{heard(-100, s)}}, at(0), 2, 1, false, at(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.v.Standing(tc.now)
			if st.Heard != tc.heard || st.Needed != tc.needed || st.Partitioned != tc.part || !st.Confirmed.Equal(tc.confirmed) {
				t.Errorf("got heard %d needed %d partitioned %v confirmed %v, want %d %d %v %v",
					st.Heard, st.Needed, st.Partitioned, st.Confirmed, tc.heard, tc.needed, tc.part, tc.confirmed)
			}
		})
	}
}

// TestJudgeConfirmation: a verdict change waits until a majority of
// voters has been heard after it was first wanted. Each step is a round:
// the time, what the server's only observer (its own probe) says, and
// when the other voter of two was last heard (-1: not heard in its
// window); then the verdict after the round and whether a change waits.
func TestJudgeConfirmation(t *testing.T) {
	silence := 800 * time.Millisecond
	type step struct {
		ms      int
		obs     State
		peer    int // ms of the other voter's latest news; -1 none
		verdict State
		pending bool
		part    bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a change waits for the next news of a majority, then applies", []step{
			{0, Up, 0, Up, false, false},
			{600, Down, 400, Up, true, false}, // wanted at 600, peer last heard at 400
			{700, Down, 400, Up, true, false},
			{800, Down, 750, Down, false, false}, // heard after 600
		}},
		{"a change that reverts before confirmation is dropped", []step{
			{0, Up, 0, Up, false, false},
			{600, Down, 400, Up, true, false},
			{700, Up, 650, Up, false, false},  // back up: nothing waits
			{900, Down, 850, Up, true, false}, // wanted again: from 900, not 600
			{950, Down, 850, Up, true, false},
			{1000, Down, 960, Down, false, false},
		}},
		{"cut off: its own failing probes never flip the verdict", []step{
			{0, Up, 0, Up, false, false},
			{200, Up, 200, Up, false, false},  // the cut: nothing heard after 200
			{700, Down, 200, Up, true, false}, // own probes fail across the cut
			{900, Down, 200, Up, true, false},
			{1001, Down, -1, Up, true, true}, // silence: partitioned, still held
			{5000, Down, -1, Up, true, true},
			{6000, Down, 5900, Down, false, false}, // healed: heard after 700, still wanted
		}},
		{"a partition holds a change; hearing a majority again applies it", []step{
			{0, Up, 0, Up, false, false},
			{1000, Down, -1, Up, true, true},
			{1500, Down, 1400, Down, false, false},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := NewJudge()
			for i, s := range tc.steps {
				now := at(s.ms)
				v := Voters{Known: 2}
				if s.peer >= 0 {
					v.Others = []Voter{heard(s.peer, silence)}
				}
				q := []Question{{Key: "t", Quorum: Quorum{Kind: Majority}, Obs: []Observation{{Observer: "self", State: s.obs, At: now, Until: now.Add(time.Second)}}}}
				j.Round(now, q, v)
				_, pending := j.Pending("t")
				if got := j.Verdict("t").State; got != s.verdict || pending != s.pending || j.Partitioned() != s.part {
					t.Fatalf("step %d (%d ms): verdict %v pending %v partitioned %v, want %v %v %v",
						i, s.ms, got, pending, j.Partitioned(), s.verdict, s.pending, s.part)
				}
			}
		})
	}
}

func TestJudgePartitionFreezes(t *testing.T) {
	j := NewJudge()
	up := []Question{{Key: "t", Quorum: Quorum{Kind: Any}, Obs: []Observation{{"self", Up, t0, time.Time{}}}}}
	down := []Question{{Key: "t", Quorum: Quorum{Kind: Any}, Obs: []Observation{{"self", Down, t0, time.Time{}}}}}
	three := Voters{Known: 3, Others: []Voter{heard(0, time.Second), heard(0, time.Second)}}
	j.Round(t0, up, three)

	// Cut off: hears only itself of three voters.
	ch, moved := j.Round(t0, down, Voters{Known: 3})
	if !moved || !j.Partitioned() {
		t.Fatal("hearing 1 of 3 voters is not reported as a partition")
	}
	if len(ch) != 0 || j.Verdict("t").State != Up {
		t.Errorf("a partitioned judge changed a verdict: %v", ch)
	}
	// Healed: the same evidence now decides once a majority is heard
	// after it was wanted.
	ch, moved = j.Round(at(100), down, Voters{Known: 3, Others: []Voter{heard(50, time.Second)}})
	if !moved || j.Partitioned() || len(ch) != 1 || j.Verdict("t").State != Down {
		t.Errorf("after the partition healed: moved=%v partitioned=%v changes=%v", moved, j.Partitioned(), ch)
	}
	// Dead voters do not shrink the count: two of three dead is a
	// partition however many observers are left.
	if j.Round(at(200), up, Voters{Known: 3, Others: []Voter{{Heard: at(150)}, {Heard: at(150)}}}); !j.Partitioned() {
		t.Error("two dead voters of three did not partition the third")
	}
	// A target never judged before gets a verdict even while partitioned.
	ch, _ = j.Round(at(300), []Question{{Key: "new", Quorum: Quorum{Kind: Any}, Obs: []Observation{{"self", Up, t0, time.Time{}}}}}, Voters{Known: 3})
	if len(ch) != 1 {
		t.Errorf("a new target got no verdict while partitioned: %v", ch)
	}
}

// TestJudgeNext: the judge says when the next expiry is due, so the
// server re-judges dead observers and silent voters on time.
func TestJudgeNext(t *testing.T) {
	j := NewJudge()
	q := []Question{{Key: "t", Quorum: Quorum{Kind: Majority}, Obs: []Observation{
		{Observer: "a", State: Up, At: t0, Until: at(900)},
		{Observer: "b", State: Up, At: t0, Until: at(700)},
		{Observer: "c", State: Unknown, At: t0, Until: at(100)}, // says nothing: its expiry moves nothing
		{Observer: "d", State: Down, At: t0, Until: at(-100)},   // expired already
	}}}
	j.Round(t0, q, Voters{Known: 2, Others: []Voter{heard(0, 800*time.Millisecond)}})
	if got := j.Next(); !got.Equal(at(700)) {
		t.Errorf("next %v, want b's expiry %v", got, at(700))
	}
	j.Round(t0, q, Voters{Known: 2, Others: []Voter{heard(0, 500*time.Millisecond)}})
	if got := j.Next(); !got.Equal(at(500)) {
		t.Errorf("next %v, want the voter's silence %v", got, at(500))
	}
	j.Round(at(2000), q, alone)
	if got := j.Next(); !got.IsZero() {
		t.Errorf("next %v with everything expired, want zero", got)
	}
}

// TestJudgeDue: between rounds, the voters alone tell whether a round
// would confirm a pending change or move the partition state.
func TestJudgeDue(t *testing.T) {
	j := NewJudge()
	s := time.Second
	obs := func(st State) []Question {
		return []Question{{Key: "t", Quorum: Quorum{Kind: Any}, Obs: []Observation{{"self", st, t0, time.Time{}}}}}
	}
	j.Round(t0, obs(Up), Voters{Known: 2, Others: []Voter{heard(0, s)}})
	if j.Due(at(100), Voters{Known: 2, Others: []Voter{heard(50, s)}}) {
		t.Error("due with nothing pending and no partition change")
	}
	j.Round(at(200), obs(Down), Voters{Known: 2, Others: []Voter{heard(100, s)}})
	if j.Pendings() != 1 {
		t.Fatalf("pendings %d, want 1", j.Pendings())
	}
	if j.Due(at(250), Voters{Known: 2, Others: []Voter{heard(100, s)}}) {
		t.Error("due before the voter was heard again")
	}
	if !j.Due(at(300), Voters{Known: 2, Others: []Voter{heard(280, s)}}) {
		t.Error("not due after the voter was heard again")
	}
	if !j.Due(at(1500), Voters{Known: 2, Others: []Voter{heard(100, s)}}) {
		t.Error("not due when the partition state changes")
	}
}
