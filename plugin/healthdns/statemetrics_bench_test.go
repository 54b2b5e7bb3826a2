package healthdns

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// BenchmarkScrapeRecords: a scrape of the state collector (gathered and
// encoded as /metrics does) with the records bench's 200,000 records
// (100,000 health-aware names), the series it sends, and the longest a
// rebuild would have waited for h.mu meanwhile: with the default
// record-series limit (the records' names have no per-name series), with
// a limit above them (every name has), and at the default limit (10,000
// names, every one has).
func BenchmarkScrapeRecords(b *testing.B) {
	st, atLimit := benchStore(b, 10, 20000), benchStore(b, 10, 2*defaultRecordSeries/10)
	for _, c := range []struct {
		name  string
		limit int
	}{{"default", defaultRecordSeries}, {"all", 1 << 20}, {"at-limit", defaultRecordSeries}} {
		b.Run(c.name, func(b *testing.B) {
			st := st
			if c.name == "at-limit" {
				st = atLimit
			}
			h := scaleHandler(b, st)
			h.cfg.recordSeries = c.limit
			h.rebuild()
			benchScrape(b, h)
		})
	}
}

func benchScrape(b *testing.B, h *HealthDNS) {
	collected(b, h)
	reg := prometheus.NewRegistry()
	reg.MustRegister(stateCollector{})
	var maxWait atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			t := time.Now()
			h.mu.Lock()
			h.mu.Unlock()
			if d := int64(time.Since(t)); d > maxWait.Load() {
				maxWait.Store(d)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}()
	series := 0
	b.ReportAllocs()
	for b.Loop() {
		fams, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
		series = 0
		for _, f := range fams {
			series += len(f.GetMetric())
			if err := enc.Encode(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	close(stop)
	<-done
	b.ReportMetric(float64(series), "series")
	b.ReportMetric(float64(maxWait.Load())/1e6, "max-mu-wait-ms")
}
