package externaldns

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"sigs.k8s.io/external-dns/endpoint"
	"sigs.k8s.io/external-dns/source/annotations"
)

// The end-to-end test runs, on 127.0.0.91-94 (a block no other test of
// the repository uses):
//
//	127.0.0.91  healthdns server dns1: cluster, data dir, no webhook of its
//	            own; the Corefile defines app (policy priority) with one
//	            target of its own in tier 3
//	127.0.0.92  healthdns-agent, ExternalDNS sidecar of cluster eu
//	            (-webhook, -owner eu, -default-tier 1)
//	127.0.0.93  healthdns-agent, ExternalDNS sidecar of cluster us
//	            (-webhook, -owner us, -default-tier 2)
//	127.0.0.94  the HTTP backends the checks probe: eu's, us's, and the
//	            Corefile target's
//
// ExternalDNS's own client, TXT registry and planner drive each sidecar
// for its owner, and after every step the server's DNS answers are read
// over UDP and TCP.
const (
	e2eServerIP = "127.0.0.91"
	e2eEuIP     = "127.0.0.92"
	e2eUsIP     = "127.0.0.93"
	e2eBackIP   = "127.0.0.94"

	// Check timing of the server (and so of the catalog the agents probe).
	e2eInterval = 300 * time.Millisecond
	e2eLabel    = "externaldns-e2e"
	// e2eWait bounds every wait for an answer: gossip (100 ms rounds)
	// plus a probe round or two plus fall (2 × 300 ms), with room for a
	// busy machine.
	e2eWait = 10 * time.Second
)

const e2eZone = `$ORIGIN gslb.example.com.
$TTL 300
@       IN SOA  ns1.gslb.example.com. hostmaster.example.com. 1 3600 600 604800 30
        IN NS   ns1.gslb.example.com.
ns1     IN A    127.0.0.1
`

// e2eCorefile: the server's app name (priority) has a target of its own in
// tier 3, so that app answers something before and after the clusters
// publish (a name needs a target), and the owners' tiers 1 and 2 come
// first.
const e2eCorefile = `gslb.example.com:%[1]d {
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
        name app {
            policy priority
            ttl 5
            target 203.0.113.10 tier 3 check %[6]s
        }
        cluster {
            name dns1
            bind %[2]s:%[7]d
            keyfile %[8]s
            label %[9]s
            stale 2s
            sync-timeout 1s
            gossip-interval 100ms
            pushpull-interval 1s
            probe-interval 200ms
        }
    }
}
`

// realServer is the server and the two sidecars.
type realServer struct {
	t        *testing.T
	dnsAddr  string
	metrics  string
	backends map[string]*backend // eu, us, corefile
	urls     map[string]string   // owner: webhook URL
	health   map[string]string   // owner: /healthz URL
}

func startRealServer(t *testing.T) *realServer {
	t.Helper()
	dir := t.TempDir()
	ports := freePorts(t, 5, []string{e2eServerIP, e2eEuIP, e2eUsIP})
	dnsPort, gossPort, metPort, hookPort, healthPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	r := &realServer{
		t:        t,
		dnsAddr:  net.JoinHostPort(e2eServerIP, strconv.Itoa(dnsPort)),
		metrics:  fmt.Sprintf("http://%s:%d/metrics", e2eServerIP, metPort),
		backends: map[string]*backend{},
		urls:     map[string]string{},
		health:   map[string]string{},
	}
	for _, b := range []string{"eu", "us", "corefile"} {
		r.backends[b] = startBackend(t, e2eBackIP)
	}
	keyFile := writeFile(t, dir, "gossip.key", newGossipKey(t)+"\n")
	zf := writeFile(t, dir, "gslb.zone", e2eZone)
	conf := writeFile(t, dir, "Corefile", fmt.Sprintf(e2eCorefile, dnsPort, e2eServerIP, metPort, zf,
		filepath.Join(dir, "dns1-data"), r.backends["corefile"].check(), gossPort, keyFile, e2eLabel))
	srv := launch(t, "healthdns dns1", dir, serverBinary, "-conf", conf)
	start := time.Now()
	if _, ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		a, err := lookup(r.dnsAddr, "udp", zone, dns.ClassINET, dns.TypeSOA)
		return srv.Exited() || (err == nil && a.Rcode == "NOERROR" && len(a.Data) == 1)
	}); !ok || srv.Exited() {
		t.Fatalf("server not answering on %s (exited %v)", r.dnsAddr, srv.Exited())
	}
	t.Logf("server ready after %v", time.Since(start).Round(time.Millisecond))

	for _, a := range []struct{ owner, ip, tier string }{{"eu", e2eEuIP, "1"}, {"us", e2eUsIP, "2"}} {
		hook := net.JoinHostPort(a.ip, strconv.Itoa(hookPort))
		health := net.JoinHostPort(a.ip, strconv.Itoa(healthPort))
		r.urls[a.owner] = "http://" + hook
		r.health[a.owner] = "http://" + health + "/healthz"
		launch(t, "healthdns-agent "+a.owner, dir, agentBinary,
			"-name", "agent-"+a.owner, "-observer", a.owner,
			"-bind", net.JoinHostPort(a.ip, strconv.Itoa(gossPort)),
			"-join", net.JoinHostPort(e2eServerIP, strconv.Itoa(gossPort)),
			"-keyfile", keyFile, "-label", e2eLabel,
			"-gossip-interval", "100ms", "-pushpull-interval", "1s", "-member-probe-interval", "200ms", "-leave-timeout", "1s",
			"-webhook", hook, "-webhook-health", health,
			"-owner", a.owner, "-data", t.TempDir(), "-domain-filter", zone,
			"-default-check", r.backends[a.owner].check(), "-default-tier", a.tier)
	}
	// The cluster is formed when the server counts three members alive.
	var why string
	if d, ok := poll(20*time.Second, 50*time.Millisecond, func() bool {
		v, err := metric(r.metrics, `coredns_healthdns_gossip_members{state="alive"}`)
		why = fmt.Sprintf("%v members alive (%v)", v, err)
		return err == nil && v == 3
	}); !ok {
		t.Fatalf("cluster not formed after %v: %s", d, why)
	}
	for owner, u := range r.health {
		if code, body := get(t, u); code != http.StatusOK || strings.TrimSpace(body) != "OK" {
			t.Fatalf("%s sidecar %s: %d %s", owner, u, code, body)
		}
	}
	t.Logf("cluster of dns1, agent-eu, agent-us formed %v after the server's start", time.Since(start).Round(time.Millisecond))
	return r
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one sample (name with labels, as exposed) from url.
func metric(url, sample string) (float64, error) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no sample %s", sample)
}

// env is the Env of the real server: the sidecars' URLs, and the server's
// answers over the wire (UDP and TCP agreeing).
func (r *realServer) env() Env {
	return Env{
		URL: func(owner string) string { return r.urls[owner] },
		Answers: func(t *testing.T, name, qtype string) []string {
			t.Helper()
			a, err := both(r.dnsAddr, name, dns.StringToType[qtype])
			if err != nil {
				t.Fatal(err)
			}
			return a.Data
		},
	}
}

// expect waits until the server answers name/qtype with want over UDP and
// TCP, and returns how long that took.
func (r *realServer) expect(step, name string, qtype uint16, want answer) time.Duration {
	r.t.Helper()
	var last answer
	var err error
	d, ok := poll(e2eWait, 20*time.Millisecond, func() bool {
		last, err = both(r.dnsAddr, name, qtype)
		return err == nil && last.equal(want)
	})
	if !ok {
		r.t.Fatalf("%s: %s %s answers %v (%v) after %v, want %v", step, name, dns.TypeToString[qtype], last, err, d.Round(time.Millisecond), want)
	}
	return d
}

// expectAll is expect for several questions; it logs the time the slowest
// took.
func (r *realServer) expectAll(step string, qs ...question) {
	r.t.Helper()
	var slowest time.Duration
	for _, q := range qs {
		slowest = max(slowest, r.expect(step, q.name, q.qtype, q.want))
	}
	r.t.Logf("%s: %d answers as expected over UDP and TCP within %v", step, len(qs), slowest.Round(time.Millisecond))
}

type question struct {
	name  string
	qtype uint16
	want  answer
}

// matrixTargets reads the health matrix of name (CH TXT) and returns its
// targets as "ADDR tier=N owner=OWNER", sorted. Over TCP: the matrix of
// a few targets does not fit in 512 bytes.
func (r *realServer) matrixTargets(name string) ([]string, error) {
	a, err := lookup(r.dnsAddr, "tcp", name, dns.ClassCHAOS, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`^"target (\S+) tier=(\d+) weight=\d+ owner=(\S+) `)
	var out []string
	for _, l := range a.Data {
		if m := re.FindStringSubmatch(l); m != nil {
			out = append(out, fmt.Sprintf("%s tier=%s owner=%s", m[1], m[2], m[3]))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (r *realServer) expectMatrix(step, name string, want ...string) {
	r.t.Helper()
	sort.Strings(want)
	var last []string
	var err error
	if d, ok := poll(e2eWait, 20*time.Millisecond, func() bool {
		last, err = r.matrixTargets(name)
		return err == nil && strings.Join(last, "\n") == strings.Join(want, "\n")
	}); !ok {
		r.t.Fatalf("%s: the matrix of %s lists %q (%v) after %v, want %q", step, name, last, err, d.Round(time.Millisecond), want)
	}
}

// registryTXT is the TXT record ExternalDNS's registry writes for a
// Service's endpoint, as served.
func registryTXT(owner, svc string) string {
	return fmt.Sprintf(`"heritage=external-dns,external-dns/owner=%s,external-dns/resource=service/default/%s"`, owner, svc)
}

// TestTwoClustersRealServer: two clusters (eu, us) publish app and www
// through their own healthdns-agent sidecars with ExternalDNS's code; the
// server merges both owners' targets (app: priority, eu's tier 1 first;
// www: round robin, both), serves the TXT registry, fails over from eu to
// us when eu's backend dies, and keeps us's targets when eu deletes its
// own.
func TestTwoClustersRealServer(t *testing.T) {
	r := startRealServer(t)
	env := r.env()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	const (
		www     = "www." + zone
		corefil = "203.0.113.10" // the Corefile's own app target, tier 3
	)
	aApp, aWww := "a-app."+zone, "a-www."+zone

	// Before anything is published: app answers the Corefile's target,
	// www does not exist.
	r.expectAll("start",
		question{app, dns.TypeA, noerror(corefil)},
		question{www, dns.TypeA, nxdomain},
		question{aApp, dns.TypeTXT, nxdomain})

	// Negotiate: each cluster's ExternalDNS starts against its sidecar.
	eu := NewCluster(t, ctx, "eu", env.URL("eu"))
	us := NewCluster(t, ctx, "us", env.URL("us"))
	for _, c := range []*Cluster{eu, us} {
		df := c.Provider.GetDomainFilter()
		if !df.Match(app) || df.Match("app.example.org") {
			t.Fatalf("%s: negotiated domain filter %+v", c.Owner, df)
		}
	}
	r.expectAll("negotiate", question{app, dns.TypeA, noerror(corefil)})

	// Create: eu publishes app and www.
	euApp := Service{Name: app, Addrs: []string{"192.0.2.1"}}
	euWww := Service{Name: www, Addrs: []string{"192.0.2.1"}}
	if got := summary(eu.Reconcile(t, ctx, euApp, euWww)); got != "create [A app.gslb.example.com, A www.gslb.example.com] update [] delete []" {
		t.Fatalf("eu's first plan: %s", got)
	}
	r.expectAll("eu created",
		question{app, dns.TypeA, noerror("192.0.2.1")},
		question{www, dns.TypeA, noerror("192.0.2.1")},
		question{aApp, dns.TypeTXT, noerror(registryTXT("eu", "app"))},
		question{aWww, dns.TypeTXT, noerror(registryTXT("eu", "www"))})
	r.expectMatrix("eu created", app, "192.0.2.1 tier=1 owner=eu", corefil+" tier=3 owner=-")

	// Read: eu reads its records back through the registry.
	expect(t, "eu reads", eu.Records(t, ctx), []string{
		"app.gslb.example.com A 192.0.2.1 owner=eu",
		"www.gslb.example.com A 192.0.2.1 owner=eu",
	})
	expect(t, "us reads", us.Records(t, ctx), nil)

	// Create: us publishes the same names. Its own view does not hold
	// eu's records, so it plans creates rather than nothing.
	usApp := Service{Name: app, Addrs: []string{"198.51.100.1", "2001:db8::1"}}
	usWww := Service{Name: www, Addrs: []string{"198.51.100.1"}}
	if got := summary(us.Reconcile(t, ctx, usApp, usWww)); got != "create [A app.gslb.example.com, A www.gslb.example.com, AAAA app.gslb.example.com] update [] delete []" {
		t.Fatalf("us's first plan: %s", got)
	}
	r.expectAll("us created",
		// priority: eu's tier 1 first; us's AAAA is the only AAAA.
		question{app, dns.TypeA, noerror("192.0.2.1")},
		question{app, dns.TypeAAAA, noerror("2001:db8::1")},
		// round robin: the targets of both owners merged.
		question{www, dns.TypeA, noerror("192.0.2.1", "198.51.100.1")},
		question{aApp, dns.TypeTXT, noerror(registryTXT("eu", "app"), registryTXT("us", "app"))},
		question{"aaaa-app." + zone, dns.TypeTXT, noerror(registryTXT("us", "app"))},
		question{aWww, dns.TypeTXT, noerror(registryTXT("eu", "www"), registryTXT("us", "www"))})
	r.expectMatrix("us created", app,
		"192.0.2.1 tier=1 owner=eu", "198.51.100.1 tier=2 owner=us", "2001:db8::1 tier=2 owner=us", corefil+" tier=3 owner=-")
	expect(t, "us reads", us.Records(t, ctx), []string{
		"app.gslb.example.com A 198.51.100.1 owner=us",
		"app.gslb.example.com AAAA 2001:db8::1 owner=us",
		"www.gslb.example.com A 198.51.100.1 owner=us",
	})
	expect(t, "eu still reads", eu.Records(t, ctx), []string{
		"app.gslb.example.com A 192.0.2.1 owner=eu",
		"www.gslb.example.com A 192.0.2.1 owner=eu",
	})
	// A second cycle with nothing new plans nothing.
	if ch := eu.Reconcile(t, ctx, euApp, euWww); ch.HasChanges() {
		t.Fatalf("eu: a cycle with nothing new planned %s", summary(ch))
	}
	if ch := us.Reconcile(t, ctx, usApp, usWww); ch.HasChanges() {
		t.Fatalf("us: a cycle with nothing new planned %s", summary(ch))
	}

	// Adjust: normalises healthdns's properties, leaves out what it cannot
	// serve, and changes nothing.
	adj, err := us.Provider.AdjustEndpoints([]*endpoint.Endpoint{
		endpoint.NewEndpoint("web."+zone, "A", "192.0.2.7").WithProviderSpecific("webhook/tier", "01"),
		endpoint.NewEndpoint("mail."+zone, "MX", "10 mx.example.com"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(adj) != 1 || adj[0].DNSName != "web."+zone {
		t.Fatalf("adjusted %+v", adj)
	}
	props := map[string]string{}
	for _, p := range adj[0].ProviderSpecific {
		props[p.Name] = p.Value
	}
	if props["webhook/tier"] != "1" || props["webhook/check"] != r.backends["us"].check() {
		t.Fatalf("adjusted properties %v: want webhook/tier 1 (normalised) and us's default check", props)
	}
	r.expectAll("adjust",
		question{"web." + zone, dns.TypeA, nxdomain},
		question{app, dns.TypeA, noerror("192.0.2.1")})

	// Update: eu adds an address; us moves its A to tier 1 with the
	// webhook-tier annotation, and app answers both owners.
	euApp.Addrs = []string{"192.0.2.1", "192.0.2.2"}
	if got := summary(eu.Reconcile(t, ctx, euApp, euWww)); got != "create [] update [A app.gslb.example.com] delete []" {
		t.Fatalf("eu's update plan: %s", got)
	}
	r.expectAll("eu updated", question{app, dns.TypeA, noerror("192.0.2.1", "192.0.2.2")})
	usApp.Annotations = map[string]string{annotations.WebhookPrefix + "tier": "1"}
	if got := summary(us.Reconcile(t, ctx, usApp, usWww)); got != "create [] update [A app.gslb.example.com, AAAA app.gslb.example.com] delete []" {
		t.Fatalf("us's tier 1 plan: %s", got)
	}
	r.expectAll("us in tier 1", question{app, dns.TypeA, noerror("192.0.2.1", "192.0.2.2", "198.51.100.1")})
	r.expectMatrix("us in tier 1", app, "192.0.2.1 tier=1 owner=eu", "192.0.2.2 tier=1 owner=eu",
		"198.51.100.1 tier=1 owner=us", "2001:db8::1 tier=1 owner=us", corefil+" tier=3 owner=-")
	usApp.Annotations = nil // back to the owner's default, tier 2
	if got := summary(us.Reconcile(t, ctx, usApp, usWww)); got != "create [] update [A app.gslb.example.com, AAAA app.gslb.example.com] delete []" {
		t.Fatalf("us's back-to-default plan: %s", got)
	}
	r.expectAll("us back in tier 2", question{app, dns.TypeA, noerror("192.0.2.1", "192.0.2.2")})
	expect(t, "eu reads", eu.Records(t, ctx), []string{
		"app.gslb.example.com A 192.0.2.1,192.0.2.2 owner=eu",
		"www.gslb.example.com A 192.0.2.1 owner=eu",
	})

	// Failover: eu's backend dies; every observer sees eu's targets down
	// and app answers us (tier 2), www us alone. Then it comes back.
	start := time.Now()
	r.backends["eu"].stop()
	r.expectAll("eu's backend down",
		question{app, dns.TypeA, noerror("198.51.100.1")},
		question{www, dns.TypeA, noerror("198.51.100.1")})
	t.Logf("failover to us %v after eu's backend stopped", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	r.backends["eu"].start()
	r.expectAll("eu's backend back",
		question{app, dns.TypeA, noerror("192.0.2.1", "192.0.2.2")},
		question{www, dns.TypeA, noerror("192.0.2.1", "198.51.100.1")})
	t.Logf("back to eu %v after eu's backend restarted", time.Since(start).Round(time.Millisecond))

	// Delete: eu's services go. us's targets and registry records stay.
	if got := summary(eu.Reconcile(t, ctx)); got != "create [] update [] delete [A app.gslb.example.com, A www.gslb.example.com]" {
		t.Fatalf("eu's delete plan: %s", got)
	}
	r.expectAll("eu deleted",
		question{app, dns.TypeA, noerror("198.51.100.1")},
		question{app, dns.TypeAAAA, noerror("2001:db8::1")},
		question{www, dns.TypeA, noerror("198.51.100.1")},
		question{aApp, dns.TypeTXT, noerror(registryTXT("us", "app"))},
		question{aWww, dns.TypeTXT, noerror(registryTXT("us", "www"))})
	// The Env's view: the same answers, read once.
	expect(t, "A answers", env.Answers(t, app, "A"), []string{"198.51.100.1"})
	expect(t, "TXT answers", env.Answers(t, aApp, "TXT"), []string{registryTXT("us", "app")})
	r.expectMatrix("eu deleted", app, "198.51.100.1 tier=2 owner=us", "2001:db8::1 tier=2 owner=us", corefil+" tier=3 owner=-")
	expect(t, "eu reads", eu.Records(t, ctx), nil)
	expect(t, "us reads", us.Records(t, ctx), []string{
		"app.gslb.example.com A 198.51.100.1 owner=us",
		"app.gslb.example.com AAAA 2001:db8::1 owner=us",
		"www.gslb.example.com A 198.51.100.1 owner=us",
	})
	if ch := us.Reconcile(t, ctx, usApp, usWww); ch.HasChanges() {
		t.Fatalf("us after eu's delete planned %s", summary(ch))
	}

	// us leaves too: app is the Corefile's target again, www is gone.
	if got := summary(us.Reconcile(t, ctx)); got != "create [] update [] delete [A app.gslb.example.com, A www.gslb.example.com, AAAA app.gslb.example.com]" {
		t.Fatalf("us's delete plan: %s", got)
	}
	r.expectAll("us deleted",
		question{app, dns.TypeA, noerror(corefil)},
		question{app, dns.TypeAAAA, noerror()},
		question{www, dns.TypeA, nxdomain},
		question{aApp, dns.TypeTXT, nxdomain})
	r.expectMatrix("us deleted", app, corefil+" tier=3 owner=-")

	// The sidecars counted what they served.
	for owner := range r.health {
		u := strings.TrimSuffix(r.health[owner], "/healthz") + "/metrics"
		for _, s := range []string{
			fmt.Sprintf(`coredns_healthdns_webhook_records{owner=%q} 0`, owner),
			fmt.Sprintf(`coredns_healthdns_webhook_requests_total{code="204",endpoint="applychanges",owner=%q}`, owner),
		} {
			if _, body := get(t, u); !strings.Contains(body, s) {
				t.Errorf("%s sidecar metrics lack %s", owner, s)
			}
		}
	}
}
