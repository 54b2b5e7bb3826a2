package records

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/google/btree"
)

// ownerState is one owner's records at one head, immutable once made: a
// change makes a new one that shares all but the O(log n) tree nodes it
// touched (a copy-on-write B-tree), so readers never wait and a change
// costs what it changes, in memory as on disk. Records are kept encoded
// (codec.go), a few hundred bytes each rather than the kilobyte of an
// Endpoint with its maps and slices, and decoded when read.
type ownerState struct {
	owner string
	head  Head
	tree  *btree.BTreeG[item]
	size  int // as Set.Size counts

	// log holds the latest changes: what a peer a little behind needs
	// (Since).
	log changeLog
}

// changeLog is an owner's latest changes, oldest first, the last one
// making its head. It is bounded in bytes of the changes' encodings (see
// add); a peer further behind gets the whole state. An entry shares the
// encoding of each record it put with the tree's item: a log of
// thousands of changes per owner (what keeps a peer that fell behind in
// a burst on changes rather than on whole states) costs about 60 bytes a
// change while the records it put are still the owner's, not a copy of
// each (28 MB across 10 owners of 20,000 records after a storm).
type changeLog struct {
	entries []recent
	from    Head // the head the first entry applies to; each other's is the one before's to
	bytes   int
	// dead is the bytes of the entries dropped since entries was last
	// copied, which its array may still hold.
	dead int
}

const (
	treeDegree  = 32
	minLogBytes = 64 << 10
	maxLogBytes = 4 << 20
)

// recent is a change in the log of recent changes: the head it makes,
// to find where a replica is, and what it put and removed, decoded when
// sent.
type recent struct {
	to Head
	// put is the encoding of the first record put ("" for none), the very
	// bytes of the item the change made; rest holds the others of a
	// change of more than one put or of any removal.
	put  string
	rest *recentRest
	size int32 // its encoding's bytes (AppendChange), about
}

type recentRest struct {
	put    [][]byte
	remove []Key
}

// recentOf is the log entry of c, whose puts were encoded as items.
func recentOf(c Change, puts []item) recent {
	size := 40 + len(c.Owner)
	e := recent{to: c.To}
	for i, it := range puts {
		size += len(it.enc)
		if i == 0 {
			e.put = shared(it.enc)
			continue
		}
		if e.rest == nil {
			e.rest = &recentRest{put: make([][]byte, 0, len(puts)-1)}
		}
		e.rest.put = append(e.rest.put, it.enc)
	}
	if len(c.Remove) > 0 {
		if e.rest == nil {
			e.rest = &recentRest{}
		}
		e.rest.remove = slices.Clone(c.Remove)
		for _, k := range c.Remove {
			size += 4 + len(k.Name) + len(k.Type) + len(k.SetIdentifier)
		}
	}
	e.size = int32(size)
	return e
}

// change decodes the entry, its strings sharing the items' encodings.
func (e recent) change(owner string, from Head) Change {
	c := Change{Owner: owner, From: from, To: e.to}
	if e.put != "" {
		n := 1
		if e.rest != nil {
			n += len(e.rest.put)
		}
		c.Put = make([]Endpoint, 0, n)
		c.Put = append(c.Put, item{enc: unsafe.Slice(unsafe.StringData(e.put), len(e.put))}.endpoint())
	}
	if e.rest != nil {
		for _, enc := range e.rest.put {
			c.Put = append(c.Put, item{enc: enc}.endpoint())
		}
		c.Remove = slices.Clone(e.rest.remove) // the caller's to keep
	}
	return c
}

// item is one record as a state keeps it: its encoding, which begins
// with its key (so that the key costs no copy of its own), and what it
// adds to the digest and the size.
type item struct {
	enc  []byte
	hash uint64
	size int
}

func lessItem(a, b item) bool { return compareKeys(a.key(), b.key()) < 0 }

// key is the item's key, its strings sharing the encoding's bytes
// (immutable once made).
func (it item) key() Key {
	b := it.enc
	n, w := binary.Uvarint(b)
	k := Key{Name: shared(b[w : w+int(n)])}
	b = b[w+int(n):]
	if int(b[0]) < len(recordTypes) {
		k.Type = recordTypes[b[0]]
	} else {
		k.Type = "~" // a pivot of a type never stored: after them all
	}
	n, w = binary.Uvarint(b[1:])
	k.SetIdentifier = shared(b[1+w : 1+w+int(n)])
	return k
}

// shared is b as a string without a copy, for a store's own encodings,
// which are never written once made.
func shared(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// pivot is an item to search a tree for key k.
func pivot(k Key) item { return item{enc: appendKey(nil, k)} }

// itemOf encodes a canonical endpoint.
func itemOf(e Endpoint) item {
	// Encoded where it grows, then copied at its length: grown by append
	// from nothing, a record's 130-odd bytes held a 256-byte array, and a
	// store holds hundreds of thousands.
	var buf [512]byte
	enc := slices.Clone(AppendEndpoint(buf[:0], e))
	return item{enc: enc, hash: hashEncoded(enc), size: e.size()}
}

// endpoint decodes an item; the encoding is ours and was checked when it
// came in, so it is not checked again, and its strings share the
// encoding's bytes rather than copy them (a record's answers hold on to
// a few of them).
func (it item) endpoint() Endpoint {
	d := Decoder{b: it.enc, share: true}
	return d.endpoint(false)
}

// served decodes an item without its labels.
func (it item) served() Endpoint {
	d := Decoder{b: it.enc, share: true, noLabels: true}
	return d.endpoint(false)
}

func newOwnerState(owner string) *ownerState {
	return &ownerState{owner: owner, tree: btree.NewG(treeDegree, lessItem), size: setOverhead + len(owner)}
}

// stateOf makes the state of a whole Set (checked by the caller).
func stateOf(s Set) *ownerState {
	o := newOwnerState(s.Owner)
	for _, e := range s.Endpoints {
		it := itemOf(e)
		o.tree.ReplaceOrInsert(it)
		o.size += it.size
	}
	o.head = s.Head
	return o
}

func (o *ownerState) lookupItem(k Key) (item, bool) { return o.tree.Get(pivot(k)) }

func (o *ownerState) lookup(k Key) (Endpoint, bool) {
	it, ok := o.lookupItem(k)
	if !ok {
		return Endpoint{}, false
	}
	return it.endpoint(), true
}

func (o *ownerState) len() int { return o.tree.Len() }

// ascend calls fn with each record, decoded, in key order.
func (o *ownerState) ascend(fn func(Endpoint) bool) {
	o.tree.Ascend(func(it item) bool { return fn(it.endpoint()) })
}

// endpoints returns the records in key order.
func (o *ownerState) endpoints() []Endpoint {
	out := make([]Endpoint, 0, o.tree.Len())
	o.ascend(func(e Endpoint) bool {
		out = append(out, e)
		return true
	})
	return out
}

// plan turns a checked batch into the change it makes to o as its writer:
// only what differs (a put equal to the record there, or a removal of a
// record that is not there, is left out), and the digest and size after.
func (o *ownerState) plan(n normalized) (put []Endpoint, remove []Key, digest uint64, size int) {
	digest, size = o.head.Digest, o.size
	var buf []byte
	putKeys := make(map[Key]bool, len(n.put))
	for _, e := range n.put {
		putKeys[e.Key()] = true
	}
	seen := make(map[Key]bool, len(n.remove))
	for _, k := range n.remove {
		if putKeys[k] || seen[k] {
			continue
		}
		seen[k] = true
		if old, ok := o.lookupItem(k); ok {
			digest -= old.hash
			size -= old.size
			remove = append(remove, k)
		}
	}
	for _, e := range n.put {
		buf = AppendEndpoint(buf[:0], e)
		old, ok := o.lookupItem(e.Key())
		if ok && bytes.Equal(old.enc, buf) {
			continue
		}
		if ok {
			digest -= old.hash
			size -= old.size
		}
		digest += hashEncoded(buf)
		size += e.size()
		put = append(put, e)
	}
	slices.SortFunc(put, func(a, b Endpoint) int { return compareKeys(a.Key(), b.Key()) })
	slices.SortFunc(remove, compareKeys)
	return put, remove, digest, size
}

// apply returns the state that c (which chains onto o: c.From == o.head)
// makes, or an error if what it makes is not c.To (a change that does not
// fit this state, though its From says it does). With inPlace, o is a
// state no one else has seen (the one before c in a batch of changes
// being stored) and its tree is written, not copied: a batch of changes
// to an owner copies each tree node it touches once, not once a change
// (three nodes of 2.5 KB a one-record change), and o is no longer valid.
func (o *ownerState) apply(c Change, inPlace bool) (*ownerState, error) {
	t := o.tree
	if !inPlace {
		t = t.Clone()
	}
	digest, size := o.head.Digest, o.size
	for _, k := range c.Remove {
		if old, ok := t.Delete(pivot(k)); ok {
			digest -= old.hash
			size -= old.size
		}
	}
	puts := make([]item, 0, len(c.Put))
	for _, e := range c.Put {
		it := itemOf(e)
		puts = append(puts, it)
		if old, ok := t.ReplaceOrInsert(it); ok {
			digest -= old.hash
			size -= old.size
		}
		digest += it.hash
		size += it.size
	}
	if digest != c.To.Digest {
		return nil, invalid("owner %s: the change to %s makes digest %016x", c.Owner, c.To, digest)
	}
	if t.Len() > MaxEndpoints {
		return nil, invalid("owner %s: the change leaves %d endpoints, more than %d", c.Owner, t.Len(), MaxEndpoints)
	}
	if size > MaxSetSize {
		return nil, invalid("owner %s: the change leaves %d bytes of records, more than %d", c.Owner, size, MaxSetSize)
	}
	n := &ownerState{owner: o.owner, head: c.To, tree: t, size: size}
	n.log = o.log.add(c.From, recentOf(c, puts), size)
	return n, nil
}

// add returns the log with c, which applies to from, dropping the oldest
// changes past its limit: no more bytes than half the state (so that
// catching up by changes costs less than the whole state) within
// [minLogBytes, maxLogBytes]. There is no bound on the number of
// changes: in a burst of one-record changes a replica a few seconds
// behind must still get changes, not whole states (which cost the
// owner's size on the wire, on disk and in memory each).
func (l changeLog) add(from Head, c recent, stateSize int) changeLog {
	if len(l.entries) == 0 || l.entries[len(l.entries)-1].to != from {
		l = changeLog{from: from} // the first entry, or a new chain (every change chains today)
	}
	limit := min(maxLogBytes, max(minLogBytes, stateSize/2))
	l.entries = append(l.entries, c)
	l.bytes += int(c.size)
	drop := 0
	for drop < len(l.entries) && l.bytes > limit {
		n := int(l.entries[drop].size)
		l.bytes -= n
		l.dead += n
		drop++
	}
	if drop == 0 {
		return l
	}
	l.from = l.entries[drop-1].to
	if drop == len(l.entries) || l.dead > limit/2 {
		// Copy, so that the dropped changes can be collected.
		l.entries, l.dead = append([]recent(nil), l.entries[drop:]...), 0
	} else {
		// Reslice: once the log is full every change drops one, and a
		// copy each time cost O(log) a change (a fifth of a server's CPU
		// in a burst of one-record changes). The array goes, with what it
		// holds of dropped changes, when append outgrows it or when they
		// add up to half the limit.
		l.entries = l.entries[drop:]
	}
	return l
}

// since returns the changes that bring a replica at from up to o.head, if
// the log reaches back that far: nil and true when from is o.head already.
func (o *ownerState) since(from Head) ([]Change, bool) {
	if from == o.head {
		return nil, true
	}
	at := o.log.from
	for i, e := range o.log.entries {
		if at == from {
			out := make([]Change, 0, len(o.log.entries)-i)
			for _, e := range o.log.entries[i:] {
				out = append(out, e.change(o.owner, at))
				at = e.to
			}
			return out, true
		}
		at = e.to
	}
	return nil, false
}

// set returns the whole Set.
func (o *ownerState) set() Set {
	return Set{Owner: o.owner, Head: o.head, Endpoints: o.endpoints()}
}

// State is the records of every owner a Store holds at one moment,
// immutable: a reader (the DNS builder, GET /records, a transfer to a
// peer) sees every owner as of the same moment without holding anything
// up.
type State struct {
	owners map[string]*ownerState
}

// Owners returns the owners, sorted.
func (s State) Owners() []string {
	out := make([]string, 0, len(s.owners))
	for o := range s.owners {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// Heads returns every owner's head, sorted by owner.
func (s State) Heads() []OwnerHead {
	out := make([]OwnerHead, 0, len(s.owners))
	for _, o := range s.Owners() {
		out = append(out, OwnerHead{Owner: o, Head: s.owners[o].head})
	}
	return out
}

// Head is the owner's head; zero for an owner never written.
func (s State) Head(owner string) Head {
	if o := s.owners[owner]; o != nil {
		return o.head
	}
	return Head{}
}

// Len is the number of the owner's records.
func (s State) Len(owner string) int {
	if o := s.owners[owner]; o != nil {
		return o.len()
	}
	return 0
}

// Size is the size of the owner's records as the limits count it.
func (s State) Size(owner string) int {
	if o := s.owners[owner]; o != nil {
		return o.size
	}
	return 0
}

// Range calls fn for each of the owner's records in key order until fn
// returns false. The endpoints are shared: never modify them.
func (s State) Range(owner string, fn func(Endpoint) bool) {
	if o := s.owners[owner]; o != nil {
		o.ascend(fn)
	}
}

// RangeName calls fn for each of the owner's records of one canonical
// name, in key order, until fn returns false: O(log n) to find them, so
// that a change is merged into the answers at the cost of what it touches.
// The endpoints have no Labels (ExternalDNS's, never served).
func (s State) RangeName(owner, name string, fn func(Endpoint) bool) {
	o := s.owners[owner]
	if o == nil {
		return
	}
	o.tree.AscendGreaterOrEqual(pivot(Key{Name: name}), func(it item) bool {
		return it.key().Name == name && fn(it.served())
	})
}

// RangeServed is Range for the answers: the endpoints have no Labels.
func (s State) RangeServed(owner string, fn func(Endpoint) bool) {
	if o := s.owners[owner]; o != nil {
		o.tree.Ascend(func(it item) bool { return fn(it.served()) })
	}
}

// RangeKeys calls fn with the key of each of the owner's records, in key
// order, until fn returns false; it decodes nothing.
func (s State) RangeKeys(owner string, fn func(Key) bool) {
	if o := s.owners[owner]; o != nil {
		o.tree.Ascend(func(it item) bool { return fn(it.key()) })
	}
}

// Lookup returns the owner's record with key k.
func (s State) Lookup(owner string, k Key) (Endpoint, bool) {
	if o := s.owners[owner]; o != nil {
		return o.lookup(k)
	}
	return Endpoint{}, false
}

// Set returns the owner's records whole; an empty Set with a zero head
// for an owner never written.
func (s State) Set(owner string) Set {
	if o := s.owners[owner]; o != nil {
		return o.set()
	}
	return Set{Owner: owner}
}

// Since returns the changes that bring a replica of owner at from up to
// this state, if the bounded log of recent changes reaches back that far
// (see Change); false means the replica needs the whole Set.
func (s State) Since(owner string, from Head) ([]Change, bool) {
	o := s.owners[owner]
	if o == nil {
		return nil, from.IsZero()
	}
	return o.since(from)
}

// ChangedNames calls fn with the name of each of the owner's records that
// differs between old and s (put, replaced or removed), in key order, a
// name once for each record of it that differs: what a reader of old
// must read again when the log of changes does not reach back to it (the
// owner installed whole, as a peer sent it). It costs a walk of both
// states and a key and hash per record of old, not a decode.
func (s State) ChangedNames(old State, owner string, fn func(name string)) {
	type keyHash struct {
		k Key
		h uint64
	}
	var prev []keyHash
	if o := old.owners[owner]; o != nil {
		prev = make([]keyHash, 0, o.tree.Len())
		o.tree.Ascend(func(it item) bool {
			prev = append(prev, keyHash{it.key(), it.hash})
			return true
		})
	}
	i := 0
	if o := s.owners[owner]; o != nil {
		o.tree.Ascend(func(it item) bool {
			k := it.key()
			for i < len(prev) && compareKeys(prev[i].k, k) < 0 {
				fn(prev[i].k.Name)
				i++
			}
			if i < len(prev) && compareKeys(prev[i].k, k) == 0 {
				if prev[i].h != it.hash {
					fn(k.Name)
				}
				i++
			} else {
				fn(k.Name)
			}
			return true
		})
	}
	for ; i < len(prev); i++ {
		fn(prev[i].k.Name)
	}
}
