package snapshot

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/zone"
)

// An Update that needs a negative SOA its zone has none of yet (a name
// given a TTL no other name has) makes it in a copy of the zone: the
// published snapshot's zones are as they were.
func TestUpdateCopiesZoneOnWrite(t *testing.T) {
	d, err := zone.Parse(strings.NewReader("$ORIGIN example.org.\n@ 3600 IN SOA ns1 h 1 7200 900 1209600 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.53\n"), "test.zone", "example.org.")
	if err != nil {
		t.Fatal(err)
	}
	n := Name{FQDN: "app.example.org.", TTL: 30, Targets: []Target{{Addr: netip.MustParseAddr("192.0.2.1"), Healthy: true}}}
	s0 := Build(nil, []*zone.Data{d}, []Name{n})
	z0 := s0.zones[0]
	before := len(z0.negByTTL)
	n.TTL = 20
	s1, ok := Update(s0, []Name{n})
	if !ok || s1 == s0 {
		t.Fatalf("Update = %p, %v; want a new snapshot", s1, ok)
	}
	if s0.zones[0] != z0 || len(z0.negByTTL) != before {
		t.Errorf("the published snapshot's zone was written: %d negative SOAs, had %d", len(z0.negByTTL), before)
	}
	if s1.zones[0].negByTTL[20] == nil {
		t.Error("the updated snapshot's zone has no negative SOA at TTL 20")
	}
	// Another Update at the same TTL shares the updated zone's SOA.
	n.Targets[0].Healthy = false
	s2, _ := Update(s1, []Name{n})
	if s2.zones[0] != s1.zones[0] {
		t.Error("an Update needing no new negative SOA copied the zone")
	}
}
