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
	qs, voters := benchRound(now, 10000)
	j := NewJudge()
	j.Round(now, qs, voters)
	b.ReportAllocs()
	for b.Loop() {
		j.Round(now, qs, voters)
	}
}

// A round of the judge after one observation changed, asking only that
// question (Judge.Some, what a server's rebuild does), at two sizes: its
// cost must not grow with the targets.
func BenchmarkJudgeSomeOneChange(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run("targets="+strconv.Itoa(n), func(b *testing.B) {
			now := time.Unix(1000, 0)
			qs, voters := benchRound(now, n)
			j := NewJudge()
			j.Round(now, qs, voters)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				q := qs[i%n]
				for k := range 6 { // a majority flips it
					q.Obs[k].State = State(2 - (i/n)%2) // down, then up again
				}
				if ch, _ := j.Some(now, qs[i%n:i%n+1], voters); len(ch) != 1 {
					b.Fatalf("%d changes", len(ch))
				}
			}
		})
	}
}

// benchRound is n targets seen up by 10 observers, and 3 voters heard.
func benchRound(now time.Time, n int) ([]Question, Voters) {
	qs := make([]Question, n)
	for i := range qs {
		obs := make([]Observation, 10)
		for j := range obs {
			obs[j] = Observation{Observer: strconv.Itoa(j), State: Up, At: now, Until: now.Add(5 * time.Second)}
		}
		qs[i] = Question{Key: strconv.Itoa(i), Quorum: Quorum{Kind: Majority}, Obs: obs}
	}
	return qs, Voters{Known: 3, Others: []Voter{{Heard: now, Until: now.Add(time.Second)}, {Heard: now, Until: now.Add(time.Second)}}}
}
