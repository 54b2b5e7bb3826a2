package health

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Verdict is the state a server acts on for one target.
type Verdict struct {
	State  State
	Since  time.Time
	Reason string // which observers said what, and the rule that decided
}

// Question asks for one target's verdict.
type Question struct {
	Key    string
	Quorum Quorum
	Obs    []Observation // every observer's view, fresh or not
}

// Change is a verdict that moved in a round.
type Change struct {
	Key      string
	From, To Verdict
}

// Judge turns observations into verdicts round after round. It keeps the
// previous verdicts: a target with no fresh evidence keeps its verdict, and
// while the judge is partitioned (it hears fewer than half of the observers
// it knows) every verdict is frozen, because a server cut off from the
// others cannot tell "targets died" from "I am alone".
//
// Judge is not safe for concurrent use; it does no I/O.
type Judge struct {
	Stale       time.Duration
	verdicts    map[string]Verdict
	partitioned bool
}

// NewJudge returns a judge that treats observations older than stale as
// unknown (0: never stale).
func NewJudge(stale time.Duration) *Judge {
	return &Judge{Stale: stale, verdicts: map[string]Verdict{}}
}

// Verdict returns the current verdict for key.
func (j *Judge) Verdict(key string) Verdict { return j.verdicts[key] }

// Partitioned says whether the last round froze the verdicts.
func (j *Judge) Partitioned() bool { return j.partitioned }

// Round decides every question. heard and known count observers: known is
// every observer that has not left on purpose, heard those that are alive
// and fresh (this server's own probes included). It returns the verdicts
// that changed and whether the partition state changed.
func (j *Judge) Round(now time.Time, qs []Question, heard, known int) (changes []Change, partitionChanged bool) {
	part := known > 0 && 2*heard < known
	partitionChanged = part != j.partitioned
	j.partitioned = part
	live := make(map[string]bool, len(qs))
	for _, q := range qs {
		live[q.Key] = true
		prev, had := j.verdicts[q.Key]
		if part && had && prev.State != Unknown {
			continue // frozen: keep the last verdict
		}
		s := Decide(q.Quorum, q.Obs, now, j.Stale)
		if s == Unknown || (had && s == prev.State) {
			continue
		}
		next := Verdict{State: s, Since: now, Reason: j.reason(q, now)}
		j.verdicts[q.Key] = next
		changes = append(changes, Change{Key: q.Key, From: prev, To: next})
	}
	for k := range j.verdicts {
		if !live[k] {
			delete(j.verdicts, k)
		}
	}
	return changes, partitionChanged
}

// reason explains a verdict: each observer's fresh view, then the rule.
func (j *Judge) reason(q Question, now time.Time) string {
	obs := append([]Observation(nil), q.Obs...)
	sort.Slice(obs, func(a, b int) bool { return obs[a].Observer < obs[b].Observer })
	var parts []string
	for _, o := range obs {
		s := o.State.String()
		if j.Stale > 0 && now.Sub(o.At) > j.Stale {
			s = "stale"
		}
		parts = append(parts, o.Observer+"="+s)
	}
	return fmt.Sprintf("%s by quorum %s", strings.Join(parts, " "), q.Quorum)
}
