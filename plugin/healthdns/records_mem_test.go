package healthdns

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// benchStore is the records bench's (test/bench/records) records:
// owners of perOwner endpoints each, half A records of names of their
// own on one of 4 addresses, half their TXT registry records, every A
// record with the owner's default check.
func benchStore(tb testing.TB, owners, perOwner int) *records.Store {
	tb.Helper()
	st := records.Memory(records.Options{})
	for o := range owners {
		owner := fmt.Sprintf("cluster%d", o)
		var c records.Changes
		for i := range perOwner / 2 {
			name := fmt.Sprintf("app%d.c%d.gslb.example.org", i, o)
			labels := map[string]string{"owner": owner, "resource": fmt.Sprintf("ingress/default/app%d", i)}
			c.Create = append(c.Create,
				records.Endpoint{DNSName: name, RecordType: "A", RecordTTL: 30, Targets: []string{fmt.Sprintf("192.0.2.%d", o*4+i%4+1)},
					Labels: labels, ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: "tcp 127.0.0.197:4000"}}},
				records.Endpoint{DNSName: "a-" + name, RecordType: "TXT", Labels: labels,
					Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=%s,external-dns/resource=ingress/default/app%d,v=0"`, owner, i)}})
		}
		if _, err := st.Apply(owner, c); err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkRecordsLiveHeap: the live heap of a server's records and
// answers with the records bench's 200,000 records (100,000 health-aware
// names and 100,000 TXT names), per name: the store alone, and the
// handler's merged names, verdict index and snapshot on top of it.
// HEALTHDNS_HEAPPROFILE=file writes the heap profile with all of it live.
func BenchmarkRecordsLiveHeap(b *testing.B) {
	const owners, perOwner = 10, 20000
	names := float64(owners * perOwner)
	var store, answers float64
	for b.Loop() {
		base := liveHeap()
		st := benchStore(b, owners, perOwner)
		withStore := liveHeap()
		h := scaleHandler(b, st)
		h.rebuild()
		all := liveHeap()
		if p := os.Getenv("HEALTHDNS_HEAPPROFILE"); p != "" {
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
		store += float64(withStore - base)
		answers += float64(all - withStore)
		runtime.KeepAlive(h)
		runtime.KeepAlive(st)
	}
	b.ReportMetric(store/float64(b.N)/names, "store-B/name")
	b.ReportMetric(answers/float64(b.N)/names, "answers-B/name")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRebuildAfterTXTChangeManyNames: a rebuild after a one-record
// TXT change among the records bench's 100,000 TXT names (what each of
// the bench's 100,000 changes costs a server): its garbage is what a
// storm of changes makes the collector work for.
func BenchmarkRebuildAfterTXTChangeManyNames(b *testing.B) {
	st := benchStore(b, 10, 20000)
	h := scaleHandler(b, st)
	h.rebuild()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := records.Endpoint{DNSName: "a-app7.c3.gslb.example.org", RecordType: "TXT", Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=cluster3,v=%d"`, i)}}
		if _, err := st.Apply("cluster3", records.Changes{UpdateNew: []records.Endpoint{e}}); err != nil {
			b.Fatal(err)
		}
		h.rebuild()
	}
}
