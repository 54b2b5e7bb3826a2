package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

const zone = "gslb.example.com"

func newStore(t testing.TB) *records.Store {
	t.Helper()
	s, err := records.Open(t.TempDir(), records.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newWebhook(t testing.TB, s *records.Store, owner string, mod ...func(*Config)) *httptest.Server {
	t.Helper()
	f, err := records.NewFilter([]string{zone}, []string{"internal." + zone})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Owner: owner, Filter: f, Logf: t.Logf}
	for _, m := range mod {
		m(&cfg)
	}
	w, err := New(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	code int
	ct   string
	body []byte
}

func do(t testing.TB, method, url, contentType string, body []byte, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

func post(t testing.TB, url string, v any) response {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, url, MediaType, b)
}

func getRecords(t testing.TB, url string) []records.Endpoint {
	t.Helper()
	r := do(t, http.MethodGet, url+"/records", "", nil, "Accept", MediaType)
	if r.code != http.StatusOK || r.ct != MediaType {
		t.Fatalf("GET /records: %d %s %s", r.code, r.ct, r.body)
	}
	var eps []records.Endpoint
	if err := json.Unmarshal(r.body, &eps); err != nil {
		t.Fatal(err)
	}
	return eps
}

func ep(name, typ string, targets ...string) records.Endpoint {
	return records.Endpoint{DNSName: name, RecordType: typ, Targets: targets}
}

func TestNegotiate(t *testing.T) {
	srv := newWebhook(t, newStore(t), "eu")
	r := do(t, http.MethodGet, srv.URL+"/", "", nil, "Accept", MediaType)
	if r.code != http.StatusOK || r.ct != MediaType {
		t.Fatalf("negotiate: %d %q", r.code, r.ct)
	}
	if got, want := strings.TrimSpace(string(r.body)), `{"include":["gslb.example.com"],"exclude":["internal.gslb.example.com"]}`; got != want {
		t.Errorf("domain filter %s, want %s", got, want)
	}
	for _, accept := range []string{"", "*/*", "text/html, */*;q=0.8", "application/json", "application/external.dns.webhook+json"} {
		if r := do(t, http.MethodGet, srv.URL+"/", "", nil, "Accept", accept); r.code != http.StatusOK {
			t.Errorf("Accept %q: %d", accept, r.code)
		}
	}
	r = do(t, http.MethodGet, srv.URL+"/", "", nil, "Accept", "application/external.dns.webhook+json;version=2")
	checkError(t, r, http.StatusNotAcceptable)
}

func checkError(t testing.TB, r response, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d (%s)", r.code, code, r.body)
	}
	if r.ct != "application/json" {
		t.Errorf("error Content-Type %q", r.ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Errorf("error body %q is not {\"error\": ...}", r.body)
	}
}

func TestRecordsLifecycle(t *testing.T) {
	srv := newWebhook(t, newStore(t), "eu")
	if eps := getRecords(t, srv.URL); len(eps) != 0 {
		t.Fatalf("fresh: %+v", eps)
	}
	app := ep("App.gslb.example.com", "A", "192.0.2.2", "192.0.2.1")
	app.Labels = map[string]string{"owner": "eu", "resource": "service/default/app"}
	app.ProviderSpecific = []records.Property{{Name: records.PropWeight, Value: "5"}}
	txt := ep("a-app.gslb.example.com", "TXT", `"heritage=external-dns,external-dns/owner=eu,external-dns/resource=service/default/app"`)
	if r := post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{app, txt}}); r.code != http.StatusNoContent {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	eps := getRecords(t, srv.URL)
	want := []records.Endpoint{
		{DNSName: "a-app.gslb.example.com", RecordType: "TXT", Targets: txt.Targets},
		{DNSName: "app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1", "192.0.2.2"}, Labels: app.Labels, ProviderSpecific: app.ProviderSpecific},
	}
	if !reflect.DeepEqual(eps, want) {
		t.Fatalf("after create:\n%+v\nwant\n%+v", eps, want)
	}
	upd := want[1]
	upd.Targets = []string{"192.0.2.3"}
	if r := post(t, srv.URL+"/records", records.Changes{UpdateOld: []records.Endpoint{want[1]}, UpdateNew: []records.Endpoint{upd}}); r.code != http.StatusNoContent {
		t.Fatalf("update: %d %s", r.code, r.body)
	}
	if eps := getRecords(t, srv.URL); len(eps) != 2 || !reflect.DeepEqual(eps[1].Targets, []string{"192.0.2.3"}) {
		t.Fatalf("after update: %+v", eps)
	}
	if r := post(t, srv.URL+"/records", records.Changes{Delete: []records.Endpoint{upd, want[0]}}); r.code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if eps := getRecords(t, srv.URL); len(eps) != 0 {
		t.Fatalf("after delete: %+v", eps)
	}
}

func TestTwoOwnersOneName(t *testing.T) {
	s := newStore(t)
	eu := newWebhook(t, s, "eu")
	us := newWebhook(t, s, "us")
	if r := post(t, eu.URL+"/records", records.Changes{Create: []records.Endpoint{ep("app.gslb.example.com", "A", "192.0.2.1")}}); r.code != http.StatusNoContent {
		t.Fatal(r.code, string(r.body))
	}
	if r := post(t, us.URL+"/records", records.Changes{Create: []records.Endpoint{ep("app.gslb.example.com", "A", "198.51.100.1")}}); r.code != http.StatusNoContent {
		t.Fatal(r.code, string(r.body))
	}
	// Each owner sees only its own record of the shared name.
	if eps := getRecords(t, eu.URL); len(eps) != 1 || eps[0].Targets[0] != "192.0.2.1" {
		t.Fatalf("eu sees %+v", eps)
	}
	if eps := getRecords(t, us.URL); len(eps) != 1 || eps[0].Targets[0] != "198.51.100.1" {
		t.Fatalf("us sees %+v", eps)
	}
	// eu updating and then deleting its endpoint leaves us's alone.
	if r := post(t, eu.URL+"/records", records.Changes{
		UpdateOld: []records.Endpoint{ep("app.gslb.example.com", "A", "192.0.2.1")},
		UpdateNew: []records.Endpoint{ep("app.gslb.example.com", "A", "192.0.2.9")},
	}); r.code != http.StatusNoContent {
		t.Fatal(r.code, string(r.body))
	}
	if got := s.Set("us").Endpoints; len(got) != 1 || got[0].Targets[0] != "198.51.100.1" {
		t.Fatalf("us after eu's update: %+v", got)
	}
	if r := post(t, eu.URL+"/records", records.Changes{Delete: []records.Endpoint{ep("app.gslb.example.com", "A", "198.51.100.1")}}); r.code != http.StatusNoContent {
		t.Fatal(r.code, string(r.body))
	}
	if eps := getRecords(t, eu.URL); len(eps) != 0 {
		t.Fatalf("eu after delete: %+v", eps)
	}
	if eps := getRecords(t, us.URL); len(eps) != 1 || eps[0].Targets[0] != "198.51.100.1" {
		t.Fatalf("us after eu's delete: %+v", eps)
	}
}

func TestBadInput(t *testing.T) {
	s := newStore(t)
	srv := newWebhook(t, s, "eu", func(c *Config) { c.MaxBodyBytes = 4096 })
	other := newWebhook(t, s, "us")
	// State before: one record each.
	if r := post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{ep("app.gslb.example.com", "A", "192.0.2.1")}}); r.code != http.StatusNoContent {
		t.Fatal(r.code, string(r.body))
	}
	if r := post(t, other.URL+"/records", records.Changes{Create: []records.Endpoint{ep("app.gslb.example.com", "A", "198.51.100.1")}}); r.code != http.StatusNoContent {
		t.Fatal(r.code, string(r.body))
	}
	before := s.State().Heads()

	create := func(e records.Endpoint) string {
		b, _ := json.Marshal(records.Changes{Create: []records.Endpoint{e}, Delete: []records.Endpoint{ep("app.gslb.example.com", "A")}})
		return string(b)
	}
	big := `{"create":[{"dnsName":"x.gslb.example.com","recordType":"TXT","targets":["` + strings.Repeat("x", 5000) + `"]}]}`
	tests := []struct {
		name, method, path, ct, body string
		code                         int
		chunked                      bool
	}{
		{"malformed JSON", "POST", "/records", MediaType, `{"create": [`, 400, false},
		{"wrong JSON type", "POST", "/records", MediaType, `{"create": {"dnsName": 1}}`, 400, false},
		{"trailing data", "POST", "/records", MediaType, `{} {}`, 400, false},
		{"empty body", "POST", "/records", MediaType, ``, 400, false},
		{"wrong media type", "POST", "/records", "application/json", `{}`, 415, false},
		{"no media type", "POST", "/records", "", `{}`, 415, false},
		{"media type version 2", "POST", "/records", "application/external.dns.webhook+json;version=2", `{}`, 415, false},
		{"oversized body", "POST", "/records", MediaType, big, 413, false},
		{"oversized body, chunked", "POST", "/records", MediaType, big, 413, true},
		{"invalid name", "POST", "/records", MediaType, create(ep("bad name.gslb.example.com", "A", "192.0.2.5")), 422, false},
		{"invalid address", "POST", "/records", MediaType, create(ep("new.gslb.example.com", "A", "192.0.2.300")), 422, false},
		{"IPv6 in an A record", "POST", "/records", MediaType, create(ep("new.gslb.example.com", "A", "2001:db8::1")), 422, false},
		{"unsupported type", "POST", "/records", MediaType, create(ep("new.gslb.example.com", "MX", "10 mx.example.com")), 422, false},
		{"outside the domain filter", "POST", "/records", MediaType, create(ep("app.example.org", "A", "192.0.2.5")), 422, false},
		{"excluded domain", "POST", "/records", MediaType, create(ep("x.internal.gslb.example.com", "A", "192.0.2.5")), 422, false},
		{"two CNAME targets", "POST", "/records", MediaType, create(ep("new.gslb.example.com", "CNAME", "a.example.net", "b.example.net")), 422, false},
		{"bad property", "POST", "/records", MediaType, create(records.Endpoint{DNSName: "new.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.5"}, ProviderSpecific: []records.Property{{Name: records.PropTier, Value: "first"}}}), 422, false},
		{"null endpoint", "POST", "/records", MediaType, `{"create":[null]}`, 422, false},
		{"adjust: malformed JSON", "POST", "/adjustendpoints", MediaType, `[{]`, 400, false},
		{"adjust: wrong media type", "POST", "/adjustendpoints", "text/plain", `[]`, 415, false},
		{"adjust: oversized", "POST", "/adjustendpoints", MediaType, "[" + strings.Repeat(" ", 5000) + "]", 413, false},
		{"unknown path", "GET", "/zones", "", ``, 404, false},
		{"wrong method on /records", "PUT", "/records", MediaType, `{}`, 405, false},
		{"wrong method on /", "POST", "/", MediaType, `{}`, 405, false},
		{"wrong method on /adjustendpoints", "GET", "/adjustendpoints", "", ``, 405, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // no length known: sent chunked
			}
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, body)
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkError(t, response{resp.StatusCode, resp.Header.Get("Content-Type"), b}, tt.code)
			if after := s.State().Heads(); !reflect.DeepEqual(after, before) {
				t.Fatalf("records changed: %+v, were %+v", after, before)
			}
		})
	}
}

func TestAdjustEndpoints(t *testing.T) {
	s := newStore(t)
	srv := newWebhook(t, s, "eu")
	in := `[
	  {"dnsName":"App.gslb.example.com.","recordType":"A","targets":["192.0.2.2","192.0.2.1"],"labels":{"resource":"service/default/app"},
	   "providerSpecific":[{"name":"webhook/weight","value":"010"},{"name":"webhook/check","value":"http://{addr}/healthz   status 200"},
	                       {"name":"webhook/tier","value":"zero"},{"name":"webhook/colour","value":"blue"},{"name":"alias","value":"false"}]},
	  null,
	  {"dnsName":"mx.gslb.example.com","recordType":"MX","targets":["10 mx.example.com"]},
	  {"dnsName":"app.example.org","recordType":"A","targets":["192.0.2.1"]},
	  {"dnsName":"bad.gslb.example.com","recordType":"A","targets":["not-an-ip"]},
	  {"dnsName":"www.gslb.example.com","recordType":"CNAME","targets":["LB.example.net"],"setIdentifier":"eu","recordTTL":60}
	]`
	r := do(t, http.MethodPost, srv.URL+"/adjustendpoints", MediaType, []byte(in), "Accept", MediaType)
	if r.code != http.StatusOK || r.ct != MediaType {
		t.Fatalf("adjust: %d %q %s", r.code, r.ct, r.body)
	}
	var got []records.Endpoint
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := []records.Endpoint{
		{DNSName: "app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1", "192.0.2.2"}, Labels: map[string]string{"resource": "service/default/app"},
			ProviderSpecific: []records.Property{{Name: "alias", Value: "false"}, {Name: "webhook/check", Value: "http://{addr}/healthz status 200"}, {Name: "webhook/weight", Value: "10"}}},
		{DNSName: "www.gslb.example.com", RecordType: "CNAME", Targets: []string{"lb.example.net"}, SetIdentifier: "eu", RecordTTL: 60},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("adjusted:\n%+v\nwant\n%+v", got, want)
	}
	// What adjust returns, POST /records takes as is, and GET /records
	// returns unchanged: ExternalDNS's plan then sees no difference.
	if r := post(t, srv.URL+"/records", records.Changes{Create: got}); r.code != http.StatusNoContent {
		t.Fatalf("create adjusted: %d %s", r.code, r.body)
	}
	if eps := getRecords(t, srv.URL); !reflect.DeepEqual(eps, want) {
		t.Fatalf("stored:\n%+v\nwant\n%+v", eps, want)
	}
	if len(s.State().Owners()) != 1 {
		t.Error("adjust stored something")
	}
}

func TestClosedStore(t *testing.T) {
	s := newStore(t)
	srv := newWebhook(t, s, "eu")
	s.Close()
	r := post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{ep("app.gslb.example.com", "A", "192.0.2.1")}})
	checkError(t, r, http.StatusServiceUnavailable) // 5xx: ExternalDNS retries
	// Reads still work.
	if eps := getRecords(t, srv.URL); len(eps) != 0 {
		t.Errorf("records: %+v", eps)
	}
}

func TestNewRefusesBadOwner(t *testing.T) {
	if _, err := New(newStore(t), Config{Owner: "not an owner"}); err == nil {
		t.Error("accepted")
	}
}
