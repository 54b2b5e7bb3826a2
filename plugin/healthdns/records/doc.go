// Package records owns the DNS records that owners (clusters, through the
// ExternalDNS webhook) publish, and their durable store.
//
// An owner's records form one Set, and the owner is its only writer. Every
// change makes a new Set under a new Version (epoch, seq): the epoch is
// persisted and bumped each time a Store opens, so a writer that restarts,
// even with its data directory lost, never reuses a version. The unit of
// replication is the whole Set of an owner: the Set with the highest
// Version wins, so a record deleted from a Set cannot come back from an
// older copy, and no per-record tombstone is needed (see Set).
//
// Store persists Sets in a data directory: every Apply (a local change)
// and Merge (a Set replicated from a peer) is in the write-ahead log and
// fsynced before it returns, and the log is compacted into a snapshot.
//
// The package validates and stores records; it does not serve DNS, speak
// HTTP or gossip, or decide health. The webhook package writes to a Store,
// gossip carries Sets between nodes, and the DNS snapshot builder reads
// them.
package records
