package healthdns

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
)

// TestOwnProbeErrors: a single server, probing by itself, says why its
// own probe of a target fails, in the status document and the matrix.
func TestOwnProbeErrors(t *testing.T) {
	zf := writeZone(t, testZone)
	cfg, err := parse(caddy.NewTestController("dns", `healthdns example.org {
		zonefile `+zf+`
		interval 100ms
		timeout 100ms
		rise 1
		fall 1
		name app {
			policy priority
			target 192.0.2.1 tier 1 check tcp 127.0.4.250:1
			target 192.0.2.2 tier 2 check tcp 127.0.4.250:1
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(cfg, probe.NewPool())
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	defer h.stop()
	var n status.Name
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.rebuild()
		d := h.document("")
		if len(d.Names) == 1 {
			n = d.Names[0]
			if len(n.Targets) == 2 && len(n.Targets[0].Observations) == 1 && n.Targets[0].Observations[0].State == status.StateDown {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no down observation after 5s: %+v", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	o := n.Targets[0].Observations[0]
	if o.Observer != "self" || !strings.HasPrefix(o.Error, "tcp 127.0.4.250:1: ") || !strings.Contains(o.Error, "connection refused") {
		t.Errorf("own observation %+v: want observer self and the check's connection refused", o)
	}
	if n.State != status.NameFallback {
		t.Errorf("state %q, want fallback (nothing healthy, fallback all)", n.State)
	}
	all := strings.Join(status.MatrixTXT(n, nil, time.Now()), "\n")
	if !strings.Contains(all, "192.0.2.1 observer=self location=- state=down age=") || !strings.Contains(all, " error=tcp 127.0.4.250:1: ") {
		t.Errorf("matrix lacks the own probe's error:\n%s", all)
	}
	// The page: no empty observer, the error visible.
	rec := httptest.NewRecorder()
	status.Handler(func() *status.Document { return h.document("") }).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	if !strings.Contains(page, `<div class="muted">single server, probing by itself · state at`) || strings.Contains(page, "observer  ·") ||
		!strings.Contains(page, `<span class="err">tcp 127.0.4.250:1: `) {
		t.Errorf("page of a single server:\n%s", page)
	}
}
