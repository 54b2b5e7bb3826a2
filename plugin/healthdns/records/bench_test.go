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
