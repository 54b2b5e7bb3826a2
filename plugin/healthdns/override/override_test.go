package override

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

func TestParseSelector(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "192.0.2.10", want: "addr=192.0.2.10"},
		{in: "::ffff:192.0.2.10", want: "addr=192.0.2.10"},
		{in: "2001:DB8::1", want: "addr=2001:db8::1"},
		{in: "App.Gslb.Example.com./*", want: "name=app.gslb.example.com"},
		{in: "*/10.1.*", want: "addr=10.1.*"},
		{in: "app.*/192.0.2.1", want: "addr=192.0.2.1,name=app.*"},
		{in: "owner=east", want: "owner=east"},
		{in: " name=app.* , owner=east ", want: "name=app.*,owner=east"},
		{in: "owner=east,name=app.*", want: "name=app.*,owner=east"},
		{in: "region=eu-west", want: "region=eu-west"},
		{in: "", err: "empty selector"},
		{in: "*/*", err: "selects every target"},
		{in: "name=*", err: "selects every target"},
		{in: "app.example.com", err: "want an address"},
		{in: "color=red", err: "unknown key"},
		{in: "owner=a,owner=b", err: "given twice"},
		{in: "name=[a", err: "bad glob"},
		{in: "owner=e*", err: "plain name"},
		{in: strings.Repeat("a", 400) + "/*", err: "longer than"},
		{in: "/\v00", err: "no spaces"},
		{in: "owner=a b", err: "no spaces"},
		{in: "../", err: "empty label"},
		{in: "name=.app", err: "empty label"},
	} {
		s, err := ParseSelector(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSelector(%q) = %v, %v; want error with %q", tc.in, s, err, tc.err)
			}
			continue
		}
		if err != nil || s.String() != tc.want {
			t.Errorf("ParseSelector(%q) = %q, %v; want %q", tc.in, s, err, tc.want)
			continue
		}
		if again, err := ParseSelector(s.String()); err != nil || again != s {
			t.Errorf("ParseSelector(%q) does not round-trip: %v %v", s, again, err)
		}
	}
}

func TestMatch(t *testing.T) {
	app := Target{Name: "app.gslb.example.com.", Addr: netip.MustParseAddr("192.0.2.10"), Owner: "east"}
	v6 := Target{Name: "app.gslb.example.com.", Addr: netip.MustParseAddr("2001:db8::10")}
	for _, tc := range []struct {
		sel  string
		t    Target
		want bool
	}{
		{"192.0.2.10", app, true},
		{"192.0.2.11", app, false},
		{"*/192.0.2.*", app, true},
		{"*/10.*", app, false},
		{"app.gslb.example.com/*", app, true},
		{"*.gslb.example.com/*", app, true},
		{"web.*/*", app, false},
		{"owner=east", app, true},
		{"owner=west", app, false},
		{"owner=east", v6, false},
		{"owner=east,name=app.*", app, true},
		{"owner=east,name=web.*", app, false},
		{"region=eu", app, false}, // targets carry no region yet
		{"region=eu", Target{Name: app.Name, Addr: app.Addr, Region: "eu"}, true},
		{"2001:db8::10", v6, true},
		{"*/2001:db8::*", v6, true},
	} {
		s, err := ParseSelector(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Match(tc.t); got != tc.want {
			t.Errorf("%q matches %s %s owner %q: %v, want %v", tc.sel, tc.t.Name, tc.t.Addr, tc.t.Owner, got, tc.want)
		}
	}
}

func entry(sel string, st State, at time.Time, node string) Entry {
	s, err := ParseSelector(sel)
	if err != nil {
		panic(err)
	}
	e := Entry{Selector: s, State: st, At: at, Node: node}
	if st == None {
		e.Until = at
	}
	return e
}

func TestMergeLastWriterWins(t *testing.T) {
	drain := entry("192.0.2.10", Drain, t0, "dns1")
	for _, tc := range []struct {
		name string
		add  Entry
		news bool
		want State
	}{
		{"a newer clear replaces", entry("192.0.2.10", None, t0.Add(time.Second), "dns2"), true, None},
		{"an older entry does not", entry("192.0.2.10", Down, t0.Add(-time.Second), "dns2"), false, Drain},
		{"the same entry again is no news", drain, false, Drain},
		{"same time: the greater node wins", entry("192.0.2.10", Up, t0, "dns2"), true, Up},
		{"same time: the lesser node loses", entry("192.0.2.10", Up, t0, "dns0"), false, Drain},
		{"another selector adds", entry("192.0.2.11", Down, t0.Add(-time.Hour), "dns0"), true, Drain},
	} {
		set, _ := Merge(map[string]Entry{}, drain)
		before := len(set)
		got, news := Merge(set, tc.add)
		if (len(news) > 0) != tc.news {
			t.Errorf("%s: news %v, want %v", tc.name, news, tc.news)
		}
		if got["addr=192.0.2.10"].State != tc.want {
			t.Errorf("%s: state %s, want %s", tc.name, got["addr=192.0.2.10"].State, tc.want)
		}
		if len(set) != before || set["addr=192.0.2.10"] != drain {
			t.Errorf("%s: Merge changed its input", tc.name)
		}
	}
	// Order does not matter: every server that saw the same entries agrees.
	es := []Entry{drain, entry("192.0.2.10", Up, t0.Add(time.Minute), "dns3"), entry("192.0.2.10", None, t0.Add(time.Second), "dns2")}
	a, _ := Merge(nil, es...)
	b, _ := Merge(nil, es[2], es[1], es[0])
	if a["addr=192.0.2.10"] != b["addr=192.0.2.10"] || a["addr=192.0.2.10"].State != Up {
		t.Errorf("merge depends on order: %v vs %v", a, b)
	}
}

func TestForget(t *testing.T) {
	clear := entry("192.0.2.1", None, t0, "dns1")
	forever := entry("192.0.2.2", Drain, t0, "dns1")
	expiring := entry("192.0.2.3", Down, t0, "dns1")
	expiring.Until = t0.Add(time.Hour)
	set, _ := Merge(nil, clear, forever, expiring)
	if got := Forget(set, t0.Add(Retention)); len(got) != 3 {
		t.Errorf("within the retention: %d entries kept, want 3", len(got))
	}
	got := Forget(set, t0.Add(Retention+time.Minute))
	if _, ok := got["addr=192.0.2.1"]; ok || len(got) != 2 {
		t.Errorf("a clear past the retention is kept: %v", got)
	}
	got = Forget(set, t0.Add(Retention+2*time.Hour))
	if _, ok := got["addr=192.0.2.2"]; !ok || len(got) != 1 {
		t.Errorf("after the retention of the expiry, want only the entry without expiry: %v", got)
	}
	// Over MaxEntries the oldest ended entries go first.
	var many []Entry
	for i := range MaxEntries + 10 {
		st := Drain
		if i < 20 {
			st = None
		}
		many = append(many, entry(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String(), st, t0.Add(time.Duration(i)*time.Second), "dns1"))
	}
	set, _ = Merge(nil, many...)
	got = Forget(set, t0.Add(time.Hour))
	if len(got) != MaxEntries {
		t.Fatalf("%d entries, want %d", len(got), MaxEntries)
	}
	for i := range 10 {
		if _, ok := got[many[i].Key()]; ok {
			t.Errorf("the old cleared entry %d kept over the limit", i)
		}
	}
	for _, e := range many[20:] {
		if _, ok := got[e.Key()]; !ok {
			t.Errorf("active %s dropped while cleared ones were kept", e.Key())
		}
	}
}

func TestMatcher(t *testing.T) {
	app := Target{Name: "app.gslb.example.com.", Addr: netip.MustParseAddr("192.0.2.10"), Owner: "east"}
	other := Target{Name: "app.gslb.example.com.", Addr: netip.MustParseAddr("192.0.2.20"), Owner: "west"}
	regionDrain := entry("owner=east", Drain, t0, "dns1")
	oneUp := entry("192.0.2.10", Up, t0.Add(time.Minute), "dns2")
	expired := entry("*/192.0.2.*", Down, t0.Add(2*time.Minute), "dns1")
	expired.Until = t0.Add(3 * time.Minute)
	cleared := entry("192.0.2.20", None, t0, "dns1")
	for _, tc := range []struct {
		name  string
		es    []Entry
		now   time.Time
		t     Target
		found bool
		want  State
	}{
		{"none", nil, t0, app, false, None},
		{"drained by owner", []Entry{regionDrain}, t0, app, true, Drain},
		{"the newest of two wins", []Entry{regionDrain, oneUp}, t0.Add(time.Hour), app, true, Up},
		{"an expiring one while in force", []Entry{regionDrain, oneUp, expired}, t0.Add(150 * time.Second), app, true, Down},
		{"and after its expiry the next newest", []Entry{regionDrain, oneUp, expired}, t0.Add(3 * time.Minute), app, true, Up},
		{"a clear selects nothing", []Entry{cleared}, t0, other, false, None},
		{"others are not selected", []Entry{regionDrain, oneUp}, t0, other, false, None},
	} {
		m := Compile(tc.es, tc.now)
		e, found := m.For(tc.t)
		if found != tc.found || e.State != tc.want {
			t.Errorf("%s: %v %s, want %v %s", tc.name, found, e.State, tc.found, tc.want)
		}
	}
	if m := Compile([]Entry{regionDrain, expired}, t0); !m.Next().Equal(expired.Until) {
		t.Errorf("Next = %v, want the expiry %v", m.Next(), expired.Until)
	}
	if Compile([]Entry{cleared}, t0) != nil {
		t.Error("a matcher of clears only is not nil")
	}
}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		st               State
		found, up        bool
		healthy, drained bool
	}{
		{None, false, true, true, false},
		{None, false, false, false, false},
		{Drain, true, true, true, true},
		{Drain, true, false, false, true},
		{Down, true, true, false, false},
		{Up, true, false, true, false},
	} {
		h, d := Apply(Entry{State: tc.st}, tc.found, tc.up)
		if h != tc.healthy || d != tc.drained {
			t.Errorf("Apply(%s, found %v, up %v) = %v, %v; want %v, %v", tc.st, tc.found, tc.up, h, d, tc.healthy, tc.drained)
		}
	}
}

func TestJSONAndFile(t *testing.T) {
	e := entry("owner=east,name=app.*", Drain, t0, "dns1")
	e.Reason, e.Who, e.Until = "bad deploy", "alice@ops", t0.Add(time.Hour)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back Entry
	if err := json.Unmarshal(b, &back); err != nil || back != e {
		t.Fatalf("JSON round trip: %s -> %v, %v", b, back, err)
	}
	for _, bad := range []string{
		`{"selector":"owner=east","state":"melt","set":"2026-12-02T03:00:00Z","node":"dns1"}`,
		`{"selector":"","state":"drain","set":"2026-12-02T03:00:00Z","node":"dns1"}`,
		`{"selector":"owner=east","state":"drain","node":"dns1"}`,
		`{"selector":"owner=east","state":"drain","set":"2026-12-02T03:00:00Z","node":""}`,
		`{"selector":"owner=east","state":"drain","set":"2026-12-02T03:00:00Z","node":"dns1","until":"2026-12-02T02:00:00Z"}`,
	} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}

	dir := t.TempDir()
	f := NewFile(dir)
	if es, err := f.Load(); err != nil || len(es) != 0 {
		t.Fatalf("no file: %v, %v", es, err)
	}
	book := NewBook()
	book.Merge(t0, e)
	if _, err := book.Apply(t0, f.Save, entry("192.0.2.1", None, t0, "dns2")); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(nil, 1); err != nil { // older than the file: nothing written
		t.Fatal(err)
	}
	es, err := f.Load()
	if err != nil || len(es) != 2 {
		t.Fatalf("load: %v, %v", es, err)
	}
	again := NewBook()
	again.Merge(t0, es...)
	a, _ := book.All()
	b2, _ := again.All()
	if len(a) != len(b2) || a[0] != b2[0] || a[1] != b2[1] {
		t.Errorf("saved %v, loaded %v", a, b2)
	}
	// A write that cannot be stored is not taken.
	broken := NewFile(filepath.Join(dir, "missing", "\x00"))
	if news, err := book.Apply(t0, broken.Save, entry("192.0.2.2", Down, t0, "dns1")); err == nil || len(news) != 0 || book.Len() != 2 {
		t.Errorf("Apply with a failing store: news %v, err %v, %d entries", news, err, book.Len())
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), FileName) {
		t.Errorf("a damaged file: %v, want an error naming it", err)
	}
}
