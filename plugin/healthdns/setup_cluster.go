package healthdns

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
)

// parseCluster reads "cluster { ... }"; the cursor is on "cluster".
func parseCluster(c *caddy.Controller) (*clusterConfig, error) {
	cc := &clusterConfig{syncTimeout: defaultSyncTimeout, probe: true, forgetAfter: defaultForgetAfter}
	g := &cc.gossip
	g.Role = gossip.RoleServer
	g.BindAddr, g.BindPort = "0.0.0.0", 7946
	line := c.Line()
	err := eachBlockLine(c, "cluster", func(key string, args []string) error {
		one := func() (string, error) {
			if len(args) != 1 {
				return "", c.Errf("cluster %s: want one value", key)
			}
			return args[0], nil
		}
		dur := func(lo, hi time.Duration) (time.Duration, error) {
			v, err := one()
			if err != nil {
				return 0, err
			}
			d, err := time.ParseDuration(v)
			if err != nil || d < lo || d > hi {
				return 0, c.Errf("cluster %s %q: want a duration from %s to %s", key, v, lo, hi)
			}
			return d, nil
		}
		var err error
		switch key {
		case "name":
			g.Name, err = one()
		case "observer":
			g.Observer, err = one()
		case "bind", "advertise":
			var v string
			if v, err = one(); err != nil {
				return err
			}
			host, port, perr := splitHostPort(v)
			if perr != nil {
				return c.Errf("cluster %s %q: %v", key, v, perr)
			}
			if key == "bind" {
				g.BindAddr, g.BindPort = host, port
			} else {
				g.AdvertiseAddr, g.AdvertisePort = host, port
			}
		case "join":
			if len(args) == 0 {
				return c.ArgErr()
			}
			for _, a := range args {
				if _, _, perr := net.SplitHostPort(a); perr != nil {
					return c.Errf("cluster join %q: want host:port", a)
				}
			}
			g.Join = append(g.Join, args...)
		case "keyfile":
			g.KeyFile, err = one()
			if err == nil {
				if _, kerr := gossip.LoadKeyring(g.KeyFile); kerr != nil {
					return c.Errf("cluster keyfile: %v", kerr)
				}
			}
		case "label":
			g.Label, err = one()
		case "insecure":
			if len(args) != 0 {
				return c.Errf("cluster insecure: takes no value")
			}
			cc.insecure = true
		case "stale":
			cc.stale, err = dur(100*time.Millisecond, time.Hour)
		case "servers":
			var v string
			if v, err = one(); err == nil {
				n, cerr := strconv.Atoi(v)
				if cerr != nil || n < 1 || n > maxServers {
					return c.Errf("cluster servers %q: want the number of servers and witnesses, 1 to %d", v, maxServers)
				}
				cc.servers = n
			}
		case "clients":
			var v string
			if v, err = one(); err == nil {
				if _, _, perr := splitHostPort(v); perr != nil {
					return c.Errf("cluster clients %q: want host:port, the address edge clients (agents with -connect) connect to: %v", v, perr)
				}
				cc.clients = v
			}
		case "max-clients":
			var v string
			if v, err = one(); err == nil {
				n, cerr := strconv.Atoi(v)
				if cerr != nil || n < 1 || n > 100000 {
					return c.Errf("cluster max-clients %q: want a number from 1 to 100000", v)
				}
				cc.maxClients = n
			}
		case "forget-after":
			cc.forgetAfter, err = dur(time.Minute, 365*24*time.Hour)
		case "sync-timeout":
			cc.syncTimeout, err = dur(0, 5*time.Minute)
		case "gossip-interval":
			g.GossipInterval, err = dur(10*time.Millisecond, time.Minute)
		case "pushpull-interval":
			g.PushPullInterval, err = dur(100*time.Millisecond, time.Hour)
		case "probe-interval":
			g.ProbeInterval, err = dur(50*time.Millisecond, time.Minute)
		case "probe":
			var v string
			if v, err = one(); err == nil {
				switch v {
				case "on":
					cc.probe = true
				case "off":
					cc.probe = false
				default:
					return c.Errf("cluster probe %q: want on or off", v)
				}
			}
		default:
			return c.Errf("cluster: unknown property %q", key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if g.Name == "" {
		return nil, c.Err("cluster: name is required: every node needs a name unique in the cluster")
	}
	if g.Observer == "" {
		g.Observer = g.Name
	}
	switch {
	case cc.clients != "" && g.KeyFile == "":
		return nil, c.Err("cluster clients: needs keyfile: the gossip key authenticates and encrypts edge clients' connections")
	case g.KeyFile == "" && !cc.insecure:
		return nil, errAt(c, line, "cluster: no keyfile: without a key anyone who can reach the gossip port (%s) can change every owner's records and observations; add keyfile FILE (32 random bytes, base64: head -c32 /dev/urandom | base64), or insecure to gossip in the clear on purpose",
			net.JoinHostPort(g.BindAddr, strconv.Itoa(g.BindPort)))
	case g.KeyFile != "" && cc.insecure:
		return nil, errAt(c, line, "cluster: keyfile and insecure: choose one")
	}
	return cc, nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, p, nil
}
