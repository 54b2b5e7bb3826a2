package test

import (
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// pausedAnswer is one reply a resumed server gave, and when.
type pausedAnswer struct {
	after time.Duration // since SIGCONT
	rcode int
	addrs []string
}

// TestClusterPausedServer: a server stopped (SIGSTOP) while a backend dies
// and its peer drops it must not, once resumed (SIGCONT), answer from its
// pre-pause view: not even the queries that waited in its socket during
// the pause. It answers SERVFAIL (resolvers ask the other server) until it
// has fresh observations, then the live address only.
func TestClusterPausedServer(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	c := newCluster(t, 240, fmt.Sprintf(clusterNames, east.check(), west.check()))
	s1 := c.addServer("s1", 1, []int{2}, true, 0)
	s2 := c.addServer("s2", 2, []int{1}, true, 0)
	t.Cleanup(c.stopAll)
	c.waitFormed([]string{"s1", "s2"}, 2)
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, 5*time.Second)

	if err := s1.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			s1.Cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	east.stop()
	waitAll(t, []*clusterServer{s2}, "app.gslb.example.com", appWest, cFailBound+3*time.Second)
	t.Logf("s2 dropped the dead address %v after the kill", time.Since(stopped).Round(time.Millisecond))
	// Stay paused past the snapshot's window (3 s at least, as this test's
	// targets are quick), while
	// s2 keeps answering without the dead address.
	hold(t, []*clusterServer{s2}, "app.gslb.example.com", appWest, 4*time.Second-time.Since(stopped), 100*time.Millisecond)

	// Queries sent during the pause wait in s1's socket; s1 reads them
	// first when it resumes.
	var (
		mu      sync.Mutex
		answers []pausedAnswer
		wg      sync.WaitGroup
		cont    time.Time
	)
	record := func(m *dns.Msg) {
		mu.Lock()
		defer mu.Unlock()
		answers = append(answers, pausedAnswer{time.Since(cont), m.Rcode, addrs(m)})
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := new(dns.Msg)
			r.SetQuestion("app.gslb.example.com.", dns.TypeA)
			cl := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			if m, _, err := cl.Exchange(r, s1.addr); err == nil {
				record(m)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the queries reach the socket; not a synchronisation
	mu.Lock()
	cont = time.Now()
	mu.Unlock()
	if err := s1.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	paused := cont.Sub(stopped)

	// Then ask s1 every 20 ms until it answers the live address.
	var good time.Duration
	_, ok := poll(5*time.Second, 20*time.Millisecond, func() bool {
		m, err := exchange(s1.addr, "udp", "app.gslb.example.com", dns.TypeA, false)
		if err != nil {
			return false
		}
		record(m)
		if m.Rcode == dns.RcodeSuccess && slices.Equal(addrs(m), appWest) {
			good = time.Since(cont)
			return true
		}
		return false
	})
	wg.Wait()
	servfails := 0
	for _, a := range answers {
		switch {
		case a.rcode == dns.RcodeServerFailure:
			servfails++
		case a.rcode != dns.RcodeSuccess || !slices.Equal(a.addrs, appWest):
			t.Errorf("%v after SIGCONT (paused %v): s1 answered %s %v, want SERVFAIL or %v only", a.after.Round(time.Millisecond), paused.Round(time.Millisecond), dns.RcodeToString[a.rcode], a.addrs, appWest)
		}
	}
	if !ok {
		t.Fatalf("s1 did not answer %v within 5 s of SIGCONT", appWest)
	}
	t.Logf("paused %v; after SIGCONT s1 answered SERVFAIL %d times, then %v after %v (%d answers)", paused.Round(time.Millisecond), servfails, appWest, good.Round(time.Millisecond), len(answers))
	if servfails == 0 {
		t.Errorf("no SERVFAIL after the pause: the queries that waited in the socket were answered from a renewed view, which this test cannot tell from luck")
	}
}
