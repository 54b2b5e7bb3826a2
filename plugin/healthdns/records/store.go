package records

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the records of every owner this node knows, durably: a
// change is in the write-ahead log and fsynced before Apply, Merge or
// Install returns, so an acknowledged change survives kill -9 of the
// process (and, as far as the disk honours fsync, a power cut). A Store
// opened without a directory (Memory) holds them in memory only.
//
// Reads (State) load an immutable State and never wait for a write.
// Writes are serialised.
type Store struct {
	dir  string // "" for a memory store
	opt  Options
	lock *os.File

	mu       sync.Mutex // serialises writes; guards the fields below
	wal      *os.File
	walSize  int64 // the log's size up to its last good entry
	snapSize int64
	epoch    uint64
	// restore is set when a write failed and the log could not be cut
	// back to its last good entry; every write tries that first.
	restore     error
	closed      bool
	compactFail time.Time       // the last failed compaction, to retry later
	writes      map[string]bool // owners this store wrote changes of (Apply)

	state atomic.Pointer[State]

	subsMu sync.Mutex
	subs   map[chan struct{}]struct{}
}

// Options tune a Store; the zero value is fine.
type Options struct {
	// CompactBytes is the least log size at which the Store compacts it
	// into the snapshot (default 64 KiB). It compacts once the log is
	// also as large as the snapshot, so that the data directory stays
	// within about twice the records' size.
	CompactBytes int64
	// Logf receives warnings (a torn log tail cut off, a compaction that
	// failed); default log.Printf.
	Logf func(format string, args ...any)
	// Now is the clock (default time.Now). The epoch is at least the time
	// of opening in microseconds, so a writer whose data directory was
	// lost still starts past every version it wrote before.
	Now func() time.Time
}

// Errors of a Store that takes no change.
var (
	// ErrUnavailable is wrapped by the error of a change that could not
	// be written (a full disk, an I/O error): nothing of it was
	// acknowledged, what was acknowledged before is intact, and the same
	// change may be tried again.
	ErrUnavailable = errors.New("records: the store cannot write to disk")
	ErrClosed      = errors.New("records: store closed")
)

const (
	defaultCompactBytes = 64 << 10
	compactRetry        = 10 * time.Second
)

func (o *Options) fill() {
	if o.CompactBytes <= 0 {
		o.CompactBytes = defaultCompactBytes
	}
	if o.Logf == nil {
		o.Logf = log.Printf
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Memory returns a store that keeps records in memory only: for a node
// that replicates records without a data directory.
func Memory(opt Options) *Store {
	opt.fill()
	s := &Store{opt: opt, subs: map[chan struct{}]struct{}{}}
	s.epoch = uint64(opt.Now().UnixMicro())
	s.state.Store(&State{owners: map[string]*ownerState{}})
	return s
}

// Open opens (creating it if needed) the store in dir: it recovers the
// snapshot and the log, cutting off a torn last entry, and starts a new
// epoch, persisted before Open returns. A directory damaged otherwise is
// refused with a *CorruptError (wrapping ErrCorrupt) that says where and
// how to recover.
func Open(dir string, opt Options) (*Store, error) {
	opt.fill()
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
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("records: %w", err)
		}
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
	legacy, err := readLegacy(s.dir)
	if err != nil {
		return err
	}
	var snap snapshotData
	if legacy != nil {
		snap = *legacy
	} else if snap, s.snapSize, err = readSnapshot(s.dir); err != nil {
		return err
	}
	owners := map[string]*ownerState{}
	maxEpoch := snap.epoch
	for _, set := range snap.sets {
		owners[set.Owner] = stateOf(set)
		maxEpoch = max(maxEpoch, set.Head.Version.Epoch)
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
	var b []byte
	if legacy == nil {
		if b, err = os.ReadFile(walPath); err != nil {
			return err
		}
	}
	entries, good, err := readLog(s.dir, b)
	if err != nil {
		return err
	}
	mine := map[string]bool{} // owners whose state replay made: written in place
	for _, e := range entries {
		switch e.kind {
		case kindEpoch:
			maxEpoch = max(maxEpoch, e.epoch)
		case kindChange:
			c := e.change
			o := owners[c.Owner]
			if o == nil {
				o = newOwnerState(c.Owner)
			}
			if !c.To.After(o.head) {
				continue // the snapshot has it already
			}
			if c.From != o.head {
				return &CorruptError{Dir: s.dir, File: walName, Offset: e.off, Intact: -1,
					Reason: fmt.Sprintf("a change of owner %s from %s, but the owner's state is at %s: an entry before it is missing", c.Owner, c.From, o.head)}
			}
			n, err := o.apply(c, mine[c.Owner])
			if err != nil {
				return &CorruptError{Dir: s.dir, File: walName, Offset: e.off, Intact: -1, Reason: err.Error()}
			}
			owners[c.Owner] = n
			mine[c.Owner] = true
			maxEpoch = max(maxEpoch, c.To.Version.Epoch)
		case kindInstall:
			if o := owners[e.set.Owner]; o == nil || e.set.Head.After(o.head) {
				owners[e.set.Owner] = stateOf(e.set)
				mine[e.set.Owner] = true
			}
			maxEpoch = max(maxEpoch, e.set.Head.Version.Epoch)
		}
	}
	if good < len(b) {
		// A crash in the middle of an append: that entry was never
		// acknowledged. Keep its bytes for inspection, and cut it off so
		// that appends follow the last good one.
		if err := os.WriteFile(filepath.Join(s.dir, tornName), b[good:], 0o600); err != nil {
			return fmt.Errorf("keep the torn tail of %s: %w", walPath, err)
		}
		s.opt.Logf("[WARN] healthdns records: %s: cut off a torn tail of %d bytes at offset %d (the last append, interrupted by a crash: never acknowledged); the bytes are in %s",
			walPath, len(b)-good, good, filepath.Join(s.dir, tornName))
		if err := f.Truncate(int64(good)); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	s.walSize = int64(good)
	s.state.Store(&State{owners: owners})

	s.epoch = max(maxEpoch+1, uint64(s.opt.Now().UnixMicro()))
	if legacy != nil {
		// The new snapshot holds the epoch, and compaction empties the
		// old log.
		if err := s.compact(); err != nil {
			return err
		}
		s.opt.Logf("[INFO] healthdns records: %s: converted the data directory to format %d", s.dir, snapFormat)
		return nil
	}
	if err := s.appendFrames(frame(kindEpoch, appendUvarint(nil, s.epoch))); err != nil {
		return err
	}
	if s.shouldCompact() {
		if err := s.compact(); err != nil {
			s.compactFailed(err)
		}
	}
	return nil
}

// appendFrames writes entries to the log and fsyncs it. If that fails,
// the log is cut back to its last good entry, so that what was
// acknowledged before stays readable and later appends follow it.
func (s *Store) appendFrames(frames ...[]byte) error {
	if s.dir == "" {
		return nil
	}
	if s.restore != nil {
		if err := s.cutBack(); err != nil {
			return err
		}
	}
	var n int64
	var err error
	for _, b := range frames {
		if _, err = s.wal.Write(b); err != nil {
			break
		}
		n += int64(len(b))
	}
	if err == nil {
		err = s.wal.Sync()
	}
	if err != nil {
		if cerr := s.cutBack(); cerr != nil {
			s.opt.Logf("[ERR] healthdns records: %s: after a failed write (%v), cutting the log back to %d bytes failed too: %v; retried on the next change",
				s.dir, err, s.walSize, cerr)
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err) // the error names the file
	}
	s.walSize += n
	return nil
}

// cutBack truncates the log to its last good entry, and records whether
// that worked.
func (s *Store) cutBack() error {
	err := s.wal.Truncate(s.walSize)
	if err == nil {
		err = s.wal.Sync()
	}
	if err != nil {
		s.restore = err
		return fmt.Errorf("%w: %s cannot be cut back to its last good entry: %v", ErrUnavailable, filepath.Join(s.dir, walName), err)
	}
	s.restore = nil
	return nil
}

// Epoch is the store's epoch: the versions of the changes it writes have it.
func (s *Store) Epoch() uint64 { return s.epoch }

// Dir is the data directory; "" for a memory store.
func (s *Store) Dir() string { return s.dir }

// State returns the records of every owner as of now.
func (s *Store) State() State { return *s.state.Load() }

// Set returns the owner's records whole.
func (s *Store) Set(owner string) Set { return s.State().Set(owner) }

// Head returns the owner's head.
func (s *Store) Head(owner string) Head { return s.State().Head(owner) }

// Apply applies a batch of changes to the owner's records, as its writer:
// the change gets the next version under this store's epoch and is
// durable when Apply returns it. A batch that changes nothing returns a
// change with no records (From == To) and writes nothing. Invalid changes
// change nothing and return an error wrapping ErrInvalid; one that cannot
// be written returns an error wrapping ErrUnavailable, and may be tried
// again.
func (s *Store) Apply(owner string, c Changes) (Change, error) {
	b, err := c.Prepare(nil)
	if err != nil {
		return Change{}, err
	}
	return s.ApplyBatch(owner, b)
}

// ApplyBatch is Apply of a batch checked already (Changes.Prepare).
func (s *Store) ApplyBatch(owner string, b Batch) (Change, error) {
	if err := CheckOwner(owner); err != nil {
		return Change{}, err
	}
	n := b.n
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Change{}, ErrClosed
	}
	st := s.State()
	cur := st.owners[owner]
	if cur == nil {
		cur = newOwnerState(owner)
	}
	put, remove, digest, size := cur.plan(n)
	if len(put) == 0 && len(remove) == 0 {
		return Change{Owner: owner, From: cur.head, To: cur.head}, nil
	}
	if size > MaxSetSize {
		return Change{}, invalid("owner %s: the change leaves %d bytes of records, more than %d", owner, size, MaxSetSize)
	}
	ch := Change{Owner: owner, From: cur.head, To: Head{Version: s.nextVersion(cur.head.Version), Digest: digest}, Put: put, Remove: remove}
	enc := AppendChange(nil, ch)
	next, err := cur.apply(ch, false)
	if err != nil {
		return Change{}, err
	}
	if err := s.appendFrames(frame(kindChange, enc)); err != nil {
		return Change{}, err
	}
	if s.writes == nil {
		s.writes = map[string]bool{}
	}
	s.writes[owner] = true
	s.publish(st, next)
	return ch, nil
}

// Writes reports whether this store has written changes of owner (Apply)
// since it opened: the changes its node sends to the cluster.
func (s *Store) Writes(owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[owner]
}

// nextVersion is the version after v for a change this store writes. A
// state written under a later epoch elsewhere (a second writer of the
// owner) keeps that epoch, so the new version is still higher.
func (s *Store) nextVersion(v Version) Version {
	if v.Epoch >= s.epoch {
		return Version{Epoch: v.Epoch, Seq: v.Seq + 1}
	}
	return Version{Epoch: s.epoch, Seq: 1}
}

// Merge stores changes made elsewhere (replicated from a peer), in order,
// with one fsync for all of them. A change is applied if it chains onto
// the owner's state here; skipped if that state is already at or past it;
// and returned in ahead if it is newer but does not chain (a change
// before it is missing here: the caller may keep it until that one comes,
// or fetch the owner whole). applied lists what was applied.
func (s *Store) Merge(cs ...Change) (applied, ahead []Change, err error) {
	for _, c := range cs {
		if err := c.validate(c.checked); err != nil {
			return nil, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	st := s.State()
	next := map[string]*ownerState{}
	var frames [][]byte
	for _, c := range cs {
		o, mine := next[c.Owner], true // next's states are this batch's own
		if o == nil {
			o, mine = st.owners[c.Owner], false
		}
		if o == nil {
			o = newOwnerState(c.Owner)
		}
		switch {
		case !c.To.After(o.head):
		case c.From != o.head:
			ahead = append(ahead, c)
		default:
			n, err := o.apply(c, mine)
			if err != nil {
				return nil, nil, err
			}
			next[c.Owner] = n
			frames = append(frames, frame(kindChange, AppendChange(nil, c)))
			applied = append(applied, c)
		}
	}
	if len(frames) == 0 {
		return nil, ahead, nil
	}
	if err := s.appendFrames(frames...); err != nil {
		return nil, nil, err
	}
	s.publish(st, mapValues(next)...)
	return applied, ahead, nil
}

func mapValues(m map[string]*ownerState) []*ownerState {
	out := make([]*ownerState, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Install stores an owner's records whole, as a peer sent them, if they
// supersede the owner's state here, and reports whether they did.
func (s *Store) Install(set Set) (bool, error) {
	if set.Head.Version.IsZero() {
		return false, invalid("owner %s: records with a zero version", set.Owner)
	}
	// Most offered are known already: say so before checking them.
	if !set.Head.After(s.Head(set.Owner)) {
		return false, nil
	}
	if err := set.Validate(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	st := s.State()
	if o := st.owners[set.Owner]; o != nil && !set.Head.After(o.head) {
		return false, nil
	}
	if err := s.appendFrames(frame(kindInstall, appendSetBody(nil, set))); err != nil {
		return false, err
	}
	s.publish(st, stateOf(set))
	return true, nil
}

// publish makes the new owner states current (s.mu is held), tells the
// subscribers, and compacts when the log has grown enough.
func (s *Store) publish(st State, states ...*ownerState) {
	m := make(map[string]*ownerState, len(st.owners)+len(states))
	for k, v := range st.owners {
		m[k] = v
	}
	for _, o := range states {
		m[o.owner] = o
	}
	s.state.Store(&State{owners: m})
	s.notify()
	if s.shouldCompact() {
		if err := s.compact(); err != nil {
			// The change itself is durable in the log.
			s.compactFailed(err)
		}
	}
}

func (s *Store) shouldCompact() bool {
	return s.dir != "" && s.walSize >= max(s.opt.CompactBytes, s.snapSize) && s.opt.Now().Sub(s.compactFail) >= compactRetry
}

func (s *Store) compactFailed(err error) {
	s.compactFail = s.opt.Now()
	os.Remove(filepath.Join(s.dir, snapTmpName))
	s.opt.Logf("[WARN] healthdns records: compaction of %s failed (retried in %s; the log keeps every change meanwhile): %v", s.dir, compactRetry, err)
}

// Compact writes every owner's records into a new snapshot and empties
// the log.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.dir == "" {
		return nil
	}
	if err := s.compact(); err != nil {
		os.Remove(filepath.Join(s.dir, snapTmpName))
		return fmt.Errorf("%w: compaction: %v", ErrUnavailable, err)
	}
	return nil
}

// compact writes snapshot.tmp, fsyncs it, renames it over the snapshot,
// fsyncs the directory, and only then empties the log.
func (s *Store) compact() error {
	if s.restore != nil {
		if err := s.cutBack(); err != nil {
			return err
		}
	}
	tmp := filepath.Join(s.dir, snapTmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = writeSnapshot(f, s.epoch, s.State())
	if err == nil {
		err = f.Sync()
	}
	var size int64
	if fi, serr := f.Stat(); err == nil && serr == nil {
		size = fi.Size()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, snapName)); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.snapSize = size
	if err := s.wal.Truncate(0); err != nil {
		return err
	}
	if err := s.wal.Sync(); err != nil {
		return err
	}
	s.walSize = 0
	s.compactFail = time.Time{}
	return nil
}

// Err reports why the store takes no changes, if it does not: closed, or
// its log could not be cut back after a failed write.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.restore != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, s.restore)
	}
	return nil
}

// DiskUsage is the bytes of the log and the snapshot.
func (s *Store) DiskUsage() (wal, snapshot int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.walSize, s.snapSize
}

// Subscribe returns a channel that receives (coalesced, never blocking the
// store) after the records changed, and the function that ends the
// subscription.
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
	if s.dir == "" {
		return nil
	}
	err := s.wal.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}
