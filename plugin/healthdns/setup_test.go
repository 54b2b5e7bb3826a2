package healthdns

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
)

const testZone = `$ORIGIN example.org.
@   3600 IN SOA ns1 hostmaster 1 3600 600 604800 60
@   3600 IN NS  ns1
ns1 3600 IN A   192.0.2.53
fixed 300 IN A  192.0.2.99
sub 3600 IN NS  ns.elsewhere.net.
moved 3600 IN DNAME elsewhere.net.
`

// writeKey writes a gossip key file (32 random bytes, base64) in a temp
// dir, as an operator makes one with head -c32 /dev/urandom | base64.
func writeKey(t testing.TB) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeZone(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "example.org.zone")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSetupParses(t *testing.T) {
	zf := writeZone(t, testZone)
	c := caddy.NewTestController("dns", `healthdns example.org {
		zonefile `+zf+`
		interval 1s
		timeout 300ms
		rise 3
		fall 4
		ttl 20
		name app {
			policy priority
			min-healthy 2
			fallback last-good
			quorum 2
			target 192.0.2.1 tier 1 check http://192.0.2.1:8080/healthz host app.example.org status 200,204 check tcp 192.0.2.1:443
			target 2001:db8::1 tier 2 check https://[2001:db8::1]/ insecure
		}
		name w.example.org. {
			policy weighted
			ttl 5
			timeout 1s
			interval 2s
			fallback 192.0.2.200 2001:db8::200
			target 192.0.2.2 weight 0 check tcp 192.0.2.2:80
		}
	}`)
	cfg, err := parse(c)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(cfg.names) != 2 {
		t.Fatalf("names = %d, want 2", len(cfg.names))
	}
	app := cfg.names[0]
	if app.FQDN != "app.example.org." || app.Policy != policy.Priority || app.MinHealthy != 2 || app.TTL != 20 ||
		app.Fallback != snapshot.FallbackLastGood || app.Quorum != (health.Quorum{Kind: health.AtLeast, N: 2}) {
		t.Errorf("app parsed as %+v", app)
	}
	t1 := app.Targets[0]
	if t1.Tier != 1 || len(t1.Probe.Checks) != 2 || t1.Probe.Checks[0].Host != "app.example.org" ||
		len(t1.Probe.Checks[0].Status) != 2 || t1.Probe.Rise != 3 || t1.Probe.Fall != 4 || t1.Probe.Interval.String() != "1s" {
		t.Errorf("first target parsed as %+v", t1)
	}
	if !app.Targets[1].Probe.Checks[0].Insecure || app.Targets[1].Tier != 2 {
		t.Errorf("second target parsed as %+v", app.Targets[1])
	}
	w := cfg.names[1]
	if w.MaxAnswers != 1 || w.Fallback != snapshot.FallbackFixed || len(w.Fixed) != 2 || w.Targets[0].Weight != 0 ||
		w.Targets[0].Probe.Timeout.String() != "1s" || w.Targets[0].Probe.Interval.String() != "2s" {
		t.Errorf("w parsed as %+v", w)
	}
}

// record-series: 10,000 unless set; 0 (none) is a value.
func TestSetupRecordSeries(t *testing.T) {
	zf := writeZone(t, testZone)
	for body, want := range map[string]int{"": 10000, "record-series 0": 0, "record-series 250000": 250000} {
		cfg, err := parse(caddy.NewTestController("dns", "healthdns example.org {\nzonefile "+zf+"\n"+body+"\n}"))
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if cfg.recordSeries != want {
			t.Errorf("%q: record-series %d, want %d", body, cfg.recordSeries, want)
		}
	}
}

func TestSetupWebhookCheckNetworks(t *testing.T) {
	zf := writeZone(t, testZone)
	c := caddy.NewTestController("dns", "healthdns example.org {\nzonefile "+zf+"\ndata "+t.TempDir()+"\nwebhook {\nowner eu\ncheck tcp {addr}:443\ncheck-networks 10.0.0.0/8 192.0.2.7\ncheck-networks 2001:db8::/32\n}\n}")
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.webhook.checkNetworks); got != "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32]" {
		t.Errorf("check-networks %s", got)
	}
}

// Every mistake stops start-up with the file, the line and the reason.
func TestSetupCluster(t *testing.T) {
	zf := writeZone(t, testZone)
	key := writeKey(t)
	for _, tc := range []struct {
		body          string
		servers       int
		forget, stale time.Duration
	}{
		{"name dns1\nkeyfile KEY", 0, 24 * time.Hour, 0},
		{"name dns1\ninsecure", 0, 24 * time.Hour, 0},
		{"name dns1\nkeyfile KEY\nservers 3\nforget-after 1h\nstale 30s", 3, time.Hour, 30 * time.Second},
	} {
		tc.body = strings.ReplaceAll(tc.body, "KEY", key)
		c := caddy.NewTestController("dns", "healthdns example.org {\nzonefile "+zf+"\ncluster {\n"+tc.body+"\n}\n}")
		cfg, err := parse(c)
		if err != nil {
			t.Fatalf("%q: %v", tc.body, err)
		}
		cc := cfg.cluster
		if cc.insecure != strings.Contains(tc.body, "insecure") {
			t.Errorf("%q: insecure %v", tc.body, cc.insecure)
		}
		if cc.servers != tc.servers || cc.forgetAfter != tc.forget || cc.stale != tc.stale {
			t.Errorf("%q: servers %d forget-after %v stale %v, want %d %v %v", tc.body, cc.servers, cc.forgetAfter, cc.stale, tc.servers, tc.forget, tc.stale)
		}
	}
}

func TestSetupErrors(t *testing.T) {
	zf := writeZone(t, testZone)
	bad := writeZone(t, "$ORIGIN example.org.\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nx IN A 300.1.1.1\n")
	noSOA := writeZone(t, "$ORIGIN example.org.\n@ IN NS ns1\n")
	key := writeKey(t)
	tests := []struct {
		name, body string
		line       string // "Testfile:N" expected in the error
		reason     string
	}{
		{"unknown option", "zonefile ZF\nfrobnicate 1", ":3", `unknown property "frobnicate"`},
		{"unknown name option", "zonefile ZF\nname app {\ncolour blue\n}", ":4", `unknown property "colour"`},
		{"bad ip", "zonefile ZF\nname app {\ntarget 192.0.2.300 check tcp 1.2.3.4:80\n}", ":4", "not an IPv4 or IPv6 address"},
		{"bad duration", "zonefile ZF\ninterval 5 seconds", ":3", "Wrong argument count"},
		{"bad duration value", "zonefile ZF\ninterval fast", ":3", `interval "fast"`},
		{"negative weight", "zonefile ZF\nname app {\ntarget 192.0.2.1 weight -1 check tcp 192.0.2.1:80\n}", ":4", `weight "-1"`},
		{"unknown policy", "zonefile ZF\nname app {\npolicy random\n}", ":4", `policy "random"`},
		{"unknown fallback", "zonefile ZF\nname app {\nfallback sometimes\n}", ":4", `fallback "sometimes"`},
		{"topology: bad network", "zonefile ZF\ntopology {\n10.0.0.0/33 eu\n}", ":4", `topology: "10.0.0.0/33": want a network`},
		{"topology: no region", "zonefile ZF\ntopology {\n10.0.0.0/8\n}", ":4", "want one region after the network"},
		{"topology: bad region", "zonefile ZF\ntopology {\n10.0.0.0/8 EU!\n}", ":4", `region "EU!"`},
		{"topology: network twice", "zonefile ZF\ntopology {\n10.0.0.0/8 eu\n10.1.0.0/8 us\n}", ":5", "10.0.0.0/8 is listed twice"},
		{"topology: bad country", "zonefile ZF\ntopology {\ncountry GER eu\n}", ":4", "want a two-letter code"},
		{"topology: twice", "zonefile ZF\ntopology {\n}\ntopology {\n}", ":5", "only one topology block"},
		{"order without geo", "zonefile ZF\nname app {\norder eu us\ntarget 192.0.2.1 check tcp 192.0.2.1:80\n}", ":6", "order is for policy geo"},
		{"order region twice", "zonefile ZF\nname app {\npolicy geo\norder eu us eu\n}", ":5", "region eu is listed twice"},
		{"bad target region", "zonefile ZF\nname app {\ntarget 192.0.2.1 region Mars! check tcp 192.0.2.1:80\n}", ":4", `region "Mars!"`},
		{"sticky-prefix too long", "zonefile ZF\nname app {\npolicy sticky\nsticky-prefix 33\n}", ":5", `sticky-prefix "33"`},
		{"bad ecs", "zonefile ZF\necs maybe", ":3", `ecs "maybe": want on or off`},
		{"negative record-series", "zonefile ZF\nrecord-series -1", ":3", `record-series "-1": want how many names`},
		{"record-series not a number", "zonefile ZF\nrecord-series all", ":3", `record-series "all"`},
		{"record-series without a value", "zonefile ZF\nrecord-series", ":3", "Wrong argument count"},
		{"bad quorum", "zonefile ZF\nname app {\nquorum most\n}", ":4", `quorum "most"`},
		{"name outside zone", "zonefile ZF\nname app.example.com. {\ntarget 192.0.2.1 check tcp 192.0.2.1:80\n}", ":3", "outside the zones"},
		{"missing zone file", "zonefile /nonexistent/zone.db", ":2", "no such file"},
		{"no zonefile", "interval 1s", ":3", "has no zonefile"},
		{"broken zone file", "zonefile " + bad, ":2", bad + `: dns: bad A A: "300.1.1.1" at line: 4`},
		{"zone without SOA", "zonefile " + noSOA, ":2", "no SOA"},
		{"target without check", "zonefile ZF\nname app {\ntarget 192.0.2.1 tier 1\n}", ":4", "has no check"},
		{"bad check url", "zonefile ZF\nname app {\ntarget 192.0.2.1 check ftp://x/\n}", ":4", "scheme must be http or https"},
		{"bad tcp check", "zonefile ZF\nname app {\ntarget 192.0.2.1 check tcp 192.0.2.1\n}", ":4", "tcp check"},
		{"bad status", "zonefile ZF\nname app {\ntarget 192.0.2.1 check http://x/ status 999\n}", ":4", "status"},
		{"status twice", "zonefile ZF\nname app {\ntarget 192.0.2.1 check http://x/ status 200 status 204\n}", ":4", "status given twice"},
		{"word after check", "zonefile ZF\nname app {\ntarget 192.0.2.1 check http://x/ status 200 204\n}", ":4", `unknown option "204" (want tier, weight, region or check, or an option of the http check: host, status, body, insecure)`},
		{"option of another kind", "zonefile ZF\nname app {\ntarget 192.0.2.1 check tcp 192.0.2.1:80 body ok\n}", ":4", "body is an option of http, https checks, not tcp"},
		{"grpc insecure without tls", "zonefile ZF\nname app {\ntarget 192.0.2.1 check grpc 192.0.2.1:50051 insecure\n}", ":4", "needs tls"},
		{"body without text", "zonefile ZF\nname app {\ntarget 192.0.2.1 check http://x/ body\n}", ":4", "body needs a value"},
		{"webhook check unknown option", "zonefile ZF\ndata /tmp/x\nwebhook {\nowner eu\ncheck tcp {addr}:443 tls\n}", ":6", "tls is an option of grpc checks"},
		{"name with no target", "zonefile ZF\nname app {\npolicy priority\n}", ":3", "has no target"},
		{"duplicate name", "zonefile ZF\nname app {\ntarget 192.0.2.1 check tcp 192.0.2.1:80\n}\nname app {\ntarget 192.0.2.1 check tcp 192.0.2.1:80\n}", ":6", "already defined at line 3"},
		{"duplicate target", "zonefile ZF\nname app {\ntarget 192.0.2.1 check tcp 192.0.2.1:80\ntarget 192.0.2.1 check tcp 192.0.2.1:81\n}", ":5", "listed twice"},
		{"name with static A", "zonefile ZF\nname fixed {\ntarget 192.0.2.1 check tcp 192.0.2.1:80\n}", ":3", "also has A records"},
		{"name below delegation", "zonefile ZF\nname x.sub {\ntarget 192.0.2.1 check tcp 192.0.2.1:80\n}", ":3", "below the delegation"},
		{"name below a DNAME", "zonefile ZF\nname x.moved {\ntarget 192.0.2.1 check tcp 192.0.2.1:80\n}", ":3", "below the DNAME moved.example.org."},
		{"timeout over interval", "zonefile ZF\ninterval 1s\ntimeout 2s\nname app {\ntarget 192.0.2.1 check tcp 192.0.2.1:80\n}", ":5", "longer than interval"},
		{"missing brace", "zonefile ZF\nname app\n", ":3", "want {"},
		{"bad ttl", "zonefile ZF\nttl -5", ":3", `ttl "-5"`},
		{"max answers zero", "zonefile ZF\nname app {\nmax-answers 0\n}", ":4", "max-answers"},
		{"cluster without name", "zonefile ZF\ncluster {\nbind 127.0.0.1:7946\n}", ":5", "name is required"},
		{"cluster without key", "zonefile ZF\ncluster {\nname a\nbind 127.0.0.1:7946\n}", ":3", "cluster: no keyfile: without a key anyone who can reach the gossip port (127.0.0.1:7946)"},
		{"cluster key and insecure", "zonefile ZF\ncluster {\nname a\nkeyfile KEY\ninsecure\n}", ":3", "keyfile and insecure: choose one"},
		{"cluster insecure with a value", "zonefile ZF\ncluster {\nname a\ninsecure yes\n}", ":5", "cluster insecure: takes no value"},
		{"cluster unknown property", "zonefile ZF\ncluster {\nname a\ngossip fast\n}", ":5", `cluster: unknown property "gossip"`},
		{"cluster bad duration", "zonefile ZF\ncluster {\nname a\nstale soon\n}", ":5", `cluster stale "soon"`},
		{"cluster bad bind", "zonefile ZF\ncluster {\nname a\nbind 127.0.0.1\n}", ":5", `cluster bind "127.0.0.1"`},
		{"cluster bad join", "zonefile ZF\ncluster {\nname a\njoin host\n}", ":5", `cluster join "host"`},
		{"cluster missing key file", "zonefile ZF\ncluster {\nname a\nkeyfile /nonexistent/key\n}", ":5", "cluster keyfile"},
		{"cluster probe maybe", "zonefile ZF\ncluster {\nname a\nprobe maybe\n}", ":5", `cluster probe "maybe"`},
		{"cluster servers zero", "zonefile ZF\ncluster {\nname a\nservers 0\n}", ":5", `cluster servers "0": want the number of servers and witnesses`},
		{"cluster servers words", "zonefile ZF\ncluster {\nname a\nservers three\n}", ":5", `cluster servers "three"`},
		{"cluster servers twice the value", "zonefile ZF\ncluster {\nname a\nservers 3 5\n}", ":5", "cluster servers: want one value"},
		{"cluster forget-after too short", "zonefile ZF\ncluster {\nname a\nforget-after 1s\n}", ":5", `cluster forget-after "1s": want a duration from 1m0s`},
		{"cluster bad clients", "zonefile ZF\ncluster {\nname a\nclients 7947\n}", ":5", `cluster clients "7947": want host:port`},
		{"cluster clients without key", "zonefile ZF\ncluster {\nname a\nclients 127.0.1.1:7947\n}", ":6", "cluster clients: needs keyfile"},
		{"cluster max-clients zero", "zonefile ZF\ncluster {\nname a\nmax-clients 0\n}", ":5", `cluster max-clients "0"`},
		{"webhook without owner", "zonefile ZF\ndata /tmp/x\nwebhook {\ncheck tcp {addr}:443\n}", ":6", "owner is required"},
		{"webhook without check", "zonefile ZF\ndata /tmp/x\nwebhook {\nowner eu\n}", ":6", "check is required"},
		{"webhook without data", "zonefile ZF\nwebhook {\nowner eu\ncheck tcp {addr}:443\n}", ":", "needs data"},
		{"webhook bad check", "zonefile ZF\ndata /tmp/x\nwebhook {\nowner eu\ncheck ftp://{addr}/\n}", ":6", "webhook check"},
		{"webhook bad check network", "zonefile ZF\ndata /tmp/x\nwebhook {\nowner eu\ncheck-networks 10.0.0.0/8 intranet\n}", ":6", `webhook check-networks "intranet"`},
		{"webhook bad owner", "zonefile ZF\ndata /tmp/x\nwebhook {\nowner e/u\n}", ":5", "webhook owner"},
		{"webhook bad address", "zonefile ZF\ndata /tmp/x\nwebhook localhost {\nowner eu\n}", ":4", `webhook "localhost"`},
		{"status bad address", "zonefile ZF\nstatus 8053", ":3", `status "8053"`},
		{"matrix bad network", "zonefile ZF\nmatrix everyone", ":3", `matrix "everyone"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.ReplaceAll(strings.ReplaceAll(tc.body, "ZF", zf), "KEY", key)
			c := caddy.NewTestController("dns", "healthdns example.org {\n"+body+"\n}")
			_, err := parse(c)
			if err == nil {
				t.Fatal("parse succeeded, want an error")
			}
			msg := err.Error()
			if tc.line != ":" && !strings.HasPrefix(msg, "Testfile"+tc.line+" ") {
				t.Errorf("error %q does not start with the Corefile and line Testfile%s", msg, tc.line)
			}
			if !strings.Contains(msg, tc.reason) {
				t.Errorf("error %q does not say %q", msg, tc.reason)
			}
		})
	}
}
