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
// rather than stall memberlist's packet loop.
func (d *delegate) NotifyMsg(b []byte) {
	d.n.stats.recvBytes.Add(uint64(len(b)))
	if len(b) > maxInbound {
		d.n.stats.oversized.Add(1)
		return
	}
	c := make([]byte, len(b))
	copy(c, b)
	select {
	case d.n.inbox <- c:
	default:
		d.n.stats.dropped.Add(1)
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

// LocalState is the node's whole state for push/pull (and join): the
// observation state and, when the node knows record Sets, the record
// state beside it in a states envelope.
func (d *delegate) LocalState(join bool) []byte {
	n := d.n
	n.mu.Lock()
	fs := n.st.full(n.now())
	n.mu.Unlock()
	b := fs.encode()
	if len(b) > maxState {
		n.stats.stateTooLarge.Add(1)
		n.logger.Printf("[ERR] healthdns gossip: state of %d bytes is over the %d-byte limit; not sent", len(b), maxState)
		b = (&fullState{Sender: n.cfg.Name}).encode()
	}
	if rec := n.localRecordState(min(maxRecordState, maxState-len(b)-1024)); rec != nil {
		b = encodeStates(b, rec)
	}
	n.stats.stateSentBytes.Add(uint64(len(b)))
	return b
}

// MergeRemoteState merges a peer's state. It runs on the push/pull
// connection's goroutine, not the packet loop, so it works inline.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	n := d.n
	n.stats.stateRecvBytes.Add(uint64(len(buf)))
	if len(buf) > 0 && buf[0] == msgStates {
		parts, err := decodeStates(buf)
		if err != nil {
			n.stats.stateGarbled.Add(1)
			n.logger.Printf("[WARN] healthdns gossip: dropped a push/pull state: %v", err)
			return
		}
		for _, p := range parts {
			if p[0] == msgRecordState {
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
	if o.self != 0 {
		n.refute(o.self)
	}
	if o.changed {
		n.notify()
	}
}
