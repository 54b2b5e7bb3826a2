package gossip

import (
	"context"
	"fmt"
	"strconv"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// Record Sets on the Node. They live beside the observation state, under
// their own lock and with their own subscribers, since they change at
// another pace and their consumers (the record store, the DNS builder)
// are not those of observations.

// PublishRecords makes a Set known to the cluster: the owner's writer
// calls it after the Set was stored (records.Store.Apply), and any node
// may call it with a Set it holds (a server restarted from its data
// directory), since the highest version wins everywhere. A Set that fits
// a couple of gossip messages is gossiped; a larger one goes whole and
// directly to every member. A Set this node
// has already, or an older one, is not sent again. It fails for a Set
// that is invalid or too large to gossip.
func (n *Node) PublishRecords(s records.Set) error {
	if s.Version.IsZero() {
		return fmt.Errorf("gossip: record set of owner %s has no version", s.Owner)
	}
	d := s.Digest()
	n.recMu.Lock()
	news := n.rec.supersedes(s.Owner, s.Version, d)
	n.recMu.Unlock()
	if !news {
		return nil
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	n.recMu.Lock()
	pages, err := n.rec.publish(s)
	n.recMu.Unlock()
	if err != nil {
		return err
	}
	if len(pages) > bulkAfter {
		// Too large to gossip: whole, to every member directly.
		for _, b := range encodeRecordStates(n.cfg.Name, []records.Set{s}, maxRecordState) {
			n.sendDirect("", b, false)
		}
	} else {
		n.queueRecordPages(pages)
	}
	if len(pages) > 0 {
		n.notifyRecords()
	}
	return nil
}

// Records returns the latest Set of every owner known to the cluster,
// sorted by owner. The Sets are shared: do not modify them.
func (n *Node) Records() []records.Set {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	return n.rec.list()
}

// SubscribeRecords returns a channel that receives (coalesced, never
// blocking the node) after a record Set changed, and the function that
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

func recordPageName(owner string, page int) string { return "r/" + owner + "/" + strconv.Itoa(page) }

func (n *Node) queueRecordPages(pages []*recordPage) {
	for _, p := range pages {
		n.queue.QueueBroadcast(&broadcast{name: recordPageName(p.Owner, p.Page), msg: p.encode()})
	}
}

// handleRecordPage applies a page from the receive loop and relays it
// when it was news.
func (n *Node) handleRecordPage(m *recordPage, b []byte) {
	n.recMu.Lock()
	fresh, changed := n.rec.applyPage(m)
	n.recMu.Unlock()
	if !fresh {
		n.stats.stale.Add(1)
		return
	}
	n.queue.QueueBroadcast(&broadcast{name: recordPageName(m.Owner, m.Page), msg: b})
	if changed {
		n.notifyRecords()
	}
}

// localRecordState is the record part of a push/pull state, at most
// budget bytes of Sets; nil when the node knows no Set.
func (n *Node) localRecordState(budget int) []byte {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	if len(n.rec.sets) == 0 {
		return nil
	}
	return n.rec.full(n.cfg.Name, budget).encode()
}

// mergeRecordState merges the record part of a peer's push/pull state.
func (n *Node) mergeRecordState(b []byte) {
	m, err := decodeRecordState(b)
	if err != nil {
		n.stats.stateGarbled.Add(1)
		n.logger.Printf("[WARN] healthdns gossip: dropped a push/pull record state: %v", err)
		return
	}
	n.recMu.Lock()
	changed := n.rec.mergeFull(m)
	n.recMu.Unlock()
	if changed {
		n.notifyRecords()
	}
}

// RecordStore is what SyncRecords needs of a records.Store.
type RecordStore interface {
	Sets() []records.Set
	Merge(records.Set) (bool, error)
	Subscribe() (<-chan struct{}, func())
}

// SyncRecords keeps the node and a store in step until ctx ends or the
// node shuts down: every Set the store holds is published (the owner's
// writes, and on a restart the Sets recovered from disk), and every Set
// the cluster brings is merged into the store, which makes it durable.
// Only newer Sets move either way, so the two never echo each other. It
// returns the first error of Merge it meets at the end (a store that
// cannot write keeps failing; the node keeps the Sets in memory).
func (n *Node) SyncRecords(ctx context.Context, st RecordStore) error {
	fromStore, stopStore := st.Subscribe()
	defer stopStore()
	fromNode, stopNode := n.SubscribeRecords()
	defer stopNode()
	var firstErr error
	publish := func() {
		for _, s := range st.Sets() {
			if s.Version.IsZero() {
				continue
			}
			if err := n.PublishRecords(s); err != nil {
				n.logger.Printf("[ERR] healthdns gossip: record set of owner %s not published: %v", s.Owner, err)
			}
		}
	}
	merge := func() {
		for _, s := range n.Records() {
			if _, err := st.Merge(s); err != nil {
				if firstErr == nil {
					firstErr = err
					n.logger.Printf("[ERR] healthdns gossip: record set of owner %s not stored: %v", s.Owner, err)
				}
			}
		}
	}
	publish()
	merge()
	for {
		select {
		case <-ctx.Done():
			return firstErr
		case <-n.stop:
			return firstErr
		case <-fromStore:
			publish()
		case <-fromNode:
			merge()
		}
	}
}
