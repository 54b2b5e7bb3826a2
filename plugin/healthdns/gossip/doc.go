// Package gossip owns the replication of health state between healthdns
// servers and probe agents: one memberlist cluster (encrypted with a
// keyring, kept apart from others by a label) in which
//
//   - servers publish a catalog of the targets they serve, with their
//     checks and timing, so agents learn what to probe;
//   - every observer (an agent, or a server probing by itself) publishes
//     its own view of those targets as versioned (target ID, state) pairs;
//   - membership says which observers are alive, suspect, dead or gone;
//   - owners' records (package records, written through the ExternalDNS
//     webhook) are replicated to every server as chained changes that
//     cost what they change, sent by their writer directly to each server
//     (and gossiped when small), caught up from a bounded log of recent
//     changes or sent whole to a server too far behind, and stored off
//     the receive loop, many per fsync (records.go, records_wire.go);
//   - operators' overrides (package override: drain, forced down or up)
//     are a small book of last-writer-wins entries, sent directly and
//     gossiped when set, and carried whole by every push/pull
//     (overrides.go).
//
// The package moves observations; it does not judge them. Verdicts
// (package health), probing (package probe), DNS and metrics belong
// elsewhere; consumers read Catalog, Views and Members and are told of
// changes by Subscribe, and read Records, told by SubscribeRecords.
// Nothing here reads the DNS configuration.
//
// # How state moves
//
// The design is for 10,000 targets observed by 10 agents and served by 5
// servers: an agent's first view of every target is a 90 KB change, a
// catalog about 0.4 MB, and the whole state, catalogs and views, about
// half a MB (test/bench/scale measures it).
//
// Small changes (a few verdicts, a heartbeat, a small catalog, a change of
// a few records) go out as gossip deltas of at most one packet, and every node that
// learns one relays it: an epidemic that reaches everyone in a few gossip
// rounds, through lost packets and dead nodes.
//
// Bulk changes, those that would take more than a couple of packets (an
// agent's first 10,000 observations, a failover of 1,000 targets, a
// catalog, a change of many records), go whole and directly to every live
// member over memberlist's reliable stream, and are not relayed
// (direct.go). Gossiping them would take a hundred packets each, which
// every node would then relay, through a queue that sends a few packets a
// gossip interval: tens of seconds for what TCP delivers in milliseconds.
// Receivers apply a direct change as they apply gossip (same versions,
// same rules), so one that arrives late, twice or never is harmless.
//
// Anti-entropy repairs what was missed. Heartbeats announce the latest
// version of each node's view and catalog, so a node knows what it lacks;
// after a short wait (gossip may still be reordering) it sends its digest,
// the versions of everything it holds, directly to the node whose data it
// lacks, which answers with exactly what is missing. Push/pull does the
// same every interval with a random member: after join, each side sends
// its digest (a few dozen bytes a node) and the other answers directly
// with what the digest shows missing, so a push/pull costs almost nothing
// when nothing changed, instead of the whole state each way. On join,
// push/pull still carries the whole state both ways, so that Join returns
// with everything: a server that starts cold answers from a full view.
// A view lacking anything is sent whole (rows by their index in the
// state's target table, a byte a target): a node that missed a change also
// missed its removals, which only the whole view carries.
//
// # Freshness
//
// Each node records by its own clock when it last heard of each node, and
// when each observer last observed: the heartbeats carry the age of the
// observer's latest observation round (Node.Observed), so a view is dated
// by its observations, not by the liveness of its observer. An observer
// that was paused (SIGSTOP, a frozen VM) and resumes heartbeats at once,
// but its view stays as old as its last round until its probes run again.
// No remote clock is trusted: ages are durations on the sender's clock.
//
// # Membership
//
// Servers and witnesses are voters: a server may act only while it hears
// a majority of them (package health decides; Node.Voters says whom it
// hears). A node counts as heard while news from it, direct or relayed,
// arrived within its silence window: three of its heartbeat intervals
// (each heartbeat says its interval) and two gossip rounds. That tells a
// dead or cut-off node in about a second, where memberlist's failure
// detector takes several, and memberlist cannot tell left from dead.
//
// memberlist stops gossiping to dead members after a while and picks only
// live ones for push/pull, so a partition into two halves of two nodes or
// more would never heal. Like serf's reconnect, every RejoinInterval a
// node tries to join a few members it thinks dead, until the retention
// forgets them.
package gossip
