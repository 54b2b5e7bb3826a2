package snapshot

import (
	"strings"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"

	"github.com/miekg/dns"
)

// maxChain bounds CNAME chasing inside our own zones.
const maxChain = 8

// anyOrder is the type order an ANY query picks its one RRset from (RFC
// 8482 lets an authoritative server answer a subset).
var anyOrder = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeSOA, dns.TypeNS, dns.TypeMX, dns.TypeTXT}

// Answer fills m, a reply already made with SetReply, for qname (lower
// case) and qtype. It sets Rcode, Authoritative and the sections, and
// returns the outcome and, for a health-aware answer, the policy, for
// metrics.
func (s *Snapshot) Answer(m *dns.Msg, qname string, qtype uint16) (Outcome, policy.Kind) {
	z := s.zoneOf(qname)
	if z == nil {
		m.Rcode = dns.RcodeRefused
		return Refused, 0
	}
	m.Authoritative = true
	out := Static
	name := qname
	for chain := 0; ; chain++ {
		if cut := z.cutAbove(name); cut != "" && !(cut == name && qtype == dns.TypeDS) {
			if chain == 0 {
				// A referral is not authoritative data (RFC 1034 4.3.2).
				m.Authoritative = false
			}
			z.referral(m, cut)
			return out, 0
		}
		nd := z.names[name]
		if nd == nil && z.ents[name] {
			z.nodata(m, nil)
			return out, 0
		}
		if nd == nil {
			nd = z.wildcard(name)
		}
		if nd == nil {
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, z.negSOA)
			return out, 0
		}
		if cn := nd.rrs[dns.TypeCNAME]; len(cn) > 0 && qtype != dns.TypeCNAME && qtype != dns.TypeANY {
			m.Answer = append(m.Answer, cn...)
			target := strings.ToLower(cn[0].(*dns.CNAME).Target)
			if chain >= maxChain || !InZone(z.Origin, target) || inAnswer(m.Answer, target) {
				return out, 0 // out of zone, or a loop: the resolver takes it from here
			}
			name = target
			continue
		}
		t := qtype
		if t == dns.TypeANY {
			t = nd.anyType()
			if t == 0 {
				z.nodata(m, nil)
				return out, 0
			}
		}
		if dy := nd.dyn; dy != nil && (t == dns.TypeA || t == dns.TypeAAAA) {
			set := &dy.A
			if t == dns.TypeAAAA {
				set = &dy.AAAA
			}
			if len(set.RRs) == 0 {
				if set.Outcome == Empty {
					z.nodata(m, dy.negSOA)
					return set.Outcome, dy.Policy
				}
				z.nodata(m, nil)
				return out, 0
			}
			if m.Answer == nil {
				m.Answer = make([]dns.RR, 0, set.size())
			}
			start := len(m.Answer)
			m.Answer = set.pick(m.Answer)
			if nd.wild {
				// The built answer is the wildcard's: copy it under the
				// name asked (RFC 4592 4.3).
				for i := start; i < len(m.Answer); i++ {
					c := dns.Copy(m.Answer[i])
					c.Header().Name = name
					m.Answer[i] = c
				}
			}
			return set.Outcome, dy.Policy
		}
		rrs := nd.rrs[t]
		if len(rrs) == 0 {
			z.nodata(m, nil)
			return out, 0
		}
		m.Answer = append(m.Answer, rrs...)
		if t == dns.TypeNS && name == z.Origin {
			z.glue(m, rrs)
		}
		return out, 0
	}
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

func (n *node) anyType() uint16 {
	if n.dyn != nil {
		if len(n.dyn.A.RRs) > 0 {
			return dns.TypeA
		}
		if len(n.dyn.AAAA.RRs) > 0 {
			return dns.TypeAAAA
		}
	}
	for _, t := range anyOrder {
		if len(n.rrs[t]) > 0 {
			return t
		}
	}
	var lowest uint16
	for t := range n.rrs {
		if lowest == 0 || t < lowest {
			lowest = t
		}
	}
	return lowest
}

func (z *Zone) nodata(m *dns.Msg, soa *dns.SOA) {
	if soa == nil {
		soa = z.negSOA
	}
	m.Ns = append(m.Ns, soa)
}

// cutAbove returns the delegation point at or above name, nearest the
// apex, or "".
func (z *Zone) cutAbove(name string) string {
	if len(z.cuts) == 0 {
		return ""
	}
	cut := ""
	for n := name; len(n) > len(z.Origin); n = parent(n) {
		if z.cuts[n] {
			cut = n
		}
	}
	return cut
}

func (z *Zone) referral(m *dns.Msg, cut string) {
	ns := z.names[cut].rrs[dns.TypeNS]
	m.Ns = append(m.Ns, ns...)
	z.glue(m, ns)
}

// glue adds the in-zone addresses of the given NS records.
func (z *Zone) glue(m *dns.Msg, ns []dns.RR) {
	for _, rr := range ns {
		host := strings.ToLower(rr.(*dns.NS).Ns)
		nd := z.names[host]
		if nd == nil {
			continue
		}
		m.Extra = append(m.Extra, nd.rrs[dns.TypeA]...)
		m.Extra = append(m.Extra, nd.rrs[dns.TypeAAAA]...)
	}
}

// wildcard synthesises a node from the closest encloser's wildcard (RFC
// 4592), or returns nil.
func (z *Zone) wildcard(name string) *node {
	if !z.wildcards {
		return nil
	}
	for p := parent(name); p != "" && InZone(z.Origin, p); p = parent(p) {
		if z.names[p] == nil && !z.ents[p] && p != z.Origin {
			continue
		}
		w := z.names["*."+p]
		if w == nil {
			return nil
		}
		syn := &node{rrs: make(map[uint16][]dns.RR, len(w.rrs)), dyn: w.dyn, wild: w.dyn != nil}
		for t, rrs := range w.rrs {
			for _, rr := range rrs {
				c := dns.Copy(rr)
				c.Header().Name = name
				syn.rrs[t] = append(syn.rrs[t], c)
			}
		}
		return syn
	}
	return nil
}
