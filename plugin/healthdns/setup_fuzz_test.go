package healthdns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// FuzzCorefile feeds the healthdns block parser any block body after a
// valid zonefile line. It must not panic; an error must name the Corefile
// line; a block it accepts must have names with targets, each with a check.
func FuzzCorefile(f *testing.F) {
	dir := f.TempDir()
	zf := filepath.Join(dir, "example.org.zone")
	if err := os.WriteFile(zf, []byte(testZone), 0o644); err != nil {
		f.Fatal(err)
	}
	key := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(key, []byte("T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"",
		"interval 1s\ntimeout 300ms\nrise 3\nfall 4\nttl 20",
		"name app {\npolicy priority\nmin-healthy 2\nfallback last-good\nquorum 2\ntarget 192.0.2.1 tier 1 check http://192.0.2.1:8080/healthz host app.example.org status 200,204 check tcp 192.0.2.1:443\n}",
		"name w.example.org. {\npolicy weighted\nttl 5\nfallback 192.0.2.200 2001:db8::200\ntarget 192.0.2.2 weight 0 check tcp 192.0.2.2:80\n}",
		"name g {\npolicy geo\ntarget 192.0.2.3 region eu check tcp 192.0.2.3:80\n}",
		"name s {\npolicy sticky\ntarget 2001:db8::1 check https://[2001:db8::1]/ insecure\n}",
		"cluster {\nname dns1\nbind 127.0.0.1:7946\njoin 127.0.0.2:7946\nkeyfile " + key + "\nlabel prod\nservers 3\n}",
		"cluster {\nname dns1\ninsecure\n}",
		"data /tmp/x\nwebhook 127.0.0.1:8888 {\nowner east\ncheck-networks 10.0.0.0/8\n}",
		"webhook 127.0.0.1:8888 owner local",
		"matrix 127.0.0.0/8 ::1\nstatus 127.0.0.1:8053",
		"matrix off",
		"name a {\n}\nname a {\n}",
		"name {\n",
		"cluster {\nname a\nstale soon\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		// Keep the parser away from device files: reading /dev/zero as a
		// zone or key file never ends, and that is not what is fuzzed here.
		for _, p := range []string{"/dev", "/proc", "/sys", "\\"} {
			if strings.Contains(body, p) {
				t.Skip()
			}
		}
		c := caddy.NewTestController("dns", "healthdns example.org {\nzonefile "+zf+"\n"+body+"\n}")
		cfg, err := parse(c)
		if err != nil {
			if !strings.Contains(err.Error(), "Testfile:") {
				t.Fatalf("error without a line: %v\n%s", err, body)
			}
			return
		}
		for _, n := range cfg.names {
			if len(n.Targets) == 0 {
				t.Fatalf("name %s accepted without targets\n%s", n.FQDN, body)
			}
			for _, tg := range n.Targets {
				if len(tg.Probe.Checks) == 0 && tg.Probe.Interval <= 0 {
					t.Fatalf("target %+v accepted without checks or interval\n%s", tg, body)
				}
			}
		}
	})
}
