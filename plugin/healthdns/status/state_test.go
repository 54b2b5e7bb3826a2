package status

import (
	"strings"
	"testing"
)

func TestSummary(t *testing.T) {
	up := Target{Address: "192.0.2.1", Verdict: StateUp}
	down := Target{Address: "192.0.2.2", Verdict: StateDown, Checks: []string{"tcp 192.0.2.2:80"}}
	for _, tc := range []struct {
		names []Name
		want  string
		worst string
	}{
		{nil, "no health-aware names", NameHealthy},
		{[]Name{{State: NameHealthy, Targets: []Target{up}}}, "1 name, healthy", NameHealthy},
		{[]Name{{State: NameHealthy}, {State: NameHealthy}, {State: NameHealthy}}, "all 3 names healthy", NameHealthy},
		// a target of two names counts once
		{[]Name{{State: NameStandby, Targets: []Target{up, down}}, {State: NameDegraded, Targets: []Target{down}}},
			"1 target down, 1 name on standby, 1 name degraded", NameStandby},
		{[]Name{{State: NameFallback}, {State: NameFallback}, {State: NameNone}},
			"1 name answering nothing (NODATA), 2 names on fallback", NameNone},
		// a document from before states: the outcome stands in
		{[]Name{{Outcome: OutcomeFallback}}, "1 name on fallback", NameFallback},
	} {
		got, worst := summary(tc.names)
		if got != tc.want || worst != tc.worst {
			t.Errorf("summary of %+v = %q, %q; want %q, %q", tc.names, got, worst, tc.want, tc.worst)
		}
	}
}

// TestPageOrdersBySeverity: the worst name comes first on the page,
// whatever the document's (alphabetical) order.
func TestPageOrdersBySeverity(t *testing.T) {
	d := &Document{Node: "dns1", Role: RoleServer, Names: []Name{
		{Name: "a.example.", State: NameHealthy},
		{Name: "b.example.", State: NameDegraded},
		{Name: "c.example.", State: NameNone},
		{Name: "d.example.", State: NameStandby},
		{Name: "e.example.", State: NameFallback},
	}}
	_, body := serve(t, Handler(func() *Document { return d }), "GET", "/")
	last := -1
	for _, n := range []string{"c.example.", "e.example.", "d.example.", "b.example.", "a.example."} {
		i := strings.Index(body, `<h2 id="`+n+`">`)
		if i < 0 || i < last {
			t.Fatalf("page does not list %s after the worse names (at %d, previous at %d)", n, i, last)
		}
		last = i
	}
}

// TestPageHistoryStaysOpen: a target's history opens by a link that puts
// it in ?open=, so the refresh (which reloads the same URL) keeps it open;
// its link then closes it. The reason is labelled with when it was
// recorded.
func TestPageHistoryStaysOpen(t *testing.T) {
	h := Handler(fixture)
	_, closed := serve(t, h, "GET", "/?name=app.gslb.example.com")
	key := "app.gslb.example.com.%2F192.0.2.10"
	link := `<details id="h-app-gslb-example-com--192-0-2-10"><summary class="mono"><a href="?name=app.gslb.example.com&amp;open=` + key + `#h-app-gslb-example-com--192-0-2-10">192.0.2.10: at 02:01:02: agent1=down agent2=stale dns1=down by quorum majority</a></summary>`
	if !strings.Contains(closed, link) {
		t.Fatalf("page lacks the closed history with its link:\n%s", closed)
	}
	_, opened := serve(t, h, "GET", "/?name=app.gslb.example.com&open="+key)
	reopen := `<details id="h-app-gslb-example-com--192-0-2-10" open><summary class="mono"><a href="?name=app.gslb.example.com#h-app-gslb-example-com--192-0-2-10">`
	if !strings.Contains(opened, reopen) {
		t.Fatalf("page with ?open= lacks the open history linking to its closing:\n%s", opened)
	}
	if strings.Count(opened, " open>") != 1 {
		t.Errorf("%d histories open, want 1", strings.Count(opened, " open>"))
	}
	if !strings.Contains(opened, `<meta http-equiv="refresh" content="2">`) {
		t.Error("the page no longer refreshes itself")
	}
}

func TestPerQuery(t *testing.T) {
	two := []string{"192.0.2.1", "192.0.2.2"}
	for _, tc := range []struct {
		n    Name
		want string
	}{
		{Name{Policy: "weighted", MaxAnswers: 1, Outcome: OutcomeHealthy, AnswerA: two}, "1 of these 2 IPv4 addresses per query, drawn by weight"},
		{Name{Policy: "weighted", Outcome: OutcomeHealthy, AnswerA: two}, "1 of these 2 IPv4 addresses per query, drawn by weight"},
		{Name{Policy: "weighted", MaxAnswers: 2, Outcome: OutcomeHealthy, AnswerA: two}, ""},
		// on fallback the weighted policy rotates and gives them all
		{Name{Policy: "weighted", Outcome: OutcomeFallback, AnswerA: two}, ""},
		{Name{Policy: "roundrobin", MaxAnswers: 1, Outcome: OutcomeHealthy, AnswerA: two, AnswerAAAA: []string{"2001:db8::1", "2001:db8::2", "2001:db8::3"}},
			"1 of these 2 IPv4 addresses per query, rotated; 1 of these 3 IPv6 addresses"},
		{Name{Policy: "roundrobin", Outcome: OutcomeHealthy, AnswerA: two}, ""},
	} {
		if got := tc.n.perQuery(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.n, got, tc.want)
		}
	}
	d := &Document{Node: "self", Role: RoleServer, Names: []Name{{Name: "w.example.", Policy: "weighted", MaxAnswers: 1, Outcome: OutcomeHealthy, State: NameHealthy, AnswerA: two}}}
	_, body := serve(t, Handler(func() *Document { return d }), "GET", "/")
	for _, want := range []string{"192.0.2.1 192.0.2.2</span> <span class=\"muted\">(1 of these 2 IPv4 addresses per query, drawn by weight)</span>", "single server, probing by itself · state at"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "observer  ·") || strings.Contains(body, "observer ·") {
		t.Error("page shows an empty observer")
	}
}
