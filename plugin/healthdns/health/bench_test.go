package health

import (
	"strconv"
	"testing"
	"time"
)

// One verdict from 10 observers.
func BenchmarkDecide(b *testing.B) {
	now := time.Unix(1000, 0)
	obs := make([]Observation, 10)
	for i := range obs {
		obs[i] = Observation{Observer: strconv.Itoa(i), State: State(1 + i%2), At: now.Add(-time.Duration(i) * time.Second), Until: now.Add(time.Duration(5-i) * time.Second)}
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(Quorum{Kind: Majority}, obs, now)
	}
}

// A round of the judge over 10,000 targets × 10 observers, nothing
// changing: the cost a server pays every second at scale.
func BenchmarkJudgeRound(b *testing.B) {
	now := time.Unix(1000, 0)
	qs := make([]Question, 10000)
	for i := range qs {
		obs := make([]Observation, 10)
		for j := range obs {
			obs[j] = Observation{Observer: strconv.Itoa(j), State: Up, At: now, Until: now.Add(5 * time.Second)}
		}
		qs[i] = Question{Key: strconv.Itoa(i), Quorum: Quorum{Kind: Majority}, Obs: obs}
	}
	voters := Voters{Known: 3, Others: []Voter{{Heard: now, Until: now.Add(time.Second)}, {Heard: now, Until: now.Add(time.Second)}}}
	j := NewJudge()
	j.Round(now, qs, voters)
	b.ReportAllocs()
	for b.Loop() {
		j.Round(now, qs, voters)
	}
}
