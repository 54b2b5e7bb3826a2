package gossip

import (
	"github.com/hashicorp/memberlist"
)

// delegate adapts Node to memberlist.Delegate. Every method is called from
// memberlist's goroutines and must not block them.
type delegate struct{ n *Node }

var _ memberlist.Delegate = &delegate{}

// NodeMeta says the node's role and observer label; well under the limit.
func (d *delegate) NodeMeta(limit int) []byte {
	b := meta{Role: d.n.cfg.Role, Observer: d.n.cfg.Observer}.encode()
	if len(b) > limit {
		return nil // cannot happen with the label limit; memberlist panics above it
	}
	return b
}

// NotifyMsg copies the message (memberlist reuses the buffer) and queues it
// for the receive loop; when the queue is full it drops and counts it
// rather than stall memberlist's packet loop. Gossip messages must fit a
// packet; direct ones (by type) come over TCP and may be larger.
func (d *delegate) NotifyMsg(b []byte) {
	n := d.n
	if len(b) > 0 && direct(b[0]) {
		if b[0] == msgBulk {
			n.stats.recvBytes.Add(uint64(len(b)))
		} else {
			n.stats.stateRecvBytes.Add(uint64(len(b)))
		}
		if len(b) > maxDirect {
			n.stats.oversized.Add(1)
			return
		}
		n.receiveDirect(b)
		return
	}
	n.stats.recvBytes.Add(uint64(len(b)))
	if d := n.cfg.deaf; d != nil && d.Load() {
		return
	}
	if len(b) > maxInbound {
		n.stats.oversized.Add(1)
		return
	}
	c := make([]byte, len(b))
	copy(c, b)
	select {
	case n.inbox <- c:
	default:
		n.stats.dropped.Add(1)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	out := d.n.queue.GetBroadcasts(overhead, limit)
	for _, b := range out {
		d.n.stats.sentMsgs.Add(1)
		d.n.stats.sentBytes.Add(uint64(len(b)))
	}
	return out
}

// LocalState is the node's push/pull state. On join it is the whole
// state (the observation state and, when the node replicates records,
// their heads and as many owners' records whole as fit, beside it in a
// states envelope), so that Join returns with everything. After join it is a digest, the versions of what the node
// holds: the peer sends directly what it finds missing (Node.answer), and
// a push/pull costs a few bytes a node when nothing changed.
func (d *delegate) LocalState(join bool) []byte {
	n := d.n
	now := n.now()
	if !join {
		n.mu.Lock()
		dg := n.st.digest(now)
		n.mu.Unlock()
		dg.Sets = n.recordVersions()
		b := n.localOverrideState(dg.encode())
		n.stats.stateSentBytes.Add(uint64(len(b)))
		return b
	}
	n.mu.Lock()
	fs := n.st.full(now)
	n.mu.Unlock()
	b := fs.encode()
	if len(b) > maxState {
		n.stats.stateTooLarge.Add(1)
		n.logger.Printf("[ERR] healthdns gossip: state of %d bytes is over the %d-byte limit; not sent", len(b), maxState)
		b = (&fullState{Sender: n.cfg.Name}).encode()
	}
	if rec := n.localRecordState(maxState - len(b) - 1024); rec != nil {
		b = encodeStates(append([][]byte{b}, rec...)...)
	}
	b = n.localOverrideState(b)
	n.stats.stateSentBytes.Add(uint64(len(b)))
	return b
}

// MergeRemoteState merges a peer's state. It runs on the push/pull
// connection's goroutine, not the packet loop. A whole state (join) is
// merged inline, so that Join returns with it; a digest goes to the
// receive loop, which answers it.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	n := d.n
	n.stats.stateRecvBytes.Add(uint64(len(buf)))
	if buf = n.mergeOverrideState(buf); buf == nil {
		return
	}
	if len(buf) > 0 && buf[0] == msgDigest {
		n.receiveDirect(buf)
		return
	}
	if len(buf) > 0 && buf[0] == msgStates {
		parts, err := decodeStates(buf)
		if err != nil {
			n.stats.stateGarbled.Add(1)
			n.logger.Printf("[WARN] healthdns gossip: dropped a push/pull state: %v", err)
			return
		}
		for _, p := range parts {
			if p[0] != msgState {
				n.mergeRecordState(p)
			} else {
				d.mergeState(p)
			}
		}
		return
	}
	d.mergeState(buf)
}

// mergeState merges a peer's observation state.
func (d *delegate) mergeState(buf []byte) {
	n := d.n
	fs, err := decodeState(buf)
	if err != nil {
		n.stats.stateGarbled.Add(1)
		n.logger.Printf("[WARN] healthdns gossip: dropped a push/pull state: %v", err)
		return
	}
	n.mu.Lock()
	o := n.st.mergeFull(fs, n.now())
	n.mu.Unlock()
	n.stats.merged.Add(1)
	n.settle(o)
}
