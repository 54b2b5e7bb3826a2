package healthdns

import (
	"errors"
	"flag"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// checkListen says, before CoreDNS opens the server block's listeners,
// what would otherwise fail or surprise without a hint: a port below 1024
// that this user may not bind (CoreDNS only says "permission denied"), and
// a -dns.port flag that the block's own port overrides.
func checkListen(c *caddy.Controller) error {
	cfg := dnsserver.GetConfig(c)
	if portFlagSet() && cfg.Port != dnsserver.Port {
		log.Warningf("-dns.port %s is ignored for %s: the server block names port %s (a port in the Corefile wins over the flag; drop it from the block's key to use the flag)", dnsserver.Port, cfg.Zone, cfg.Port)
	}
	port, err := strconv.Atoi(cfg.Port)
	if err != nil || port == 0 || port >= 1024 || os.Geteuid() == 0 {
		return nil
	}
	hosts := cfg.ListenHosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	for _, host := range hosts {
		l, err := net.Listen("tcp", net.JoinHostPort(host, cfg.Port))
		if err == nil {
			l.Close()
			continue
		}
		if errors.Is(err, syscall.EACCES) {
			d := c.Dispenser // a copy: the error names the healthdns line, and parse starts where it was
			d.Next()
			return d.Errf("cannot listen on port %s as user %d (%v): ports below 1024 need root or the capability to bind them "+
				"(sudo setcap cap_net_bind_service=+ep %s), or use a high port such as %s:1053 behind a port mapping or a Kubernetes Service with port 53 and targetPort 1053",
				cfg.Port, os.Geteuid(), err, executable(), cfg.Zone)
		}
	}
	return nil
}

// portFlagSet reports whether -dns.port (or -p) was given.
func portFlagSet() bool {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "dns.port" || f.Name == "p" {
			set = true
		}
	})
	return set
}

func executable() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "healthdns"
}
