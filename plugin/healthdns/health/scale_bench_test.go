package health

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// BenchmarkJudgeOneChange is the judge round a server runs after one
// observation changed (issue 18): a full round over every target, 10
// observers each, one observation different from the previous round. The
// changed observation flips its target's verdict (5 of 10 observers said
// down; a sixth joins them, then leaves again), so each round has exactly
// one verdict change to apply. Compare the two sizes: a cost that does not
// grow with the total has a ratio near 1.
//
//	go test -run '^$' -bench JudgeOneChange -benchmem ./plugin/healthdns/health/
func BenchmarkJudgeOneChange(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			if n > 10000 && testing.Short() {
				b.Skip("100,000 targets under -short")
			}
			now := time.Unix(1000, 0)
			qs := scaleQuestions(n, now)
			voters := Voters{Known: 3, Others: []Voter{{Heard: now, Until: now.Add(time.Hour)}, {Heard: now, Until: now.Add(time.Hour)}}}
			j := NewJudge()
			j.Round(now, qs, voters)
			// The swing observation: observer 5 of target k.
			const k, swing = 0, 5
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o := &qs[k].Obs[swing]
				if o.State == Up {
					o.State = Down
				} else {
					o.State = Up
				}
				changes, _ := j.Round(now, qs, voters)
				if len(changes) != 1 {
					b.Fatalf("round %d: %d verdict changes, want 1", i, len(changes))
				}
			}
		})
	}
}

// scaleQuestions is what the plugin asks each round at scale: n targets,
// named as the plugin names them, 5 to a name, 10 observers each, all up
// but target 0, which observers 0-4 see down (majority: still up).
func scaleQuestions(n int, now time.Time) []Question {
	observers := make([]string, 10)
	for j := range observers {
		observers[j] = "agent" + strconv.Itoa(j+1)
	}
	qs := make([]Question, n)
	obs := make([]Observation, n*len(observers)) // one backing array, as the plugin does
	for i := range qs {
		o := obs[i*len(observers) : (i+1)*len(observers) : (i+1)*len(observers)]
		for j := range o {
			st := Up
			if i == 0 && j < 5 {
				st = Down
			}
			o[j] = Observation{Observer: observers[j], State: st, At: now, Until: now.Add(time.Hour)}
		}
		key := fmt.Sprintf("n%d.scale.example. 10.%d.%d.%d|tcp 10.%d.%d.%d:443", i/5, i>>16&255, i>>8&255, i&255, i>>16&255, i>>8&255, i&255)
		qs[i] = Question{Key: key, Quorum: Quorum{Kind: Majority}, Obs: o}
	}
	return qs
}
