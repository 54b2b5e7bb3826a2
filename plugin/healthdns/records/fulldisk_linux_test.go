package records

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tmpfs mounts a tmpfs of size bytes on a new directory, or skips.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestStoreFullDisk fills a 256 KiB tmpfs: writes then fail with
// ErrUnavailable and change nothing; once space is freed the store takes
// writes again, without a restart, and nothing acknowledged is lost.
func TestStoreFullDisk(t *testing.T) {
	mnt := tmpfs(t, "256k")
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "data")
	s := open(t, dir, Options{})
	record := func(i int) Endpoint {
		return Endpoint{DNSName: fmt.Sprintf("r%d.gslb.example.com", i), RecordType: TypeTXT, Targets: []string{strings.Repeat("x", 200)}}
	}
	acked := 0
	var failed error
	for i := range 5000 {
		if _, err := s.Apply("eu", Changes{Create: []Endpoint{record(i)}}); err != nil {
			failed = err
			break
		}
		acked++
	}
	if failed == nil {
		t.Fatal("5,000 records fit a 256 KiB disk")
	}
	if !errors.Is(failed, ErrUnavailable) || !strings.Contains(failed.Error(), "no space left") {
		t.Fatalf("the write that did not fit: %v", failed)
	}
	if n := s.State().Len("eu"); n != acked {
		t.Fatalf("%d records after %d acknowledged", n, acked)
	}
	// Full, it keeps refusing, and still changes nothing.
	for range 3 {
		if _, err := s.Apply("eu", Changes{Create: []Endpoint{record(acked)}}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("on a full disk: %v", err)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	more := 0
	for i := acked; i < acked+50; i++ {
		if _, err := s.Apply("eu", Changes{Create: []Endpoint{record(i)}}); err != nil {
			t.Fatalf("after freeing space, record %d: %v", i, err)
		}
		more++
	}
	want := s.Set("eu")
	s.Close()
	s2 := open(t, dir, Options{})
	if got := s2.Set("eu"); !sameSet(got, want) || len(got.Endpoints) != acked+more {
		t.Fatalf("after reopen: %d records, want %d", len(got.Endpoints), acked+more)
	}
	t.Logf("a 256 KiB disk took %d records of 200 bytes, refused the next, and after 64 KiB were freed took %d more; none lost", acked, more)
}
