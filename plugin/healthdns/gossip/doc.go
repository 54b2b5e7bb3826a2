// Package gossip owns the replication of health state between healthdns
// servers and probe agents: one memberlist cluster (encrypted with a
// keyring, kept apart from others by a label) in which
//
//   - servers publish a catalog of the targets they serve, with their
//     checks and timing, so agents learn what to probe;
//   - every observer (an agent, or a server probing by itself) publishes
//     its own view of those targets as versioned (target ID, state) pairs;
//   - membership says which observers are alive, suspect, dead or gone;
//   - the record Sets of owners (package records, written through the
//     ExternalDNS webhook) are replicated whole under their version, in
//     messages of their own (records.go, records_wire.go).
//
// Changes go out as small deltas by gossip broadcast and are relayed by
// every node that learns them; push/pull anti-entropy carries the full
// state and repairs what a lost packet left out. Each node records when it
// last heard of each observer by its own clock, so consumers can judge
// freshness without trusting remote clocks.
//
// The package moves observations; it does not judge them. Verdicts
// (package health), probing (package probe), DNS and metrics belong
// elsewhere; consumers read Catalog, Views and Members and are told of
// changes by Subscribe, and read Records, told by SubscribeRecords.
// Nothing here reads the DNS configuration.
package gossip
