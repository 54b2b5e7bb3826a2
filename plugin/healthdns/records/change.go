package records

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// Change is one change to an owner's records as it is stored and
// replicated: the state it applies to (From), the state it makes (To),
// the endpoints it puts (new or replaced) and the keys it removes. It
// costs what it changes, whatever the owner holds.
//
// Changes chain: a replica applies a change only onto the state it was
// made from, so applying one twice, out of order or onto another writer's
// state is refused rather than mixed in. A replica that missed changes
// gets them from a peer's bounded log of recent changes (Store.Since), or,
// when it is further behind than that log, the owner's records whole (a
// Set). So a removal needs no tombstone kept until every peer has seen it:
// it lives in the log for a while, and a peer too far behind to learn it
// from there gets the whole state, which simply lacks the record.
type Change struct {
	Owner  string
	From   Head
	To     Head
	Put    []Endpoint // canonical, sorted by key, one per key
	Remove []Key      // sorted, none of them in Put

	// checked: Decoder.Change checked that Put is canonical, so Merge
	// need not normalize every endpoint again (half the garbage of
	// storing a replicated change).
	checked bool
}

// Len is the number of records the change touches.
func (c Change) Len() int { return len(c.Put) + len(c.Remove) }

// Size bounds the bytes of the change's encodings.
func (c Change) Size() int {
	n := 64 + len(c.Owner)
	for _, e := range c.Put {
		n += e.size()
	}
	for _, k := range c.Remove {
		n += 24 + len(k.Name) + len(k.Type) + len(k.SetIdentifier)
	}
	return n
}

// validate checks what can be checked of a change on its own: a valid
// owner, canonical endpoints (unless the caller checked them), keys in
// order, To after From. Errors wrap ErrInvalid.
func (c Change) validate(endpointsChecked bool) error {
	if err := CheckOwner(c.Owner); err != nil {
		return err
	}
	if !c.To.After(c.From) || c.To.Version.IsZero() {
		return invalid("owner %s: a change from %s to %s", c.Owner, c.From, c.To)
	}
	if len(c.Put)+len(c.Remove) > MaxEndpoints {
		return invalid("owner %s: a change of %d records, more than %d", c.Owner, len(c.Put)+len(c.Remove), MaxEndpoints)
	}
	if !endpointsChecked {
		if err := checkCanonical(c.Owner, c.Put); err != nil {
			return err
		}
	} else {
		for i := 1; i < len(c.Put); i++ {
			if compareKeys(c.Put[i-1].Key(), c.Put[i].Key()) >= 0 {
				return invalid("owner %s: endpoints out of order or repeated at %s", c.Owner, c.Put[i].Key())
			}
		}
	}
	for i, k := range c.Remove {
		nk, err := normalizeKey(Endpoint{DNSName: k.Name, RecordType: k.Type, SetIdentifier: k.SetIdentifier})
		if err != nil {
			return err
		}
		if nk != k {
			return invalid("owner %s: removed key %s is not in canonical form", c.Owner, k)
		}
		if i > 0 && compareKeys(c.Remove[i-1], k) >= 0 {
			return invalid("owner %s: removed keys out of order or repeated at %s", c.Owner, k)
		}
		if _, put := slices.BinarySearchFunc(c.Put, k, func(e Endpoint, k Key) int { return compareKeys(e.Key(), k) }); put {
			return invalid("owner %s: %s both put and removed", c.Owner, k)
		}
	}
	return nil
}

// Digest is the digest of a state holding eps: the sum of a hash of each
// endpoint, so that a change updates it in O(change) (subtract what goes,
// add what comes) and two replicas with the same records have the same
// digest whatever path brought them there.
func Digest(eps []Endpoint) uint64 {
	var d uint64
	var buf []byte
	for _, e := range eps {
		var h uint64
		h, buf = hashEndpoint(e, buf)
		d += h
	}
	return d
}

// hashEndpoint hashes e's canonical encoding; buf is scratch space.
func hashEndpoint(e Endpoint, buf []byte) (uint64, []byte) {
	buf = AppendEndpoint(buf[:0], e)
	return hashEncoded(buf), buf
}

// hashEncoded hashes an endpoint's encoding.
func hashEncoded(enc []byte) uint64 {
	sum := sha256.Sum256(enc)
	return binary.BigEndian.Uint64(sum[:8])
}
