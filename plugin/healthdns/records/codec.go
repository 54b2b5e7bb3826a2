package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// The binary encoding of endpoints and changes, shared by the data
// directory and gossip so that both cost the same few bytes a record. In
// it, uv is an unsigned varint, str a uv length and the bytes, dg a fixed
// 8-byte big-endian digest:
//
//	endpoint: name str, type byte (1 A, 2 AAAA, 3 CNAME, 4 TXT), set
//	          identifier str, ttl uv, n uv, n × target str, n uv, n ×
//	          (label key str, value str) in key order, n uv, n × (property
//	          name str, value str)
//	head:     epoch uv, seq uv, digest dg
//	change:   owner str, from head, to head, n uv, n × endpoint (put), n uv,
//	          n × key (removed)
//	key:      name str, type byte, set identifier str
//
// Decoding checks bounds and canonical form, never panics, and copies
// what it keeps out of the input.

var recordTypes = []string{"", TypeA, TypeAAAA, TypeCNAME, TypeTXT}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendEndpoint appends the encoding of a canonical endpoint.
func AppendEndpoint(b []byte, e Endpoint) []byte {
	b = appendString(b, e.DNSName)
	b = append(b, byte(slices.Index(recordTypes, e.RecordType)))
	b = appendString(b, e.SetIdentifier)
	b = appendUvarint(b, uint64(e.RecordTTL))
	b = appendUvarint(b, uint64(len(e.Targets)))
	for _, t := range e.Targets {
		b = appendString(b, t)
	}
	b = appendUvarint(b, uint64(len(e.Labels)))
	if len(e.Labels) > 0 {
		keys := make([]string, 0, len(e.Labels))
		for k := range e.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, e.Labels[k])
		}
	}
	b = appendUvarint(b, uint64(len(e.ProviderSpecific)))
	for _, p := range e.ProviderSpecific {
		b = appendString(b, p.Name)
		b = appendString(b, p.Value)
	}
	return b
}

// AppendHead appends the encoding of a head.
func AppendHead(b []byte, h Head) []byte {
	b = appendUvarint(b, h.Version.Epoch)
	b = appendUvarint(b, h.Version.Seq)
	return binary.BigEndian.AppendUint64(b, h.Digest)
}

func appendKey(b []byte, k Key) []byte {
	b = appendString(b, k.Name)
	b = append(b, byte(slices.Index(recordTypes, k.Type)))
	return appendString(b, k.SetIdentifier)
}

// AppendChange appends the encoding of a change.
func AppendChange(b []byte, c Change) []byte {
	b = appendString(b, c.Owner)
	b = AppendHead(b, c.From)
	b = AppendHead(b, c.To)
	b = appendUvarint(b, uint64(len(c.Put)))
	for _, e := range c.Put {
		b = AppendEndpoint(b, e)
	}
	b = appendUvarint(b, uint64(len(c.Remove)))
	for _, k := range c.Remove {
		b = appendKey(b, k)
	}
	return b
}

// Smallest encodings, to bound counts by the bytes left.
const (
	minEndpoint = 8 // name, type, set id, ttl and four counts, one byte each
	minKey      = 3
)

// errTruncated is what a decoder meets at the end of its input.
var errTruncated = errors.New("truncated")

// Decoder reads the binary encoding. The first error sticks: later reads
// return zero values, and Err reports it.
type Decoder struct {
	b   []byte
	off int
	err error
	// share makes strings share b's bytes instead of copying them: for
	// a store's own encodings only, which are never written again.
	share bool
	// noLabels leaves endpoints' labels out, for readers that never
	// look at them (the answers): a map an endpoint less.
	noLabels bool
}

// NewDecoder reads b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err is the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Offset is how many bytes have been read.
func (d *Decoder) Offset() int { return d.off }

// Len is how many bytes are left.
func (d *Decoder) Len() int { return len(d.b) - d.off }

func (d *Decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.off += n
	return v
}

// Bounded reads an unsigned varint of at most max.
func (d *Decoder) Bounded(max uint64, what string) uint64 {
	v := d.Uvarint()
	if d.err == nil && v > max {
		d.fail(fmt.Errorf("%s %d over the limit %d", what, v, max))
		return 0
	}
	return v
}

// Count reads a count of items that take at least min bytes each: it
// cannot be more than the bytes left allow.
func (d *Decoder) Count(min int, what string) int {
	return int(d.Bounded(uint64(d.Len()/max(min, 1)), what))
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(errTruncated)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// Uint64 reads 8 bytes, big endian.
func (d *Decoder) Uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if d.Len() < 8 {
		d.fail(errTruncated)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// Bytes reads a length and that many bytes, at most max; the result
// shares the input.
func (d *Decoder) Bytes(max int, what string) []byte {
	n := int(d.Bounded(uint64(max), what))
	if d.err != nil {
		return nil
	}
	if d.Len() < n {
		d.fail(errTruncated)
		return nil
	}
	b := d.b[d.off : d.off+n]
	d.off += n
	return b
}

// String reads a string of at most max bytes.
func (d *Decoder) String(max int, what string) string {
	b := d.Bytes(max, what)
	if d.share {
		return shared(b)
	}
	return string(b)
}

// Owner reads and checks an owner name.
func (d *Decoder) Owner() string {
	s := d.String(MaxOwnerLen, "owner length")
	if d.err == nil {
		if err := CheckOwner(s); err != nil {
			d.fail(err)
		}
	}
	return s
}

// Head reads a head.
func (d *Decoder) Head() Head {
	return Head{Version: Version{Epoch: d.Uvarint(), Seq: d.Uvarint()}, Digest: d.Uint64()}
}

func (d *Decoder) recordType() string {
	t := d.Byte()
	if d.err == nil && (t == 0 || int(t) >= len(recordTypes)) {
		d.fail(fmt.Errorf("bad record type %d", t))
		return ""
	}
	return recordTypes[t]
}

// Endpoint reads an endpoint and checks that it is canonical.
func (d *Decoder) Endpoint() Endpoint { return d.endpoint(true) }

// endpoint reads an endpoint; check says whether to check that it is
// canonical (input from outside) or not (the store's own).
func (d *Decoder) endpoint(check bool) Endpoint {
	var e Endpoint
	e.DNSName = d.String(MaxNameLen, "name length")
	e.RecordType = d.recordType()
	e.SetIdentifier = d.String(MaxSetIDLen, "set identifier length")
	e.RecordTTL = int64(d.Bounded(MaxTTL, "ttl"))
	k := int(d.Bounded(MaxTargets, "targets"))
	if k > 0 && d.err == nil {
		e.Targets = make([]string, 0, min(k, d.Len()))
	}
	for j := 0; j < k && d.err == nil; j++ {
		e.Targets = append(e.Targets, d.String(MaxTXTLen, "target length"))
	}
	k = int(d.Bounded(MaxLabels, "labels"))
	for j := 0; j < k && d.err == nil && d.noLabels; j++ {
		d.Bytes(MaxLabelKeyLen, "label key length")
		d.Bytes(MaxLabelValLen, "label length")
	}
	for j := 0; j < k && d.err == nil && !d.noLabels; j++ {
		if e.Labels == nil {
			e.Labels = make(map[string]string, k)
		}
		key := internLabelKey(d.Bytes(MaxLabelKeyLen, "label key length"))
		if _, dup := e.Labels[key]; dup && d.err == nil {
			d.fail(fmt.Errorf("label %q twice", key))
		}
		e.Labels[key] = d.String(MaxLabelValLen, "label length")
	}
	k = int(d.Bounded(MaxProperties, "properties"))
	for j := 0; j < k && d.err == nil; j++ {
		name := internProperty(d.Bytes(MaxPropNameLen, "property name length"))
		e.ProviderSpecific = append(e.ProviderSpecific, Property{Name: name, Value: d.String(MaxPropValLen, "property length")})
	}
	if d.err != nil {
		return Endpoint{}
	}
	if !check {
		return e
	}
	c, err := Normalize(e)
	if err != nil {
		d.fail(err)
		return Endpoint{}
	}
	if !c.equal(e) {
		d.fail(invalid("endpoint %s is not in canonical form", e.Key()))
		return Endpoint{}
	}
	return e
}

func (d *Decoder) key() Key {
	k := Key{Name: d.String(MaxNameLen, "name length"), Type: d.recordType(), SetIdentifier: d.String(MaxSetIDLen, "set identifier length")}
	return k
}

// Change reads a change and checks it (see Change.validate); whether it
// applies is the Store's to say.
func (d *Decoder) Change() Change {
	c := Change{Owner: d.Owner(), From: d.Head(), To: d.Head()}
	n := d.Count(minEndpoint, "endpoints")
	if n > 0 && d.err == nil {
		c.Put = make([]Endpoint, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		c.Put = append(c.Put, d.endpoint(true))
	}
	n = d.Count(minKey, "removed keys")
	for i := 0; i < n && d.err == nil; i++ {
		c.Remove = append(c.Remove, d.key())
	}
	if d.err != nil {
		return Change{}
	}
	if err := c.validate(true); err != nil {
		d.fail(err)
		return Change{}
	}
	c.checked = true
	return c
}

// internLabelKey and internProperty share the strings that nearly every
// endpoint repeats, instead of one copy per endpoint.
func internLabelKey(b []byte) string {
	switch string(b) {
	case "owner":
		return "owner"
	case "resource":
		return "resource"
	case "ownedRecord":
		return "ownedRecord"
	}
	return string(b)
}

func internProperty(b []byte) string {
	switch string(b) {
	case PropWeight:
		return PropWeight
	case PropTier:
		return PropTier
	case PropCheck:
		return PropCheck
	case PropPolicy:
		return PropPolicy
	}
	return string(b)
}
