package healthdns

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/coredns/coredns/request"

	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/status"

	"github.com/miekg/dns"
)

// matrixAllowed says whether a client may ask the CH TXT health matrix.
func (h *HealthDNS) matrixAllowed(state request.Request) bool {
	if h.cfg.matrixOff {
		return false
	}
	ip, err := netip.ParseAddr(state.IP())
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range h.cfg.matrixNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// serveMatrix answers "dig CH TXT NAME": the health matrix of a
// health-aware name, one TXT string per target and per observer view. It
// is a debugging path: it allocates freely and takes the rebuild lock.
func (h *HealthDNS) serveMatrix(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, state request.Request) (int, error) {
	if state.QType() != dns.TypeTXT || !h.matrixAllowed(state) {
		return reply(w, r, dns.RcodeRefused)
	}
	c, ecs, ok := h.client(ctx, w, r, true)
	if !ok {
		return reply(w, r, dns.RcodeFormatError)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	doc := h.document(state.Name())
	if len(doc.Names) == 0 {
		m.Rcode = dns.RcodeNameError
	} else {
		lines := status.MatrixTXT(doc.Names[0], doc.Partition, doc.Time)
		if ecs != nil {
			lines = append(lines, h.clientLine(state.Name(), c))
		}
		for _, s := range lines {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS, Ttl: 0},
				Txt: []string{s},
			})
		}
	}
	state.SizeAndDo(m)
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// clientLine says, for a matrix query that carries ECS, which region that
// client maps to and what an A and an AAAA query from it would get now:
//
//	client 10.1.2.0/24 region=eu answer=192.0.2.10 scope=8
func (h *HealthDNS) clientLine(qname string, c policy.Client) string {
	sub := "-"
	if c.Addr.IsValid() {
		sub = netip.PrefixFrom(c.Addr, c.Bits).String()
	}
	region := "-"
	if r, _ := c.Region(); r >= 0 && r < len(h.cfg.regions) {
		region = h.cfg.regions[r]
	}
	var answer []string
	scope := 0
	snap := h.snap.Load()
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(qname, t)
		res := snap.Answer(m, qname, t, 0, c)
		if res.Tailored {
			scope = max(scope, res.Scope)
		}
		for _, rr := range m.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				answer = append(answer, rr.A.String())
			case *dns.AAAA:
				answer = append(answer, rr.AAAA.String())
			}
		}
	}
	if len(answer) == 0 {
		answer = []string{"-"}
	}
	line := fmt.Sprintf("client %s region=%s answer=%s scope=%d", sub, region, strings.Join(answer, ","), scope)
	if len(line) > status.MaxTXT {
		line = line[:status.MaxTXT]
	}
	return line
}
