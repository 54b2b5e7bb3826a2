package records

import (
	"fmt"
	"slices"
	"strconv"
)

// Version orders the states of one owner: a higher epoch is a later
// incarnation of a writer, and seq counts changes within it.
type Version struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Less reports whether v comes before o.
func (v Version) Less(o Version) bool {
	return v.Epoch < o.Epoch || (v.Epoch == o.Epoch && v.Seq < o.Seq)
}

// IsZero reports whether v is the version of an owner never written.
func (v Version) IsZero() bool { return v == Version{} }

func (v Version) String() string {
	return strconv.FormatUint(v.Epoch, 10) + "." + strconv.FormatUint(v.Seq, 10)
}

// Head names one state of an owner's records: its version and a digest of
// its content (see Digest). Two states with one version and different
// content can only come from two writers of one owner at once (a
// misconfiguration, or a rolling restart); the higher digest wins, so
// every node still picks the same one.
type Head struct {
	Version Version
	Digest  uint64
}

// IsZero reports whether h is the head of an owner never written.
func (h Head) IsZero() bool { return h == Head{} }

// After reports whether h supersedes o: a higher version, or the same
// version and a higher digest.
func (h Head) After(o Head) bool {
	if h.Version != o.Version {
		return o.Version.Less(h.Version)
	}
	return h.Digest > o.Digest
}

func (h Head) String() string { return fmt.Sprintf("%s/%016x", h.Version, h.Digest) }

// OwnerHead is an owner and the head of its state.
type OwnerHead struct {
	Owner string
	Head  Head
}

// Set is all the records of one owner at one head, whole: what a peer
// that is too far behind gets instead of the changes it missed, and what
// a snapshot holds.
type Set struct {
	Owner string
	Head  Head
	// Endpoints are canonical, sorted by key, one per key. Shared: never
	// modify them.
	Endpoints []Endpoint
}

// Limits on an owner's records, so that they can be stored, sent and
// served. An owner is a cluster; ExternalDNS sends tens of thousands of
// endpoints in one batch for a large one.
const (
	MaxEndpoints = 100000   // endpoints of one owner
	MaxSetSize   = 32 << 20 // bytes of one owner's records, as Size counts them
	MaxOwnerLen  = 63
)

// CheckOwner checks an owner name: 1 to 63 letters, digits, '-', '_' or
// '.'. Owners appear in metrics labels and on the wire.
func CheckOwner(owner string) error {
	if owner == "" || len(owner) > MaxOwnerLen {
		return invalid("owner %.80q: want 1 to %d characters", owner, MaxOwnerLen)
	}
	for i := 0; i < len(owner); i++ {
		c := owner[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return invalid("owner %q: bad character %q (want letters, digits, '-', '_' or '.')", owner, c)
		}
	}
	return nil
}

// Size is the Set's size in bytes as the limits count it; every encoding
// of the Set (disk, gossip) takes at most that.
func (s Set) Size() int {
	n := setOverhead + len(s.Owner)
	for _, e := range s.Endpoints {
		n += e.size()
	}
	return n
}

const setOverhead = 32

// Validate checks that s is a Set as a Store or a peer may hold it: a
// valid owner, canonical endpoints in key order, one per key, within the
// limits, and a digest that matches them. Errors wrap ErrInvalid.
func (s Set) Validate() error {
	if err := CheckOwner(s.Owner); err != nil {
		return err
	}
	if len(s.Endpoints) > MaxEndpoints {
		return invalid("owner %s: %d endpoints, more than %d", s.Owner, len(s.Endpoints), MaxEndpoints)
	}
	if err := checkCanonical(s.Owner, s.Endpoints); err != nil {
		return err
	}
	if n := s.Size(); n > MaxSetSize {
		return invalid("owner %s: %d bytes of records, more than %d", s.Owner, n, MaxSetSize)
	}
	if d := Digest(s.Endpoints); d != s.Head.Digest {
		return invalid("owner %s: digest %016x, the endpoints make %016x", s.Owner, s.Head.Digest, d)
	}
	return nil
}

// checkCanonical checks that eps are canonical, in key order, one per key.
func checkCanonical(owner string, eps []Endpoint) error {
	for i, e := range eps {
		c, err := Normalize(e)
		if err != nil {
			return err
		}
		if !c.equal(e) {
			return invalid("owner %s: endpoint %s is not in canonical form", owner, e.Key())
		}
		if i > 0 && compareKeys(eps[i-1].Key(), e.Key()) >= 0 {
			return invalid("owner %s: endpoints out of order or repeated at %s", owner, e.Key())
		}
	}
	return nil
}

// Lookup returns the endpoint with key k.
func (s Set) Lookup(k Key) (Endpoint, bool) {
	i, ok := slices.BinarySearchFunc(s.Endpoints, k, func(e Endpoint, k Key) int { return compareKeys(e.Key(), k) })
	if !ok {
		return Endpoint{}, false
	}
	return s.Endpoints[i], true
}

// Changes is one batch of changes to an owner's records, as ExternalDNS
// sends them (plan.Changes; same JSON). Applying it removes the records of
// Delete and UpdateOld, then adds or replaces those of Create and
// UpdateNew, all at once or not at all. Records are matched by key only;
// deleting a record that does not exist is not an error, and creating one
// that exists replaces it, so a batch retried after a lost reply does no
// harm.
type Changes struct {
	Create    []Endpoint `json:"create,omitempty"`
	UpdateOld []Endpoint `json:"updateOld,omitempty"`
	UpdateNew []Endpoint `json:"updateNew,omitempty"`
	Delete    []Endpoint `json:"delete,omitempty"`
}

// Len is the number of endpoints in c.
func (c Changes) Len() int {
	return len(c.Create) + len(c.UpdateOld) + len(c.UpdateNew) + len(c.Delete)
}

// normalized is a checked batch: keys to remove, endpoints to put.
type normalized struct {
	remove []Key
	put    []Endpoint
}

// Check validates c against the filter f (nil: any name) without
// applying it. Errors wrap ErrInvalid and name the offending endpoint.
func (c Changes) Check(f *Filter) error {
	_, err := c.normalize(f)
	return err
}

// Batch is a checked batch of changes, canonical: what Store.ApplyBatch
// takes, so that a large batch is checked once.
type Batch struct {
	n       normalized
	creates int // how many of n.put came from Create
}

// Prepare checks c against the filter f (nil: any name) and returns it
// canonical. Errors wrap ErrInvalid and name the offending endpoint.
func (c Changes) Prepare(f *Filter) (Batch, error) {
	n, err := c.normalize(f)
	if err != nil {
		return Batch{}, err
	}
	return Batch{n: n, creates: len(c.Create)}, nil
}

// Puts returns the canonical endpoints the batch creates or updates, in
// the order of Create then UpdateNew; for a caller that checks them
// further (can they be served?). Where says which list and index one
// came from.
func (b Batch) Puts() []Endpoint { return b.n.put }

// Where names the list and index the i-th of Puts came from.
func (b Batch) Where(i int) string {
	if i < b.creates {
		return fmt.Sprintf("create[%d]", i)
	}
	return fmt.Sprintf("updateNew[%d]", i-b.creates)
}

func (c Changes) normalize(f *Filter) (normalized, error) {
	var n normalized
	inFilter := func(list string, i int, name string) error {
		if f != nil && !f.Match(name) {
			return invalid("%s[%d]: name %s is outside the domain filter %v", list, i, name, f.Include)
		}
		return nil
	}
	for _, l := range []struct {
		name string
		eps  []Endpoint
	}{{"delete", c.Delete}, {"updateOld", c.UpdateOld}} {
		for i, e := range l.eps {
			k, err := normalizeKey(e)
			if err != nil {
				return normalized{}, fmt.Errorf("%s[%d]: %w", l.name, i, err)
			}
			if err := inFilter(l.name, i, k.Name); err != nil {
				return normalized{}, err
			}
			n.remove = append(n.remove, k)
		}
	}
	seen := make(map[Key]int, len(c.Create)+len(c.UpdateNew))
	for _, l := range []struct {
		name string
		eps  []Endpoint
	}{{"create", c.Create}, {"updateNew", c.UpdateNew}} {
		for i, e := range l.eps {
			ce, err := Normalize(e)
			if err != nil {
				return normalized{}, fmt.Errorf("%s[%d]: %w", l.name, i, err)
			}
			if err := inFilter(l.name, i, ce.DNSName); err != nil {
				return normalized{}, err
			}
			if prev, dup := seen[ce.Key()]; dup {
				list, j := "create", prev
				if prev >= len(c.Create) {
					list, j = "updateNew", prev-len(c.Create)
				}
				return normalized{}, invalid("%s[%d]: %s is also in %s[%d]", l.name, i, ce.Key(), list, j)
			}
			idx := i
			if l.name == "updateNew" {
				idx += len(c.Create)
			}
			seen[ce.Key()] = idx
			n.put = append(n.put, ce)
		}
	}
	return n, nil
}

// ApplyChanges returns the endpoints of an owner after c, without storing
// anything: the pure part of Store.Apply, for tests and tools.
func ApplyChanges(cur []Endpoint, c Changes) ([]Endpoint, error) {
	n, err := c.normalize(nil)
	if err != nil {
		return nil, err
	}
	byKey := make(map[Key]Endpoint, len(cur)+len(n.put))
	for _, e := range cur {
		byKey[e.Key()] = e
	}
	for _, k := range n.remove {
		delete(byKey, k)
	}
	for _, e := range n.put {
		byKey[e.Key()] = e
	}
	out := make([]Endpoint, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return compareKeys(a.Key(), b.Key()) })
	return out, nil
}
