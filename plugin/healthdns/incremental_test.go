package healthdns

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
)

// The rebuilds that judge only what changed (rebuildSome) decide as a
// full rebuild would. A server (probe off) hears three agents over real
// gossip; after each random change of the agents' observations, the
// server rebuilds the incremental way, then judges everything again from
// scratch: the full round must change no verdict and build the very same
// snapshot (snapshot.Build returns the one it is given when every name's
// input is the same).
func TestRebuildSomeDecidesAsRebuildAll(t *testing.T) {
	dir := t.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte("$ORIGIN example.org.\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.12.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var names strings.Builder
	const nNames, perName = 40, 4
	policies := []string{"roundrobin", "priority", "weighted"}
	for n := range nNames {
		fmt.Fprintf(&names, "name n%d {\n policy %s\n quorum majority\n", n, policies[n%len(policies)])
		if n%5 == 0 {
			names.WriteString(" fallback none\n")
		}
		for i := range perName {
			a := fmt.Sprintf("10.0.%d.%d", n, i)
			fmt.Fprintf(&names, " target %s tier %d weight %d check tcp %s:443\n", a, 1+i%2, 1+i, a)
		}
		names.WriteString("}\n")
	}
	addr := freeAddrOn(t, "127.0.12.1")
	corefile := fmt.Sprintf("healthdns example.org {\nzonefile %s\ninterval 1s\ntimeout 500ms\n%scluster {\nname s1\nbind %s\ninsecure\nprobe off\ngossip-interval 20ms\npushpull-interval 1s\n}\n}", zf, names.String(), addr)
	cfg, err := parse(caddy.NewTestController("dns", corefile))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(cfg, probe.NewPool())
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	defer h.stop()

	var agents []*gossip.Node
	for i := range 3 {
		a, err := gossip.New(gossip.Config{
			Name: fmt.Sprintf("agent%d", i), Observer: fmt.Sprintf("site%d", i), Role: gossip.RoleAgent,
			BindAddr: fmt.Sprintf("127.0.12.%d", 2+i), BindPort: 0, LogOutput: io.Discard,
			GossipInterval: 20 * time.Millisecond, PushPullInterval: time.Second,
			HeartbeatInterval: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Shutdown()
		if _, err := a.Join(addr); err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
	}
	var ids []gossip.TargetID
	for deadline := time.Now().Add(10 * time.Second); len(ids) < nNames*perName && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ids = ids[:0]
		for _, c := range agents[len(agents)-1].Catalog() {
			ids = append(ids, c.ID)
		}
	}
	if len(ids) != nNames*perName {
		t.Fatalf("the agents learnt %d of %d targets", len(ids), nNames*perName)
	}
	states := make([]map[gossip.TargetID]health.State, len(agents))
	for i := range states {
		states[i] = map[gossip.TargetID]health.State{}
		for _, id := range ids {
			states[i][id] = health.Up
		}
		agents[i].PublishObservations(states[i])
	}
	// The server sees every observation before the changes begin.
	waitViews := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			same := 0
			for _, v := range h.member.node.Views() {
				for i, a := range agents {
					if v.Node == a.Name() && equalStates(v.States, states[i]) {
						same++
					}
				}
			}
			if same == len(agents) {
				return
			}
		}
		t.Fatal("the server's views never caught up with the agents")
	}
	waitViews()
	h.rebuild()

	rng := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for step := range 60 {
		// A few targets change at one or two agents, sometimes at all
		// (a verdict moves), sometimes at one (it does not).
		k := 1 + rng.IntN(6)
		for range k {
			id := ids[rng.IntN(len(ids))]
			st := health.Up
			if rng.IntN(2) == 0 {
				st = health.Down
			}
			for i := range agents {
				if step%3 == 0 || rng.IntN(2) == 0 {
					states[i][id] = st
				}
			}
		}
		for i, a := range agents {
			a.PublishObservations(states[i])
		}
		waitViews()
		// Now and then both rebuilds run later than now, with no news:
		// some views are past their silence (340 ms), some not yet.
		at := time.Now()
		if step%7 == 3 {
			at = at.Add(time.Duration(200+rng.IntN(300)) * time.Millisecond)
		}
		h.mu.Lock()
		r0 := h.judge.Rounds()
		h.mu.Unlock()
		h.rebuildAt(at)
		h.mu.Lock()
		rounds := h.judge.Rounds()
		wasFast := rounds == r0
		h.mu.Unlock()
		got := h.snap.Load()
		gotVerdicts := verdictsOf(h)

		h.mu.Lock()
		h.inc.ok = false
		h.mu.Unlock()
		h.rebuildAt(at)
		h.mu.Lock()
		fullRounds := h.judge.Rounds()
		h.mu.Unlock() // before any Fatal: the deferred h.stop takes h.mu
		if fullRounds == rounds {
			t.Fatal("the forced full rebuild did not run a full round")
		}
		if want := verdictsOf(h); want != gotVerdicts {
			t.Fatalf("step %d: after the incremental rebuild:\n%s\nafter a full one:\n%s", step, gotVerdicts, want)
		}
		full := h.snap.Load()
		h.mu.Lock()
		ns := h.names // the started server rebuilds too
		h.mu.Unlock()
		for _, n := range ns {
			ga, wa := dynOf(got, n.FQDN), dynOf(full, n.FQDN)
			if ga != wa {
				t.Fatalf("step %d: %s: the incremental rebuild answers %s, a full one %s", step, n.FQDN, ga, wa)
			}
		}
		if wasFast {
			fast++
		}
	}
	if fast < 40 {
		t.Fatalf("only %d of 60 rebuilds after a change were incremental", fast)
	}

	// A site dies whole: its agent falls silent with no news, and its
	// views must stop counting within its silence window, by time alone,
	// while the rebuilds go on the incremental way. A target that agents
	// 0 and 2 see down and agent 1 up is down; with agent 2 gone it is up
	// (one up, one down is no majority for down).
	states[0][ids[0]], states[1][ids[0]], states[2][ids[0]] = health.Down, health.Up, health.Down
	for i, a := range agents {
		a.PublishObservations(states[i])
	}
	waitViews()
	h.rebuild()
	key := ""
	h.mu.Lock()
	for _, n := range h.names {
		for _, tg := range n.Targets {
			if tg.ID == ids[0] {
				key = verdictKey(n, tg)
			}
		}
	}
	v := h.judge.Verdict(key).State
	h.mu.Unlock()
	if v != health.Down {
		t.Fatalf("%s is %v before its site dies, want down", key, v)
	}
	died := time.Now()
	agents[2].Shutdown()
	limit := agents[2].Silence() + time.Second
	for {
		h.rebuild()
		h.mu.Lock()
		v := h.judge.Verdict(key).State
		h.mu.Unlock()
		if v == health.Up {
			t.Logf("the dead site's view stopped counting %s after it died (silence %s)", time.Since(died).Round(time.Millisecond), agents[2].Silence())
			break
		}
		if time.Since(died) > limit {
			t.Fatalf("%s still %v %s after its site died (silence %s): the dead site's view still counts", key, v, time.Since(died).Round(time.Millisecond), agents[2].Silence())
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := verdictsOf(h)
	h.mu.Lock()
	h.inc.ok = false
	h.mu.Unlock()
	h.rebuild()
	if want := verdictsOf(h); want != got {
		t.Fatalf("after a site died: after the incremental rebuild:\n%s\nafter a full one:\n%s", got, want)
	}
}

func equalStates(a, b map[gossip.TargetID]health.State) bool {
	n := 0
	for id, s := range b {
		if s == health.Unknown {
			continue
		}
		n++
		if a[id] != s {
			return false
		}
	}
	return n == len(a)
}

// verdictsOf lists every target's verdict state.
func verdictsOf(h *HealthDNS) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, n := range h.names {
		for _, t := range n.Targets {
			fmt.Fprintf(&b, "%s %s %s\n", n.FQDN, t.Probe.Addr, h.judge.Verdict(verdictKey(n, t)).State)
		}
	}
	return b.String()
}

// dynOf describes a name's built answers: the addresses and outcomes.
func dynOf(s *snapshot.Snapshot, fqdn string) string {
	d := s.Dynamic(fqdn)
	if d == nil {
		return "none"
	}
	return fmt.Sprintf("A %v %v AAAA %v %v", d.A.Addrs(), d.A.Outcome, d.AAAA.Addrs(), d.AAAA.Outcome)
}

// Records that change in place (another address for a name, a TXT
// record) are built the incremental way, and answer as a full rebuild
// would. The handler is never started: nothing is probed.
func TestRebuildSomeFollowsRecords(t *testing.T) {
	st := records.Memory(records.Options{})
	h := scaleHandler(t, st)
	a := func(owner string, name, addr int) records.Endpoint {
		return recordA(fmt.Sprintf("app%d.gslb.example.org", name), "tcp {addr}:443", fmt.Sprintf("192.0.2.%d", addr))
	}
	txt := func(owner string, name, v int) records.Endpoint {
		return records.Endpoint{DNSName: fmt.Sprintf("a-app%d.gslb.example.org", name), RecordType: "TXT", Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=%s,v=%d"`, owner, v)}}
	}
	owners := []string{"east", "west", "south"}
	for _, o := range owners {
		var c records.Changes
		for n := range 30 {
			c.Create = append(c.Create, a(o, n, 1+n%4), txt(o, n, 0))
		}
		if _, err := st.Apply(o, c); err != nil {
			t.Fatal(err)
		}
	}
	h.rebuild()
	rng := rand.New(rand.NewPCG(3, 4))
	fast := 0
	inc0, first0 := rebuildCount("incremental"), rebuildCount("first")
	for step := range 80 {
		o := owners[rng.IntN(len(owners))]
		var c records.Changes
		switch rng.IntN(4) {
		case 0, 1:
			c.UpdateNew = []records.Endpoint{a(o, rng.IntN(30), 1+rng.IntN(6))}
		case 2:
			c.UpdateNew = []records.Endpoint{txt(o, rng.IntN(30), step)}
		default:
			c.Create = []records.Endpoint{a(o, 100+step, 1+rng.IntN(4))} // a new name
		}
		if _, err := st.Apply(o, c); err != nil {
			t.Fatal(err)
		}
		r0 := h.judge.Rounds()
		h.rebuild()
		if h.judge.Rounds() == r0 {
			fast++
		}
		got := h.snap.Load()
		h.inc.ok = false
		h.rebuild()
		full := h.snap.Load()
		for _, n := range h.names {
			if g, w := dynOf(got, n.FQDN), dynOf(full, n.FQDN); g != w {
				t.Fatalf("step %d (%+v): %s: the incremental rebuild answers %s, a full one %s", step, c, n.FQDN, g, w)
			}
		}
		for n := range 30 {
			name := fmt.Sprintf("a-app%d.gslb.example.org.", n)
			if g, w := txtOf(got, name), txtOf(full, name); g != w {
				t.Fatalf("step %d: %s TXT: the incremental rebuild answers %s, a full one %s", step, name, g, w)
			}
		}
	}
	if fast < 40 {
		t.Fatalf("only %d of 80 rebuilds after a record change were incremental", fast)
	}
	// The metric says what kind each rebuild was: the fast ones
	// incremental, the forced full ones "first".
	if got := rebuildCount("incremental") - inc0; int(got) != fast {
		t.Errorf("rebuilds_total{kind=incremental} rose by %v, %d rebuilds were", got, fast)
	}
	if got := rebuildCount("first") - first0; got != 80 {
		t.Errorf("rebuilds_total{kind=first} rose by %v for the 80 forced full rebuilds", got)
	}
}

func txtOf(s *snapshot.Snapshot, name string) string {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	r := new(dns.Msg)
	r.SetReply(m)
	s.Answer(r, name, dns.TypeTXT, 0, policy.Client{})
	return fmt.Sprint(r.Answer)
}

// The rebuilds that judge only what changed decide as a full rebuild
// would on a single server that probes by itself, while its own probes
// flip (backends stop and start answering) and the webhook replaces the
// records' addresses of Corefile names in place, sometimes in the same
// rebuild as a flip, sometimes back to an address let go a moment ago
// (the pool still knows its last result). After each change the server
// rebuilds the incremental way, then judges everything again: the full
// round must find the same verdicts and build the same answers. A probe
// round that lands between the two makes the comparison moot: the step
// is compared again.
func TestRebuildSomeFollowsOwnProbes(t *testing.T) {
	dir := t.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte("$ORIGIN rb22.example.org.\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.13.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const nAddrs = 8
	be := newBackends(t, "127.0.13.", nAddrs)
	addrOf, port, flip := be.addr, be.port, be.flip

	const nNames = 4
	var names strings.Builder
	for n := range nNames {
		// One target of the Corefile's own; the records add the others.
		fallback := []string{"none", "last-good", "all", "192.0.2.1"}[n%4]
		fmt.Fprintf(&names, "name app%d {\n policy %s\n fallback %s\n target %s tier 2 check tcp %s:%d\n}\n", n, []string{"priority", "roundrobin"}[n%2], fallback, addrOf(n), addrOf(n), port)
	}
	corefile := fmt.Sprintf("healthdns rb22.example.org {\nzonefile %s\ninterval 250ms\ntimeout 100ms\nrise 1\nfall 1\n%s}", zf, names.String())
	cfg, err := parse(caddy.NewTestController("dns", corefile))
	if err != nil {
		t.Fatal(err)
	}
	st := records.Memory(records.Options{})
	h := newHandler(cfg, probe.NewPool())
	h.storeRef = &storeRef{store: st}
	h.started = true // syncTargets takes up the records' targets
	release := h.pool.Acquire(cfg.probeTargets())
	defer func() {
		release()
		for _, r := range h.dynamic {
			r()
		}
	}()
	a := func(name int, addrs ...int) records.Endpoint {
		var ts []string
		for _, i := range addrs {
			ts = append(ts, addrOf(i))
		}
		return recordA(fmt.Sprintf("app%d.rb22.example.org", name), fmt.Sprintf("tcp {addr}:%d", port), ts...)
	}
	var c records.Changes
	for n := range nNames {
		c.Create = append(c.Create, a(n, (n+1)%nAddrs, (n+2)%nAddrs))
	}
	if _, err := st.Apply("east", c); err != nil {
		t.Fatal(err)
	}

	// keys are the probe keys the names may have: what a rebuild reads.
	keys := map[string]bool{}
	for i := range nAddrs {
		keys[fmt.Sprintf("%s|tcp %s:%d|250ms/100ms/1/1", addrOf(i), addrOf(i), port)] = true
	}
	noteKeys := func() {
		for _, n := range h.names {
			for _, tg := range n.Targets {
				if !keys[tg.ProbeKey()] {
					t.Fatalf("probe key %q: not one the test knows", tg.ProbeKey())
				}
			}
		}
	}
	statuses := func() string {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			s := h.pool.Status(k)
			fmt.Fprintf(&b, "%s %v %v\n", k, s.State, s.Checked)
		}
		return b.String()
	}
	settled := func() { t.Helper(); be.settled(h.pool, h) }
	h.rebuild()
	noteKeys()
	settled()
	h.rebuild()

	// judgedAll checks, after a full round, that every target's verdict
	// is what its probe says now (this server is the only observer).
	judgedAll := func(when string) {
		t.Helper()
		for _, n := range h.names {
			for _, tg := range n.Targets {
				want := h.pool.Status(tg.ProbeKey()).State
				if got := h.judge.Verdict(verdictKey(n, tg)).State; got != want {
					t.Fatalf("%s: after a full round %s %s is %v, its probe says %v", when, n.FQDN, tg.Probe.Addr, got, want)
				}
			}
		}
	}
	// A name moved to other addresses, then back to its own alone; then
	// that one stops answering. A full round judges every target from
	// what its probe says now: an oracle that does not lean on
	// rebuildAll, which the comparisons below take as the truth.
	for _, to := range [][]int{{5, 6}, {0}} {
		if _, err := st.Apply("east", records.Changes{UpdateNew: []records.Endpoint{a(0, to...)}}); err != nil {
			t.Fatal(err)
		}
		h.rebuild()
		settled()
		h.rebuild()
	}
	flip(0)
	settled()
	h.inc.ok = false
	h.rebuild()
	judgedAll("app0 back on its own address, which stopped answering")

	rng := rand.New(rand.NewPCG(22, 1))
	fast, compared := 0, 0
	for step := 0; step < 60; step++ {
		var what []string
		kind := rng.IntN(4)
		at := time.Time{} // now
		if kind == 3 {
			// No news, time alone: some of the own results stop
			// counting (2 × 250 ms + 100 ms), some not yet.
			jump := time.Duration(200+rng.IntN(600)) * time.Millisecond
			at = time.Now().Add(jump)
			what = append(what, fmt.Sprintf("%s later", jump))
		}
		rebuild := func() {
			if at.IsZero() {
				h.rebuild()
			} else {
				h.rebuildAt(at)
			}
		}
		if kind == 0 || kind == 2 { // a backend stops or starts answering
			i := rng.IntN(nAddrs)
			flip(i)
			what = append(what, fmt.Sprintf("flip %s", addrOf(i)))
		}
		if kind == 1 || kind == 2 { // the records of a name move
			n := rng.IntN(nNames)
			x, y := rng.IntN(nAddrs), rng.IntN(nAddrs)
			if _, err := st.Apply("east", records.Changes{UpdateNew: []records.Endpoint{a(n, x, y)}}); err != nil {
				t.Fatal(err)
			}
			what = append(what, fmt.Sprintf("app%d -> %s %s", n, addrOf(x), addrOf(y)))
		}
		if kind == 0 || kind == 2 {
			// Wait for the probes of the names as they were: the flip
			// and the record change land in one rebuild.
			settled()
		}
		if kind == 0 && rng.IntN(2) == 0 {
			// A full round first (something it cannot follow changed,
			// a view, say): it must judge every target from what the
			// probes say now, with nothing left to the incremental one.
			h.inc.ok = false
			h.rebuild()
			judgedAll(fmt.Sprintf("step %d (%s)", step, strings.Join(what, ", ")))
		}
		for try := 0; ; try++ {
			before := statuses()
			r0 := h.judge.Rounds()
			rebuild()
			wasFast := h.judge.Rounds() == r0
			got := h.snap.Load()
			gotVerdicts := verdictsOf(h)
			noteKeys()
			h.inc.ok = false
			rebuild()
			if statuses() != before {
				// A round landed in between: compare once all agree.
				if try > 20 {
					t.Fatalf("step %d: the probes never held still for two rebuilds", step)
				}
				settled()
				continue
			}
			compared++
			if wasFast {
				fast++
			}
			if want := verdictsOf(h); want != gotVerdicts {
				t.Fatalf("step %d (%s): after the incremental rebuild:\n%s\nafter a full one:\n%s", step, strings.Join(what, ", "), gotVerdicts, want)
			}
			full := h.snap.Load()
			for _, n := range h.names {
				if g, w := dynOf(got, n.FQDN), dynOf(full, n.FQDN); g != w {
					t.Fatalf("step %d (%s): %s: the incremental rebuild answers %s, a full one %s", step, strings.Join(what, ", "), n.FQDN, g, w)
				}
			}
			break
		}
		if kind == 1 || kind == 2 {
			settled() // the new addresses' probes have run: the next step starts from agreement
			h.rebuild()
		}
	}
	if fast < 30 {
		t.Fatalf("only %d of %d compared rebuilds were incremental", fast, compared)
	}
	// The questions of the targets the records let go are dropped by the
	// next full round: a name replaced in place for days must not grow
	// the rounds' work.
	if len(h.inc.qlist) != len(h.inc.qs) {
		t.Errorf("a full round still holds %d questions for %d asked", len(h.inc.qlist), len(h.inc.qs))
	}
}

// When a records' change cannot be patched into the snapshot (a TXT
// record removed: its name leaves the zone), the rebuild builds every
// name again from what the last snapshot says each untouched name was
// built from, and from the new input of the names it touched: the
// answers must be a full rebuild's, the changed address among them and
// no untouched name's answer lost.
func TestRebuildSomeBuildsFromTheSnapshotsInputs(t *testing.T) {
	st := records.Memory(records.Options{})
	h := scaleHandler(t, st)
	a := func(name, addr int) records.Endpoint {
		return recordA(fmt.Sprintf("app%d.gslb.example.org", name), "tcp {addr}:443", fmt.Sprintf("192.0.2.%d", addr))
	}
	txt := func(name int) records.Endpoint {
		return records.Endpoint{DNSName: fmt.Sprintf("a-app%d.gslb.example.org", name), RecordType: "TXT", Targets: []string{`"heritage=external-dns,external-dns/owner=east"`}}
	}
	var c records.Changes
	for n := range 20 {
		c.Create = append(c.Create, a(n, 1+n%4), txt(n))
	}
	if _, err := st.Apply("east", c); err != nil {
		t.Fatal(err)
	}
	h.rebuild()
	for step := range 10 {
		addr := 1 + (11+step)%4 // another of the addresses the names have: the verdict groups stay
		c := records.Changes{Delete: []records.Endpoint{txt(step)}, UpdateNew: []records.Endpoint{a(10+step, addr)}}
		if _, err := st.Apply("east", c); err != nil {
			t.Fatal(err)
		}
		r0 := h.judge.Rounds()
		h.rebuild()
		if h.judge.Rounds() != r0 {
			t.Fatalf("step %d: a record change judged everything again", step)
		}
		got := h.snap.Load()
		if g := dynOf(got, fmt.Sprintf("app%d.gslb.example.org.", 10+step)); !strings.Contains(g, fmt.Sprintf("[192.0.2.%d]", addr)) {
			t.Fatalf("step %d: the changed name answers %s", step, g)
		}
		h.inc.ok = false
		h.rebuild()
		full := h.snap.Load()
		for _, n := range h.names {
			if g, w := dynOf(got, n.FQDN), dynOf(full, n.FQDN); g != w {
				t.Fatalf("step %d: %s: the incremental rebuild answers %s, a full one %s", step, n.FQDN, g, w)
			}
		}
		if len(h.names) != 20 {
			t.Fatalf("step %d: %d names, want 20", step, len(h.names))
		}
		for n := range 20 {
			name := fmt.Sprintf("a-app%d.gslb.example.org.", n)
			if g, w := txtOf(got, name), txtOf(full, name); g != w || (n <= step) != (g == "[]") {
				t.Fatalf("step %d: %s TXT: the incremental rebuild answers %s, a full one %s", step, name, g, w)
			}
		}
	}
}

// rebuildCount reads rebuilds_total{kind}.
func rebuildCount(kind string) float64 {
	var m dto.Metric
	if err := rebuilds.WithLabelValues(kind).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
