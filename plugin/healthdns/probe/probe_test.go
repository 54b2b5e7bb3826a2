package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

func TestHTTPCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/host":
			if r.Host != "app.example.org" {
				w.WriteHeader(http.StatusMisdirectedRequest)
			}
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	tests := []struct {
		path   string
		host   string
		status []int
		ok     bool
	}{
		{"/ok", "", nil, true},
		{"/down", "", nil, false},
		{"/down", "", []int{503}, true},
		{"/host", "app.example.org", nil, true},
		{"/host", "", nil, false},
		{"/moved", "", nil, false}, // a redirect is judged by its own status
		{"/moved", "", []int{302}, true},
	}
	for _, tc := range tests {
		c, err := ParseURLCheck(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		c.Host, c.Status = tc.host, tc.status
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = c.Run(ctx)
		cancel()
		if (err == nil) != tc.ok {
			t.Errorf("%s host=%q status=%v: err=%v, want ok=%v", tc.path, tc.host, tc.status, err, tc.ok)
		}
	}
}

func TestHTTPCheckTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	c, _ := ParseURLCheck(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.Run(ctx); err == nil {
		t.Fatal("a hung backend passed its check")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("check took %v, want it bounded by its timeout", d)
	}
}

func TestTCPCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	c, err := ParseTCPCheck(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Errorf("open port failed its check: %v", err)
	}
	ln.Close()
	if err := c.Run(context.Background()); err == nil {
		t.Error("closed port passed its check")
	}
}

func TestParseChecks(t *testing.T) {
	for _, bad := range []string{"ftp://x/", "http://", "://x", "x"} {
		if _, err := ParseURLCheck(bad); err == nil {
			t.Errorf("ParseURLCheck(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"x", ":80", "x:0", "x:70000", "x:http"} {
		if _, err := ParseTCPCheck(bad); err == nil {
			t.Errorf("ParseTCPCheck(%q) accepted", bad)
		}
	}
}

// waitState polls the pool until the target reaches want or the deadline.
func waitState(t *testing.T, p *Pool, k string, want health.State, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if p.Status(k).State == want {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("target never became %v within %v (now %v)", want, within, p.Status(k).State)
	return 0
}

func TestPoolRiseFallAndReacquire(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	c, _ := ParseTCPCheck(addr)
	tg := Target{Addr: netip.MustParseAddr("192.0.2.1"), Checks: []Check{c}, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 2, Fall: 3}
	p := NewPool()
	changes, unsubscribe := p.Subscribe()
	defer unsubscribe()
	release := p.Acquire([]Target{tg})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.WaitFirstRound(ctx, []Target{tg}); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(tg.Key()); st.State != health.Up {
		t.Fatalf("after the first round: %v, want up", st.State)
	}
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Fatal("no change notification for the first verdict")
	}
	ln.Close()
	d := waitState(t, p, tg.Key(), health.Down, 2*time.Second)
	if d < 2*tg.Interval {
		t.Errorf("went down after %v, faster than fall=3 allows", d)
	}
	if !strings.Contains(p.Status(tg.Key()).Err, "tcp "+addr) {
		t.Errorf("status error %q does not name the failing check", p.Status(tg.Key()).Err)
	}

	// A reload acquires again before releasing: the state carries over.
	release2 := p.Acquire([]Target{tg})
	release()
	if st := p.Status(tg.Key()); st.State != health.Down {
		t.Errorf("after re-acquire: %v, want the down state kept", st.State)
	}
	release2()
	if st := p.Status(tg.Key()); st.State != health.Down {
		t.Errorf("just after the last release: %v, want it kept for the grace period", st.State)
	}
}

// After a pause longer than two intervals (SIGSTOP, a starved process) the
// first result decides, instead of keeping a state nobody checked for
// fall more rounds.
func TestPoolForgetsRunAfterPause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseTCPCheck(ln.Addr().String())
	tg := Target{Addr: netip.MustParseAddr("192.0.2.2"), Checks: []Check{c}, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 5, Fall: 5}
	p := NewPool()
	clock := time.Now()
	var mu sync.Mutex
	p.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	release := p.Acquire([]Target{tg})
	defer release()
	waitState(t, p, tg.Key(), health.Up, time.Second)
	ln.Close()
	mu.Lock()
	clock = clock.Add(time.Minute) // as if the process had been stopped
	mu.Unlock()
	d := waitState(t, p, tg.Key(), health.Down, time.Second)
	if d > 4*tg.Interval {
		t.Errorf("after a pause it took %v to go down, want the first failure to decide", d)
	}
}
