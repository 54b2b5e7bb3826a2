package snapshot_test

import (
	"maps"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/healthdns/healthdns/plugin/healthdns/snapshot"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/miekg/dns"
)

// Owners of one type kept apart (zone.Data.Single, as records' TXT and
// CNAME names are) answer as if they were in Names: their type, NODATA
// for another, ANY, a CNAME chased, a wildcard; and a change of one
// patched in (Rezone) answers its new records, a removed one NXDOMAIN.
func TestSingleTypeOwners(t *testing.T) {
	d := loadZone(t, exampleOrg, "example.org.")
	d.Single = zone.NewNameMap[[]dns.RR]()
	for owner, rrs := range map[string][]dns.RR{
		"a-app.example.org.":   {test.TXT(`a-app.example.org. 30 IN TXT "owner=east"`), test.TXT(`a-app.example.org. 30 IN TXT "owner=west"`)},
		"alias.example.org.":   {test.CNAME("alias.example.org. 30 IN CNAME v4.example.org.")},
		"*.txt.example.org.":   {test.TXT(`*.txt.example.org. 30 IN TXT "w"`)},
		"a.deep.example.org.":  {test.TXT(`a.deep.example.org. 30 IN TXT "d"`)},
		"gone.example.org.":    {test.TXT(`gone.example.org. 30 IN TXT "g"`)},
		"changed.example.org.": {test.TXT(`changed.example.org. 30 IN TXT "v=1"`)},
	} {
		d.Single.Set(owner, rrs)
	}
	s := snapshot.Build(nil, []*zone.Data{d}, defaultNames())
	cases := []test.Case{
		{Qname: "a-app.example.org.", Qtype: dns.TypeTXT, Authoritative: true,
			Answer: []dns.RR{test.TXT(`a-app.example.org. 30 IN TXT "owner=east"`), test.TXT(`a-app.example.org. 30 IN TXT "owner=west"`)}},
		{Qname: "a-app.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
		{Qname: "a-app.example.org.", Qtype: dns.TypeANY, Authoritative: true,
			Answer: []dns.RR{test.TXT(`a-app.example.org. 30 IN TXT "owner=east"`), test.TXT(`a-app.example.org. 30 IN TXT "owner=west"`)}},
		{Qname: "alias.example.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.CNAME("alias.example.org. 30 IN CNAME v4.example.org."), test.A("v4.example.org. 30 IN A 192.0.2.20")}},
		{Qname: "x.txt.example.org.", Qtype: dns.TypeTXT, Authoritative: true,
			Answer: []dns.RR{test.TXT(`x.txt.example.org. 30 IN TXT "w"`)}},
		// Its parent exists as an empty non-terminal: NODATA, not NXDOMAIN.
		{Qname: "deep.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
	}
	for _, tc := range cases {
		m, _ := ask(s, tc.Qname, tc.Qtype)
		check(t, m, tc)
	}

	nd := *d
	nd.Gen, nd.From = zone.NextGen(), d.Gen
	nd.Single = d.Single.Clone()
	nd.Single.Set("changed.example.org.", []dns.RR{test.TXT(`changed.example.org. 30 IN TXT "v=2"`)})
	nd.Single.Set("new.example.org.", []dns.RR{test.TXT(`new.example.org. 30 IN TXT "n"`)})
	nd.Changed = []string{"changed.example.org.", "new.example.org."}
	s2, ok := snapshot.Rezone(s, []*zone.Data{&nd})
	if !ok {
		t.Fatal("Rezone could not patch a changed and a new owner of one type")
	}
	for _, tc := range append(cases,
		test.Case{Qname: "changed.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Answer: []dns.RR{test.TXT(`changed.example.org. 30 IN TXT "v=2"`)}},
		test.Case{Qname: "new.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Answer: []dns.RR{test.TXT(`new.example.org. 30 IN TXT "n"`)}},
	) {
		m, _ := ask(s2, tc.Qname, tc.Qtype)
		check(t, m, tc)
	}
	if m, _ := ask(s, "changed.example.org.", dns.TypeTXT); len(m.Answer) != 1 || m.Answer[0].(*dns.TXT).Txt[0] != "v=1" {
		t.Errorf("the published snapshot changed with the patch: %v", m.Answer)
	}

	gone := nd
	gone.Gen, gone.From = zone.NextGen(), nd.Gen
	gone.Single = nd.Single.Clone()
	gone.Single.Delete("gone.example.org.")
	gone.Changed = []string{"gone.example.org."}
	if _, ok := snapshot.Rezone(s2, []*zone.Data{&gone}); ok {
		t.Fatal("Rezone patched a removed owner; it must leave that to Build")
	}
	s3 := snapshot.Build(s2, []*zone.Data{&gone}, defaultNames())
	check(t, msgOf(ask(s3, "gone.example.org.", dns.TypeTXT)), test.Case{Qname: "gone.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa(negTTL)}})
}

func msgOf(m *dns.Msg, _ snapshot.Outcome) *dns.Msg { return m }

// An owner of one type beside a health-aware name answers both, before
// and after a patch; an owner that moves from Names to Single answers
// its new records, and a new owner's new parent is an empty non-terminal.
func TestSingleTypeOwnersPatched(t *testing.T) {
	d := loadZone(t, exampleOrg, "example.org.")
	d.Names = maps.Clone(d.Names)
	d.Names["moved.example.org."] = map[uint16][]dns.RR{dns.TypeTXT: {test.TXT(`moved.example.org. 30 IN TXT "names"`)}}
	d.Single = zone.NewNameMap[[]dns.RR]()
	d.Single.Set("v4.example.org.", []dns.RR{test.TXT(`v4.example.org. 30 IN TXT "v=1"`)})
	s := snapshot.Build(nil, []*zone.Data{d}, defaultNames())
	a := test.Case{Qname: "v4.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{test.A("v4.example.org. 30 IN A 192.0.2.20")}}
	for _, tc := range []test.Case{a,
		{Qname: "v4.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Answer: []dns.RR{test.TXT(`v4.example.org. 30 IN TXT "v=1"`)}},
		{Qname: "moved.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Answer: []dns.RR{test.TXT(`moved.example.org. 30 IN TXT "names"`)}},
		{Qname: "fresh.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa(negTTL)}},
	} {
		m, _ := ask(s, tc.Qname, tc.Qtype)
		check(t, m, tc)
	}

	nd := *d
	nd.Gen, nd.From = zone.NextGen(), d.Gen
	nd.Names = maps.Clone(d.Names)
	delete(nd.Names, "moved.example.org.")
	nd.Single = d.Single.Clone()
	nd.Single.Set("v4.example.org.", []dns.RR{test.TXT(`v4.example.org. 30 IN TXT "v=2"`)})
	nd.Single.Set("moved.example.org.", []dns.RR{test.TXT(`moved.example.org. 30 IN TXT "single"`)})
	nd.Single.Set("x.fresh.example.org.", []dns.RR{test.TXT(`x.fresh.example.org. 30 IN TXT "x"`)})
	nd.Changed = []string{"moved.example.org.", "v4.example.org.", "x.fresh.example.org."}
	s2, ok := snapshot.Rezone(s, []*zone.Data{&nd})
	if !ok {
		t.Fatal("Rezone could not patch owners of one type")
	}
	for _, tc := range []test.Case{a,
		{Qname: "v4.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Answer: []dns.RR{test.TXT(`v4.example.org. 30 IN TXT "v=2"`)}},
		{Qname: "moved.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Answer: []dns.RR{test.TXT(`moved.example.org. 30 IN TXT "single"`)}},
		{Qname: "x.fresh.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Answer: []dns.RR{test.TXT(`x.fresh.example.org. 30 IN TXT "x"`)}},
		{Qname: "fresh.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Ns: []dns.RR{soa(negTTL)}},
	} {
		m, _ := ask(s2, tc.Qname, tc.Qtype)
		check(t, m, tc)
	}
}
