package healthdns

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// Two instances for one zone (a reload's old and new, or two server
// blocks) share the judge, and one's incremental rebuilds forget and
// judge in it (a name replaced in place, a probe that flips). Whichever
// rebuilds next must answer as a full rebuild of its own would: its
// cached account of the judge cannot be trusted once the other touched
// it. (Only the instance whose full round was the judge's last can go
// the incremental way, so the other's next rebuild is a full one.) The instances share the probe pool and the record store as the
// registries make them; the new one has a name more, as a reload that
// adds one does.
func TestSharedJudgeRebuildsAsFull(t *testing.T) {
	dir := t.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte("$ORIGIN jd22.example.org.\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.15.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const nAddrs = 8
	be := newBackends(t, "127.0.15.", nAddrs)
	addrOf, port, flip := be.addr, be.port, be.flip

	const nNames = 4
	corefile := func(extra bool) string {
		var names strings.Builder
		for n := range nNames {
			fallback := []string{"none", "last-good", "all", "192.0.2.1"}[n%4]
			fmt.Fprintf(&names, "name app%d {\n policy %s\n fallback %s\n target %s tier 2 check tcp %s:%d\n}\n", n, []string{"priority", "roundrobin"}[n%2], fallback, addrOf(n), addrOf(n), port)
		}
		if extra {
			fmt.Fprintf(&names, "name extra {\n target %s check tcp %s:%d\n}\n", addrOf(7), addrOf(7), port)
		}
		return fmt.Sprintf("healthdns jd22.example.org {\nzonefile %s\ninterval 100ms\ntimeout 50ms\nrise 1\nfall 1\n%s}", zf, names.String())
	}
	st := records.Memory(records.Options{})
	pool := probe.NewPool()
	var hs []*HealthDNS
	for _, extra := range []bool{false, true} {
		cfg, err := parse(caddy.NewTestController("dns", corefile(extra)))
		if err != nil {
			t.Fatal(err)
		}
		h := newHandler(cfg, pool)
		h.storeRef = &storeRef{store: st}
		h.started = true // syncTargets takes up the records' targets
		release := pool.Acquire(cfg.probeTargets())
		defer func() {
			release()
			for _, r := range h.dynamic {
				r()
			}
		}()
		hs = append(hs, h)
	}
	if hs[0].judge != hs[1].judge {
		t.Fatal("two instances for one zone do not share the judge")
	}
	a := func(name int, addrs ...int) records.Endpoint {
		var ts []string
		for _, i := range addrs {
			ts = append(ts, addrOf(i))
		}
		return recordA(fmt.Sprintf("app%d.jd22.example.org", name), fmt.Sprintf("tcp {addr}:%d", port), ts...)
	}
	var c records.Changes
	for n := range nNames {
		c.Create = append(c.Create, a(n, (n+1)%nAddrs, (n+2)%nAddrs))
	}
	if _, err := st.Apply("east", c); err != nil {
		t.Fatal(err)
	}

	keys := map[string]bool{}
	for i := range nAddrs {
		keys[fmt.Sprintf("%s|tcp %s:%d|100ms/50ms/1/1", addrOf(i), addrOf(i), port)] = true
	}
	statuses := func() string {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			s := pool.Status(k)
			fmt.Fprintf(&b, "%s %v %v\n", k, s.State, s.Checked)
		}
		return b.String()
	}
	settled := func() { t.Helper(); be.settled(pool, hs...) }
	for _, h := range hs {
		h.rebuild()
	}
	settled()
	for _, h := range hs {
		h.rebuild()
	}

	rng := rand.New(rand.NewPCG(22, 15))
	change := func() (what []string) {
		kind := rng.IntN(3)
		if kind == 0 || kind == 2 {
			i := rng.IntN(nAddrs)
			flip(i)
			what = append(what, fmt.Sprintf("flip %s", addrOf(i)))
		}
		if kind == 1 || kind == 2 {
			// A name replaced in place: an incremental rebuild forgets
			// its old targets' verdicts in the shared judge.
			n := rng.IntN(nNames)
			x, y := rng.IntN(nAddrs), rng.IntN(nAddrs)
			if _, err := st.Apply("east", records.Changes{UpdateNew: []records.Endpoint{a(n, x, y)}}); err != nil {
				t.Fatal(err)
			}
			what = append(what, fmt.Sprintf("app%d -> %s %s", n, addrOf(x), addrOf(y)))
		}
		settled()
		return what
	}
	fast, crossed := 0, 0
	last := 0 // the instance that rebuilt last
	for step := 0; step < 28; step++ {
		what := change()
		hi := last
		if rng.IntN(2) == 0 {
			// The other instance takes over: the last one's
			// incremental rebuild of this change is the last word in
			// the judge, and then something more changes.
			r0 := hs[last].judge.Rounds()
			hs[last].rebuild()
			if hs[last].judge.Rounds() == r0 {
				fast++
			}
			what = append(what, fmt.Sprintf("rebuilt by instance %d", last))
			what = append(what, change()...)
			hi = 1 - last
		}
		h := hs[hi]
		for try := 0; ; try++ {
			before := statuses()
			r0 := h.judge.Rounds()
			h.rebuild()
			wasFast := h.judge.Rounds() == r0
			got := h.snap.Load()
			gotVerdicts := verdictsOf(h)
			h.inc.ok = false
			h.rebuild()
			if statuses() != before {
				// A probe round landed in between: compare again.
				if try > 20 {
					t.Fatalf("step %d: the probes never held still for two rebuilds", step)
				}
				settled()
				continue
			}
			if wasFast {
				fast++
			}
			if hi != last && try == 0 {
				crossed++
			}
			if want := verdictsOf(h); want != gotVerdicts {
				t.Fatalf("step %d (%s), instance %d: after its rebuild:\n%s\nafter a full one:\n%s", step, strings.Join(what, ", "), hi, gotVerdicts, want)
			}
			full := h.snap.Load()
			for _, n := range h.names {
				if g, w := dynOf(got, n.FQDN), dynOf(full, n.FQDN); g != w {
					t.Fatalf("step %d (%s), instance %d: %s: its rebuild answers %s, a full one %s", step, strings.Join(what, ", "), hi, n.FQDN, g, w)
				}
			}
			break
		}
		last = hi
	}
	t.Logf("%d incremental rebuilds, %d switches", fast, crossed)
	if fast < 10 || crossed < 6 {
		t.Fatalf("%d incremental rebuilds, %d switches of instance: too few to tell", fast, crossed)
	}
}
