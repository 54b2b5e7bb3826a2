package gossip

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// Owners' records on the Node. They live beside the observation state,
// under their own lock and with their own subscribers, since they change
// at another pace and their consumers (the record store, the DNS builder)
// are not those of observations. records_state.go says who keeps what;
// records_wire.go how it travels.

// Records returns the records this node replicates, as of now; empty on
// a node that only relays them (an agent without a sidecar).
func (n *Node) Records() records.State {
	n.recMu.Lock()
	st := n.rec.store
	n.recMu.Unlock()
	if st == nil {
		return records.Memory(records.Options{}).State()
	}
	return st.State()
}

// SubscribeRecords returns a channel that receives (coalesced, never
// blocking the node) after the records changed, and the function that
// ends the subscription.
func (n *Node) SubscribeRecords() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.recSubsMu.Lock()
	n.recSubs[ch] = struct{}{}
	n.recSubsMu.Unlock()
	return ch, func() {
		n.recSubsMu.Lock()
		delete(n.recSubs, ch)
		n.recSubsMu.Unlock()
	}
}

func (n *Node) notifyRecords() {
	n.recSubsMu.Lock()
	defer n.recSubsMu.Unlock()
	for ch := range n.recSubs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// SyncRecords makes st the store this node replicates records into, until
// ctx ends or the node shuts down: a server's data directory (every
// owner), or an agent's sidecar store (only the given owners). What the
// node held in memory until then is installed into st first, and what st
// holds (recovered from disk) is offered to peers by anti-entropy. Every
// change written to st by its owner (the webhook) is sent directly to
// every server (the changes made meanwhile together), and a small one is
// gossiped too. It returns nil when ctx ends or the node stops.
func (n *Node) SyncRecords(ctx context.Context, st *records.Store, owners ...string) error {
	changes, stop := st.Subscribe()
	defer stop()
	n.recMu.Lock()
	if old := n.rec.store; old != nil && old != st {
		ost := old.State()
		for _, o := range ost.Owners() {
			if len(owners) > 0 && !contains(owners, o) {
				continue
			}
			if ost.Head(o).After(st.Head(o)) {
				if _, err := st.Install(ost.Set(o)); err != nil {
					n.logger.Printf("[ERR] healthdns gossip: records of owner %s not stored: %v", o, err)
				}
			}
		}
	}
	n.rec.store = st
	n.rec.all = len(owners) == 0
	n.rec.owners = map[string]bool{}
	for _, o := range owners {
		n.rec.owners[o] = true
	}
	// What is on disk is not news to publish: peers that lack it ask.
	sst := st.State()
	for _, h := range sst.Heads() {
		n.rec.baseline[h.Owner] = h.Head
		n.rec.gossiped[h.Owner] = h.Head
	}
	n.recMu.Unlock()
	n.notifyRecords()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.stop:
			return nil
		case <-changes:
		case <-retry.C:
		}
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-n.stop:
				return nil
			case <-time.After(wait):
			}
		}
		sent, pending := n.publishRecords()
		if sent {
			next = time.Now().Add(publishPace)
		}
		if pending {
			retry.Reset(publishRetry)
		}
	}
}

const (
	// publishRetry is how soon the publisher tries again a server whose
	// courier was busy.
	publishRetry = 20 * time.Millisecond
	// publishPace is the least time between two publications: a write
	// after a quiet spell goes at once, and a burst goes as a delta of
	// what it wrote meanwhile. Sent one by one, a storm of one-record
	// writes from 10 writers was 1,800 deltas a second, a TCP connection
	// each, to every server; their buffers held 23 MB of a server's heap
	// at the peak, and each change was gossiped as well.
	publishPace = 50 * time.Millisecond
)

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// publishRecords sends the owner's own writes (the changes its store
// wrote) that a server was not sent yet: directly to each server, the
// changes made since the last it was sent together, but only once its
// courier has sent what it had, so that a burst of writes becomes a few
// deltas instead of a queue that overflows. A few small changes are
// gossiped too, so that they reach a server this node cannot. It reports
// whether it sent anything, and whether a server is still to be sent
// something.
func (n *Node) publishRecords() (sent, pending bool) {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	store := n.rec.store
	if store == nil {
		return false, false
	}
	st := store.State()
	servers := n.recordServers()
	for _, o := range st.Owners() {
		if !n.rec.replicates(o) || !store.Writes(o) {
			continue
		}
		head := st.Head(o)
		if g := n.rec.gossiped[o]; g != head {
			n.rec.gossiped[o] = head
			if cs, ok := st.Since(o, g); ok && len(cs) <= broadcastChanges && n.queue.NumQueued() < busyQueue {
				msgs := make([][]byte, 0, len(cs))
				for _, c := range cs {
					if b := encodeRecordChange(c); len(b) <= maxBroadcast {
						msgs = append(msgs, b)
					}
				}
				if len(msgs) == len(cs) {
					sent = true
					for i, b := range msgs {
						n.queue.QueueBroadcast(&broadcast{name: recordChangeName(cs[i]), msg: b})
					}
				}
			}
		}
		for _, to := range servers {
			done := n.rec.sent[to]
			if done == nil {
				done = map[string]records.Head{}
				n.rec.sent[to] = done
			}
			from, ok := done[o]
			if !ok {
				from = n.rec.baseline[o]
			}
			if from == head {
				continue
			}
			if n.courierBusy(to) {
				pending = true
				continue
			}
			done[o] = head
			sent = true
			for _, b := range n.encodeRecordsSince(st, o, from) {
				n.sendDirect(to, b, false)
			}
		}
	}
	// A server that is away keeps its entry: when it comes back it is sent
	// what followed, from the log, not the owner whole.
	return sent, pending
}

// encodeRecordsSince encodes what a member at head from lacks of owner's
// records: the changes since, when the log reaches back that far (it
// holds no more than half the owner's size, so they cost less than the
// whole), else the records whole (a change large enough to push the
// earlier ones out, or a member far behind). It counts which it was.
func (n *Node) encodeRecordsSince(st records.State, owner string, from records.Head) [][]byte {
	if cs, ok := st.Since(owner, from); ok {
		n.stats.recordChanges.Add(1)
		return encodeRecordDeltas(n.cfg.Name, cs)
	}
	n.stats.recordWhole.Add(1)
	return encodeRecordParts(n.cfg.Name, st.Set(owner))
}

// courierBusy reports whether messages wait to be sent to the member.
func (n *Node) courierBusy(name string) bool {
	n.courMu.Lock()
	defer n.courMu.Unlock()
	ch := n.couriers[name]
	return ch != nil && len(ch) > 0
}

func recordChangeName(c records.Change) string {
	return "rc/" + c.Owner + "/" + c.To.Version.String() + "/" + strconv.FormatUint(c.To.Digest, 16)
}

// recordServers returns the live servers but this node: the members that
// replicate every owner.
func (n *Node) recordServers() []string {
	var out []string
	n.memMu.Lock()
	defer n.memMu.Unlock()
	for name, m := range n.members {
		if name != n.cfg.Name && m.State == MemberAlive && m.Role == RoleServer {
			out = append(out, name)
		}
	}
	return out
}

// roleOf returns a live member's role, 0 if it is not one.
func (n *Node) roleOf(name string) Role {
	if name == n.cfg.Name {
		return 0
	}
	r, _ := n.liveRole(name)
	return r
}

// handleRecordChange takes a gossiped change from the receive loop. The
// loop must not wait for recMu, which the applier holds across a disk
// write (an fsync, an owner installed whole): observations come through
// the same loop, and in a storm of record changes it stalled until its
// queue overflowed, dropping them with the rest. So when recMu is busy
// the change goes to the applier, which decides there.
func (n *Node) handleRecordChange(c records.Change, b []byte) {
	if !n.recMu.TryLock() {
		n.queueRecords(recordWork{changes: []records.Change{c}, gossip: b, size: len(b)})
		return
	}
	defer n.recMu.Unlock()
	if n.takeRecordChange(c, b) {
		n.queueRecords(recordWork{changes: []records.Change{c}, size: len(b)})
	}
}

// takeRecordChange relays a gossiped change when it is news, and reports
// whether this node should store it. recMu is held.
func (n *Node) takeRecordChange(c records.Change, b []byte) bool {
	if !n.rec.replicates(c.Owner) {
		if !c.To.After(n.rec.relayed[c.Owner]) {
			n.stats.stale.Add(1)
			return false
		}
		n.rec.relayed[c.Owner] = c.To
		n.queue.QueueBroadcast(&broadcast{name: recordChangeName(c), msg: b})
		return false
	}
	if !c.To.After(n.rec.store.Head(c.Owner)) {
		n.stats.stale.Add(1)
		return false
	}
	for _, p := range n.rec.pending[c.Owner] {
		if p.To == c.To && p.From == c.From {
			n.stats.stale.Add(1)
			return false
		}
	}
	n.queue.QueueBroadcast(&broadcast{name: recordChangeName(c), msg: b})
	return true
}

// queueRecords hands record messages to the applier; it never blocks.
func (n *Node) queueRecords(w recordWork) {
	if n.rec.inBytes.Add(int64(w.size)) > recordQueueBytes {
		n.rec.inBytes.Add(-int64(w.size))
		n.stats.dropped.Add(1)
		return
	}
	select {
	case n.rec.in <- w:
	default:
		n.rec.inBytes.Add(-int64(w.size))
		n.stats.dropped.Add(1)
	}
}

// applyRecords stores the record messages the node receives, off the
// receive loop (a store fsyncs): all those queued at once with one fsync,
// so that a burst of changes costs a few writes, and observations are
// not held up behind the disk.
func (n *Node) applyRecords() {
	defer n.wg.Done()
	for {
		var batch []recordWork
		select {
		case <-n.stop:
			return
		case w := <-n.rec.in:
			batch = append(batch, w)
		}
		size := batch[0].size
	more:
		for len(batch) < applyBatch && size < applyBatchBytes {
			select {
			case w := <-n.rec.in:
				batch = append(batch, w)
				size += w.size
			default:
				break more
			}
		}
		n.decodeRecordWork(batch)
		n.applyRecordWork(batch)
	}
}

// decodeRecordWork decodes the record deltas of a batch as they came,
// before the applier takes recMu; a garbled one is dropped (counted).
func (n *Node) decodeRecordWork(batch []recordWork) {
	for i := range batch {
		w := &batch[i]
		if w.raw == nil {
			continue
		}
		m, err := decodeMessage(w.raw)
		w.raw = nil
		d, ok := m.(*recordDelta)
		if err != nil || !ok {
			n.stats.stateGarbled.Add(1)
			n.logger.Printf("[WARN] healthdns gossip: dropped a state: record delta: %v", err)
			continue
		}
		n.stats.merged.Add(1)
		w.changes, w.from = d.Changes, d.Sender
	}
}

func (n *Node) applyRecordWork(batch []recordWork) {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	var cs []records.Change
	flush := func() {
		if len(cs) > 0 {
			n.mergeChanges(cs)
			cs = nil
		}
	}
	for _, w := range batch {
		n.rec.inBytes.Add(-int64(w.size))
		if w.gossip != nil && !n.takeRecordChange(w.changes[0], w.gossip) {
			continue // relayed only, or not news
		}
		if n.rec.store == nil {
			continue
		}
		if w.part != nil {
			flush()
			n.installPart(w.part)
			continue
		}
		for _, c := range w.changes {
			if n.rec.replicates(c.Owner) {
				cs = append(cs, c)
				if w.from != "" {
					n.rec.source[c.Owner] = w.from
				}
			}
		}
	}
	flush()
}

// mergeChanges stores changes from peers, keeps those that came ahead of
// a missing one, and applies what they were waiting for. recMu is held.
func (n *Node) mergeChanges(cs []records.Change) {
	now := n.now()
	store := n.rec.store
	before := map[string]records.Head{}
	for _, c := range cs {
		if _, ok := before[c.Owner]; !ok {
			before[c.Owner] = store.Head(c.Owner)
		}
	}
	changed := false
	for len(cs) > 0 {
		applied, ahead, err := store.Merge(cs...)
		if errors.Is(err, records.ErrInvalid) && len(before) > 1 {
			// One owner's bad change must not hold up the others': each
			// owner on its own.
			byOwner := map[string][]records.Change{}
			for _, c := range cs {
				byOwner[c.Owner] = append(byOwner[c.Owner], c)
			}
			for _, list := range byOwner {
				n.mergeChanges(list)
			}
			return
		}
		if err != nil {
			n.recordError(err, cs)
			return
		}
		for _, c := range ahead {
			n.rec.addPending(c, now)
		}
		cs = nil
		done := map[string]bool{}
		for _, c := range applied {
			changed = true
			if !done[c.Owner] {
				done[c.Owner] = true
				head := store.Head(c.Owner)
				cs = append(cs, n.rec.takePending(c.Owner, head)...)
			}
		}
	}
	for o := range before {
		n.rec.caughtUp(o, store.Head(o))
	}
	if changed {
		n.notifyRecords()
	}
}

// recordError logs a change or Set this node could not store: invalid (a
// peer's bug: it is fetched whole later) or not written (a full disk: it
// is asked for again). recMu is held.
func (n *Node) recordError(err error, cs []records.Change) {
	now := n.now()
	for _, c := range cs {
		n.rec.want(c.Owner, c.To, now)
	}
	if errors.Is(err, records.ErrInvalid) {
		n.logger.Printf("[WARN] healthdns gossip: dropped records from a peer: %v", err)
		return
	}
	if now.Sub(n.rec.lastErrLog) >= time.Minute {
		n.rec.lastErrLog = now
		n.logger.Printf("[ERR] healthdns gossip: records from peers not stored (asked for again later): %v", err)
	}
}

// handleRecordDelta queues a run of changes sent directly.
func (n *Node) handleRecordDelta(m *recordDelta) {
	n.stats.merged.Add(1)
	n.queueRecords(recordWork{changes: m.Changes, from: m.Sender, size: sizeOf(m.Changes)})
}

// handleRecordPart queues a part of an owner's records whole.
func (n *Node) handleRecordPart(m *recordPart) {
	n.stats.merged.Add(1)
	size := 0
	for _, e := range m.Endpoints {
		size += 128 + len(e.DNSName)
	}
	n.queueRecords(recordWork{part: m, from: m.Sender, size: size})
}

// installPart collects a part of an owner's records whole, and installs
// them once all parts are in. recMu is held.
func (n *Node) installPart(m *recordPart) {
	if !n.rec.replicates(m.Owner) || !m.Head.After(n.rec.store.Head(m.Owner)) {
		return
	}
	set, ok := n.rec.addPart(m, n.now())
	if !ok {
		return
	}
	store := n.rec.store
	installed, err := store.Install(set)
	if err != nil {
		n.recordError(err, []records.Change{{Owner: m.Owner, To: m.Head}})
		return
	}
	head := store.Head(m.Owner)
	if chain := n.rec.takePending(m.Owner, head); len(chain) > 0 {
		n.mergeChanges(chain)
	}
	n.rec.caughtUp(m.Owner, store.Head(m.Owner))
	if installed {
		n.notifyRecords()
	}
}

// recordVersions returns the heads of what this node replicates, for a
// digest.
func (n *Node) recordVersions() []setVersion {
	n.recMu.Lock()
	heads := n.rec.heads()
	n.recMu.Unlock()
	out := make([]setVersion, 0, len(heads))
	for _, h := range heads {
		out = append(out, setVersion{Owner: h.Owner, Version: h.Head.Version, Digest: h.Head.Digest})
	}
	return out
}

// answerDigestRecords sends the sender of a digest the records it lacks.
func (n *Node) answerDigestRecords(dg *digest) {
	theirs := make([]records.OwnerHead, 0, len(dg.Sets))
	for _, s := range dg.Sets {
		theirs = append(theirs, records.OwnerHead{Owner: s.Owner, Head: records.Head{Version: s.Version, Digest: s.Digest}})
	}
	n.answerRecords(dg.Sender, n.roleOf(dg.Sender) == RoleServer, theirs)
}

// answerRecords sends to what its heads show it lacks of the owners it
// replicates (all of them, or those it lists): the changes since its
// head when the log reaches back that far, else the owner's records
// whole. It also notes what to has that
// this node lacks, for repairRecords.
func (n *Node) answerRecords(to string, all bool, theirs []records.OwnerHead) {
	if to == n.cfg.Name {
		return
	}
	n.recMu.Lock()
	defer n.recMu.Unlock()
	store := n.rec.store
	if store == nil {
		return
	}
	now := n.now()
	st := store.State()
	listed := make(map[string]records.Head, len(theirs))
	for _, h := range theirs {
		listed[h.Owner] = h.Head
		if n.rec.replicates(h.Owner) && h.Head.After(st.Head(h.Owner)) {
			n.rec.want(h.Owner, h.Head, now)
		}
	}
	for _, o := range st.Owners() {
		th, ok := listed[o]
		if !n.rec.replicates(o) || (!all && !ok) {
			continue
		}
		if !st.Head(o).After(th) {
			continue
		}
		for _, b := range n.encodeRecordsSince(st, o, th) {
			n.sendDirect(to, b, true)
		}
	}
}

// handleRecordHeads answers a request for what its sender lacks.
func (n *Node) handleRecordHeads(m *recordHeads) {
	n.stats.merged.Add(1)
	n.answerRecords(m.Sender, m.All, m.Heads)
}

// localRecordState is the record part of a push/pull state on join: the
// heads this node replicates, so that the peer sends directly what it
// lacks (the changes since, or the records whole), and learns what it
// has that this node lacks; nil on a node that replicates nothing. Not
// the records themselves: a join happens on every rejoin after a
// partition, and most peers have nearly all of them (WaitRecords waits
// for what a cold start lacks).
func (n *Node) localRecordState(budget int) [][]byte {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	if n.rec.store == nil {
		return nil
	}
	return [][]byte{(&recordHeads{Sender: n.cfg.Name, All: n.rec.all, Heads: n.rec.heads()}).encode()}
}

// WaitRecords waits until this node lacks no record change it knows of
// (after Join: what the peer's heads showed, sent to it directly), or d
// passes, and reports whether it caught up.
func (n *Node) WaitRecords(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		n.recMu.Lock()
		behind := len(n.rec.behind) + len(n.rec.asm)
		n.recMu.Unlock()
		if behind == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mergeRecordState takes a record part of a peer's push/pull state on
// join: its heads (answered directly) or an owner's records whole
// (installed before Join returns).
func (n *Node) mergeRecordState(b []byte) {
	m, err := decodeMessage(b)
	if err == nil {
		switch m := m.(type) {
		case *recordHeads:
			n.answerRecords(m.Sender, m.All, m.Heads)
			return
		case *recordPart:
			n.recMu.Lock()
			if n.rec.store != nil {
				n.installPart(m) // before Join returns
			}
			n.recMu.Unlock()
			return
		}
		err = errors.New("not a record part")
	}
	n.stats.stateGarbled.Add(1)
	n.logger.Printf("[WARN] healthdns gossip: dropped a push/pull record state: %v", err)
}

// repairRecords asks a server for the changes this node has known for a
// while that it lacks (a change that came ahead of one that never
// arrived, a newer head in a peer's digest). Called from the tick loop.
func (n *Node) repairRecords(now time.Time) {
	n.recMu.Lock()
	if n.rec.store == nil {
		n.recMu.Unlock()
		return
	}
	wait := n.repairAfter()
	due := false
	ask := map[string]bool{}
	for o, since := range n.rec.behind {
		if now.Sub(since) >= wait && now.Sub(n.rec.asked[o]) >= 2*wait {
			n.rec.asked[o] = now
			due = true
			// First the member that sends the owner's changes, which
			// has them all; then (it may be gone) any server.
			if src := n.rec.source[o]; src != "" && n.live(src) && !ask[src] && len(ask) < 3 {
				ask[src] = true
			} else {
				delete(n.rec.source, o)
			}
		}
	}
	if !due {
		n.recMu.Unlock()
		return
	}
	msg := (&recordHeads{Sender: n.cfg.Name, All: n.rec.all, Heads: n.rec.heads()}).encode()
	n.recMu.Unlock()
	if len(ask) == 0 {
		servers := n.recordServers()
		if len(servers) == 0 {
			return
		}
		ask[servers[rand.IntN(len(servers))]] = true
	}
	for to := range ask {
		n.sendDirect(to, msg, true)
	}
}
