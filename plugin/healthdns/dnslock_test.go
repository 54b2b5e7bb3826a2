//go:build unix

package healthdns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

func lockController(t *testing.T) *caddy.Controller {
	c := caddy.NewTestController("dns", "healthdns example.org")
	cfg := dnsserver.GetConfig(c)
	cfg.Port, cfg.ListenHosts, cfg.Transport = "27353", []string{"127.0.2.31"}, "dns"
	return c
}

// The lock is taken once per process (reloads and blocks share it), is
// refused while another open file holds it, and a temporary directory
// that cannot hold it only warns.
func TestDNSLock(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	c := lockController(t)
	release, err := lockDNS(c, c.Dispenser)
	if err != nil {
		t.Fatal(err)
	}
	path := dnsLockPath("dns://127.0.2.31:27353")
	if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Fatalf("lock file %s: %q %v", path, b, err)
	}
	again, err := lockDNS(c, c.Dispenser) // a reload of this process
	if err != nil {
		t.Fatalf("second lock in one process: %v", err)
	}
	release()
	again()
	if dnsLocks.len() != 0 {
		t.Fatalf("locks left: %d", dnsLocks.len())
	}

	// Another holder: a separate open file description, as another
	// process has.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	f.Truncate(0)
	f.WriteString("4242\n")
	if _, err := lockDNS(c, c.Dispenser); err == nil || !strings.Contains(err.Error(), "another healthdns process (pid 4242) already serves DNS on 127.0.2.31:27353") || !strings.Contains(err.Error(), "Testfile:1") {
		t.Fatalf("held by another: %v", err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "gone"))
	r, err := lockDNS(c, c.Dispenser)
	if err != nil {
		t.Fatalf("no temporary directory: %v, want a warning only", err)
	}
	r()
}
