package health

import (
	"fmt"
	"slices"
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

// Voter is another voter (a server or a witness) as this server hears it.
type Voter struct {
	// Heard is the local time of the latest news from it.
	Heard time.Time
	// Until is when it stops counting as heard if no more news comes:
	// Heard plus its silence window. Zero when it is dead or left.
	Until time.Time
}

// Voters is what a server knows of the cluster's voters in a round.
type Voters struct {
	// Known is how many voters the cluster has, this server included;
	// 0 counts as 1 (a server alone).
	Known int
	// Others are the other voters this server has news of.
	Others []Voter
}

// MajorityOf is how many voters of known make a majority.
func MajorityOf(known int) int { return max(known, 1)/2 + 1 }

// Standing is where a server stands among the voters at one moment.
type Standing struct {
	Heard  int // voters heard now, this server included
	Known  int // voters of the cluster
	Needed int // a majority of Known
	// Partitioned is true while Heard < Needed: the server may be on the
	// minority side of a split, and keeps its last verdicts.
	Partitioned bool
	// Confirmed is the latest time at which the server had heard from a
	// majority of voters (itself now, and each other at its latest
	// news); zero while it hears no majority.
	Confirmed time.Time
}

// Standing works out the server's standing at now.
func (v Voters) Standing(now time.Time) Standing {
	st := Standing{Known: max(v.Known, 1), Needed: MajorityOf(v.Known)}
	heard := []time.Time{now}
	for _, o := range v.Others {
		if !o.Until.IsZero() && !now.After(o.Until) {
			h := o.Heard
			if h.After(now) {
				h = now
			}
			heard = append(heard, h)
		}
	}
	st.Heard = len(heard)
	st.Partitioned = st.Heard < st.Needed
	if !st.Partitioned {
		slices.SortFunc(heard, func(a, b time.Time) int { return b.Compare(a) })
		st.Confirmed = heard[st.Needed-1]
	}
	return st
}

// Pending is a verdict change the evidence wants that waits for a
// majority of voters to be heard after it was first wanted.
type Pending struct {
	To    State
	Since time.Time // when it was first wanted
}

// Judge turns observations into verdicts round after round, and acts only
// where a majority of the cluster's voters can hear it.
//
// A target with no fresh evidence keeps its verdict. A verdict change is
// applied only once a majority of voters has been heard after the change
// was first wanted (Standing.Confirmed): a server that is cut off keeps
// hearing nobody, so its own failing probes across the cut never flip a
// verdict, even before its silence detection notices the cut. While the
// server hears no majority (Partitioned) every verdict is kept. The first
// verdict of a target is applied at once: there is nothing to keep.
//
// Judge is not safe for concurrent use; it does no I/O.
type Judge struct {
	verdicts map[string]Verdict
	pending  map[string]Pending
	standing Standing
	next     time.Time
	rounds   uint64
}

// NewJudge returns a judge with no verdicts.
func NewJudge() *Judge {
	return &Judge{verdicts: map[string]Verdict{}, pending: map[string]Pending{}}
}

// Verdict returns the current verdict for key.
func (j *Judge) Verdict(key string) Verdict { return j.verdicts[key] }

// Pending returns the change waiting for key, if any.
func (j *Judge) Pending(key string) (Pending, bool) {
	p, ok := j.pending[key]
	return p, ok
}

// Pendings is how many verdict changes wait for confirmation.
func (j *Judge) Pendings() int { return len(j.pending) }

// Partitioned says whether the last round kept every verdict.
func (j *Judge) Partitioned() bool { return j.standing.Partitioned }

// Standing is the server's standing at the last round.
func (j *Judge) Standing() Standing { return j.standing }

// Next is the earliest time after the last round at which a round could
// decide differently with no news: when a counted observation or voter
// expires. Zero when nothing will.
func (j *Judge) Next() time.Time { return j.next }

// Due reports whether a round at now would move something that waits on
// voters alone: a pending change a majority now confirms, or the
// partition state. It is cheap: it looks at the voters, not the targets.
func (j *Judge) Due(now time.Time, v Voters) bool {
	st := v.Standing(now)
	if st.Partitioned != j.standing.Partitioned {
		return true
	}
	if st.Partitioned || len(j.pending) == 0 {
		return false
	}
	for _, p := range j.pending {
		if !st.Confirmed.Before(p.Since) {
			return true
		}
	}
	return false
}

// Round decides every question under the voters' standing at now. It
// returns the verdicts that changed and whether the partition state
// changed. A key not asked is forgotten.
func (j *Judge) Round(now time.Time, qs []Question, voters Voters) (changes []Change, partitionChanged bool) {
	var next time.Time
	soonest := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, o := range voters.Others {
		soonest(o.Until)
	}
	live := make(map[string]bool, len(qs))
	for _, q := range qs {
		live[q.Key] = true
		for _, o := range q.Obs {
			if o.State != Unknown {
				soonest(o.Until)
			}
		}
	}
	changes, partitionChanged = j.Some(now, qs, voters)
	j.rounds++
	for k := range j.verdicts {
		if !live[k] {
			delete(j.verdicts, k)
		}
	}
	for k := range j.pending {
		if !live[k] {
			delete(j.pending, k)
		}
	}
	j.next = next
	return changes, partitionChanged
}

// Some is a round that decides only qs: the other verdicts and pending
// changes stay as they are, and Next is left to the caller (SetNext).
// Asked with every question whose evidence changed since the last round,
// and with every pending key (PendingKeys), it decides as Round would,
// at a cost that grows with what changed, not with the targets.
func (j *Judge) Some(now time.Time, qs []Question, voters Voters) (changes []Change, partitionChanged bool) {
	st := voters.Standing(now)
	partitionChanged = st.Partitioned != j.standing.Partitioned
	j.standing = st
	for _, q := range qs {
		prev, had := j.verdicts[q.Key]
		s := Decide(q.Quorum, q.Obs, now)
		if s == Unknown || (had && s == prev.State) {
			delete(j.pending, q.Key) // nothing to change, or it reverted
			continue
		}
		if had {
			p, ok := j.pending[q.Key]
			if !ok || p.To != s {
				p = Pending{To: s, Since: now}
				j.pending[q.Key] = p
			}
			if st.Partitioned || st.Confirmed.Before(p.Since) {
				continue // wait until a majority is heard after it
			}
			delete(j.pending, q.Key)
		}
		v := Verdict{State: s, Since: now, Reason: reason(q, now)}
		j.verdicts[q.Key] = v
		changes = append(changes, Change{Key: q.Key, From: prev, To: v})
	}
	return changes, partitionChanged
}

// Keep forgets the verdicts and pending changes of the keys live says
// are gone. With Some over every question first, it is Round done in
// parts (Next left to the caller); it counts as a round (Rounds).
func (j *Judge) Keep(live func(key string) bool) {
	for k := range j.verdicts {
		if !live(k) {
			delete(j.verdicts, k)
		}
	}
	for k := range j.pending {
		if !live(k) {
			delete(j.pending, k)
		}
	}
	j.rounds++
}

// Forget drops the verdicts and pending changes of keys, no longer asked.
func (j *Judge) Forget(keys ...string) {
	for _, k := range keys {
		delete(j.verdicts, k)
		delete(j.pending, k)
	}
}

// PendingKeys appends the keys of the changes waiting for confirmation.
func (j *Judge) PendingKeys(keys []string) []string {
	for k := range j.pending {
		keys = append(keys, k)
	}
	return keys
}

// Rounds counts the calls of Round, which forget what they were not
// asked: a caller that keeps its own account of the keys (for Some)
// starts again when another caller's Round came between.
func (j *Judge) Rounds() uint64 { return j.rounds }

// SetNext sets what Next returns, for a caller of Some that knows when
// its counted observations expire.
func (j *Judge) SetNext(t time.Time) { j.next = t }

// reason explains a verdict: each observer's fresh view, then the rule.
func reason(q Question, now time.Time) string {
	obs := append([]Observation(nil), q.Obs...)
	sort.Slice(obs, func(a, b int) bool { return obs[a].Observer < obs[b].Observer })
	var parts []string
	for _, o := range obs {
		s := o.State.String()
		if !o.Fresh(now) {
			s = "stale"
		}
		parts = append(parts, o.Observer+"="+s)
	}
	return fmt.Sprintf("%s by quorum %s", strings.Join(parts, " "), q.Quorum)
}
