package healthdns

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"
)

// scaleStore is 10 owners of 20,000 endpoints each, as ExternalDNS writes
// them: 10,000 A records (on a few load-balancer addresses) and their
// 10,000 TXT registry records.
func scaleStore(tb testing.TB, owners, perOwner int) *records.Store {
	tb.Helper()
	st := records.Memory(records.Options{})
	for o := range owners {
		owner := fmt.Sprintf("cluster%d", o)
		var c records.Changes
		for i := range perOwner / 2 {
			name := fmt.Sprintf("app%d.gslb.example.org", i)
			c.Create = append(c.Create,
				records.Endpoint{DNSName: name, RecordType: "A", Targets: []string{fmt.Sprintf("192.0.2.%d", o*4+i%4+1)},
					Labels:           map[string]string{"owner": owner, "resource": "ingress/default/app" + fmt.Sprint(i)},
					ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: "tcp {addr}:443"}}},
				records.Endpoint{DNSName: "a-" + name, RecordType: "TXT", Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=%s,external-dns/resource=ingress/default/app%d"`, owner, i)}})
		}
		if _, err := st.Apply(owner, c); err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

func scaleHandler(tb testing.TB, st *records.Store) *HealthDNS {
	d, err := zone.Parse(strings.NewReader(strings.ReplaceAll(serveZone, "example.org.", "gslb.example.org.")), "test.zone", "gslb.example.org.")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := &config{zones: []*zone.Data{d}, ttl: 30}
	cfg.timing.interval, cfg.timing.timeout, cfg.timing.rise, cfg.timing.fall = time.Second, time.Second, 2, 2
	h := newHandler(cfg, probe.NewPool())
	h.storeRef = &storeRef{store: st}
	return h
}

// BenchmarkRebuildRecords: a rebuild of the answers for health (a verdict
// changed) with 200,000 owners'
// records, which a one-record change triggers on every server.
func BenchmarkRebuildRecords(b *testing.B) {
	st := scaleStore(b, 10, 20000)
	h := scaleHandler(b, st)
	h.rebuild()
	b.ReportAllocs()
	for b.Loop() {
		h.rebuild()
	}
}

// BenchmarkRebuildAfterChange: a rebuild after a one-record change.
func BenchmarkRebuildAfterChange(b *testing.B) {
	st := scaleStore(b, 10, 20000)
	h := scaleHandler(b, st)
	h.rebuild()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := records.Endpoint{DNSName: "app7.gslb.example.org", RecordType: "A", Targets: []string{fmt.Sprintf("192.0.2.%d", i%4+1)},
			ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: "tcp {addr}:443"}}}
		if _, err := st.Apply("cluster3", records.Changes{UpdateNew: []records.Endpoint{e}}); err != nil {
			b.Fatal(err)
		}
		h.rebuild()
	}
}

// BenchmarkRebuildAfterTXTChange: a rebuild after a one-record change of
// a TXT record (static data: the zones change, no target does).
func BenchmarkRebuildAfterTXTChange(b *testing.B) {
	st := scaleStore(b, 10, 20000)
	h := scaleHandler(b, st)
	h.rebuild()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := records.Endpoint{DNSName: "a-app7.gslb.example.org", RecordType: "TXT", Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=cluster3,v=%d"`, i)}}
		if _, err := st.Apply("cluster3", records.Changes{UpdateNew: []records.Endpoint{e}}); err != nil {
			b.Fatal(err)
		}
		h.rebuild()
	}
}
