package healthdns

import (
	"net/netip"
	"slices"
	"sort"

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
