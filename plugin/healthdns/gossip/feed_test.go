package gossip

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// replica is what an incremental consumer keeps: per target, what each
// observer says of it (as a verdict needs it), brought up to date by
// ChangesSince and ViewsOf alone, re-reading only the targets listed.
type replica struct {
	cursor  uint64
	targets map[TargetID]map[string]string // observer → state and reason
	fulls   int                            // times the node said "all"
}

func say(v ObserverView, id TargetID) (string, bool) {
	s, ok := v.States[id]
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%v %q", s, v.Reasons[id]), true
}

// picture is every view as the replica keeps it.
func picture(vs []ObserverView) map[TargetID]map[string]string {
	out := map[TargetID]map[string]string{}
	for _, v := range vs {
		for id := range v.States {
			if out[id] == nil {
				out[id] = map[string]string{}
			}
			out[id][v.Node], _ = say(v, id)
		}
		for id := range v.Reasons {
			if _, ok := v.States[id]; !ok {
				out[id][v.Node] = "reason without state"
			}
		}
	}
	return out
}

// sync applies what changed since the last sync; between, when not nil,
// runs between the two calls, as a change landing there would.
func (r *replica) sync(n *Node, between func()) {
	ids, next, all := n.ChangesSince(r.cursor)
	r.cursor = next
	if between != nil {
		between()
	}
	if all {
		r.fulls++
		r.targets = picture(n.Views())
		return
	}
	vs := n.ViewsOf(ids)
	for _, id := range ids {
		row := map[string]string{}
		for _, v := range vs {
			if s, ok := say(v, id); ok {
				row[v.Node] = s
			}
		}
		if len(row) == 0 {
			delete(r.targets, id)
		} else {
			r.targets[id] = row
		}
	}
}

func (r *replica) diff(vs []ObserverView) string {
	want := picture(vs)
	for id, w := range want {
		if !maps.Equal(r.targets[id], w) {
			return fmt.Sprintf("target %s: %v, want %v", id, r.targets[id], w)
		}
	}
	for id, got := range r.targets {
		if want[id] == nil {
			return fmt.Sprintf("target %s: %v, want nothing", id, got)
		}
	}
	return ""
}

// TestChangesSinceKeepsAReplicaEqual drives a node with every kind of
// change (deltas in and out of order, bulk changes, push/pull states, reasons,
// its own publishes, an observer's restart, a forgotten observer, a
// refute) and checks that a consumer reading only what ChangesSince lists
// ends equal to Views() every time, and is never told "all" but at first.
func TestChangesSinceKeepsAReplicaEqual(t *testing.T) {
	n, err := New(Config{Name: "me", Observer: "here", Role: RoleServer, BindAddr: "127.0.8.1", LogOutput: io.Discard,
		HeartbeatInterval: time.Hour, GossipInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	rng := rand.New(rand.NewPCG(1, 18))
	const targets = 300
	id := func() TargetID { return TargetID(1 + rng.IntN(targets)) }
	randState := func() health.State { return health.State(rng.IntN(3)) }

	epoch := uint64(1000)
	observers := make([]*state, 4)
	own := make([]map[TargetID]health.State, len(observers))
	newObserver := func(i int) {
		epoch++
		s := newState(fmt.Sprintf("agent-%d", i), fmt.Sprintf("loc%d", i), RoleAgent, epoch, time.Hour)
		s.bulkAfter = 2
		observers[i], own[i] = s, map[TargetID]health.State{}
	}
	for i := range observers {
		newObserver(i)
	}
	mine := map[TargetID]health.State{}
	var held [][]byte // deltas held back, delivered late
	deliver := func(b []byte) { n.handle(b) }
	publish := func(i, changes int, hold bool) {
		for range changes {
			own[i][id()] = randState()
		}
		for _, m := range observers[i].publishObservations(own[i], 10) {
			if b := m.encode(); hold && !m.Bulk && rng.IntN(2) == 0 {
				held = append(held, b)
			} else {
				deliver(b)
			}
		}
	}

	r := &replica{}
	r.sync(n, nil)
	ops := []func(){
		func() { publish(rng.IntN(len(observers)), 1+rng.IntN(5), false) },
		func() { publish(rng.IntN(len(observers)), 1+rng.IntN(5), true) }, // some held: gaps
		func() { publish(rng.IntN(len(observers)), 40, false) },           // bulk, direct
		func() { // late deltas
			rng.Shuffle(len(held), func(a, b int) { held[a], held[b] = held[b], held[a] })
			for _, b := range held {
				deliver(b)
			}
			held = nil
		},
		func() { // push/pull: an observer's whole state, or a relayed one
			s := observers[rng.IntN(len(observers))]
			s.heartbeat(n.now())
			deliver(s.full(n.now()).encode())
		},
		func() { // reasons
			i := rng.IntN(len(observers))
			reasons := map[TargetID]string{}
			for tid, st := range own[i] {
				if st == health.Down && rng.IntN(2) == 0 {
					reasons[tid] = fmt.Sprintf("status %d", 500+rng.IntN(4))
				}
			}
			for _, m := range observers[i].reasons.publish(observers[i].self.node, observers[i].self.epoch, reasons) {
				deliver(m.encode())
			}
		},
		func() { // own probes
			for range 1 + rng.IntN(20) {
				mine[id()] = randState()
			}
			n.PublishObservations(mine)
			reasons := map[TargetID]string{}
			for tid, st := range mine {
				if st == health.Down {
					reasons[tid] = "refused"
				}
			}
			n.PublishReasons(reasons)
		},
		func() { // an observer restarts: its old view vanishes
			i := rng.IntN(len(observers))
			newObserver(i)
			publish(i, 30, false)
		},
		func() { // an observer is forgotten
			i := rng.IntN(len(observers))
			n.mu.Lock()
			if p := n.st.peers[observers[i].self.node]; p != nil {
				p.heard = time.Time{}
			}
			n.st.gc(n.now())
			n.mu.Unlock()
		},
		func() { // another node claims this one's name: refute
			n.mu.Lock()
			hb := &heartbeat{Node: "me", Role: RoleServer, Epoch: n.st.self.epoch + 1, Beat: 1, ObsAgeMS: ageNever}
			n.mu.Unlock()
			deliver(hb.encode())
		},
	}
	for step := range 3000 {
		op := ops[rng.IntN(len(ops))]
		if rng.IntN(3) == 0 {
			r.sync(n, op) // the change lands between ChangesSince and ViewsOf
			r.sync(n, nil)
		} else {
			op()
			r.sync(n, nil)
		}
		if d := r.diff(n.Views()); d != "" {
			t.Fatalf("step %d: replica differs from Views: %s", step, d)
		}
	}
	if r.fulls != 1 {
		t.Errorf("told all %d times, want once (the first)", r.fulls)
	}
	if len(r.targets) < targets/2 {
		t.Errorf("only %d targets observed at the end: the test did too little", len(r.targets))
	}
}

func TestFeedBounds(t *testing.T) {
	f := newFeed()
	if _, next, all := f.since(0); !all || next != 1 {
		t.Fatalf("cursor 0: all %v next %d", all, next)
	}
	_, c, _ := f.since(0)
	for i := range maxFeed + 10 {
		f.note(TargetID(i))
	}
	if _, _, all := f.since(c); !all {
		t.Error("a cursor older than the log kept got a list")
	}
	_, c, _ = f.since(0)
	f.note(7)
	f.note(7)
	if ids, next, all := f.since(c); all || !slices.Equal(ids, []TargetID{7, 7}) || next != c+2 {
		t.Errorf("since(%d) = %v, %d, %v", c, ids, next, all)
	}
	f.noteAll(make([]TargetID, maxFeedList+1))
	if _, _, all := f.since(c + 2); !all {
		t.Error("a change too large to list did not say all")
	}
}
