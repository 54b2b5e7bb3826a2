package gossip

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// Wire format. Every message is a type byte, a wire version byte and a body
// of unsigned varints (uv), fixed 8-byte big-endian target IDs (id), single
// bytes, and strings (uv length, then bytes). Ages are milliseconds by the
// sender's clock, max uint32 for never.
//
// Gossip messages, at most maxBroadcast bytes so they fit one UDP packet
// with memberlist's framing, label and encryption; relayed by every node
// that learns them:
//
//	observations (1): node str, epoch uv, seq uv, n uv, n × (id, state byte)
//	heartbeat    (2): node str, label str, role byte, epoch uv, beat uv,
//	                  obs seq uv, obs age uv (the age of the node's latest
//	                  observation round), catalog epoch uv, catalog seq uv,
//	                  heartbeat interval ms uv, flags byte (1 = leaving,
//	                  2 = an edge client, carried by a server)
//	catalog page (3): node str, epoch uv, seq uv, page uv, pages uv,
//	                  n uv, n × target
//
// Direct messages, sent to one member over memberlist's reliable stream
// (SendReliable) and never relayed, at most maxDirect bytes:
//
//	bulk         (8): an observations (1) body too large to gossip
//	digest      (10): also the push/pull state (join false): sender str,
//	                  n uv, n × summary, n uv, n × (owner str, epoch uv,
//	                  seq uv, digest 8 bytes) heads of owners' records
//	state        (4): also the push/pull state on join (in a states (6)
//	                  envelope with record heads and parts): sender str,
//	                  n uv, n × target (the table: every target of the
//	                  state's catalogs once, in ID order), n uv, n × id
//	                  (IDs the views name that no catalog here has, in
//	                  order), n uv, n × peer
//	record state (7): records_wire.go
//
//	target:  addr (uv length + netip.Addr binary), n uv, n × check str,
//	         interval ns uv, timeout ns uv, rise uv, fall uv; its ID is
//	         not sent but computed (IDOf), which also checks it
//	info:    node str, label str, role byte (0 = not heard yet), epoch uv,
//	         beat uv, age uv (since the sender last heard of the node),
//	         obs age uv (of the node's latest observation round), flags
//	         byte (1 = view, 2 = catalog, 4 = leaving, 8 = edge client)
//	summary: info, then if view: complete uv, latest-complete uv, pending
//	         count uv; then if catalog: epoch uv, seq uv
//	peer:    info, then if view: complete uv, latest-complete uv, n uv,
//	         n × row as of complete, n uv, n × (row, seq-complete uv) newer
//	         rows, n uv, n × (seq-complete uv) newer seqs applied; then if
//	         catalog: epoch uv, seq uv, n uv, n × gap
//	row:     uv (gap << 2 | state)
//	gap:     a target by its index in the state's table followed by its
//	         extra IDs, as the distance from the previous index of the
//	         list (the first from -1), so at least 1: a view of every
//	         target costs one byte a target
//
// Owners' records travel in messages of their own (6, 11-14), in records_wire.go.
// Edge connections' own messages are 20-22 (edge.go); operators' overrides
// 23-24 (overrides.go); why observers report targets down, reasons (25,
// reasons.go). Every type byte has one entry in kinds (kinds.go).
// Health states are 0 unknown, 1 up, 2 down. Roles are 1 server, 2 agent,
// 3 witness.
//
// Version 3 added the witness role and the heartbeat interval, and
// replaced whole record Sets by chained changes: a node of version 2
// cannot read them, so versions do not mix (every message of the other
// version is dropped and counted as garbled).
const (
	wireVersion byte = 3

	msgObservations byte = 1
	msgHeartbeat    byte = 2
	msgCatalogPage  byte = 3
	msgState        byte = 4
	msgBulk         byte = 8
	msgDigest       byte = 10

	// maxBroadcast bounds every gossip message we send. memberlist's UDP
	// buffer is 1,400 bytes; a label of up to 255 bytes, encryption and
	// compound framing take the rest.
	maxBroadcast = 1024
	// maxInbound bounds the gossip messages NotifyMsg accepts; anything
	// larger is not ours.
	maxInbound = 1400
	// maxState bounds a push/pull state; memberlist caps it at 20 MiB.
	maxState = 16 << 20
	// maxDirect bounds a direct message; memberlist caps them at 20 MiB.
	maxDirect = maxState

	maxNameLen  = 128
	maxLabelLen = 64
	maxPages    = 4096
	maxPending  = 1024
	ageNever    = math.MaxUint32
	maxEveryMS  = uint64(time.Hour / time.Millisecond)
)

var (
	errTruncated = errors.New("truncated message")
	errTooLarge  = errors.New("message too large")
)

// pair is one (target, state) observation.
type pair struct {
	ID    TargetID
	State health.State
}

// seqRow is an observation newer than the complete part of a view.
type seqRow struct {
	ID    TargetID
	State health.State
	Seq   uint64
}

// observations is a change of an observer's view: by gossip (1), or
// direct (8) when Bulk.
type observations struct {
	Node  string
	Epoch uint64
	Seq   uint64
	Pairs []pair
	Bulk  bool
}

type heartbeat struct {
	Node     string
	Label    string
	Role     Role
	Epoch    uint64
	Beat     uint64
	ObsSeq   uint64
	ObsAgeMS uint64 // age of the latest observation round; ageNever for none
	CatEpoch uint64
	CatSeq   uint64
	// EveryMS is the node's heartbeat interval: how long a receiver may
	// hear nothing from it before it counts as silent.
	EveryMS uint64
	Leaving bool // the node announced it is leaving the cluster
	// Edge: the node is an edge client, no memberlist member: a server
	// carries its messages (edge_server.go), and it counts as alive
	// while it is heard.
	Edge bool
}

type catalogPage struct {
	Node    string
	Epoch   uint64
	Seq     uint64
	Page    int
	Pages   int
	Targets []CatalogTarget
}

type fullState struct {
	Sender string
	Peers  []peerState
}

// peerInfo is what a state or digest says of one node besides its data.
type peerInfo struct {
	Node  string
	Label string
	Role  Role
	Epoch uint64
	Beat  uint64
	// AgeMS is how long ago the sender last heard of the node.
	AgeMS uint64
	// ObsAgeMS is the age of the node's latest observation round, as far
	// as the sender knows.
	ObsAgeMS uint64
	// Leaving says the node announced it is leaving: memberlist does not
	// tell a node that left from one that died (memberlist#293).
	Leaving bool
	// Edge: the node is an edge client (see heartbeat.Edge).
	Edge bool
}

type peerState struct {
	peerInfo
	View *viewState
	Cat  *catState
}

type viewState struct {
	Complete uint64
	Latest   uint64
	Base     []pair
	Newer    []seqRow
	Pending  []uint64
}

type catState struct {
	Epoch   uint64
	Seq     uint64
	Targets []CatalogTarget
}

// digest says which versions of what the sender holds: the push/pull
// state after join, and a request for what the receiver has and the
// sender lacks (see state.lacks).
type digest struct {
	Sender string
	Peers  []peerSummary
	Sets   []setVersion
}

type peerSummary struct {
	peerInfo
	View *viewVersion
	Cat  *catVersion
}

type viewVersion struct {
	Complete uint64
	Latest   uint64
	Pending  uint64 // changes past Complete applied
}

type catVersion struct {
	Epoch, Seq uint64
}

type setVersion struct {
	Owner   string
	Version records.Version
	Digest  uint64
}

// Encoding.

func appendHeader(b []byte, typ byte) []byte { return append(b, typ, wireVersion) }

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendID(b []byte, id TargetID) []byte { return binary.BigEndian.AppendUint64(b, uint64(id)) }

func stateByte(s health.State) byte {
	switch s {
	case health.Up:
		return 1
	case health.Down:
		return 2
	}
	return 0
}

func appendState(b []byte, s health.State) []byte { return append(b, stateByte(s)) }

func appendTarget(b []byte, t CatalogTarget) []byte {
	addr, _ := t.Addr.MarshalBinary()
	b = appendUvarint(b, uint64(len(addr)))
	b = append(b, addr...)
	b = appendUvarint(b, uint64(len(t.Checks)))
	for _, c := range t.Checks {
		b = appendString(b, c)
	}
	b = appendUvarint(b, uint64(t.Interval))
	b = appendUvarint(b, uint64(t.Timeout))
	b = appendUvarint(b, uint64(t.Rise))
	return appendUvarint(b, uint64(t.Fall))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// ageMS turns the time since t into an age on the wire.
func ageMS(now, t time.Time) uint64 {
	if t.IsZero() {
		return ageNever
	}
	return uint64(min(max(now.Sub(t), 0).Milliseconds(), ageNever-1))
}

// since turns an age on the wire back into a local time; zero for never.
func since(now time.Time, ms uint64) time.Time {
	if ms >= ageNever {
		return time.Time{}
	}
	return now.Add(-time.Duration(ms) * time.Millisecond)
}

func (m *observations) encode() []byte {
	b := make([]byte, 0, 32+len(m.Node)+9*len(m.Pairs))
	typ := msgObservations
	if m.Bulk {
		typ = msgBulk
	}
	b = appendHeader(b, typ)
	b = appendString(b, m.Node)
	b = appendUvarint(b, m.Epoch)
	b = appendUvarint(b, m.Seq)
	b = appendUvarint(b, uint64(len(m.Pairs)))
	for _, p := range m.Pairs {
		b = appendID(b, p.ID)
		b = appendState(b, p.State)
	}
	return b
}

func (m *heartbeat) encode() []byte {
	b := make([]byte, 0, 64+len(m.Node)+len(m.Label))
	b = appendHeader(b, msgHeartbeat)
	b = appendString(b, m.Node)
	b = appendString(b, m.Label)
	b = append(b, byte(m.Role))
	b = appendUvarint(b, m.Epoch)
	b = appendUvarint(b, m.Beat)
	b = appendUvarint(b, m.ObsSeq)
	b = appendUvarint(b, m.ObsAgeMS)
	b = appendUvarint(b, m.CatEpoch)
	b = appendUvarint(b, m.CatSeq)
	b = appendUvarint(b, m.EveryMS)
	var f byte
	if m.Leaving {
		f |= 1
	}
	if m.Edge {
		f |= 2
	}
	return append(b, f)
}

func (m *catalogPage) encode() []byte {
	b := appendHeader(nil, msgCatalogPage)
	b = appendString(b, m.Node)
	b = appendUvarint(b, m.Epoch)
	b = appendUvarint(b, m.Seq)
	b = appendUvarint(b, uint64(m.Page))
	b = appendUvarint(b, uint64(m.Pages))
	b = appendUvarint(b, uint64(len(m.Targets)))
	for _, t := range m.Targets {
		b = appendTarget(b, t)
	}
	return b
}

func (p *peerInfo) append(b []byte, flags byte) []byte {
	b = appendString(b, p.Node)
	b = appendString(b, p.Label)
	b = append(b, byte(p.Role))
	b = appendUvarint(b, p.Epoch)
	b = appendUvarint(b, p.Beat)
	b = appendUvarint(b, p.AgeMS)
	b = appendUvarint(b, p.ObsAgeMS)
	if p.Leaving {
		flags |= 4
	}
	if p.Edge {
		flags |= 8
	}
	return append(b, flags)
}

// indexed is a row by its index in a state's table.
type indexed struct {
	idx   uint32
	state health.State
	seq   uint64
}

// encode writes the state. The catalogs' targets go once into a table,
// since every server usually publishes the same ones, and views and
// catalogs name targets by their index in it.
func (m *fullState) encode() []byte {
	table := map[TargetID]CatalogTarget{}
	type span struct {
		first *CatalogTarget
		n     int
	}
	var added []span // catalogs in the table: one that others share goes once
	for _, p := range m.Peers {
		if p.Cat != nil && len(p.Cat.Targets) > 0 {
			sp := span{&p.Cat.Targets[0], len(p.Cat.Targets)}
			if slices.Contains(added, sp) {
				continue
			}
			added = append(added, sp)
			for _, t := range p.Cat.Targets {
				table[t.ID] = t
			}
		}
	}
	var extra []TargetID
	for _, p := range m.Peers {
		if v := p.View; v != nil {
			for _, r := range v.Base {
				if _, ok := table[r.ID]; !ok {
					extra = append(extra, r.ID)
				}
			}
			for _, r := range v.Newer {
				if _, ok := table[r.ID]; !ok {
					extra = append(extra, r.ID)
				}
			}
		}
	}
	slices.Sort(extra)
	extra = slices.Compact(extra)
	order := make([]TargetID, 0, len(table))
	for id := range table {
		order = append(order, id)
	}
	slices.Sort(order)
	index := make(map[TargetID]uint32, len(order)+len(extra))
	for i, id := range order {
		index[id] = uint32(i)
	}
	for i, id := range extra {
		index[id] = uint32(len(order) + i)
	}

	b := appendHeader(make([]byte, 0, 64*len(order)+8*len(extra)+1024), msgState)
	b = appendString(b, m.Sender)
	b = appendUvarint(b, uint64(len(order)))
	for _, id := range order {
		b = appendTarget(b, table[id])
	}
	b = appendUvarint(b, uint64(len(extra)))
	for _, id := range extra {
		b = appendID(b, id)
	}
	b = appendUvarint(b, uint64(len(m.Peers)))
	var rows []indexed
	for _, p := range m.Peers {
		var flags byte
		if p.View != nil {
			flags |= 1
		}
		if p.Cat != nil {
			flags |= 2
		}
		b = p.peerInfo.append(b, flags)
		if v := p.View; v != nil {
			b = appendUvarint(b, v.Complete)
			b = appendUvarint(b, v.Latest-v.Complete)
			rows = rows[:0]
			for _, r := range v.Base {
				rows = append(rows, indexed{idx: index[r.ID], state: r.State})
			}
			b = appendRows(b, rows, false, 0)
			rows = rows[:0]
			for _, r := range v.Newer {
				rows = append(rows, indexed{idx: index[r.ID], state: r.State, seq: r.Seq})
			}
			b = appendRows(b, rows, true, v.Complete)
			b = appendUvarint(b, uint64(len(v.Pending)))
			for _, s := range v.Pending {
				b = appendUvarint(b, s-v.Complete)
			}
		}
		if c := p.Cat; c != nil {
			b = appendUvarint(b, c.Epoch)
			b = appendUvarint(b, c.Seq)
			idx := make([]uint32, 0, len(c.Targets))
			for _, t := range c.Targets {
				idx = append(idx, index[t.ID])
			}
			slices.Sort(idx)
			idx = slices.Compact(idx)
			b = appendUvarint(b, uint64(len(idx)))
			prev := int64(-1)
			for _, i := range idx {
				b = appendUvarint(b, uint64(int64(i)-prev))
				prev = int64(i)
			}
		}
	}
	return b
}

// appendRows writes rows in index order, each as its gap from the one
// before and its state, and its seq when withSeq.
func appendRows(b []byte, rows []indexed, withSeq bool, complete uint64) []byte {
	if !slices.IsSortedFunc(rows, func(a, b indexed) int { return cmp.Compare(a.idx, b.idx) }) { // rows in ID order usually are
		slices.SortFunc(rows, func(a, b indexed) int { return cmp.Compare(a.idx, b.idx) })
	}
	rows = slices.CompactFunc(rows, func(a, b indexed) bool { return a.idx == b.idx })
	b = appendUvarint(b, uint64(len(rows)))
	prev := int64(-1)
	for _, r := range rows {
		b = appendUvarint(b, uint64(int64(r.idx)-prev)<<2|uint64(stateByte(r.state)))
		prev = int64(r.idx)
		if withSeq {
			b = appendUvarint(b, r.seq-complete)
		}
	}
	return b
}

func (m *digest) encode() []byte {
	b := appendHeader(make([]byte, 0, 64*len(m.Peers)+48*len(m.Sets)+64), msgDigest)
	b = appendString(b, m.Sender)
	b = appendUvarint(b, uint64(len(m.Peers)))
	for _, p := range m.Peers {
		var flags byte
		if p.View != nil {
			flags |= 1
		}
		if p.Cat != nil {
			flags |= 2
		}
		b = p.peerInfo.append(b, flags)
		if v := p.View; v != nil {
			b = appendUvarint(b, v.Complete)
			b = appendUvarint(b, v.Latest-v.Complete)
			b = appendUvarint(b, v.Pending)
		}
		if c := p.Cat; c != nil {
			b = appendUvarint(b, c.Epoch)
			b = appendUvarint(b, c.Seq)
		}
	}
	b = appendUvarint(b, uint64(len(m.Sets)))
	for _, s := range m.Sets {
		b = appendString(b, s.Owner)
		b = appendUvarint(b, s.Version.Epoch)
		b = appendUvarint(b, s.Version.Seq)
		b = appendDigest(b, s.Digest)
	}
	return b
}

// Decoding. A decoder never panics and never allocates more than the input
// can justify: every count is checked against the bytes left.

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bounded reads a uvarint that must be at most max.
func (d *decoder) bounded(max uint64, what string) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail(fmt.Errorf("%s %d over the limit %d", what, v, max))
		return 0
	}
	return v
}

// count reads a count of items that take at least min bytes each.
func (d *decoder) count(min int, what string) int {
	return int(d.bounded(uint64(len(d.b)/min), what))
}

func (d *decoder) bytes(max int, what string) []byte {
	n := int(d.bounded(uint64(max), what))
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail(errTruncated)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(max int, what string) string { return string(d.bytes(max, what)) }

func (d *decoder) id() TargetID {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail(errTruncated)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return TargetID(v)
}

func decodeStateByte(v byte) (health.State, bool) {
	switch v {
	case 0:
		return health.Unknown, true
	case 1:
		return health.Up, true
	case 2:
		return health.Down, true
	}
	return health.Unknown, false
}

func (d *decoder) state() health.State {
	v := d.byte()
	s, ok := decodeStateByte(v)
	if !ok {
		d.fail(fmt.Errorf("bad health state %d", v))
	}
	return s
}

// role reads a role; 0 (not known yet) is allowed only where known is
// false.
func (d *decoder) role(known bool) Role {
	r := Role(d.byte())
	if d.err == nil && !r.valid() && (known || r != 0) {
		d.fail(fmt.Errorf("bad role %d", r))
	}
	return r
}

func (d *decoder) node() string {
	s := d.string(maxNameLen, "node name length")
	if d.err == nil && s == "" {
		d.fail(errors.New("empty node name"))
	}
	return s
}

func (d *decoder) target() CatalogTarget {
	var t CatalogTarget
	start := d.b
	if a := d.bytes(16+64, "address length"); d.err == nil {
		if err := t.Addr.UnmarshalBinary(a); err != nil {
			d.fail(fmt.Errorf("target address: %w", err))
		}
	}
	n := int(d.bounded(maxChecks, "checks"))
	for i := 0; i < n && d.err == nil; i++ {
		t.Checks = append(t.Checks, d.string(maxCheckLen, "check length"))
	}
	t.Interval = time.Duration(d.bounded(uint64(maxTiming), "interval"))
	t.Timeout = time.Duration(d.bounded(uint64(maxTiming), "timeout"))
	t.Rise = int(d.bounded(maxRiseFall, "rise"))
	t.Fall = int(d.bounded(maxRiseFall, "fall"))
	if d.err == nil {
		enc := start[:len(start)-len(d.b)]
		if id, ok := knownTargets.id(enc); ok {
			t.ID = id
			return t
		}
		id, err := t.identify()
		if err != nil {
			d.fail(err)
		}
		t.ID = id
		if err == nil {
			knownTargets.add(enc, id)
		}
	}
	return t
}

// knownTargets remembers the IDs of target encodings found valid, so that
// the same target, received again (in each server's catalog, in every
// push/pull state), is not parsed and hashed again: at 100,000 targets
// that is most of the cost of decoding a state. It is a cache of a pure
// function of the bytes, so one for the process is right; past
// maxKnownTargets it starts again.
var knownTargets = &targetCache{m: map[string]TargetID{}}

const maxKnownTargets = 1 << 18

type targetCache struct {
	mu sync.Mutex
	m  map[string]TargetID
}

func (c *targetCache) id(enc []byte) (TargetID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.m[string(enc)]
	return id, ok
}

func (c *targetCache) add(enc []byte, id TargetID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxKnownTargets {
		c.m = map[string]TargetID{}
	}
	c.m[string(enc)] = id
}

// info reads a peerInfo and its flags byte.
func (d *decoder) info() (peerInfo, byte) {
	p := peerInfo{Node: d.node(), Label: d.string(maxLabelLen, "label length"), Role: d.role(false)}
	p.Epoch, p.Beat = d.uvarint(), d.uvarint()
	p.AgeMS = d.bounded(ageNever, "age")
	p.ObsAgeMS = d.bounded(ageNever, "observation age")
	flags := d.byte()
	if flags&^15 != 0 && d.err == nil {
		d.fail(fmt.Errorf("bad peer flags %#x", flags))
	}
	p.Leaving, p.Edge = flags&4 != 0, flags&8 != 0
	return p, flags & 3
}

// The smallest encodings, to bound counts.
const (
	minPair    = 9
	minTarget  = 1 + 4 + 1 + 2 + 1 + 1 + 1 + 1 // addr, checks, a tiny check, timing
	minInfo    = 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1
	minSetVers = 2 + 1 + 1 + 8
)

func decodeHeader(b []byte) (byte, *decoder, error) {
	if len(b) < 2 {
		return 0, nil, errTruncated
	}
	if b[1] != wireVersion {
		return 0, nil, fmt.Errorf("wire version %d, want %d", b[1], wireVersion)
	}
	return b[0], &decoder{b: b[2:]}, nil
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
	}
	return d.err
}

// decodeMessage decodes a message of any kind in the table (kinds.go).
func decodeMessage(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errTruncated
	}
	k := kinds[b[0]]
	if len(b) > maxInbound && (k == nil || !k.direct || len(b) > maxDirect) {
		return nil, errTooLarge
	}
	typ, d, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, fmt.Errorf("unknown message type %d", typ)
	}
	return k.decode(typ, d)
}

func decodeObservations(typ byte, d *decoder) (any, error) {
	m := &observations{Node: d.node(), Epoch: d.uvarint(), Seq: d.uvarint(), Bulk: typ == msgBulk}
	n := d.count(minPair, "observations")
	for i := 0; i < n && d.err == nil; i++ {
		m.Pairs = append(m.Pairs, pair{ID: d.id(), State: d.state()})
	}
	if d.err == nil && m.Seq == 0 {
		d.fail(errors.New("observations with seq 0"))
	}
	return m, d.finish()
}

func decodeHeartbeat(_ byte, d *decoder) (any, error) {
	m := &heartbeat{Node: d.node(), Label: d.string(maxLabelLen, "label length"), Role: d.role(true)}
	m.Epoch, m.Beat, m.ObsSeq = d.uvarint(), d.uvarint(), d.uvarint()
	m.ObsAgeMS = d.bounded(ageNever, "observation age")
	m.CatEpoch, m.CatSeq = d.uvarint(), d.uvarint()
	m.EveryMS = d.bounded(maxEveryMS, "heartbeat interval")
	f := d.byte()
	if f&^3 != 0 && d.err == nil {
		d.fail(fmt.Errorf("bad heartbeat flags %#x", f))
	}
	m.Leaving, m.Edge = f&1 != 0, f&2 != 0
	return m, d.finish()
}

func decodeCatalogPage(_ byte, d *decoder) (any, error) {
	m := &catalogPage{Node: d.node(), Epoch: d.uvarint(), Seq: d.uvarint()}
	m.Page = int(d.bounded(maxPages-1, "page"))
	m.Pages = int(d.bounded(maxPages, "pages"))
	if d.err == nil && m.Page >= m.Pages {
		d.fail(fmt.Errorf("page %d of %d", m.Page, m.Pages))
	}
	n := d.count(minTarget, "targets")
	for i := 0; i < n && d.err == nil; i++ {
		m.Targets = append(m.Targets, d.target())
	}
	return m, d.finish()
}

// decodeState decodes a state (4), from push/pull or a direct message.
func decodeState(b []byte) (*fullState, error) {
	if len(b) > maxState {
		return nil, errTooLarge
	}
	typ, d, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	if typ != msgState {
		return nil, fmt.Errorf("state of type %d, want %d", typ, msgState)
	}
	return decodeStateBody(d)
}

// index reads a gap coded index: prev is the previous index (-1 first),
// n the size of the index space.
func (d *decoder) index(v uint64, prev int64, n int) int64 {
	if d.err != nil {
		return prev
	}
	if v == 0 || v > uint64(n) || prev+int64(v) >= int64(n) {
		d.fail(fmt.Errorf("target index gap %d after %d of %d", v, prev, n))
		return prev
	}
	return prev + int64(v)
}

func decodeStateBody(d *decoder) (*fullState, error) {
	m := &fullState{Sender: d.node()}
	n := d.count(minTarget, "targets")
	ids := make([]TargetID, 0, n)
	table := make([]CatalogTarget, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		t := d.target()
		if i > 0 && d.err == nil && t.ID <= ids[i-1] {
			d.fail(fmt.Errorf("target %s out of order in the table", t.ID))
		}
		ids = append(ids, t.ID)
		table = append(table, t)
	}
	n = d.count(8, "extra IDs")
	inTable := len(ids)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.id()
		if i > 0 && d.err == nil && id <= ids[len(ids)-1] {
			d.fail(fmt.Errorf("extra ID %s out of order", id))
		}
		if _, found := slices.BinarySearch(ids[:inTable], id); found && d.err == nil {
			d.fail(fmt.Errorf("extra ID %s in the table", id))
		}
		ids = append(ids, id)
	}
	n = d.count(minInfo, "peers")
	seen := map[string]bool{}
	// Servers usually publish the same catalog: one that lists the same
	// targets as the one before shares its slice.
	var idx, lastIdx []int64
	var lastCat []CatalogTarget
	for i := 0; i < n && d.err == nil; i++ {
		info, flags := d.info()
		p := peerState{peerInfo: info}
		if seen[p.Node] && d.err == nil {
			d.fail(fmt.Errorf("peer %q twice", p.Node))
		}
		seen[p.Node] = true
		if flags&1 != 0 {
			v := &viewState{Complete: d.uvarint()}
			v.Latest = v.Complete + d.bounded(math.MaxUint64-v.Complete, "latest")
			k := d.count(1, "rows")
			prev := int64(-1)
			v.Base = make([]pair, 0, min(k, len(ids))) // rows name distinct targets
			for j := 0; j < k && d.err == nil; j++ {
				r := d.uvarint()
				prev = d.index(r>>2, prev, len(ids))
				st, ok := decodeStateByte(byte(r & 3))
				if !ok && d.err == nil {
					d.fail(fmt.Errorf("bad health state %d", r&3))
				}
				if d.err == nil {
					v.Base = append(v.Base, pair{ID: ids[prev], State: st})
				}
			}
			k = d.count(2, "newer rows")
			prev = -1
			for j := 0; j < k && d.err == nil; j++ {
				r := d.uvarint()
				prev = d.index(r>>2, prev, len(ids))
				st, ok := decodeStateByte(byte(r & 3))
				if !ok && d.err == nil {
					d.fail(fmt.Errorf("bad health state %d", r&3))
				}
				seq := v.Complete + d.bounded(v.Latest-v.Complete, "row seq")
				if d.err == nil {
					v.Newer = append(v.Newer, seqRow{ID: ids[prev], State: st, Seq: seq})
				}
			}
			k = int(d.bounded(maxPending, "pending"))
			for j := 0; j < k && d.err == nil; j++ {
				v.Pending = append(v.Pending, v.Complete+d.bounded(v.Latest-v.Complete, "pending seq"))
			}
			// Views list their rows in ID order, whatever the table.
			slices.SortFunc(v.Base, func(a, b pair) int { return cmp.Compare(a.ID, b.ID) })
			slices.SortFunc(v.Newer, func(a, b seqRow) int { return cmp.Compare(a.ID, b.ID) })
			p.View = v
		}
		if flags&2 != 0 {
			c := &catState{Epoch: d.uvarint(), Seq: d.uvarint()}
			k := d.count(1, "catalog targets")
			prev := int64(-1)
			idx = idx[:0]
			for j := 0; j < k && d.err == nil; j++ {
				prev = d.index(d.uvarint(), prev, len(table))
				idx = append(idx, prev)
			}
			if d.err == nil && lastCat != nil && slices.Equal(idx, lastIdx) {
				c.Targets = lastCat
			} else if d.err == nil {
				c.Targets = make([]CatalogTarget, len(idx))
				for j, t := range idx {
					c.Targets[j] = table[t]
				}
				lastCat = c.Targets
				lastIdx, idx = idx, lastIdx
			}
			p.Cat = c
		}
		m.Peers = append(m.Peers, p)
	}
	return m, d.finish()
}

func decodeDigest(d *decoder) (*digest, error) {
	m := &digest{Sender: d.node()}
	n := d.count(minInfo, "peers")
	seen := map[string]bool{}
	for i := 0; i < n && d.err == nil; i++ {
		info, flags := d.info()
		p := peerSummary{peerInfo: info}
		if seen[p.Node] && d.err == nil {
			d.fail(fmt.Errorf("peer %q twice", p.Node))
		}
		seen[p.Node] = true
		if flags&1 != 0 {
			v := &viewVersion{Complete: d.uvarint()}
			v.Latest = v.Complete + d.bounded(math.MaxUint64-v.Complete, "latest")
			v.Pending = d.bounded(v.Latest-v.Complete, "pending")
			p.View = v
		}
		if flags&2 != 0 {
			p.Cat = &catVersion{Epoch: d.uvarint(), Seq: d.uvarint()}
		}
		m.Peers = append(m.Peers, p)
	}
	n = d.count(minSetVers, "record sets")
	owners := map[string]bool{}
	for i := 0; i < n && d.err == nil; i++ {
		s := setVersion{Owner: d.owner(), Version: d.version(), Digest: d.digest()}
		if owners[s.Owner] && d.err == nil {
			d.fail(fmt.Errorf("owner %s twice", s.Owner))
		}
		owners[s.Owner] = true
		m.Sets = append(m.Sets, s)
	}
	return m, d.finish()
}
