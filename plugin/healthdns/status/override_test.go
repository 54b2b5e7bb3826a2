package status

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An override in force shows on every view: the matrix, the page and the
// table, with who, why and until when, beside the probes' verdict.
func TestOverrideShown(t *testing.T) {
	now := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	o := &Override{Selector: "owner=east", State: OverrideDrain, Reason: "bad deploy", Who: "alice", Node: "dns1", Set: now.Add(-time.Minute), Until: now.Add(time.Hour), Active: true}
	n := Name{Name: "app.gslb.example.com.", Policy: "roundrobin", Quorum: "majority", TTL: 10, Fallback: "all", Outcome: OutcomeHealthy,
		AnswerA: []string{"192.0.2.10"},
		Targets: []Target{
			{Address: "192.0.2.10", Tier: 1, Weight: 1, Verdict: StateUp},
			{Address: "192.0.2.20", Owner: "east", Tier: 1, Weight: 1, Verdict: StateUp, Override: o,
				History: []Change{{Time: o.Set, From: OverrideNone, To: OverrideDrain, Reason: o.Reason, Kind: "override", Who: "alice", Until: o.Until, Selector: o.Selector}}},
		}}
	lines := MatrixTXT(n, nil, now)
	joined := strings.Join(lines, "\n")
	for _, want := range []string{
		"target 192.0.2.20 tier=1 weight=1 owner=east verdict=up override=drain since=-",
		"192.0.2.20 override=drain who=alice until=2026-11-26T03:00:00Z_(in_1h00m) selector=owner=east reason=bad_deploy",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("matrix lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(lines[1], "override") {
		t.Errorf("a target without override says one: %s", lines[1])
	}
	for _, l := range lines {
		if len(l) > MaxTXT {
			t.Errorf("string of %d bytes", len(l))
		}
	}

	d := &Document{Node: "dns1", Role: RoleServer, Time: now, Names: []Name{n}, Overrides: []Override{*o}}
	rec := httptest.NewRecorder()
	Handler(func() *Document { return d }).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	for _, want := range []string{`<span class="banner warn">drain</span><span class="loc">drain (owner=east) by alice on dns1`, "override owner=east by alice until 2026-11-26T03:00:00Z: bad deploy"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	var tb bytes.Buffer
	if err := Table(&tb, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tb.String(), "up (drain)") {
		t.Errorf("table lacks the override:\n%s", tb.String())
	}
}
