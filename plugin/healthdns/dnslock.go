package healthdns

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
)

// CoreDNS binds with SO_REUSEPORT, so a second healthdns on an address
// another one serves binds too and the kernel splits the queries: a
// forgotten old instance keeps answering from its old configuration. Each
// DNS address is therefore locked (flock, dropped by the kernel when the
// process dies, kill -9 included) in a file of os.TempDir() named after
// it. One process takes each lock once, however many server blocks and
// reloads use the address.

// dnsLocks are the locks this process holds, by key, each closed (its
// flock dropped; the file stays, so the next process finds it) when the
// last block and reload using it lets go.
var dnsLocks registry[string, *os.File]

// dnsLockKeys are the lock names of the addresses the server block
// listens on: transport, host ("*" for every address) and port. Port 0
// (tests) is never shared by accident and has none.
func dnsLockKeys(cfg *dnsserver.Config) []string {
	if cfg.Port == "0" || cfg.Port == "" {
		return nil
	}
	hosts := cfg.ListenHosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	var keys []string
	for _, h := range hosts {
		if h == "" {
			h = "*"
		}
		keys = append(keys, cfg.Transport+"://"+net.JoinHostPort(h, cfg.Port))
	}
	return keys
}

func dnsLockPath(key string) string {
	r := strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "", "*", "any", "%", "_")
	return filepath.Join(os.TempDir(), "healthdns-"+r.Replace(key)+".lock")
}

// lockDNS takes the locks of the server block's addresses, or says which
// healthdns process holds one. It returns their release, for OnShutdown.
// d is the block's dispenser before parsing, for the line in the error.
func lockDNS(c *caddy.Controller, d caddyfile.Dispenser) (release func(), err error) {
	keys := dnsLockKeys(dnsserver.GetConfig(c))
	var taken []string
	undo := func() {
		for _, k := range taken {
			dnsLocks.release(k, func(f *os.File, last bool) {
				if last {
					f.Close()
				}
			})
		}
	}
	for _, k := range keys {
		path := dnsLockPath(k)
		var holder string
		_, err := dnsLocks.acquire(k, func() (*os.File, error) {
			f, h, err := flockFile(path)
			holder = h
			return f, err
		}, nil)
		if err != nil {
			if holder != "" {
				undo()
				d.Next()
				return nil, d.Errf("another healthdns process (pid %s) already serves DNS on %s (lock %s); both would answer, the kernel splitting the queries between them: stop it, "+
					"or say shared in this healthdns block if several processes on one address are meant (CoreDNS's multisocket implies it)", holder, strings.SplitN(k, "://", 2)[1], path)
			}
			// A read-only root file system (a container's) or no
			// temporary directory: nothing to detect with, but nothing to
			// stop DNS for either; a pod has its own addresses anyway.
			log.Warningf("cannot lock the DNS address %s (%v): a second healthdns process on it would not be detected", k, err)
			continue
		}
		taken = append(taken, k)
	}
	return undo, nil
}

// flockFile locks path and writes this process's id into it; when another
// process holds it, holder is that process's id (as it wrote it).
func flockFile(path string) (f *os.File, holder string, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if os.IsPermission(err) {
		// Another user's lock file: a read-only descriptor locks too.
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, "", err
	}
	ok, err := tryLock(f)
	if err != nil || !ok {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if err != nil {
			return nil, "", err
		}
		holder = strings.TrimSpace(string(b[:n]))
		if holder == "" {
			holder = "unknown"
		}
		return nil, holder, fmt.Errorf("locked")
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	}
	return f, "", nil
}
