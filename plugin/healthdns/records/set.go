package records

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
)

// Version orders the Sets of one owner: a higher epoch is a later
// incarnation of a writer, and seq counts changes within it.
type Version struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Less reports whether v comes before o.
func (v Version) Less(o Version) bool {
	return v.Epoch < o.Epoch || (v.Epoch == o.Epoch && v.Seq < o.Seq)
}

// IsZero reports whether v is the version of a Set never written.
func (v Version) IsZero() bool { return v == Version{} }

func (v Version) String() string {
	return strconv.FormatUint(v.Epoch, 10) + "." + strconv.FormatUint(v.Seq, 10)
}

// Set is all the records of one owner at one version: the unit of
// storage and of replication.
//
// Whole-Set versions are what make deletes safe without per-record
// tombstones: a Set replaces the one before it entirely, so a record
// deleted by a change is absent from every Set that follows, and any copy
// that still holds it is older and loses everywhere ("highest version
// wins"). The newer Set is itself the tombstone; it is kept as long as the
// owner is known, which is for ever (an owner's cluster that is gone keeps
// its records served), so it never expires before a peer has seen it. An
// owner that deletes all its records leaves an empty Set at a higher
// version, a few bytes.
//
// Sets are small (an ExternalDNS cluster publishes tens to hundreds of
// records) and change rarely (once per ExternalDNS sync at most), so
// sending the whole Set on a change costs little and keeps merging a
// comparison of two versions.
type Set struct {
	Owner   string  `json:"owner"`
	Version Version `json:"version"`
	// Endpoints are canonical, sorted by key, one per key. Shared: never
	// modify them.
	Endpoints []Endpoint `json:"endpoints"`
}

// Limits on a Set, so that it can be stored, gossiped and served.
const (
	MaxEndpoints = 10000   // endpoints in one owner's Set
	MaxSetSize   = 1 << 20 // bytes of a Set, as Size counts them
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
	n := 32 + len(s.Owner)
	for _, e := range s.Endpoints {
		n += e.size()
	}
	return n
}

// Validate checks that s is a Set as a Store or a peer may hold it: a
// valid owner, canonical endpoints in key order, one per key, within the
// limits. Errors wrap ErrInvalid.
func (s Set) Validate() error {
	if err := CheckOwner(s.Owner); err != nil {
		return err
	}
	if len(s.Endpoints) > MaxEndpoints {
		return invalid("owner %s: %d endpoints, more than %d", s.Owner, len(s.Endpoints), MaxEndpoints)
	}
	for i, e := range s.Endpoints {
		c, err := Normalize(e)
		if err != nil {
			return err
		}
		if !c.equal(e) {
			return invalid("owner %s: endpoint %s is not in canonical form", s.Owner, e.Key())
		}
		if i > 0 && compareKeys(s.Endpoints[i-1].Key(), e.Key()) >= 0 {
			return invalid("owner %s: endpoints out of order or repeated at %s", s.Owner, e.Key())
		}
	}
	if n := s.Size(); n > MaxSetSize {
		return invalid("owner %s: %d bytes of records, more than %d", s.Owner, n, MaxSetSize)
	}
	return nil
}

// Digest is a hash of the Set's content (owner and endpoints, not the
// version). Two Sets with the same version and different content can
// only come from two writers of one owner at once (a misconfiguration, or
// a rolling restart); the higher digest wins, so every node still picks
// the same one.
func (s Set) Digest() uint64 {
	h := sha256.New()
	var b []byte
	str := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	str(s.Owner)
	for _, e := range s.Endpoints {
		str(e.DNSName)
		str(e.RecordType)
		str(e.SetIdentifier)
		b = binary.AppendUvarint(b, uint64(e.RecordTTL))
		b = binary.AppendUvarint(b, uint64(len(e.Targets)))
		for _, t := range e.Targets {
			str(t)
		}
		keys := make([]string, 0, len(e.Labels))
		for k := range e.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			str(k)
			str(e.Labels[k])
		}
		b = binary.AppendUvarint(b, uint64(len(e.ProviderSpecific)))
		for _, p := range e.ProviderSpecific {
			str(p.Name)
			str(p.Value)
		}
		if len(b) > 4096 {
			h.Write(b)
			b = b[:0]
		}
	}
	h.Write(b)
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// Supersedes reports whether s replaces o (of the same owner): a higher
// version, or the same version and a higher digest.
func (s Set) Supersedes(o Set) bool {
	if s.Version != o.Version {
		return o.Version.Less(s.Version)
	}
	return !s.Version.IsZero() && s.Digest() > o.Digest()
}

// Lookup returns the endpoint with key k.
func (s Set) Lookup(k Key) (Endpoint, bool) {
	i, ok := slices.BinarySearchFunc(s.Endpoints, k, func(e Endpoint, k Key) int { return compareKeys(e.Key(), k) })
	if !ok {
		return Endpoint{}, false
	}
	return s.Endpoints[i], true
}

func (s Set) sameContent(o Set) bool {
	return s.Owner == o.Owner && slices.EqualFunc(s.Endpoints, o.Endpoints, Endpoint.equal)
}

// Changes is one batch of changes to an owner's Set, as ExternalDNS sends
// them (plan.Changes; same JSON). Applying it removes the records of
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
	seen := map[Key]string{}
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
			where := fmt.Sprintf("%s[%d]", l.name, i)
			if prev, dup := seen[ce.Key()]; dup {
				return normalized{}, invalid("%s: %s is also in %s", where, ce.Key(), prev)
			}
			seen[ce.Key()] = where
			n.put = append(n.put, ce)
		}
	}
	return n, nil
}

// apply returns the endpoints of cur with n applied, sorted by key.
func (n normalized) apply(cur []Endpoint) []Endpoint {
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
	return out
}

// ApplyChanges returns the endpoints of a Set after c, without storing
// anything: the pure part of Store.Apply.
func ApplyChanges(cur []Endpoint, c Changes) ([]Endpoint, error) {
	n, err := c.normalize(nil)
	if err != nil {
		return nil, err
	}
	return n.apply(cur), nil
}
