package gossip

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a node's gossip counters and membership at scrape time,
// under the names servers and agents share (coredns_healthdns_gossip_*), so
// one dashboard covers both.
type Collector struct {
	n *Node
}

// NewCollector returns a collector for n.
func NewCollector(n *Node) *Collector { return &Collector{n: n} }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("coredns", "healthdns", name), help, labels, nil)
}

var (
	descMembers = desc("gossip_members", "Gossip cluster members known to this node, by state.", "state")
	descMsgs    = desc("gossip_messages_total",
		"Gossip messages received, by result: fresh (news), duplicate, garbled (undecodable), oversized, dropped (inbound queue full).", "result")
	descSent   = desc("gossip_messages_sent_total", "Gossip messages handed to memberlist to send.")
	descBytes  = desc("gossip_bytes_total", "Bytes of gossip messages and push/pull state, by direction (sent, received) and kind (message, state).", "direction", "kind")
	descStates = desc("gossip_states_total",
		"Push/pull states, by result: merged, garbled (received, undecodable), too_large (own state over the limit, not sent).", "result")
	descDirect = desc("gossip_direct_messages_total",
		"Messages sent to one member over TCP (bulk changes, large catalogs and record sets, anti-entropy answers), by result: sent, failed, dropped (too many waiting).", "result")
	descRecordsSent = desc("gossip_records_sent_total",
		"Owners' records sent to a member that lacked some, by form: changes (what it lacked) or whole (further behind than the log of recent changes, or new). Whole sends in steady state mean the log is too short for the write rate.", "form")
	descStalls      = desc("gossip_stalls_total", "Heartbeat ticks that came far too late: the process was paused or starved, and its observations counted as old until it observed again.")
	descReconnects  = desc("gossip_reconnects_total", "Joins to members thought dead that succeeded: partitions healed.")
	descQueue       = desc("gossip_broadcast_queue", "Gossip messages waiting to be sent.")
	descObservers   = desc("observers", "Observers (agents, and servers that probe) this node holds a view of, by member state.", "state")
	descObservation = desc("observations", "Observations held: one per observer and target.")
	descEdgeClients = desc("gossip_edge_clients", "Edge clients (agents and sidecars with -connect) connected to this server.")
	descEdgeRefused = desc("gossip_edge_refused_total", "Edge client connections refused: a wrong key or label, a bad hello, over max-clients.")
	descLag         = desc("observer_lag_seconds", "Age of each observer's latest observation round as this node knows it (ObserverView.LastHeard): how old its view is.", "observer")
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMembers, descMsgs, descSent, descBytes, descStates, descDirect, descRecordsSent, descStalls, descReconnects, descQueue, descObservers, descObservation, descLag, descEdgeClients, descEdgeRefused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	st := n.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descMsgs, st.Fresh, "fresh")
	counter(descMsgs, st.Received-st.Fresh, "duplicate")
	counter(descMsgs, st.Garbled, "garbled")
	counter(descMsgs, st.Oversized, "oversized")
	counter(descMsgs, st.Dropped, "dropped")
	counter(descSent, st.SentMsgs)
	if e := n.edgeSrv(); e != nil {
		ch <- prometheus.MustNewConstMetric(descEdgeClients, prometheus.GaugeValue, float64(e.clients.Load()))
		counter(descEdgeRefused, e.refused.Load())
	}
	counter(descBytes, st.SentBytes, "sent", "message")
	counter(descBytes, st.RecvBytes, "received", "message")
	counter(descBytes, st.StateSent, "sent", "state")
	counter(descBytes, st.StateRecv, "received", "state")
	counter(descStates, st.StatesMerged, "merged")
	counter(descStates, st.StatesGarbled, "garbled")
	counter(descStates, st.StateTooLarge, "too_large")
	counter(descDirect, st.DirectSent, "sent")
	counter(descDirect, st.DirectFailed, "failed")
	counter(descDirect, st.DirectDropped, "dropped")
	counter(descRecordsSent, st.RecordsSentChanges, "changes")
	counter(descRecordsSent, st.RecordsSentWhole, "whole")
	counter(descStalls, st.Stalls)
	counter(descReconnects, st.Reconnects)
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(st.Queued))

	members := map[MemberState]int{}
	for _, m := range n.Members() {
		members[m.State]++
	}
	observers := map[MemberState]int{}
	held := 0
	now := time.Now()
	for _, v := range n.Views() {
		observers[v.State]++
		held += len(v.States)
		if v.Node != n.Name() && !v.LastHeard.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, now.Sub(v.LastHeard).Seconds(), v.Node)
		}
	}
	for _, s := range []MemberState{MemberAlive, MemberSuspect, MemberDead, MemberLeft} {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(members[s]), s.String())
		ch <- prometheus.MustNewConstMetric(descObservers, prometheus.GaugeValue, float64(observers[s]), s.String())
	}
	ch <- prometheus.MustNewConstMetric(descObservation, prometheus.GaugeValue, float64(held))
}
