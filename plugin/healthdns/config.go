package healthdns

import (
	"net/netip"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/recordmerge"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"
)

// Defaults an operator gets without saying anything.
const (
	defaultInterval = 5 * time.Second
	defaultTimeout  = 2 * time.Second
	defaultRise     = 2
	defaultFall     = 2
	defaultTTL      = 30
	// Names only records define get per-name series (target_healthy,
	// name_state) while they are at most this many: 100,000 of them made
	// a scrape outlast CoreDNS's write timeout.
	defaultRecordSeries = 10000
)

// config is a validated healthdns block.
type config struct {
	// shared: other healthdns processes may serve this block's DNS
	// addresses too, on purpose (see dnslock.go).
	shared  bool
	zones   []*zone.Data
	names   []*nameConfig
	cluster *clusterConfig // nil: a single server probing by itself

	timing  timing // the block's check timing, for targets from records
	ttl     uint32 // the block's default TTL, likewise
	dataDir string // the record store, "" for none
	webhook *webhookConfig

	statusAddr string         // the status API and page listener, "" for none
	control    *controlConfig // the control API (overrides), nil for none
	matrixOff  bool           // refuse the CH TXT health matrix to everyone
	matrixNets []netip.Prefix // who may ask it

	// regions are the block's regions, sorted: a client's region is an
	// index into them. where finds it (nil without topology or regions);
	// geo is the order of a name that gives none.
	regions []string
	where   policy.Locator
	geo     *policy.Geo
	ecsOff  bool // ignore EDNS Client Subnet: the source address decides

	// recordSeries: the names only records define have per-name series
	// while they are at most this many, none of them has any otherwise
	// (0: never); the Corefile's names always have theirs.
	recordSeries int
}

// defaultMatrixNets: the matrix reveals topology, so by default only the
// machine itself may ask.
var defaultMatrixNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

type timing struct {
	interval, timeout time.Duration
	rise, fall        int
}

type (
	nameConfig   = recordmerge.Name
	nameSettings = recordmerge.Settings
	targetConfig = recordmerge.Target
	targetSpec   = recordmerge.TargetSpec
)

// probeTargets lists every target of the config once.
func (c *config) probeTargets() []probe.Target {
	seen := map[string]bool{}
	var out []probe.Target
	for _, n := range c.names {
		for _, t := range n.Targets {
			if k := t.Probe.Key(); !seen[k] {
				seen[k] = true
				out = append(out, *t.Probe)
			}
		}
	}
	return out
}

// maxTimeout is the longest check timeout, which bounds the first round.
func (c *config) maxTimeout() time.Duration {
	d := c.timing.timeout // targets from records use the block's timing
	for _, n := range c.names {
		for _, t := range n.Targets {
			d = max(d, t.Probe.Timeout)
		}
	}
	return d
}
