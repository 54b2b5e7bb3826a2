package records

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"
)

// Endpoint is one DNS record set of an owner, as ExternalDNS models it
// (sigs.k8s.io/external-dns/endpoint.Endpoint; the JSON names are the
// same, so the webhook decodes ExternalDNS's JSON straight into it): a
// name, a type and its targets, keyed by (DNSName, RecordType,
// SetIdentifier).
//
// An Endpoint in a Set is canonical (see Normalize): lower-case name
// without the final dot, upper-case type, targets in canonical form,
// sorted and unique, provider-specific properties sorted by name.
// Endpoints held by a Set are shared: never modify them.
type Endpoint struct {
	DNSName       string   `json:"dnsName,omitempty"`
	Targets       []string `json:"targets,omitempty"`
	RecordType    string   `json:"recordType,omitempty"`
	SetIdentifier string   `json:"setIdentifier,omitempty"`
	// RecordTTL is the TTL in seconds; 0 means not set (the server's
	// default for the name applies).
	RecordTTL int64 `json:"recordTTL,omitempty"`
	// Labels are ExternalDNS's labels (owner, resource, ownedRecord);
	// they are stored and returned, never interpreted.
	Labels map[string]string `json:"labels,omitempty"`
	// ProviderSpecific carries healthdns's per-endpoint settings (see
	// Properties) and any other provider-agnostic property, stored as is.
	ProviderSpecific []Property `json:"providerSpecific,omitempty"`
}

// Property is one provider-specific name/value pair.
type Property struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
}

// Record types served.
const (
	TypeA     = "A"
	TypeAAAA  = "AAAA"
	TypeCNAME = "CNAME"
	TypeTXT   = "TXT"
)

// Limits on what one endpoint may hold. They keep a Set small enough to
// gossip and a TXT answer small enough to send.
const (
	MaxNameLen     = 253  // a DNS name in text form, without the final dot
	MaxTargets     = 256  // targets of one endpoint
	MaxTXTLen      = 2048 // one TXT target, quotes included
	MaxTXTTotal    = 8192 // all TXT targets of one endpoint
	MaxSetIDLen    = 255
	MaxLabels      = 32
	MaxLabelKeyLen = 128
	MaxLabelValLen = 1024
	MaxProperties  = 32
	MaxPropNameLen = 128
	MaxPropValLen  = 1024
	MaxTTL         = 1<<31 - 1
)

// ErrInvalid is wrapped by every error about a record's content, so a
// caller can tell bad input (a 4xx) from a failure to store it (a 5xx).
var ErrInvalid = errors.New("invalid record")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Key identifies an endpoint within its owner's Set.
type Key struct {
	Name          string // canonical DNS name
	Type          string
	SetIdentifier string
}

func (k Key) String() string {
	s := k.Name + " " + k.Type
	if k.SetIdentifier != "" {
		s += " (set " + k.SetIdentifier + ")"
	}
	return s
}

// Key returns the endpoint's key; for a canonical endpoint.
func (e Endpoint) Key() Key {
	return Key{Name: e.DNSName, Type: e.RecordType, SetIdentifier: e.SetIdentifier}
}

func compareKeys(a, b Key) int {
	if c := cmp.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return cmp.Compare(a.SetIdentifier, b.SetIdentifier)
}

// CanonicalName lower-cases name and drops one final dot, and checks that
// it is a DNS name healthdns can serve: labels of 1 to 63 letters, digits,
// hyphens and underscores (ASCII; IDNs in their xn-- form), at most 253
// bytes, and "*" only as a whole first label.
func CanonicalName(name string) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	if err := checkName(n, true); err != nil {
		return "", invalid("name %q: %v", name, err)
	}
	return n, nil
}

func checkName(n string, wildcard bool) error {
	if n == "" {
		return errors.New("empty")
	}
	if len(n) > MaxNameLen {
		return fmt.Errorf("longer than %d bytes", MaxNameLen)
	}
	for i, l := range strings.Split(n, ".") {
		if l == "" {
			return errors.New("empty label")
		}
		if len(l) > 63 {
			return errors.New("label longer than 63 bytes")
		}
		if l == "*" {
			if !wildcard || i > 0 {
				return errors.New("a wildcard is allowed only as the whole first label")
			}
			continue
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("bad character %q (want letters, digits, '-' or '_')", c)
			}
		}
	}
	return nil
}

// canonicalType upper-cases t and checks that healthdns serves it.
func canonicalType(t string) (string, error) {
	switch u := strings.ToUpper(t); u {
	case TypeA, TypeAAAA, TypeCNAME, TypeTXT:
		return u, nil
	case "":
		return "", errors.New("no record type")
	default:
		return "", fmt.Errorf("record type %.16q is not supported (healthdns serves A, AAAA, CNAME and TXT)", t)
	}
}

// Normalize checks e and returns its canonical form: the name lower-cased
// without the final dot, the type upper-cased, addresses in canonical
// form, CNAME targets as names, targets sorted and unique, properties
// sorted by name, healthdns's properties normalised (see Properties). It
// does not check the name against a domain filter (see Filter). Errors
// wrap ErrInvalid.
func Normalize(e Endpoint) (Endpoint, error) {
	k, err := normalizeKey(e)
	if err != nil {
		return Endpoint{}, err
	}
	out := Endpoint{DNSName: k.Name, RecordType: k.Type, SetIdentifier: k.SetIdentifier}
	what := k.String()
	if e.RecordTTL < 0 || e.RecordTTL > MaxTTL {
		return Endpoint{}, invalid("%s: TTL %d out of range 0 to %d", what, e.RecordTTL, MaxTTL)
	}
	out.RecordTTL = e.RecordTTL
	if len(e.Targets) == 0 {
		return Endpoint{}, invalid("%s: no targets", what)
	}
	if len(e.Targets) > MaxTargets {
		return Endpoint{}, invalid("%s: %d targets, more than %d", what, len(e.Targets), MaxTargets)
	}
	total := 0
	for _, t := range e.Targets {
		c, err := canonicalTarget(k.Type, t)
		if err != nil {
			return Endpoint{}, invalid("%s: %v", what, err)
		}
		total += len(c)
		out.Targets = append(out.Targets, c)
	}
	if k.Type == TypeTXT && total > MaxTXTTotal {
		return Endpoint{}, invalid("%s: TXT targets of %d bytes in all, more than %d", what, total, MaxTXTTotal)
	}
	slices.Sort(out.Targets)
	out.Targets = slices.Compact(out.Targets)
	if k.Type == TypeCNAME && len(out.Targets) != 1 {
		return Endpoint{}, invalid("%s: a CNAME has exactly one target, got %d", what, len(out.Targets))
	}
	if len(e.Labels) > MaxLabels {
		return Endpoint{}, invalid("%s: %d labels, more than %d", what, len(e.Labels), MaxLabels)
	}
	if len(e.Labels) > 0 {
		out.Labels = make(map[string]string, len(e.Labels))
		for lk, lv := range e.Labels {
			if lk == "" || len(lk) > MaxLabelKeyLen || len(lv) > MaxLabelValLen || !printable(lk) || !printable(lv) {
				return Endpoint{}, invalid("%s: label %.40q: want a key of 1 to %d and a value of up to %d printable characters", what, lk, MaxLabelKeyLen, MaxLabelValLen)
			}
			out.Labels[lk] = lv
		}
	}
	ps, err := normalizeProperties(e.ProviderSpecific)
	if err != nil {
		return Endpoint{}, invalid("%s: %v", what, err)
	}
	out.ProviderSpecific = ps
	return out, nil
}

// normalizeKey checks and canonicalises only what identifies e: enough
// for a delete, which names a record rather than describes it.
func normalizeKey(e Endpoint) (Key, error) {
	name, err := CanonicalName(e.DNSName)
	if err != nil {
		return Key{}, err
	}
	typ, err := canonicalType(e.RecordType)
	if err != nil {
		return Key{}, invalid("%s: %v", name, err)
	}
	if len(e.SetIdentifier) > MaxSetIDLen || !printable(e.SetIdentifier) {
		return Key{}, invalid("%s %s: set identifier: want up to %d printable characters", name, typ, MaxSetIDLen)
	}
	return Key{Name: name, Type: typ, SetIdentifier: e.SetIdentifier}, nil
}

func canonicalTarget(typ, t string) (string, error) {
	switch typ {
	case TypeA, TypeAAAA:
		a, err := netip.ParseAddr(t)
		if err != nil || a.Zone() != "" {
			return "", fmt.Errorf("target %.64q: not an IP address", t)
		}
		if typ == TypeA {
			if a.Is4In6() {
				a = a.Unmap()
			}
			if !a.Is4() {
				return "", fmt.Errorf("target %s: not an IPv4 address (an A record)", t)
			}
		} else if !a.Is6() || a.Is4In6() {
			return "", fmt.Errorf("target %s: not an IPv6 address (an AAAA record)", t)
		}
		return a.String(), nil
	case TypeCNAME:
		n := strings.ToLower(strings.TrimSuffix(t, "."))
		if err := checkName(n, false); err != nil {
			return "", fmt.Errorf("target %.64q: not a host name: %v", t, err)
		}
		return n, nil
	default: // TXT
		if len(t) > MaxTXTLen {
			return "", fmt.Errorf("TXT target of %d bytes, more than %d", len(t), MaxTXTLen)
		}
		if !printable(t) {
			return "", fmt.Errorf("TXT target %.64q: control characters or invalid UTF-8", t)
		}
		return t, nil
	}
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// TXTStrings returns a TXT target as the character-strings of a TXT
// record: the text, without one pair of surrounding double quotes (the
// ExternalDNS registry writes its targets quoted), cut into strings of at
// most 255 bytes.
func TXTStrings(target string) []string {
	s := target
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return []string{""}
	}
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

// size bounds the bytes the endpoint takes in any of our encodings: each
// string counts with 8 bytes of overhead.
func (e Endpoint) size() int {
	n := 32 + len(e.DNSName) + len(e.RecordType) + len(e.SetIdentifier)
	for _, t := range e.Targets {
		n += 8 + len(t)
	}
	for k, v := range e.Labels {
		n += 16 + len(k) + len(v)
	}
	for _, p := range e.ProviderSpecific {
		n += 16 + len(p.Name) + len(p.Value)
	}
	return n
}

// equal reports whether two canonical endpoints are the same.
func (e Endpoint) equal(o Endpoint) bool {
	if e.DNSName != o.DNSName || e.RecordType != o.RecordType || e.SetIdentifier != o.SetIdentifier ||
		e.RecordTTL != o.RecordTTL || !slices.Equal(e.Targets, o.Targets) ||
		!slices.Equal(e.ProviderSpecific, o.ProviderSpecific) || len(e.Labels) != len(o.Labels) {
		return false
	}
	for k, v := range e.Labels {
		if w, ok := o.Labels[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of e, for a caller that wants to modify it.
func (e Endpoint) Clone() Endpoint {
	c := e
	c.Targets = slices.Clone(e.Targets)
	c.ProviderSpecific = slices.Clone(e.ProviderSpecific)
	c.Labels = maps.Clone(e.Labels)
	return c
}
