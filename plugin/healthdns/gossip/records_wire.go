package gossip

import (
	"errors"
	"fmt"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// Wire format of owners' records (package records), kept apart from
// observations: they have other writers (the owners, through the
// webhook), other rates (an ExternalDNS sync, not a probe round) and other
// sizes. Changes, heads and endpoints are in records' binary encoding
// (records/codec.go); the rest in the notation of wire.go:
//
//	record change (12): gossip: one change
//	states         (6): push/pull on join only: n uv, n × part (uv length,
//	                    bytes); the parts are a whole state (4), then record
//	                    heads (11) (or record parts (14)), each with its own
//	                    header
//	record heads  (11): direct, or in states: sender str, flags byte (1 =
//	                    the sender replicates every owner), n uv, n ×
//	                    (owner str, head): "send me what I lack"
//	record delta  (13): direct: sender str, n uv, n × change, in order
//	record part   (14): direct: sender str, owner str, head, part uv,
//	                    parts uv, n uv, n × endpoint: one part of an
//	                    owner's records whole, in key order
//
// A writer sends its changes directly to every server, those made since
// the last it sent each together, and gossips a few small ones too (every
// node that learns one relays it), to reach a server it cannot. A node
// that lacks changes (heads in a push/pull digest or a record heads
// message show it) is sent them from the bounded log of recent changes,
// or, if it is further behind, the owner's records whole, in parts. The
// digest (wire.go) carries the heads of the owners a node replicates.
const (
	msgStates      byte = 6
	msgRecordHeads byte = 11
	msgRecordChg   byte = 12
	msgRecordDelta byte = 13
	msgRecordPart  byte = 14

	// maxRecordDirect bounds a record delta or part message.
	maxRecordDirect = 4 << 20
	// maxRecordParts bounds the parts of one owner's records.
	maxRecordParts = records.MaxSetSize/maxRecordDirect*2 + 2

	minOwnerHead = 2 + 1 + 1 + 8
	// maxStateParts bounds the parts of a states envelope: the state,
	// record heads, and (from older versions of this code) owners'
	// records whole.
	maxStateParts = 1024
)

// recordChange is a gossiped change, as decodeMessage returns it.
type recordChange struct{ records.Change }

func appendDigest(b []byte, d uint64) []byte { return appendID(b, TargetID(d)) }

// recordHeads asks for what the sender lacks.
type recordHeads struct {
	Sender string
	All    bool // the sender replicates every owner, not only those listed
	Heads  []records.OwnerHead
}

// recordDelta is a run of changes, in the order they apply.
type recordDelta struct {
	Sender  string
	Changes []records.Change
}

// recordPart is one part of an owner's records whole.
type recordPart struct {
	Sender    string
	Owner     string
	Head      records.Head
	Part      int
	Parts     int
	Endpoints []records.Endpoint
}

func (m *recordHeads) encode() []byte {
	b := appendHeader(nil, msgRecordHeads)
	b = appendString(b, m.Sender)
	var flags byte
	if m.All {
		flags |= 1
	}
	b = append(b, flags)
	b = appendUvarint(b, uint64(len(m.Heads)))
	for _, h := range m.Heads {
		b = appendString(b, h.Owner)
		b = records.AppendHead(b, h.Head)
	}
	return b
}

func encodeRecordChange(c records.Change) []byte {
	return records.AppendChange(appendHeader(make([]byte, 0, 64+c.Size()), msgRecordChg), c)
}

// encodeRecordDeltas encodes changes in as many delta messages as
// maxRecordDirect needs; a change larger than that goes alone.
func encodeRecordDeltas(sender string, cs []records.Change) [][]byte {
	var out [][]byte
	encode := func(run []records.Change) {
		b := appendHeader(nil, msgRecordDelta)
		b = appendString(b, sender)
		b = appendUvarint(b, uint64(len(run)))
		for _, c := range run {
			b = records.AppendChange(b, c)
		}
		out = append(out, b)
	}
	start, size := 0, 0
	for i, c := range cs {
		if i > start && size+c.Size() > maxRecordDirect {
			encode(cs[start:i])
			start, size = i, 0
		}
		size += c.Size()
	}
	if start < len(cs) {
		encode(cs[start:])
	}
	return out
}

// encodeRecordParts encodes an owner's records whole in parts of at most
// maxRecordDirect bytes.
func encodeRecordParts(sender string, s records.Set) [][]byte {
	var bodies [][]byte
	var counts []int
	var cur []byte
	k := 0
	for _, e := range s.Endpoints {
		if k > 0 && len(cur) > maxRecordDirect-4096 {
			bodies, counts = append(bodies, cur), append(counts, k)
			cur, k = nil, 0
		}
		cur = records.AppendEndpoint(cur, e)
		k++
	}
	bodies, counts = append(bodies, cur), append(counts, k)
	out := make([][]byte, 0, len(bodies))
	for i, body := range bodies {
		b := appendHeader(make([]byte, 0, len(body)+128), msgRecordPart)
		b = appendString(b, sender)
		b = appendString(b, s.Owner)
		b = records.AppendHead(b, s.Head)
		b = appendUvarint(b, uint64(i))
		b = appendUvarint(b, uint64(len(bodies)))
		b = appendUvarint(b, uint64(counts[i]))
		out = append(out, append(b, body...))
	}
	return out
}

// encodeStates wraps push/pull parts in the states envelope.
func encodeStates(parts ...[]byte) []byte {
	b := appendHeader(nil, msgStates)
	b = appendUvarint(b, uint64(len(parts)))
	for _, p := range parts {
		b = appendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// Decoding.

func (d *decoder) owner() string {
	s := d.string(records.MaxOwnerLen, "owner length")
	if d.err == nil {
		if err := records.CheckOwner(s); err != nil {
			d.fail(err)
		}
	}
	return s
}

// version reads a version; zero is allowed (a digest's owner that a node
// wants and does not have yet).
func (d *decoder) version() records.Version {
	return records.Version{Epoch: d.uvarint(), Seq: d.uvarint()}
}

func (d *decoder) digest() uint64 { return uint64(d.id()) }

// records hands the rest of the input to a records decoder and takes
// back what it did not read.
func (d *decoder) records(read func(*records.Decoder)) {
	if d.err != nil {
		return
	}
	rd := records.NewDecoder(d.b)
	read(rd)
	if err := rd.Err(); err != nil {
		d.fail(err)
		return
	}
	d.b = d.b[rd.Offset():]
}

func (d *decoder) head() records.Head {
	return records.Head{Version: d.version(), Digest: d.digest()}
}

func decodeRecordChange(d *decoder) (*recordChange, error) {
	c := &recordChange{}
	d.records(func(rd *records.Decoder) { c.Change = rd.Change() })
	return c, d.finish()
}

func decodeRecordHeads(d *decoder) (*recordHeads, error) {
	m := &recordHeads{Sender: d.node()}
	flags := d.byte()
	if d.err == nil && flags&^1 != 0 {
		d.fail(fmt.Errorf("bad record heads flags %#x", flags))
	}
	m.All = flags&1 != 0
	n := d.count(minOwnerHead, "owners")
	seen := map[string]bool{}
	for i := 0; i < n && d.err == nil; i++ {
		h := records.OwnerHead{Owner: d.owner(), Head: d.head()}
		if seen[h.Owner] && d.err == nil {
			d.fail(fmt.Errorf("owner %s twice", h.Owner))
		}
		seen[h.Owner] = true
		m.Heads = append(m.Heads, h)
	}
	return m, d.finish()
}

func decodeRecordDelta(d *decoder) (*recordDelta, error) {
	m := &recordDelta{Sender: d.node()}
	n := d.count(minOwnerHead, "changes")
	for i := 0; i < n && d.err == nil; i++ {
		d.records(func(rd *records.Decoder) { m.Changes = append(m.Changes, rd.Change()) })
	}
	if d.err == nil && n == 0 {
		d.fail(errors.New("a delta of no change"))
	}
	return m, d.finish()
}

func decodeRecordPart(d *decoder) (*recordPart, error) {
	m := &recordPart{Sender: d.node(), Owner: d.owner(), Head: d.head()}
	m.Part = int(d.bounded(maxRecordParts-1, "part"))
	m.Parts = int(d.bounded(maxRecordParts, "parts"))
	if d.err == nil && m.Part >= m.Parts {
		d.fail(fmt.Errorf("part %d of %d", m.Part, m.Parts))
	}
	n := d.count(8, "endpoints")
	if n > records.MaxEndpoints {
		d.fail(fmt.Errorf("%d endpoints, more than %d", n, records.MaxEndpoints))
	}
	if d.err == nil && n > 0 {
		m.Endpoints = make([]records.Endpoint, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		d.records(func(rd *records.Decoder) { m.Endpoints = append(m.Endpoints, rd.Endpoint()) })
	}
	return m, d.finish()
}

// decodeStates splits a states envelope into its parts.
func decodeStates(b []byte) ([][]byte, error) {
	if len(b) > maxState {
		return nil, errTooLarge
	}
	typ, d, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	if typ != msgStates {
		return nil, fmt.Errorf("states of type %d, want %d", typ, msgStates)
	}
	n := int(d.bounded(maxStateParts, "parts"))
	var parts [][]byte
	for i := 0; i < n && d.err == nil; i++ {
		p := d.bytes(maxState, "part length")
		if d.err == nil && (len(p) < 2 || (p[0] != msgState && p[0] != msgRecordHeads && p[0] != msgRecordPart) || (p[0] == msgState) != (i == 0)) {
			d.fail(errors.New("a states part that is not a state first, then record heads and parts"))
		}
		parts = append(parts, p)
	}
	return parts, d.finish()
}
