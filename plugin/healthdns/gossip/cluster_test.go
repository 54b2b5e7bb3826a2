package gossip_test

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"

	"github.com/hashicorp/memberlist"
)

// These tests run real memberlist nodes over UDP and TCP on 127.0.0.1,
// with fast timers.

func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

func keyFile(t *testing.T, keys ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, []byte("# test keys\n"+strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testLog passes memberlist's warnings and errors to t.Log until the test
// is cleaned up.
type testLog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (l *testLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done && (os.Getenv("GOSSIP_DEBUG") != "" || !strings.Contains(string(b), "[DEBUG]")) {
		l.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func logTo(t *testing.T) io.Writer {
	l := &testLog{t: t}
	t.Cleanup(func() { l.mu.Lock(); l.done = true; l.mu.Unlock() })
	return l
}

func testConfig(t *testing.T, name, observer string, role gossip.Role, keyFile, label string) gossip.Config {
	return gossip.Config{
		Name: name, Observer: observer, Role: role,
		BindAddr: "127.0.0.1", BindPort: 0,
		KeyFile: keyFile, Label: label,
		GossipInterval:    100 * time.Millisecond,
		PushPullInterval:  time.Second,
		ProbeInterval:     200 * time.Millisecond,
		HeartbeatInterval: 300 * time.Millisecond,
		RejoinInterval:    300 * time.Millisecond,
		LogOutput:         logTo(t),
	}
}

func start(t *testing.T, cfg gossip.Config) *gossip.Node {
	t.Helper()
	n, err := gossip.New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { n.Shutdown() })
	return n
}

func join(t *testing.T, n *gossip.Node, to ...*gossip.Node) {
	t.Helper()
	var addrs []string
	for _, o := range to {
		addrs = append(addrs, o.Addr())
	}
	if _, err := n.Join(addrs...); err != nil {
		t.Fatalf("%s join: %v", n.Name(), err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func catalogTarget(t *testing.T, addr, check string) gossip.CatalogTarget {
	t.Helper()
	var c probe.Check
	var err error
	if rest, ok := strings.CutPrefix(check, "tcp "); ok {
		c, err = probe.ParseTCPCheck(rest)
	} else {
		c, err = probe.ParseURLCheck(check)
	}
	if err != nil {
		t.Fatal(err)
	}
	ct, err := gossip.NewCatalogTarget(probe.Target{Addr: netip.MustParseAddr(addr), Checks: []probe.Check{c},
		Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2})
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func view(n *gossip.Node, node string) (gossip.ObserverView, bool) {
	for _, v := range n.Views() {
		if v.Node == node {
			return v, true
		}
	}
	return gossip.ObserverView{}, false
}

func seesStates(n *gossip.Node, node string, want map[gossip.TargetID]health.State) bool {
	v, ok := view(n, node)
	return ok && maps.Equal(v.States, want)
}

func member(n *gossip.Node, name string) (gossip.Member, bool) {
	for _, m := range n.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return gossip.Member{}, false
}

func hasCatalog(n *gossip.Node, want []gossip.CatalogTarget) bool {
	got := n.Catalog()
	if len(got) != len(want) {
		return false
	}
	ids := map[gossip.TargetID]bool{}
	for _, c := range got {
		ids[c.ID] = true
	}
	for _, c := range want {
		if !ids[c.ID] {
			return false
		}
	}
	return true
}

func TestConverge(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	a2 := start(t, testConfig(t, "a2", "us", gossip.RoleAgent, kf, "test"))
	join(t, a1, s1)
	join(t, a2, a1)
	nodes := []*gossip.Node{s1, a1, a2}
	waitFor(t, 5*time.Second, "3 live members everywhere", func() bool {
		for _, n := range nodes {
			if n.Stats().Members != 3 {
				return false
			}
		}
		return true
	})

	cat := []gossip.CatalogTarget{
		catalogTarget(t, "192.0.2.1", "http://192.0.2.1/healthz"),
		catalogTarget(t, "192.0.2.2", "tcp 192.0.2.2:443"),
		catalogTarget(t, "2001:db8::3", "https://[2001:db8::3]/"),
	}
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 5*time.Second, "catalog on every node", func() bool {
		for _, n := range nodes {
			if !hasCatalog(n, cat) {
				return false
			}
		}
		return true
	})
	t.Logf("catalog of %d targets converged on 3 nodes in %v", len(cat), d)

	ch, unsubscribe := s1.Subscribe()
	defer unsubscribe()
	want := map[string]map[gossip.TargetID]health.State{
		"s1": {cat[0].ID: health.Up, cat[1].ID: health.Up, cat[2].ID: health.Up},
		"a1": {cat[0].ID: health.Up, cat[1].ID: health.Down, cat[2].ID: health.Up},
		"a2": {cat[0].ID: health.Down, cat[1].ID: health.Down},
	}
	for _, n := range nodes {
		n.PublishObservations(want[n.Name()])
	}
	converged := func() bool {
		for _, n := range nodes {
			for obs, states := range want {
				if !seesStates(n, obs, states) {
					return false
				}
			}
		}
		return true
	}
	d = waitFor(t, 5*time.Second, "observations on every node", converged)
	t.Logf("observations of 3 observers converged on 3 nodes in %v", d)
	select {
	case <-ch:
	default:
		t.Error("no change notification")
	}

	// A change is a small delta.
	want["a1"][cat[0].ID] = health.Down
	a1.PublishObservations(want["a1"])
	d = waitFor(t, 5*time.Second, "a1's change on every node", converged)
	t.Logf("one observation change converged on 3 nodes in %v", d)

	for _, n := range nodes {
		for _, v := range n.Views() {
			if !v.Alive || v.State != gossip.MemberAlive || !v.Synced || time.Since(v.LastHeard) > 2*time.Second {
				t.Errorf("%s's view of %s: alive %v state %v synced %v heard %v ago", n.Name(), v.Node, v.Alive, v.State, v.Synced, time.Since(v.LastHeard))
			}
		}
		if m, _ := member(n, "a2"); m.Role != gossip.RoleAgent || m.Observer != "us" {
			t.Errorf("%s: member a2 is %+v", n.Name(), m)
		}
		if st := n.Stats(); st.Garbled+st.Dropped+st.Oversized+st.StatesGarbled > 0 {
			t.Errorf("%s: %+v", n.Name(), st)
		}
	}
	// Heartbeats keep a quiet observer fresh.
	time.Sleep(time.Second)
	if v, _ := view(s1, "a2"); time.Since(v.LastHeard) > 900*time.Millisecond {
		t.Errorf("a2 last heard %v ago, with heartbeats every 300ms", time.Since(v.LastHeard))
	}
}

func TestLateJoinerGetsFullState(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	join(t, a1, s1)
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")}
	if err := s1.PublishCatalog(cat); err != nil {
		t.Fatal(err)
	}
	states := map[gossip.TargetID]health.State{cat[0].ID: health.Down}
	a1.PublishObservations(states)
	waitFor(t, 5*time.Second, "s1 sees a1", func() bool { return seesStates(s1, "a1", states) })

	late := start(t, testConfig(t, "late", "ap", gossip.RoleServer, kf, "test"))
	start := time.Now()
	join(t, late, s1)
	// Join returns after push/pull: the state is there already, not
	// waiting for gossip.
	if !hasCatalog(late, cat) {
		t.Errorf("late joiner has catalog %v right after Join", late.Catalog())
	}
	if !seesStates(late, "a1", states) {
		t.Errorf("late joiner has views %+v right after Join", late.Views())
	}
	t.Logf("late joiner synced by Join in %v", time.Since(start))
}

func TestWrongKeyOrLabelCannotJoin(t *testing.T) {
	k1 := newKey(t)
	kf := keyFile(t, k1)
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "prod"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "prod"))
	join(t, a1, s1)

	intruders := map[string]gossip.Config{
		"wrongkey":   testConfig(t, "wrongkey", "x", gossip.RoleServer, keyFile(t, newKey(t)), "prod"),
		"wronglabel": testConfig(t, "wronglabel", "x", gossip.RoleServer, kf, "staging"),
		"nokey":      testConfig(t, "nokey", "x", gossip.RoleServer, "", "prod"),
	}
	bogus := []gossip.CatalogTarget{catalogTarget(t, "203.0.113.9", "tcp 203.0.113.9:22")}
	for name, cfg := range intruders {
		cfg.Join = []string{s1.Addr(), a1.Addr()}
		n := start(t, cfg)
		if err := n.PublishCatalog(bogus); err != nil {
			t.Fatal(err)
		}
		n.PublishObservations(map[gossip.TargetID]health.State{bogus[0].ID: health.Up})
		_, err := n.Join()
		if err == nil {
			t.Errorf("%s joined", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		// A label mismatch is a bare EOF from memberlist: say what it means.
		if name == "wronglabel" && !strings.Contains(err.Error(), "wrong key or label?") {
			t.Errorf("%s: join error without a hint: %v", name, err)
		}
	}
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")}
	s1.PublishCatalog(cat)
	a1.PublishObservations(map[gossip.TargetID]health.State{cat[0].ID: health.Up})
	waitFor(t, 5*time.Second, "a1's observation at s1", func() bool {
		return seesStates(s1, "a1", map[gossip.TargetID]health.State{cat[0].ID: health.Up})
	})
	// Give the intruders' rejoin loops (every 300ms) and gossip time.
	time.Sleep(1500 * time.Millisecond)
	for _, n := range []*gossip.Node{s1, a1} {
		for _, m := range n.Members() {
			if intruders[m.Name].Name != "" {
				t.Errorf("%s lists intruder %s", n.Name(), m.Name)
			}
		}
		for _, v := range n.Views() {
			if intruders[v.Node].Name != "" {
				t.Errorf("%s has a view of intruder %s", n.Name(), v.Node)
			}
		}
		if !hasCatalog(n, cat) {
			t.Errorf("%s's catalog: %v", n.Name(), n.Catalog())
		}
	}
}

// TestKeyRotation: in the middle of a rotation every node has both keys,
// some with the new one first; every key decrypts, so they all talk.
func TestKeyRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	old := start(t, testConfig(t, "old", "eu", gossip.RoleServer, keyFile(t, k1, k2), "prod"))
	nu := start(t, testConfig(t, "new", "us", gossip.RoleAgent, keyFile(t, k2, k1), "prod"))
	join(t, nu, old)
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")}
	old.PublishCatalog(cat)
	states := map[gossip.TargetID]health.State{cat[0].ID: health.Up}
	nu.PublishObservations(states)
	waitFor(t, 5*time.Second, "both ways", func() bool { return seesStates(old, "new", states) && hasCatalog(nu, cat) })
}

func TestMembershipLeftAndDead(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	s2 := start(t, testConfig(t, "s2", "dc2", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	a2 := start(t, testConfig(t, "a2", "us", gossip.RoleAgent, kf, "test"))
	join(t, s2, s1)
	join(t, a1, s1)
	join(t, a2, s1)
	shared := catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")
	only2 := catalogTarget(t, "192.0.2.2", "tcp 192.0.2.2:80")
	s1.PublishCatalog([]gossip.CatalogTarget{shared})
	s2.PublishCatalog([]gossip.CatalogTarget{shared, only2})
	states := map[gossip.TargetID]health.State{shared.ID: health.Up}
	a1.PublishObservations(states)
	a2.PublishObservations(states)
	waitFor(t, 5*time.Second, "s1 sees both agents and the union catalog", func() bool {
		return seesStates(s1, "a1", states) && seesStates(s1, "a2", states) && len(a1.Catalog()) == 2
	})

	// a2 leaves cleanly.
	if err := a2.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	a2.Shutdown()
	d := waitFor(t, 5*time.Second, "a2 seen as left", func() bool {
		v, _ := view(s1, "a2")
		return v.State == gossip.MemberLeft
	})
	v, _ := view(s1, "a2")
	if v.Alive || v.Observation(shared.ID).State != health.Unknown {
		t.Errorf("left observer: alive %v, observation %v", v.Alive, v.Observation(shared.ID).State)
	}
	t.Logf("leave seen in %v", d)

	// a1 dies without a word.
	a1.Shutdown()
	d = waitFor(t, 10*time.Second, "a1 seen as dead", func() bool {
		v, _ := view(s1, "a1")
		return v.State == gossip.MemberDead
	})
	if v, _ := view(s1, "a1"); v.Alive || v.Observation(shared.ID).State != health.Unknown {
		t.Errorf("dead observer: alive %v, observation %v", v.Alive, v.Observation(shared.ID).State)
	}
	t.Logf("death seen in %v", d)

	// s2 leaves: its catalog goes with it.
	s2.Leave(time.Second)
	s2.Shutdown()
	waitFor(t, 5*time.Second, "s2's targets leave the catalog", func() bool {
		c := s1.Catalog()
		return len(c) == 1 && c[0].ID == shared.ID
	})
	if m, ok := member(s1, "s2"); !ok || m.State != gossip.MemberLeft || m.Role != gossip.RoleServer {
		t.Errorf("s2 as a member: %+v", m)
	}
}

func TestGarbledMessagesDropped(t *testing.T) {
	k := newKey(t)
	kf := keyFile(t, k)
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	a1 := start(t, testConfig(t, "a1", "eu", gossip.RoleAgent, kf, "test"))
	join(t, a1, s1)

	// A plain memberlist node in the cluster that sends junk to s1.
	key, _ := base64.StdEncoding.DecodeString(k)
	mc := memberlist.DefaultLANConfig()
	mc.Name, mc.BindAddr, mc.BindPort, mc.AdvertisePort = "junk", "127.0.0.1", 0, 0
	mc.SecretKey, mc.Label, mc.LogOutput = key, "test", logTo(t)
	mc.ProbeInterval, mc.GossipInterval = 200*time.Millisecond, 100*time.Millisecond
	raw, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Shutdown()
	if _, err := raw.Join([]string{s1.Addr()}); err != nil {
		t.Fatal(err)
	}
	var to *memberlist.Node
	for _, m := range raw.Members() {
		if m.Name == "s1" {
			to = m
		}
	}
	junk := [][]byte{
		{},
		{0xff},
		{1, 1},         // observations, truncated
		{2, 9, 1, 'x'}, // a future wire version
		{1, 1, 1, 'x', 1, 1, 0xff, 0xff, 0xff, 0xff, 0x7f}, // a count far past the end
		[]byte(strings.Repeat("\x03\x01garbage", 50)),
	}
	for _, b := range junk {
		if err := raw.SendBestEffort(to, b); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 4000)
	big[0], big[1] = 2, 1
	if err := raw.SendReliable(to, big); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "junk counted", func() bool {
		st := s1.Stats()
		return st.Garbled >= uint64(len(junk)) && st.Oversized >= 1
	})
	t.Logf("s1 stats after junk: %+v", s1.Stats())

	// The node still works.
	cat := []gossip.CatalogTarget{catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")}
	s1.PublishCatalog(cat)
	states := map[gossip.TargetID]health.State{cat[0].ID: health.Up}
	a1.PublishObservations(states)
	waitFor(t, 5*time.Second, "s1 still converges", func() bool { return seesStates(s1, "a1", states) && hasCatalog(a1, cat) })
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":   "# nothing\n",
		"notb64":  "not base64!\n",
		"badsize": base64.StdEncoding.EncodeToString([]byte("short")) + "\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := gossip.LoadKeyring(p); err == nil {
			t.Errorf("%s key file accepted", name)
		}
	}
	if _, err := gossip.LoadKeyring(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing key file accepted")
	}
	cfg := testConfig(t, strings.Repeat("n", 200), "", gossip.RoleAgent, "", "")
	if _, err := gossip.New(cfg); err == nil {
		t.Error("over-long node name accepted")
	}
	cfg = testConfig(t, "n", "", gossip.Role(9), "", "")
	if _, err := gossip.New(cfg); err == nil {
		t.Error("bad role accepted")
	}
}

// TestVotersSilenceAndWitness: servers and witnesses are voters, agents are
// not; a voter or observer that goes quiet counts as silent within its
// silence window (three heartbeats and two gossip rounds), long before the
// failure detector declares it dead; a voter that leaves stops counting at
// once.
func TestVotersSilenceAndWitness(t *testing.T) {
	kf := keyFile(t, newKey(t))
	s1 := start(t, testConfig(t, "s1", "dc1", gossip.RoleServer, kf, "test"))
	s2 := start(t, testConfig(t, "s2", "dc2", gossip.RoleServer, kf, "test"))
	w := start(t, testConfig(t, "w", "dc3", gossip.RoleWitness, kf, "test"))
	a := start(t, testConfig(t, "a", "dc1", gossip.RoleAgent, kf, "test"))
	for _, n := range []*gossip.Node{s2, w, a} {
		join(t, n, s1)
	}
	target := catalogTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")
	s1.PublishCatalog([]gossip.CatalogTarget{target})
	a.PublishObservations(map[gossip.TargetID]health.State{target.ID: health.Up})
	w.PublishObservations(map[gossip.TargetID]health.State{target.ID: health.Up})
	voter := func(name string) (gossip.VoterView, bool) {
		for _, v := range s1.Voters() {
			if v.Node == name {
				return v, true
			}
		}
		return gossip.VoterView{}, false
	}
	heard := func(name string) bool {
		v, ok := voter(name)
		return ok && time.Now().Before(v.Until())
	}
	up := map[gossip.TargetID]health.State{target.ID: health.Up}
	waitFor(t, 5*time.Second, "s1 hears s2 and the witness as voters, and the agent's view", func() bool {
		return heard("s2") && heard("w") && seesStates(s1, "a", up) && seesStates(s1, "w", up)
	})
	if v, _ := voter("w"); v.Role != gossip.RoleWitness {
		t.Errorf("w's role %v, want witness", v.Role)
	}
	if _, ok := voter("a"); ok {
		t.Error("an agent is listed as a voter")
	}
	if v, _ := view(s1, "w"); v.Role != gossip.RoleWitness || !v.Alive {
		t.Errorf("the witness as an observer: %+v", v)
	}
	silence := s1.Silence()
	if want := 3*300*time.Millisecond + 2*100*time.Millisecond; silence != want {
		t.Errorf("silence window %v, want 3 heartbeats + 2 gossip rounds = %v", silence, want)
	}

	// The witness and the agent die without a word.
	w.Shutdown()
	a.Shutdown()
	killed := time.Now()
	d := waitFor(t, silence+2*time.Second, "the dead witness counts as silent", func() bool { return !heard("w") })
	m, _ := member(s1, "w")
	t.Logf("witness silent %v after it died (window %v); memberlist says %s", d.Round(time.Millisecond), silence, m.State)
	if d > silence+time.Second {
		t.Errorf("silence took %v, want about the window %v", d, silence)
	}
	waitFor(t, silence+2*time.Second, "the dead agent's view goes silent", func() bool {
		v, ok := view(s1, "a")
		return ok && time.Now().After(v.Heard.Add(v.Silence))
	})
	t.Logf("agent silent %v after it died", time.Since(killed).Round(time.Millisecond))
	if !heard("s2") {
		t.Error("s2 went silent too")
	}

	// s2 leaves on purpose: it stops counting as soon as the word arrives.
	if err := s2.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if v, ok := voter("s2"); !ok || !v.Until().IsZero() || !v.Leaving {
		t.Errorf("s2 after its leave: %+v (until %v)", v, v.Until())
	}
}

// TestQuietVoterPinged: a server that stops receiving gossip (heartbeats
// lost while the fan-out goes to members that just died) still hears a
// live voter, by pinging it once it has been quiet for half its window;
// a voter that cannot answer falls silent within its window as before.
func TestQuietVoterPinged(t *testing.T) {
	kf := keyFile(t, newKey(t))
	cfg1, deaf := gossip.WithDeafness(testConfig(t, "s1", "s1", gossip.RoleServer, kf, "test"))
	cfg1.PushPullInterval = time.Hour // news only from heartbeats and pings
	s1 := start(t, cfg1)
	cfg2, cut := gossip.WithCut(testConfig(t, "s2", "s2", gossip.RoleServer, kf, "test"))
	cfg2.PushPullInterval = time.Hour
	s2 := start(t, cfg2)
	join(t, s2, s1)
	s2view := func() gossip.VoterView {
		for _, v := range s1.Voters() {
			if v.Node == "s2" {
				return v
			}
		}
		return gossip.VoterView{}
	}
	heard := func() bool { return time.Now().Before(s2view().Until()) }
	waitFor(t, 5*time.Second, "s1 hears s2", heard)
	silence := s2view().Silence

	deaf.Store(true)
	deafAt := time.Now()
	for time.Since(deafAt) < 3*silence {
		if !heard() {
			t.Fatalf("s1 counted s2 silent %v after it stopped receiving gossip (window %v), though s2 answers pings", time.Since(deafAt).Round(time.Millisecond), silence)
		}
		time.Sleep(20 * time.Millisecond)
	}

	cut.Block(s1.Addr())
	cutAt := time.Now()
	d := waitFor(t, silence+2*time.Second, "s2 cut off falls silent", func() bool { return !heard() })
	t.Logf("deaf s1 kept hearing s2 by pings for %v; cut off, s2 fell silent after %v (window %v)", 3*silence, d.Round(time.Millisecond), silence)
	if d > silence+500*time.Millisecond {
		t.Errorf("silence after the cut took %v, want within the window %v", time.Since(cutAt).Round(time.Millisecond), silence)
	}
}

// TestPingVoters: a ping round refreshes when a voter was last heard
// within a round trip, long before its next heartbeat; across a cut it
// refreshes nothing.
func TestPingVoters(t *testing.T) {
	kf := keyFile(t, newKey(t))
	slow := func(name string) gossip.Config {
		cfg := testConfig(t, name, name, gossip.RoleServer, kf, "test")
		cfg.HeartbeatInterval = 5 * time.Second
		return cfg
	}
	s1 := start(t, slow("s1"))
	cfg2, cut := gossip.WithCut(slow("s2"))
	s2 := start(t, cfg2)
	join(t, s2, s1)
	heardOf := func() time.Time {
		for _, v := range s1.Voters() {
			if v.Node == "s2" {
				return v.Heard
			}
		}
		return time.Time{}
	}
	waitFor(t, 5*time.Second, "s1 hears of s2", func() bool { return !heardOf().IsZero() })
	time.Sleep(300 * time.Millisecond)
	before := heardOf()
	asked := time.Now()
	ended := make(chan struct{})
	s1.PingVoters(func() { close(ended) }) // one voter: one ack
	d := waitFor(t, time.Second, "s2's ack refreshes when s1 heard it", func() bool { return heardOf().After(asked) })
	t.Logf("heard again %v after the ping (last heard %v before it)", d.Round(time.Millisecond), asked.Sub(before).Round(time.Millisecond))
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
		t.Fatal("PingVoters never told of s2's ack")
	}

	cut.Block(s1.Addr())
	time.Sleep(100 * time.Millisecond)
	asked = time.Now()
	s1.PingVoters(nil)
	time.Sleep(500 * time.Millisecond)
	if h := heardOf(); h.After(asked) {
		t.Errorf("s1 heard s2 %v after a ping across the cut", h.Sub(asked))
	}
}

// TestPingVotersDeadDoesNotHoldUp: a voter that just died (memberlist
// still lists it) does not delay the news of the live voter's ack by its
// ping timeout, and a ping already under way to the dead one (the quiet
// voter pings of every heartbeat) does not stop a new call from pinging
// the live one: the survivors of a datacenter confirm a verdict within a
// round trip, not at the next heartbeat.
func TestPingVotersDeadDoesNotHoldUp(t *testing.T) {
	kf := keyFile(t, newKey(t))
	cfg := func(name string) gossip.Config {
		c := testConfig(t, name, name, gossip.RoleServer, kf, "test")
		c.ProbeInterval = 5 * time.Second // a 500ms ping timeout, and no quick death
		c.HeartbeatInterval = 5 * time.Second
		return c
	}
	s1, s2, s3 := start(t, cfg("s1")), start(t, cfg("s2")), start(t, cfg("s3"))
	join(t, s2, s1)
	join(t, s3, s1)
	waitFor(t, 5*time.Second, "3 members", func() bool { return s1.Stats().Members == 3 })
	s3.Shutdown()
	s1.PingVoters(nil) // a ping to s3 now under way, for its whole timeout
	time.Sleep(50 * time.Millisecond)
	for i := range 3 {
		acked := make(chan struct{}, 3)
		asked := time.Now()
		s1.PingVoters(func() { acked <- struct{}{} })
		select {
		case <-acked:
			d := time.Since(asked)
			t.Logf("call %d: told of an ack after %v", i+1, d.Round(time.Millisecond))
			if d > 250*time.Millisecond {
				t.Errorf("call %d: told of s2's ack after %v: held up by the dead s3's ping timeout", i+1, d.Round(time.Millisecond))
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("call %d: never told of s2's ack", i+1)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
