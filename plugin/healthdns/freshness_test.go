package healthdns

import (
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"

	"github.com/miekg/dns"
)

// TestFreshness walks freshness through a stall: rebuilds every second
// renew the deadline; after a gap longer than the window the deadline
// stays past until the evidence is newer than the stall, or until a window
// has gone by.
func TestFreshness(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		t       float64 // seconds since t0
		ev      evidence
		expired bool // the snapshot built then is born expired
	}
	own := func(s float64) evidence { return evidence{probing: true, ownChecked: at(s)} }
	clustered := func(own, peer float64, partitioned bool) evidence {
		return evidence{probing: true, ownChecked: at(own), cluster: true, peerHeard: at(peer), partitioned: partitioned}
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"rebuilds every second", []step{{0, own(0), false}, {1, own(0.5), false}, {2, own(1.5), false}, {9, own(8.5), false}}},
		{"a pause shorter than the window", []step{{0, own(0), false}, {8, own(0), false}}},
		{"single server: expired until its probes ran again", []step{
			{0, own(0), false},
			{20, own(0), true},      // resumed: its probes are 20 s old
			{20.3, own(19.9), true}, // a round that ended before the stall was noticed proves nothing
			{21, own(20.5), false},
			{22, own(21.5), false},
		}},
		{"cluster: also needs a peer heard since the stall, and no partition", []step{
			{0, clustered(0, 0, false), false},
			{30, clustered(0, 0, false), true},
			{30.5, clustered(30.4, 0, true), true},      // own probes fresh, peers not yet
			{31, clustered(30.9, 29, true), true},       // a peer heard, but partitioned
			{31.5, clustered(31.4, 31.2, false), false}, // fresh
		}},
		{"cut off after the stall: the partition rules take over after a window", []step{
			{0, clustered(0, 0, false), false},
			{30, clustered(0, 0, true), true},
			{35, clustered(34.5, 0, true), true},
			{40.5, clustered(40, 0, true), false},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := freshness{window: 10 * time.Second}
			for _, st := range c.steps {
				until := f.until(at(st.t), st.ev)
				s := &snapshot.Snapshot{ValidUntil: until}
				if got := s.ExpiredAt(at(st.t)); got != st.expired {
					t.Errorf("rebuild at %gs: expired %t, want %t (deadline %v after t0)", st.t, got, st.expired, until.Sub(t0))
				}
				if !st.expired && s.ExpiredAt(at(st.t+9)) {
					t.Errorf("rebuild at %gs: expires before its window", st.t)
				}
				if !st.expired && !s.ExpiredAt(at(st.t+10.1)) {
					t.Errorf("rebuild at %gs: not renewed, still valid after its window", st.t)
				}
			}
		})
	}
}

// TestServeDNSExpired: a snapshot past its deadline answers health-aware
// names SERVFAIL (so resolvers ask another server) and static data as
// usual.
func TestServeDNSExpired(t *testing.T) {
	h := newServeHandler(t, serveZone, serveNames()...)
	s := h.snap.Load()
	for _, c := range []struct {
		until time.Time
		rcode int
	}{
		{time.Now().Add(time.Hour), dns.RcodeSuccess},
		{time.Now().Add(-time.Millisecond), dns.RcodeServerFailure},
	} {
		s.ValidUntil = c.until
		for _, q := range []struct {
			name  string
			qtype uint16
			aware bool
		}{
			{"app.example.org.", dns.TypeA, true},
			{"docs.example.org.", dns.TypeA, true}, // a CNAME to app
			{"none.example.org.", dns.TypeA, true}, // fallback none
			{"web.example.org.", dns.TypeA, false},
			{"nope.example.org.", dns.TypeA, false},
		} {
			r := new(dns.Msg)
			r.SetQuestion(q.name, q.qtype)
			r.SetEdns0(1232, false)
			m := serve(t, h, &test.ResponseWriter{}, r)
			want := c.rcode
			if !q.aware && q.name == "nope.example.org." {
				want = dns.RcodeNameError
			} else if !q.aware {
				want = dns.RcodeSuccess
			}
			if m.Rcode != want {
				t.Errorf("deadline in %v: %s answered %s, want %s", time.Until(c.until).Round(time.Second), q.name, dns.RcodeToString[m.Rcode], dns.RcodeToString[want])
			}
			if m.IsEdns0() == nil {
				t.Errorf("%s: the reply to an EDNS query has no OPT", q.name)
			}
		}
	}
}
