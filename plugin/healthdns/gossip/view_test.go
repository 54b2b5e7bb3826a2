package gossip

import (
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

const (
	up   = health.Up
	down = health.Down
	unk  = health.Unknown
)

func TestViewDelta(t *testing.T) {
	type delta struct {
		seq   uint64
		pairs []pair
	}
	tests := []struct {
		name         string
		deltas       []delta
		wantStates   map[TargetID]health.State
		wantComplete uint64
		wantPending  []uint64
	}{
		{
			name:         "in order",
			deltas:       []delta{{1, []pair{{1, up}, {2, up}}}, {2, []pair{{2, down}}}},
			wantStates:   map[TargetID]health.State{1: up, 2: down},
			wantComplete: 2,
		},
		{
			name:         "gap leaves the later change applied and pending",
			deltas:       []delta{{1, []pair{{1, up}}}, {3, []pair{{2, down}}}},
			wantStates:   map[TargetID]health.State{1: up, 2: down},
			wantComplete: 1,
			wantPending:  []uint64{3},
		},
		{
			name:         "late change fills the gap but does not override a newer row",
			deltas:       []delta{{2, []pair{{1, down}}}, {1, []pair{{1, up}, {2, up}}}},
			wantStates:   map[TargetID]health.State{1: down, 2: up},
			wantComplete: 2,
		},
		{
			name:         "removal wins over an older late change, then is forgotten",
			deltas:       []delta{{1, []pair{{1, up}}}, {3, []pair{{1, unk}}}, {2, []pair{{1, down}}}},
			wantStates:   map[TargetID]health.State{},
			wantComplete: 3,
		},
		{
			name:         "duplicates change nothing",
			deltas:       []delta{{1, []pair{{1, up}}}, {2, []pair{{1, down}}}, {1, []pair{{1, up}}}, {2, []pair{{1, up}}}},
			wantStates:   map[TargetID]health.State{1: down},
			wantComplete: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newView()
			for _, d := range tc.deltas {
				v.applyDelta(d.seq, d.pairs)
			}
			if got := v.states(); !maps.Equal(got, tc.wantStates) {
				t.Errorf("states = %v, want %v", got, tc.wantStates)
			}
			if v.complete != tc.wantComplete {
				t.Errorf("complete = %d, want %d", v.complete, tc.wantComplete)
			}
			if len(v.pending) != len(tc.wantPending) {
				t.Errorf("pending = %v, want %v", v.pending, tc.wantPending)
			}
			if v.removed != 0 && len(v.pending) == 0 {
				t.Errorf("%d removed rows kept with no gap", v.removed)
			}
		})
	}
}

func TestViewDeltaFreshness(t *testing.T) {
	v := newView()
	if fresh, changed := v.applyDelta(1, []pair{{1, up}}); !fresh || !changed {
		t.Errorf("first delta: fresh %v changed %v, want true true", fresh, changed)
	}
	if fresh, _ := v.applyDelta(1, []pair{{1, up}}); fresh {
		t.Error("duplicate delta is fresh")
	}
	if fresh, changed := v.applyDelta(2, []pair{{1, up}}); !fresh || changed {
		t.Errorf("same state again: fresh %v changed %v, want true false", fresh, changed)
	}
	if fresh, _ := v.applyDelta(0, nil); fresh {
		t.Error("seq 0 is fresh")
	}
}

func TestViewFull(t *testing.T) {
	// Receiver: complete at 2 with target 1 up, 2 up; change 5 (past a
	// gap) set target 3 down.
	recv := newView()
	recv.applyDelta(1, []pair{{1, up}, {2, up}})
	recv.applyDelta(2, []pair{{9, up}})
	recv.applyDelta(5, []pair{{3, down}})

	// A full view as of 4: target 2 is gone, 1 is down, 9 still up.
	full := &viewState{Complete: 4, Latest: 4, Base: []pair{{1, down}, {9, up}}}
	if !recv.applyFull(full) {
		t.Error("applyFull reported no change")
	}
	want := map[TargetID]health.State{1: down, 9: up, 3: down}
	if got := recv.states(); !maps.Equal(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if recv.complete != 5 || len(recv.pending) != 0 {
		t.Errorf("complete %d pending %v, want 5 and none (4 from the full view, then 5 folds)", recv.complete, recv.pending)
	}

	// An older full view changes nothing.
	if recv.applyFull(&viewState{Complete: 3, Latest: 3, Base: []pair{{1, up}}}) {
		t.Error("older full view changed the view")
	}
	if recv.states()[1] != down {
		t.Error("older full view overrode a newer row")
	}
}

func TestViewStateRoundTrip(t *testing.T) {
	v := newView()
	v.applyDelta(1, []pair{{1, up}, {2, up}, {3, down}})
	v.applyDelta(2, []pair{{2, unk}})
	v.applyDelta(4, []pair{{3, up}, {4, down}})
	v.applyDelta(6, []pair{{1, unk}})
	w := newView()
	w.applyFull(v.state())
	if !maps.Equal(v.states(), w.states()) || v.complete != w.complete || v.latest != w.latest || len(v.pending) != len(w.pending) {
		t.Errorf("copy differs: %v c%d l%d p%v, want %v c%d l%d p%v",
			w.states(), w.complete, w.latest, w.pending, v.states(), v.complete, v.latest, v.pending)
	}
	// Filling the gap on both gives the same result.
	v.applyDelta(3, []pair{{4, up}})
	v.applyDelta(5, nil)
	w.applyDelta(3, []pair{{4, up}})
	w.applyDelta(5, nil)
	if !maps.Equal(v.states(), w.states()) || v.complete != 6 || w.complete != 6 {
		t.Errorf("after the gap: %v (c%d) and %v (c%d)", v.states(), v.complete, w.states(), w.complete)
	}
}

// TestViewConverges drives an observer through random changes, delivers
// them to two nodes with loss, reordering, duplicates and push/pull between
// them, and checks that a node with no known gap agrees with the observer,
// and that after one push/pull from the observer all agree.
func TestViewConverges(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		obs := newView()
		a, b := newView(), newView()
		var inflight []*observations
		for step := 0; step < 300; step++ {
			switch r := rng.IntN(10); {
			case r < 4: // the observer changes a few targets
				states := obs.states()
				for range 1 + rng.IntN(3) {
					states[TargetID(rng.IntN(12))] = health.State(rng.IntN(3))
				}
				st := &state{self: &peer{node: "o", view: obs}}
				inflight = append(inflight, st.publishObservations(states, 2)...)
			case r < 8 && len(inflight) > 0: // deliver one, maybe twice, maybe lost
				i := rng.IntN(len(inflight))
				m := inflight[i]
				if rng.IntN(4) > 0 {
					inflight = append(inflight[:i], inflight[i+1:]...)
				}
				if rng.IntN(5) > 0 {
					a.applyDelta(m.Seq, m.Pairs)
				}
				if rng.IntN(5) > 0 {
					b.applyDelta(m.Seq, m.Pairs)
				}
			case r == 8: // push/pull between the two nodes
				sa, sb := a.state(), b.state()
				a.applyFull(sb)
				b.applyFull(sa)
			}
			for _, v := range []*view{a, b} {
				if v.complete == obs.complete && !maps.Equal(v.states(), obs.states()) {
					t.Fatalf("seed %d step %d: complete at %d but %v, want %v", seed, step, v.complete, v.states(), obs.states())
				}
			}
		}
		a.applyFull(obs.state())
		b.applyFull(a.state())
		if !maps.Equal(a.states(), obs.states()) || !maps.Equal(b.states(), obs.states()) {
			t.Fatalf("seed %d: after push/pull %v and %v, want %v", seed, a.states(), b.states(), obs.states())
		}
		if !a.synced() || !b.synced() {
			t.Fatalf("seed %d: not synced after push/pull", seed)
		}
	}
}
