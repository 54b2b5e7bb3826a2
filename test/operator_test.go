package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/status"

	"github.com/miekg/dns"
)

// operatorNames is the healthdns block of TestOperatorView after the timing:
// the status listener, the matrix open to the server's own address only,
// app (priority: east in tier 1, west in tier 2) and big (30 targets of
// both families, all checked against one TCP backend, so its matrix is too
// long for a 512-byte UDP answer).
const operatorNames = `        status %s
        matrix %s
        name app {
            policy priority
            quorum majority
            ttl 5
            target 192.0.2.10    tier 1 check %s
            target 198.51.100.10 tier 2 check %s
        }
        name big {
            policy roundrobin
            ttl 5
%s        }
`

const (
	opApp   = "app.gslb.example.com."
	opBig   = "big.gslb.example.com."
	opEast  = "192.0.2.10"
	opWest  = "198.51.100.10"
	opBigN4 = 15 // IPv4 targets of big
	opBigN6 = 15 // IPv6 targets of big
)

// opBigTargets are big's target addresses: IPv4 first, then IPv6.
func opBigTargets() (v4, v6 []string) {
	for i := 1; i <= opBigN4; i++ {
		v4 = append(v4, fmt.Sprintf("203.0.113.%d", i))
	}
	for i := 1; i <= opBigN6; i++ {
		v6 = append(v6, fmt.Sprintf("2001:db8:b16::%x", i))
	}
	return v4, v6
}

// chQuery asks name CH TXT from server over network with the client's
// source address bound to local; edns adds an OPT record with a 4096-byte
// buffer (as dig does), without it a UDP answer is limited to 512 bytes.
func chQuery(network, local, server, name string, edns bool) (*dns.Msg, error) {
	return boundQuery(network, local, server, name, dns.TypeTXT, dns.ClassCHAOS, edns)
}

// boundQuery is one query of name/qtype/qclass from local to server.
func boundQuery(network, local, server, name string, qtype, qclass uint16, edns bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Question[0].Qclass = qclass
	m.RecursionDesired = false
	if edns {
		m.SetEdns0(4096, false)
	}
	var la net.Addr = &net.UDPAddr{IP: net.ParseIP(local)}
	if network == "tcp" {
		la = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: la, Timeout: 2 * time.Second}}
	r, _, err := c.Exchange(m, server)
	return r, err
}

// txtStrings returns the strings of the TXT records of the answer, in
// order, and fails on a record that is not TXT of class CH.
func txtStrings(t *testing.T, m *dns.Msg) []string {
	t.Helper()
	var out []string
	for _, rr := range m.Answer {
		txt, ok := rr.(*dns.TXT)
		if !ok || rr.Header().Class != dns.ClassCHAOS {
			t.Fatalf("answer record %v: want TXT of class CH", rr)
		}
		out = append(out, strings.Join(txt.Txt, ""))
	}
	return out
}

// getHTTP GETs url and returns its status, Content-Type and body.
func getHTTP(url string) (int, string, []byte, error) {
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, err
}

// getDoc GETs a status document.
func getDoc(url string) (*status.Document, error) {
	code, ctype, body, err := getHTTP(url)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d: %s", url, code, body)
	}
	if !strings.HasPrefix(ctype, "application/json") {
		return nil, fmt.Errorf("GET %s: Content-Type %q", url, ctype)
	}
	var d status.Document
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	return &d, nil
}

func docName(d *status.Document, name string) *status.Name {
	for i := range d.Names {
		if d.Names[i].Name == name {
			return &d.Names[i]
		}
	}
	return nil
}

func nameTarget(n *status.Name, addr string) *status.Target {
	for i := range n.Targets {
		if n.Targets[i].Address == addr {
			return &n.Targets[i]
		}
	}
	return nil
}

// reasonLine is a target's reason in the matrix, labelled with its time.
var reasonLine = regexp.MustCompile(`^\S+ reason at \d\d:\d\d:\d\d: .* by quorum \w+$`)

// sinceRE is a verdict's since in the matrix: RFC 3339 and the age.
var sinceRE = regexp.MustCompile(`since=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s\)$`)

// checkMatrix checks a name's CH TXT strings: the summary first, then every
// target (in order) with its verdict, each followed by one string per
// observer with the state wanted (down for the targets in down, up for the
// others). It returns the strings of the summary.
func checkMatrix(t *testing.T, what string, lines []string, name string, targets []string, down map[string]bool, observers []string) []string {
	t.Helper()
	if len(lines) == 0 || !strings.HasPrefix(lines[0], name+" ") {
		t.Fatalf("%s: first string is not the summary of %s:\n%s", what, name, strings.Join(lines, "\n"))
	}
	i := 0
	var summary []string
	for ; i < len(lines) && !strings.HasPrefix(lines[i], "voters ") && !strings.HasPrefix(lines[i], "target "); i++ {
		summary = append(summary, lines[i])
	}
	// Then whether the server may act: dns1 is the only voter (servers 1).
	if voters := "voters partitioned=no heard=1 known=1 need=1 rule=servers pending=0 dns1=self"; i >= len(lines) || lines[i] != voters {
		t.Fatalf("%s: after the summary, want %q:\n%s", what, voters, strings.Join(lines, "\n"))
	}
	i++
	for _, addr := range targets {
		if i >= len(lines) {
			t.Fatalf("%s: no string for target %s:\n%s", what, addr, strings.Join(lines, "\n"))
		}
		tl := lines[i]
		verdict := "up"
		if down[addr] {
			verdict = "down"
		}
		if !strings.HasPrefix(tl, "target "+addr+" ") || !strings.Contains(tl, " verdict="+verdict+" ") || !sinceRE.MatchString(tl) {
			t.Fatalf("%s: string %d is %q, want target %s verdict=%s with a since", what, i, tl, addr, verdict)
		}
		i++
		// The verdict's reason as recorded, labelled with its time.
		if i >= len(lines) || !reasonLine.MatchString(lines[i]) || !strings.HasPrefix(lines[i], addr+" reason at ") {
			t.Fatalf("%s: after target %s, want its labelled reason, got %q", what, addr, lines[min(i, len(lines)-1)])
		}
		i++
		for _, o := range observers {
			if i >= len(lines) {
				t.Fatalf("%s: no string for %s seen by %s", what, addr, o)
			}
			want := fmt.Sprintf("%s observer=%s location=%s state=%s age=", addr, o, o, verdict)
			if !strings.HasPrefix(lines[i], want) {
				t.Fatalf("%s: string %d is %q, want it to start with %q", what, i, lines[i], want)
			}
			i++
		}
	}
	if i != len(lines) {
		t.Fatalf("%s: %d strings left after the last target: %q", what, len(lines)-i, lines[i:])
	}
	for _, l := range lines {
		if len(l) > status.MaxTXT {
			t.Errorf("%s: string of %d bytes: %q", what, len(l), l)
		}
	}
	return summary
}

// TestOperatorView: one server (probing, with a status listener and the
// matrix open to its own address only) and two agents on 127.0.0.81-83.
// After east's backend dies and app fails over to west, the operator's
// views (CH TXT over UDP and TCP, /status, the page, an agent's /status
// and `healthdns-agent status`) all say which target is down, since when,
// who saw it and why; the CH feature changes no IN answer and is refused
// outside its networks.
func TestOperatorView(t *testing.T) {
	began := time.Now()
	east := startBackend(t, "http")
	west := startBackend(t, "http")
	bigBackend := startBackend(t, "tcp")

	c := newCluster(t, 80, "")
	srvIP, outsideIP := c.ip(1), c.ip(2)
	var statusPort int
	for range 20 {
		p := freePorts(t, 1, []string{srvIP})[0]
		if p != c.dnsPort && p != c.gossPort && p != c.metPort {
			statusPort = p
			break
		}
	}
	if statusPort == 0 {
		t.Fatal("no free status port")
	}
	statusAddr := net.JoinHostPort(srvIP, strconv.Itoa(statusPort))
	statusBase := "http://" + statusAddr
	v4, v6 := opBigTargets()
	bigAll := append(slices.Clone(v4), v6...)
	var bigBlock strings.Builder
	for _, a := range bigAll {
		fmt.Fprintf(&bigBlock, "            target %s check %s\n", a, bigBackend.check())
	}
	c.names = fmt.Sprintf(operatorNames, statusAddr, srvIP+"/32", east.check(), west.check(), bigBlock.String())

	s := c.addServer("dns1", 1, nil, true, 0)
	a1 := c.addAgent("agent1", 2)
	c.addAgent("agent2", 3)
	observers := []string{"agent1", "agent2", "dns1"} // sorted, as the matrix lists them
	c.waitFormed(observers, 2+len(bigAll))
	srv := []*clusterServer{s}
	waitAll(t, srv, opApp, []string{opEast}, 5*time.Second)
	waitAll(t, srv, opBig, sorted(v4...), 5*time.Second)

	// The IN answer before anything failed: east alone (tier 1).
	before, err := exchange(s.addr, "udp", opApp, dns.TypeA, false)
	if err != nil {
		t.Fatalf("app A: %v", err)
	}
	assertINAnswer(t, "app A before the failover", before, []string{opEast})

	// east dies: app moves to west.
	took := watchChange(t, srv, opApp, []string{opEast}, []string{opWest}, cFailBound+3*time.Second, east.stop)
	logTimes(t, "failover", srv, took, cFailBound)

	// Wait until every observer says east is down, as the server holds it.
	var doc *status.Document
	var why string
	if d, ok := poll(5*time.Second, 50*time.Millisecond, func() bool {
		var err error
		doc, err = getDoc(statusBase + "/status")
		if err != nil {
			why = err.Error()
			return false
		}
		n := docName(doc, opApp)
		if n == nil {
			why = "no name " + opApp
			return false
		}
		e := nameTarget(n, opEast)
		if e == nil || e.Verdict != status.StateDown || len(e.Observations) != len(observers) {
			why = fmt.Sprintf("east: %+v", e)
			return false
		}
		for _, o := range e.Observations {
			if o.State != status.StateDown || o.Stale {
				why = fmt.Sprintf("east as %s: %+v", o.Observer, o)
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("east not down for every observer after %v: %s", d, why)
	}

	// The CH TXT matrix of app, from the allowed address, over UDP (with
	// EDNS, as dig asks) and TCP.
	down := map[string]bool{opEast: true}
	for _, network := range []string{"udp", "tcp"} {
		m, err := chQuery(network, srvIP, s.addr, opApp, network == "udp")
		if err != nil {
			t.Fatalf("app CH TXT over %s: %v", network, err)
		}
		if m.Rcode != dns.RcodeSuccess || !m.Authoritative || m.Truncated {
			t.Fatalf("app CH TXT over %s: rcode %s AA %v TC %v, want NOERROR, AA, no TC", network, dns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated)
		}
		lines := txtStrings(t, m)
		summary := checkMatrix(t, "app CH TXT over "+network, lines, opApp, []string{opEast, opWest}, down, observers)
		want := opApp + " policy=priority quorum=majority ttl=5 fallback=all outcome=healthy state=standby answer=" + opWest
		if len(summary) != 1 || summary[0] != want {
			t.Errorf("app CH TXT over %s: summary %q, want %q", network, summary, want)
		}
		t.Logf("dig @%s -b %s CH TXT %s (%s):\n%s", s.addr, srvIP, opApp, network, strings.Join(lines, "\n"))
	}

	// big's matrix is too long for 512 bytes: truncated over UDP without
	// EDNS, complete over TCP.
	m, err := chQuery("udp", srvIP, s.addr, opBig, false)
	if err != nil {
		t.Fatalf("big CH TXT over udp: %v", err)
	}
	if m.Rcode != dns.RcodeSuccess || !m.Truncated {
		t.Fatalf("big CH TXT over UDP without EDNS: rcode %s TC %v (%d strings), want NOERROR with TC", dns.RcodeToString[m.Rcode], m.Truncated, len(m.Answer))
	}
	udpStrings := len(m.Answer)
	m, err = chQuery("tcp", srvIP, s.addr, opBig, false)
	if err != nil {
		t.Fatalf("big CH TXT over tcp: %v", err)
	}
	if m.Rcode != dns.RcodeSuccess || m.Truncated || !m.Authoritative {
		t.Fatalf("big CH TXT over TCP: rcode %s AA %v TC %v", dns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated)
	}
	bigLines := txtStrings(t, m)
	summary := checkMatrix(t, "big CH TXT over tcp", bigLines, opBig, bigAll, nil, observers)
	// The summary goes on in answer+= strings; every address is in it.
	var answered []string
	for _, l := range summary {
		for _, w := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(w, "answer="); ok {
				answered = append(answered, strings.Split(v, ",")...)
			} else if v, ok := strings.CutPrefix(w, "answer+="); ok {
				answered = append(answered, strings.Split(v, ",")...)
			}
		}
	}
	if !slices.Equal(sorted(answered...), sorted(bigAll...)) {
		t.Errorf("big CH TXT summary answers %v, want %v:\n%s", answered, bigAll, strings.Join(summary, "\n"))
	}
	t.Logf("big CH TXT: %d strings (%d summary) over TCP, %d over UDP without EDNS (TC set); summary:\n%s",
		len(bigLines), len(summary), udpStrings, strings.Join(summary, "\n"))

	// The IN answer is what it would be without the CH feature: west, AA,
	// class IN, from the allowed and the outside address alike; the
	// outside address is refused the matrix.
	for _, local := range []string{srvIP, outsideIP} {
		for _, network := range []string{"udp", "tcp"} {
			m, err := boundQuery(network, local, s.addr, opApp, dns.TypeA, dns.ClassINET, false)
			if err != nil {
				t.Fatalf("app A from %s over %s: %v", local, network, err)
			}
			assertINAnswer(t, fmt.Sprintf("app A from %s over %s", local, network), m, []string{opWest})
		}
	}
	for _, network := range []string{"udp", "tcp"} {
		m, err := chQuery(network, outsideIP, s.addr, opApp, true)
		if err != nil {
			t.Fatalf("app CH TXT from %s over %s: %v", outsideIP, network, err)
		}
		if m.Rcode != dns.RcodeRefused || len(m.Answer) != 0 {
			t.Fatalf("app CH TXT from %s over %s: %s with %d answers, want REFUSED and none", outsideIP, network, dns.RcodeToString[m.Rcode], len(m.Answer))
		}
	}
	after, err := exchange(s.addr, "udp", opApp, dns.TypeA, false)
	if err != nil {
		t.Fatalf("app A: %v", err)
	}
	assertINAnswer(t, "app A after the CH queries", after, []string{opWest})

	// GET /status on the server.
	doc, err = getDoc(statusBase + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if doc.Node != "dns1" || doc.Role != status.RoleServer || doc.Observer != "dns1" {
		t.Errorf("server /status: node %q role %q observer %q, want dns1 server dns1", doc.Node, doc.Role, doc.Observer)
	}
	if p := doc.Partition; p == nil || p.Partitioned || p.Heard != 3 || p.Known != 3 || p.VotersHeard != 1 || p.VotersKnown != 1 || p.VotersNeeded != 1 ||
		p.VotersRule != "servers" || len(p.Voters) != 1 || p.Voters[0] != (status.Voter{Name: "dns1", Role: status.RoleServer, State: status.VoterSelf, LastHeard: p.Voters[0].LastHeard}) {
		t.Errorf("server /status partition %+v, want not partitioned, 3 observers of 3, voter dns1 alone (servers 1)", p)
	}
	if len(doc.Members) != 3 {
		t.Errorf("server /status: %d members, want 3: %+v", len(doc.Members), doc.Members)
	}
	for _, mb := range doc.Members {
		wantRole := status.RoleAgent
		if mb.Name == "dns1" {
			wantRole = status.RoleServer
		}
		if !slices.Contains(observers, mb.Name) || mb.State != "alive" || mb.Role != wantRole {
			t.Errorf("server /status member %+v: want one of %v, alive, %s", mb, observers, wantRole)
		}
	}
	if len(doc.Views) != 3 {
		t.Errorf("server /status: %d views, want 3: %+v", len(doc.Views), doc.Views)
	}
	if len(doc.Names) != 2 || doc.Names[0].Name != opApp || doc.Names[1].Name != opBig {
		t.Fatalf("server /status names %v, want %s and %s", docNames(doc), opApp, opBig)
	}
	app := docName(doc, opApp)
	if !slices.Equal(app.AnswerA, []string{opWest}) || len(app.AnswerAAAA) != 0 || app.Outcome != status.OutcomeHealthy ||
		app.Policy != "priority" || app.Quorum != "majority" || app.TTL != 5 {
		t.Errorf("server /status %s: answer %v %v outcome %q policy %q quorum %q ttl %d, want [%s] [] healthy priority majority 5",
			opApp, app.AnswerA, app.AnswerAAAA, app.Outcome, app.Policy, app.Quorum, app.TTL, opWest)
	}
	if len(app.Targets) != 2 || app.Targets[0].Address != opEast || app.Targets[1].Address != opWest ||
		app.Targets[0].Tier != 1 || app.Targets[1].Tier != 2 {
		t.Fatalf("server /status %s targets %+v, want east tier 1 then west tier 2", opApp, app.Targets)
	}
	e, w := &app.Targets[0], &app.Targets[1]
	if e.Verdict != status.StateDown || e.Since.IsZero() || len(e.ID) != 16 || !slices.Equal(e.Checks, []string{east.check()}) {
		t.Errorf("east: verdict %q since %v id %q checks %v, want down, a since, a 16-digit ID, [%s]", e.Verdict, e.Since, e.ID, e.Checks, east.check())
	}
	// The reason is the one of the change: who said what when the verdict
	// moved (a majority down; the last observer may not have seen it yet)
	// and the rule.
	for _, o := range observers {
		if !regexp.MustCompile(`(^| )` + o + `=(up|down|unknown) `).MatchString(e.Reason) {
			t.Errorf("east's reason %q does not say what %s saw", e.Reason, o)
		}
	}
	if !strings.HasSuffix(e.Reason, " by quorum majority") || strings.Count(e.Reason, "=down") < 2 {
		t.Errorf("east's reason %q: want a majority (2 of 3) down, by quorum majority", e.Reason)
	}
	var bugs []string // contract breaks, reported at the end
	for _, tg := range []*status.Target{e, w} {
		var obs []string
		for _, o := range tg.Observations {
			obs = append(obs, o.Observer)
			want := status.StateUp
			if tg == e {
				want = status.StateDown
			}
			if o.State != want || o.Stale || o.Location != o.Observer || o.LastHeard.IsZero() || o.AgeSeconds < 0 || o.AgeSeconds > cStale.Seconds() {
				t.Errorf("%s as %s: %+v, want %s, fresh", tg.Address, o.Observer, o, want)
			}
		}
		if !slices.Equal(sorted(obs...), observers) {
			t.Errorf("%s observed by %v, want %v", tg.Address, obs, observers)
		} else if !slices.Equal(obs, observers) && len(bugs) == 0 {
			bugs = append(bugs, fmt.Sprintf("/status lists %s's observations in the order %v, but status/README.md and model.go promise them "+
				"sorted by observer (%v): plugin/healthdns/status.go document() appends the server's own observation first, then the "+
				"other views. Fix: sort st.Observations by Observer before appending st to sn.Targets.", tg.Address, obs, observers))
		}
	}
	if w.Verdict != status.StateUp {
		t.Errorf("west: verdict %q, want up", w.Verdict)
	}
	var fell *status.Change
	for i, h := range e.History {
		if h.From == status.StateUp && h.To == status.StateDown {
			fell = &e.History[i]
		}
	}
	if fell == nil || fell.Reason != e.Reason || !fell.Time.Equal(e.Since) {
		t.Errorf("east's history %+v: want an up -> down change at %v with the reason %q", e.History, e.Since, e.Reason)
	} else {
		t.Logf("east: verdict %s since %v, reason %q; history %+v", e.Verdict, e.Since, e.Reason, e.History)
	}
	big := docName(doc, opBig)
	if !slices.Equal(sorted(big.AnswerA...), sorted(v4...)) || !slices.Equal(sorted(big.AnswerAAAA...), sorted(v6...)) || len(big.Targets) != len(bigAll) {
		t.Errorf("server /status %s: answers %v %v, %d targets; want every one of %d", opBig, big.AnswerA, big.AnswerAAAA, len(big.Targets), len(bigAll))
	}

	// ?name= keeps that one name (any case, final dot optional).
	for _, q := range []string{"app.gslb.example.com", "APP.gslb.example.com."} {
		d, err := getDoc(statusBase + "/status?name=" + q)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Names) != 1 || d.Names[0].Name != opApp {
			t.Errorf("/status?name=%s: names %v, want [%s]", q, docNames(d), opApp)
		}
	}

	// The page.
	code, ctype, body, err := getHTTP(statusBase + "/")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || ctype != "text/html; charset=utf-8" {
		t.Errorf("GET /: %d %q, want 200 text/html; charset=utf-8", code, ctype)
	}
	page := string(body)
	for _, want := range append(append([]string{opEast, opWest}, bigAll...), observers...) {
		if !strings.Contains(page, want) {
			t.Errorf("GET / does not show %q", want)
		}
	}

	// An agent's /status: its catalog is every target, east down by its own
	// probes.
	ad, err := getDoc(a1.status)
	if err != nil {
		t.Fatal(err)
	}
	if ad.Node != "agent1" || ad.Role != status.RoleAgent || ad.Partition != nil || len(ad.Names) != 0 {
		t.Errorf("agent1 /status: node %q role %q partition %+v names %d, want agent1, agent, none, none", ad.Node, ad.Role, ad.Partition, len(ad.Names))
	}
	cat := map[string]status.CatalogEntry{}
	for _, ce := range ad.Catalog {
		cat[ce.Address] = ce
	}
	for _, a := range append([]string{opEast, opWest}, bigAll...) {
		ce, ok := cat[a]
		switch {
		case !ok:
			t.Errorf("agent1's catalog has no %s", a)
		case a == opEast && (ce.State != status.StateDown || ce.Error == "" || ce.ID != e.ID):
			t.Errorf("agent1's catalog entry of east %+v, want down with an error and ID %s", ce, e.ID)
		case a != opEast && ce.State != status.StateUp:
			t.Errorf("agent1's catalog entry of %s %+v, want up", a, ce)
		}
	}
	if len(ad.Catalog) != 2+len(bigAll) {
		t.Errorf("agent1's catalog has %d entries, want %d", len(ad.Catalog), 2+len(bigAll))
	}
	t.Logf("agent1's catalog entry of east: %+v", cat[opEast])

	// healthdns-agent status against the server.
	cmd := exec.Command(agentBinary, "status", "-url", statusAddr, "-name", "app.gslb.example.com", "-timeout", "5s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("healthdns-agent status: %v\n%s", err, out)
	}
	table := string(out)
	var head, eastRow string
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "TARGET":
			head = l
		case len(f) > 0 && f[0] == opEast:
			eastRow = l
		}
	}
	wantHead := append([]string{"TARGET", "TIER", "WEIGHT", "OWNER", "VERDICT", "SINCE"}, observers...)
	if !slices.Equal(strings.Fields(head), wantHead) {
		t.Errorf("healthdns-agent status header %q, want the columns %v:\n%s", head, wantHead, table)
	}
	// TARGET TIER WEIGHT OWNER VERDICT SINCE (ago) then "down 0.2s" per observer.
	if f := strings.Fields(eastRow); len(f) < 5 || f[4] != "down" || strings.Count(eastRow, "down") != 1+len(observers) {
		t.Errorf("healthdns-agent status: east's row %q, want verdict down and down for every observer:\n%s", eastRow, table)
	}
	for _, want := range []string{"node dns1 (server, observer dns1)", "partition: no; hearing 1 of 1 voters (need 1, servers): dns1 self; 3 of 3 observers", opApp, "answer: standby " + opWest, opWest} {
		if !strings.Contains(table, want) {
			t.Errorf("healthdns-agent status does not say %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, opBig) {
		t.Errorf("healthdns-agent status -name app shows %s:\n%s", opBig, table)
	}
	t.Logf("healthdns-agent status -url %s -name app.gslb.example.com:\n%s", statusAddr, table)
	t.Logf("TestOperatorView body took %v", time.Since(began).Round(time.Millisecond))
	if len(bugs) > 0 {
		t.Error(strings.Join(bugs, "\n"))
	}
}

// assertINAnswer checks an IN A answer: NOERROR, AA, every record A of
// class IN, the addresses want.
func assertINAnswer(t *testing.T, what string, m *dns.Msg, want []string) {
	t.Helper()
	if m.Rcode != dns.RcodeSuccess || !m.Authoritative || m.Truncated {
		t.Fatalf("%s: rcode %s AA %v TC %v, want NOERROR, AA", what, dns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated)
	}
	if len(m.Question) != 1 || m.Question[0].Qclass != dns.ClassINET {
		t.Fatalf("%s: question %v, want class IN", what, m.Question)
	}
	for _, rr := range m.Answer {
		if rr.Header().Class != dns.ClassINET || rr.Header().Rrtype != dns.TypeA || rr.Header().Ttl != 5 {
			t.Fatalf("%s: record %v, want A of class IN with TTL 5", what, rr)
		}
	}
	if got := addrs(m); !slices.Equal(got, sorted(want...)) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

func docNames(d *status.Document) []string {
	var out []string
	for _, n := range d.Names {
		out = append(out, n.Name)
	}
	return out
}
