package gossip

import (
	"slices"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// view is one observer's observations as this node knows them, within one
// incarnation (epoch) of the observer.
//
// The observer numbers its changes 1, 2, 3, ... (seq), each change a set
// of (target, state) pairs; state Unknown removes a target. A change is
// sent once as a delta, and a full view is sent by push/pull. Since seqs
// are consecutive, a node knows which changes it has: complete says the
// rows are exact as of that seq; changes after it that arrived out of order
// (a lost or late packet left a gap) are applied to their rows at once and
// listed in pending until the gap fills, from a late delta or a push/pull.
//
// Each row keeps the seq that last set it, so that out-of-order changes
// resolve per target to the highest seq ("highest version wins"). Rows
// at or before complete need no exact seq, which is why a full view sends
// them as bare (ID, state) pairs and only the few rows past a gap carry
// their seq. Removed targets are kept as Unknown rows only while a gap may
// still bring an older state for them; then they are dropped.
//
// view does no I/O and holds no lock; its owner serialises access.
type view struct {
	complete uint64
	latest   uint64   // highest seq known to exist
	pending  []uint64 // applied seqs > complete, ascending
	rows     map[TargetID]row
	removed  int // Unknown rows
	// dead lists the targets of Unknown rows (and some revived since),
	// so that fold looks at those alone, not at every row.
	dead map[TargetID]struct{}
	// feed logs the targets whose state changes; nil logs nothing.
	feed *feed
	// gen counts the changes of state; cache holds states() as of
	// cacheGen, so that reading an unchanged view copies nothing.
	gen, cacheGen uint64
	cache         map[TargetID]health.State
	// mod counts every write to rows or pending; snap holds state() as
	// of snapKey, so that push/pull of an unchanged view neither walks
	// nor sorts its rows again.
	mod     uint64
	snap    *viewState
	snapKey [4]uint64
}

type row struct {
	state health.State
	seq   uint64
}

func newView() *view { return &view{rows: map[TargetID]row{}} }

// set changes one row if seq is newer than what it holds.
func (v *view) set(id TargetID, s health.State, seq uint64) bool {
	r, ok := v.rows[id]
	if ok && r.seq >= seq {
		return false
	}
	if ok && r.state == health.Unknown {
		v.removed--
	}
	if !ok && s == health.Unknown && seq <= v.complete {
		return false
	}
	v.rows[id] = row{state: s, seq: seq}
	v.mod++
	if s == health.Unknown {
		v.removed++
		if v.dead == nil {
			v.dead = map[TargetID]struct{}{}
		}
		v.dead[id] = struct{}{}
	}
	if r.state == s { // a missing row reads as Unknown
		return false
	}
	v.changed(id)
	return true
}

// changed notes that the state of id changed.
func (v *view) changed(id TargetID) {
	v.gen++
	v.feed.note(id)
}

// applyDelta applies change seq. It reports whether the change was new
// (so worth passing on) and whether any row's state changed.
func (v *view) applyDelta(seq uint64, pairs []pair) (fresh, changed bool) {
	if seq == 0 || seq <= v.complete {
		return false, false
	}
	if _, dup := slices.BinarySearch(v.pending, seq); dup {
		return false, false
	}
	for _, p := range pairs {
		if v.set(p.ID, p.State, seq) {
			changed = true
		}
	}
	v.addPending(seq)
	v.latest = max(v.latest, seq)
	v.fold()
	return true, changed
}

func (v *view) addPending(seq uint64) {
	if seq <= v.complete {
		return
	}
	i, found := slices.BinarySearch(v.pending, seq)
	if found || len(v.pending) >= maxPending {
		// Past the limit the gap can only close by push/pull; rows are
		// still applied.
		return
	}
	v.pending = slices.Insert(v.pending, i, seq)
	v.mod++
}

// fold advances complete over consecutive pending seqs and drops removed
// rows that no older change can revive.
func (v *view) fold() {
	i := 0
	for i < len(v.pending) && v.pending[i] <= v.complete+1 {
		v.complete = max(v.complete, v.pending[i])
		i++
	}
	v.pending = v.pending[i:]
	if len(v.pending) == 0 {
		v.pending = nil
	}
	v.latest = max(v.latest, v.complete)
	if v.removed == 0 {
		v.dead = nil
		return
	}
	for id := range v.dead {
		r, ok := v.rows[id]
		switch {
		case !ok || r.state != health.Unknown:
			delete(v.dead, id) // gone or revived
		case r.seq <= v.complete:
			delete(v.rows, id)
			delete(v.dead, id)
			v.removed--
			v.mod++
		}
	}
}

// applyFull merges a full view from push/pull and reports whether any
// target's state changed. It updates the rows in place: a push/pull of a
// view that is mostly the same allocates nothing.
func (v *view) applyFull(s *viewState) (changed bool) {
	if s.Complete > v.complete {
		// Rows at or before s.Complete are replaced by its rows; newer
		// rows of ours stay, and so do its newer rows (below).
		v.mod++
		base := s.Base
		if !slices.IsSortedFunc(base, cmpPair) {
			base = slices.Clone(base)
			slices.SortFunc(base, cmpPair)
		}
		var diff []TargetID
		for id, r := range v.rows {
			if r.seq > s.Complete {
				continue
			}
			if i, ok := slices.BinarySearchFunc(base, id, func(p pair, id TargetID) int { return cmpID(p.ID, id) }); ok && base[i].State != health.Unknown {
				continue // set below
			}
			if r.state == health.Unknown {
				v.removed--
			} else {
				diff = append(diff, id)
			}
			delete(v.rows, id)
		}
		for _, p := range base {
			if p.State == health.Unknown {
				continue
			}
			r, ok := v.rows[p.ID]
			if ok && r.seq > s.Complete {
				continue
			}
			if ok && r.state == health.Unknown {
				v.removed--
			}
			if r.state != p.State {
				diff = append(diff, p.ID)
			}
			v.rows[p.ID] = row{state: p.State, seq: s.Complete}
		}
		v.complete = s.Complete
		if len(diff) > 0 {
			changed = true
			v.gen++
			v.feed.noteAll(diff)
		}
	}
	for _, r := range s.Newer {
		if r.Seq > v.complete && v.set(r.ID, r.State, r.Seq) {
			changed = true
		}
	}
	for _, seq := range s.Pending {
		v.addPending(seq)
	}
	v.latest = max(v.latest, s.Latest)
	v.fold()
	return changed
}

func cmpPair(a, b pair) int { return cmpID(a.ID, b.ID) }

// state returns the view for push/pull. Callers must not modify it: it
// is kept until the view changes.
func (v *view) state() *viewState {
	key := [4]uint64{v.mod, v.complete, v.latest, uint64(len(v.pending))}
	if v.snap != nil && v.snapKey == key {
		return v.snap
	}
	v.snap, v.snapKey = v.walk(), key
	return v.snap
}

// walk builds state() from the rows.
func (v *view) walk() *viewState {
	s := &viewState{Complete: v.complete, Latest: v.latest, Pending: slices.Clone(v.pending)}
	for id, r := range v.rows {
		if r.seq > v.complete {
			s.Newer = append(s.Newer, seqRow{ID: id, State: r.state, Seq: r.seq})
		} else if r.state != health.Unknown {
			s.Base = append(s.Base, pair{ID: id, State: r.state})
		}
	}
	slices.SortFunc(s.Base, func(a, b pair) int { return cmpID(a.ID, b.ID) })
	slices.SortFunc(s.Newer, func(a, b seqRow) int { return cmpID(a.ID, b.ID) })
	return s
}

// states returns the known states, without removed rows.
func (v *view) states() map[TargetID]health.State {
	m := make(map[TargetID]health.State, len(v.rows))
	for id, r := range v.rows {
		if r.state != health.Unknown {
			m[id] = r.state
		}
	}
	return m
}

// cachedStates is states, computed again only after a change: callers
// must not modify it.
func (v *view) cachedStates() map[TargetID]health.State {
	if v.cache == nil || v.cacheGen != v.gen {
		v.cache, v.cacheGen = v.states(), v.gen
	}
	return v.cache
}

// statesOf returns the known states of the targets of ids.
func (v *view) statesOf(ids []TargetID) map[TargetID]health.State {
	m := make(map[TargetID]health.State, min(len(ids), len(v.rows)))
	for _, id := range ids {
		if r, ok := v.rows[id]; ok && r.state != health.Unknown {
			m[id] = r.state
		}
	}
	return m
}

// synced reports whether the view has every change known to exist.
func (v *view) synced() bool { return v.complete == v.latest }

func cmpID(a, b TargetID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
