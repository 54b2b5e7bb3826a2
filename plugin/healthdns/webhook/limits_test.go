package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// TestUnservableRefused: a batch with a record the servers would not
// answer as written is refused whole with 422, naming each such record,
// and changes nothing.
func TestUnservableRefused(t *testing.T) {
	s := newStore(t)
	srv := newWebhook(t, s, "ap", func(c *Config) {
		c.Servable = func(e records.Endpoint) error {
			if e.DNSName == "www.gslb.example.com" {
				return errors.New("the zone file has www.gslb.example.com")
			}
			return nil
		}
	})
	ok := ep("app.gslb.example.com", "A", "192.0.2.1")
	r := post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{ok, ep("WWW.gslb.example.com", "A", "192.0.2.2")}})
	checkError(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(string(r.body), "create[1]: www.gslb.example.com A: the zone file has") {
		t.Errorf("refusal %s", r.body)
	}
	if n := s.State().Len("ap"); n != 0 {
		t.Errorf("%d records stored from a refused batch", n)
	}
	if r := post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{ok}}); r.code != http.StatusNoContent {
		t.Fatalf("a servable batch: %d %s", r.code, r.body)
	}
	// A delete is never refused: it makes nothing to serve.
	if r := post(t, srv.URL+"/records", records.Changes{Delete: []records.Endpoint{ep("www.gslb.example.com", "A")}}); r.code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
}

// TestStoreUnavailable: without a store (one that could not be opened)
// the webhook negotiates, and answers everything else with 503 and why;
// once a store is attached it works.
func TestStoreUnavailable(t *testing.T) {
	f, _ := records.NewFilter([]string{zone}, nil)
	w, err := New(nil, Config{Owner: "ap", Filter: f, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	w.Unavailable(errors.New("records: /data/wal is damaged at offset 12"))
	srv := httptest.NewServer(w)
	defer srv.Close()
	health := httptest.NewServer(w.Health())
	defer health.Close()
	if r := do(t, http.MethodGet, srv.URL+"/", "", nil); r.code != http.StatusOK {
		t.Errorf("negotiation: %d", r.code)
	}
	for _, r := range []response{
		do(t, http.MethodGet, srv.URL+"/records", "", nil),
		post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{ep("app.gslb.example.com", "A", "192.0.2.1")}}),
		do(t, http.MethodGet, health.URL, "", nil),
	} {
		checkError(t, r, http.StatusServiceUnavailable)
		if !strings.Contains(string(r.body), "damaged at offset 12") {
			t.Errorf("503 without the reason: %s", r.body)
		}
	}
	w.Attach(newStore(t))
	if r := post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{ep("app.gslb.example.com", "A", "192.0.2.1")}}); r.code != http.StatusNoContent {
		t.Fatalf("after attach: %d %s", r.code, r.body)
	}
	if r := do(t, http.MethodGet, health.URL, "", nil); r.code != http.StatusOK {
		t.Errorf("healthz after attach: %d %s", r.code, r.body)
	}
}

// TestBodyBudget: bodies are read within a shared budget: concurrent
// requests beyond it wait their turn and all succeed; one that cannot get
// its share in time gets 503 (retried by ExternalDNS), not an unbounded
// allocation.
func TestBodyBudget(t *testing.T) {
	s := newStore(t)
	f, _ := records.NewFilter([]string{zone}, nil)
	w, err := New(s, Config{Owner: "ap", Filter: f, Logf: func(string, ...any) {}, MaxBodyBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	defer srv.Close()
	var wg sync.WaitGroup
	codes := make(chan int, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c records.Changes
			for j := range 40 {
				c.Create = append(c.Create, ep(fmt.Sprintf("r%d-%d.gslb.example.com", i, j), "TXT", strings.Repeat("t", 1000)))
			}
			b, _ := json.Marshal(c)
			resp, err := http.Post(srv.URL+"/records", MediaType, bytes.NewReader(b))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusNoContent {
			t.Errorf("a request within the budget got %d", c)
		}
	}
	if n := s.State().Len("ap"); n != 16*40 {
		t.Errorf("%d records", n)
	}

	// A client that sends no length and stalls holds the whole budget;
	// another request waits, then gets 503.
	w.bodyWait = 200 * time.Millisecond
	pr, pw := io.Pipe()
	defer pw.Close()
	stalled := make(chan struct{})
	go func() {
		defer close(stalled)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/records", pr)
		req.Header.Set("Content-Type", MediaType)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write([]byte(`{"create":[`))
	time.Sleep(100 * time.Millisecond) // the stalled request holds the budget
	r := post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{ep("late.gslb.example.com", "A", "192.0.2.1")}})
	checkError(t, r, http.StatusServiceUnavailable)
	pw.CloseWithError(errors.New("gone"))
	<-stalled
	if r := post(t, srv.URL+"/records", records.Changes{Create: []records.Endpoint{ep("late.gslb.example.com", "A", "192.0.2.1")}}); r.code != http.StatusNoContent {
		t.Errorf("after the stalled client left: %d %s", r.code, r.body)
	}
}

// TestLargeOwner: ExternalDNS sends a large cluster's records in one
// batch; 60,000 endpoints are taken at once, and GET /records lists them
// (streamed) in about a second at most.
func TestLargeOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("60,000 records")
	}
	s := newStore(t)
	srv := newWebhook(t, s, "ap")
	var c records.Changes
	for i := range 30000 {
		a := ep(fmt.Sprintf("app%d.gslb.example.com", i), "A", "192.0.2.1", "192.0.2.2")
		a.Labels = map[string]string{"owner": "eu", "resource": fmt.Sprintf("ingress/default/app%d", i)}
		c.Create = append(c.Create, a, ep(fmt.Sprintf("a-app%d.gslb.example.com", i), "TXT", fmt.Sprintf(`"heritage=external-dns,external-dns/owner=eu,external-dns/resource=ingress/default/app%d"`, i)))
	}
	b, _ := json.Marshal(c)
	t0 := time.Now()
	r := do(t, http.MethodPost, srv.URL+"/records", MediaType, b)
	if r.code != http.StatusNoContent {
		t.Fatalf("a batch of 60,000 endpoints (%d bytes): %d %s", len(b), r.code, r.body)
	}
	post := time.Since(t0)
	t0 = time.Now()
	eps := getRecords(t, srv.URL)
	get := time.Since(t0)
	if len(eps) != 60000 {
		t.Fatalf("GET /records: %d endpoints", len(eps))
	}
	t.Logf("POST of 60,000 endpoints (%d bytes of JSON): %v; GET /records: %v", len(b), post, get)
}
