package test

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/status"
)

// The security process tests use 127.0.2.0/24 only.

// securityCorefile is a one-server Corefile on ip:dnsPort with a cluster
// block (cluster is its body) and a status listener on ip:statusPort.
func securityCorefile(ip string, dnsPort, statusPort int, backend, cluster string) string {
	return fmt.Sprintf(`gslb.example.com:%[2]d {
    bind %[1]s
    healthdns {
        zonefile zone.db
        interval 200ms
        timeout 150ms
        name app {
            target 192.0.2.10 check %[4]s
        }
        status %[1]s:%[3]d
        cluster {
%[5]s
        }
    }
}
`, ip, dnsPort, statusPort, backend, cluster)
}

// newLocalBackend starts a backend of kind on ip (an address of this
// file's block), stopped in t.Cleanup.
func newLocalBackend(t *testing.T, kind, ip string) *backend {
	t.Helper()
	b := &backend{t: t, kind: kind, addr: ip + ":0"}
	b.start()
	t.Cleanup(b.stop)
	return b
}

// TestGossipNeedsKey: a cluster block without a key file stops start-up
// with an error naming the line; with insecure the server starts, says so
// loudly and in /status; and an agent without the key can neither join a
// keyed cluster nor publish into it, while one with the key can.
func TestGossipNeedsKey(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "zone.db", zoneText)
	key := writeFile(t, dir, "gossip.key", newGossipKey(t)+"\n")
	be := newLocalBackend(t, "tcp", "127.0.2.9")
	const ip = "127.0.2.1"

	// No key: refused, naming the cluster line (line 11 of the Corefile).
	keyless := securityCorefile(ip, 27053, 27080, be.check(), "            name dns1\n            bind "+ip+":27946")
	p := launch(t, dir, "-conf", writeFile(t, dir, "Corefile.keyless", keyless))
	if code := p.waitExit(t, 20*time.Second); code == 0 {
		t.Fatalf("keyless cluster started; output:\n%s", p.Out.String())
	}
	if out := p.Out.String(); !regexp.MustCompile(`Corefile.keyless:11 - Error during parsing: cluster: no keyfile`).MatchString(out) || !strings.Contains(out, "insecure") {
		t.Fatalf("keyless cluster: the error does not name line 11 and the way out:\n%s", out)
	}

	// insecure: starts, warns, and says so in /status.
	insecure := securityCorefile(ip, 27053, 27080, be.check(), "            name dns1\n            bind "+ip+":27946\n            insecure")
	s := &server{process: launch(t, dir, "-conf", writeFile(t, dir, "Corefile.insecure", insecure)), addr: ip + ":27053"}
	s.waitReady(t, 15*time.Second)
	if !strings.Contains(s.Out.String(), "INSECURE") {
		t.Errorf("insecure server: no INSECURE warning in its log:\n%s", s.Out.String())
	}
	d, err := getDoc("http://" + ip + ":27080/status")
	if err != nil || d.Cluster == nil || !d.Cluster.Insecure {
		t.Fatalf("insecure server /status cluster = %+v, %v; want insecure true", d.Cluster, err)
	}
	s.Stop()

	// Keyed: a keyless agent is refused, a keyed one joins.
	keyed := securityCorefile(ip, 27053, 27080, be.check(), "            name dns1\n            bind "+ip+":27946\n            keyfile "+key+"\n            label sec\n            gossip-interval 50ms\n            pushpull-interval 500ms")
	s = &server{process: launch(t, dir, "-conf", writeFile(t, dir, "Corefile", keyed)), addr: ip + ":27053"}
	s.waitReady(t, 15*time.Second)
	statusURL := "http://" + ip + ":27080/status"
	if d, err := getDoc(statusURL); err != nil || d.Cluster == nil || d.Cluster.Insecure {
		t.Fatalf("keyed server /status cluster = %+v, %v; want insecure false", d, err)
	}
	agent := func(name, ip string, extra ...string) *process {
		args := append([]string{"-name", name, "-observer", name, "-bind", ip + ":27946", "-join", "127.0.2.1:27946",
			"-label", "sec", "-gossip-interval", "50ms", "-pushpull-interval", "500ms", "-leave-timeout", "1s"}, extra...)
		return launchCmd(t, "healthdns-agent "+name, exec.Command(agentBinary, args...))
	}
	knows := func(d *status.Document, name string) bool {
		return slices.ContainsFunc(d.Members, func(m status.Member) bool { return m.Name == name }) ||
			slices.ContainsFunc(d.Views, func(v status.View) bool { return v.Node == name })
	}
	intruder := agent("intruder", "127.0.2.2", "-insecure")
	if _, ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		return intruder.Exited() || strings.Count(intruder.Out.String(), "retrying in") >= 2
	}); !ok || intruder.Exited() {
		t.Fatalf("keyless agent: no failed join attempts logged (exited %v):\n%s", intruder.Exited(), intruder.Out.String())
	}
	friend := agent("friend", "127.0.2.3", "-keyfile", key)
	var last *status.Document
	if _, ok := poll(15*time.Second, 100*time.Millisecond, func() bool {
		last, err = getDoc(statusURL)
		return err == nil && knows(last, "friend") && slices.ContainsFunc(last.Views, func(v status.View) bool { return v.Node == "friend" && v.Up > 0 })
	}); !ok {
		t.Fatalf("keyed agent did not join and publish: %+v, %v\n%s", last, err, friend.Out.String())
	}
	if knows(last, "intruder") {
		t.Fatalf("the server lists the keyless agent: %+v", last)
	}
}
