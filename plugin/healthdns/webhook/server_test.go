package webhook

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

func TestServerListeners(t *testing.T) {
	s := newStore(t)
	f, _ := records.NewFilter([]string{zone}, nil)
	w, err := New(s, Config{Owner: "eu", Filter: f, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(w, "127.0.0.1:0", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	api, health := "http://"+srv.Addr(), "http://"+srv.HealthAddr()

	if r := post(t, api+"/records", records.Changes{Create: []records.Endpoint{ep("app.gslb.example.com", "A", "192.0.2.1")}}); r.code != http.StatusNoContent {
		t.Fatal(r.code, string(r.body))
	}
	if r := do(t, http.MethodGet, health+"/healthz", "", nil); r.code != http.StatusOK || strings.TrimSpace(string(r.body)) != "OK" {
		t.Errorf("healthz: %d %s", r.code, r.body)
	}
	// The provider API is not on the health listener, nor the reverse.
	if r := do(t, http.MethodGet, health+"/records", "", nil); r.code != http.StatusNotFound {
		t.Errorf("records on the health listener: %d", r.code)
	}
	if r := do(t, http.MethodGet, api+"/healthz", "", nil); r.code != http.StatusNotFound {
		t.Errorf("healthz on the API listener: %d", r.code)
	}

	resp, err := http.Get(health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`coredns_healthdns_webhook_requests_total{code="204",endpoint="applychanges",owner="eu"} 1`,
		`coredns_healthdns_webhook_records{owner="eu"} 1`,
		`coredns_healthdns_webhook_apply_duration_seconds_count{owner="eu"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	s.Close()
	if r := do(t, http.MethodGet, health+"/healthz", "", nil); r.code != http.StatusServiceUnavailable {
		t.Errorf("healthz with a closed store: %d", r.code)
	}
}

func TestServerAddressInUse(t *testing.T) {
	s := newStore(t)
	w, _ := New(s, Config{Owner: "eu", Logf: t.Logf})
	a, err := Listen(w, "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	if a.HealthAddr() != "" {
		t.Error("health listener without an address")
	}
	if b, err := Listen(w, a.Addr(), "", nil); err == nil {
		b.Shutdown(context.Background())
		t.Fatal("listened twice on one address")
	}
	if b, err := Listen(w, "127.0.0.1:0", a.Addr(), nil); err == nil {
		b.Shutdown(context.Background())
		t.Fatal("health listener on a used address")
	}
}
