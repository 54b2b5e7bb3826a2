// Package zone loads the static part of a zone (SOA, NS, glue and fixed
// records) from an RFC 1035 zone file, with miekg/dns's parser, and checks
// that it can be served authoritatively. It knows nothing of health.
package zone

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Data is a zone's static records, grouped by lower-case owner and type.
// A Data is never written once made: one with other records is a new
// Data, which may share the records of the names it did not change.
type Data struct {
	Origin string // lower-case FQDN
	SOA    *dns.SOA
	Names  map[string]map[uint16][]dns.RR
	// Single holds owners whose records are all of one type, apart
	// from Names, for Data made of records (a webhook's TXT registry
	// names, by the hundred thousand): a map of types costs some 300
	// bytes a name, a slice 24; and in shards, so that a Data made from
	// another by changing a few of them copies only their shards. An
	// owner is in Names or in Single, never both; Parse fills only
	// Names.
	Single *NameMap[[]dns.RR]

	// Gen names this Data among those of the process (0: unnamed). A
	// Data made from another by changing a few names says which (From,
	// the other's Gen, and Changed, the owner names whose records differ,
	// sorted), so that what was built from the other can be patched
	// rather than built again. From is 0 for a Data made whole.
	Gen     uint64
	From    uint64
	Changed []string
}

// All is every owner of d with its records by type: Names', then
// Single's, each in a map made for it. For readers that are not in a hurry.
func (d *Data) All() iter.Seq2[string, map[uint16][]dns.RR] {
	return func(yield func(string, map[uint16][]dns.RR) bool) {
		for owner, types := range d.Names {
			if !yield(owner, types) {
				return
			}
		}
		for owner, rrs := range d.Single.All() {
			if len(rrs) > 0 && !yield(owner, map[uint16][]dns.RR{rrs[0].Header().Rrtype: rrs}) {
				return
			}
		}
	}
}

var gens atomic.Uint64

// NextGen returns a Gen no Data of the process has.
func NextGen() uint64 { return gens.Add(1) }

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
// parser; semantic errors name the file and the line of the offending
// record, and quote it.
func Parse(r io.Reader, file, origin string) (*Data, error) {
	origin = strings.ToLower(dns.Fqdn(origin))
	d := &Data{Origin: origin, Names: make(map[string]map[uint16][]dns.RR), Gen: NextGen()}
	lr := &lineReader{br: bufio.NewReader(r), line: 1}
	lines := map[dns.RR]int{}
	line := func(rr dns.RR) int { return lines[rr] }
	at := func(rr dns.RR) string { return fmt.Sprintf("%s:%d", file, line(rr)) }
	zp := dns.NewZoneParser(lr, origin, file)
	zp.SetIncludeAllowed(false)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		lines[rr] = lr.lastLine()
		h := rr.Header()
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("%s: record %q: only class IN is served", at(rr), rr.String())
		}
		owner := strings.ToLower(h.Name)
		if !dns.IsSubDomain(origin, owner) {
			return nil, fmt.Errorf("%s: record %q is outside the zone %s", at(rr), rr.String(), origin)
		}
		if soa, ok := rr.(*dns.SOA); ok {
			if owner != origin {
				return nil, fmt.Errorf("%s: SOA %q must be at the zone apex %s", at(rr), rr.String(), origin)
			}
			if d.SOA != nil {
				return nil, fmt.Errorf("%s: second SOA %q: a zone has exactly one", at(rr), rr.String())
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
				return nil, fmt.Errorf("%s: %s has %d CNAME records; at most one is allowed", at(cn[1]), owner, len(cn))
			}
			for t, rrs := range types {
				if t != dns.TypeCNAME && t != dns.TypeRRSIG && t != dns.TypeNSEC {
					return nil, fmt.Errorf("%s: %s has a CNAME and %s records; a CNAME must be alone (RFC 1034 3.6.2)", at(rrs[0]), owner, dns.TypeToString[t])
				}
			}
		}
		if err := checkDNAME(d, owner, types, at, line); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// checkDNAME refuses what RFC 6672 forbids around a DNAME, rather than
// loading data that could never be served: a second DNAME at one owner, a
// DNAME beside a delegation, and any record below a DNAME owner (occluded,
// section 2.3, which lets a server refuse such a zone). A DNAME at a
// wildcard owner is refused too: what it should redirect is not defined.
func checkDNAME(d *Data, owner string, types map[uint16][]dns.RR, at func(dns.RR) string, line func(dns.RR) int) error {
	if dn := types[dns.TypeDNAME]; len(dn) > 0 {
		if len(dn) > 1 {
			return fmt.Errorf("%s: %s has %d DNAME records; at most one is allowed (RFC 6672 2.4)", at(dn[1]), owner, len(dn))
		}
		if owner != d.Origin && len(types[dns.TypeNS]) > 0 {
			return fmt.Errorf("%s: %s has a DNAME and NS records; below the apex that is not allowed (RFC 6672 2.3)", at(dn[0]), owner)
		}
		if strings.HasPrefix(owner, "*.") {
			return fmt.Errorf("%s: DNAME at the wildcard %s is not supported", at(dn[0]), owner)
		}
	}
	for p := parent(owner); p != "" && dns.IsSubDomain(d.Origin, p); p = parent(p) {
		if dn := d.Names[p][dns.TypeDNAME]; len(dn) > 0 {
			first := firstRecord(types, line)
			return fmt.Errorf("%s: %s is below the DNAME at %s, which redirects every name under it: the record could never be served (RFC 6672 2.3)", at(first), owner, p)
		}
	}
	return nil
}

// firstRecord is the record of an owner that comes first in the file.
func firstRecord(types map[uint16][]dns.RR, line func(dns.RR) int) dns.RR {
	var first dns.RR
	for _, rrs := range types {
		for _, rr := range rrs {
			if first == nil || line(rr) < line(first) {
				first = rr
			}
		}
	}
	return first
}

func parent(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

// lineReader counts the lines the zone parser has read, so that semantic
// errors can name the line of a record. The parser reads byte by byte, up
// to the newline that ends a record.
type lineReader struct {
	br   *bufio.Reader
	line int  // the line being read
	last byte // the last byte read
}

func (r *lineReader) ReadByte() (byte, error) {
	b, err := r.br.ReadByte()
	if err != nil {
		return b, err
	}
	if r.last == '\n' {
		r.line++
	}
	r.last = b
	return b, nil
}

func (r *lineReader) Read(p []byte) (int, error) { return r.br.Read(p) }

// lastLine is the line of the record the parser just returned: the line
// of its final newline.
func (r *lineReader) lastLine() int { return r.line }
