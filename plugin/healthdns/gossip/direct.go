package gossip

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// Direct messages: what is too large to gossip goes to each member over
// memberlist's reliable stream (SendReliable: a TCP connection per message,
// encrypted and labelled like the rest), once, and is not relayed. A bulk
// change of observations or a large catalog reaches every member in one
// round trip instead of crawling through ≤1 KB packets that every node
// relays; and anti-entropy sends a peer exactly what its digest shows it
// lacks. Receivers apply them as they apply gossip: same versions, same
// rules, so a direct message that arrives late, twice or never is
// harmless, and what is missed is asked for again (Node.repair) or
// repaired at the next push/pull.
const (
	// bulkAfter is the most gossip messages a change may take; above it,
	// the change goes direct.
	bulkAfter = 2
	// courierDepth bounds the direct messages waiting to go to one
	// member; beyond it they are dropped (and counted): anti-entropy
	// repairs what they carried.
	courierDepth = 64
	// courierIdle is how long a member's courier waits for work before
	// it ends.
	courierIdle = time.Minute
	// directQueueBytes bounds the direct messages received and not yet
	// handled, so a flood cannot exhaust memory; over it they are dropped.
	directQueueBytes = 64 << 20
	directInDepth    = 256
)

// outMsg is a direct message to send.
type outMsg struct {
	msg   []byte
	state bool // counted as state (anti-entropy) rather than message bytes
}

// sendDirect sends msg to the live member named to, or to every live
// member but self when to is "". It never blocks: each member has a
// courier that sends its messages in order, one at a time, so that a
// member that stopped reading (a paused process) holds up only its own;
// with a courier's queue full the message is dropped and counted.
func (n *Node) sendDirect(to string, msg []byte, state bool) {
	if n.closed.Load() {
		return
	}
	for _, m := range n.recipients(to) {
		n.courMu.Lock()
		if n.closed.Load() { // Shutdown waits for the couriers
			n.courMu.Unlock()
			return
		}
		ch := n.couriers[m.Name]
		if ch == nil {
			ch = make(chan outMsg, courierDepth)
			n.couriers[m.Name] = ch
			n.wg.Add(1)
			go n.courier(m.Name, ch)
		}
		select { // under courMu, so that the courier cannot end meanwhile
		case ch <- outMsg{msg: msg, state: state}:
		default:
			n.stats.directDropped.Add(1)
		}
		n.courMu.Unlock()
	}
}

// courier sends the direct messages for one member until the node stops
// or it has been idle a while.
func (n *Node) courier(name string, ch chan outMsg) {
	defer n.wg.Done()
	idle := time.NewTimer(courierIdle)
	defer idle.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-idle.C:
			n.courMu.Lock()
			if len(ch) == 0 {
				delete(n.couriers, name)
				n.courMu.Unlock()
				return
			}
			n.courMu.Unlock()
			idle.Reset(courierIdle)
		case m := <-ch:
			n.deliver(name, m)
			idle.Reset(courierIdle)
		}
	}
}

// deliver sends one direct message to the member named name, if it is
// live. The stream has a deadline (streamTransport), so a member that
// stopped reading cannot hold it for ever.
func (n *Node) deliver(name string, m outMsg) {
	to := n.recipients(name)
	if len(to) == 0 {
		n.stats.directFailed.Add(1)
		return
	}
	if err := n.ml.SendReliable(to[0], m.msg); err != nil {
		n.stats.directFailed.Add(1)
		n.logger.Printf("[DEBUG] healthdns gossip: direct message to %s: %v", name, err)
		return
	}
	n.stats.directSent.Add(1)
	if m.state {
		n.stats.stateSentBytes.Add(uint64(len(m.msg)))
	} else {
		n.stats.sentMsgs.Add(1)
		n.stats.sentBytes.Add(uint64(len(m.msg)))
	}
}

// recipients returns the live member named to, or every live member but
// self when to is "".
func (n *Node) recipients(to string) []*memberlist.Node {
	var out []*memberlist.Node
	for _, m := range n.ml.Members() {
		if m.Name == n.cfg.Name {
			continue
		}
		if to == "" || m.Name == to {
			out = append(out, m)
		}
	}
	return out
}

// live reports whether name is a live member.
func (n *Node) live(name string) bool { return len(n.recipients(name)) > 0 }

// anyLive returns a random live member but self, and but not unless it
// is the only one; "" when alone.
func (n *Node) anyLive(not string) string {
	all := slices.DeleteFunc(n.recipients(""), func(m *memberlist.Node) bool { return m.Name == not })
	if len(all) == 0 {
		if n.live(not) {
			return not
		}
		return ""
	}
	return all[rand.IntN(len(all))].Name
}

// receiveDirect queues a direct message (or a push/pull digest) for the
// receive loop; it copies b and never blocks.
func (n *Node) receiveDirect(b []byte) {
	if n.directBytes.Add(int64(len(b))) > directQueueBytes {
		n.directBytes.Add(-int64(len(b)))
		n.stats.dropped.Add(1)
		return
	}
	c := make([]byte, len(b))
	copy(c, b)
	select {
	case n.directIn <- c:
	default:
		n.directBytes.Add(-int64(len(b)))
		n.stats.dropped.Add(1)
	}
}

// settle acts on the outcome of applying news that is not relayed.
func (n *Node) settle(o outcome) {
	if o.self != 0 {
		n.refute(o.self)
	}
	if o.changed {
		n.notify()
	}
}

// answer merges a peer's digest (from push/pull, or a repair request) and
// sends the peer what it lacks.
func (n *Node) answer(dg *digest) {
	n.stats.merged.Add(1)
	now := n.now()
	n.mu.Lock()
	o := n.st.mergeDigest(dg, now)
	fs := n.st.lacks(dg, now)
	n.mu.Unlock()
	n.settle(o)
	if dg.Sender == n.cfg.Name {
		return
	}
	for _, b := range splitState(fs, maxDirect) {
		n.sendDirect(dg.Sender, b, true)
	}
	n.answerDigestRecords(dg)
}

// splitState encodes fs in as few messages of at most limit bytes as it
// can; nothing when it holds no peer.
func splitState(fs *fullState, limit int) [][]byte {
	if len(fs.Peers) == 0 {
		return nil
	}
	b := fs.encode()
	if len(b) <= limit || len(fs.Peers) == 1 {
		if len(b) > limit {
			return nil // one node's data over the limit: cannot be sent
		}
		return [][]byte{b}
	}
	half := len(fs.Peers) / 2
	return append(splitState(&fullState{Sender: fs.Sender, Peers: fs.Peers[:half]}, limit),
		splitState(&fullState{Sender: fs.Sender, Peers: fs.Peers[half:]}, limit)...)
}

// repair asks for what this node has lacked for a while: a gap in a view
// that gossip did not fill, a catalog announced and not received. It
// sends its digest directly to a peer, which answers with what is missing
// (answer): first to the node whose data it lacks, which has it all, then
// (that one may be unreachable from here, or gone) to any live member.
func (n *Node) repair(now time.Time) {
	after := n.repairAfter()
	if n.directBytes.Load() > 0 {
		// Direct messages received and not yet applied may hold what is
		// lacking (a bulk change of 100,000 observations waits behind
		// the one before it): asking now would bring each whole view
		// again on top of them, more work for a node already behind.
		// Wait longer, not for ever.
		after *= 4
	}
	n.mu.Lock()
	lags := n.st.lagging(now, after, 2*n.repairAfter())
	n.mu.Unlock()
	if len(lags) == 0 {
		return
	}
	to := map[string]bool{}
	for _, l := range lags {
		if l.asked == 0 && n.live(l.node) {
			to[l.node] = true
		} else if other := n.anyLive(l.node); other != "" {
			to[other] = true
		}
	}
	if len(to) == 0 {
		return
	}
	n.mu.Lock()
	dg := n.st.digest(now)
	n.mu.Unlock()
	dg.Sets = n.recordVersions()
	b := dg.encode()
	for name := range to {
		n.sendDirect(name, b, true)
	}
}

// repairAfter is how long a gap may stay before the node asks for it:
// long enough for gossip's reordering to fill it.
func (n *Node) repairAfter() time.Duration {
	return max(n.cfg.HeartbeatInterval, 5*n.cfg.GossipInterval)
}
