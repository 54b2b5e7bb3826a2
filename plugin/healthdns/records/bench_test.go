package records

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkStoreApply measures an acknowledged change: validate, append to
// the log, fsync, swap the Set in. The Set holds n records; each change
// updates one of them, as an ExternalDNS sync does.
func BenchmarkStoreApply(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Logf: b.Logf})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var c Changes
			for i := range n {
				c.Create = append(c.Create, Endpoint{DNSName: fmt.Sprintf("app%d.gslb.example.com", i), RecordType: TypeA,
					Targets: []string{"192.0.2.1", "192.0.2.2"}, Labels: map[string]string{"owner": "eu", "resource": "service/default/app"}})
			}
			if _, err := s.Apply("eu", c); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e := Endpoint{DNSName: fmt.Sprintf("app%d.gslb.example.com", i%n), RecordType: TypeA, Targets: []string{fmt.Sprintf("192.0.2.%d", i%250+1)}}
				t0 := time.Now()
				if _, err := s.Apply("eu", Changes{UpdateOld: []Endpoint{e}, UpdateNew: []Endpoint{e}}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// BenchmarkMergeRun measures a replica storing a run of 500 one-record
// changes to a 20,000-record owner in one Merge, as a server's applier
// does when a writer's burst arrives; per change.
func BenchmarkMergeRun(b *testing.B) {
	rec := registryTXT
	w := withRecords(b, "cluster1", 20000, func(i int) Endpoint { return rec(i, 0) })
	base := w.State().Set("cluster1")
	const run = 500
	var cs []Change
	for i := range run {
		ch, err := w.Apply("cluster1", Changes{UpdateNew: []Endpoint{rec((i*7919)%20000, 1)}})
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, ch)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r := Memory(Options{})
		if _, err := r.Install(base); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if applied, _, err := r.Merge(cs...); err != nil || len(applied) != run {
			b.Fatal(len(applied), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*run), "ns/change")
}
