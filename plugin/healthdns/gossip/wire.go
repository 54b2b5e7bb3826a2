package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// Wire format. Every message is a type byte, a wire version byte and a body
// of unsigned varints (uv), fixed 8-byte big-endian target IDs (id), single
// bytes, and strings (uv length, then bytes):
//
//	observations (1): node str, epoch uv, seq uv, n uv, n × (id, state byte)
//	heartbeat    (2): node str, label str, role byte, epoch uv, beat uv,
//	                  obs seq uv, catalog epoch uv, catalog seq uv,
//	                  flags byte (1 = leaving)
//	catalog page (3): node str, epoch uv, seq uv, page uv, pages uv,
//	                  n uv, n × target
//	state        (4): push/pull only: sender str, n uv, n × target (the
//	                  union of all catalogs, each target once), n uv,
//	                  n × peer
//
//	target: id, addr (uv length + netip.Addr binary), n uv, n × check str,
//	        interval ns uv, timeout ns uv, rise uv, fall uv
//	peer:   node str, label str, role byte (0 = not heard yet), epoch uv, beat uv,
//	        age ms uv (how long ago the sender last heard the peer, by the
//	        sender's own clock; max uint32 = never), flags byte (1 = view,
//	        2 = catalog, 4 = leaving), then if view: complete uv, latest-complete uv,
//	        n uv, n × (id, state) rows as of complete, n uv, n × (id, state,
//	        seq-complete uv) newer rows, n uv, n × (seq-complete uv) newer
//	        seqs applied; then if catalog: epoch uv, seq uv, n uv, n × id
//
// Record Sets travel in messages of their own (5-7), in records_wire.go.
//
// Health states are 0 unknown, 1 up, 2 down. Gossip messages (1-3) are at
// most maxBroadcast bytes so they fit one UDP packet with memberlist's
// framing, label and encryption; the push/pull state is at most maxState.
const (
	wireVersion byte = 1

	msgObservations byte = 1
	msgHeartbeat    byte = 2
	msgCatalogPage  byte = 3
	msgState        byte = 4

	// maxBroadcast bounds every gossip message we send. memberlist's UDP
	// buffer is 1,400 bytes; a label of up to 255 bytes, encryption and
	// compound framing take the rest.
	maxBroadcast = 1024
	// maxInbound bounds what NotifyMsg accepts; anything larger is not ours.
	maxInbound = 1400
	// maxState bounds a push/pull state; memberlist caps it at 20 MiB.
	maxState = 16 << 20

	maxNameLen  = 128
	maxLabelLen = 64
	maxPages    = 4096
	maxPending  = 1024
	ageNever    = math.MaxUint32
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

type observations struct {
	Node  string
	Epoch uint64
	Seq   uint64
	Pairs []pair
}

type heartbeat struct {
	Node     string
	Label    string
	Role     Role
	Epoch    uint64
	Beat     uint64
	ObsSeq   uint64
	CatEpoch uint64
	CatSeq   uint64
	Leaving  bool // the node announced it is leaving the cluster
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

type peerState struct {
	Node  string
	Label string
	Role  Role
	Epoch uint64
	Beat  uint64
	AgeMS uint64
	// Leaving says the node announced it is leaving: memberlist does not
	// tell a node that left from one that died (memberlist#293).
	Leaving bool
	View    *viewState
	Cat     *catState
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

// Encoding.

func appendHeader(b []byte, typ byte) []byte { return append(b, typ, wireVersion) }

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendID(b []byte, id TargetID) []byte { return binary.BigEndian.AppendUint64(b, uint64(id)) }

func appendState(b []byte, s health.State) []byte {
	switch s {
	case health.Up:
		return append(b, 1)
	case health.Down:
		return append(b, 2)
	}
	return append(b, 0)
}

func appendTarget(b []byte, t CatalogTarget) []byte {
	b = appendID(b, t.ID)
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

func (m *observations) encode() []byte {
	b := make([]byte, 0, 32+len(m.Node)+9*len(m.Pairs))
	b = appendHeader(b, msgObservations)
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
	b = appendUvarint(b, m.CatEpoch)
	b = appendUvarint(b, m.CatSeq)
	return appendBool(b, m.Leaving)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
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

// encode writes the state; the catalogs' targets go once into a shared
// table, since every server usually publishes the same ones.
func (m *fullState) encode() []byte {
	table := map[TargetID]CatalogTarget{}
	var order []TargetID
	for _, p := range m.Peers {
		if p.Cat == nil {
			continue
		}
		for _, t := range p.Cat.Targets {
			if _, ok := table[t.ID]; !ok {
				table[t.ID] = t
				order = append(order, t.ID)
			}
		}
	}
	b := appendHeader(nil, msgState)
	b = appendString(b, m.Sender)
	b = appendUvarint(b, uint64(len(order)))
	for _, id := range order {
		b = appendTarget(b, table[id])
	}
	b = appendUvarint(b, uint64(len(m.Peers)))
	for _, p := range m.Peers {
		b = appendString(b, p.Node)
		b = appendString(b, p.Label)
		b = append(b, byte(p.Role))
		b = appendUvarint(b, p.Epoch)
		b = appendUvarint(b, p.Beat)
		b = appendUvarint(b, p.AgeMS)
		var flags byte
		if p.View != nil {
			flags |= 1
		}
		if p.Cat != nil {
			flags |= 2
		}
		if p.Leaving {
			flags |= 4
		}
		b = append(b, flags)
		if v := p.View; v != nil {
			b = appendUvarint(b, v.Complete)
			b = appendUvarint(b, v.Latest-v.Complete)
			b = appendUvarint(b, uint64(len(v.Base)))
			for _, r := range v.Base {
				b = appendID(b, r.ID)
				b = appendState(b, r.State)
			}
			b = appendUvarint(b, uint64(len(v.Newer)))
			for _, r := range v.Newer {
				b = appendID(b, r.ID)
				b = appendState(b, r.State)
				b = appendUvarint(b, r.Seq-v.Complete)
			}
			b = appendUvarint(b, uint64(len(v.Pending)))
			for _, s := range v.Pending {
				b = appendUvarint(b, s-v.Complete)
			}
		}
		if c := p.Cat; c != nil {
			b = appendUvarint(b, c.Epoch)
			b = appendUvarint(b, c.Seq)
			b = appendUvarint(b, uint64(len(c.Targets)))
			for _, t := range c.Targets {
				b = appendID(b, t.ID)
			}
		}
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

func (d *decoder) state() health.State {
	switch v := d.byte(); v {
	case 0:
		return health.Unknown
	case 1:
		return health.Up
	case 2:
		return health.Down
	default:
		d.fail(fmt.Errorf("bad health state %d", v))
		return health.Unknown
	}
}

// role reads a role; 0 (not known yet) is allowed only where known is
// false.
func (d *decoder) role(known bool) Role {
	r := Role(d.byte())
	if d.err == nil && r != RoleServer && r != RoleAgent && (known || r != 0) {
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
	t.ID = d.id()
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
		if err := t.validate(); err != nil {
			d.fail(err)
		}
	}
	return t
}

// The smallest encodings, to bound counts.
const (
	minPair   = 9
	minSeqRow = 10
	minTarget = 8 + 1 + 4 + 1 + 2 + 1 + 1 + 1 + 1 // id, addr, checks, a tiny check, timing
	minPeer   = 2 + 1 + 1 + 5
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

// decodeMessage decodes a gossip message: *observations, *heartbeat,
// *catalogPage or *recordPage (records_wire.go).
func decodeMessage(b []byte) (any, error) {
	if len(b) > maxInbound {
		return nil, errTooLarge
	}
	typ, d, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	switch typ {
	case msgObservations:
		m := &observations{Node: d.node(), Epoch: d.uvarint(), Seq: d.uvarint()}
		n := d.count(minPair, "observations")
		for i := 0; i < n && d.err == nil; i++ {
			m.Pairs = append(m.Pairs, pair{ID: d.id(), State: d.state()})
		}
		if d.err == nil && m.Seq == 0 {
			d.fail(errors.New("observations with seq 0"))
		}
		return m, d.finish()
	case msgHeartbeat:
		m := &heartbeat{Node: d.node(), Label: d.string(maxLabelLen, "label length"), Role: d.role(true)}
		m.Epoch, m.Beat, m.ObsSeq, m.CatEpoch, m.CatSeq = d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint()
		switch f := d.byte(); f {
		case 0, 1:
			m.Leaving = f == 1
		default:
			d.fail(fmt.Errorf("bad heartbeat flags %#x", f))
		}
		return m, d.finish()
	case msgCatalogPage:
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
	case msgRecordPage:
		return decodeRecordPage(d)
	}
	return nil, fmt.Errorf("unknown message type %d", typ)
}

// decodeState decodes a push/pull state.
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
	m := &fullState{Sender: d.node()}
	table := map[TargetID]CatalogTarget{}
	n := d.count(minTarget, "targets")
	for i := 0; i < n && d.err == nil; i++ {
		t := d.target()
		if _, dup := table[t.ID]; dup && d.err == nil {
			d.fail(fmt.Errorf("target %s twice in the table", t.ID))
		}
		table[t.ID] = t
	}
	n = d.count(minPeer, "peers")
	seen := map[string]bool{}
	for i := 0; i < n && d.err == nil; i++ {
		p := peerState{Node: d.node(), Label: d.string(maxLabelLen, "label length"), Role: d.role(false)}
		p.Epoch, p.Beat = d.uvarint(), d.uvarint()
		p.AgeMS = d.bounded(ageNever, "age")
		if seen[p.Node] && d.err == nil {
			d.fail(fmt.Errorf("peer %q twice", p.Node))
		}
		seen[p.Node] = true
		flags := d.byte()
		if flags&^7 != 0 && d.err == nil {
			d.fail(fmt.Errorf("bad peer flags %#x", flags))
		}
		p.Leaving = flags&4 != 0
		if flags&1 != 0 {
			v := &viewState{Complete: d.uvarint()}
			v.Latest = v.Complete + d.bounded(math.MaxUint64-v.Complete, "latest")
			k := d.count(minPair, "rows")
			for j := 0; j < k && d.err == nil; j++ {
				v.Base = append(v.Base, pair{ID: d.id(), State: d.state()})
			}
			k = d.count(minSeqRow, "newer rows")
			for j := 0; j < k && d.err == nil; j++ {
				r := seqRow{ID: d.id(), State: d.state()}
				r.Seq = v.Complete + d.bounded(v.Latest-v.Complete, "row seq")
				v.Newer = append(v.Newer, r)
			}
			k = int(d.bounded(maxPending, "pending"))
			for j := 0; j < k && d.err == nil; j++ {
				v.Pending = append(v.Pending, v.Complete+d.bounded(v.Latest-v.Complete, "pending seq"))
			}
			p.View = v
		}
		if flags&2 != 0 {
			c := &catState{Epoch: d.uvarint(), Seq: d.uvarint()}
			k := d.count(8, "catalog targets")
			for j := 0; j < k && d.err == nil; j++ {
				id := d.id()
				t, ok := table[id]
				if !ok && d.err == nil {
					d.fail(fmt.Errorf("catalog target %s not in the table", id))
				}
				c.Targets = append(c.Targets, t)
			}
			p.Cat = c
		}
		m.Peers = append(m.Peers, p)
	}
	return m, d.finish()
}
