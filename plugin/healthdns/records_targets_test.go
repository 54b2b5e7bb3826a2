package healthdns

import (
	"maps"
	"slices"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// The targets that records add are taken up when they come and let go
// when they go, and a change that adds or removes none costs nothing.
func TestRecordTargetsFollowRecords(t *testing.T) {
	st := records.Memory(records.Options{})
	h := scaleHandler(t, st)
	h.cfg.cluster = &clusterConfig{probe: false} // hold the targets, probe nothing
	h.started = true
	a := func(name, addr string) records.Endpoint {
		return records.Endpoint{DNSName: name, RecordType: "A", Targets: []string{addr},
			ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: "tcp {addr}:443"}}}
	}
	held := func() []string { return slices.Sorted(maps.Keys(h.dynamic)) }
	steps := []struct {
		what string
		c    records.Changes
		want []string
	}{
		{"two names on one address", records.Changes{Create: []records.Endpoint{a("x.gslb.example.org", "192.0.2.1"), a("y.gslb.example.org", "192.0.2.1")}},
			[]string{"192.0.2.1|tcp 192.0.2.1:443|1s/1s/2/2"}},
		{"one moves to another address", records.Changes{UpdateNew: []records.Endpoint{a("y.gslb.example.org", "192.0.2.2")}},
			[]string{"192.0.2.1|tcp 192.0.2.1:443|1s/1s/2/2", "192.0.2.2|tcp 192.0.2.2:443|1s/1s/2/2"}},
		{"the first goes", records.Changes{Delete: []records.Endpoint{a("x.gslb.example.org", "192.0.2.1")}},
			[]string{"192.0.2.2|tcp 192.0.2.2:443|1s/1s/2/2"}},
	}
	for _, s := range steps {
		if _, err := st.Apply("eu", s.c); err != nil {
			t.Fatal(err)
		}
		h.rebuild()
		if got := held(); !slices.Equal(got, s.want) {
			t.Errorf("%s: held %q, want %q", s.what, got, s.want)
		}
		if _, changed := h.merger.Probes(); changed {
			t.Errorf("%s: the rebuild left the targets' change untaken", s.what)
		}
	}
}
