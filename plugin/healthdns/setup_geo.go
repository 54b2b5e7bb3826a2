package healthdns

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/coredns/caddy"
)

// parseTopology reads
//
//	topology {
//	    CIDR REGION
//	    country CODE... REGION
//	    continent CODE... REGION
//	    default REGION
//	}
func parseTopology(c *caddy.Controller) (*topology, error) {
	t := &topology{countries: map[string]string{}, continents: map[string]string{}}
	seen := map[netip.Prefix]int{}
	err := eachBlockLine(c, "topology", func(key string, args []string) error {
		switch key {
		case "default":
			if len(args) != 1 {
				return c.Errf("topology: default: want one region")
			}
			if err := checkRegion(args[0]); err != nil {
				return c.Errf("topology: default: %v", err)
			}
			t.def = args[0]
			return nil
		case "country", "continent":
			if len(args) < 2 {
				return c.Errf("topology: %s: want codes then a region, like %s", key, map[string]string{"country": "country DE FR eu", "continent": "continent EU eu"}[key])
			}
			region := args[len(args)-1]
			if err := checkRegion(region); err != nil {
				return c.Errf("topology: %s: %v", key, err)
			}
			m := t.countries
			if key == "continent" {
				m = t.continents
			}
			for _, code := range args[:len(args)-1] {
				code = strings.ToUpper(code)
				if len(code) != 2 || strings.Trim(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
					return c.Errf("topology: %s %q: want a two-letter code", key, code)
				}
				if prev, dup := m[code]; dup && prev != region {
					return c.Errf("topology: %s %s is mapped to %s and %s", key, code, prev, region)
				}
				m[code] = region
			}
			return nil
		}
		p, err := netip.ParsePrefix(key)
		if err != nil {
			ip, ierr := netip.ParseAddr(key)
			if ierr != nil || ip.Zone() != "" {
				return c.Errf("topology: %q: want a network (10.0.0.0/8, 2001:db8::/32) and a region, or country, continent or default", key)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		if len(args) != 1 {
			return c.Errf("topology: %s: want one region after the network", key)
		}
		if err := checkRegion(args[0]); err != nil {
			return c.Errf("topology: %s: %v", key, err)
		}
		p = p.Masked()
		if i, dup := seen[p]; dup {
			return c.Errf("topology: %s is listed twice (%s and %s)", p, t.netRegions[i], args[0])
		}
		seen[p] = len(t.nets)
		t.nets = append(t.nets, p)
		t.netRegions = append(t.netRegions, args[0])
		return nil
	})
	return t, err
}

// checkRegion refuses region names that would not make a good metrics
// label or Corefile word.
func checkRegion(r string) error {
	if r == "" || len(r) > 32 || strings.Trim(r, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return fmt.Errorf("region %q: want 1 to 32 of a-z, 0-9, - and _", r)
	}
	return nil
}

// parseOrder reads "order REGION..." (one chain for every client region:
// its own first, then these) or "order REGION: REGION..." (the chain of
// that region's clients, as written).
func parseOrder(c *caddy.Controller, n *nameConfig) error {
	args := c.RemainingArgs()
	if len(args) == 0 {
		return c.ArgErr()
	}
	var from string
	if strings.HasSuffix(args[0], ":") {
		from = strings.TrimSuffix(args[0], ":")
		args = args[1:]
		if err := checkRegion(from); err != nil {
			return c.Errf("order: %v", err)
		}
		if len(args) == 0 {
			return c.Errf("order %s: want the regions its clients try in turn", from)
		}
	}
	for i, r := range args {
		if err := checkRegion(r); err != nil {
			return c.Errf("order: %v", err)
		}
		if slices.Contains(args[:i], r) {
			return c.Errf("order: region %s is listed twice", r)
		}
	}
	if from == "" {
		if n.Order != nil {
			return c.Errf("name %s: order without a region: is given twice", n.FQDN)
		}
		n.Order = args
		return nil
	}
	if n.OrderFor == nil {
		n.OrderFor = map[string][]string{}
	}
	if _, dup := n.OrderFor[from]; dup {
		return c.Errf("name %s: order %s: is given twice", n.FQDN, from)
	}
	n.OrderFor[from] = args
	return nil
}
