package healthdns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

const pluginName = "healthdns"

var log = clog.NewWithPlugin(pluginName)

// ZoneFS, when set, supplies zone files that are not on disk. The healthdns
// binary sets it to the embedded examples only when it runs the embedded
// Corefile.example.
var ZoneFS fs.FS

func init() {
	plugin.Register(pluginName, setup)
	// CoreDNS refuses non-IN classes unless a plugin asks for them; the
	// CH TXT health matrix needs CH.
	dnsserver.EnableChaos[pluginName] = struct{}{}
}

func setup(c *caddy.Controller) error {
	if err := checkListen(c); err != nil {
		return plugin.Error(pluginName, err)
	}
	d := c.Dispenser // a copy at the healthdns line, for lockDNS's error
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	if !cfg.shared && dnsserver.GetConfig(c).NumSockets == 0 {
		release, err := lockDNS(c, d)
		if err != nil {
			return plugin.Error(pluginName, err)
		}
		c.OnShutdown(func() error { release(); return nil })
	}
	h := handlerOf(cfg, pool)
	c.OnStartup(h.start)
	c.OnShutdown(h.stop)
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

// parse reads a healthdns block. Every error names the Corefile line.
func parse(c *caddy.Controller) (*config, error) {
	cfg := &config{matrixNets: defaultMatrixNets, recordSeries: defaultRecordSeries}
	root := dnsserver.GetConfig(c).Root
	blocks := 0
	for c.Next() {
		blocks++
		if blocks > 1 {
			return nil, c.Err("healthdns can be used only once per server block")
		}
		origins := plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		def := timing{interval: defaultInterval, timeout: defaultTimeout, rise: defaultRise, fall: defaultFall}
		ttl := uint32(defaultTTL)
		type zoneFile struct {
			path string
			line int
		}
		files := map[string]zoneFile{} // origin -> file
		type pendingName struct {
			line int
			n    *nameConfig
			t    *timing
			raw  []rawTarget
		}
		var pending []pendingName
		var topo *topology
		for c.NextBlock() {
			switch c.Val() {
			case "topology":
				if topo != nil {
					return nil, c.Err("topology: only one topology block")
				}
				t, err := parseTopology(c)
				if err != nil {
					return nil, err
				}
				topo = t
			case "ecs":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				if v != "on" && v != "off" {
					return nil, c.Errf("ecs %q: want on or off", v)
				}
				cfg.ecsOff = v == "off"
			case "zonefile":
				args := c.RemainingArgs()
				if len(args) < 1 || len(args) > 2 {
					return nil, c.ArgErr()
				}
				origin := ""
				if len(args) == 2 {
					origin = plugin.Host(args[1]).NormalizeExact()[0]
				} else if len(origins) == 1 {
					origin = origins[0]
				} else {
					return nil, c.Errf("zonefile %s: this block serves %d zones; say which: zonefile FILE ZONE", args[0], len(origins))
				}
				if !slices.Contains(origins, origin) {
					return nil, c.Errf("zonefile %s: zone %s is not served by this block (%s)", args[0], origin, strings.Join(origins, " "))
				}
				if _, dup := files[origin]; dup {
					return nil, c.Errf("zonefile: zone %s already has a zone file", origin)
				}
				path := args[0]
				if !filepath.IsAbs(path) && root != "" {
					path = filepath.Join(root, path)
				}
				files[origin] = zoneFile{path, c.Line()}
			case "shared":
				if c.NextArg() {
					return nil, c.Errf("shared: takes no value")
				}
				cfg.shared = true
			case "interval", "timeout", "rise", "fall":
				if err := parseTiming(c, &def); err != nil {
					return nil, err
				}
			case "ttl":
				v, err := parseTTL(c)
				if err != nil {
					return nil, err
				}
				ttl = v
			case "data":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				if !filepath.IsAbs(v) && root != "" {
					v = filepath.Join(root, v)
				}
				cfg.dataDir = v
			case "webhook":
				if cfg.webhook != nil {
					return nil, c.Err("webhook: only one per block (one owner per webhook)")
				}
				wc, err := parseWebhook(c)
				if err != nil {
					return nil, err
				}
				cfg.webhook = wc
			case "status":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				if _, _, err := net.SplitHostPort(v); err != nil {
					return nil, c.Errf("status %q: want a listen address like 127.0.0.1:8053", v)
				}
				cfg.statusAddr = v
			case "control":
				if cfg.control != nil {
					return nil, c.Err("control: only one control listener")
				}
				cc, err := parseControl(c, root)
				if err != nil {
					return nil, err
				}
				cfg.control = cc
			case "matrix":
				args := c.RemainingArgs()
				if len(args) == 0 {
					return nil, c.ArgErr()
				}
				cfg.matrixNets = nil
				if len(args) == 1 && args[0] == "off" {
					cfg.matrixOff = true
					break
				}
				for _, a := range args {
					p, err := netip.ParsePrefix(a)
					if err != nil {
						ip, ierr := netip.ParseAddr(a)
						if ierr != nil {
							return nil, c.Errf("matrix %q: want off, or networks like 127.0.0.0/8 or addresses", a)
						}
						p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
					}
					cfg.matrixNets = append(cfg.matrixNets, p.Masked())
				}
			case "record-series":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return nil, c.Errf("record-series %q: want how many names only records define may have per-name series, 0 for none", v)
				}
				cfg.recordSeries = n
			case "cluster":
				if cfg.cluster != nil {
					return nil, c.Err("cluster: only one cluster block")
				}
				cc, err := parseCluster(c)
				if err != nil {
					return nil, err
				}
				cfg.cluster = cc
			case "name":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return nil, c.Errf("name: want one name followed by {")
				}
				line := c.Line()
				fqdn, err := qualify(args[0], origins)
				if err != nil {
					return nil, c.Err(err.Error())
				}
				p := pendingName{line: line, n: &nameConfig{FQDN: fqdn, Settings: &nameSettings{}}, t: &timing{}}
				*p.t = def
				p.n.TTL = ttl
				raw, err := parseName(c, p.n, p.t)
				if err != nil {
					return nil, err
				}
				p.raw = raw
				pending = append(pending, p)
			default:
				return nil, c.Errf("unknown property %q", c.Val())
			}
		}
		cfg.timing, cfg.ttl = def, ttl
		if cfg.control != nil && cfg.control.addr == cfg.statusAddr {
			return nil, c.Errf("control %s: the status listener is there; the control API needs its own address (status is read-only and may be open to all)", cfg.control.addr)
		}
		if cfg.webhook != nil && cfg.dataDir == "" {
			return nil, c.Err("webhook: needs data DIR: acknowledged records are written there before ExternalDNS is told")
		}
		for _, o := range origins {
			zf, ok := files[o]
			if !ok {
				return nil, c.Errf("zone %s has no zonefile: the SOA and NS records come from it", o)
			}
			d, err := loadZone(zf.path, o)
			if err != nil {
				return nil, errAt(c, zf.line, "%v", err)
			}
			cfg.zones = append(cfg.zones, d)
		}
		seen := map[string]int{}
		for _, p := range pending {
			if prev, dup := seen[p.n.FQDN]; dup {
				return nil, errAt(c, p.line, "name %s is already defined at line %d", p.n.FQDN, prev)
			}
			seen[p.n.FQDN] = p.line
			if err := checkAgainstZone(p.n.FQDN, cfg.zones); err != nil {
				return nil, errAt(c, p.line, "%v", err)
			}
			if len(p.raw) == 0 {
				return nil, errAt(c, p.line, "name %s has no target", p.n.FQDN)
			}
			for _, r := range p.raw {
				r.t.Probe.Interval, r.t.Probe.Timeout, r.t.Probe.Rise, r.t.Probe.Fall = p.t.interval, p.t.timeout, p.t.rise, p.t.fall
				r.t.ID = gossip.IDOf(*r.t.Probe)
				p.n.Targets = append(p.n.Targets, r.t)
			}
			if p.t.timeout > p.t.interval {
				return nil, errAt(c, p.line, "name %s: timeout %s is longer than interval %s", p.n.FQDN, p.t.timeout, p.t.interval)
			}
			cfg.names = append(cfg.names, p.n)
		}
		regionsOf(cfg, topo)
	}
	return cfg, nil
}

func loadZone(path, origin string) (*zone.Data, error) {
	d, err := zone.Load(path, origin)
	if err != nil && ZoneFS != nil && errors.Is(err, fs.ErrNotExist) {
		f, ferr := ZoneFS.Open(filepath.ToSlash(path))
		if ferr != nil {
			return nil, err
		}
		defer f.Close()
		return zone.Parse(f, path+" (embedded)", origin)
	}
	return d, err
}

// eachBlockLine reads a nested block whose "{" ends the current line,
// calling line with each property and its arguments, up to the "}".
func eachBlockLine(c *caddy.Controller, what string, line func(key string, args []string) error) error {
	if !c.NextArg() || c.Val() != "{" {
		return c.Errf("%s: want { at the end of the line", what)
	}
	for {
		if !c.Next() {
			return c.Errf("%s: missing }", what)
		}
		if c.Val() == "}" {
			return nil
		}
		key := c.Val()
		if err := line(key, c.RemainingArgs()); err != nil {
			return err
		}
	}
}

// errAt is c.Errf for a line the cursor has left behind.
func errAt(c *caddy.Controller, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d - Error during parsing: %s", c.File(), line, fmt.Sprintf(format, args...))
}

type rawTarget struct {
	t targetConfig
}

// parseName reads the body of "name NAME { ... }"; the cursor is on NAME.
func parseName(c *caddy.Controller, n *nameConfig, t *timing) ([]rawTarget, error) {
	if !c.NextArg() || c.Val() != "{" {
		return nil, c.Errf("name %s: want { at the end of the line", n.FQDN)
	}
	n.Quorum = health.Quorum{Kind: health.Majority}
	var targets []rawTarget
	addrs := map[netip.Addr]bool{}
	explicitMax := false
	for {
		if !c.Next() {
			return nil, c.Errf("name %s: missing }", n.FQDN)
		}
		if c.Val() == "}" {
			break
		}
		key := c.Val()
		switch key {
		case "policy":
			v, err := oneArg(c)
			if err != nil {
				return nil, err
			}
			k, err := policy.Lookup(v)
			if err != nil {
				return nil, c.Err(err.Error())
			}
			n.Policy = k
		case "order":
			if err := parseOrder(c, n); err != nil {
				return nil, err
			}
		case "sticky-prefix":
			args := c.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return nil, c.ArgErr()
			}
			n.StickyBits = policy.DefaultStickyBits
			for i, a := range args {
				v, err := strconv.Atoi(a)
				if lim := []int{32, 128}[i]; err != nil || v < 0 || v > lim {
					return nil, c.Errf("sticky-prefix %q: want a prefix length from 0 to %d (IPv4, then IPv6)", a, lim)
				}
				n.StickyBits[i] = v
			}
		case "ttl":
			v, err := parseTTL(c)
			if err != nil {
				return nil, err
			}
			n.TTL = v
		case "max-answers", "min-healthy":
			v, err := oneArg(c)
			if err != nil {
				return nil, err
			}
			i, err := strconv.Atoi(v)
			if err != nil || i < 1 || i > 16 {
				return nil, c.Errf("%s %q: want a count from 1 to 16", key, v)
			}
			if key == "max-answers" {
				n.MaxAnswers, explicitMax = i, true
			} else {
				n.MinHealthy = i
			}
		case "fallback":
			args := c.RemainingArgs()
			if len(args) == 0 {
				return nil, c.ArgErr()
			}
			switch {
			case len(args) == 1 && args[0] == "all":
				n.Fallback = snapshot.FallbackAll
			case len(args) == 1 && args[0] == "last-good":
				n.Fallback = snapshot.FallbackLastGood
			case len(args) == 1 && args[0] == "none":
				n.Fallback = snapshot.FallbackNone
			default:
				n.Fallback = snapshot.FallbackFixed
				for _, a := range args {
					ip, err := netip.ParseAddr(a)
					if err != nil || ip.Zone() != "" {
						return nil, c.Errf("fallback %q: want all, last-good, none or IP addresses", a)
					}
					n.Fixed = append(n.Fixed, ip.Unmap())
				}
			}
		case "quorum":
			v, err := oneArg(c)
			if err != nil {
				return nil, err
			}
			q, err := health.ParseQuorum(v)
			if err != nil {
				return nil, c.Err(err.Error())
			}
			n.Quorum = q
		case "interval", "timeout", "rise", "fall":
			if err := parseTiming(c, t); err != nil {
				return nil, err
			}
		case "target":
			tc, err := parseTarget(c)
			if err != nil {
				return nil, err
			}
			if addrs[tc.Probe.Addr] {
				return nil, c.Errf("target %s is listed twice", tc.Probe.Addr)
			}
			addrs[tc.Probe.Addr] = true
			targets = append(targets, rawTarget{t: tc})
		default:
			return nil, c.Errf("name %s: unknown property %q", n.FQDN, key)
		}
	}
	if n.Policy == nil {
		n.Policy = policy.Default()
	}
	if !explicitMax {
		n.MaxAnswers = policy.DefaultMaxAnswers(n.Policy)
	}
	if (n.Order != nil || n.OrderFor != nil) && n.Policy != policy.GeoPolicy {
		return nil, c.Errf("name %s: order is for policy geo", n.FQDN)
	}
	if n.StickyBits != [2]int{} && n.Policy != policy.Sticky {
		return nil, c.Errf("name %s: sticky-prefix is for policy sticky", n.FQDN)
	}
	return targets, nil
}

// parseTarget reads "target ADDR [tier N] [weight N] [region R] check SPEC [check SPEC]...".
func parseTarget(c *caddy.Controller) (targetConfig, error) {
	args := c.RemainingArgs()
	if len(args) == 0 {
		return targetConfig{}, c.ArgErr()
	}
	ip, err := netip.ParseAddr(args[0])
	if err != nil || ip.Zone() != "" {
		return targetConfig{}, c.Errf("target %q: not an IPv4 or IPv6 address", args[0])
	}
	tc := targetConfig{TargetSpec: &targetSpec{Tier: 1, Weight: 1, Probe: &probe.Target{Addr: ip.Unmap()}}}
	for i := 1; i < len(args); i++ {
		key := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", c.Errf("target %s: %s needs a value", ip, key)
			}
			i++
			return args[i], nil
		}
		switch key {
		case "region":
			v, err := next()
			if err != nil {
				return tc, err
			}
			if err := checkRegion(v); err != nil {
				return tc, c.Errf("target %s: %v", ip, err)
			}
			tc.Region = v
		case "tier", "weight":
			v, err := next()
			if err != nil {
				return tc, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1000000 || (key == "tier" && n < 1) {
				return tc, c.Errf("target %s: %s %q: want a whole number (tier from 1, weight from 0)", ip, key, v)
			}
			if key == "tier" {
				tc.Tier = n
			} else {
				tc.Weight = n
			}
		case "check":
			ch, n, err := probe.ParseArgs(args[i+1:])
			if err != nil {
				return tc, c.Errf("target %s: %v", ip, err)
			}
			i += n
			if ch, err = ch.ForAddr(ip.Unmap()); err != nil {
				return tc, c.Errf("target %s: %v", ip, err)
			}
			tc.Probe.Checks = append(tc.Probe.Checks, ch)
		default:
			return tc, c.Errf("target %s: unknown option %q (want tier, weight, region or check%s)", ip, key, checkOptions(tc.Probe.Checks))
		}
	}
	if len(tc.Probe.Checks) == 0 {
		return tc, c.Errf("target %s has no check: add check http://..., check tcp HOST:PORT or check grpc HOST:PORT", ip)
	}
	return tc, nil
}

// checkOptions names the options of the check just read, for an error on
// the word after it.
func checkOptions(checks []probe.Check) string {
	if len(checks) == 0 {
		return ""
	}
	k := checks[len(checks)-1].Kind
	if len(k.Options()) == 0 {
		return "; a " + k.String() + " check takes no options"
	}
	return ", or an option of the " + k.String() + " check: " + strings.Join(k.Options(), ", ")
}

func parseTiming(c *caddy.Controller, t *timing) error {
	key := c.Val()
	v, err := oneArg(c)
	if err != nil {
		return err
	}
	switch key {
	case "interval", "timeout":
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond || d > time.Hour {
			return c.Errf("%s %q: want a duration from 10ms to 1h, like 1s or 500ms", key, v)
		}
		if key == "interval" {
			t.interval = d
		} else {
			t.timeout = d
		}
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return c.Errf("%s %q: want a count from 1 to 100", key, v)
		}
		if key == "rise" {
			t.rise = n
		} else {
			t.fall = n
		}
	}
	return nil
}

func parseTTL(c *caddy.Controller) (uint32, error) {
	v, err := oneArg(c)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > 86400 {
		return 0, c.Errf("ttl %q: want seconds from 0 to 86400", v)
	}
	return uint32(n), nil
}

func oneArg(c *caddy.Controller) (string, error) {
	args := c.RemainingArgs()
	if len(args) != 1 {
		return "", c.ArgErr()
	}
	return args[0], nil
}

// qualify makes a name absolute: relative names belong to the block's zone.
func qualify(name string, origins []string) (string, error) {
	name = strings.ToLower(name)
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("name %q is not a valid domain name", name)
	}
	if !dns.IsFqdn(name) {
		if len(origins) != 1 {
			return "", fmt.Errorf("name %q is relative but this block serves %d zones; write it in full with a trailing dot", name, len(origins))
		}
		if name == "@" {
			return origins[0], nil
		}
		name = name + "." + origins[0]
	}
	for _, o := range origins {
		if dns.IsSubDomain(o, name) {
			return name, nil
		}
	}
	return "", fmt.Errorf("name %s is outside the zones of this block (%s)", name, strings.Join(origins, " "))
}

// checkAgainstZone refuses a health-aware name that the zone file also
// gives addresses or a CNAME, or that lies below a delegation or a DNAME.
func checkAgainstZone(fqdn string, zones []*zone.Data) error {
	for _, d := range zones {
		if !dns.IsSubDomain(d.Origin, fqdn) {
			continue
		}
		types := d.Names[fqdn]
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME} {
			if len(types[t]) > 0 {
				return fmt.Errorf("name %s also has %s records in the zone file; a health-aware name gets its addresses from its targets only", fqdn, dns.TypeToString[t])
			}
		}
		for owner, ts := range d.Names {
			if owner != d.Origin && len(ts[dns.TypeNS]) > 0 && dns.IsSubDomain(owner, fqdn) {
				return fmt.Errorf("name %s is at or below the delegation %s", fqdn, owner)
			}
			if owner != fqdn && len(ts[dns.TypeDNAME]) > 0 && dns.IsSubDomain(owner, fqdn) {
				return fmt.Errorf("name %s is below the DNAME %s, which redirects it elsewhere (RFC 6672)", fqdn, owner)
			}
		}
	}
	return nil
}
