package snapshot

import (
	"slices"
	"strings"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"

	"github.com/miekg/dns"
)

// maxChain bounds CNAME chasing inside our own zones: 16 links are
// followed (a synthesised DNAME CNAME counts as one), the 17th is answered
// for the resolver to go on with.
const maxChain = 16

// anyOrder is the type order an ANY query picks its one RRset from (RFC
// 8482 lets an authoritative server answer a subset).
var anyOrder = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeSOA, dns.TypeNS, dns.TypeMX, dns.TypeTXT}

// Result says how Answer answered, for metrics and the ECS reply.
type Result struct {
	Outcome Outcome
	// Name is the health-aware name that answered: a configured or
	// record name, or a wildcard's own name, never the query name; "" for
	// a static answer.
	Name string
	// Policy answered (nil for a static answer), and how it chose.
	Policy policy.Policy
	policy.Choice
}

// Answer fills m, a reply already made with SetReply, for qname (lower
// case) and qtype, asked by c. It sets Rcode, Authoritative and the
// sections, and returns the outcome and, for a health-aware answer, the
// policy and its choice.
//
// size is the most the reply may take on the wire, OPT record excluded (0:
// no limit). It bounds only the optional additional records (the addresses
// of MX, SRV and apex NS targets): they are left out rather than make the
// reply truncated, since TC is for data the answer needs (RFC 2181 9).
// Referral glue is required, so it is always added.
func (s *Snapshot) Answer(m *dns.Msg, qname string, qtype uint16, size int, c policy.Client) Result {
	z := s.zoneOf(qname)
	if z == nil {
		m.Rcode = dns.RcodeRefused
		return Result{Outcome: Refused, Choice: policy.Choice{Region: -1}}
	}
	m.Authoritative = true
	static := Result{Outcome: Static, Choice: policy.Choice{Region: -1}}
	name := qname
	var buf node // a node of z.single's, for lookup
	for chain := 0; ; chain++ {
		if owner, dname := z.interrupt(name, qtype); owner != "" {
			if !dname {
				if chain == 0 {
					// A referral is not authoritative data (RFC 1034 4.3.2).
					m.Authoritative = false
				}
				z.referral(m, owner)
				return static
			}
			target, ok := z.synthesise(m, name, owner)
			if !ok {
				return static
			}
			next := s.zoneOf(target)
			if chain >= maxChain || next == nil || inAnswer(m.Answer, target) {
				return static
			}
			z, name = next, target
			continue
		}
		nd := z.names.Get(name) // z.lookup, its first half inlined
		if nd == nil {
			nd = z.lookupSingle(name, &buf)
		}
		if nd == nil && z.ents[name] {
			z.nodata(m, nil)
			return static
		}
		if nd == nil {
			var ent bool
			if nd, ent = z.wildcard(name); ent {
				// The wildcard exists only as an empty non-terminal: it
				// still matches, with no data (RFC 4592 4.9).
				z.nodata(m, nil)
				return static
			}
		}
		if nd == nil {
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, z.negSOA)
			return static
		}
		if cn := nd.get(dns.TypeCNAME); len(cn) > 0 && qtype != dns.TypeCNAME && qtype != dns.TypeANY {
			m.Answer = append(m.Answer, cn...)
			// Chase the target through every zone of this snapshot, as
			// NSD and BIND do (RFC 1034 4.3.2 step 3a goes back to step 1,
			// which picks the zone).
			target := strings.ToLower(cn[0].(*dns.CNAME).Target)
			next := s.zoneOf(target)
			if chain >= maxChain || next == nil || inAnswer(m.Answer, target) {
				return static // not ours, or a loop: the resolver takes it from here
			}
			z, name = next, target
			continue
		}
		t := qtype
		if t == dns.TypeANY {
			t = nd.anyType(s.dynOf(nd))
			if t == 0 {
				z.nodata(m, negSOAOf(s.dynOf(nd)))
				return static
			}
		}
		if dy := s.dynOf(nd); dy != nil && (t == dns.TypeA || t == dns.TypeAAAA) {
			set := &dy.A
			if t == dns.TypeAAAA {
				set = dy.AAAA
			}
			if !set.records {
				// The name's own short negative TTL, whatever the reason:
				// a target of the missing family may come (or come back)
				// at any time.
				z.nodata(m, dy.in.negSOA)
				if set.Outcome == Empty {
					return Result{Outcome: Empty, Name: dy.Name, Policy: dy.Policy(), Choice: policy.Choice{Region: -1}}
				}
				return static
			}
			if m.Answer == nil {
				m.Answer = make([]dns.RR, 0, set.size())
			}
			start := len(m.Answer)
			var ch policy.Choice
			m.Answer, ch = set.pick(m.Answer, c)
			res := Result{Outcome: set.Outcome, Name: dy.Name, Policy: dy.Policy(), Choice: ch}
			if ch.Fell && res.Outcome == Healthy {
				res.Outcome = Fallback
			}
			if len(m.Answer) == start {
				// Nothing for this client (geo, fallback none).
				z.nodata(m, dy.in.negSOA)
				res.Outcome = Empty
				return res
			}
			if nd.wild {
				// The built answer is the wildcard's: copy it under the
				// name asked (RFC 4592 4.3).
				for i := start; i < len(m.Answer); i++ {
					c := dns.Copy(m.Answer[i])
					c.Header().Name = name
					m.Answer[i] = c
				}
			}
			return res
		}
		rrs := nd.get(t)
		if len(rrs) == 0 {
			z.nodata(m, negSOAOf(s.dynOf(nd)))
			return static
		}
		m.Answer = append(m.Answer, rrs...)
		if qtype != dns.TypeANY && (t == dns.TypeMX || t == dns.TypeSRV || (t == dns.TypeNS && name == z.Origin)) {
			z.additional(s, m, rrs, size, c)
		}
		return static
	}
}

// synthesise answers name, which is below the DNAME at owner, with the
// DNAME and the CNAME it implies (RFC 6672 3.1, with the DNAME's TTL), and
// returns the new name in lower case. A new name too long to exist is
// YXDOMAIN (RFC 6672 2.2), and ok is false.
func (z *Zone) synthesise(m *dns.Msg, name, owner string) (target string, ok bool) {
	var buf node
	dn := z.lookup(owner, &buf).get(dns.TypeDNAME)[0].(*dns.DNAME)
	if !slices.Contains(m.Answer, dns.RR(dn)) {
		m.Answer = append(m.Answer, dn)
	}
	target = name[:len(name)-len(owner)] + strings.ToLower(dn.Target)
	if wireLen(target) > 255 {
		m.Rcode = dns.RcodeYXDomain
		return "", false
	}
	m.Answer = append(m.Answer, &dns.CNAME{
		Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: dn.Hdr.Ttl},
		Target: target,
	})
	return target, true
}

// wireLen is the length on the wire of name, an FQDN in presentation
// format (dns.IsDomainName lets 256 and 257 octets pass).
func wireLen(name string) int {
	if name == "." {
		return 1
	}
	n := 1 // the root label
	for i := 0; i < len(name); i++ {
		if name[i] == '\\' {
			if i+3 < len(name) && isDigit(name[i+1]) && isDigit(name[i+2]) && isDigit(name[i+3]) {
				i += 3 // \DDD is one octet
			} else {
				i++ // \X is X
			}
		}
		n++
	}
	return n
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// interrupt returns the node, nearest the apex, that stops the descent from
// the apex to name (RFC 1034 4.3.2 step 3, with RFC 6672 3.2): a
// delegation at or above name (but not at the apex, and not at name for
// DS, which the parent side answers), or a DNAME strictly above name (the
// apex included: a DNAME does not redirect its own owner).
func (z *Zone) interrupt(name string, qtype uint16) (owner string, dname bool) {
	if len(z.cuts) == 0 && len(z.dnames) == 0 {
		return "", false
	}
	for n := name; len(n) >= len(z.Origin) && n != ""; n = parent(n) {
		if len(n) > len(z.Origin) && z.cuts[n] && !(n == name && qtype == dns.TypeDS) {
			owner, dname = n, false
		}
		if n != name && z.dnames[n] {
			owner, dname = n, true
		}
	}
	return owner, dname
}

// inAnswer reports whether a CNAME in ans is owned by name: chasing it again
// would loop.
func inAnswer(ans []dns.RR, name string) bool {
	for _, rr := range ans {
		if rr.Header().Rrtype == dns.TypeCNAME && strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

func (n *node) anyType(dy *Dynamic) uint16 {
	if dy != nil {
		if dy.A.records {
			return dns.TypeA
		}
		if dy.AAAA.records {
			return dns.TypeAAAA
		}
	}
	for _, t := range anyOrder {
		if len(n.get(t)) > 0 {
			return t
		}
	}
	var lowest uint16
	for t := range n.types() {
		if lowest == 0 || t < lowest {
			lowest = t
		}
	}
	return lowest
}

// negSOAOf is the SOA of a negative answer at a node whose built answer
// is dy: a health-aware name's own, with its short TTL, else nil (the
// zone's).
func negSOAOf(dy *Dynamic) *dns.SOA {
	if dy != nil {
		return dy.in.negSOA
	}
	return nil
}

func (z *Zone) nodata(m *dns.Msg, soa *dns.SOA) {
	if soa == nil {
		soa = z.negSOA
	}
	m.Ns = append(m.Ns, soa)
}

func (z *Zone) referral(m *dns.Msg, cut string) {
	var buf node
	ns := z.lookup(cut, &buf).get(dns.TypeNS)
	m.Ns = append(m.Ns, ns...)
	z.glue(m, ns)
}

// glue adds the in-zone addresses of the given NS records.
func (z *Zone) glue(m *dns.Msg, ns []dns.RR) {
	for _, rr := range ns {
		host := strings.ToLower(rr.(*dns.NS).Ns)
		var buf node
		nd := z.lookup(host, &buf)
		if nd == nil {
			continue
		}
		m.Extra = append(m.Extra, nd.get(dns.TypeA)...)
		m.Extra = append(m.Extra, nd.get(dns.TypeAAAA)...)
	}
}

// additional adds the addresses this zone holds for the hosts that rrs
// (MX, SRV or NS records) name, as far as they fit in size (RFC 1035 3.3.9,
// RFC 2782; NSD does the same): they save the resolver a query but the
// answer is complete without them. Every host's IPv4 addresses come before
// any IPv6 one, as in NSD, so that more hosts get one when space is short.
// A health-aware host gets its current answer, a host under a wildcard the
// wildcard's. Hosts below a delegation are left out: not our data.
func (z *Zone) additional(s *Snapshot, m *dns.Msg, rrs []dns.RR, size int, c policy.Client) {
	first := len(m.Extra)
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		for i, rr := range rrs {
			host := strings.ToLower(hostOf(rr))
			if !InZone(z.Origin, host) || seenHost(rrs[:i], host) {
				continue
			}
			if owner, _ := z.interrupt(host, t); owner != "" {
				continue
			}
			var buf node
			nd := z.lookup(host, &buf)
			if nd == nil && !z.ents[host] {
				nd, _ = z.wildcard(host)
			}
			switch {
			case nd == nil:
			case s.dynOf(nd) != nil && t == dns.TypeA:
				m.Extra, _ = s.dynOf(nd).A.pick(m.Extra, c)
			case s.dynOf(nd) != nil:
				m.Extra, _ = s.dynOf(nd).AAAA.pick(m.Extra, c)
			default:
				m.Extra = append(m.Extra, nd.get(t)...)
			}
		}
	}
	if size <= 0 || len(m.Extra) == first {
		return
	}
	// Len counts as the reply will be packed if it is near the limit:
	// compressed.
	compress := m.Compress
	m.Compress = true
	for len(m.Extra) > first && m.Len() > size {
		m.Extra = m.Extra[:len(m.Extra)-1]
	}
	m.Compress = compress
}

// hostOf is the host an MX, SRV or NS record names.
func hostOf(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.MX:
		return rr.Mx
	case *dns.SRV:
		return rr.Target
	case *dns.NS:
		return rr.Ns
	}
	return ""
}

// seenHost reports whether one of rrs already named host.
func seenHost(rrs []dns.RR, host string) bool {
	for _, rr := range rrs {
		if strings.EqualFold(hostOf(rr), host) {
			return true
		}
	}
	return false
}

// wildcard synthesises a node from the closest encloser's wildcard (RFC
// 4592), or returns nil. ent is true when that wildcard exists only as an
// empty non-terminal (it has names below it but no data of its own).
func (z *Zone) wildcard(name string) (nd *node, ent bool) {
	if !z.wildcards {
		return nil, false
	}
	for p := parent(name); p != "" && InZone(z.Origin, p); p = parent(p) {
		if z.names.Get(p) == nil && !z.ents[p] && p != z.Origin && !z.has(p) {
			continue
		}
		var buf node
		wn := "*." + p
		w := z.names.Get(wn)
		if w == nil {
			w = z.lookupSingle(wn, &buf)
		}
		if w == nil {
			return nil, z.ents[wn]
		}
		syn := &node{rrs: make(map[uint16][]dns.RR, max(len(w.rrs), 1)), di: w.di, wild: w.di != 0}
		for t, rrs := range w.types() {
			for _, rr := range rrs {
				c := dns.Copy(rr)
				c.Header().Name = name
				syn.rrs[t] = append(syn.rrs[t], c)
			}
		}
		return syn, false
	}
	return nil, false
}
