package gossip

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// recordState is the record Sets this node knows, one per owner, the
// highest version of each (records.Set.Supersedes). Like state it is pure
// and its owner (the Node) serialises access.
//
// Sets are kept for ever: an owner whose cluster is gone keeps its records
// served, and health decides whether its targets answer. A delete is a
// newer Set without the record, so nothing needs to expire.
type recordState struct {
	sets map[string]*ownerSet
	asm  map[string]*recordAssembly
	next int // where the next push/pull state starts, when not all fit
}

type ownerSet struct {
	set    records.Set
	digest uint64
}

// recordAssembly collects the pages of one Set.
type recordAssembly struct {
	version records.Version
	digest  uint64
	pages   int
	got     map[int][]byte
}

func newRecordState() *recordState {
	return &recordState{sets: map[string]*ownerSet{}, asm: map[string]*recordAssembly{}}
}

// after reports whether (v1, d1) comes after (v2, d2), as Supersedes.
func after(v1 records.Version, d1 uint64, v2 records.Version, d2 uint64) bool {
	if v1 != v2 {
		return v2.Less(v1)
	}
	return d1 > d2
}

// supersedes reports whether a Set at (v, d) of owner replaces what is known.
func (r *recordState) supersedes(owner string, v records.Version, d uint64) bool {
	cur := r.sets[owner]
	return cur == nil || after(v, d, cur.set.Version, cur.digest)
}

// put makes s the owner's Set if it supersedes the one known, and reports
// whether it did.
func (r *recordState) put(s records.Set, digest uint64) bool {
	if !r.supersedes(s.Owner, s.Version, digest) {
		return false
	}
	r.sets[s.Owner] = &ownerSet{set: s, digest: digest}
	if a := r.asm[s.Owner]; a != nil && !after(a.version, a.digest, s.Version, digest) {
		delete(r.asm, s.Owner)
	}
	return true
}

// publish takes a Set (checked by the caller) and returns it as pages if it
// is news; nil if this node has it, or a later one, already.
func (r *recordState) publish(s records.Set) ([]*recordPage, error) {
	d := s.Digest()
	if !r.supersedes(s.Owner, s.Version, d) {
		return nil, nil
	}
	pages, err := paginateSet(s, d)
	if err != nil {
		return nil, err
	}
	r.put(s, d)
	return pages, nil
}

// paginateSet cuts a Set's body into pages that each fit one gossip
// message.
func paginateSet(s records.Set, digest uint64) ([]*recordPage, error) {
	body := appendSetBody(nil, s.Endpoints)
	if len(body) > maxSetBody {
		return nil, fmt.Errorf("gossip: record set of owner %s is %d bytes, over the limit %d", s.Owner, len(body), maxSetBody)
	}
	header := len((&recordPage{Owner: s.Owner, Version: s.Version, Page: maxRecordPages - 1, Pages: maxRecordPages, Chunk: make([]byte, maxBroadcast)}).encode()) - maxBroadcast
	chunk := maxBroadcast - header
	n := max(1, (len(body)+chunk-1)/chunk)
	if n > maxRecordPages {
		return nil, fmt.Errorf("gossip: record set of owner %s needs %d pages, over the limit %d", s.Owner, n, maxRecordPages)
	}
	pages := make([]*recordPage, 0, n)
	for i := range n {
		c := body[i*chunk : min(len(body), (i+1)*chunk)]
		pages = append(pages, &recordPage{Owner: s.Owner, Version: s.Version, Digest: digest, Page: i, Pages: n, Chunk: c})
	}
	return pages, nil
}

// applyPage collects a page; the Set is taken once all its pages are in.
// fresh says the page was news (to relay), changed that a Set was taken.
func (r *recordState) applyPage(m *recordPage) (fresh, changed bool) {
	if !r.supersedes(m.Owner, m.Version, m.Digest) {
		return false, false
	}
	a := r.asm[m.Owner]
	if a == nil || after(m.Version, m.Digest, a.version, a.digest) {
		if a == nil && len(r.asm) >= maxAssemblies {
			return false, false
		}
		a = &recordAssembly{version: m.Version, digest: m.Digest, pages: m.Pages, got: map[int][]byte{}}
		r.asm[m.Owner] = a
	}
	if a.version != m.Version || a.digest != m.Digest || a.pages != m.Pages {
		return false, false // older than the one collected, or inconsistent
	}
	if _, dup := a.got[m.Page]; dup {
		return false, false
	}
	a.got[m.Page] = m.Chunk
	if len(a.got) < a.pages {
		return true, false
	}
	delete(r.asm, m.Owner)
	var body []byte
	for i := range a.pages {
		body = append(body, a.got[i]...)
	}
	s, err := decodeSetBody(m.Owner, m.Version, body)
	if err != nil || s.Digest() != m.Digest {
		// Pages that do not make up the Set they claim: drop them, and
		// let push/pull bring the Set.
		return true, false
	}
	return true, r.put(s, m.Digest)
}

// full returns the Sets for a push/pull state, at most budget bytes of
// them. When not all fit, each state starts where the last one stopped,
// so that every Set goes out in turn.
func (r *recordState) full(sender string, budget int) *recordStateMsg {
	owners := make([]string, 0, len(r.sets))
	for o := range r.sets {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	m := &recordStateMsg{Sender: sender}
	used, firstOut := 0, -1
	for i := range owners {
		idx := (r.next + i) % len(owners)
		s := r.sets[owners[idx]].set
		if size := s.Size(); used+size <= budget {
			used += size
			m.Sets = append(m.Sets, s)
		} else if firstOut < 0 {
			firstOut = idx
		}
	}
	if firstOut >= 0 {
		r.next = firstOut
	}
	slices.SortFunc(m.Sets, func(a, b records.Set) int { return cmp.Compare(a.Owner, b.Owner) })
	return m
}

// mergeFull takes the Sets of a push/pull state that supersede those
// known, and reports whether any did.
func (r *recordState) mergeFull(m *recordStateMsg) bool {
	changed := false
	for _, s := range m.Sets {
		if r.put(s, s.Digest()) {
			changed = true
		}
	}
	return changed
}

// versions returns the version of every Set, for a digest.
func (r *recordState) versions() []setVersion {
	out := make([]setVersion, 0, len(r.sets))
	for owner, o := range r.sets {
		out = append(out, setVersion{Owner: owner, Version: o.set.Version, Digest: o.digest})
	}
	slices.SortFunc(out, func(a, b setVersion) int { return cmp.Compare(a.Owner, b.Owner) })
	return out
}

// lacks returns the Sets that supersede those of theirs, a digest's
// versions: what its sender lacks.
func (r *recordState) lacks(theirs []setVersion) []records.Set {
	known := make(map[string]setVersion, len(theirs))
	for _, v := range theirs {
		known[v.Owner] = v
	}
	var out []records.Set
	for owner, o := range r.sets {
		if t, ok := known[owner]; !ok || after(o.set.Version, o.digest, t.Version, t.Digest) {
			out = append(out, o.set)
		}
	}
	slices.SortFunc(out, func(a, b records.Set) int { return cmp.Compare(a.Owner, b.Owner) })
	return out
}

// list returns every Set, sorted by owner.
func (r *recordState) list() []records.Set {
	out := make([]records.Set, 0, len(r.sets))
	for _, o := range r.sets {
		out = append(out, o.set)
	}
	slices.SortFunc(out, func(a, b records.Set) int { return cmp.Compare(a.Owner, b.Owner) })
	return out
}
