package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testVersion = "v9.9.9-test"

// TestVersion builds both binaries with the release's -ldflags (from the
// Makefile, so a wrong variable path there fails here) and checks that
// every place a user looks says the same version: -version, /status,
// coredns_healthdns_build_info, and version.bind through the chaos plugin.
func TestVersion(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed: the release's -ldflags come from the Makefile")
	}
	ldflags, err := exec.Command("make", "-s", "-C", "..", "print-ldflags", "VERSION="+testVersion, "COMMIT=0123abc", "DATE=2026-11-26T12:00:00Z").Output()
	if err != nil {
		t.Fatalf("make print-ldflags: %v", err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", dir+string(filepath.Separator), "./cmd/healthdns", "./cmd/healthdns-agent")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	server, agent := filepath.Join(dir, "healthdns"), filepath.Join(dir, "healthdns-agent")

	for _, bin := range []string{server, agent} {
		out, err := exec.Command(bin, "-version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s -version: %v\n%s", bin, err, out)
		}
		for _, want := range []string{filepath.Base(bin) + " " + testVersion + "\n", "commit:  0123abc\n", "built:   2026-11-26T12:00:00Z\n", "CoreDNS: 1.15.0\n", "go:      go1."} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s -version:\n%s\nlacks %q", filepath.Base(bin), out, want)
			}
		}
	}

	const ip = "127.0.0.250"
	dnsAddr, metricsAddr, statusAddr := ip+":25353", ip+":25153", ip+":25053"
	corefile := fmt.Sprintf(`gslb.example.com:25353 {
    bind %[1]s
    prometheus %[2]s
    healthdns {
        zonefile zone.db
        status %[3]s
    }
}
bind:25353 server:25353 {
    bind %[1]s
    chaos
}
`, ip, metricsAddr, statusAddr)
	writeFile(t, dir, "zone.db", zoneText)
	writeFile(t, dir, "Corefile", corefile)
	cmd := exec.Command(server, "-conf", "Corefile")
	cmd.Dir = dir
	p := launchCmd(t, "healthdns", cmd)
	p.waitReadyOn(t, dnsAddr, 15*time.Second)
	if !strings.Contains(p.Out.String(), "healthdns-"+testVersion+" (CoreDNS-1.15.0)") {
		t.Errorf("start-up banner does not name the healthdns version:\n%s", p.Out.String())
	}

	for _, qname := range []string{"version.bind.", "version.server."} {
		m := new(dns.Msg)
		m.SetQuestion(qname, dns.TypeTXT)
		m.Question[0].Qclass = dns.ClassCHAOS
		r, err := dns.Exchange(m, dnsAddr)
		if err != nil {
			t.Fatalf("CH TXT %s: %v", qname, err)
		}
		want := "healthdns-" + testVersion + " (CoreDNS-1.15.0)"
		if len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != want {
			t.Errorf("CH TXT %s: %v, want %q", qname, r.Answer, want)
		}
	}

	checkBuild := func(what, statusURL, metricsURL string) {
		t.Helper()
		var doc struct {
			Build *struct{ Version, Commit, Date, CoreDNS, Go string } `json:"build"`
		}
		if err := getJSON(statusURL, &doc); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if doc.Build == nil || doc.Build.Version != testVersion || doc.Build.Commit != "0123abc" || doc.Build.Date != "2026-11-26T12:00:00Z" || doc.Build.CoreDNS != "1.15.0" {
			t.Errorf("%s /status build = %+v", what, doc.Build)
		}
		sample := fmt.Sprintf(`coredns_healthdns_build_info{commit="0123abc",coredns="1.15.0",date="2026-11-26T12:00:00Z",goversion=%q,version=%q}`, doc.Build.Go, testVersion)
		if v, err := metric(metricsURL, sample); err != nil || v != 1 {
			t.Errorf("%s /metrics: %s = %v, %v", what, sample, v, err)
		}
	}
	checkBuild("server", "http://"+statusAddr+"/status", "http://"+metricsAddr+"/metrics")

	// An agent alone (nothing to join) still serves its status.
	agentStatus := "127.0.0.251:25054"
	key := writeFile(t, t.TempDir(), "gossip.key", newGossipKey(t)+"\n")
	ac := exec.Command(agent, "-name", "a1", "-bind", "127.0.0.251:25946", "-status", agentStatus, "-keyfile", key)
	ap := launchCmd(t, "healthdns-agent", ac)
	if _, ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + agentStatus + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return ap.Exited() || (err == nil && resp.StatusCode == 200)
	}); !ok || ap.Exited() {
		t.Fatalf("agent not serving its status:\n%s", ap.Out.String())
	}
	checkBuild("agent", "http://"+agentStatus+"/status", "http://"+agentStatus+"/metrics")
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}
