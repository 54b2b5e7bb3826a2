package records

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, dir string, opt Options) *Store {
	t.Helper()
	if opt.Logf == nil {
		opt.Logf = t.Logf
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustApply(t *testing.T, s *Store, owner string, c Changes) Set {
	t.Helper()
	set, err := s.Apply(owner, c)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestStoreApplyReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "records") // created on open
	s := open(t, dir, Options{})
	e1 := s.Epoch()
	set := mustApply(t, s, "eu", Changes{Create: []Endpoint{a("app.gslb.example.com", "192.0.2.1"), a("web.gslb.example.com", "192.0.2.2")}})
	if set.Version != (Version{e1, 1}) {
		t.Fatalf("first version %v, want %d.1", set.Version, e1)
	}
	set = mustApply(t, s, "eu", Changes{Delete: []Endpoint{a("web.gslb.example.com")}})
	if set.Version != (Version{e1, 2}) || len(set.Endpoints) != 1 {
		t.Fatalf("after delete: %+v", set)
	}
	mustApply(t, s, "us", Changes{Create: []Endpoint{a("app.gslb.example.com", "198.51.100.1")}})
	// A batch that changes nothing writes nothing.
	if again := mustApply(t, s, "eu", Changes{Create: []Endpoint{a("app.gslb.example.com", "192.0.2.1")}}); again.Version != set.Version {
		t.Errorf("no-op batch made version %v", again.Version)
	}
	before := s.Sets()
	s.Close()
	if _, err := s.Apply("eu", Changes{}); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after close: %v", err)
	}

	s2 := open(t, dir, Options{})
	if s2.Epoch() <= e1 {
		t.Errorf("epoch %d after reopen, want more than %d", s2.Epoch(), e1)
	}
	after := s2.Sets()
	if len(after) != 2 || !after[0].sameContent(before[0]) || after[0].Version != before[0].Version || !after[1].sameContent(before[1]) {
		t.Fatalf("reopened: %+v\nwant %+v", after, before)
	}
	// The writer continues under its new epoch.
	set = mustApply(t, s2, "eu", Changes{Create: []Endpoint{a("new.gslb.example.com", "192.0.2.3")}})
	if set.Version != (Version{s2.Epoch(), 1}) {
		t.Errorf("version after reopen %v", set.Version)
	}
}

func TestStoreEpochWithLostClock(t *testing.T) {
	dir := t.TempDir()
	future := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	s := open(t, dir, Options{Now: func() time.Time { return future }})
	e1 := s.Epoch()
	mustApply(t, s, "eu", Changes{Create: []Endpoint{a("app.example.com", "192.0.2.1")}})
	s.Close()
	// The clock went back: the epoch still goes up.
	s2 := open(t, dir, Options{})
	if s2.Epoch() != e1+1 {
		t.Errorf("epoch %d, want %d", s2.Epoch(), e1+1)
	}
}

func TestStoreMerge(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	eps, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("app.example.com", "192.0.2.1")}})
	peer := Set{Owner: "us", Version: Version{7, 3}, Endpoints: eps}
	ch, cancel := s.Subscribe()
	defer cancel()
	if ok, err := s.Merge(peer); !ok || err != nil {
		t.Fatalf("merge: %v %v", ok, err)
	}
	select {
	case <-ch:
	default:
		t.Error("no notification")
	}
	if ok, _ := s.Merge(Set{Owner: "us", Version: Version{7, 2}}); ok {
		t.Error("older set merged")
	}
	if ok, _ := s.Merge(peer); ok {
		t.Error("same set merged twice")
	}
	if _, err := s.Merge(Set{Owner: "us", Version: Version{7, 4}, Endpoints: []Endpoint{a("BAD", "x")}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid set: %v", err)
	}
	if _, err := s.Merge(Set{Owner: "us"}); err == nil {
		t.Error("zero version merged")
	}
	// A later epoch than the store's is kept when this store writes next:
	// the version still goes up.
	later := Set{Owner: "eu", Version: Version{s.Epoch() + 100, 5}, Endpoints: eps}
	if ok, err := s.Merge(later); !ok || err != nil {
		t.Fatal(ok, err)
	}
	set := mustApply(t, s, "eu", Changes{Delete: []Endpoint{a("app.example.com")}})
	if set.Version != (Version{s.Epoch() + 100, 6}) || len(set.Endpoints) != 0 {
		t.Errorf("after a later epoch: %+v", set)
	}
	// Replicated sets are durable too.
	dir := s.Dir()
	s.Close()
	s2 := open(t, dir, Options{})
	if got := s2.Set("us"); got.Version != peer.Version || !got.sameContent(peer) {
		t.Errorf("merged set after reopen: %+v", got)
	}
}

func walLen(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, walName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestStoreTornTail(t *testing.T) {
	for _, tear := range []struct {
		name string
		do   func(b []byte, lastStart int) []byte
	}{
		{"cut in the payload", func(b []byte, last int) []byte { return b[:len(b)-7] }},
		{"cut in the header", func(b []byte, last int) []byte { return b[:last+3] }},
		{"bad checksum", func(b []byte, last int) []byte { b[len(b)-2] ^= 0xff; return b }},
		{"zeros after", func(b []byte, last int) []byte { return append(b, make([]byte, 4096)...) }},
		{"garbage after", func(b []byte, last int) []byte { return append(b, "\x00\x00\x01\x00garbage"...) }},
	} {
		t.Run(tear.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, Options{})
			mustApply(t, s, "eu", Changes{Create: []Endpoint{a("one.example.com", "192.0.2.1")}})
			good := walLen(t, dir)
			mustApply(t, s, "eu", Changes{Create: []Endpoint{a("two.example.com", "192.0.2.2")}})
			s.Close()
			path := filepath.Join(dir, walName)
			b, _ := os.ReadFile(path)
			b = tear.do(b, int(good))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var warned []string
			s2, err := Open(dir, Options{Logf: func(f string, args ...any) { warned = append(warned, f) }})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			got := names(s2.Set("eu").Endpoints)
			want := "one.example.com/A=192.0.2.1"
			if tear.name == "zeros after" || tear.name == "garbage after" {
				want = "one.example.com/A=192.0.2.1 two.example.com/A=192.0.2.2"
			}
			if got != want {
				t.Errorf("recovered %s, want %s", got, want)
			}
			if len(warned) != 1 || !strings.Contains(warned[0], "torn tail") {
				t.Errorf("warnings %q", warned)
			}
			// Appends follow the last good entry, and survive another reopen.
			mustApply(t, s2, "eu", Changes{Create: []Endpoint{a("three.example.com", "192.0.2.3")}})
			s2.Close()
			s3 := open(t, dir, Options{})
			if got := names(s3.Set("eu").Endpoints); !strings.Contains(got, "three.example.com") || !strings.HasPrefix(got, "one.example.com") {
				t.Errorf("after the repair: %s", got)
			}
		})
	}
}

func TestStoreUnreadableEntry(t *testing.T) {
	// An entry with a good checksum that cannot be decoded is not a torn
	// write: the store refuses to open rather than drop it.
	dir := t.TempDir()
	s := open(t, dir, Options{})
	s.Close()
	b, _ := frame(9, map[string]int{"x": 1})
	f, _ := os.OpenFile(filepath.Join(dir, walName), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(b)
	f.Close()
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("opened a log with an unknown entry")
	} else if !strings.Contains(err.Error(), "unknown entry kind 9") {
		t.Errorf("error %v", err)
	}
}

func TestStoreCompaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{CompactBytes: 2048})
	var last Set
	for i := range 60 {
		c := Changes{Create: []Endpoint{a("n"+strconv.Itoa(i)+".example.com", "192.0.2.1")}}
		if i >= 10 {
			c.Delete = []Endpoint{a("n" + strconv.Itoa(i-10) + ".example.com")}
		}
		last = mustApply(t, s, "eu", c)
		if walLen(t, dir) >= 2048 {
			t.Fatalf("log of %d bytes after apply %d: not compacted", walLen(t, dir), i)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, snapName)); err != nil {
		t.Fatal("no snapshot:", err)
	}
	s.Close()
	s2 := open(t, dir, Options{CompactBytes: 2048})
	got := s2.Set("eu")
	if got.Version != last.Version || !got.sameContent(last) || len(got.Endpoints) != 10 {
		t.Fatalf("after compaction and reopen: %v %s", got.Version, names(got.Endpoints))
	}
	if err := s2.Compact(); err != nil {
		t.Fatal(err)
	}
	if walLen(t, dir) != 0 {
		t.Errorf("log of %d bytes after Compact", walLen(t, dir))
	}
}

func TestStoreCrashDuringCompaction(t *testing.T) {
	// A crash after the snapshot was renamed into place and before the log
	// was emptied replays the log over the snapshot: nothing changes.
	dir := t.TempDir()
	s := open(t, dir, Options{})
	mustApply(t, s, "eu", Changes{Create: []Endpoint{a("one.example.com", "192.0.2.1")}})
	mustApply(t, s, "eu", Changes{Create: []Endpoint{a("two.example.com", "192.0.2.2")}})
	want := s.Set("eu")
	wal, _ := os.ReadFile(filepath.Join(dir, walName))
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.WriteFile(filepath.Join(dir, walName), wal, 0o600)
	// And a snapshot.tmp left from a crash while writing one is ignored.
	os.WriteFile(filepath.Join(dir, snapTmpName), []byte("half a snapshot"), 0o600)
	s2 := open(t, dir, Options{})
	if got := s2.Set("eu"); got.Version != want.Version || !got.sameContent(want) {
		t.Errorf("got %v %s, want %v %s", got.Version, names(got.Endpoints), want.Version, names(want.Endpoints))
	}
	if _, err := os.Stat(filepath.Join(dir, snapTmpName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("snapshot.tmp left behind")
	}
}

func TestStoreDamagedSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	mustApply(t, s, "eu", Changes{Create: []Endpoint{a("one.example.com", "192.0.2.1")}})
	s.Compact()
	s.Close()
	p := filepath.Join(dir, snapName)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o600)
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("opened with a damaged snapshot")
	}
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("a second store opened the same directory")
	} else if !strings.Contains(err.Error(), "another process") {
		t.Errorf("error %v", err)
	}
}

func TestStoreBroken(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	s.wal.Close() // the next write fails, as a full or failing disk would
	if _, err := s.Apply("eu", Changes{Create: []Endpoint{a("one.example.com", "192.0.2.1")}}); err == nil {
		t.Fatal("apply succeeded on a closed log")
	}
	if got := s.Set("eu"); len(got.Endpoints) != 0 {
		t.Error("a failed apply changed the state")
	}
	if _, err := s.Apply("eu", Changes{Create: []Endpoint{a("two.example.com", "192.0.2.2")}}); !errors.Is(err, ErrBroken) {
		t.Errorf("after a failed write: %v", err)
	}
	if !errors.Is(s.Err(), ErrBroken) {
		t.Errorf("Err: %v", s.Err())
	}
}

func TestStoreInvalid(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	for _, c := range []struct {
		owner string
		c     Changes
	}{
		{"eu", Changes{Create: []Endpoint{a("one.example.com", "not-an-ip")}}},
		{"bad owner", Changes{Create: []Endpoint{a("one.example.com", "192.0.2.1")}}},
	} {
		if _, err := s.Apply(c.owner, c.c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if len(s.Sets()) != 0 {
		t.Error("invalid changes were stored")
	}
	if s.Err() != nil {
		t.Error("invalid input broke the store")
	}
}
