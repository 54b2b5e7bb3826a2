package gossip_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

func endpointsOf(t *testing.T, n int, ip string) records.Changes {
	t.Helper()
	var c records.Changes
	for i := range n {
		c.Create = append(c.Create, records.Endpoint{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: "A",
			Targets: []string{ip}, Labels: map[string]string{"owner": "eu"}, ProviderSpecific: []records.Property{{Name: records.PropTier, Value: "1"}}})
	}
	return c
}

func openStore(t *testing.T, dir string) *records.Store {
	t.Helper()
	s, err := records.Open(dir, records.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// hasSet reports whether n holds owner's Set at version v.
func hasSet(n *gossip.Node, owner string, v records.Version) bool {
	for _, s := range n.Records() {
		if s.Owner == owner {
			return s.Version == v
		}
	}
	return false
}

func syncRecords(t *testing.T, n *gossip.Node, st *records.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.SyncRecords(ctx, st); err != nil {
			t.Errorf("sync %s: %v", n.Name(), err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func TestRecordsReplicate(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	s2 := start(t, testConfig(t, "s2", "dc2", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	join(t, s2, s1)
	join(t, a1, s1)
	nodes := []*gossip.Node{s1, s2, a1}
	waitFor(t, 5*time.Second, "3 members", func() bool { return s1.Stats().Members == 3 && s2.Stats().Members == 3 && a1.Stats().Members == 3 })
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:443")}
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}

	// The agent is the owner's writer: its webhook stores, then publishes.
	st := openStore(t, t.TempDir())
	set, err := st.Apply("eu", endpointsOf(t, 40, "192.0.2.10")) // several pages
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel := s2.SubscribeRecords()
	defer cancel()
	if err := a1.PublishRecords(set); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 5*time.Second, "the set on every node", func() bool {
		for _, n := range nodes {
			if !hasSet(n, "eu", set.Version) {
				return false
			}
		}
		return true
	})
	t.Logf("a set of %d records reached every node in %v", len(set.Endpoints), d)
	select {
	case <-ch:
	default:
		t.Error("no record notification on s2")
	}

	// A delete is a newer Set without the record.
	set, err = st.Apply("eu", records.Changes{Delete: []records.Endpoint{{DNSName: "app0.gslb.example.com", RecordType: "A"}}})
	if err != nil {
		t.Fatal(err)
	}
	a1.PublishRecords(set)
	waitFor(t, 5*time.Second, "the delete on every node", func() bool {
		for _, n := range nodes {
			if !hasSet(n, "eu", set.Version) {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		if got := n.Records()[0]; len(got.Endpoints) != 39 {
			t.Errorf("%s holds %d records", n.Name(), len(got.Endpoints))
		}
	}
	// An older Set published again changes nothing.
	old := records.Set{Owner: "eu", Version: records.Version{Epoch: set.Version.Epoch, Seq: 1}, Endpoints: set.Endpoints[:1]}
	if err := s2.PublishRecords(old); err != nil {
		t.Fatal(err)
	}
	if !hasSet(s2, "eu", set.Version) {
		t.Error("an older set replaced a newer one")
	}

	// A late joiner gets records and catalog by push/pull on join. (The
	// Set went directly; the catalog, one page, by gossip: wait for it.)
	waitFor(t, 5*time.Second, "the catalog at s2", func() bool { return hasCatalog(s2, cat) })
	s3 := start(t, testConfig(t, "s3", "dc3", gossip.RoleServer, kf, "test"))
	join(t, s3, s2)
	if !hasSet(s3, "eu", set.Version) {
		t.Error("late joiner lacks the record set right after Join")
	}
	if !hasCatalog(s3, cat) {
		t.Error("late joiner lacks the catalog right after Join")
	}
	if st := s3.Stats(); st.StatesGarbled != 0 {
		t.Errorf("garbled states: %d", st.StatesGarbled)
	}
}

func TestRecordsSurviveRestartOfEveryServer(t *testing.T) {
	kf := keyFile(t, newKey(t))
	dirs := []string{filepath.Join(t.TempDir(), "s1"), filepath.Join(t.TempDir(), "s2")}
	writerDir := t.TempDir()

	// Round 1: the writer publishes; the servers store what they learn.
	w := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	wst := openStore(t, writerDir)
	syncRecords(t, w, wst)
	var servers []*gossip.Node
	var stores []*records.Store
	for i, dir := range dirs {
		n := start(t, testConfig(t, fmt.Sprintf("s%d", i+1), "dc", gossip.RoleServer, kf, "test"))
		join(t, n, w)
		st := openStore(t, dir)
		syncRecords(t, n, st)
		servers, stores = append(servers, n), append(stores, st)
	}
	set, err := wst.Apply("eu", endpointsOf(t, 5, "192.0.2.20"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the set in every server's store", func() bool {
		for _, st := range stores {
			if st.Set("eu").Version != set.Version {
				return false
			}
		}
		return true
	})

	// Every node goes down, the writer for good.
	w.Shutdown()
	wst.Close()
	for i := range servers {
		servers[i].Shutdown()
		stores[i].Close()
	}

	// The servers come back from their data directories alone, and a new
	// server with an empty directory learns the set from them.
	var back []*gossip.Node
	for i, dir := range dirs {
		n := start(t, testConfig(t, fmt.Sprintf("s%d", i+1), "dc", gossip.RoleServer, kf, "test"))
		if i > 0 {
			join(t, n, back[0])
		}
		syncRecords(t, n, openStore(t, dir))
		back = append(back, n)
	}
	fresh := start(t, testConfig(t, "s9", "dc", gossip.RoleServer, kf, "test"))
	freshStore := openStore(t, t.TempDir())
	syncRecords(t, fresh, freshStore)
	join(t, fresh, back[1])
	waitFor(t, 10*time.Second, "the set on the new server, on disk", func() bool {
		return freshStore.Set("eu").Version == set.Version
	})
	if got := freshStore.Set("eu"); len(got.Endpoints) != 5 || got.Digest() != set.Digest() {
		t.Errorf("new server stored %+v", got)
	}
}
