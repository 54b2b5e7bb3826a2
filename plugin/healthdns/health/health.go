// Package health owns the health model: the rise/fall state machine an
// observer runs for each check, the quorum rule that turns the
// observations of several observers into one verdict per target, and the
// majority of voters (servers and witnesses) a server must hear to change
// a verdict.
//
// Everything here is a pure function of its inputs and an injected time; it
// does no I/O and starts no goroutines.
package health

import (
	"fmt"
	"strconv"
	"time"
)

// State is what an observer (or a verdict) says of a target.
type State uint8

const (
	// Unknown means no usable evidence: not probed yet, or stale.
	Unknown State = iota
	// Up means healthy.
	Up
	// Down means unhealthy.
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Tracker is the rise/fall state machine for one check as one observer sees
// it. The zero value is Unknown. The first result decides the state at once,
// so a fresh server has an opinion after one probe round; after that it
// takes rise consecutive successes to go up and fall consecutive failures to
// go down, so one lost packet flips nothing.
type Tracker struct {
	State State
	Since time.Time // when State last changed
	run   int       // consecutive results that disagree with State
}

// Observe feeds one probe result and reports whether the state changed.
func (t *Tracker) Observe(ok bool, rise, fall int, now time.Time) bool {
	want := Down
	need := fall
	if ok {
		want, need = Up, rise
	}
	if t.State == Unknown {
		t.State, t.Since, t.run = want, now, 0
		return true
	}
	if t.State == want {
		t.run = 0
		return false
	}
	t.run++
	if t.run < need {
		return false
	}
	t.State, t.Since, t.run = want, now, 0
	return true
}

// Combine is the state of a target with several checks: up only when every
// check is up (a cluster is up only when all its entry points are), down as
// soon as one is down, unknown otherwise.
func Combine(states ...State) State {
	if len(states) == 0 {
		return Unknown
	}
	all := Up
	for _, s := range states {
		switch s {
		case Down:
			return Down
		case Unknown:
			all = Unknown
		}
	}
	return all
}

// QuorumKind says how many observers must see a target down to call it down.
type QuorumKind uint8

const (
	// Majority: more than half of the observers with a fresh view.
	Majority QuorumKind = iota
	// Any: one observer is enough.
	Any
	// All: every observer with a fresh view.
	All
	// AtLeast: at least N observers.
	AtLeast
)

// Quorum is a name's rule for combining observers.
type Quorum struct {
	Kind QuorumKind
	N    int
}

func (q Quorum) String() string {
	switch q.Kind {
	case Any:
		return "any"
	case All:
		return "all"
	case AtLeast:
		return strconv.Itoa(q.N)
	}
	return "majority"
}

// ParseQuorum reads "any", "majority", "all" or a positive count.
func ParseQuorum(s string) (Quorum, error) {
	switch s {
	case "any":
		return Quorum{Kind: Any}, nil
	case "majority":
		return Quorum{Kind: Majority}, nil
	case "all":
		return Quorum{Kind: All}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Quorum{}, fmt.Errorf("quorum %q: want any, majority, all or a count of at least 1", s)
	}
	return Quorum{Kind: AtLeast, N: n}, nil
}

// Observation is one observer's current state for one target.
type Observation struct {
	Observer string
	State    State
	At       time.Time // when the observer last confirmed State
	// Until is when the observation stops counting: past it, it is
	// unknown, never down. The caller sets it from the target's check
	// timing and from when it last heard the observer. Zero: never.
	Until time.Time
}

// Fresh reports whether o still counts at now.
func (o Observation) Fresh(now time.Time) bool {
	return o.Until.IsZero() || !now.After(o.Until)
}

// Decide combines the fresh observations under q; the others count as
// unknown, never as down. With no fresh up or down observation at all the
// verdict is Unknown and the caller keeps its previous verdict.
func Decide(q Quorum, obs []Observation, now time.Time) State {
	up, down := 0, 0
	for _, o := range obs {
		if !o.Fresh(now) {
			continue
		}
		switch o.State {
		case Up:
			up++
		case Down:
			down++
		}
	}
	known := up + down
	if known == 0 {
		return Unknown
	}
	var isDown bool
	switch q.Kind {
	case Any:
		isDown = down >= 1
	case All:
		isDown = down == known
	case AtLeast:
		isDown = down >= q.N
	default:
		isDown = 2*down > known
	}
	if isDown {
		return Down
	}
	return Up
}
