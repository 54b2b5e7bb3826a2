package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The tests of the failure healthdns exists for: a datacenter (its
// backend, its server and its agents) dies at once. A server acts while it
// hears a majority of the cluster's voters (servers and witnesses), not of
// the observers, so the survivors fail over; one that hears no majority
// keeps its last verdicts. They use 127.0.0.120-159, a block of ten per
// test. Each logs the time from the fault to the moment every surviving
// server answers without the dead address, bound by interval × fall + one
// gossip round + 1 s (cFailBound).

// killNow kills every process with SIGKILL, as close together as it can,
// and waits until they are gone.
func killNow(t *testing.T, procs ...*process) {
	t.Helper()
	for _, p := range procs {
		if err := p.Cmd.Process.Kill(); err != nil && !p.Exited() {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		<-p.Done
	}
}

// waitMetrics waits until every sample on s's /metrics reads its value.
func waitMetrics(t *testing.T, s *clusterServer, want map[string]float64, timeout time.Duration) {
	t.Helper()
	var why string
	if _, ok := poll(timeout, 50*time.Millisecond, func() bool {
		for sample, v := range want {
			got, err := metric(s.metrics, sample)
			if err != nil || got != v {
				why = fmt.Sprintf("%s = %v (%v), want %v", sample, got, err, v)
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("%s after %v: %s", s.name, timeout, why)
	}
}

// votersMetrics is what a server's voter gauges read when it hears heard
// of known voters.
func votersMetrics(heard, known int) map[string]float64 {
	part := 0.0
	if heard < known/2+1 {
		part = 1
	}
	return map[string]float64{
		"coredns_healthdns_voters_heard":  float64(heard),
		"coredns_healthdns_voters_known":  float64(known),
		"coredns_healthdns_voters_needed": float64(known/2 + 1),
		"coredns_healthdns_partitioned":   part,
	}
}

// votersTXT returns the voters string of s's health matrix (dig CH TXT).
func votersTXT(s *clusterServer) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion("app.gslb.example.com.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	r, err := dns.Exchange(m, s.addr)
	if err != nil {
		return "", err
	}
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok && len(txt.Txt) == 1 && strings.HasPrefix(txt.Txt[0], "voters ") {
			return txt.Txt[0], nil
		}
	}
	return "", fmt.Errorf("%s: no voters string in the matrix (rcode %s, %d strings)", s.name, dns.RcodeToString[r.Rcode], len(r.Answer))
}

// waitVotersTXT waits until s's voters string has every word of want.
func waitVotersTXT(t *testing.T, s *clusterServer, want string, timeout time.Duration) string {
	t.Helper()
	var got string
	var err error
	if _, ok := poll(timeout, 50*time.Millisecond, func() bool {
		got, err = votersTXT(s)
		if err != nil {
			return false
		}
		words := strings.Fields(got)
		for _, w := range strings.Fields(want) {
			if !slices.Contains(words, w) {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("%s: voters %q (%v), want the words %q", s.name, got, err, want)
	}
	return got
}

// noLogAfter fails if p logged s after the first off bytes of its
// output (see logMark).
func noLogAfter(t *testing.T, p *process, who, s string, off int) {
	t.Helper()
	if l := logLine(p.Out.String()[off:], s); l != "" {
		t.Errorf("%s logged %q", who, l)
	}
}

// logMark is how much p has logged so far.
func logMark(p *process) int { return len(p.Out.String()) }

// TestClusterDatacenterLoss: three servers (servers 3) in three places and
// four agents, three of them in east with s1. East dies whole: its backend,
// s1 and its three agents are killed at once. Four of the seven observers
// are gone, but s2 and s3 are two of three voters: they fail over within
// the bound, say they are not partitioned, and fail back when east
// returns; the restarted s1 counts the right voters.
func TestClusterDatacenterLoss(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	c := newCluster(t, 120, fmt.Sprintf(clusterNames, east.check(), west.check()))
	c.voters = 3
	s1 := c.addServer("s1", 1, []int{2, 3}, true, 0)
	s2 := c.addServer("s2", 2, []int{1, 3}, true, 0)
	s3 := c.addServer("s3", 3, []int{1, 2}, true, 0)
	eastAgents := []*clusterAgent{c.addAgent("a1", 4), c.addAgent("a2", 5), c.addAgent("a3", 6)}
	c.addAgent("a4", 7) // west's
	c.waitFormed([]string{"s1", "s2", "s3", "a1", "a2", "a3", "a4"}, 2)
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, 5*time.Second)
	for _, s := range c.servers {
		waitMetrics(t, s, votersMetrics(3, 3), 5*time.Second)
	}
	survivors := []*clusterServer{s2, s3}
	marks := []int{logMark(s2.process), logMark(s3.process)}

	dead := []*process{s1.process}
	for _, a := range eastAgents {
		dead = append(dead, a.process)
	}
	took := watchChange(t, survivors, "app.gslb.example.com", appBoth, appWest, cFailBound+3*time.Second, func() {
		killNow(t, dead...)
		east.stop()
	})
	logTimes(t, "east died whole (server, 3 of 4 agents, backend)", survivors, took, cFailBound)
	// The dead agents' last views said east was up: they must not bring
	// it back once the survivors moved.
	f := hold(t, survivors, "app.gslb.example.com", appWest, 2*time.Second, 50*time.Millisecond)
	t.Logf("survivors held %v: %s", appWest, f)
	for i, s := range survivors {
		waitMetrics(t, s, votersMetrics(2, 3), 2*time.Second)
		if v, err := metric(s.metrics, `coredns_healthdns_voter_heard{role="server",voter="s1"}`); err != nil || v != 0 {
			t.Errorf("%s: voter_heard of s1 = %v (%v), want 0", s.name, v, err)
		}
		noLogAfter(t, s.process, s.name, "partition entered", marks[i])
		t.Logf("%s: %s", s.name, waitVotersTXT(t, s, "partitioned=no heard=2 known=3 need=2", time.Second))
	}

	// East comes back: the survivors fail back within interval × rise +
	// a gossip round, and the restarted s1 joins them.
	took = watchChange(t, survivors, "app.gslb.example.com", appWest, appBoth, cRiseBound+3*time.Second, func() {
		east.start()
		c.launchServer(s1)
		for _, a := range eastAgents {
			c.launchAgent(a)
		}
	})
	logTimes(t, "east back", survivors, took, cRiseBound)
	s1.waitReadyOn(t, s1.addr, 15*time.Second)
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, 10*time.Second)
	for _, s := range c.servers {
		waitMetrics(t, s, votersMetrics(3, 3), 10*time.Second)
	}
	t.Logf("s1 restarted: %s", waitVotersTXT(t, s1, "partitioned=no heard=3 known=3 need=2 rule=servers s1=self s2=heard s3=heard", time.Second))
	if l := logLine(s1.Out.String(), "cluster: 3 voters (servers 3"); l == "" {
		t.Errorf("s1 did not log the voter rule at start:\n%s", s1.Out.String())
	}
}

// TestClusterWitness: two datacenters, each with a server, an agent and a
// backend, and a witness agent in a third place (servers 3). East dies
// whole: west, hearing itself and the witness, fails over. The witness
// dies alone: nothing changes. Then the link between east and west is cut
// (iptables, when run as root) with the witness on west's side: west acts
// on a backend change, east keeps its last answer and says it is
// partitioned; after the heal it converges.
func TestClusterWitness(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	cutWhy := firewallProblem()
	eastGID, westGID := 0, 0
	if cutWhy == "" {
		eastGID, westGID = 54330, 54331
	}
	c := newCluster(t, 130, fmt.Sprintf(clusterNames, east.check(), west.check()))
	c.voters = 3
	s1 := c.addServer("s1", 1, []int{2}, true, eastGID)
	s2 := c.addServer("s2", 2, []int{1}, true, westGID)
	w := c.addAgentWith("w", 3, agentOpts{gid: westGID, witness: true})
	a1 := c.addAgentWith("a1", 4, agentOpts{gid: eastGID})
	c.addAgentWith("a2", 5, agentOpts{gid: westGID})
	observers := []string{"s1", "s2", "w", "a1", "a2"}
	c.waitFormed(observers, 2)
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, 5*time.Second)
	witnessHeard := `coredns_healthdns_voter_heard{role="witness",voter="w"}`
	for _, s := range c.servers {
		m := votersMetrics(3, 3)
		m[witnessHeard] = 1
		waitMetrics(t, s, m, 5*time.Second)
	}
	t.Logf("s2: %s", waitVotersTXT(t, s2, "heard=3 known=3 need=2 s2=self witness:w=heard", time.Second))
	if st, err := w.readStatus(); err != nil || st.memberState("s1") != "alive" {
		t.Fatalf("witness status: %+v, %v", st, err)
	}

	// East dies whole.
	mark := logMark(s2.process)
	took := watchChange(t, []*clusterServer{s2}, "app.gslb.example.com", appBoth, appWest, cFailBound+3*time.Second, func() {
		killNow(t, s1.process, a1.process)
		east.stop()
	})
	logTimes(t, "east died, west and the witness remain", []*clusterServer{s2}, took, cFailBound)
	waitMetrics(t, s2, votersMetrics(2, 3), 2*time.Second)
	noLogAfter(t, s2.process, "s2", "partition entered", mark)

	// East comes back.
	east.start()
	c.launchServer(s1)
	c.launchAgent(a1)
	s1.waitReadyOn(t, s1.addr, 15*time.Second)
	c.waitFormed(observers, 2)
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, 10*time.Second)

	// The witness dies alone: two of three voters remain; answers do
	// not move.
	marks := []int{logMark(s1.process), logMark(s2.process)}
	killNow(t, w.process)
	f := hold(t, c.servers, "app.gslb.example.com", appBoth, 3*time.Second, 50*time.Millisecond)
	t.Logf("witness dead: no change in %s", f)
	for i, s := range c.servers {
		m := votersMetrics(2, 3)
		m[witnessHeard] = 0
		waitMetrics(t, s, m, time.Second)
		noLogAfter(t, s.process, s.name, "partition entered", marks[i])
	}
	// And a backend change is still acted on.
	took = watchChange(t, c.servers, "app.gslb.example.com", appBoth, appWest, cFailBound+3*time.Second, east.stop)
	logTimes(t, "east's backend died with the witness dead", c.servers, took, cFailBound)
	took = watchChange(t, c.servers, "app.gslb.example.com", appWest, appBoth, cRiseBound+3*time.Second, east.start)
	logTimes(t, "east's backend back", c.servers, took, cRiseBound)

	if cutWhy != "" {
		t.Logf("the split of east and west is not tested: %s", cutWhy)
		return
	}
	c.launchAgent(w)
	for _, s := range c.servers {
		m := votersMetrics(3, 3)
		m[witnessHeard] = 1
		waitMetrics(t, s, m, 10*time.Second)
	}

	// Cut east (s1, a1) from west (s2, a2) and the witness.
	mark = logMark(s2.process)
	cut := newLinkCut(t, c.gossPort, eastGID, []string{s1.ip, a1.ip}, westGID, []string{s2.ip, w.ip, c.ip(5)})
	cut.install()
	d := waitLog(t, s1.process, "s1", "partition entered: hearing 1 of 3 voters (need 2); keeping the last verdicts", 10*time.Second)
	t.Logf("s1 partitioned %v after the cut: %s", d.Round(time.Millisecond), logLine(s1.Out.String(), "partition entered"))
	waitMetrics(t, s1, votersMetrics(1, 3), 2*time.Second)
	t.Logf("s1: %s", waitVotersTXT(t, s1, "partitioned=yes heard=1 known=3 need=2", time.Second))
	waitMetrics(t, s2, votersMetrics(2, 3), 2*time.Second)
	noLogAfter(t, s2.process, "s2", "partition entered", mark)

	// East's backend dies: west acts; east, which sees it die itself (its
	// own probes and a1's) but hears one voter of three, keeps both.
	f = newFlaps("after the split, east's backend died")
	stopS1, s1Done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s1Done)
		poll(time.Minute, 50*time.Millisecond, func() bool {
			f.check(s1, "app.gslb.example.com", appBoth)
			select {
			case <-stopS1:
				return true
			default:
				return false
			}
		})
	}()
	took = watchChange(t, []*clusterServer{s2}, "app.gslb.example.com", appBoth, appWest, cFailBound+3*time.Second, east.stop)
	logTimes(t, "west's side of the split failed over", []*clusterServer{s2}, took, cFailBound)
	hold(t, []*clusterServer{s2}, "app.gslb.example.com", appWest, 2*time.Second, 100*time.Millisecond)
	close(stopS1)
	<-s1Done
	f.verify(t)
	t.Logf("east's s1 kept %v: %s", appBoth, f)
	if v, err := metric(s1.metrics, "coredns_healthdns_verdicts_pending"); err != nil || v < 1 {
		t.Errorf("s1: verdicts_pending = %v (%v), want the held change counted", v, err)
	}

	// Healed: s1 converges to west's answer.
	took = watchChange(t, []*clusterServer{s1}, "app.gslb.example.com", appBoth, appWest, 30*time.Second, cut.remove)
	waitLog(t, s1.process, "s1", "partition left", 30*time.Second)
	t.Logf("after the heal s1 converged in %v: %s", took[0].Round(time.Millisecond), logLine(s1.Out.String(), "partition left"))
	waitMetrics(t, s1, votersMetrics(3, 3), 10*time.Second)
}

// newLinkCut cuts the gossip between two groups of nodes with iptables:
// every packet a process of group aGID sends to a gossip port of bIPs is
// dropped, and the other way round. The groups still talk among
// themselves. (memberlist dials TCP from 127.0.0.1 on lo, so the source
// address cannot tell processes apart; their group can.)
func newLinkCut(t *testing.T, port, aGID int, aIPs []string, bGID int, bIPs []string) *firewall {
	f := &firewall{t: t}
	p := strconv.Itoa(port)
	add := func(gid int, to []string) {
		for _, ip := range to {
			for _, proto := range []string{"udp", "tcp"} {
				f.rules = append(f.rules, []string{"OUTPUT", "-m", "owner", "--gid-owner", strconv.Itoa(gid), "-d", ip, "-p", proto, "--dport", p,
					"-m", "comment", "--comment", ruleComment, "-j", "DROP"})
			}
		}
	}
	add(aGID, bIPs)
	add(bGID, aIPs)
	t.Cleanup(f.remove)
	return f
}

// TestClusterAgentChurn: six agents join three servers (servers 3) and are
// killed at once, together with east's backend: two thirds of the
// observers are gone and their last views said east was up. No server
// freezes; the servers' own probes decide within the bound, and decide the
// recovery too while memberlist still counts the dead agents.
func TestClusterAgentChurn(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	c := newCluster(t, 140, fmt.Sprintf(clusterNames, east.check(), west.check()))
	c.voters = 3
	c.addServer("s1", 1, []int{2, 3}, true, 0)
	c.addServer("s2", 2, []int{1, 3}, true, 0)
	c.addServer("s3", 3, []int{1, 2}, true, 0)
	observers := []string{"s1", "s2", "s3"}
	var agents []*process
	for i := range 6 {
		name := fmt.Sprintf("a%d", i+1)
		agents = append(agents, c.addAgent(name, 4+i).process)
		observers = append(observers, name)
	}
	c.waitFormed(observers, 2)
	waitAll(t, c.servers, "app.gslb.example.com", appBoth, 5*time.Second)
	var marks []int
	for _, s := range c.servers {
		marks = append(marks, logMark(s.process))
	}

	took := watchChange(t, c.servers, "app.gslb.example.com", appBoth, appWest, cFailBound+3*time.Second, func() {
		killNow(t, agents...)
		east.stop()
	})
	logTimes(t, "six agents and east's backend killed", c.servers, took, cFailBound)
	hold(t, c.servers, "app.gslb.example.com", appWest, 2*time.Second, 50*time.Millisecond)
	took = watchChange(t, c.servers, "app.gslb.example.com", appWest, appBoth, cRiseBound+3*time.Second, east.start)
	logTimes(t, "east's backend back, six dead agents", c.servers, took, cRiseBound)
	for i, s := range c.servers {
		waitMetrics(t, s, votersMetrics(3, 3), time.Second)
		noLogAfter(t, s.process, s.name, "partition entered", marks[i])
	}
}

// TestClusterVoterSet: without a servers option each server counts itself
// and the voters heard within forget-after, kept in its data directory. A
// dead server is still counted; a server restarted alone counts the two
// it cannot hear and so keeps its verdicts; a new server joins with every
// voter counted, and is forgotten at once when it leaves on purpose.
func TestClusterVoterSet(t *testing.T) {
	east := startBackend(t, "http")
	west := startBackend(t, "tcp")
	c := newCluster(t, 150, fmt.Sprintf(clusterNames, east.check(), west.check())+"        data data\n")
	c.voters = 0
	s1 := c.addServer("s1", 1, []int{2, 3}, true, 0)
	s2 := c.addServer("s2", 2, []int{1, 3}, true, 0)
	s3 := c.addServer("s3", 3, []int{1, 2}, true, 0)
	for _, s := range c.servers {
		waitMetrics(t, s, votersMetrics(3, 3), 10*time.Second)
	}
	if l := logLine(s3.Out.String(), "no servers option: counting the voters heard within 24h0m0s"); l == "" {
		t.Errorf("s3 did not log the voter rule:\n%s", s3.Out.String())
	}

	// s3 dies: the others still count it.
	killNow(t, s3.process)
	for _, s := range []*clusterServer{s1, s2} {
		waitMetrics(t, s, votersMetrics(2, 3), 5*time.Second)
	}

	// Everyone dies; s3 restarts alone. It remembers s1 and s2 from its
	// data directory: one of three, partitioned, yet it answers from its
	// own first probes.
	killNow(t, s1.process, s2.process)
	c.startServer(s3)
	waitMetrics(t, s3, votersMetrics(1, 3), 5*time.Second)
	t.Logf("s3 restarted alone: %s", waitVotersTXT(t, s3, "partitioned=yes heard=1 known=3 need=2 rule=remembered s3=self s1=remembered s2=remembered", time.Second))
	t.Logf("s3 at start: %s", logLine(s3.Out.String(), "no servers option"))
	waitAll(t, []*clusterServer{s3}, "app.gslb.example.com", appBoth, 5*time.Second)
	if _, err := os.ReadFile(filepath.Join(s3.dir, "data", "voters.json")); err != nil {
		t.Error(err)
	}

	c.startServer(s1)
	c.startServer(s2)
	for _, s := range c.servers {
		waitMetrics(t, s, votersMetrics(3, 3), 10*time.Second)
	}
	waitLog(t, s3.process, "s3", "partition left", 5*time.Second)

	// A new server joins: it and every other count four voters.
	s4 := c.addServer("s4", 4, []int{1, 2, 3}, true, 0)
	for _, s := range c.servers {
		waitMetrics(t, s, votersMetrics(4, 4), 10*time.Second)
	}
	t.Logf("s4 at start: %s", logLine(s4.Out.String(), "no servers option"))
	if l := logLine(s4.Out.String(), "no servers option"); !strings.Contains(l, "(4 now: s4 s1 s2 s3)") {
		t.Errorf("s4 did not count the voters it synced from at start: %q", l)
	}

	// s4 leaves on purpose (SIGTERM): forgotten at once.
	left := time.Now()
	s4.Stop()
	for _, s := range c.servers[:3] {
		waitMetrics(t, s, votersMetrics(3, 3), 5*time.Second)
	}
	t.Logf("s4 left: every server counts 3 voters again %v after its SIGTERM", time.Since(left).Round(time.Millisecond))
}
