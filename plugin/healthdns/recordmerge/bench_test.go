package recordmerge

import (
	"fmt"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// benchStore is test/bench/records' records: owners of perOwner endpoints
// each, half A records (on 4 load balancers' addresses an owner) and half
// their TXT registry records, every name an owner's own.
func benchStore(tb testing.TB, owners, perOwner int) *records.Store {
	tb.Helper()
	st := records.Memory(records.Options{})
	for o := range owners {
		owner := fmt.Sprintf("cluster%d", o)
		var c records.Changes
		for i := range perOwner / 2 {
			c.Create = append(c.Create, benchA(o, i, 0), benchTXT(o, i, 0))
		}
		if _, err := st.Apply(owner, c); err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

func benchA(o, i, v int) records.Endpoint {
	return records.Endpoint{DNSName: fmt.Sprintf("app%d.c%d.example.org", i, o), RecordType: "A", RecordTTL: 30,
		Targets:          []string{fmt.Sprintf("192.0.2.%d", o*4+(i+v)%4+1)},
		Labels:           map[string]string{"owner": fmt.Sprintf("cluster%d", o), "resource": fmt.Sprintf("ingress/default/app%d", i)},
		ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: "tcp {addr}:443"}}}
}

func benchTXT(o, i, v int) records.Endpoint {
	return records.Endpoint{DNSName: fmt.Sprintf("a-app%d.c%d.example.org", i, o), RecordType: "TXT",
		Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=cluster%d,external-dns/resource=ingress/default/app%d,v=%d"`, o, i, v)}}
}

// BenchmarkMergeAfterChange: a Merge after one record of 200,000 changed,
// a TXT record and an A record by turns (test/bench/records' changes).
func BenchmarkMergeAfterChange(b *testing.B) {
	st := benchStore(b, 10, 20000)
	m := New(mergeConfig(b))
	m.Merge(st.State())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o := i % 10
		e := benchTXT(o, i%10000, i+1)
		if i%2 == 1 {
			e = benchA(o, i%10000, i+1)
		}
		if _, err := st.Apply(fmt.Sprintf("cluster%d", o), records.Changes{UpdateNew: []records.Endpoint{e}}); err != nil {
			b.Fatal(err)
		}
		m.Merge(st.State())
	}
}

// BenchmarkMergeAll: the first Merge of 200,000 records.
func BenchmarkMergeAll(b *testing.B) {
	st := benchStore(b, 10, 20000)
	cfg := mergeConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		New(cfg).Merge(st.State())
	}
}
