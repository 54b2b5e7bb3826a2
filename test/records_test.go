package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/webhook"

	"github.com/miekg/dns"
)

// The records tests run real servers with a record store (data) and an
// ExternalDNS webhook, and speak the webhook protocol to them directly:
// acknowledged batches survive kill -9 (TestWebhookKill9) and a restart
// of every server of a cluster (TestRecordsSurviveFullRestart), and bad
// input changes nothing (TestWebhookBadInput).

// recCorefile is a single server with a store and a webhook for owner
// local, whose default check is a backend the test runs (so every A and
// AAAA record's target is up).
const recCorefile = `gslb.example.com:%[1]s {
    bind 127.0.0.1
    errors
    healthdns {
        zonefile %[2]s
        interval 1s
        timeout 500ms
        rise 2
        fall 2
        ttl 5
        data %[3]s
        webhook %[4]s {
            owner local
            check %[5]s
        }
    }
}
`

// recClient speaks to webhooks. No keep-alive: the server behind a kept
// connection may have been killed since.
var recClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// recServer is a single server with a store and a webhook, which the test
// kills and restarts.
type recServer struct {
	t    *testing.T
	dir  string
	conf string
	addr string // DNS
	hook string // webhook base URL
	p    *process
}

func newRecServer(t *testing.T) *recServer {
	t.Helper()
	dir := t.TempDir()
	b := startBackend(t, "http")
	addr, hook := freeAddr(t), freeAddr(t)
	for hook == addr {
		hook = freeAddr(t)
	}
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	conf := writeFile(t, dir, "Corefile", fmt.Sprintf(recCorefile, portOf(t, addr), zf, filepath.Join(dir, "data"), hook, b.check()))
	return &recServer{t: t, dir: dir, conf: conf, addr: addr, hook: "http://" + hook}
}

// start runs the server and returns the time from its launch until it
// answers the zone's SOA (the webhook listens before DNS does).
func (s *recServer) start() time.Duration {
	s.t.Helper()
	start := time.Now()
	s.p = launch(s.t, s.dir, "-conf", s.conf)
	return recWaitReady(s.t, s.p, s.addr, start)
}

// recWaitReady polls the zone's SOA on addr every 5 ms until p answers it
// (15 s at most), and returns the time since start.
func recWaitReady(t *testing.T, p *process, addr string, start time.Time) time.Duration {
	t.Helper()
	_, ok := poll(15*time.Second, 5*time.Millisecond, func() bool {
		if p.Exited() {
			return true
		}
		m, err := exchange(addr, "udp", zone, dns.TypeSOA, false)
		return err == nil && m.Rcode == dns.RcodeSuccess && m.Authoritative && len(m.Answer) == 1
	})
	if p.Exited() {
		t.Fatalf("healthdns exited before it was ready (%v); output:\n%s", p.Err, p.Out.String())
	}
	if !ok {
		t.Fatalf("healthdns on %s not ready after 15s", addr)
	}
	return time.Since(start)
}

// kill9 sends SIGKILL and waits (bounded) until the process is gone.
func (s *recServer) kill9() {
	s.t.Helper()
	recKill9(s.t, s.p)
}

func recKill9(t *testing.T, p *process) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill -9: %v", err)
	}
	select {
	case <-p.Done:
	case <-time.After(10 * time.Second):
		t.Fatal("process still there 10 s after SIGKILL")
	}
}

// postChanges POSTs a batch to a webhook's /records in the protocol's
// media type.
func postChanges(url string, c records.Changes) (int, []byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return 0, nil, err
	}
	return recPost(url+"/records", webhook.MediaType, bytes.NewReader(b), int64(len(b)))
}

// recPost POSTs body (of length n, or -1 for a chunked body) with
// Content-Type ctype ("" for none).
func recPost(url, ctype string, body io.Reader, n int64) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		return 0, nil, err
	}
	req.ContentLength = n
	if n < 0 {
		req.ContentLength = -1
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", webhook.MediaType)
	resp, err := recClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, out, err
}

// getRecords GETs the webhook's /records: its raw body and the endpoints.
func getRecords(t *testing.T, url string) ([]byte, []records.Endpoint) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/records", nil)
	req.Header.Set("Accept", webhook.MediaType)
	resp, err := recClient.Do(req)
	if err != nil {
		t.Fatalf("GET /records: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != webhook.MediaType {
		t.Fatalf("GET /records: %d %s %v: %s", resp.StatusCode, resp.Header.Get("Content-Type"), err, body)
	}
	var eps []records.Endpoint
	if err := json.Unmarshal(body, &eps); err != nil {
		t.Fatalf("GET /records: %v: %s", err, body)
	}
	return body, eps
}

// recKey names a record set: "name TYPE".
func recKey(name, typ string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + " " + typ
}

// recView is what a set of endpoints says: "name TYPE" to its targets,
// canonical and sorted.
type recView map[string][]string

func viewOf(eps []records.Endpoint) recView {
	v := recView{}
	for _, e := range eps {
		ts := slices.Clone(e.Targets)
		sort.Strings(ts)
		v[recKey(e.DNSName, e.RecordType)] = ts
	}
	return v
}

// apply applies a batch as the store does: deletes and old updates out,
// then creates and new updates in.
func (v recView) apply(c records.Changes) {
	for _, e := range append(slices.Clone(c.Delete), c.UpdateOld...) {
		delete(v, recKey(e.DNSName, e.RecordType))
	}
	for _, e := range append(slices.Clone(c.Create), c.UpdateNew...) {
		var ts []string
		for _, t := range e.Targets {
			if a, err := netip.ParseAddr(t); err == nil && (e.RecordType == "A" || e.RecordType == "AAAA") {
				t = a.String() // canonical, as stored: fd00::0:1 is fd00::1
			}
			ts = append(ts, t)
		}
		sort.Strings(ts)
		v[recKey(e.DNSName, e.RecordType)] = ts
	}
}

func (v recView) clone() recView {
	out := recView{}
	for k, ts := range v {
		out[k] = slices.Clone(ts)
	}
	return out
}

// diff lists how got differs from v, at most 10 lines.
func (v recView) diff(got recView) []string {
	var out []string
	for k, want := range v {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("missing %s %q", k, want))
		} else if !slices.Equal(g, want) {
			out = append(out, fmt.Sprintf("%s is %q, want %q", k, g, want))
		}
	}
	for k, g := range got {
		if _, ok := v[k]; !ok {
			out = append(out, fmt.Sprintf("unexpected %s %q", k, g))
		}
	}
	sort.Strings(out)
	return out[:min(len(out), 10)]
}

// recAnswer is one DNS answer as the tests compare it: the rcode and the
// answer's data, sorted (addresses, TXT strings joined and in quotes as
// ExternalDNS writes TXT targets, CNAME targets without the final dot).
func recAnswer(addr, network, name string, qtype uint16) (string, error) {
	// A query lost on a busy machine (the client waits 500 ms) says
	// nothing about the answer: ask again, up to 4 times.
	var m *dns.Msg
	var err error
	for range 4 {
		if m, err = exchange(addr, network, name, qtype, false); err == nil {
			break
		}
	}
	if err != nil {
		return "", err
	}
	if !m.Authoritative {
		return "", fmt.Errorf("%s %s: AA not set", name, dns.TypeToString[qtype])
	}
	if m.Truncated {
		return "", fmt.Errorf("%s %s: truncated over %s", name, dns.TypeToString[qtype], network)
	}
	var data []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			data = append(data, rr.A.String())
		case *dns.AAAA:
			data = append(data, rr.AAAA.String())
		case *dns.TXT:
			data = append(data, `"`+strings.Join(rr.Txt, "")+`"`)
		case *dns.CNAME:
			data = append(data, strings.TrimSuffix(rr.Target, "."))
		default:
			data = append(data, rr.String())
		}
	}
	sort.Strings(data)
	return dns.RcodeToString[m.Rcode] + " " + strings.Join(data, ","), nil
}

// servedView asks addr over UDP for each record of want (and NXDOMAIN for
// each name of gone) and returns what differs, at most 10 lines.
func servedView(addr string, want recView, gone []string) []string {
	var bad []string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, typ, _ := strings.Cut(k, " ")
		got, err := recAnswer(addr, "udp", name, dns.StringToType[typ])
		exp := "NOERROR " + strings.Join(want[k], ",")
		if err != nil || got != exp {
			bad = append(bad, fmt.Sprintf("%s: %q (%v), want %q", k, got, err, exp))
		}
	}
	for _, name := range gone {
		got, err := recAnswer(addr, "udp", name, dns.TypeA)
		if err != nil || got != "NXDOMAIN " {
			bad = append(bad, fmt.Sprintf("%s A: %q (%v), want NXDOMAIN (deleted)", name, got, err))
		}
	}
	return bad[:min(len(bad), 10)]
}

func ep(name, typ string, targets ...string) records.Endpoint {
	return records.Endpoint{DNSName: name, RecordType: typ, Targets: targets}
}

// stats summarises durations: min, median, max.
func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %v, median %v, max %v", s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

// TestWebhookKill9: a server takes batches from two writers at once
// through its webhook (a series of creates, updates and deletes, and a
// bulk batch of 100 TXT records that replaces the previous one) and is
// killed with SIGKILL as soon as one of them is acknowledged, 100 times
// over (30 with -short), at three kinds of moment: right after the
// series' 204, after a random pause (0-20 ms) after it, and right after
// the bulk batch's 204. After each restart every acknowledged batch is
// listed by GET /records and served over DNS, every acknowledged delete
// stays deleted, and a batch in flight is there whole or not at all.
func TestWebhookKill9(t *testing.T) {
	rounds := 100
	if testing.Short() {
		rounds = 30
	}
	const bulkN = 100
	s := newRecServer(t)
	s.start()

	model := recView{}
	var gone []string
	bulk := func(r int) records.Changes {
		var c records.Changes
		for i := range bulkN {
			c.Create = append(c.Create, ep(fmt.Sprintf("bulk-%d.gslb.example.com", i), "TXT", fmt.Sprintf(`"bulk round=%d %s"`, r, strings.Repeat("x", 64))))
		}
		return c
	}
	// series is batch r of the first writer: creates, an update of the
	// previous batch's A record and a delete of the TXT record of the
	// batch before that.
	series := func(r int) (records.Changes, string) {
		var c records.Changes
		c.Create = []records.Endpoint{
			ep(fmt.Sprintf("r%d-a.gslb.example.com", r), "A", fmt.Sprintf("10.1.%d.%d", r/250, r%250+1), fmt.Sprintf("10.3.%d.%d", r/250, r%250+1)),
			ep(fmt.Sprintf("r%d-aaaa.gslb.example.com", r), "AAAA", fmt.Sprintf("fd00::%d:1", r)),
			ep(fmt.Sprintf("r%d-txt.gslb.example.com", r), "TXT", fmt.Sprintf(`"round=%d"`, r)),
		}
		if r >= 1 {
			old := fmt.Sprintf("r%d-a.gslb.example.com", r-1)
			c.UpdateOld = []records.Endpoint{ep(old, "A", model[recKey(old, "A")]...)}
			c.UpdateNew = []records.Endpoint{ep(old, "A", fmt.Sprintf("10.2.%d.%d", (r-1)/250, (r-1)%250+1))}
		}
		deleted := ""
		if r >= 2 {
			deleted = fmt.Sprintf("r%d-txt.gslb.example.com", r-2)
			c.Delete = []records.Endpoint{ep(deleted, "TXT", model[recKey(deleted, "TXT")]...)}
		}
		return c, deleted
	}
	type result struct {
		code int
		err  error
	}
	post := func(c records.Changes) chan result {
		ch := make(chan result, 1)
		go func() {
			code, _, err := postChanges(s.hook, c)
			ch <- result{code, err}
		}()
		return ch
	}
	wait := func(ch chan result, what string) result {
		select {
		case res := <-ch:
			if res.err == nil && res.code != http.StatusNoContent {
				t.Fatalf("%s got %d, want 204 or a broken connection", what, res.code)
			}
			return res
		case <-time.After(15 * time.Second):
			t.Fatalf("%s did not end", what)
		}
		return result{}
	}

	bulkRound := -1 // the round of the bulk records on disk
	var restarts, pauses []time.Duration
	var inflight struct{ acked, appliedUnacked, lost int }
	torn, retried, final := 0, 0, 0
	kinds := [3]int{}
	r := 0
	for round := 0; round < rounds; round++ {
		c, deleted := series(r)
		mode := round % 3
		kinds[mode]++
		seriesCh, bulkCh := post(c), post(bulk(round))
		var seriesRes, bulkRes result
		switch mode {
		case 0, 1:
			seriesRes = wait(seriesCh, fmt.Sprintf("round %d: the series batch", round))
			if seriesRes.err != nil {
				t.Fatalf("round %d: the series batch failed before any kill: %v", round, seriesRes.err)
			}
			if mode == 1 {
				d := time.Duration(rand.IntN(20_000)) * time.Microsecond
				pauses = append(pauses, d)
				time.Sleep(d)
			}
			s.kill9()
			bulkRes = wait(bulkCh, fmt.Sprintf("round %d: the bulk batch in flight", round))
		case 2:
			bulkRes = wait(bulkCh, fmt.Sprintf("round %d: the bulk batch", round))
			if bulkRes.err != nil {
				t.Fatalf("round %d: the bulk batch failed before any kill: %v", round, bulkRes.err)
			}
			s.kill9()
			seriesRes = wait(seriesCh, fmt.Sprintf("round %d: the series batch in flight", round))
		}
		if !s.p.Exited() {
			s.kill9()
		}
		seriesAcked, bulkAcked := seriesRes.err == nil, bulkRes.err == nil

		d := s.start()
		restarts = append(restarts, d)
		if strings.Contains(s.p.Out.String(), "cut off a torn tail") {
			torn++
		}

		// What the webhook lists: the series so far, whole batches only,
		// plus the bulk records of one round, whole.
		_, eps := getRecords(t, s.hook)
		got := viewOf(eps)
		marker := got[recKey(fmt.Sprintf("r%d-txt.gslb.example.com", r), "TXT")]
		switch applied := len(marker) == 1; {
		case applied:
			model.apply(c)
			if deleted != "" {
				gone = append(gone, deleted)
			}
			r++
		case seriesAcked:
			t.Fatalf("round %d: the acknowledged series batch %d is lost", round, r)
		default:
			retried++ // never acknowledged, not there: the writer sends it again
		}
		first := got[recKey("bulk-0.gslb.example.com", "TXT")]
		switch {
		case len(first) == 1 && strings.Contains(first[0], fmt.Sprintf("round=%d ", round)):
			if bulkAcked {
				inflight.acked++
			} else {
				inflight.appliedUnacked++
			}
			bulkRound = round
		case bulkAcked:
			t.Fatalf("round %d: the acknowledged bulk batch is lost: bulk-0 is %q", round, first)
		default:
			inflight.lost++
		}
		want := model.clone()
		if bulkRound >= 0 {
			for _, e := range bulk(bulkRound).Create {
				want[recKey(e.DNSName, "TXT")] = e.Targets
			}
		}
		final = len(want)
		if diff := want.diff(got); len(diff) > 0 {
			t.Fatalf("round %d (mode %d): after kill -9 and restart GET /records differs (a batch half applied, or an acknowledged one lost):\n%s", round, mode, strings.Join(diff, "\n"))
		}
		// And DNS serves them, from the first answer on.
		if bad := servedView(s.addr, want, gone); len(bad) > 0 {
			t.Fatalf("round %d (mode %d): after kill -9 and restart DNS differs:\n%s", round, mode, strings.Join(bad, "\n"))
		}
	}
	// Over TCP too, once.
	for _, k := range []string{recKey(fmt.Sprintf("r%d-a.gslb.example.com", r-1), "A"), recKey(fmt.Sprintf("r%d-txt.gslb.example.com", r-1), "TXT")} {
		name, typ, _ := strings.Cut(k, " ")
		if got, err := recAnswer(s.addr, "tcp", name, dns.StringToType[typ]); err != nil || got != "NOERROR "+strings.Join(model[k], ",") {
			t.Errorf("%s over TCP: %q (%v)", k, got, err)
		}
	}
	t.Logf("%d kill -9 rounds with two writers at once (%d right after the series' 204, %d after a pause of %s, %d right after the bulk batch's 204): "+
		"every acknowledged batch survived (%d series batches, %d records and %d deletes at the end; %d series batches in flight were lost unacknowledged and sent again); "+
		"the bulk batch in flight: %d acknowledged and there, %d there though unacknowledged, %d not there (never half)",
		rounds, kinds[0], kinds[1], stats(pauses), kinds[2], r, final, len(gone), retried,
		inflight.acked, inflight.appliedUnacked, inflight.lost)
	t.Logf("restart after kill -9 until the first DNS answer: %s; %d restarts cut off a torn log tail", stats(restarts), torn)
}

// recClusterConf is the Corefile of a cluster server with a store; s1
// has a webhook too.
const recClusterConf = `gslb.example.com:%[1]d {
    bind %[2]s
    errors
    prometheus %[2]s:%[3]d
    healthdns {
        zonefile %[4]s
        interval 300ms
        timeout 150ms
        rise 2
        fall 2
        ttl 5
        data %[5]s
%[6]s        cluster {
            name %[7]s
            bind %[8]s
            join %[9]s
            keyfile %[10]s
            label %[11]s
            stale 2s
            sync-timeout 3s
            gossip-interval 100ms
            pushpull-interval 1s
            probe-interval 200ms
        }
    }
}
`

// TestRecordsSurviveFullRestart: three servers, each with its own data
// directory, on 127.0.0.101-103. Records written through s1's webhook
// (two batches: creates, then an update, a delete and a create) reach
// every server; then all three are killed with SIGKILL at once. Each data
// directory holds the owner's record set at the same version (read from a
// copy), and after all three restart their first answers (UDP and TCP)
// match the answers before, as does s1's GET /records.
func TestRecordsSurviveFullRestart(t *testing.T) {
	b := startBackend(t, "http")
	c := newCluster(t, 100, "")
	var hookPort int
	for _, p := range freePorts(t, 4, []string{c.ip(1)}) {
		if p != c.dnsPort && p != c.gossPort && p != c.metPort {
			hookPort = p
			break
		}
	}
	hook := net.JoinHostPort(c.ip(1), strconv.Itoa(hookPort))
	for i, name := range []string{"s1", "s2", "s3"} {
		ip := c.ip(i + 1)
		var join []string
		for j := 1; j <= 3; j++ {
			if j != i+1 {
				join = append(join, c.gossipAddr(c.ip(j)))
			}
		}
		wh := ""
		if i == 0 {
			wh = fmt.Sprintf("        webhook %s {\n            owner dc1\n            check %s\n        }\n", hook, b.check())
		}
		s := &clusterServer{
			name: name, ip: ip,
			addr:    net.JoinHostPort(ip, strconv.Itoa(c.dnsPort)),
			metrics: "http://" + net.JoinHostPort(ip, strconv.Itoa(c.metPort)) + "/metrics",
			dir:     filepath.Join(c.dir, name),
		}
		s.conf = fmt.Sprintf(recClusterConf, c.dnsPort, ip, c.metPort, c.zonefile, filepath.Join(s.dir, "data"), wh,
			name, c.gossipAddr(ip), strings.Join(join, " "), c.keyFile, cLabel)
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, s.dir, "Corefile", s.conf)
		c.servers = append(c.servers, s)
		c.startServer(s)
	}
	url := "http://" + hook

	batches := []records.Changes{
		{Create: []records.Endpoint{
			ep("web.gslb.example.com", "A", "192.0.2.1", "192.0.2.2"),
			ep("web.gslb.example.com", "AAAA", "2001:db8::1"),
			ep("api.gslb.example.com", "A", "198.51.100.7"),
			ep("old.gslb.example.com", "A", "203.0.113.9"),
			ep("a-web.gslb.example.com", "TXT", `"heritage=external-dns,external-dns/owner=dc1,external-dns/resource=service/default/web"`),
			ep("docs.gslb.example.com", "CNAME", "web.gslb.example.com"),
		}},
		{
			UpdateOld: []records.Endpoint{ep("api.gslb.example.com", "A", "198.51.100.7")},
			UpdateNew: []records.Endpoint{ep("api.gslb.example.com", "A", "198.51.100.8")},
			Delete:    []records.Endpoint{ep("old.gslb.example.com", "A", "203.0.113.9")},
			Create:    []records.Endpoint{ep("note.gslb.example.com", "TXT", `"v=2"`)},
		},
	}
	model := recView{}
	for i, ch := range batches {
		if code, body, err := postChanges(url, ch); err != nil || code != http.StatusNoContent {
			t.Fatalf("batch %d: %d %v: %s", i, code, err, body)
		}
		model.apply(ch)
	}
	gone := []string{"old.gslb.example.com"}
	// Every server answers them: replicated.
	start := time.Now()
	for _, s := range c.servers {
		var bad []string
		if _, ok := poll(10*time.Second, 20*time.Millisecond, func() bool {
			bad = servedView(s.addr, model, gone)
			return len(bad) == 0
		}); !ok {
			t.Fatalf("%s does not serve the records:\n%s", s.name, strings.Join(bad, "\n"))
		}
	}
	t.Logf("the records reached every server %v after the last 204", time.Since(start).Round(time.Millisecond))

	// The answers of every server, over UDP and TCP.
	questions := []struct {
		name  string
		qtype uint16
	}{
		{"web.gslb.example.com", dns.TypeA}, {"web.gslb.example.com", dns.TypeAAAA},
		{"api.gslb.example.com", dns.TypeA}, {"old.gslb.example.com", dns.TypeA},
		{"a-web.gslb.example.com", dns.TypeTXT}, {"docs.gslb.example.com", dns.TypeCNAME},
		{"docs.gslb.example.com", dns.TypeA}, {"note.gslb.example.com", dns.TypeTXT},
	}
	answers := func(s *clusterServer) ([]string, error) {
		var out []string
		for _, q := range questions {
			for _, network := range []string{"udp", "tcp"} {
				a, err := recAnswer(s.addr, network, q.name, q.qtype)
				if err != nil {
					return nil, err
				}
				out = append(out, fmt.Sprintf("%s %s %s: %s", network, q.name, dns.TypeToString[q.qtype], a))
			}
		}
		return out, nil
	}
	before := map[string][]string{}
	for _, s := range c.servers {
		a, err := answers(s)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		before[s.name] = a
	}
	if !slices.Equal(before["s1"], before["s2"]) || !slices.Equal(before["s1"], before["s3"]) {
		t.Fatalf("servers answer differently before the restart:\n%s", strings.Join(append(append(before["s1"], before["s2"]...), before["s3"]...), "\n"))
	}
	recordsBefore, _ := getRecords(t, url)
	t.Logf("every server answers (UDP and TCP alike):\n%s", strings.Join(before["s1"], "\n"))

	// kill -9 all three at once.
	var wg sync.WaitGroup
	for _, s := range c.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Cmd.Process.Kill()
		}()
	}
	wg.Wait()
	for _, s := range c.servers {
		recKill9(t, s.process) // waits until it is gone
	}

	// Each data directory holds the record set, at the same version: s2
	// and s3 stored what gossip brought them. Read from a copy, so the
	// servers restart from the directories exactly as the kill left them.
	var versions []string
	for _, s := range c.servers {
		cp := t.TempDir()
		dataDir := filepath.Join(s.dir, "data")
		files, err := os.ReadDir(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if b, err := os.ReadFile(filepath.Join(dataDir, f.Name())); err == nil {
				writeFile(t, cp, f.Name(), string(b))
			}
		}
		st, err := records.Open(cp, records.Options{Logf: t.Logf})
		if err != nil {
			t.Fatalf("%s: data directory: %v", s.name, err)
		}
		set := st.Set("dc1")
		st.Close()
		if diff := model.diff(viewOf(set.Endpoints)); len(diff) > 0 {
			t.Fatalf("%s's data directory after kill -9:\n%s", s.name, strings.Join(diff, "\n"))
		}
		versions = append(versions, set.Head.String())
	}
	if versions[0] != versions[1] || versions[0] != versions[2] {
		t.Fatalf("versions on disk differ: %v", versions)
	}
	t.Logf("after kill -9 of all three, each data directory holds owner dc1's %d records at version %s", len(model), versions[0])

	// Restart all three at once.
	start = time.Now()
	for _, s := range c.servers {
		c.launchServer(s)
	}
	ready := make([]time.Duration, len(c.servers))
	for i, s := range c.servers {
		ready[i] = recWaitReady(t, s.process, s.addr, start)
		a, err := answers(s)
		if err != nil {
			t.Fatalf("%s after the restart: %v", s.name, err)
		}
		if !slices.Equal(a, before[s.name]) {
			t.Fatalf("%s's first answers after the restart differ:\n got %q\nwant %q", s.name, a, before[s.name])
		}
	}
	logTimes(t, "full restart until each server answers (all launched at once)", c.servers, ready, 15*time.Second)
	if recordsAfter, _ := getRecords(t, url); !bytes.Equal(recordsAfter, recordsBefore) {
		t.Fatalf("s1's GET /records after the restart:\n%s\nbefore:\n%s", recordsAfter, recordsBefore)
	}
	// They stay so (nothing older comes back by gossip).
	time.Sleep(2 * time.Second)
	for _, s := range c.servers {
		if a, err := answers(s); err != nil || !slices.Equal(a, before[s.name]) {
			t.Fatalf("%s's answers 2 s after the restart differ (%v):\n got %q\nwant %q", s.name, err, a, before[s.name])
		}
	}
}

// TestWebhookBadInput: every kind of bad input of the protocol gets its
// 4xx, a JSON {"error": "..."} body, and changes nothing: GET /records is
// the same byte for byte and DNS answers the same.
func TestWebhookBadInput(t *testing.T) {
	s := newRecServer(t)
	s.start()
	seed := records.Changes{Create: []records.Endpoint{
		ep("app.gslb.example.com", "A", "192.0.2.1"),
		ep("app.gslb.example.com", "TXT", `"seed"`),
		ep("docs.gslb.example.com", "CNAME", "app.gslb.example.com"),
	}}
	if code, body, err := postChanges(s.hook, seed); err != nil || code != http.StatusNoContent {
		t.Fatalf("seed: %d %v: %s", code, err, body)
	}
	model := recView{}
	model.apply(seed)
	// Names the bad requests try to write; none may appear.
	never := []string{"new.gslb.example.com", "bad.gslb.example.com", "mx.gslb.example.com"}
	// DNS serves a batch shortly after its 204 (the server rebuilds its
	// answers when the store changes).
	var bad []string
	lag, ok := poll(5*time.Second, time.Millisecond, func() bool {
		bad = servedView(s.addr, model, never)
		return len(bad) == 0
	})
	if !ok {
		t.Fatalf("after the seed:\n%s", strings.Join(bad, "\n"))
	}
	t.Logf("the seed was served %v after its 204", lag.Round(100*time.Microsecond))
	recordsBefore, _ := getRecords(t, s.hook)

	valid := ep("new.gslb.example.com", "A", "192.0.2.50")
	changes := func(es ...records.Endpoint) string {
		b, _ := json.Marshal(records.Changes{Create: es})
		return string(b)
	}
	big := `{"create":[{"dnsName":"new.gslb.example.com","recordType":"TXT","targets":["` + strings.Repeat("x", 33<<20) + `"]}]}`
	cases := []struct {
		what  string
		path  string
		ctype string
		body  string
		chunk bool // send without a Content-Length
		want  int
	}{
		{"malformed JSON", "/records", webhook.MediaType, `{"create": [{"dnsName": "new.gslb.example.com"`, false, 400},
		{"not JSON at all", "/records", webhook.MediaType, `create new.gslb.example.com A 192.0.2.50`, false, 400},
		{"data after the JSON value", "/records", webhook.MediaType, changes(valid) + ` {}`, false, 400},
		{"empty body", "/records", webhook.MediaType, ``, false, 400},
		{"wrong JSON type", "/records", webhook.MediaType, `[` + changes(valid) + `]`, false, 400},
		{"media type application/json", "/records", "application/json", changes(valid), false, 415},
		{"no Content-Type", "/records", "", changes(valid), false, 415},
		{"media type version 2", "/records", "application/external.dns.webhook+json;version=2", changes(valid), false, 415},
		{"text/plain", "/records", "text/plain", changes(valid), false, 415},
		{"oversized body (33 MiB, Content-Length)", "/records", webhook.MediaType, big, false, 413},
		{"oversized body (33 MiB, chunked)", "/records", webhook.MediaType, big, true, 413},
		{"invalid name (bad characters)", "/records", webhook.MediaType, changes(ep("bad!name.gslb.example.com", "A", "192.0.2.50")), false, 422},
		{"invalid name (empty label)", "/records", webhook.MediaType, changes(ep("bad..gslb.example.com", "A", "192.0.2.50")), false, 422},
		{"invalid name (64-byte label)", "/records", webhook.MediaType, changes(ep(strings.Repeat("b", 64)+".gslb.example.com", "A", "192.0.2.50")), false, 422},
		{"invalid address (not an IP)", "/records", webhook.MediaType, changes(ep("bad.gslb.example.com", "A", "not-an-ip")), false, 422},
		{"invalid address (300.0.0.1)", "/records", webhook.MediaType, changes(ep("bad.gslb.example.com", "A", "300.0.0.1")), false, 422},
		{"invalid address (IPv6 in an A)", "/records", webhook.MediaType, changes(ep("bad.gslb.example.com", "A", "2001:db8::1")), false, 422},
		{"invalid address (IPv4 in an AAAA)", "/records", webhook.MediaType, changes(ep("bad.gslb.example.com", "AAAA", "192.0.2.1")), false, 422},
		{"invalid CNAME target", "/records", webhook.MediaType, changes(ep("bad.gslb.example.com", "CNAME", "not a host")), false, 422},
		{"unsupported type MX", "/records", webhook.MediaType, changes(ep("mx.gslb.example.com", "MX", "10 mail.example.com")), false, 422},
		{"unsupported type SRV", "/records", webhook.MediaType, changes(ep("bad.gslb.example.com", "SRV", "0 5 5060 sip.example.com")), false, 422},
		{"unsupported type NS", "/records", webhook.MediaType, changes(ep("bad.gslb.example.com", "NS", "ns.example.com")), false, 422},
		{"name outside the zone", "/records", webhook.MediaType, changes(ep("app.example.org", "A", "192.0.2.50")), false, 422},
		{"name outside the zone (suffix lookalike)", "/records", webhook.MediaType, changes(ep("gslb.example.com.evil.org", "A", "192.0.2.50")), false, 422},
		{"name outside the zone (parent)", "/records", webhook.MediaType, changes(ep("example.com", "A", "192.0.2.50")), false, 422},
		{"invalid healthdns property", "/records", webhook.MediaType, changes(records.Endpoint{DNSName: "bad.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.50"}, ProviderSpecific: []records.Property{{Name: "webhook/tier", Value: "first"}}}), false, 422},
		// One bad record spoils the batch: the good one is not applied.
		{"a valid and an invalid record in one batch", "/records", webhook.MediaType, changes(valid, ep("bad.gslb.example.com", "A", "300.0.0.1")), false, 422},
		{"a valid record and one outside the zone", "/records", webhook.MediaType, changes(valid, ep("app.example.org", "A", "192.0.2.50")), false, 422},
		{"a delete of a seeded record with a bad create", "/records", webhook.MediaType,
			`{"delete":[{"dnsName":"app.gslb.example.com","recordType":"A","targets":["192.0.2.1"]}],"create":[{"dnsName":"mx.gslb.example.com","recordType":"MX","targets":["10 mail.example.com"]}]}`, false, 422},
		{"adjustendpoints: malformed JSON", "/adjustendpoints", webhook.MediaType, `[{"dnsName":`, false, 400},
		{"adjustendpoints: wrong media type", "/adjustendpoints", "application/json", `[]`, false, 415},
	}
	// unchanged fails the test if GET /records or the DNS answers moved.
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		if after, _ := getRecords(t, s.hook); !bytes.Equal(after, recordsBefore) {
			t.Fatalf("%s changed GET /records:\n%s\nbefore:\n%s", what, after, recordsBefore)
		}
		if bad := servedView(s.addr, model, never); len(bad) > 0 {
			t.Fatalf("%s changed the DNS answers:\n%s", what, strings.Join(bad, "\n"))
		}
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			// Sent up to 5 times when the client may be cut off (see below).
			tries := 1
			if len(tc.body) > webhook.DefaultMaxBody {
				tries = 5
			}
			for range tries {
				var body io.Reader = strings.NewReader(tc.body)
				n := int64(len(tc.body))
				if tc.chunk {
					body, n = io.MultiReader(strings.NewReader(tc.body)), -1
				}
				req, _ := http.NewRequest(http.MethodPost, s.hook+tc.path, body)
				req.ContentLength = n
				if tc.ctype != "" {
					req.Header.Set("Content-Type", tc.ctype)
				}
				resp, err := recClient.Do(req)
				if err != nil {
					unchanged(t, tc.what)
					if len(tc.body) > webhook.DefaultMaxBody && !tc.chunk {
						t.Fatalf("an oversized body with a Content-Length got no 413, the client saw %v (state unchanged)", err)
					}
					t.Fatalf("%v", err)
				}
				out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
				var msg struct {
					Error *string `json:"error"`
				}
				jerr := json.Unmarshal(out, &msg)
				switch {
				case resp.StatusCode != tc.want:
					t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.want, out)
				case mt != "application/json" || jerr != nil || msg.Error == nil || *msg.Error == "":
					t.Errorf("%d with Content-Type %q and body %q: want a JSON {\"error\": ...}", resp.StatusCode, resp.Header.Get("Content-Type"), out)
				default:
					t.Logf("%d %s", resp.StatusCode, strings.TrimSpace(string(out[:min(len(out), 160)])))
				}
				// Nothing changed.
				unchanged(t, tc.what)
			}
		})
	}
	// And GET /records with an Accept it cannot serve: 406, JSON error.
	req, _ := http.NewRequest(http.MethodGet, s.hook+"/records", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := recClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotAcceptable || !json.Valid(out) {
		t.Errorf("GET /records with Accept text/html: %d %s, want 406 with a JSON error", resp.StatusCode, out)
	}
	// The server still takes a good batch after all that.
	if code, body, err := postChanges(s.hook, records.Changes{Create: []records.Endpoint{valid}}); err != nil || code != http.StatusNoContent {
		t.Fatalf("a good batch after the bad ones: %d %v: %s", code, err, body)
	}
	model.apply(records.Changes{Create: []records.Endpoint{valid}})
	if _, ok := poll(5*time.Second, 20*time.Millisecond, func() bool { return len(servedView(s.addr, model, never[1:])) == 0 }); !ok {
		t.Fatalf("the good batch is not served: %s", strings.Join(servedView(s.addr, model, never[1:]), "\n"))
	}
}
