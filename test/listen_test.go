package test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPort53AsNonRoot: a user who may not bind port 53 gets an error that
// says why and what to do, naming the Corefile line, instead of CoreDNS's
// bare "permission denied".
func TestPort53AsNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the server as another user")
	}
	// A directory the unprivileged user can read, with the binary in it.
	dir, err := os.MkdirTemp("", "healthdns-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "healthdns")
	copyFile(t, binary, bin, 0o755)
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	conf := writeFile(t, dir, "Corefile", fmt.Sprintf("gslb.example.com:53 {\n    bind 127.0.0.247\n    healthdns {\n        zonefile %s\n    }\n}\n", zf))
	cmd := exec.Command(bin, "-conf", conf)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	p := launchCmd(t, "healthdns as nobody", cmd)
	if code := p.waitExit(t, 15*time.Second); code == 0 {
		t.Fatalf("healthdns as nobody on port 53 exited 0:\n%s", p.Out.String())
	}
	out := p.Out.String()
	for _, want := range []string{"Corefile:3", "cannot listen on port 53 as user 65534", "setcap cap_net_bind_service=+ep", "1053"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
}

// TestDNSPortFlagIgnored: -dns.port does not move a server block that
// names its own port (CoreDNS's rule); healthdns says so in the log.
func TestDNSPortFlagIgnored(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	conf := writeFile(t, dir, "Corefile", fmt.Sprintf("gslb.example.com:%s {\n    bind 127.0.0.1\n    healthdns {\n        zonefile %s\n    }\n}\n", portOf(t, addr), zf))
	p := launch(t, dir, "-conf", conf, "-dns.port", "1")
	p.waitReadyOn(t, addr, 15*time.Second)
	want := "-dns.port 1 is ignored for gslb.example.com.: the server block names port " + portOf(t, addr)
	if _, ok := poll(5*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(p.Out.String(), want) }); !ok {
		t.Errorf("no %q in the log:\n%s", want, p.Out.String())
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
