package records

import (
	"cmp"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the Sets of every owner this node knows, durably: a change
// is in the write-ahead log and fsynced before Apply or Merge returns, so
// an acknowledged change survives kill -9 of the process (and, as far as
// the disk honours fsync, a power cut).
//
// Reads (Set, Sets) load an immutable map and never wait for a write.
// Writes are serialised.
type Store struct {
	dir  string
	opt  Options
	lock *os.File

	mu      sync.Mutex // serialises writes; guards wal, walSize, broken, closed
	wal     *os.File
	walSize int64
	epoch   uint64
	broken  error
	closed  bool

	sets atomic.Pointer[map[string]Set]

	subsMu sync.Mutex
	subs   map[chan struct{}]struct{}
}

// Options tune a Store; the zero value is fine.
type Options struct {
	// CompactBytes is the log size past which the Store compacts it into
	// the snapshot (default 4 MiB).
	CompactBytes int64
	// Logf receives warnings (a torn log tail cut off); default log.Printf.
	Logf func(format string, args ...any)
	// Now is the clock (default time.Now). The epoch is at least the time
	// of opening in microseconds, so a writer whose data directory was
	// lost still starts past every version it wrote before.
	Now func() time.Time
}

// Errors of a Store that cannot take writes.
var (
	ErrBroken = errors.New("records: the store failed to write to disk and takes no more changes; restart to recover")
	ErrClosed = errors.New("records: store closed")
)

const defaultCompactBytes = 4 << 20

// Open opens (creating it if needed) the store in dir: it recovers the
// snapshot and the log, cutting off a torn last entry, and starts a new
// epoch, persisted before Open returns.
func Open(dir string, opt Options) (*Store, error) {
	if opt.CompactBytes <= 0 {
		opt.CompactBytes = defaultCompactBytes
	}
	if opt.Logf == nil {
		opt.Logf = log.Printf
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := mkdirSync(dir); err != nil {
		return nil, fmt.Errorf("records: data directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	s := &Store{dir: dir, opt: opt, lock: lock, subs: map[chan struct{}]struct{}{}}
	if err := s.recover(); err != nil {
		if s.wal != nil {
			s.wal.Close()
		}
		lock.Close()
		return nil, fmt.Errorf("records: open %s: %w", dir, err)
	}
	return s, nil
}

// mkdirSync creates dir if needed, and then fsyncs its parent so that the
// directory itself survives a crash.
func mkdirSync(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return syncDir(filepath.Dir(filepath.Clean(dir)))
}

func (s *Store) recover() error {
	if err := os.Remove(filepath.Join(s.dir, snapTmpName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	snap, err := readSnapshot(s.dir)
	if err != nil {
		return err
	}
	sets := map[string]Set{}
	maxEpoch := snap.Epoch
	for _, set := range snap.Sets {
		sets[set.Owner] = set
		maxEpoch = max(maxEpoch, set.Version.Epoch)
	}

	walPath := filepath.Join(s.dir, walName)
	_, statErr := os.Stat(walPath)
	f, err := os.OpenFile(walPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.wal = f
	if errors.Is(statErr, os.ErrNotExist) {
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(walPath)
	if err != nil {
		return err
	}
	entries, good, err := readLog(b)
	if err != nil {
		return fmt.Errorf("%s: %w", walPath, err)
	}
	for _, e := range entries {
		switch e.kind {
		case kindEpoch:
			maxEpoch = max(maxEpoch, e.epoch)
		case kindSet:
			if e.set.Supersedes(sets[e.set.Owner]) {
				sets[e.set.Owner] = e.set
			}
			maxEpoch = max(maxEpoch, e.set.Version.Epoch)
		default:
			return fmt.Errorf("%s: a snapshot entry in the log", walPath)
		}
	}
	if good < len(b) {
		// A crash in the middle of an append: that entry was never
		// acknowledged. Cut it off so that appends follow the last good one.
		s.opt.Logf("[WARN] healthdns records: %s: cut off a torn tail of %d bytes at offset %d (an append interrupted by a crash)", walPath, len(b)-good, good)
		if err := f.Truncate(int64(good)); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	s.walSize = int64(good)
	s.sets.Store(&sets)

	s.epoch = max(maxEpoch+1, uint64(s.opt.Now().UnixMicro()))
	if err := s.append(kindEpoch, epochEntry{Epoch: s.epoch}); err != nil {
		return err
	}
	if s.walSize >= s.opt.CompactBytes {
		return s.compact()
	}
	return nil
}

// append writes one entry to the log and fsyncs it.
func (s *Store) append(kind byte, v any) error {
	b, err := frame(kind, v)
	if err != nil {
		return err
	}
	if _, err := s.wal.Write(b); err != nil {
		return err
	}
	if err := s.wal.Sync(); err != nil {
		return err
	}
	s.walSize += int64(len(b))
	return nil
}

// Epoch is the store's epoch: the versions of the Sets it writes have it.
func (s *Store) Epoch() uint64 { return s.epoch }

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Set returns the owner's Set; one with no endpoints and a zero version if
// the owner has written nothing.
func (s *Store) Set(owner string) Set {
	if set, ok := (*s.sets.Load())[owner]; ok {
		return set
	}
	return Set{Owner: owner}
}

// Sets returns the Set of every owner, sorted by owner.
func (s *Store) Sets() []Set {
	m := *s.sets.Load()
	out := make([]Set, 0, len(m))
	for _, set := range m {
		out = append(out, set)
	}
	slices.SortFunc(out, func(a, b Set) int { return cmp.Compare(a.Owner, b.Owner) })
	return out
}

// Apply applies a batch of changes to the owner's Set, as its writer: the
// new Set gets the next version under this store's epoch and is durable
// when Apply returns it. A batch that changes nothing returns the current
// Set and writes nothing. Invalid changes change nothing and return an
// error wrapping ErrInvalid; a failure to write returns another error,
// and the store then refuses every change (ErrBroken) until it is opened
// again, since after a failed fsync what reached the disk is unknown.
func (s *Store) Apply(owner string, c Changes) (Set, error) {
	if err := CheckOwner(owner); err != nil {
		return Set{}, err
	}
	n, err := c.normalize(nil)
	if err != nil {
		return Set{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return Set{}, err
	}
	cur := s.Set(owner)
	next := Set{Owner: owner, Endpoints: n.apply(cur.Endpoints)}
	if next.sameContent(cur) {
		return cur, nil
	}
	if len(next.Endpoints) > MaxEndpoints {
		return Set{}, invalid("owner %s: the change leaves %d endpoints, more than %d", owner, len(next.Endpoints), MaxEndpoints)
	}
	if size := next.Size(); size > MaxSetSize {
		return Set{}, invalid("owner %s: the change leaves %d bytes of records, more than %d", owner, size, MaxSetSize)
	}
	next.Version = s.nextVersion(cur.Version)
	if err := s.put(next); err != nil {
		return Set{}, err
	}
	return next, nil
}

// nextVersion is the version after v for a Set this store writes. A Set
// written under a later epoch elsewhere (a second writer of the owner)
// keeps that epoch, so the new version is still higher.
func (s *Store) nextVersion(v Version) Version {
	if v.Epoch >= s.epoch {
		return Version{Epoch: v.Epoch, Seq: v.Seq + 1}
	}
	return Version{Epoch: s.epoch, Seq: 1}
}

// Merge stores a Set replicated from a peer if it supersedes the owner's
// Set here, durably before it returns, and reports whether it did.
func (s *Store) Merge(set Set) (bool, error) {
	if set.Version.IsZero() {
		return false, invalid("owner %s: a Set with a zero version", set.Owner)
	}
	// Most Sets offered are known already: say so before the cost of
	// checking every endpoint.
	if !set.Supersedes(s.Set(set.Owner)) {
		return false, nil
	}
	if err := set.Validate(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return false, err
	}
	if !set.Supersedes(s.Set(set.Owner)) {
		return false, nil
	}
	return true, s.put(set)
}

func (s *Store) writable() error {
	if s.closed {
		return ErrClosed
	}
	if s.broken != nil {
		return fmt.Errorf("%w (%v)", ErrBroken, s.broken)
	}
	return nil
}

// put logs set, then makes it the owner's. s.mu is held.
func (s *Store) put(set Set) error {
	if err := s.append(kindSet, set); err != nil {
		s.broken = err
		return fmt.Errorf("records: write %s: %w", filepath.Join(s.dir, walName), err)
	}
	old := *s.sets.Load()
	m := make(map[string]Set, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[set.Owner] = set
	s.sets.Store(&m)
	s.notify()
	if s.walSize >= s.opt.CompactBytes {
		if err := s.compact(); err != nil {
			// The change itself is durable in the log; only the
			// compaction failed.
			s.broken = err
			s.opt.Logf("[ERR] healthdns records: compaction of %s failed: %v", s.dir, err)
		}
	}
	return nil
}

// Compact writes every Set into a new snapshot and empties the log.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if err := s.compact(); err != nil {
		s.broken = err
		return err
	}
	return nil
}

// compact writes snapshot.tmp, fsyncs it, renames it over the snapshot,
// fsyncs the directory, and only then truncates the log.
func (s *Store) compact() error {
	snap := snapshotEntry{Format: snapFormat, Epoch: s.epoch, Sets: s.Sets()}
	b, err := frame(kindSnapshot, snap)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, snapTmpName)
	if err := writeFileSync(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, snapName)); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	if err := s.wal.Truncate(0); err != nil {
		return err
	}
	if err := s.wal.Sync(); err != nil {
		return err
	}
	s.walSize = 0
	return nil
}

// Err reports why the store takes no more changes, if it does not.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writable()
}

// Subscribe returns a channel that receives (coalesced, never blocking the
// store) after a Set changed, and the function that ends the subscription.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.subsMu.Lock()
	s.subs[ch] = struct{}{}
	s.subsMu.Unlock()
	return ch, func() {
		s.subsMu.Lock()
		delete(s.subs, ch)
		s.subsMu.Unlock()
	}
}

func (s *Store) notify() {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Close closes the log and releases the directory. Reads still work.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.wal.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}
