// Package records owns the DNS records that owners (clusters, through the
// ExternalDNS webhook) publish, and their durable store.
//
// An owner is the only writer of its records. Every change it makes is a
// Change from one state of its records to the next, each named by a Head:
// a Version (epoch, seq) and a digest of the content. The epoch is
// persisted and bumped each time a Store opens, so a writer that
// restarts, even with its data directory lost, never reuses a version.
// A change holds only what it changes, so storing and replicating it costs
// O(change), not O(everything the owner has); replicas apply changes in
// the order they chain, catch up from a bounded log of recent changes, and
// take the owner's records whole (a Set) when further behind than that, so
// no tombstone has to outlive a peer (see Change).
//
// Store persists owners' records in a data directory: every change is in
// the write-ahead log and fsynced before it is acknowledged, and the log
// is compacted into a snapshot. Damage that a crash cannot explain is
// refused, naming the file and offset, never dropped (disk.go).
//
// The package validates and stores records; it does not serve DNS, speak
// HTTP or gossip, or decide health. The webhook package writes to a Store,
// gossip carries changes and Sets between nodes, and the DNS snapshot
// builder reads a State.
package records
