package test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/status"

	"github.com/miekg/dns"
)

// failoverNames is the healthdns block of TestOperatorFailoverView: app
// fails over from east (tier 1) to west (tier 2); web answers both and
// loses east; old has only east and falls back to nothing; w draws one of
// two west addresses per query by weight.
const failoverNames = `        status %[1]s
        matrix %[2]s
        name app {
            policy priority
            ttl 5
            target 192.0.2.10    tier 1 check %[3]s
            target 198.51.100.10 tier 2 check %[4]s
        }
        name web {
            policy roundrobin
            ttl 5
            target 192.0.2.20    check %[3]s
            target 198.51.100.20 check %[4]s
        }
        name old {
            ttl 5
            fallback none
            target 192.0.2.30 check %[3]s
        }
        name w {
            policy weighted
            max-answers 1
            ttl 5
            target 203.0.113.1 weight 3 check %[4]s
            target 203.0.113.2 weight 1 check %[4]s
        }
`

const (
	foApp = "app.gslb.example.com."
	foWeb = "web.gslb.example.com."
	foOld = "old.gslb.example.com."
	foW   = "w.gslb.example.com."
)

// startBackendOn is startBackend on a fresh port of ip.
func startBackendOn(t *testing.T, kind, ip string) *backend {
	t.Helper()
	b := &backend{t: t, kind: kind, addr: net.JoinHostPort(ip, "0")}
	b.start()
	t.Cleanup(b.stop)
	return b
}

// TestOperatorFailoverView: one server (probing) and one agent on
// 127.0.4.1-2. After east's backend dies, every operator's view says what
// an operator must see at a glance: app on standby (answering its tier 2),
// web degraded, old answering nothing, a summary of it at the top of the
// page with the worst name first; why east is down as each observer saw
// it (the check and "connection refused", the agent's by gossip); the
// verdict's reason labelled with when it was recorded; and the metrics
// name the names. With HEALTHDNS_SCREENSHOTS=DIR and chromium installed,
// it saves the page before and after as DIR/status-healthy.png and
// DIR/status-failover.png.
func TestOperatorFailoverView(t *testing.T) {
	c := newClusterIn(t, "127.0.4", 0, "")
	srvIP := c.ip(1)
	east := startBackendOn(t, "http", c.ip(9))
	west := startBackendOn(t, "http", c.ip(9))
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
	base := "http://" + statusAddr
	c.names = fmt.Sprintf(failoverNames, statusAddr, srvIP+"/32", east.check(), west.check())

	s := c.addServer("dns1", 1, nil, true, 0)
	c.addAgent("agent1", 2)
	observers := []string{"agent1", "dns1"}
	c.waitFormed(observers, 7)
	srv := []*clusterServer{s}
	waitAll(t, srv, foApp, []string{"192.0.2.10"}, 5*time.Second)

	// Before: every name healthy.
	waitStates(t, base, map[string]string{foApp: status.NameHealthy, foWeb: status.NameHealthy, foOld: status.NameHealthy, foW: status.NameHealthy})
	// For the picture: a moment when every observer says up (on a loaded
	// machine a probe times out now and then, within fall).
	poll(5*time.Second, 50*time.Millisecond, func() bool {
		d, err := getDoc(base + "/status")
		if err != nil {
			return false
		}
		for _, n := range d.Names {
			for _, tg := range n.Targets {
				for _, o := range tg.Observations {
					if o.State != status.StateUp || o.Error != "" {
						return false
					}
				}
			}
		}
		return true
	})
	_, _, body, err := getHTTP(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	if page := string(body); !strings.Contains(page, `<div class="banner summary up">all 4 names healthy</div>`) ||
		!strings.Contains(page, "1 of these 2 IPv4 addresses per query, drawn by weight") {
		t.Errorf("page before the failover lacks the healthy summary or w's draw:\n%s", page)
	}
	screenshot(t, base+"/", "status-healthy.png")

	// east dies.
	took := watchChange(t, srv, foApp, []string{"192.0.2.10"}, []string{"198.51.100.10"}, cFailBound+3*time.Second, east.stop)
	logTimes(t, "failover", srv, took, cFailBound)
	doc := waitStates(t, base, map[string]string{foApp: status.NameStandby, foWeb: status.NameDegraded, foOld: status.NameNone, foW: status.NameHealthy})

	// Why, per observer, in the JSON: the check and its error, the
	// agent's by gossip; both wait for the agent's reason.
	var e *status.Target
	var why string
	if d, ok := poll(10*time.Second, 100*time.Millisecond, func() bool {
		doc, err = getDoc(base + "/status")
		if err != nil {
			why = err.Error()
			return false
		}
		e = nameTarget(docName(doc, foApp), "192.0.2.10")
		if e == nil || e.Verdict != status.StateDown || len(e.Observations) != len(observers) {
			why = fmt.Sprintf("east %+v", e)
			return false
		}
		for _, o := range e.Observations {
			if o.State != status.StateDown || !strings.Contains(o.Error, "connection refused") || !strings.Contains(o.Error, east.check()) {
				why = fmt.Sprintf("east as %s: %+v", o.Observer, o)
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("after %v, /status does not say why east is down for every observer: %s", d, why)
	} else {
		t.Logf("why east is down, %v after the states: %+v", d, e.Observations)
	}
	if n := docName(doc, foApp); n.Outcome != status.OutcomeHealthy || n.State != status.NameStandby {
		t.Errorf("app: outcome %q state %q, want healthy (west answers) and standby", n.Outcome, n.State)
	}
	if !strings.HasSuffix(e.Reason, " by quorum majority") || e.Since.IsZero() {
		t.Errorf("east: reason %q since %v, want one by quorum majority, and a since", e.Reason, e.Since)
	}
	at := e.Since.UTC().Format("15:04:05")

	// The page, with east's history open.
	code, _, body, err := getHTTP(base + "/?open=" + foApp + "/192.0.2.10")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /?open=: %d %v", code, err)
	}
	page := string(body)
	for _, want := range []string{
		`<div class="banner summary down">3 targets down, 1 name answering nothing (NODATA), 1 name on standby, 1 name degraded</div>`,
		`class="banner warn">standby</span> answering its standby targets: the preferred ones are down`,
		`class="banner down">none</span> nothing healthy and no fallback: NODATA`,
		`answering its preferred targets, 1 target down`,
		`class="banner degraded">degraded<`,
		`<details id="h-app-gslb-example-com--192-0-2-10" open>`,
		"192.0.2.10: at " + at + ": ",
		"connect: connection refused</span>",
		"<span class=\"loc\">" + east.check(),
		"1 of these 2 IPv4 addresses per query, drawn by weight",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page after the failover lacks %s", want)
		}
	}
	if n := strings.Count(page, "connection refused</span>"); n < 2 {
		t.Errorf("page shows %d errors, want at least east's by both observers", n)
	}
	last := -1
	for _, n := range []string{foOld, foApp, foWeb, foW} { // worst first
		i := strings.Index(page, `<h2 id="`+n+`">`)
		if i < last {
			t.Errorf("page lists %s at %d, before a worse name (at %d)", n, i, last)
		}
		last = i
	}
	screenshot(t, base+"/?open="+foApp+"/192.0.2.10", "status-failover.png")

	// CH TXT over UDP and TCP: the state, the labelled reason, the errors.
	reasonRE := regexp.MustCompile(`^192\.0\.2\.10 reason at ` + at + `: .* by quorum majority$`)
	for _, network := range []string{"udp", "tcp"} {
		m, err := chQuery(network, srvIP, s.addr, foApp, network == "udp")
		if err != nil {
			t.Fatalf("app CH TXT over %s: %v", network, err)
		}
		if m.Rcode != dns.RcodeSuccess || m.Truncated {
			t.Fatalf("app CH TXT over %s: %s TC %v", network, dns.RcodeToString[m.Rcode], m.Truncated)
		}
		lines := txtStrings(t, m)
		if !strings.Contains(lines[0], " outcome=healthy state=standby answer=198.51.100.10") {
			t.Errorf("app CH TXT over %s: summary %q, want state=standby", network, lines[0])
		}
		reasons, errs := 0, 0
		for _, l := range lines {
			if reasonRE.MatchString(l) {
				reasons++
			}
			if strings.HasPrefix(l, "192.0.2.10 observer=") && strings.Contains(l, " state=down ") &&
				strings.Contains(l, " error="+east.check()) && strings.Contains(l, "connection refused") {
				errs++
			}
		}
		if reasons != 1 || errs != len(observers) {
			t.Errorf("app CH TXT over %s: %d labelled reasons and %d observer errors for east, want 1 and %d:\n%s",
				network, reasons, errs, len(observers), strings.Join(lines, "\n"))
		}
		t.Logf("dig CH TXT %s over %s:\n%s", foApp, network, strings.Join(lines, "\n"))
	}

	// Metrics: the name states, and answers by name only for names.
	for _, q := range []string{foOld, foApp, "nosuch.gslb.example.com."} {
		if _, err := exchange(s.addr, "udp", q, dns.TypeA, false); err != nil {
			t.Fatal(err)
		}
	}
	text, err := metricsText(s.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`coredns_healthdns_name_state{name="app.gslb.example.com.",state="standby"} 1`,
		`coredns_healthdns_name_state{name="web.gslb.example.com.",state="degraded"} 1`,
		`coredns_healthdns_name_state{name="old.gslb.example.com.",state="none"} 1`,
		`coredns_healthdns_names{state="standby"} 1`,
		`coredns_healthdns_names{state="healthy"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, `name="app.gslb.example.com.",state="healthy"`) {
		t.Error("/metrics still has app's healthy state series")
	}
	answered := regexp.MustCompile(`(?m)^coredns_healthdns_answers_total\{name="old\.gslb\.example\.com\.",outcome="none",policy="roundrobin",server="[^"]*"\} [1-9]`)
	if !answered.MatchString(text) {
		t.Errorf("/metrics has no answers_total of old with outcome none:\n%s", grepLines(text, "answers_total"))
	}
	if strings.Contains(text, "nosuch") {
		t.Errorf("/metrics names a query name:\n%s", grepLines(text, "nosuch"))
	}
}

// waitStates polls the server's /status until each name has its state.
func waitStates(t *testing.T, base string, want map[string]string) *status.Document {
	t.Helper()
	var doc *status.Document
	var why string
	if d, ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		var err error
		doc, err = getDoc(base + "/status")
		if err != nil {
			why = err.Error()
			return false
		}
		for name, st := range want {
			n := docName(doc, name)
			if n == nil || n.State != st {
				why = fmt.Sprintf("%s: %+v", name, n)
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("names not in states %v after %v: %s", want, d, why)
	}
	return doc
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// screenshot saves url as HEALTHDNS_SCREENSHOTS/file with headless
// Chromium, when both are there.
func screenshot(t *testing.T, url, file string) {
	t.Helper()
	dir := os.Getenv("HEALTHDNS_SCREENSHOTS")
	if dir == "" {
		return
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Logf("no screenshot %s: %v", file, err)
		return
	}
	out := filepath.Join(dir, file)
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--screenshot="+out, "--window-size=1200,1600", url)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("screenshot %s: %v\n%s", file, err, b)
		return
	}
	t.Logf("screenshot of %s in %s", url, out)
}
