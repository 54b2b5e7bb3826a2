package gossip

import (
	"cmp"
	"fmt"
	"maps"
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
	every     time.Duration // this node's heartbeat interval
	collided  map[TargetID]bool
	// bulkAfter is the most gossip messages a change of the node's own
	// observations or catalog may take; a larger change is sent whole and
	// directly to every member (bulk). 0: never bulk.
	bulkAfter int
	reasons   reasonState // why observers report targets down (reasons.go)
	feed      *feed       // targets whose state changed in some view (feed.go)
}

// peer is what is known of one node.
type peer struct {
	node  string
	label string
	role  Role
	epoch uint64
	beat  uint64
	heard time.Time     // local time of the last news from it; zero for never
	every time.Duration // its heartbeat interval, as it says; 0 until heard
	// observed is the local time of its latest observation round as far
	// as this node knows; zero for never. Its view is as fresh as that,
	// however recent its heartbeats.
	observed time.Time
	// leaving: it announced that it leaves; when memberlist then reports
	// it gone, it left rather than died.
	leaving bool
	// edge: an edge client, carried by a server; no memberlist member.
	edge    bool
	view    *view      // nil until it publishes observations
	cat     *catalog   // nil until it publishes a catalog
	asm     *assembly  // catalog pages being collected
	catWant catVersion // the latest catalog version it announced
	// behind is since when this node knows it lacks some of the node's
	// data (a gap in its view, a newer catalog); asked is when it last
	// asked a peer for it, asks how often (see Node.repair).
	behind, asked time.Time
	asks          int
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
	f := newFeed()
	return &state{
		self:      &peer{node: name, label: label, role: role, epoch: epoch},
		peers:     map[string]*peer{},
		retention: retention,
		collided:  map[TargetID]bool{},
		reasons:   reasonState{feed: f},
		feed:      f,
	}
}

// newView returns an empty view whose changes go to the feed.
func (s *state) newView() *view {
	v := newView()
	v.feed = s.feed
	return v
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
// incarnation than the one known. The view of the older one vanishes:
// its rows go to f.
func (p *peer) advance(epoch uint64, f *feed) bool {
	if epoch < p.epoch {
		return false
	}
	if epoch > p.epoch {
		f.noteView(p.view)
		p.epoch, p.beat, p.view, p.asm, p.leaving, p.observed = epoch, 0, nil, nil, false, time.Time{}
	}
	return true
}

// Publishing (self).

// publishObservations makes the node's own view equal to states and
// returns the changes as deltas of at most perMsg pairs, one seq each.
func (s *state) publishObservations(states map[TargetID]health.State, perMsg int) []*observations {
	me := s.self
	if me.view == nil {
		me.view = s.newView()
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
	if s.bulkAfter > 0 && len(diff) > s.bulkAfter*perMsg {
		m := &observations{Node: me.node, Epoch: me.epoch, Seq: v.latest + 1, Pairs: diff, Bulk: true}
		v.applyDelta(m.Seq, m.Pairs)
		return []*observations{m}
	}
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

// publishCatalog sets the node's own catalog and returns it as pages; none
// when it is the catalog published already.
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
	if c := s.self.cat; c != nil && c.epoch == s.self.epoch && slices.EqualFunc(c.targets, sorted, CatalogTarget.equal) {
		return nil, nil
	}
	pages := paginate(name, s.self.epoch, s.catSeq+1, sorted)
	s.catSeq++
	s.self.cat = &catalog{epoch: s.self.epoch, seq: s.catSeq, targets: sorted}
	return pages, nil
}

// paginate cuts a catalog into pages that each fit one gossip message.
func paginate(node string, epoch, seq uint64, ts []CatalogTarget) []*catalogPage {
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
	// More pages than a receiver takes (maxPages) is no error: a catalog
	// of more than bulkAfter pages goes whole and directly (sendCatalog),
	// never as pages.
	for i, p := range pages {
		p.Page, p.Pages = i, len(pages)
	}
	return pages
}

// heartbeat returns the node's next heartbeat.
func (s *state) heartbeat(now time.Time) *heartbeat {
	me := s.self
	me.beat++
	me.heard = now
	hb := &heartbeat{Node: me.node, Label: me.label, Role: me.role, Epoch: me.epoch, Beat: me.beat, Leaving: me.leaving, Edge: me.edge, ObsAgeMS: s.obsAge(now),
		EveryMS: uint64(s.every / time.Millisecond)}
	if me.view != nil {
		hb.ObsSeq = me.view.latest
	}
	if me.cat != nil {
		hb.CatEpoch, hb.CatSeq = me.cat.epoch, me.cat.seq
	}
	return hb
}

// observe records an observation round of the node's own at t: its view
// is current as of then.
func (s *state) observe(t time.Time) {
	if t.After(s.self.observed) {
		s.self.observed = t
	}
}

// selfObserved is when the node's own view was last current: an empty
// view always is, since it says nothing that could grow old.
func (s *state) selfObserved(now time.Time) time.Time {
	if v := s.self.view; v != nil && len(v.rows) == v.removed {
		return now
	}
	return s.self.observed
}

// obsAge is the age of the node's latest observation round on the wire.
func (s *state) obsAge(now time.Time) uint64 {
	if s.self.view == nil {
		return ageNever
	}
	return ageMS(now, s.selfObserved(now))
}

// refute moves the node past an incarnation of itself it heard of and
// returns its data republished under the new epoch.
func (s *state) refute(seen, nowEpoch uint64, perMsg int) (obs []*observations, pages []*catalogPage) {
	me := s.self
	me.epoch = max(seen+1, nowEpoch)
	if me.view != nil {
		states := me.view.states()
		s.feed.noteView(me.view)
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
	if !p.advance(m.Epoch, s.feed) {
		return outcome{}
	}
	if p.view == nil {
		p.view = s.newView()
	}
	var o outcome
	latest := p.view.latest
	o.fresh, o.changed = p.view.applyDelta(m.Seq, m.Pairs)
	if o.fresh {
		p.heard = now
		if m.Seq > latest {
			// The observer publishes after observing: its newest change
			// dates its view. (An older one, late, does not.)
			p.seen(now)
		}
	}
	return o
}

// seen moves the date of p's latest observation round to t if later.
func (p *peer) seen(t time.Time) {
	if t.After(p.observed) {
		p.observed = t
	}
}

// wantCatalog notes a catalog version p announced.
func (p *peer) wantCatalog(epoch, seq uint64) {
	if newer(epoch, seq, p.catWant.Epoch, p.catWant.Seq) {
		p.catWant = catVersion{Epoch: epoch, Seq: seq}
	}
}

// lacking reports whether this node knows it lacks some of p's data.
func (p *peer) lacking() bool {
	if p.view != nil && !p.view.synced() {
		return true
	}
	if p.catWant.Epoch == p.epoch && (p.cat == nil || newer(p.catWant.Epoch, p.catWant.Seq, p.cat.epoch, p.cat.seq)) && p.catWant.Seq > 0 {
		return true
	}
	return false
}

func (s *state) applyHeartbeat(m *heartbeat, now time.Time) outcome {
	if me, o := s.aboutSelf(m.Node, m.Epoch); me {
		return o
	}
	p := s.peer(m.Node)
	fresh := m.Epoch > p.epoch || m.Beat > p.beat
	if !p.advance(m.Epoch, s.feed) || !fresh {
		return outcome{}
	}
	var o outcome
	o.fresh = true
	o.changed = p.label != m.Label || p.role != m.Role || p.leaving != m.Leaving || p.edge != m.Edge
	p.label, p.role, p.beat, p.heard, p.leaving, p.edge = m.Label, m.Role, m.Beat, now, m.Leaving, m.Edge
	p.every = time.Duration(m.EveryMS) * time.Millisecond
	if m.ObsSeq > 0 {
		if p.view == nil {
			p.view = s.newView()
			o.changed = true
		}
		p.view.latest = max(p.view.latest, m.ObsSeq)
	}
	p.seen(since(now, m.ObsAgeMS))
	p.wantCatalog(m.CatEpoch, m.CatSeq)
	return o
}

func (s *state) applyPage(m *catalogPage, now time.Time) outcome {
	if me, o := s.aboutSelf(m.Node, m.Epoch); me {
		return o
	}
	p := s.peer(m.Node)
	if !p.advance(m.Epoch, s.feed) {
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
		p.cat = &catalog{epoch: a.epoch, seq: a.seq, targets: s.shared(ts)}
		p.asm = nil
		o.changed = true
	}
	return o
}

// shared returns the targets of a catalog already held that equals ts,
// else ts: servers usually publish the same catalog, and at 100,000
// targets each copy costs some 15 MB. Catalogs are never modified.
func (s *state) shared(ts []CatalogTarget) []CatalogTarget {
	for _, p := range append([]*peer{s.self}, slices.Collect(maps.Values(s.peers))...) {
		if c := p.cat; c != nil && len(c.targets) == len(ts) && slices.EqualFunc(c.targets, ts, CatalogTarget.equal) {
			return c.targets
		}
	}
	return ts
}

// Push/pull and repair.

// info returns what a state or digest says of p besides its data.
func (s *state) info(p *peer, now time.Time) peerInfo {
	pi := peerInfo{Node: p.node, Label: p.label, Role: p.role, Epoch: p.epoch, Beat: p.beat,
		AgeMS: ageMS(now, p.heard), ObsAgeMS: ageMS(now, p.observed), Leaving: p.leaving, Edge: p.edge}
	if p == s.self {
		pi.AgeMS, pi.ObsAgeMS = 0, s.obsAge(now)
	}
	return pi
}

// known returns self and every node heard from within the retention.
func (s *state) known(now time.Time) []*peer {
	out := []*peer{s.self}
	for _, p := range s.peers {
		if !p.heard.IsZero() && now.Sub(p.heard) <= s.retention {
			out = append(out, p)
		}
	}
	return out
}

// peerState returns p's data for a state: its view if view, its catalog
// if cat.
func (s *state) peerState(p *peer, now time.Time, view, cat bool) peerState {
	ps := peerState{peerInfo: s.info(p, now)}
	if view && p.view != nil {
		ps.View = p.view.state()
	}
	if cat && p.cat != nil {
		ps.Cat = &catState{Epoch: p.cat.epoch, Seq: p.cat.seq, Targets: p.cat.targets}
	}
	return ps
}

// full returns the whole state, for push/pull on join.
func (s *state) full(now time.Time) *fullState {
	fs := &fullState{Sender: s.self.node}
	for _, p := range s.known(now) {
		fs.Peers = append(fs.Peers, s.peerState(p, now, true, true))
	}
	return fs
}

// selfCatalog returns a state of the node's own catalog alone, to send
// a catalog too large to gossip.
func (s *state) selfCatalog(now time.Time) *fullState {
	return &fullState{Sender: s.self.node, Peers: []peerState{s.peerState(s.self, now, false, true)}}
}

// digest returns the versions of everything the node holds: the push/pull
// state after join, and what it sends a peer to ask for what it lacks.
func (s *state) digest(now time.Time) *digest {
	dg := &digest{Sender: s.self.node}
	for _, p := range s.known(now) {
		ps := peerSummary{peerInfo: s.info(p, now)}
		if v := p.view; v != nil {
			ps.View = &viewVersion{Complete: v.complete, Latest: v.latest, Pending: uint64(len(v.pending))}
		}
		if c := p.cat; c != nil {
			ps.Cat = &catVersion{Epoch: c.epoch, Seq: c.seq}
		}
		dg.Peers = append(dg.Peers, ps)
	}
	return dg
}

// lacks returns, as a state, what this node holds that the sender of dg
// lacks: the views and catalogs newer than those it listed. A view goes
// whole: a node that missed a change misses its removals too, which only
// the whole view carries.
func (s *state) lacks(dg *digest, now time.Time) *fullState {
	theirs := make(map[string]*peerSummary, len(dg.Peers))
	for i := range dg.Peers {
		theirs[dg.Peers[i].Node] = &dg.Peers[i]
	}
	fs := &fullState{Sender: s.self.node}
	for _, p := range s.known(now) {
		if p.node == dg.Sender {
			continue // it knows itself best
		}
		t := theirs[p.node]
		view := p.view != nil
		cat := p.cat != nil
		if t != nil {
			switch {
			case t.Epoch > p.epoch:
				view = false
			case t.Epoch == p.epoch && t.View != nil && view:
				v := p.view
				view = v.complete > t.View.Complete || (v.complete == t.View.Complete && uint64(len(v.pending)) > t.View.Pending)
			}
			if cat && t.Cat != nil {
				cat = newer(p.cat.epoch, p.cat.seq, t.Cat.Epoch, t.Cat.Seq)
			}
		}
		if view || cat {
			fs.Peers = append(fs.Peers, s.peerState(p, now, view, cat))
		}
	}
	return fs
}

// mergeInfo merges what a state or digest says of a node besides its
// data; it returns the node, or nil when the news is about self, too old
// or of an older incarnation.
func (s *state) mergeInfo(pi *peerInfo, now time.Time, o *outcome) *peer {
	if me, so := s.aboutSelf(pi.Node, pi.Epoch); me {
		o.self = max(o.self, so.self)
		return nil
	}
	heard := since(now, pi.AgeMS)
	if heard.IsZero() || now.Sub(heard) > s.retention {
		return nil
	}
	p := s.peer(pi.Node)
	if !p.advance(pi.Epoch, s.feed) {
		return nil
	}
	if pi.Role != 0 { // 0: the sender has not heard its heartbeat yet
		if p.label != pi.Label || p.role != pi.Role {
			o.changed = true
		}
		p.label, p.role = pi.Label, pi.Role
	}
	if pi.Edge && !p.edge {
		p.edge = true
		o.changed = true
	}
	p.beat = max(p.beat, pi.Beat)
	if pi.Leaving && !p.leaving {
		p.leaving = true
		o.changed = true
	}
	if heard.After(p.heard) {
		p.heard = heard
	}
	p.seen(since(now, pi.ObsAgeMS))
	return p
}

// mergeFull merges a state received by push/pull or directly and reports
// whether what consumers see changed, and an epoch of self to refute.
func (s *state) mergeFull(fs *fullState, now time.Time) outcome {
	var o outcome
	for i := range fs.Peers {
		ps := &fs.Peers[i]
		p := s.mergeInfo(&ps.peerInfo, now, &o)
		if p == nil {
			continue
		}
		if ps.View != nil {
			if p.view == nil {
				p.view = s.newView()
				o.changed = true
			}
			if p.view.applyFull(ps.View) {
				o.changed = true
			}
		}
		if c := ps.Cat; c != nil && c.Epoch <= p.epoch && (p.cat == nil || newer(c.Epoch, c.Seq, p.cat.epoch, p.cat.seq)) {
			ts := c.Targets // catalogs are never modified: share it when sorted
			if !slices.IsSortedFunc(ts, func(a, b CatalogTarget) int { return cmp.Compare(a.ID, b.ID) }) {
				ts = slices.Clone(ts)
				slices.SortFunc(ts, func(a, b CatalogTarget) int { return cmp.Compare(a.ID, b.ID) })
			}
			p.cat = &catalog{epoch: c.Epoch, seq: c.Seq, targets: s.shared(ts)}
			if p.asm != nil && !newer(p.asm.epoch, p.asm.seq, c.Epoch, c.Seq) {
				p.asm = nil
			}
			p.wantCatalog(c.Epoch, c.Seq)
			o.changed = true
		}
	}
	return o
}

// mergeDigest merges the news of a digest (liveness, versions known to
// exist) and reports an epoch of self to refute. The data it lacks comes
// by lacks, at the other end.
func (s *state) mergeDigest(dg *digest, now time.Time) outcome {
	var o outcome
	for i := range dg.Peers {
		ps := &dg.Peers[i]
		p := s.mergeInfo(&ps.peerInfo, now, &o)
		if p == nil {
			continue
		}
		if v := ps.View; v != nil && v.Latest > 0 && ps.Epoch == p.epoch {
			if p.view == nil {
				p.view = s.newView()
				o.changed = true
			}
			p.view.latest = max(p.view.latest, v.Latest)
		}
		if c := ps.Cat; c != nil && c.Epoch == p.epoch {
			p.wantCatalog(c.Epoch, c.Seq)
		}
	}
	return o
}

// lag is a node whose data this node lacks.
type lag struct {
	node  string
	asked int // how often this node asked for it before
}

// lagging returns the nodes whose data this node has lacked for at least
// after and has not asked for within every, and marks them asked.
func (s *state) lagging(now time.Time, after, every time.Duration) []lag {
	var out []lag
	for name, p := range s.peers {
		if !p.lacking() {
			p.behind, p.asks = time.Time{}, 0
			continue
		}
		if p.behind.IsZero() {
			p.behind = now
		}
		if now.Sub(p.behind) >= after && now.Sub(p.asked) >= every {
			out = append(out, lag{node: name, asked: p.asks})
			p.asked = now
			p.asks++
		}
	}
	slices.SortFunc(out, func(a, b lag) int { return cmp.Compare(a.node, b.node) })
	return out
}

// grace is how long after a pause the node's own observations take to be
// current again: the longest interval and timeout of the targets it may
// probe, at most a minute.
func (s *state) grace() time.Duration {
	var g time.Duration
	for _, p := range append([]*peer{s.self}, slices.Collect(maps.Values(s.peers))...) {
		if p.cat == nil {
			continue
		}
		for _, t := range p.cat.targets {
			g = max(g, t.Interval+t.Timeout)
		}
	}
	return min(g, time.Minute)
}

// gc forgets nodes not heard from within the retention.
func (s *state) gc(now time.Time) (forgot bool) {
	for name, p := range s.peers {
		if p.heard.IsZero() || now.Sub(p.heard) > s.retention {
			s.feed.noteView(p.view)
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
