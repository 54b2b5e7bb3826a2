package gossip

import (
	"errors"
	"fmt"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/override"
)

// Operators' overrides (package override) are state of their own, beside
// observations and records: a handful of entries, each versioned by
// (time set, node that took the write), last writer wins. A new entry is
// gossiped (relayed by every node that finds it news) and sent directly
// to every live member at once, so every server has it within a round
// trip, and the whole book rides along every push/pull, join included,
// so that a server that restarts or joins late gets it.
//
//	override        (23): entry; by gossip and direct
//	override state  (24): the push/pull state with the book: inner uv
//	                      length + inner (the state or digest as it would
//	                      be without overrides), n uv, n × entry
//	entry: selector str, state byte (0 cleared, 1 drain, 2 down, 3 up),
//	       reason str, who str, set unix ns uv, node str, until unix ns
//	       uv (0 for none)
//
// The push/pull state is wrapped only while the book holds entries, so a
// cluster without overrides sends what it sent before. (Edge clients
// have 20-22, reasons 25.)
const (
	msgOverride      byte = 23
	msgOverrideState byte = 24

	minOverride = 1 + 1 + 1 + 1 + 1 + 2 + 1
)

func appendOverride(b []byte, e override.Entry) []byte {
	b = appendString(b, e.Key())
	b = append(b, byte(e.State))
	b = appendString(b, e.Reason)
	b = appendString(b, e.Who)
	b = appendUvarint(b, uint64(e.At.UnixNano()))
	b = appendString(b, e.Node)
	var until uint64
	if !e.Until.IsZero() {
		until = uint64(e.Until.UnixNano())
	}
	return appendUvarint(b, until)
}

func encodeOverride(e override.Entry) []byte {
	return appendOverride(appendHeader(nil, msgOverride), e)
}

// wrapOverrides wraps a push/pull state with the book's entries.
func wrapOverrides(inner []byte, es []override.Entry) []byte {
	if len(es) == 0 {
		return inner
	}
	b := appendHeader(make([]byte, 0, len(inner)+16+len(es)*64), msgOverrideState)
	b = appendUvarint(b, uint64(len(inner)))
	b = append(b, inner...)
	b = appendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = appendOverride(b, e)
	}
	return b
}

func (d *decoder) override() override.Entry {
	sel := d.string(override.MaxSelectorLen, "selector length")
	st := override.State(d.byte())
	e := override.Entry{State: st}
	e.Reason = d.string(override.MaxReasonLen, "reason length")
	e.Who = d.string(override.MaxWhoLen, "who length")
	at := d.bounded(1<<63-1, "set time")
	e.Node = d.string(override.MaxNodeLen, "node length")
	until := d.bounded(1<<63-1, "until")
	if d.err != nil {
		return e
	}
	s, err := override.ParseSelector(sel)
	if err != nil {
		d.fail(err)
		return e
	}
	e.Selector, e.At = s, time.Unix(0, int64(at)).UTC()
	if until != 0 {
		e.Until = time.Unix(0, int64(until)).UTC()
	}
	if err := e.Validate(); err != nil {
		d.fail(err)
	}
	return e
}

// decodeOverrides decodes either kind: an override (23) gives one entry
// and no inner state; an override state (24) the entries and the inner
// push/pull state it wraps.
func decodeOverrides(b []byte) (inner []byte, es []override.Entry, err error) {
	if len(b) > maxState {
		return nil, nil, errTooLarge
	}
	typ, d, err := decodeHeader(b)
	if err != nil {
		return nil, nil, err
	}
	switch typ {
	case msgOverride:
		es = []override.Entry{d.override()}
	case msgOverrideState:
		inner = d.bytes(maxState, "inner state length")
		if d.err == nil && len(inner) == 0 {
			d.fail(errors.New("override state without a state inside"))
		}
		n := d.count(minOverride, "overrides")
		if n > override.MaxEntries {
			d.fail(fmt.Errorf("%d overrides, over the limit %d", n, override.MaxEntries))
		}
		for i := 0; i < n && d.err == nil; i++ {
			es = append(es, d.override())
		}
	default:
		return nil, nil, fmt.Errorf("message type %d is not an override", typ)
	}
	if err := d.finish(); err != nil {
		return nil, nil, err
	}
	return inner, es, nil
}

// Overrides is the node's book of overrides: what it took from the API,
// its peers and the data directory. Read it; change it through
// MergeOverrides.
func (n *Node) Overrides() *override.Book { return n.ovr }

// MergeOverrides adds entries (validated by the caller) to the book
// without sending them, and returns those that were news; subscribers
// are told. A server loads its data directory's entries with it, and
// takes an operator's write with it before it is stored and sent
// (SendOverrides).
func (n *Node) MergeOverrides(es ...override.Entry) []override.Entry {
	news := n.ovr.Merge(n.now(), es...)
	if len(news) > 0 {
		n.notifyOverrides()
	}
	return news
}

// PublishOverrides takes an operator's write: the entries that are news
// go into the book once persist stored it (see override.Book.Apply),
// subscribers are told, and they are sent (SendOverrides). Nothing
// changes if persist fails.
func (n *Node) PublishOverrides(persist func([]override.Entry, uint64) error, es ...override.Entry) ([]override.Entry, error) {
	news, err := n.ovr.Apply(n.now(), persist, es...)
	if err != nil || len(news) == 0 {
		return nil, err
	}
	n.notifyOverrides()
	n.SendOverrides(news...)
	return news, nil
}

// SendOverrides sends entries to the cluster: directly to every live
// member, and by gossip, which relays them to those the direct message
// missed.
func (n *Node) SendOverrides(es ...override.Entry) {
	for _, e := range es {
		b := encodeOverride(e)
		n.queue.QueueBroadcast(&broadcast{name: "v/" + e.Key(), msg: b})
		n.sendDirect("", b, false)
	}
}

// SubscribeOverrides returns a channel that receives (coalesced) after
// the book changed, and the function that ends the subscription.
// Subscribe's channel is told too.
func (n *Node) SubscribeOverrides() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.subsMu.Lock()
	n.ovrSubs[ch] = struct{}{}
	n.subsMu.Unlock()
	return ch, func() {
		n.subsMu.Lock()
		delete(n.ovrSubs, ch)
		n.subsMu.Unlock()
	}
}

func (n *Node) notifyOverrides() {
	n.subsMu.Lock()
	for ch := range n.ovrSubs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	n.subsMu.Unlock()
	n.notify()
}

// handleOverride handles an override message (gossip or direct) in the
// receive loop: news is merged, relayed and told.
func (n *Node) handleOverride(es []override.Entry, b []byte) {
	n.stats.received.Add(1)
	news := n.MergeOverrides(es...)
	if len(news) == 0 {
		n.stats.stale.Add(1)
		return
	}
	for _, e := range news {
		n.logger.Printf("[INFO] healthdns gossip: override %s %s by %s from %s", e.Key(), e.State, orDash(e.Who), e.Node)
		n.queue.QueueBroadcast(&broadcast{name: "v/" + e.Key(), msg: b})
	}
}

// localOverrideState wraps a push/pull state with the book.
func (n *Node) localOverrideState(inner []byte) []byte {
	es, _ := n.ovr.All()
	return wrapOverrides(inner, es)
}

// mergeOverrideState takes the book out of a peer's push/pull state and
// returns the state inside; nil when there is nothing more to merge.
func (n *Node) mergeOverrideState(buf []byte) []byte {
	if len(buf) == 0 || buf[0] != msgOverrideState {
		return buf
	}
	inner, es, err := decodeOverrides(buf)
	if err != nil {
		n.stats.stateGarbled.Add(1)
		n.logger.Printf("[WARN] healthdns gossip: dropped a push/pull state: %v", err)
		return nil
	}
	for _, e := range n.MergeOverrides(es...) {
		n.logger.Printf("[INFO] healthdns gossip: override %s %s by %s from %s (push/pull)", e.Key(), e.State, orDash(e.Who), e.Node)
	}
	return inner
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
