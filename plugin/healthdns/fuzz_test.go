package healthdns

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds DNS messages from the network to ServeDNS. Whatever
// the message, ServeDNS must not panic, must write exactly one reply with
// the query's ID, and the reply must pack (so the server can send it).
func FuzzServeDNS(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	q := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return m
	}
	for _, name := range []string{"example.org.", "app.example.org.", "w.example.org.", "p.example.org.", "none.example.org.", "many.example.org.",
		"www.example.org.", "docs.example.org.", "ext.example.org.", "loop1.example.org.", "x.y.wild.example.org.", "z.alias.example.org.",
		"c.example.org.", "host.sub.example.org.", "nope.example.org.", "example.com.", "ApP.ExAmPlE.oRg."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeNS, dns.TypeSOA, dns.TypeTXT, dns.TypeCNAME, dns.TypeDS, dns.TypeAXFR} {
			seed(q(name, qt))
		}
	}
	m := q("app.example.org.", dns.TypeA)
	m.SetEdns0(4096, true)
	seed(m)
	m = q("many.example.org.", dns.TypeAAAA)
	m.SetEdns0(512, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"}, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	seed(m)
	m = q("web.example.org.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	seed(m)
	for _, name := range []string{"geo.example.org.", "sticky.example.org.", "rr.example.org."} {
		seed(ecsQuery(name, "10.1.2.0/24"))
		seed(ecsQuery(name, "192.168.0.0/16"))
		m = ecsQuery(name, "0.0.0.0/0")
		seed(m)
		m = q(name, dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: []byte{0, 1, 16, 0, 10, 1, 2}})
		seed(m)
	}
	m = ecsQuery("geo.example.org.", "10.1.2.0/24")
	m.Question[0].Qclass = dns.ClassCHAOS
	m.Question[0].Qtype = dns.TypeTXT
	seed(m)
	m = q("example.org.", dns.TypeSOA)
	m.Opcode = dns.OpcodeNotify
	seed(m)
	m = q("example.org.", dns.TypeSOA)
	m.Opcode = dns.OpcodeUpdate
	seed(m)
	m = q("web.example.org.", dns.TypeA)
	m.Question = append(m.Question, dns.Question{Name: "app.example.org.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	seed(m)
	seed(&dns.Msg{MsgHdr: dns.MsgHdr{Id: 1}})
	// Truncated packets and noise.
	b, _ := q("app.example.org.", dns.TypeA).Pack()
	for _, n := range []int{0, 1, 5, 12, 13, 20, len(b) - 1} {
		f.Add(b[:n])
	}
	f.Add([]byte("\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"))
	f.Add([]byte("\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))

	h := geoServeHandler(f)
	h.Next = test.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeRefused)
		w.WriteMsg(m)
		return dns.RcodeRefused, nil
	})

	f.Fuzz(func(t *testing.T, data []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil {
			t.Skip()
		}
		for _, tcp := range []bool{false, true} {
			req := r.Copy()
			rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp})
			// The server wraps every writer so; it packs, truncates and
			// adds the OPT, so it must cope with whatever ServeDNS wrote.
			w := request.NewScrubWriter(req, rec)
			if _, err := h.ServeDNS(context.Background(), w, req); err != nil {
				t.Fatalf("ServeDNS: %v", err)
			}
			if rec.Msg == nil {
				t.Fatalf("no reply to\n%s", req)
			}
			if rec.Msg.Id != req.Id {
				t.Fatalf("reply id %d, want %d", rec.Msg.Id, req.Id)
			}
			if _, err := rec.Msg.Pack(); err != nil {
				t.Fatalf("reply does not pack: %v\n%s", err, rec.Msg)
			}
		}
	})
}
