package gossip

import (
	"slices"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// feed logs the targets whose state (or reason) changed in some view, so
// that a consumer rebuilds only what changed instead of re-reading every
// row of every observer (see Node.ChangesSince). A cursor is a position in
// the log: base is the cursor of ids[0]. Past maxFeed IDs the older half
// is dropped, and a cursor before base gets "all". A change too large to
// be worth listing (a whole view merged or forgotten) also moves base past
// the end, so every consumer starts again from a full read.
//
// feed holds no lock; the state's owner serialises access. A nil feed
// logs nothing (views built outside a state, in tests).
type feed struct {
	base uint64
	ids  []TargetID
}

const (
	maxFeed = 1 << 18
	// maxFeedList is the most IDs one change lists before it says "all"
	// instead: a consumer rebuilds that many faster at once.
	maxFeedList = maxFeed / 4
)

func newFeed() *feed { return &feed{base: 1} }

func (f *feed) end() uint64 { return f.base + uint64(len(f.ids)) }

func (f *feed) note(id TargetID) {
	if f == nil {
		return
	}
	if len(f.ids) >= maxFeed {
		h := len(f.ids) / 2
		k := copy(f.ids, f.ids[h:])
		f.ids = f.ids[:k]
		f.base += uint64(h)
	}
	f.ids = append(f.ids, id)
}

// all says every target may have changed.
func (f *feed) all() {
	if f == nil {
		return
	}
	f.base = f.end() + 1
	f.ids = f.ids[:0]
}

// noteAll logs ids, or says all when they are too many to list.
func (f *feed) noteAll(ids []TargetID) {
	if f == nil {
		return
	}
	if len(ids) > maxFeedList {
		f.all()
		return
	}
	for _, id := range ids {
		f.note(id)
	}
}

// noteView logs every target v has a state for: the view vanishes.
func (f *feed) noteView(v *view) {
	if f == nil || v == nil {
		return
	}
	if len(v.rows)-v.removed > maxFeedList {
		f.all()
		return
	}
	for id, r := range v.rows {
		if r.state != health.Unknown {
			f.note(id)
		}
	}
}

// since returns the IDs logged from cursor on and the next cursor; all
// when cursor is not in the log.
func (f *feed) since(cursor uint64) (ids []TargetID, next uint64, all bool) {
	end := f.end()
	if cursor < f.base || cursor > end {
		return nil, end, true
	}
	return slices.Clone(f.ids[cursor-f.base:]), end, false
}

// ChangesSince returns the IDs of the targets whose state changed in some
// observer's view (this node's own included) since cursor, and the cursor
// to pass next time. all is true when the node cannot list them (cursor 0,
// or more changed since cursor than the node keeps): the caller must then
// treat every target as changed. IDs may repeat.
//
// A target whose reason (ObserverView.Reasons) changed is listed too.
// Changes of liveness (Alive, Heard, LastHeard, Silence, Synced) are not:
// read them from the views each time. Any number of consumers may call it,
// each with its own cursor.
func (n *Node) ChangesSince(cursor uint64) (ids []TargetID, next uint64, all bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.feed.since(cursor)
}
