package health

import (
	"testing"
	"time"
)

func TestJudgeRounds(t *testing.T) {
	t0 := time.Unix(1000, 0)
	maj := Quorum{Kind: Majority}
	j := NewJudge(5 * time.Second)
	q := func(at time.Time, states ...State) []Question {
		var obs []Observation
		for i, s := range states {
			obs = append(obs, Observation{Observer: string(rune('a' + i)), State: s, At: at})
		}
		return []Question{{Key: "t", Quorum: maj, Obs: obs}}
	}

	ch, _ := j.Round(t0, q(t0, Up, Up, Up), 3, 3)
	if len(ch) != 1 || j.Verdict("t").State != Up {
		t.Fatalf("first round: %v, verdict %v", ch, j.Verdict("t"))
	}
	if ch, _ := j.Round(t0.Add(time.Second), q(t0, Down, Up, Up), 3, 3); len(ch) != 0 {
		t.Errorf("one observer of three saw it down and the verdict moved: %v", ch)
	}
	ch, _ = j.Round(t0.Add(2*time.Second), q(t0.Add(2*time.Second), Down, Down, Up), 3, 3)
	if len(ch) != 1 || j.Verdict("t").State != Down {
		t.Fatalf("two of three down: %v", ch)
	}
	if got := j.Verdict("t").Reason; got != "a=down b=down c=up by quorum majority" {
		t.Errorf("reason %q", got)
	}

	// Every observation goes stale: no evidence, the verdict holds.
	if ch, _ := j.Round(t0.Add(time.Minute), q(t0.Add(2*time.Second), Up, Up, Up), 3, 3); len(ch) != 0 || j.Verdict("t").State != Down {
		t.Errorf("stale ups changed the verdict: %v", ch)
	}
}

func TestJudgePartitionFreezes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	j := NewJudge(0)
	up := []Question{{Key: "t", Quorum: Quorum{Kind: Any}, Obs: []Observation{{"self", Up, t0}}}}
	down := []Question{{Key: "t", Quorum: Quorum{Kind: Any}, Obs: []Observation{{"self", Down, t0}}}}
	j.Round(t0, up, 3, 3)

	// Cut off: hears only itself of three observers.
	ch, moved := j.Round(t0, down, 1, 3)
	if !moved || !j.Partitioned() {
		t.Fatal("hearing 1 of 3 observers is not reported as a partition")
	}
	if len(ch) != 0 || j.Verdict("t").State != Up {
		t.Errorf("a partitioned judge changed a verdict: %v", ch)
	}
	// Healed: the same evidence now decides.
	ch, moved = j.Round(t0, down, 3, 3)
	if !moved || j.Partitioned() || len(ch) != 1 || j.Verdict("t").State != Down {
		t.Errorf("after the partition healed: moved=%v partitioned=%v changes=%v", moved, j.Partitioned(), ch)
	}
	// Hearing exactly half is not a partition (two servers, one agent gone).
	if _, _ = j.Round(t0, down, 1, 2); j.Partitioned() {
		t.Error("hearing half of the observers counted as a partition")
	}
	// A target never judged before gets a verdict even while partitioned.
	j.Round(t0, up, 1, 3)
	ch, _ = j.Round(t0, []Question{{Key: "new", Quorum: Quorum{Kind: Any}, Obs: []Observation{{"self", Up, t0}}}}, 1, 3)
	if len(ch) != 1 {
		t.Errorf("a new target got no verdict while partitioned: %v", ch)
	}
}
