// Package override holds operators' overrides of health verdicts: a
// target drained (answered only when nothing else is, like a weight-0
// standby) or forced down or up, selected by address, owner, region or a
// glob over name and address, with who set it, why, and an optional
// expiry.
//
// Overrides are their own state, beside the verdicts: verdicts stay what
// the probes say, and the snapshot builder applies the overrides on top.
// Entries are versioned by (time set, server that took the write), last
// writer wins, so every server that has seen the same entries decides the
// same; a clear is an entry too (a tombstone), kept for Retention so that
// a server that missed it cannot bring the old entry back. Expiries are
// absolute times: every server judges them by its own clock (clocks are
// assumed in sync to well under a second, as NTP keeps them).
//
// Everything here is pure but Book (a mutex) and file.go (the data
// directory); the clock is always passed in.
package override

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"
)

// State is what an override does to the targets it selects.
type State uint8

const (
	// None is a cleared override: a tombstone.
	None State = iota
	// Drain: answered only when no other target of the name may be.
	Drain
	// Down: treated as down whatever the probes say.
	Down
	// Up: treated as up whatever the probes say.
	Up
)

func (s State) String() string {
	switch s {
	case Drain:
		return "drain"
	case Down:
		return "down"
	case Up:
		return "up"
	}
	return "none"
}

// ParseState reads a state word; "clear" is None.
func ParseState(s string) (State, error) {
	switch s {
	case "drain":
		return Drain, nil
	case "down":
		return Down, nil
	case "up":
		return Up, nil
	case "none", "clear":
		return None, nil
	}
	return 0, fmt.Errorf("state %q: want drain, down, up or clear", s)
}

// Limits on what an entry may hold, so that one fits a gossip packet.
const (
	MaxSelectorLen = 300
	MaxReasonLen   = 256
	MaxWhoLen      = 64
	MaxNodeLen     = 128
	// MaxEntries bounds the entries a server keeps (active and cleared).
	MaxEntries = 1000
	// Retention is how long a cleared or expired entry is kept, so that
	// a server that was away less than that and still holds the old
	// entry does not bring it back.
	Retention = 7 * 24 * time.Hour
)

// Entry is one override. Key is its selector's canonical text: a newer
// entry for the same selector replaces the older.
type Entry struct {
	Selector Selector
	State    State
	Reason   string
	Who      string
	// At is when the override was set, by the clock of Node, the server
	// that took the write: the entry's version.
	At   time.Time
	Node string
	// Until is when it stops being in force; zero for never. A clear
	// has Until = At.
	Until time.Time
}

// Key is the entry's selector text.
func (e Entry) Key() string { return e.Selector.String() }

// Newer says whether e replaces o: a later At, or the same At and a
// greater Node (two servers writing at the same nanosecond).
func (e Entry) Newer(o Entry) bool {
	if c := e.At.Compare(o.At); c != 0 {
		return c > 0
	}
	return e.Node > o.Node
}

// compare orders entries by version.
func compare(a, b Entry) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	return cmp.Compare(a.Node, b.Node)
}

// Active says whether e is in force at now.
func (e Entry) Active(now time.Time) bool {
	return e.State != None && (e.Until.IsZero() || now.Before(e.Until))
}

// Validate checks an entry from outside (the API, a peer, the file).
func (e Entry) Validate() error {
	if err := e.Selector.validate(); err != nil {
		return err
	}
	switch {
	case e.State > Up:
		return fmt.Errorf("override %s: state %d unknown", e.Key(), e.State)
	case len(e.Reason) > MaxReasonLen:
		return fmt.Errorf("override %s: reason longer than %d bytes", e.Key(), MaxReasonLen)
	case len(e.Who) > MaxWhoLen:
		return fmt.Errorf("override %s: who longer than %d bytes", e.Key(), MaxWhoLen)
	case e.Node == "" || len(e.Node) > MaxNodeLen:
		return fmt.Errorf("override %s: node name of 1 to %d bytes required", e.Key(), MaxNodeLen)
	case e.At.IsZero() || e.At.UnixNano() <= 0:
		return fmt.Errorf("override %s: no time set", e.Key())
	case !e.Until.IsZero() && e.Until.Before(e.At):
		return fmt.Errorf("override %s: expires before it was set", e.Key())
	}
	return nil
}

// Target is what a selector sees of one target of a name.
type Target struct {
	Name   string // the FQDN, lower case, final dot
	Addr   netip.Addr
	Owner  string // the webhook owner, "" for a Corefile target
	Region string // the geo region, "" for none
}

// Selector picks targets. Every field set must match (an AND); Addr and
// Name are globs (path.Match: * ? [...]), Addr an exact address when it
// parses as one.
type Selector struct {
	Addr   string
	Name   string // without the final dot
	Owner  string
	Region string
}

// ParseSelector reads an operator's selector: comma-separated terms
// addr=GLOB, name=GLOB, owner=NAME and region=NAME, or the short forms
// ADDRESS and NAME/ADDRESS (globs in each).
//
//	192.0.2.10                  one address, in every name
//	app.gslb.example.com/*      every target of one name
//	*/10.1.*                    addresses by glob, in every name
//	owner=east                  every target the webhook owner east wrote
//	owner=east,name=app.*       the owner's targets of names app.*
//	region=eu-west              when targets carry regions
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	if s = strings.TrimSpace(s); s == "" {
		return sel, errors.New("empty selector: want ADDRESS, NAME/ADDRESS or addr=, name=, owner=, region= terms")
	}
	if len(s) > MaxSelectorLen {
		return sel, fmt.Errorf("selector longer than %d bytes", MaxSelectorLen)
	}
	seen := map[string]bool{}
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		key, val, ok := strings.Cut(term, "=")
		if !ok {
			if name, addr, slash := strings.Cut(term, "/"); slash {
				if seen["name"] || seen["addr"] {
					return sel, fmt.Errorf("selector %q: name or address given twice", s)
				}
				seen["name"], seen["addr"] = true, true
				sel.Name, sel.Addr = name, addr
				continue
			}
			if _, err := netip.ParseAddr(term); err != nil {
				return sel, fmt.Errorf("selector term %q: want an address, NAME/ADDRESS or key=value (addr, name, owner, region)", term)
			}
			key, val = "addr", term
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if seen[key] {
			return sel, fmt.Errorf("selector %q: %s given twice", s, key)
		}
		seen[key] = true
		switch key {
		case "addr":
			sel.Addr = val
		case "name":
			sel.Name = val
		case "owner":
			sel.Owner = val
		case "region":
			sel.Region = val
		default:
			return sel, fmt.Errorf("selector term %q: unknown key %q (want addr, name, owner or region)", term, key)
		}
	}
	sel.Name = strings.TrimSuffix(strings.ToLower(sel.Name), ".")
	if a, err := netip.ParseAddr(sel.Addr); err == nil {
		sel.Addr = a.Unmap().String()
	}
	if sel.Name == "*" {
		sel.Name = "" // every name: the same selector, one key
	}
	if sel.Addr == "*" {
		sel.Addr = ""
	}
	return sel, sel.validate()
}

func (s Selector) validate() error {
	if s == (Selector{}) {
		return errors.New("selector selects every target: say which (a glob of * alone is not a selector)")
	}
	for _, g := range []struct{ what, v string }{{"addr", s.Addr}, {"name", s.Name}} {
		if _, err := path.Match(g.v, ""); err != nil {
			return fmt.Errorf("selector %s=%q: bad glob: %v", g.what, g.v, err)
		}
		if strings.ContainsAny(g.v, ", /=") {
			return fmt.Errorf("selector %s=%q: no commas, spaces, slashes or = inside", g.what, g.v)
		}
	}
	for _, w := range []struct{ what, v string }{{"owner", s.Owner}, {"region", s.Region}} {
		if strings.ContainsAny(w.v, ", /=*?[") || len(w.v) > 63 {
			return fmt.Errorf("selector %s=%q: want a plain name of up to 63 characters", w.what, w.v)
		}
	}
	if len(s.String()) > MaxSelectorLen {
		return fmt.Errorf("selector longer than %d bytes", MaxSelectorLen)
	}
	return nil
}

// String is the canonical text, the entry's key: its terms in a fixed
// order, so two spellings of one selector are one entry.
func (s Selector) String() string {
	var terms []string
	for _, t := range []struct{ k, v string }{{"addr", s.Addr}, {"name", s.Name}, {"owner", s.Owner}, {"region", s.Region}} {
		if t.v != "" {
			terms = append(terms, t.k+"="+t.v)
		}
	}
	return strings.Join(terms, ",")
}

// exactAddr is the address s selects alone, if it names one.
func (s Selector) exactAddr() (netip.Addr, bool) {
	a, err := netip.ParseAddr(s.Addr)
	return a, err == nil
}

// Match says whether s selects t.
func (s Selector) Match(t Target) bool {
	if s.Owner != "" && s.Owner != t.Owner {
		return false
	}
	if s.Region != "" && s.Region != t.Region {
		return false
	}
	if s.Addr != "" {
		if a, ok := s.exactAddr(); ok {
			if a != t.Addr.Unmap() {
				return false
			}
		} else if ok, _ := path.Match(s.Addr, t.Addr.Unmap().String()); !ok {
			return false
		}
	}
	if s.Name != "" {
		if ok, _ := path.Match(s.Name, strings.TrimSuffix(t.Name, ".")); !ok {
			return false
		}
	}
	return true
}

// Merge returns what set holds after adding es, and the entries of es
// that were news (newer than what set held for their key). set is not
// changed.
func Merge(set map[string]Entry, es ...Entry) (map[string]Entry, []Entry) {
	var news []Entry
	out := set
	for _, e := range es {
		k := e.Key()
		if old, ok := out[k]; ok && !e.Newer(old) {
			continue
		}
		if len(news) == 0 {
			out = make(map[string]Entry, len(set)+len(es))
			for k, v := range set {
				out[k] = v
			}
		}
		out[k] = e
		news = append(news, e)
	}
	return out, news
}

// Forget drops the entries past Retention after they ended, and the
// oldest beyond MaxEntries (ended ones first). It returns set itself
// when nothing goes.
func Forget(set map[string]Entry, now time.Time) map[string]Entry {
	drop := map[string]bool{}
	for k, e := range set {
		if !e.Until.IsZero() && now.After(e.Until.Add(Retention)) {
			drop[k] = true
		}
	}
	if over := len(set) - len(drop) - MaxEntries; over > 0 {
		var rest []Entry
		for k, e := range set {
			if !drop[k] {
				rest = append(rest, e)
			}
		}
		slices.SortFunc(rest, func(a, b Entry) int {
			if aa, ba := a.Active(now), b.Active(now); aa != ba {
				if aa {
					return 1
				}
				return -1
			}
			return compare(a, b)
		})
		for _, e := range rest[:over] {
			drop[e.Key()] = true
		}
	}
	if len(drop) == 0 {
		return set
	}
	out := make(map[string]Entry, len(set)-len(drop))
	for k, e := range set {
		if !drop[k] {
			out[k] = e
		}
	}
	return out
}

// Sorted returns set's entries by key.
func Sorted(set map[string]Entry) []Entry {
	out := make([]Entry, 0, len(set))
	for _, e := range set {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key(), b.Key()) })
	return out
}

// Matcher answers which override is in force for a target, for the
// entries in force at one moment.
type Matcher struct {
	byAddr map[netip.Addr][]Entry // selectors that name one address
	others []Entry
	next   time.Time // the earliest expiry among them; zero for none
}

// Compile builds the matcher of the entries in force at now. It returns
// nil when none is: For on a nil Matcher finds nothing.
func Compile(es []Entry, now time.Time) *Matcher {
	var m *Matcher
	for _, e := range es {
		if !e.Active(now) {
			continue
		}
		if m == nil {
			m = &Matcher{byAddr: map[netip.Addr][]Entry{}}
		}
		if a, ok := e.Selector.exactAddr(); ok {
			m.byAddr[a] = append(m.byAddr[a], e)
		} else {
			m.others = append(m.others, e)
		}
		if !e.Until.IsZero() && (m.next.IsZero() || e.Until.Before(m.next)) {
			m.next = e.Until
		}
	}
	return m
}

// Next is when the matcher stops being right: the earliest expiry of
// the entries in it; zero for never.
func (m *Matcher) Next() time.Time {
	if m == nil {
		return time.Time{}
	}
	return m.next
}

// For returns the override in force for t: of the entries that select
// it, the newest, so an operator can drain a region and then force one
// of its targets up (or the other way round) and the last word counts.
func (m *Matcher) For(t Target) (Entry, bool) {
	if m == nil {
		return Entry{}, false
	}
	var best Entry
	found := false
	pick := func(es []Entry) {
		for _, e := range es {
			if e.Selector.Match(t) && (!found || e.Newer(best)) {
				best, found = e, true
			}
		}
	}
	pick(m.byAddr[t.Addr.Unmap()])
	pick(m.others)
	return best, found
}

// Apply is what an override makes of a target's verdict: whether it
// counts as healthy, and whether it is drained (answered only when no
// other target may be).
func Apply(e Entry, found, up bool) (healthy, drained bool) {
	if !found {
		return up, false
	}
	switch e.State {
	case Down:
		return false, false
	case Up:
		return true, false
	case Drain:
		return up, true
	}
	return up, false
}

// jsonEntry is an entry as the API and the data directory write it.
type jsonEntry struct {
	Selector string    `json:"selector"`
	State    string    `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Who      string    `json:"who,omitempty"`
	At       time.Time `json:"set"`
	Node     string    `json:"node"`
	Until    time.Time `json:"until,omitzero"`
}

// MarshalJSON writes the entry with its selector and state as text.
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonEntry{Selector: e.Key(), State: e.State.String(), Reason: e.Reason, Who: e.Who, At: e.At.UTC(), Node: e.Node, Until: utc(e.Until)})
}

// UnmarshalJSON reads and validates an entry.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j jsonEntry
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	sel, err := ParseSelector(j.Selector)
	if err != nil {
		return err
	}
	st, err := ParseState(j.State)
	if err != nil {
		return err
	}
	out := Entry{Selector: sel, State: st, Reason: j.Reason, Who: j.Who, At: j.At, Node: j.Node, Until: j.Until}
	if err := out.Validate(); err != nil {
		return err
	}
	*e = out
	return nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
