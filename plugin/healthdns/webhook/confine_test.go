package webhook

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

func withCheck(e records.Endpoint, check string) records.Endpoint {
	e.ProviderSpecific = []records.Property{{Name: records.PropCheck, Value: check}}
	return e
}

// A record's own check may connect to the record's own address and may
// be the owner's default; anything else is 422 with a JSON error and
// changes nothing, unless the owner allows the network (check-networks).
func TestRecordChecksConfined(t *testing.T) {
	const def = "http://10.9.9.9/health"
	for _, tc := range []struct {
		name    string
		nets    []string
		e       records.Endpoint
		allowed bool
		why     string
	}{
		{"template", nil, withCheck(ep("a."+zone, "A", "192.0.2.1"), "tcp {addr}:8080"), true, ""},
		{"template v6", nil, withCheck(ep("a."+zone, "AAAA", "2001:db8::1"), "https://{addr}/healthz host app.example.com"), true, ""},
		{"own literal", nil, withCheck(ep("a."+zone, "A", "192.0.2.1"), "http://192.0.2.1:8080/healthz"), true, ""},
		{"owner's default, written out", nil, withCheck(ep("a."+zone, "A", "192.0.2.1"), def), true, ""},
		{"no check: the default", nil, ep("a."+zone, "A", "192.0.2.1"), true, ""},
		{"metadata address", nil, withCheck(ep("a."+zone, "A", "192.0.2.1"), "http://169.254.169.254/latest/meta-data/"), false, "connects to 169.254.169.254: a record's own check may connect only to its own address"},
		{"internal service", nil, withCheck(ep("a."+zone, "A", "192.0.2.1"), "tcp 10.1.2.3:5432"), false, "connects to 10.1.2.3"},
		{"host name", []string{"0.0.0.0/0"}, withCheck(ep("a."+zone, "A", "192.0.2.1"), "http://internal.example.com/"), false, "connects to internal.example.com"},
		{"another target's address", nil, withCheck(ep("a."+zone, "A", "192.0.2.1", "192.0.2.2"), "tcp 192.0.2.1:80"), false, "of target 192.0.2.2 connects to 192.0.2.1"},
		{"allowed network", []string{"10.0.0.0/8"}, withCheck(ep("a."+zone, "A", "192.0.2.1"), "tcp 10.1.2.3:5432"), true, ""},
		{"allowed address", []string{"10.1.2.3"}, withCheck(ep("a."+zone, "A", "192.0.2.1"), "grpc 10.1.2.3:50051"), true, ""},
		{"outside the allowed network", []string{"10.0.0.0/8"}, withCheck(ep("a."+zone, "A", "192.0.2.1"), "http://169.254.169.254/"), false, "not inside the owner's check networks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nets, err := ParseCheckNetworks(tc.nets)
			if err != nil {
				t.Fatal(err)
			}
			srv := newWebhook(t, newStore(t), "eu", func(c *Config) {
				c.Defaults = []records.Property{{Name: records.PropCheck, Value: def}}
				c.CheckNetworks = nets
			})
			for _, body := range []any{
				records.Changes{Create: []records.Endpoint{tc.e}},
				records.Changes{UpdateOld: []records.Endpoint{ep("a."+zone, tc.e.RecordType, tc.e.Targets...)}, UpdateNew: []records.Endpoint{tc.e}},
			} {
				r := post(t, srv.URL+"/records", body)
				if tc.allowed {
					if r.code != http.StatusNoContent {
						t.Fatalf("refused: %d %s", r.code, r.body)
					}
					continue
				}
				checkError(t, r, http.StatusUnprocessableEntity)
				if !strings.Contains(string(r.body), tc.why) {
					t.Errorf("error %s does not say %q", r.body, tc.why)
				}
				if eps := getRecords(t, srv.URL); len(eps) != 0 {
					t.Errorf("refused, but the records are %+v", eps)
				}
			}
			// adjustendpoints drops a check that is not allowed, so
			// ExternalDNS plans with the owner's default.
			r := post(t, srv.URL+"/adjustendpoints", []records.Endpoint{tc.e})
			var eps []records.Endpoint
			if err := json.Unmarshal(r.body, &eps); err != nil || len(eps) != 1 {
				t.Fatalf("adjust: %d %s", r.code, r.body)
			}
			got := eps[0].Properties().Check
			want := def
			if tc.allowed && tc.e.Properties().Check != "" {
				want = tc.e.Properties().Check
			}
			if got != want {
				t.Errorf("adjusted check %q, want %q", got, want)
			}
		})
	}
}

func TestParseCheckNetworks(t *testing.T) {
	got, err := ParseCheckNetworks([]string{"10.1.2.3/8", "192.0.2.7", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"everywhere", "10.0.0.0/33", "::ffff:10.0.0.0/104"} {
		if _, err := ParseCheckNetworks([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
