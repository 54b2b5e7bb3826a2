package records

import (
	"errors"
	"fmt"
	"hash/crc32"
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

func mustApply(t testing.TB, s *Store, owner string, c Changes) Change {
	t.Helper()
	ch, err := s.Apply(owner, c)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func sameSet(a, b Set) bool {
	return a.Owner == b.Owner && a.Head == b.Head && names(a.Endpoints) == names(b.Endpoints)
}

func TestStoreApplyReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "records") // created on open
	s := open(t, dir, Options{})
	e1 := s.Epoch()
	ch := mustApply(t, s, "eu", Changes{Create: []Endpoint{a("app.gslb.example.com", "192.0.2.1"), a("web.gslb.example.com", "192.0.2.2")}})
	if ch.To.Version != (Version{e1, 1}) || !ch.From.IsZero() || len(ch.Put) != 2 {
		t.Fatalf("first change %+v, want %d.1 from nothing", ch, e1)
	}
	ch = mustApply(t, s, "eu", Changes{Delete: []Endpoint{a("web.gslb.example.com")}})
	if ch.To.Version != (Version{e1, 2}) || len(ch.Remove) != 1 || len(ch.Put) != 0 || s.State().Len("eu") != 1 {
		t.Fatalf("after delete: %+v", ch)
	}
	mustApply(t, s, "us", Changes{Create: []Endpoint{a("app.gslb.example.com", "198.51.100.1")}})
	// A batch that changes nothing writes nothing.
	if again := mustApply(t, s, "eu", Changes{Create: []Endpoint{a("app.gslb.example.com", "192.0.2.1")}}); again.To != ch.To || again.Len() != 0 {
		t.Errorf("no-op batch made %+v", again)
	}
	// A change holds what changed only: an update of one record of two.
	upd := mustApply(t, s, "eu", Changes{Create: []Endpoint{a("app.gslb.example.com", "192.0.2.1"), a("new.gslb.example.com", "192.0.2.5")}})
	if len(upd.Put) != 1 || upd.Put[0].DNSName != "new.gslb.example.com" {
		t.Errorf("change %+v, want only the new record", upd)
	}
	before := []Set{s.Set("eu"), s.Set("us")}
	s.Close()
	if _, err := s.Apply("eu", Changes{}); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after close: %v", err)
	}

	s2 := open(t, dir, Options{})
	if s2.Epoch() <= e1 {
		t.Errorf("epoch %d after reopen, want more than %d", s2.Epoch(), e1)
	}
	for _, want := range before {
		if got := s2.Set(want.Owner); !sameSet(got, want) {
			t.Fatalf("reopened: %+v\nwant %+v", got, want)
		}
	}
	// The writer continues under its new epoch, from where it was.
	ch = mustApply(t, s2, "eu", Changes{Create: []Endpoint{a("more.gslb.example.com", "192.0.2.3")}})
	if ch.To.Version != (Version{s2.Epoch(), 1}) || ch.From != before[0].Head {
		t.Errorf("change after reopen %+v", ch)
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

// writerChanges makes n changes on a memory store, as the writer of owner
// would, and returns them.
func writerChanges(t testing.TB, owner string, n int) ([]Change, *Store) {
	t.Helper()
	w := Memory(Options{})
	var out []Change
	for i := range n {
		c := Changes{Create: []Endpoint{a(fmt.Sprintf("n%d.example.com", i), "192.0.2.1")}}
		if i >= 3 {
			c.Delete = []Endpoint{a(fmt.Sprintf("n%d.example.com", i-3))}
		}
		out = append(out, mustApply(t, w, owner, c))
	}
	return out, w
}

func TestStoreMerge(t *testing.T) {
	cs, w := writerChanges(t, "us", 6)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	sub, cancel := s.Subscribe()
	defer cancel()
	applied, ahead, err := s.Merge(cs[0], cs[1])
	if err != nil || len(applied) != 2 || len(ahead) != 0 {
		t.Fatalf("merge: %d applied, %d ahead, %v", len(applied), len(ahead), err)
	}
	select {
	case <-sub:
	default:
		t.Error("no notification")
	}
	// Again: stale, nothing happens.
	if applied, ahead, _ := s.Merge(cs[1]); len(applied)+len(ahead) != 0 {
		t.Error("a change merged twice")
	}
	// One missing: the later one does not chain, and is handed back.
	if applied, ahead, _ := s.Merge(cs[3]); len(applied) != 0 || len(ahead) != 1 {
		t.Errorf("a change after a gap: %d applied, %d ahead", len(applied), len(ahead))
	}
	// In order, in one batch: all of them.
	if applied, _, err := s.Merge(cs[2], cs[3], cs[4], cs[5]); len(applied) != 4 || err != nil {
		t.Fatalf("the rest: %d applied, %v", len(applied), err)
	}
	if got, want := s.Set("us"), w.Set("us"); !sameSet(got, want) {
		t.Fatalf("merged %+v\nwant %+v", got, want)
	}
	// A change whose content does not make its digest is refused.
	bad := mustApply(t, w, "us", Changes{Create: []Endpoint{a("x.example.com", "192.0.2.7")}})
	bad.Put = []Endpoint{a("y.example.com", "192.0.2.7")}
	if _, _, err := s.Merge(bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("a change with the wrong digest: %v", err)
	}
	bad.Put = []Endpoint{a("Y.example.com", "192.0.2.7")}
	if _, _, err := s.Merge(bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("a change with a non-canonical endpoint: %v", err)
	}
	// A later epoch than the store's is kept when this store writes next:
	// the version still goes up.
	later := Set{Owner: "eu", Head: Head{Version{s.Epoch() + 100, 5}, 0}}
	if ok, err := s.Install(later); !ok || err != nil {
		t.Fatal(ok, err)
	}
	ch := mustApply(t, s, "eu", Changes{Create: []Endpoint{a("app.example.com", "192.0.2.1")}})
	if ch.To.Version != (Version{s.Epoch() + 100, 6}) {
		t.Errorf("after a later epoch: %+v", ch)
	}
	// Replicated changes are durable too.
	want := s.Set("us")
	s.Close()
	s2 := open(t, dir, Options{})
	if got := s2.Set("us"); !sameSet(got, want) {
		t.Errorf("merged after reopen: %+v", got)
	}
}

func TestStoreInstall(t *testing.T) {
	_, w := writerChanges(t, "us", 5)
	whole := w.Set("us")
	dir := t.TempDir()
	s := open(t, dir, Options{})
	// A local write under a later epoch than the writer's wins over it.
	mustApply(t, s, "us", Changes{Create: []Endpoint{a("local.example.com", "192.0.2.9")}})
	if ok, err := s.Install(whole); ok || err != nil {
		t.Errorf("an older Set installed over a later state: %v %v", ok, err)
	}
	s2 := open(t, t.TempDir(), Options{})
	if ok, err := s2.Install(whole); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := s2.Install(whole); ok {
		t.Error("the same Set installed twice")
	}
	if got := s2.Set("us"); !sameSet(got, whole) {
		t.Fatalf("installed %+v", got)
	}
	// A Set whose digest does not match is refused.
	forged := whole
	forged.Head.Version.Seq++
	forged.Endpoints = forged.Endpoints[1:]
	if _, err := s2.Install(forged); !errors.Is(err, ErrInvalid) {
		t.Errorf("forged Set: %v", err)
	}
	// After an install the owner continues by changes.
	next := mustApply(t, w, "us", Changes{Create: []Endpoint{a("later.example.com", "192.0.2.3")}})
	if applied, _, err := s2.Merge(next); len(applied) != 1 || err != nil {
		t.Errorf("change after install: %v", err)
	}
}

func TestStoreSince(t *testing.T) {
	cs, w := writerChanges(t, "us", 10)
	st := w.State()
	got, ok := st.Since("us", cs[3].From)
	if !ok || len(got) != 7 || got[0].To != cs[3].To {
		t.Fatalf("since change 3: %d changes, %v", len(got), ok)
	}
	if got, ok := st.Since("us", cs[9].To); !ok || len(got) != 0 {
		t.Errorf("since the head: %d, %v", len(got), ok)
	}
	if _, ok := st.Since("us", Head{Version: Version{1, 1}, Digest: 7}); ok {
		t.Error("since a head never seen")
	}
	// The log is bounded: a replica far behind gets the whole Set.
	var c Changes
	for i := range 3000 {
		c.Create = append(c.Create, a(fmt.Sprintf("bulk%d.example.com", i), "192.0.2.4"))
	}
	mustApply(t, w, "us", c)
	for i := range 1100 {
		mustApply(t, w, "us", Changes{Create: []Endpoint{a("flip.example.com", "192.0.2."+strconv.Itoa(i%200+1))}})
	}
	st = w.State()
	if _, ok := st.Since("us", cs[9].To); ok {
		t.Error("the log reaches back past its bound")
	}
	o := st.owners["us"]
	if o.log.bytes > max(minLogBytes, o.size/2) {
		t.Errorf("log of %d changes, %d bytes, for a state of %d bytes", len(o.log.entries), o.log.bytes, o.size)
	}
	// An old State is unchanged by the changes after it (copy on write).
	if old := st.Len("us"); w.State().Len("us") != old {
		t.Fatal("len moved")
	}
	before := w.State()
	mustApply(t, w, "us", Changes{Delete: []Endpoint{a("bulk0.example.com")}})
	if _, ok := before.Lookup("us", Key{"bulk0.example.com", TypeA, ""}); !ok {
		t.Error("a change reached into an older State")
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
		name  string
		do    func(b []byte, lastStart int) []byte
		whole bool // the last entry survives
	}{
		{"cut in the payload", func(b []byte, last int) []byte { return b[:len(b)-7] }, false},
		{"cut in the trailer", func(b []byte, last int) []byte { return b[:len(b)-1] }, false},
		{"cut in the header", func(b []byte, last int) []byte { return b[:last+3] }, false},
		{"last sectors never written", func(b []byte, last int) []byte {
			// A power cut: the file's length grew, its last sector is zeros.
			for i := max(last+frameHeader+1, len(b)-sectorSize); i < len(b); i++ {
				b[i] = 0
			}
			return b
		}, false},
		{"zeros after", func(b []byte, last int) []byte { return append(b, make([]byte, 4096)...) }, true},
		{"half a header after", func(b []byte, last int) []byte { return append(b, frameMagic[:3]...) }, true},
		{"trailer damaged", func(b []byte, last int) []byte { b[len(b)-1] ^= 0xff; return b }, true},
	} {
		t.Run(tear.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, Options{})
			mustApply(t, s, "eu", Changes{Create: []Endpoint{a("one.example.com", "192.0.2.1")}})
			good := walLen(t, dir)
			var big Changes
			for i := range 40 { // more than a sector
				big.Create = append(big.Create, a(fmt.Sprintf("two%d.example.com", i), "192.0.2.2"))
			}
			mustApply(t, s, "eu", big)
			want := s.Set("eu")
			s.Close()
			path := filepath.Join(dir, walName)
			b, _ := os.ReadFile(path)
			b = tear.do(b, int(good))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var warned []string
			s2, err := Open(dir, Options{Logf: func(f string, args ...any) { warned = append(warned, fmt.Sprintf(f, args...)) }})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			got := s2.Set("eu")
			if tear.whole {
				if !sameSet(got, want) {
					t.Errorf("recovered %s, want %s", names(got.Endpoints), names(want.Endpoints))
				}
			} else if names(got.Endpoints) != "one.example.com/A=192.0.2.1" {
				t.Errorf("recovered %s, want the first change only", names(got.Endpoints))
			}
			if !tear.whole || tear.name != "trailer damaged" {
				if len(warned) != 1 || !strings.Contains(warned[0], "torn tail") || !strings.Contains(warned[0], path) {
					t.Errorf("warnings %q", warned)
				}
				if kept, err := os.ReadFile(filepath.Join(dir, tornName)); err != nil || len(kept) == 0 {
					t.Errorf("the torn tail was not kept: %v", err)
				}
			}
			// Appends follow the last good entry, and survive another reopen.
			mustApply(t, s2, "eu", Changes{Create: []Endpoint{a("three.example.com", "192.0.2.3")}})
			s2.Close()
			s3 := open(t, dir, Options{})
			if got := names(s3.Set("eu").Endpoints); !strings.Contains(got, "three.example.com") || !strings.Contains(got, "one.example.com") {
				t.Errorf("after the repair: %s", got)
			}
		})
	}
}

// damageDir makes a data directory with a snapshot and a log, both with
// several entries, and returns what it holds.
func damageDir(t *testing.T) (string, map[string]Set) {
	t.Helper()
	dir := t.TempDir()
	s := open(t, dir, Options{})
	for i := range 6 {
		mustApply(t, s, "eu", Changes{Create: []Endpoint{a(fmt.Sprintf("s%d.example.com", i), "192.0.2.1")}})
		mustApply(t, s, "us", Changes{Create: []Endpoint{{DNSName: fmt.Sprintf("t%d.example.com", i), RecordType: TypeTXT, Targets: []string{strings.Repeat("x", 100)}}}})
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		mustApply(t, s, "eu", Changes{Create: []Endpoint{a(fmt.Sprintf("w%d.example.com", i), "192.0.2.2")}, Delete: []Endpoint{a(fmt.Sprintf("s%d.example.com", i))}})
	}
	want := map[string]Set{"eu": s.Set("eu"), "us": s.Set("us")}
	s.Close()
	return dir, want
}

// TestStoreDamage damages every file of a data directory, one byte at a
// time at many offsets, and by cutting a few bytes off its end. After
// each, Open either refuses with a CorruptError that names the file and
// an offset, or serves every acknowledged record: never a silent drop.
// Cutting the log's end is a torn tail, which may lose only its last entry
// (never acknowledged, had it been a crash), and says so.
func TestStoreDamage(t *testing.T) {
	clean, want := damageDir(t)
	files, _ := os.ReadDir(clean)
	checked := 0
	for _, fi := range files {
		name := fi.Name()
		orig, err := os.ReadFile(filepath.Join(clean, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(orig) == 0 {
			t.Logf("%s is empty: nothing to damage", name)
			continue
		}
		step := max(1, len(orig)/300)
		type damage struct {
			what string
			b    []byte
		}
		var ds []damage
		for off := 0; off < len(orig); off += step {
			b := append([]byte(nil), orig...)
			b[off] ^= 0x5a
			ds = append(ds, damage{fmt.Sprintf("byte %d flipped", off), b})
		}
		mid := append([]byte(nil), orig...)
		mid[len(mid)/2] ^= 0xff
		ds = append(ds, damage{"the middle byte flipped", mid})
		for _, cut := range []int{1, 2, 3, 5, 8, 17} {
			if cut < len(orig) {
				ds = append(ds, damage{fmt.Sprintf("%d bytes cut off", cut), orig[:len(orig)-cut]})
			}
		}
		for _, d := range ds {
			dir := t.TempDir()
			for _, f := range files {
				b, _ := os.ReadFile(filepath.Join(clean, f.Name()))
				if f.Name() == name {
					b = d.b
				}
				os.WriteFile(filepath.Join(dir, f.Name()), b, 0o600)
			}
			var logged []string
			s, err := Open(dir, Options{Logf: func(f string, args ...any) { logged = append(logged, fmt.Sprintf(f, args...)) }})
			checked++
			if err != nil {
				var ce *CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s, %s: refused without saying where: %v", name, d.what, err)
				}
				if ce.File != name || !strings.Contains(err.Error(), filepath.Join(dir, name)) || !strings.Contains(err.Error(), "offset "+strconv.FormatInt(ce.Offset, 10)) || !strings.Contains(err.Error(), "To recover") {
					t.Fatalf("%s, %s: the error names %s at %d: %v", name, d.what, ce.File, ce.Offset, err)
				}
				continue
			}
			lost := false
			for owner, w := range want {
				if got := s.Set(owner); !sameSet(got, w) {
					lost = true
				}
			}
			s.Close()
			if !lost {
				continue
			}
			// Only a cut of the log's end may lose something: its last
			// entry, and with a warning.
			if name != walName || !strings.Contains(d.what, "cut off") || len(logged) == 0 || !strings.Contains(logged[0], "torn tail") {
				t.Fatalf("%s, %s: opened and lost acknowledged records silently (log: %q)", name, d.what, logged)
			}
		}
	}
	t.Logf("%d damaged copies of a data directory: each refused with file and offset, or served whole", checked)
}

func TestStoreMissingEntry(t *testing.T) {
	// A change whose predecessor is not in the log is corruption (an entry
	// lost from the middle), not something to skip.
	dir := t.TempDir()
	s := open(t, dir, Options{})
	s.Close()
	cs, _ := writerChanges(t, "us", 3)
	f, _ := os.OpenFile(filepath.Join(dir, walName), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(frame(kindChange, AppendChange(nil, cs[0])))
	f.Write(frame(kindChange, AppendChange(nil, cs[2])))
	f.Close()
	_, err := Open(dir, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error %v", err)
	}
}

func TestStoreUnreadableEntry(t *testing.T) {
	// An entry with a good checksum that cannot be decoded is not a torn
	// write: the store refuses to open rather than drop it.
	dir := t.TempDir()
	s := open(t, dir, Options{})
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, walName), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(frame(9, []byte("x")))
	f.Close()
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("opened a log with an unknown entry")
	} else if !strings.Contains(err.Error(), "unknown entry kind 9") || !errors.Is(err, ErrCorrupt) {
		t.Errorf("error %v", err)
	}
}

func TestStoreCompaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{CompactBytes: 2048})
	for i := range 200 {
		c := Changes{Create: []Endpoint{a("n"+strconv.Itoa(i)+".example.com", "192.0.2.1")}}
		if i >= 10 {
			c.Delete = []Endpoint{a("n" + strconv.Itoa(i-10) + ".example.com")}
		}
		mustApply(t, s, "eu", c)
		wal, snap := s.DiskUsage()
		if wal > max(2048, snap)+512 {
			t.Fatalf("log of %d bytes (snapshot %d) after apply %d: not compacted", wal, snap, i)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, snapName)); err != nil {
		t.Fatal("no snapshot:", err)
	}
	last := s.Set("eu")
	s.Close()
	s2 := open(t, dir, Options{CompactBytes: 2048})
	if got := s2.Set("eu"); !sameSet(got, last) || len(got.Endpoints) != 10 {
		t.Fatalf("after compaction and reopen: %v %s", got.Head, names(got.Endpoints))
	}
	if err := s2.Compact(); err != nil {
		t.Fatal(err)
	}
	if walLen(t, dir) != 0 {
		t.Errorf("log of %d bytes after Compact", walLen(t, dir))
	}
}

// TestStoreCostPerChange: a one-record change to an owner of 20,000
// records appends a few hundred bytes, and many of them keep the data
// directory within a small multiple of the records' size.
func TestStoreCostPerChange(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	var c Changes
	for i := range 20000 {
		c.Create = append(c.Create, Endpoint{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: TypeA,
			Targets: []string{"192.0.2.1", "192.0.2.2"}, Labels: map[string]string{"owner": "eu", "resource": fmt.Sprintf("ingress/default/app%d", i)}})
	}
	mustApply(t, s, "eu", c)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	_, snap := s.DiskUsage()
	size := s.State().Size("eu")
	for i := range 1000 {
		before, _ := s.DiskUsage()
		mustApply(t, s, "eu", Changes{UpdateNew: []Endpoint{{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: TypeA,
			Targets: []string{"192.0.2.3"}, Labels: map[string]string{"owner": "eu", "resource": fmt.Sprintf("ingress/default/app%d", i)}}}})
		after, _ := s.DiskUsage()
		if d := after - before; d > 256 && after > before {
			t.Fatalf("change %d appended %d bytes to the log", i, d)
		}
	}
	wal, snap2 := s.DiskUsage()
	t.Logf("20,000 records: %d bytes as Size counts them, snapshot %d bytes; after 1,000 one-record changes: log %d, snapshot %d", size, snap, wal, snap2)
	if wal+snap2 > 3*int64(size) {
		t.Errorf("data directory of %d bytes for %d bytes of records", wal+snap2, size)
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
	if got := s2.Set("eu"); !sameSet(got, want) {
		t.Errorf("got %v %s, want %v %s", got.Head, names(got.Endpoints), want.Head, names(want.Endpoints))
	}
	if _, err := os.Stat(filepath.Join(dir, snapTmpName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("snapshot.tmp left behind")
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

func TestStoreWriteFails(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	mustApply(t, s, "eu", Changes{Create: []Endpoint{a("one.example.com", "192.0.2.1")}})
	good := s.wal
	ro, err := os.Open(filepath.Join(dir, walName)) // read-only: writes fail, as on a failing disk
	if err != nil {
		t.Fatal(err)
	}
	s.wal = ro
	if _, err := s.Apply("eu", Changes{Create: []Endpoint{a("two.example.com", "192.0.2.2")}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("apply on a failing log: %v", err)
	}
	if got := names(s.Set("eu").Endpoints); got != "one.example.com/A=192.0.2.1" {
		t.Errorf("a failed apply changed the state: %s", got)
	}
	if !errors.Is(s.Err(), ErrUnavailable) {
		t.Errorf("Err: %v", s.Err())
	}
	// The disk works again: so does the store, without a restart.
	s.wal = good
	ro.Close()
	mustApply(t, s, "eu", Changes{Create: []Endpoint{a("three.example.com", "192.0.2.3")}})
	if s.Err() != nil {
		t.Errorf("Err after recovery: %v", s.Err())
	}
	want := s.Set("eu")
	s.Close()
	if got := open(t, dir, Options{}).Set("eu"); !sameSet(got, want) {
		t.Errorf("after reopen %s", names(got.Endpoints))
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
	if len(s.State().Owners()) != 0 {
		t.Error("invalid changes were stored")
	}
	if s.Err() != nil {
		t.Error("invalid input broke the store")
	}
}

func crcOf(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

func TestStoreLegacy(t *testing.T) {
	// A data directory of format 1 (whole JSON Sets) is read and written
	// again in format 2.
	dir := t.TempDir()
	legacyFrameOf := func(kind byte, json string) []byte {
		p := append([]byte{kind}, json...)
		b := make([]byte, 8, 8+len(p))
		b[0], b[1], b[2], b[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		crc := crcOf(p)
		b[4], b[5], b[6], b[7] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
		return append(b, p...)
	}
	snap := legacyFrameOf(3, `{"format":1,"epoch":7,"sets":[{"owner":"us","version":{"epoch":7,"seq":2},"endpoints":[{"dnsName":"a.example.com","targets":["192.0.2.1"],"recordType":"A"}]}]}`)
	wal := append(legacyFrameOf(1, `{"epoch":8}`), legacyFrameOf(2, `{"owner":"eu","version":{"epoch":8,"seq":1},"endpoints":[{"dnsName":"b.example.com","targets":["192.0.2.2"],"recordType":"A"}]}`)...)
	os.WriteFile(filepath.Join(dir, snapName), snap, 0o600)
	os.WriteFile(filepath.Join(dir, walName), wal, 0o600)
	s := open(t, dir, Options{})
	if s.Epoch() <= 8 || s.Head("us").Version != (Version{7, 2}) || names(s.Set("eu").Endpoints) != "b.example.com/A=192.0.2.2" {
		t.Fatalf("converted: epoch %d, us %v, eu %s", s.Epoch(), s.Head("us"), names(s.Set("eu").Endpoints))
	}
	want := []Set{s.Set("eu"), s.Set("us")}
	s.Close()
	s2 := open(t, dir, Options{})
	for _, w := range want {
		if got := s2.Set(w.Owner); !sameSet(got, w) {
			t.Errorf("after conversion and reopen: %+v", got)
		}
	}
}
