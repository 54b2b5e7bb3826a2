package healthdns

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
)

// TestRoster: without a servers option a server counts itself and the
// voters heard within forget-after; the count survives a restart through
// the data directory, drops a voter that left at once and one silent past
// forget-after only then.
func TestRoster(t *testing.T) {
	dir := t.TempDir()
	day := 24 * time.Hour
	t0 := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	r, err := loadRoster(dir, "dns1", day)
	if err != nil || r.count() != 1 {
		t.Fatalf("fresh roster: count %d, %v", r.count(), err)
	}
	r.heard("dns1", gossip.RoleServer, t0) // itself: always counted, never stored
	r.heard("dns2", gossip.RoleServer, t0)
	r.heard("w1", gossip.RoleWitness, t0.Add(time.Hour))
	if r.count() != 3 || !r.due(t0) {
		t.Fatalf("count %d due %v, want 3 and a write due", r.count(), r.due(t0))
	}
	if err := r.save(t0); err != nil {
		t.Fatal(err)
	}
	if r.due(t0.Add(time.Second)) {
		t.Error("a write is due right after one, with nothing new")
	}

	// Restarted: the voters it cannot hear yet still count.
	r, err = loadRoster(dir, "dns1", day)
	if err != nil || !slices.Equal(r.names(), []string{"dns2", "w1"}) || r.voters["w1"].Role != "witness" {
		t.Fatalf("reloaded: %v %+v, %v", r.names(), r.voters, err)
	}

	// dns2 silent for a day and a second is forgotten; w1 is not yet.
	if gone := r.forget(t0.Add(day + time.Second)); !slices.Equal(gone, []string{"dns2"}) || r.count() != 2 {
		t.Errorf("forget: %v, count %d", gone, r.count())
	}
	// w1 leaves on purpose: dropped at once.
	r.left("w1")
	if r.count() != 1 || !r.dirty {
		t.Errorf("after w1 left: count %d dirty %v", r.count(), r.dirty)
	}

	// A damaged file is said and replaced, never fatal.
	if err := os.WriteFile(filepath.Join(dir, rosterFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = loadRoster(dir, "dns1", day)
	if err == nil || !strings.Contains(err.Error(), "damaged") || r.count() != 1 {
		t.Errorf("damaged file: count %d, %v", r.count(), err)
	}
	// Without a data directory nothing is written.
	r, _ = loadRoster("", "dns1", day)
	r.heard("dns2", gossip.RoleServer, t0)
	if r.due(t0) {
		t.Error("a roster without a directory wants a write")
	}
}
