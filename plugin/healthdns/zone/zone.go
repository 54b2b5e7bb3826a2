// Package zone loads the static part of a zone (SOA, NS, glue and fixed
// records) from an RFC 1035 zone file, with miekg/dns's parser, and checks
// that it can be served authoritatively. It knows nothing of health.
package zone

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// Data is a zone's static records, grouped by lower-case owner and type.
type Data struct {
	Origin string // lower-case FQDN
	SOA    *dns.SOA
	Names  map[string]map[uint16][]dns.RR
}

// Load parses the zone file at path for origin.
func Load(path, origin string) (*Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("zone file: %w", err)
	}
	defer f.Close()
	return Parse(f, path, origin)
}

// Parse reads a zone file. Syntax errors carry the file and line from the
// parser; semantic errors quote the offending record.
func Parse(r io.Reader, file, origin string) (*Data, error) {
	origin = strings.ToLower(dns.Fqdn(origin))
	d := &Data{Origin: origin, Names: make(map[string]map[uint16][]dns.RR)}
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetIncludeAllowed(false)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("%s: record %q: only class IN is served", file, rr.String())
		}
		owner := strings.ToLower(h.Name)
		if !dns.IsSubDomain(origin, owner) {
			return nil, fmt.Errorf("%s: record %q is outside the zone %s", file, rr.String(), origin)
		}
		if soa, ok := rr.(*dns.SOA); ok {
			if owner != origin {
				return nil, fmt.Errorf("%s: SOA %q must be at the zone apex %s", file, rr.String(), origin)
			}
			if d.SOA != nil {
				return nil, fmt.Errorf("%s: second SOA %q: a zone has exactly one", file, rr.String())
			}
			d.SOA = soa
		}
		types := d.Names[owner]
		if types == nil {
			types = make(map[uint16][]dns.RR)
			d.Names[owner] = types
		}
		types[h.Rrtype] = append(types[h.Rrtype], rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if d.SOA == nil {
		return nil, fmt.Errorf("%s: no SOA record for %s", file, origin)
	}
	if len(d.Names[origin][dns.TypeNS]) == 0 {
		return nil, fmt.Errorf("%s: no NS records at the apex %s", file, origin)
	}
	for owner, types := range d.Names {
		if cn := types[dns.TypeCNAME]; len(cn) > 0 {
			if len(cn) > 1 {
				return nil, fmt.Errorf("%s: %s has %d CNAME records; at most one is allowed", file, owner, len(cn))
			}
			for t := range types {
				if t != dns.TypeCNAME && t != dns.TypeRRSIG && t != dns.TypeNSEC {
					return nil, fmt.Errorf("%s: %s has a CNAME and %s records; a CNAME must be alone (RFC 1034 3.6.2)", file, owner, dns.TypeToString[t])
				}
			}
		}
	}
	return d, nil
}
