package records

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// healthdns's provider-specific properties. ExternalDNS turns an annotation
// external-dns.kubernetes.io/webhook-NAME into the property webhook/NAME,
// and with --provider=webhook it drops every property with another
// provider's prefix, so ours live under webhook/.
const (
	// PropWeight is the endpoint's targets' weight for the weighted
	// policy: a whole number from 0 (used only when nothing else is
	// healthy) to 1000000.
	PropWeight = "webhook/weight"
	// PropTier is the targets' priority tier for the priority policy: a
	// whole number from 1 (the first tier) to 1000000.
	PropTier = "webhook/tier"
	// PropCheck is the targets' health check, in the grammar of package
	// probe (the Corefile's): "URL [host NAME] [status CODE,...] [body
	// TEXT] [insecure]", "tcp HOST:PORT" or "grpc HOST:PORT [service NAME]
	// [host NAME] [tls] [insecure]", where {addr} stands for each target's
	// address ([...] for IPv6).
	PropCheck = "webhook/check"
	// PropPolicy is the name's answer policy: roundrobin, weighted,
	// priority, geo or sticky.
	PropPolicy = "webhook/policy"
	// PropRegion is the targets' region for the geo policy: 1 to 32 of
	// a-z, 0-9, - and _.
	PropRegion = "webhook/region"

	propPrefix = "webhook/"
	// AddrPlaceholder in a check stands for the address of each target.
	AddrPlaceholder = probe.AddrPlaceholder

	maxWeight = 1000000
	maxTier   = 1000000
)

// Properties are healthdns's settings of an endpoint. Unset ones take the
// owner's defaults.
type Properties struct {
	Weight    int
	HasWeight bool
	Tier      int    // 0: not set
	Policy    string // "": not set
	Check     string // "": not set; in the canonical form of PropCheck
	Region    string // "": not set
}

// Properties returns the healthdns settings of a canonical endpoint.
func (e Endpoint) Properties() Properties {
	var p Properties
	for _, pr := range e.ProviderSpecific {
		switch pr.Name {
		case PropWeight:
			p.Weight, _ = strconv.Atoi(pr.Value)
			p.HasWeight = true
		case PropTier:
			p.Tier, _ = strconv.Atoi(pr.Value)
		case PropPolicy:
			p.Policy = pr.Value
		case PropCheck:
			p.Check = pr.Value
		case PropRegion:
			p.Region = pr.Value
		}
	}
	return p
}

// NormalizeProperty checks one property and returns its canonical value.
// Properties under webhook/ must be one of healthdns's; others are kept
// as they are.
func NormalizeProperty(name, value string) (string, error) {
	if name == "" || len(name) > MaxPropNameLen || !printable(name) {
		return "", fmt.Errorf("property %.40q: want a name of 1 to %d printable characters", name, MaxPropNameLen)
	}
	if len(value) > MaxPropValLen || !printable(value) {
		return "", fmt.Errorf("property %s: want a value of up to %d printable characters", name, MaxPropValLen)
	}
	switch name {
	case PropWeight, PropTier:
		v := strings.TrimSpace(value)
		n, err := strconv.Atoi(v)
		lo, hi := 0, maxWeight
		if name == PropTier {
			lo, hi = 1, maxTier
		}
		if err != nil || n < lo || n > hi {
			return "", fmt.Errorf("property %s %.40q: want a whole number from %d to %d", name, value, lo, hi)
		}
		return strconv.Itoa(n), nil
	case PropPolicy:
		v := strings.ToLower(strings.TrimSpace(value))
		if _, err := policy.Lookup(v); err != nil {
			return "", fmt.Errorf("property %s: %v", name, err)
		}
		return v, nil
	case PropCheck:
		return normalizeCheck(value)
	case PropRegion:
		v := strings.ToLower(strings.TrimSpace(value))
		if v == "" || len(v) > 32 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return "", fmt.Errorf("property %s %.40q: want 1 to 32 of a-z, 0-9, - and _", name, value)
		}
		return v, nil
	}
	if strings.HasPrefix(name, propPrefix) {
		return "", fmt.Errorf("property %s is not one of healthdns's (%s, %s, %s, %s, %s)", name, PropWeight, PropTier, PropCheck, PropPolicy, PropRegion)
	}
	return value, nil
}

func normalizeProperties(ps []Property) ([]Property, error) {
	if len(ps) > MaxProperties {
		return nil, fmt.Errorf("%d provider-specific properties, more than %d", len(ps), MaxProperties)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	out := make([]Property, 0, len(ps))
	for _, p := range ps {
		v, err := NormalizeProperty(p.Name, p.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, Property{Name: p.Name, Value: v})
	}
	slices.SortStableFunc(out, func(a, b Property) int { return cmp.Compare(a.Name, b.Name) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name && out[i].Value != out[i-1].Value {
			return nil, fmt.Errorf("property %s given twice with different values", out[i].Name)
		}
	}
	return slices.Compact(out), nil
}

// normalizeCheck checks a check spec, for targets of both address
// families, and returns its canonical form (with {addr} kept).
func normalizeCheck(spec string) (string, error) {
	c, err := probe.Parse(spec)
	if err != nil {
		return "", fmt.Errorf("property %s: %v", PropCheck, err)
	}
	return c.String(), nil
}

// CheckFor returns the check that spec (a PropCheck value) describes for
// the target at addr.
func CheckFor(spec string, addr netip.Addr) (probe.Check, error) {
	c, err := probe.Parse(spec)
	if err != nil {
		return probe.Check{}, err
	}
	return c.ForAddr(addr)
}
