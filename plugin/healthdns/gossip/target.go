package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// TargetID is a small stable name for a target: the first 8 bytes of the
// SHA-256 of probe.Target.Key(). Every node computes the same ID for the
// same address, checks and timing without coordination, and an observation
// costs 8 bytes of ID on the wire instead of the whole key. Changing the
// hash changes every ID, so it is part of the wire format.
type TargetID uint64

// IDOf returns the ID of t.
func IDOf(t probe.Target) TargetID { return idOfKey(t.Key()) }

func idOfKey(key string) TargetID {
	sum := sha256.Sum256([]byte(key))
	return TargetID(binary.BigEndian.Uint64(sum[:8]))
}

// String is the ID as 16 hex digits.
func (id TargetID) String() string { return fmt.Sprintf("%016x", uint64(id)) }

// CatalogTarget is a target as servers publish it so that agents learn what
// to probe. Checks are in the canonical form of probe.Check.String() (the
// grammar of package probe, every kind and option), with {addr} filled in;
// an entry in any other form is refused, as its ID would not be the hash
// of what it describes.
type CatalogTarget struct {
	ID       TargetID
	Addr     netip.Addr
	Checks   []string
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
}

// Limits on what a catalog target may hold, so one fits in a gossip packet.
const (
	maxChecks    = 16
	maxCheckLen  = 512
	maxTargetLen = 800 // encoded bytes
	maxRiseFall  = 1000
	maxTiming    = time.Hour
)

// NewCatalogTarget describes t for the catalog. It fails when t would not
// come back identical (same Key, same ID) on an agent.
func NewCatalogTarget(t probe.Target) (CatalogTarget, error) {
	c := CatalogTarget{
		ID:       IDOf(t),
		Addr:     t.Addr,
		Interval: t.Interval,
		Timeout:  t.Timeout,
		Rise:     t.Rise,
		Fall:     t.Fall,
	}
	for _, ch := range t.Checks {
		c.Checks = append(c.Checks, ch.String())
	}
	if err := c.validate(); err != nil {
		return CatalogTarget{}, err
	}
	enc := appendTarget(nil, c)
	if len(enc) > maxTargetLen {
		return CatalogTarget{}, fmt.Errorf("target %s: too large for the catalog (over %d bytes)", t.Addr, maxTargetLen)
	}
	knownTargets.add(enc, c.ID) // its peers' catalogs hold it too: decode it for free
	return c, nil
}

// Probe turns the catalog entry back into a target to probe.
func (c CatalogTarget) Probe() (probe.Target, error) {
	t := probe.Target{Addr: c.Addr, Interval: c.Interval, Timeout: c.Timeout, Rise: c.Rise, Fall: c.Fall}
	for _, s := range c.Checks {
		ch, err := probe.Parse(s)
		if err != nil {
			return probe.Target{}, err
		}
		if ch.IsTemplate() {
			// A server fills {addr} in before it publishes a target.
			return probe.Target{}, fmt.Errorf("target %s: check %q has %s unfilled", c.Addr, s, probe.AddrPlaceholder)
		}
		t.Checks = append(t.Checks, ch)
	}
	return t, nil
}

// validate checks that c is a target worth probing and that its ID is the
// hash of what it describes, so a corrupt or forged entry cannot stand in
// for another target.
func (c CatalogTarget) validate() error {
	id, err := c.identify()
	if err != nil {
		return err
	}
	if id != c.ID {
		return fmt.Errorf("target %s: ID %s does not match its definition (%s)", c.Addr, c.ID, id)
	}
	return nil
}

// identify checks that c, its ID aside, is a target worth probing in
// canonical form, and returns the ID it must have. The wire does not carry
// the ID: the receiver computes it from what the target describes.
func (c CatalogTarget) identify() (TargetID, error) {
	if !c.Addr.IsValid() {
		return 0, errors.New("target: no address")
	}
	if len(c.Checks) == 0 || len(c.Checks) > maxChecks {
		return 0, fmt.Errorf("target %s: %d checks, want 1 to %d", c.Addr, len(c.Checks), maxChecks)
	}
	for _, s := range c.Checks {
		if len(s) > maxCheckLen {
			return 0, fmt.Errorf("target %s: check longer than %d bytes", c.Addr, maxCheckLen)
		}
	}
	if c.Interval <= 0 || c.Interval > maxTiming || c.Timeout <= 0 || c.Timeout > maxTiming {
		return 0, fmt.Errorf("target %s: interval %s and timeout %s must be in (0, %s]", c.Addr, c.Interval, c.Timeout, maxTiming)
	}
	if c.Rise < 1 || c.Rise > maxRiseFall || c.Fall < 1 || c.Fall > maxRiseFall {
		return 0, fmt.Errorf("target %s: rise %d and fall %d must be in [1, %d]", c.Addr, c.Rise, c.Fall, maxRiseFall)
	}
	t, err := c.Probe()
	if err != nil {
		return 0, err
	}
	for i, ch := range t.Checks {
		if ch.String() != c.Checks[i] {
			return 0, fmt.Errorf("target %s: check %q is not in canonical form (%q)", c.Addr, c.Checks[i], ch.String())
		}
	}
	return IDOf(t), nil
}

func (c CatalogTarget) equal(o CatalogTarget) bool {
	if c.ID != o.ID || c.Addr != o.Addr || c.Interval != o.Interval || c.Timeout != o.Timeout ||
		c.Rise != o.Rise || c.Fall != o.Fall || len(c.Checks) != len(o.Checks) {
		return false
	}
	for i := range c.Checks {
		if c.Checks[i] != o.Checks[i] {
			return false
		}
	}
	return true
}
