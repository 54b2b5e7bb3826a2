package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// FuzzWebhookJSON posts anything to /records and /adjustendpoints: the
// webhook must answer 2xx or 4xx with a JSON error, never 5xx or panic;
// a refused batch changes nothing; what adjust returns is storable.
func FuzzWebhookJSON(f *testing.F) {
	for _, s := range []string{
		`{"create":[{"dnsName":"app.gslb.example.com","recordType":"A","targets":["192.0.2.1"]}]}`,
		`{"updateOld":[{"dnsName":"app.gslb.example.com","recordType":"A"}],"updateNew":[{"dnsName":"app.gslb.example.com","recordType":"AAAA","targets":["2001:db8::1"],"recordTTL":30}]}`,
		`{"delete":[{"dnsName":"a-app.gslb.example.com","recordType":"TXT","targets":["\"heritage=external-dns\""]}]}`,
		`[{"dnsName":"www.gslb.example.com","recordType":"CNAME","targets":["lb.example.net"],"providerSpecific":[{"name":"webhook/weight","value":"3"}]}]`,
		`{"create":[null]}`, `[null]`, `{}`, `[]`, `null`, `{"create":`,
	} {
		f.Add([]byte(s))
	}
	s := newStore(f)
	fl, _ := records.NewFilter([]string{zone}, nil)
	w, err := New(s, Config{Owner: "eu", Filter: fl, Logf: func(string, ...any) {}, MaxBodyBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/records", "/adjustendpoints"} {
			before := s.Head("eu")
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", MediaType)
			rec := httptest.NewRecorder()
			w.ServeHTTP(rec, req)
			switch code := rec.Code; {
			case code >= 500:
				t.Fatalf("%s: %d %s", path, code, rec.Body)
			case code >= 400:
				var e errorJSON
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("%s: %d with body %q", path, code, rec.Body)
				}
				if s.Head("eu") != before {
					t.Fatalf("%s: refused with %d, but the set changed", path, code)
				}
			case path == "/adjustendpoints":
				var eps []records.Endpoint
				if err := json.Unmarshal(rec.Body.Bytes(), &eps); err != nil {
					t.Fatalf("adjust returned %q: %v", rec.Body, err)
				}
				if err := (records.Changes{Create: eps}).Check(&fl); err != nil {
					// Two endpoints with one key are each fine alone.
					for _, e := range eps {
						if err := (records.Changes{Create: []records.Endpoint{e}}).Check(&fl); err != nil {
							t.Fatalf("adjust returned %+v, which POST refuses: %v", e, err)
						}
					}
				}
			}
		}
	})
}
