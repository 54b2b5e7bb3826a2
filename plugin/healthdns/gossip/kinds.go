package gossip

import (
	"strconv"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/override"
)

// kind is one kind of message: its type byte indexes kinds. Decoding,
// routing (gossip or direct), the name a queued broadcast goes by and
// handling all come from this table, so a new kind is one entry in it.
type kind struct {
	name string // for logs and errors
	// direct kinds go to one member over memberlist's reliable stream
	// (or over an edge connection), may be larger than a packet and are
	// never relayed; the others are gossiped and relayed when news.
	direct bool
	// decode reads the body after the header.
	decode func(typ byte, d *decoder) (any, error)
	// broadcast names a gossiped message in the send queue (a newer one
	// of the same name replaces it: see broadcast).
	broadcast func(m any) string
	// apply, for gossiped observation-state kinds, applies the message
	// to the state; Node.gossiped relays it when it is news.
	apply func(s *state, m any, now time.Time) outcome
	// handle acts on a message in the node's receive loop (b is the
	// message as received, to relay). nil: the kind never comes over
	// memberlist (an edge connection's own).
	handle func(n *Node, m any, b []byte)
	// fromEdge: an edge client may send it to its server, which handles
	// it as if gossiped or sent directly by the client (edge_server.go).
	fromEdge bool
	// toEdge: a server may send it to an edge client (edge_client.go).
	toEdge bool
}

// kinds is the table of message kinds by type byte (filled by init,
// since the handlers refer back to it).
var kinds [256]*kind

func init() {
	for typ, k := range map[byte]*kind{
		msgObservations: {name: "observations", decode: decodeObservations, fromEdge: true,
			broadcast: func(m any) string { o := m.(*observations); return obsName(o.Node, o.Epoch, o.Seq) },
			apply:     func(s *state, m any, now time.Time) outcome { return s.applyObservations(m.(*observations), now) }},
		msgHeartbeat: {name: "heartbeat", decode: decodeHeartbeat, fromEdge: true,
			broadcast: func(m any) string { return "h/" + m.(*heartbeat).Node },
			apply:     func(s *state, m any, now time.Time) outcome { return s.applyHeartbeat(m.(*heartbeat), now) }},
		msgCatalogPage: {name: "catalog page", decode: decodeCatalogPage,
			broadcast: func(m any) string {
				p := m.(*catalogPage)
				return "c/" + p.Node + "/" + strconv.Itoa(p.Page)
			},
			apply: func(s *state, m any, now time.Time) outcome { return s.applyPage(m.(*catalogPage), now) }},
		msgReasons: {name: "reasons", decode: func(_ byte, d *decoder) (any, error) { return decodeReasons(d) }, fromEdge: true,
			broadcast: func(m any) string { return reasonsName(m.(*reasonsMsg)) },
			apply: func(s *state, m any, _ time.Time) outcome {
				var o outcome
				r := m.(*reasonsMsg)
				if me, _ := s.aboutSelf(r.Node, r.Epoch); !me {
					o.fresh = s.reasons.apply(r)
				}
				return o
			}},
		msgOverride: {name: "override", decode: func(_ byte, d *decoder) (any, error) {
			e := d.override()
			return []override.Entry{e}, d.finish()
		},
			handle: func(n *Node, m any, b []byte) { n.handleOverride(m.([]override.Entry), b) }},
		msgRecordChg: {name: "record change", decode: func(_ byte, d *decoder) (any, error) { return decodeRecordChange(d) },
			broadcast: func(m any) string { return recordChangeName(m.(*recordChange).Change) },
			handle: func(n *Node, m any, b []byte) {
				n.stats.received.Add(1)
				n.handleRecordChange(m.(*recordChange).Change, b)
			}},

		msgBulk: {name: "bulk observations", direct: true, decode: decodeObservations, fromEdge: true,
			handle: func(n *Node, m any, _ []byte) {
				n.stats.received.Add(1)
				n.mu.Lock()
				o := n.st.applyObservations(m.(*observations), n.now())
				n.mu.Unlock()
				if !o.fresh {
					n.stats.stale.Add(1)
				}
				n.settle(o)
			}},
		msgState: {name: "state", direct: true, decode: func(_ byte, d *decoder) (any, error) { return decodeStateBody(d) }, fromEdge: true,
			handle: func(n *Node, m any, _ []byte) {
				n.stats.merged.Add(1)
				n.mu.Lock()
				o := n.st.mergeFull(m.(*fullState), n.now())
				n.mu.Unlock()
				n.settle(o)
			}},
		msgDigest: {name: "digest", direct: true, decode: func(_ byte, d *decoder) (any, error) { return decodeDigest(d) },
			handle: func(n *Node, m any, _ []byte) { n.answer(m.(*digest)) }},
		msgRecordHeads: {name: "record heads", direct: true, decode: func(_ byte, d *decoder) (any, error) { return decodeRecordHeads(d) },
			handle: func(n *Node, m any, _ []byte) { n.handleRecordHeads(m.(*recordHeads)) }},
		msgRecordDelta: {name: "record delta", direct: true, decode: func(_ byte, d *decoder) (any, error) { return decodeRecordDelta(d) }, fromEdge: true, toEdge: true,
			handle: func(n *Node, m any, _ []byte) { n.handleRecordDelta(m.(*recordDelta)) }},
		msgRecordPart: {name: "record part", direct: true, decode: func(_ byte, d *decoder) (any, error) { return decodeRecordPart(d) }, fromEdge: true, toEdge: true,
			handle: func(n *Node, m any, _ []byte) { n.handleRecordPart(m.(*recordPart)) }},

		// An edge connection's own (edge.go): never over memberlist.
		msgEdgeHello:   {name: "edge hello", direct: true, decode: decodeEdgeHello, fromEdge: true},
		msgEdgeCatalog: {name: "edge catalog", direct: true, decode: decodeEdgeCatalog, toEdge: true},
		msgEdgeStored:  {name: "edge stored", direct: true, decode: decodeEdgeStored, toEdge: true},
	} {
		if k.apply != nil && k.handle == nil {
			k.handle = func(n *Node, m any, b []byte) { n.gossiped(k, m, b) }
		}
		kinds[typ] = k
	}
}

// broadcastName is the name a gossiped message of type typ is queued by.
func broadcastName(typ byte, m any) string { return kinds[typ].broadcast(m) }

// direct reports whether messages of type typ travel over the reliable
// stream only, and so may be larger than a packet and are never relayed.
func direct(typ byte) bool { return kinds[typ] != nil && kinds[typ].direct }

// gossiped applies a gossiped message of observation state and relays it
// when it is news.
func (n *Node) gossiped(k *kind, m any, b []byte) {
	n.stats.received.Add(1)
	now := n.now()
	n.mu.Lock()
	o := k.apply(n.st, m, now)
	n.mu.Unlock()
	if o.self != 0 {
		n.refute(o.self)
	}
	if !o.fresh {
		n.stats.stale.Add(1)
		return
	}
	// Pass news on, as serf does: memberlist only sends what is queued
	// here, so relaying is what makes the spread epidemic.
	n.queue.QueueBroadcast(&broadcast{name: k.broadcast(m), msg: b})
	if o.changed {
		n.notify()
	}
}
