package healthdns

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/geo"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
)

// topology is a parsed topology block, regions by name.
type topology struct {
	nets       []netip.Prefix
	netRegions []string
	countries  map[string]string
	continents map[string]string
	def        string
}

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

// regionsOf gathers the block's regions (topology, orders, targets),
// builds the locator and every name's chains.
func regionsOf(cfg *config, t *topology) {
	set := map[string]bool{}
	if t != nil {
		for _, r := range t.netRegions {
			set[r] = true
		}
		for _, r := range t.countries {
			set[r] = true
		}
		for _, r := range t.continents {
			set[r] = true
		}
		if t.def != "" {
			set[t.def] = true
		}
	}
	for _, n := range cfg.names {
		for _, r := range n.Order {
			set[r] = true
		}
		for from, chain := range n.OrderFor {
			set[from] = true
			for _, r := range chain {
				set[r] = true
			}
		}
		for _, tc := range n.Targets {
			if tc.Region != "" {
				set[tc.Region] = true
			}
		}
	}
	cfg.regions = nil
	for r := range set {
		cfg.regions = append(cfg.regions, r)
	}
	sort.Strings(cfg.regions)
	index := func(r string) int { return slices.Index(cfg.regions, r) }
	if t != nil {
		l := &geo.Locator{Default: -1, Countries: map[string]int{}, Continents: map[string]int{}}
		var entries []geo.Entry
		for i, p := range t.nets {
			entries = append(entries, geo.Entry{Prefix: p, Region: index(t.netRegions[i])})
		}
		if len(entries) > 0 {
			l.Table = geo.NewTable(entries)
		}
		for code, r := range t.countries {
			l.Countries[code] = index(r)
		}
		for code, r := range t.continents {
			l.Continents[code] = index(r)
		}
		if t.def != "" {
			l.Default = index(t.def)
		}
		cfg.where = l
	}
	cfg.geo = chains(cfg.regions, nil, nil)
	for _, n := range cfg.names {
		n.Geo = cfg.geo
		if n.Order != nil || n.OrderFor != nil {
			n.Geo = chains(cfg.regions, n.Order, n.OrderFor)
		}
	}
}

// chains is the order of each client region: its own chain if it has one,
// else itself then the name's order (all regions without one); clients
// with no region follow the order from its start.
func chains(regions, order []string, per map[string][]string) *policy.Geo {
	g := &policy.Geo{Regions: regions, Chains: make([][]string, len(regions)+1)}
	rest := order
	if rest == nil {
		rest = regions
	}
	for i, r := range regions {
		if c, ok := per[r]; ok {
			g.Chains[i] = c
			continue
		}
		chain := []string{r}
		for _, x := range rest {
			if x != r {
				chain = append(chain, x)
			}
		}
		g.Chains[i] = chain
	}
	g.Chains[len(regions)] = rest
	return g
}
