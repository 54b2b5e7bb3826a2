package gossip

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

// Reasons say why an observer reports a target down: its failing check and
// error ("http://192.0.2.10/healthz: status 503"), for the operators' views.
// They never count for a verdict. They travel in messages of their own so
// that the observations' wire format, and its cost, stay as they are; a
// node that does not know the type drops them (counted as garbled) and
// loses nothing else:
//
//	reasons (25): node str, epoch uv, seq uv, n uv, n × (id, reason str)
//
// A reason is at most MaxReason bytes; an empty one clears the target's.
// Each target's reason is kept with the seq of the message that set it and
// replaced only by a newer one, as observations are. Only the targets an
// observer reports down have one. Changes go out at most reasonsBurst
// messages per publish and per heartbeat (a mass failure of thousands of
// targets takes a while to explain, and never floods the gossip queue);
// once none waits, the reasons are resent every reasonsEvery heartbeats
// (at most reasonsRepeat messages each time, going round), so a node that
// joined later or lost a packet learns them. Receivers show a reason only
// while the observer's view says down, so a lost clear shows nothing
// wrong.
const (
	msgReasons byte = 25

	// MaxReason bounds a reason on the wire, in bytes.
	MaxReason = 120

	reasonsEvery      = 5
	reasonsRepeat     = 2
	reasonsBurst      = 4 // messages of changes a publish or a heartbeat sends at most
	maxReasonsPerNode = 1 << 16
	minReason         = 9 // id and an empty string
)

// ShortReason is s as it travels: one line, at most MaxReason bytes. A
// longer one keeps its head (the check, up to the first ": ") and its tail
// (the root cause ends an error chain: "connect: connection refused"),
// "..." marking the cut, on character boundaries.
func ShortReason(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= MaxReason {
		return s
	}
	keep := MaxReason - len("...")
	head := keep / 2
	if i := strings.Index(s, ": "); i >= 0 && i+2 < head {
		head = i + 2
	}
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	tail := len(s) - (keep - head)
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + "..." + s[tail:]
}

type reasonsMsg struct {
	Node       string
	Epoch, Seq uint64
	Entries    []reasonEntry
}

type reasonEntry struct {
	ID   TargetID
	Text string
}

func (m *reasonsMsg) encode() []byte {
	b := appendHeader(make([]byte, 0, maxBroadcast), msgReasons)
	b = appendString(b, m.Node)
	b = appendUvarint(b, m.Epoch)
	b = appendUvarint(b, m.Seq)
	b = appendUvarint(b, uint64(len(m.Entries)))
	for _, e := range m.Entries {
		b = appendID(b, e.ID)
		b = appendString(b, e.Text)
	}
	return b
}

func decodeReasons(d *decoder) (*reasonsMsg, error) {
	m := &reasonsMsg{Node: d.node(), Epoch: d.uvarint(), Seq: d.uvarint()}
	n := d.count(minReason, "reasons")
	for i := 0; i < n && d.err == nil; i++ {
		m.Entries = append(m.Entries, reasonEntry{ID: d.id(), Text: d.string(MaxReason, "reason length")})
	}
	if d.err == nil && m.Seq == 0 {
		d.fail(errors.New("reasons with seq 0"))
	}
	return m, d.finish()
}

type reasonRow struct {
	text string
	seq  uint64
}

type nodeReasons struct {
	epoch uint64
	rows  map[TargetID]reasonRow
}

// reasonState is a node's own reasons and those it heard; guarded by
// Node.mu.
type reasonState struct {
	own    map[TargetID]string
	dirty  map[TargetID]bool // changed, not sent yet
	seq    uint64
	next   TargetID // where the next repeat starts
	ticks  int
	others map[string]*nodeReasons
	feed   *feed // targets whose reason changed; nil logs nothing
}

// pack splits entries into messages of at most maxBroadcast bytes, at
// most limit messages (0: no limit), each under a new seq.
func (r *reasonState) pack(node string, epoch uint64, entries []reasonEntry, limit int) []*reasonsMsg {
	var msgs []*reasonsMsg
	base := 2 + len(node) + 3*binaryMaxVarint
	for len(entries) > 0 && (limit == 0 || len(msgs) < limit) {
		size, n := base, 0
		for n < len(entries) && size+8+2+len(entries[n].Text) <= maxBroadcast {
			size += 8 + 2 + len(entries[n].Text)
			n++
		}
		r.seq++
		msgs = append(msgs, &reasonsMsg{Node: node, Epoch: epoch, Seq: r.seq, Entries: entries[:n:n]})
		entries = entries[n:]
	}
	return msgs
}

const binaryMaxVarint = 10

// publish makes the own reasons equal to reasons and returns the change.
func (r *reasonState) publish(node string, epoch uint64, reasons map[TargetID]string) []*reasonsMsg {
	if r.dirty == nil {
		r.dirty = map[TargetID]bool{}
	}
	next := make(map[TargetID]string, len(reasons))
	for id, text := range reasons {
		text = ShortReason(text)
		if text == "" {
			text = r.own[id] // still down, its last check passed: the failure stands
		}
		if text == "" || len(next) >= maxReasonsPerNode {
			continue
		}
		next[id] = text
		if r.own[id] != text {
			r.dirty[id] = true
			r.feed.note(id)
		}
	}
	for id := range r.own {
		if _, ok := next[id]; !ok {
			r.dirty[id] = true
			r.feed.note(id)
		}
	}
	r.own = next
	return r.drain(node, epoch)
}

// drain returns up to reasonsBurst messages of the changes not sent yet.
func (r *reasonState) drain(node string, epoch uint64) []*reasonsMsg {
	if len(r.dirty) == 0 {
		return nil
	}
	entries := make([]reasonEntry, 0, len(r.dirty))
	for id := range r.dirty {
		entries = append(entries, reasonEntry{ID: id, Text: r.own[id]})
	}
	slices.SortFunc(entries, func(a, b reasonEntry) int { return cmp.Compare(a.ID, b.ID) })
	msgs := r.pack(node, epoch, entries, reasonsBurst)
	for _, m := range msgs {
		for _, e := range m.Entries {
			delete(r.dirty, e.ID)
		}
	}
	return msgs
}

// repeat is a heartbeat's part: the changes still waiting, else the next
// round of the own reasons every reasonsEvery calls; and it forgets the
// reasons of nodes no longer known (known says which are).
func (r *reasonState) repeat(node string, epoch uint64, known func(string) bool) []*reasonsMsg {
	for n, nr := range r.others {
		if !known(n) {
			for id := range nr.rows {
				r.feed.note(id)
			}
			delete(r.others, n)
		}
	}
	if msgs := r.drain(node, epoch); len(msgs) > 0 {
		return msgs
	}
	if r.ticks++; r.ticks%reasonsEvery != 0 || len(r.own) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(r.own))
	start, _ := slices.BinarySearch(ids, r.next)
	ids = append(ids[start:], ids[:start]...)
	entries := make([]reasonEntry, len(ids))
	for i, id := range ids {
		entries[i] = reasonEntry{ID: id, Text: r.own[id]}
	}
	msgs := r.pack(node, epoch, entries, reasonsRepeat)
	sent := 0
	for _, m := range msgs {
		sent += len(m.Entries)
	}
	if sent < len(entries) {
		r.next = entries[sent].ID
	} else {
		r.next = 0
	}
	return msgs
}

// apply takes another node's reasons and reports whether any was news.
func (r *reasonState) apply(m *reasonsMsg) bool {
	if r.others == nil {
		r.others = map[string]*nodeReasons{}
	}
	nr := r.others[m.Node]
	if nr == nil || m.Epoch > nr.epoch {
		if nr != nil {
			for id := range nr.rows {
				r.feed.note(id)
			}
		}
		nr = &nodeReasons{epoch: m.Epoch, rows: map[TargetID]reasonRow{}}
		r.others[m.Node] = nr
	}
	if m.Epoch < nr.epoch {
		return false
	}
	fresh := false
	for _, e := range m.Entries {
		row, ok := nr.rows[e.ID]
		if m.Seq <= row.seq || (!ok && (e.Text == "" || len(nr.rows) >= maxReasonsPerNode)) {
			continue
		}
		fresh = true
		if row.text != e.Text {
			r.feed.note(e.ID)
		}
		if e.Text == "" {
			delete(nr.rows, e.ID) // a later repeat may only set it again
			continue
		}
		nr.rows[e.ID] = reasonRow{text: e.Text, seq: m.Seq}
	}
	return fresh
}

// of returns a node's reasons for the targets states says down.
func (r *reasonState) of(node string, self bool, states map[TargetID]health.State) map[TargetID]string {
	var out map[TargetID]string
	add := func(id TargetID, text string) {
		if states[id] != health.Down || text == "" {
			return
		}
		if out == nil {
			out = map[TargetID]string{}
		}
		out[id] = text
	}
	if self {
		for id, text := range r.own {
			add(id, text)
		}
		return out
	}
	if nr := r.others[node]; nr != nil {
		for id, row := range nr.rows {
			add(id, row.text)
		}
	}
	return out
}

// ofIDs is of for the targets of ids alone.
func (r *reasonState) ofIDs(node string, self bool, states map[TargetID]health.State, ids []TargetID) map[TargetID]string {
	var out map[TargetID]string
	var nr *nodeReasons
	if !self {
		if nr = r.others[node]; nr == nil {
			return nil
		}
	}
	for _, id := range ids {
		if states[id] != health.Down {
			continue
		}
		var text string
		if self {
			text = r.own[id]
		} else {
			text = nr.rows[id].text
		}
		if text == "" {
			continue
		}
		if out == nil {
			out = map[TargetID]string{}
		}
		out[id] = text
	}
	return out
}

func reasonsName(m *reasonsMsg) string {
	return "r/" + m.Node + "/" + strconv.FormatUint(m.Epoch, 10) + "/" + strconv.FormatUint(m.Seq, 10)
}

// PublishReasons sets why this node's probes fail, by target: the failing
// check and its error, for the targets it reports down (others are
// ignored by receivers); "" for a target still down whose last check
// passed (before rise) keeps its reason. A target left out has none.
// Each is cut to MaxReason bytes. What changed is gossiped; the rest is
// repeated every few heartbeats.
func (n *Node) PublishReasons(reasons map[TargetID]string) {
	n.mu.Lock()
	msgs := n.st.reasons.publish(n.cfg.Name, n.st.self.epoch, reasons)
	n.mu.Unlock()
	n.queueReasons(msgs)
}

func (n *Node) queueReasons(msgs []*reasonsMsg) {
	for _, m := range msgs {
		n.queue.QueueBroadcast(&broadcast{name: reasonsName(m), msg: m.encode()})
	}
}

// repeatReasons is the heartbeat's part: called with n.mu held, it
// returns what to queue once the lock is released.
func (n *Node) repeatReasons() []*reasonsMsg {
	return n.st.reasons.repeat(n.cfg.Name, n.st.self.epoch, func(node string) bool { return n.st.peers[node] != nil })
}
