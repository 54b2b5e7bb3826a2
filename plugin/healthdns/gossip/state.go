package gossip

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// state is everything this node knows of the cluster's replicated data:
// per node, its catalog and its observation view. It is pure: time comes
// in as an argument, messages to send go out as return values, and the
// Node serialises every call.
//
// A node's data is numbered within its incarnation, the epoch: the
// microsecond it started. A restarted node has a higher epoch, and the
// state of its previous life is dropped when the first word of the new one
// arrives; a node that hears of itself under a higher epoch (its clock went
// back, or a twin uses its name) moves past it and republishes.
type state struct {
	self      *peer
	peers     map[string]*peer // every node but self
	catSeq    uint64
	retention time.Duration
	collided  map[TargetID]bool
}

// peer is what is known of one node.
type peer struct {
	node  string
	label string
	role  Role
	epoch uint64
	beat  uint64
	heard time.Time // local time of the last news from it; zero for never
	// leaving: it announced that it leaves; when memberlist then reports
	// it gone, it left rather than died.
	leaving bool
	view    *view     // nil until it publishes observations
	cat     *catalog  // nil until it publishes a catalog
	asm     *assembly // catalog pages being collected
}

type catalog struct {
	epoch, seq uint64
	targets    []CatalogTarget // sorted by ID
}

type assembly struct {
	epoch, seq uint64
	pages      int
	got        map[int][]CatalogTarget
}

func newState(name, label string, role Role, epoch uint64, retention time.Duration) *state {
	return &state{
		self:      &peer{node: name, label: label, role: role, epoch: epoch},
		peers:     map[string]*peer{},
		retention: retention,
		collided:  map[TargetID]bool{},
	}
}

// newer reports whether version (e1, s1) comes after (e2, s2).
func newer(e1, s1, e2, s2 uint64) bool {
	return e1 > e2 || (e1 == e2 && s1 > s2)
}

func (s *state) peer(node string) *peer {
	p := s.peers[node]
	if p == nil {
		p = &peer{node: node}
		s.peers[node] = p
	}
	return p
}

// advance moves p to epoch and reports false when epoch is an older
// incarnation than the one known.
func (p *peer) advance(epoch uint64) bool {
	if epoch < p.epoch {
		return false
	}
	if epoch > p.epoch {
		p.epoch, p.beat, p.view, p.asm, p.leaving = epoch, 0, nil, nil, false
	}
	return true
}

// Publishing (self).

// publishObservations makes the node's own view equal to states and
// returns the changes as deltas of at most perMsg pairs, one seq each.
func (s *state) publishObservations(states map[TargetID]health.State, perMsg int) []*observations {
	me := s.self
	if me.view == nil {
		me.view = newView()
	}
	v := me.view
	var diff []pair
	for id, st := range states {
		if st != health.Unknown && v.rows[id].state != st {
			diff = append(diff, pair{ID: id, State: st})
		}
	}
	for id, r := range v.rows {
		if r.state != health.Unknown && states[id] == health.Unknown {
			diff = append(diff, pair{ID: id, State: health.Unknown})
		}
	}
	slices.SortFunc(diff, func(a, b pair) int { return cmp.Compare(a.ID, b.ID) })
	var msgs []*observations
	for len(diff) > 0 {
		n := min(len(diff), perMsg)
		m := &observations{Node: me.node, Epoch: me.epoch, Seq: v.latest + 1, Pairs: diff[:n:n]}
		v.applyDelta(m.Seq, m.Pairs)
		msgs = append(msgs, m)
		diff = diff[n:]
	}
	return msgs
}

// publishCatalog sets the node's own catalog and returns it as pages.
func (s *state) publishCatalog(ts []CatalogTarget, name string) ([]*catalogPage, error) {
	byID := make(map[TargetID]CatalogTarget, len(ts))
	for _, t := range ts {
		if o, dup := byID[t.ID]; dup && !o.equal(t) {
			return nil, fmt.Errorf("gossip: targets %s and %s have the same ID %s", o.Addr, t.Addr, t.ID)
		}
		byID[t.ID] = t
	}
	sorted := make([]CatalogTarget, 0, len(byID))
	for _, t := range byID {
		sorted = append(sorted, t)
	}
	slices.SortFunc(sorted, func(a, b CatalogTarget) int { return cmp.Compare(a.ID, b.ID) })
	pages, err := paginate(name, s.self.epoch, s.catSeq+1, sorted)
	if err != nil {
		return nil, err
	}
	s.catSeq++
	s.self.cat = &catalog{epoch: s.self.epoch, seq: s.catSeq, targets: sorted}
	return pages, nil
}

// paginate cuts a catalog into pages that each fit one gossip message.
func paginate(node string, epoch, seq uint64, ts []CatalogTarget) ([]*catalogPage, error) {
	header := 2 + 2 + len(node) + 3*10 + 3*3
	var pages []*catalogPage
	cur := &catalogPage{Node: node, Epoch: epoch, Seq: seq}
	size := header
	for _, t := range ts {
		n := len(appendTarget(nil, t))
		if size+n > maxBroadcast && len(cur.Targets) > 0 {
			pages = append(pages, cur)
			cur = &catalogPage{Node: node, Epoch: epoch, Seq: seq}
			size = header
		}
		cur.Targets = append(cur.Targets, t)
		size += n
	}
	pages = append(pages, cur)
	if len(pages) > maxPages {
		return nil, fmt.Errorf("gossip: catalog of %d targets needs %d pages, over the limit %d", len(ts), len(pages), maxPages)
	}
	for i, p := range pages {
		p.Page, p.Pages = i, len(pages)
	}
	return pages, nil
}

// heartbeat returns the node's next heartbeat.
func (s *state) heartbeat(now time.Time) *heartbeat {
	me := s.self
	me.beat++
	me.heard = now
	hb := &heartbeat{Node: me.node, Label: me.label, Role: me.role, Epoch: me.epoch, Beat: me.beat, Leaving: me.leaving}
	if me.view != nil {
		hb.ObsSeq = me.view.latest
	}
	if me.cat != nil {
		hb.CatEpoch, hb.CatSeq = me.cat.epoch, me.cat.seq
	}
	return hb
}

// refute moves the node past an incarnation of itself it heard of and
// returns its data republished under the new epoch.
func (s *state) refute(seen, nowEpoch uint64, perMsg int) (obs []*observations, pages []*catalogPage) {
	me := s.self
	me.epoch = max(seen+1, nowEpoch)
	if me.view != nil {
		states := me.view.states()
		me.view = nil
		obs = s.publishObservations(states, perMsg)
	}
	if me.cat != nil {
		s.catSeq = 0
		pages, _ = s.publishCatalog(me.cat.targets, me.node) // fitted before
	}
	return obs, pages
}

// Receiving. Each apply reports whether the message was news (so it is
// passed on) and whether what consumers see changed; self reports a
// message about this node from a later incarnation (see refute).

type outcome struct {
	fresh, changed bool
	self           uint64 // epoch to refute, if any
}

func (s *state) aboutSelf(node string, epoch uint64) (bool, outcome) {
	if node != s.self.node {
		return false, outcome{}
	}
	if epoch > s.self.epoch {
		return true, outcome{self: epoch}
	}
	return true, outcome{}
}

func (s *state) applyObservations(m *observations, now time.Time) outcome {
	if me, o := s.aboutSelf(m.Node, m.Epoch); me {
		return o
	}
	p := s.peer(m.Node)
	if !p.advance(m.Epoch) {
		return outcome{}
	}
	if p.view == nil {
		p.view = newView()
	}
	var o outcome
	o.fresh, o.changed = p.view.applyDelta(m.Seq, m.Pairs)
	if o.fresh {
		p.heard = now
	}
	return o
}

func (s *state) applyHeartbeat(m *heartbeat, now time.Time) outcome {
	if me, o := s.aboutSelf(m.Node, m.Epoch); me {
		return o
	}
	p := s.peer(m.Node)
	fresh := m.Epoch > p.epoch || m.Beat > p.beat
	if !p.advance(m.Epoch) || !fresh {
		return outcome{}
	}
	var o outcome
	o.fresh = true
	o.changed = p.label != m.Label || p.role != m.Role || p.leaving != m.Leaving
	p.label, p.role, p.beat, p.heard, p.leaving = m.Label, m.Role, m.Beat, now, m.Leaving
	if m.ObsSeq > 0 {
		if p.view == nil {
			p.view = newView()
			o.changed = true
		}
		p.view.latest = max(p.view.latest, m.ObsSeq)
	}
	return o
}

func (s *state) applyPage(m *catalogPage, now time.Time) outcome {
	if me, o := s.aboutSelf(m.Node, m.Epoch); me {
		return o
	}
	p := s.peer(m.Node)
	if !p.advance(m.Epoch) {
		return outcome{}
	}
	if p.cat != nil && !newer(m.Epoch, m.Seq, p.cat.epoch, p.cat.seq) {
		return outcome{}
	}
	a := p.asm
	if a == nil || newer(m.Epoch, m.Seq, a.epoch, a.seq) {
		a = &assembly{epoch: m.Epoch, seq: m.Seq, pages: m.Pages, got: map[int][]CatalogTarget{}}
		p.asm = a
	}
	if a.epoch != m.Epoch || a.seq != m.Seq || a.pages != m.Pages {
		return outcome{} // older, or inconsistent with what we have
	}
	if _, dup := a.got[m.Page]; dup {
		return outcome{}
	}
	a.got[m.Page] = m.Targets
	p.heard = now
	o := outcome{fresh: true}
	if len(a.got) == a.pages {
		var ts []CatalogTarget
		for i := range a.pages {
			ts = append(ts, a.got[i]...)
		}
		slices.SortFunc(ts, func(a, b CatalogTarget) int { return cmp.Compare(a.ID, b.ID) })
		p.cat = &catalog{epoch: a.epoch, seq: a.seq, targets: ts}
		p.asm = nil
		o.changed = true
	}
	return o
}

// Push/pull.

// full returns the state to send in push/pull.
func (s *state) full(now time.Time) *fullState {
	fs := &fullState{Sender: s.self.node}
	add := func(p *peer) {
		ps := peerState{Node: p.node, Label: p.label, Role: p.role, Epoch: p.epoch, Beat: p.beat, AgeMS: ageNever, Leaving: p.leaving}
		if !p.heard.IsZero() {
			ps.AgeMS = uint64(min(max(now.Sub(p.heard), 0).Milliseconds(), ageNever-1))
		}
		if p.view != nil {
			ps.View = p.view.state()
		}
		if p.cat != nil {
			ps.Cat = &catState{Epoch: p.cat.epoch, Seq: p.cat.seq, Targets: p.cat.targets}
		}
		fs.Peers = append(fs.Peers, ps)
	}
	add(s.self)
	for _, p := range s.peers {
		if !p.heard.IsZero() && now.Sub(p.heard) <= s.retention {
			add(p)
		}
	}
	return fs
}

// mergeFull merges a state received by push/pull and reports whether what
// consumers see changed, and an epoch of self to refute.
func (s *state) mergeFull(fs *fullState, now time.Time) outcome {
	var o outcome
	for i := range fs.Peers {
		ps := &fs.Peers[i]
		if me, so := s.aboutSelf(ps.Node, ps.Epoch); me {
			o.self = max(o.self, so.self)
			continue
		}
		age := time.Duration(ps.AgeMS) * time.Millisecond
		if ps.AgeMS == ageNever || age > s.retention {
			continue
		}
		p := s.peer(ps.Node)
		if !p.advance(ps.Epoch) {
			continue
		}
		if ps.Role != 0 { // 0: the sender has not heard its heartbeat yet
			if p.label != ps.Label || p.role != ps.Role {
				o.changed = true
			}
			p.label, p.role = ps.Label, ps.Role
		}
		p.beat = max(p.beat, ps.Beat)
		if ps.Leaving && !p.leaving {
			p.leaving = true
			o.changed = true
		}
		if heard := now.Add(-age); heard.After(p.heard) {
			p.heard = heard
		}
		if ps.View != nil {
			if p.view == nil {
				p.view = newView()
				o.changed = true
			}
			if p.view.applyFull(ps.View) {
				o.changed = true
			}
		}
		if c := ps.Cat; c != nil && c.Epoch <= p.epoch && (p.cat == nil || newer(c.Epoch, c.Seq, p.cat.epoch, p.cat.seq)) {
			ts := slices.Clone(c.Targets)
			slices.SortFunc(ts, func(a, b CatalogTarget) int { return cmp.Compare(a.ID, b.ID) })
			p.cat = &catalog{epoch: c.Epoch, seq: c.Seq, targets: ts}
			if p.asm != nil && !newer(p.asm.epoch, p.asm.seq, c.Epoch, c.Seq) {
				p.asm = nil
			}
			o.changed = true
		}
	}
	return o
}

// gc forgets nodes not heard from within the retention.
func (s *state) gc(now time.Time) (forgot bool) {
	for name, p := range s.peers {
		if p.heard.IsZero() || now.Sub(p.heard) > s.retention {
			delete(s.peers, name)
			forgot = true
		}
	}
	return forgot
}

// Reading.

// leaving lists the nodes that announced they leave.
func (s *state) leaving() map[string]bool {
	out := map[string]bool{}
	for name, p := range s.peers {
		if p.leaving {
			out[name] = true
		}
	}
	if s.self.leaving {
		out[s.self.node] = true
	}
	return out
}

// catalogUnion returns every target of every catalog, each once, sorted by
// ID, leaving out the catalogs of nodes skip says to.
func (s *state) catalogUnion(skip func(node string) bool) []CatalogTarget {
	all := []*peer{s.self}
	for _, p := range s.peers {
		if p.cat != nil && !skip(p.node) {
			all = append(all, p)
		}
	}
	slices.SortFunc(all[1:], func(a, b *peer) int { return cmp.Compare(a.node, b.node) })
	byID := map[TargetID]CatalogTarget{}
	for _, p := range all {
		if p.cat == nil {
			continue
		}
		for _, t := range p.cat.targets {
			if o, ok := byID[t.ID]; ok {
				if !o.equal(t) {
					// Two definitions hash alike: 64-bit collisions are
					// vanishingly rare, but keep the first (self, then
					// by node name) and count it.
					s.collided[t.ID] = true
				}
				continue
			}
			byID[t.ID] = t
		}
	}
	out := make([]CatalogTarget, 0, len(byID))
	for _, t := range byID {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b CatalogTarget) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
