package records

import (
	"slices"
	"strings"
)

// Filter says which names an owner may publish: those in (equal to or
// below) one of the Include domains, the zones the servers are
// authoritative for, and in none of the Exclude domains. It is what the
// webhook negotiates with ExternalDNS as its domain filter.
type Filter struct {
	Include []string // canonical names; empty means any name
	Exclude []string
}

// NewFilter canonicalises the domains of a filter.
func NewFilter(include, exclude []string) (Filter, error) {
	var f Filter
	for _, l := range []struct {
		in  []string
		out *[]string
	}{{include, &f.Include}, {exclude, &f.Exclude}} {
		for _, d := range l.in {
			n, err := CanonicalName(d)
			if err != nil {
				return Filter{}, err
			}
			if strings.HasPrefix(n, "*") {
				return Filter{}, invalid("domain %q: a filter takes domains, not wildcards", d)
			}
			*l.out = append(*l.out, n)
		}
		slices.Sort(*l.out)
		*l.out = slices.Compact(*l.out)
	}
	return f, nil
}

// Match reports whether the canonical name is in the filter.
func (f Filter) Match(name string) bool {
	in := len(f.Include) == 0
	for _, d := range f.Include {
		if within(name, d) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, d := range f.Exclude {
		if within(name, d) {
			return false
		}
	}
	return true
}

func within(name, domain string) bool {
	return name == domain || strings.HasSuffix(name, "."+domain)
}
