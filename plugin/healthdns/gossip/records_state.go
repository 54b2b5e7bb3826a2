package gossip

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// recordState is this node's part in replicating owners' records. Its
// owner (the Node) serialises access with recMu.
//
// Servers replicate every owner: into a records.Store, in memory until a
// durable one is attached (SyncRecords). An agent replicates only the
// owners of the store it is given (its sidecar's), and otherwise only
// relays the changes it hears, once each.
type recordState struct {
	store  *records.Store // nil: relay only
	all    bool           // replicates every owner
	owners map[string]bool

	// relayed is, for owners not replicated here, the newest head whose
	// change was relayed, so that each is relayed once.
	relayed map[string]records.Head
	// pending holds changes that arrived ahead of the store (one before
	// them is missing), per owner, until the missing one comes.
	pending      map[string][]records.Change
	pendingBytes int
	// wanted is, per owner, the newest head heard of past the store's;
	// behind since when this node knows it lacks changes, and asked when
	// it last asked a peer for them.
	wanted map[string]records.Head
	behind map[string]time.Time
	asked  map[string]time.Time
	// asm collects the parts of owners' records sent whole.
	asm map[partKey]*partAssembly
	// baseline is, per owner, the head the store had when it was
	// attached: what peers learn by anti-entropy. sent is, per server and
	// owner, the head up to which this node's writes were sent to it, and
	// gossiped the head up to which they were gossiped.
	baseline map[string]records.Head
	sent     map[string]map[string]records.Head
	gossiped map[string]records.Head
	// lastErrLog rate-limits the log of records not stored.
	lastErrLog time.Time
	// source is, per owner, the member that last sent changes of it
	// directly (its writer, mostly): the first to ask for what is missing.
	source map[string]string

	// in queues record messages for the applier (applyRecords), which
	// stores them, many with one fsync, off the receive loop; inBytes
	// bounds it.
	in      chan recordWork
	inBytes atomic.Int64
}

// recordWork is a record message for the applier.
type recordWork struct {
	changes []records.Change
	from    string      // the direct sender, if known
	part    *recordPart // or a part of an owner's records whole
	gossip  []byte      // a gossiped change, to relay if news (see handleRecordChange)
	// raw is a record delta as it came, decoded by the applier: a decoded
	// change holds about three times its encoding, and a storm's queue
	// held 23 MB of them; decoding there also keeps it off the receive
	// loop, which observations share.
	raw  []byte
	size int
}

type partKey struct {
	owner string
	head  records.Head
}

type partAssembly struct {
	parts int
	got   map[int][]records.Endpoint
	bytes int
	start time.Time
}

const (
	// recordQueue and recordQueueBytes bound the record messages waiting
	// for the applier; past them messages are dropped (counted), and
	// repaired like lost ones.
	recordQueue      = 4096
	recordQueueBytes = 64 << 20
	// applyBatch and applyBatchBytes bound the messages the applier
	// stores at once: a batch is decoded whole before it is stored, and
	// 512 deltas of a server behind held 30 MB decoded.
	applyBatch      = 512
	applyBatchBytes = 1 << 20

	maxPendingPerOwner = 256
	maxPendingBytes    = 8 << 20
	maxAssemblies      = 16
	maxAssemblyBytes   = 64 << 20
	assemblyTimeout    = time.Minute
	// broadcastChanges is the most changes one publication gossips; a run
	// longer than that, or a change too large for a packet, goes
	// directly to every server.
	broadcastChanges = 4
	// busyQueue is the length of the broadcast queue past which changes
	// go direct: gossip is behind, and a run sent at once catches up.
	busyQueue = 64
)

func newRecordState(role Role) *recordState {
	r := &recordState{
		owners:   map[string]bool{},
		relayed:  map[string]records.Head{},
		pending:  map[string][]records.Change{},
		wanted:   map[string]records.Head{},
		behind:   map[string]time.Time{},
		asked:    map[string]time.Time{},
		asm:      map[partKey]*partAssembly{},
		baseline: map[string]records.Head{},
		sent:     map[string]map[string]records.Head{},
		gossiped: map[string]records.Head{},
		source:   map[string]string{},
		in:       make(chan recordWork, recordQueue),
	}
	if role == RoleServer {
		r.store = records.Memory(records.Options{})
		r.all = true
	}
	return r
}

// replicates reports whether this node keeps owner's records.
func (r *recordState) replicates(owner string) bool {
	return r.store != nil && (r.all || r.owners[owner])
}

// heads returns the heads of the owners this node replicates, the owners
// it wants and has nothing of included (zero heads).
func (r *recordState) heads() []records.OwnerHead {
	if r.store == nil {
		return nil
	}
	st := r.store.State()
	out := st.Heads()
	if !r.all {
		out = slices.DeleteFunc(out, func(h records.OwnerHead) bool { return !r.owners[h.Owner] })
		for o := range r.owners {
			if st.Head(o).IsZero() {
				out = append(out, records.OwnerHead{Owner: o})
			}
		}
		slices.SortFunc(out, func(a, b records.OwnerHead) int {
			if a.Owner < b.Owner {
				return -1
			}
			if a.Owner > b.Owner {
				return 1
			}
			return 0
		})
	}
	return out
}

// want notes that a peer has owner's records at head, past this node's,
// and when this node first knew it lacked something.
func (r *recordState) want(owner string, head records.Head, now time.Time) {
	if head.After(r.wanted[owner]) {
		r.wanted[owner] = head
	}
	if _, ok := r.behind[owner]; !ok {
		r.behind[owner] = now
	}
}

// caughtUp forgets that owner was behind once the store is at or past
// every head heard of.
func (r *recordState) caughtUp(owner string, head records.Head) {
	if !r.wanted[owner].After(head) {
		delete(r.wanted, owner)
		delete(r.behind, owner)
		delete(r.asked, owner)
	}
}

// addPending keeps a change that came ahead of the store, within bounds,
// and reports whether it was new.
func (r *recordState) addPending(c records.Change, now time.Time) bool {
	ps := r.pending[c.Owner]
	for _, p := range ps {
		if p.From == c.From && p.To == c.To {
			return false
		}
	}
	r.want(c.Owner, c.To, now)
	if len(ps) >= maxPendingPerOwner || r.pendingBytes+c.Size() > maxPendingBytes {
		return true // news, but not kept: the repair brings it
	}
	r.pending[c.Owner] = append(ps, c)
	r.pendingBytes += c.Size()
	return true
}

// takePending removes and returns the pending changes of owner that
// follow head, in chain order, and drops those the head is past.
func (r *recordState) takePending(owner string, head records.Head) []records.Change {
	ps := slices.Clone(r.pending[owner])
	var chain []records.Change
	for {
		i := slices.IndexFunc(ps, func(c records.Change) bool { return c.From == head })
		if i < 0 {
			break
		}
		chain = append(chain, ps[i])
		head = ps[i].To
		ps = slices.Delete(ps, i, i+1)
	}
	ps = slices.DeleteFunc(ps, func(c records.Change) bool { return !c.To.After(head) })
	if len(ps) == 0 {
		delete(r.pending, owner)
	} else {
		r.pending[owner] = ps
	}
	r.pendingBytes = 0
	for _, list := range r.pending {
		r.pendingBytes += sizeOf(list)
	}
	return chain
}

func sizeOf(cs []records.Change) int {
	n := 0
	for _, c := range cs {
		n += c.Size()
	}
	return n
}

// addPart collects a part of an owner's records whole, and returns the
// Set once every part is in.
func (r *recordState) addPart(m *recordPart, now time.Time) (records.Set, bool) {
	for k, a := range r.asm {
		if now.Sub(a.start) > assemblyTimeout || (k.owner == m.Owner && m.Head.After(k.head)) {
			delete(r.asm, k)
		}
	}
	k := partKey{m.Owner, m.Head}
	a := r.asm[k]
	if a == nil {
		total := 0
		for _, a := range r.asm {
			total += a.bytes
		}
		if len(r.asm) >= maxAssemblies || total > maxAssemblyBytes {
			return records.Set{}, false
		}
		a = &partAssembly{parts: m.Parts, got: map[int][]records.Endpoint{}, start: now}
		r.asm[k] = a
	}
	if a.parts != m.Parts {
		return records.Set{}, false
	}
	if _, dup := a.got[m.Part]; dup {
		return records.Set{}, false
	}
	a.got[m.Part] = m.Endpoints
	for _, e := range m.Endpoints {
		a.bytes += 128 + len(e.DNSName)
	}
	if len(a.got) < a.parts {
		return records.Set{}, false
	}
	delete(r.asm, k)
	s := records.Set{Owner: m.Owner, Head: m.Head}
	for i := range a.parts {
		s.Endpoints = append(s.Endpoints, a.got[i]...)
	}
	return s, true
}
