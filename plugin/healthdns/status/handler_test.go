package status

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, target string) (*http.Response, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	resp := w.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHandlerRoutes(t *testing.T) {
	h := Handler(fixture)
	for _, tc := range []struct {
		method, target string
		code           int
		ctype          string
	}{
		{"GET", "/status", 200, "application/json"},
		{"GET", "/status?name=app.gslb.example.com.", 200, "application/json"},
		{"HEAD", "/status", 200, "application/json"},
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/?name=www.gslb.example.com", 200, "text/html; charset=utf-8"},
		{"GET", "/health", 200, "text/plain; charset=utf-8"},
		{"GET", "/nope", 404, ""},
		{"GET", "/status/", 404, ""},
		{"GET", "/index.html", 404, ""},
		{"POST", "/status", 405, ""},
		{"PUT", "/", 405, ""},
		{"DELETE", "/health", 405, ""},
	} {
		resp, body := serve(t, h, tc.method, tc.target)
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.target, resp.StatusCode, tc.code)
		}
		if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.target, resp.Header.Get("Content-Type"), tc.ctype)
		}
		if tc.code == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.target, resp.Header.Get("Allow"))
		}
		if tc.target == "/health" && tc.code == 200 && body != "OK" {
			t.Errorf("/health: %q", body)
		}
	}
}

// TestHandlerNotReady: before the node has state, the views say so and
// /health still answers.
func TestHandlerNotReady(t *testing.T) {
	h := Handler(func() *Document { return nil })
	for _, p := range []string{"/status", "/"} {
		if resp, _ := serve(t, h, "GET", p); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s with no document: %d", p, resp.StatusCode)
		}
	}
	if resp, body := serve(t, h, "GET", "/health"); resp.StatusCode != 200 || body != "OK" {
		t.Errorf("/health with no document: %d %q", resp.StatusCode, body)
	}
}

func TestHandlerNameFilter(t *testing.T) {
	h := Handler(fixture)
	for q, want := range map[string][]string{
		"":                            {"app.gslb.example.com.", "www.gslb.example.com."},
		"?name=app.gslb.example.com.": {"app.gslb.example.com."},
		"?name=APP.gslb.example.com":  {"app.gslb.example.com."},
		"?name=www.gslb.example.com.&name=app.gslb.example.com.": {"app.gslb.example.com.", "www.gslb.example.com."},
		"?name=nope.gslb.example.com.":                           {},
	} {
		_, body := serve(t, h, "GET", "/status"+q)
		var d Document
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got := []string{}
		for _, n := range d.Names {
			got = append(got, n.Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("/status%s: names %q, want %q", q, got, want)
		}
		if d.Node != "dns1" || len(d.Members) != 3 {
			t.Errorf("/status%s: the filter dropped more than names: %+v", q, d)
		}
	}
}

// TestHandlerDoesNotModify: the handler may be given a shared document.
func TestHandlerDoesNotModify(t *testing.T) {
	d := fixture()
	d.Names[1].Targets[0].Observations = nil
	d.Catalog = nil
	h := Handler(func() *Document { return d })
	serve(t, h, "GET", "/status?name=www.gslb.example.com.")
	serve(t, h, "GET", "/")
	want := fixture()
	want.Names[1].Targets[0].Observations = nil
	if !reflect.DeepEqual(d, want) {
		t.Error("serving modified the document")
	}
}

func TestPage(t *testing.T) {
	_, body := serve(t, Handler(fixture), "GET", "/")
	for _, want := range []string{
		`<meta http-equiv="refresh" content="2">`,
		// every target and every observer
		"192.0.2.10", "2001:db8::10", "198.51.100.10", "2001:db8:1::10", "203.0.113.10",
		">agent1<", ">agent2<", ">dns1<", "eu-west", "us-east",
		// names, policy, answer, outcome
		"app.gslb.example.com.", "www.gslb.example.com.", "<b>priority</b>", "<b>majority</b>",
		"198.51.100.10 2001:db8:1::10", `class="banner warn">standby</span> answering its standby targets: the preferred ones are down ·`, `class="banner down">none<`,
		// the summary, worst first
		`<div class="banner summary down">2 targets down, 1 name answering nothing (NODATA), 1 name on standby</div>`,
		// cells coloured by state, with the age
		`<td class="obs down" title="said down, last heard 2026-11-26T02:01:13Z (0s ago)">down 0.4s<span class="err">tcp 127.0.0.1:9001: timeout</span></td>`,
		`<td class="obs unknown" title="said up, last heard 2026-11-26T02:00:42Z (31s ago)">stale 31.2s</td>`,
		`<td class="obs up" title="said up, last heard 2026-11-26T02:01:14Z (0s ago)">up 0.0s</td>`,
		// why, visible: the check and the error
		`<span class="loc">tcp 127.0.0.1:9001</span>`,
		`down 0.0s<span class="err">tcp 127.0.0.1:9001: dial tcp 127.0.0.1:9001: connect: connection refused</span>`,
		// verdict and since, absolute and relative
		`>down</td>`, "2026-11-26T02:01:02Z (12s ago)", "2026-11-25T22:57:14Z (3h04m ago)",
		// history, newest first
		"agent1=down agent2=stale dns1=down by quorum majority",
		// partition and members
		"not partitioned: hearing 2 of 3 voters (need 2, servers): dns1 self, dns2 dead, w1 witness heard; 2 of 3 observers, since 2026-11-26T01:01:14Z (1h00m ago)", "127.0.0.15:7946", `<td class="down">dead</td>`,
		// owners, views
		"webhook owners", "observers' views held here", "no: missed changes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(strings.ToLower(body), "<script") {
		t.Error("page has script")
	}
	newest := strings.Index(body, `<td class="up">up</td><td class="down">down</td>`)
	oldest := strings.Index(body, `<td class="unknown">unknown</td><td class="up">up</td>`)
	if newest < 0 || oldest < 0 || newest > oldest {
		t.Errorf("history is not newest first")
	}
	_, agent := serve(t, Handler(agentFixture), "GET", "/")
	for _, want := range []string{"probed by this node", "connection refused", "tcp [2001:db8::10]:443", `<td class="unknown">unknown</td>`} {
		if !strings.Contains(agent, want) {
			t.Errorf("agent page lacks %s", want)
		}
	}
	_, alone := serve(t, Handler(func() *Document {
		return &Document{Node: "self", Role: RoleServer, Partition: &Partition{Partitioned: true, Known: 2}}
	}), "GET", "/")
	if !strings.Contains(alone, `class="banner down">PARTITIONED, keeping the last verdicts: hearing 0 of 2 observers<`) || !strings.Contains(alone, "no cluster") {
		t.Errorf("page of a lone partitioned server:\n%s", alone)
	}
}

func TestPageEscapes(t *testing.T) {
	evil := `<script>alert("x")</script>.gslb.example.com.`
	d := fixture()
	d.Node = `"><img src=x onerror=alert(1)>`
	d.Names[0].Name = evil
	d.Names[0].Targets[0].Reason = `</td><script>alert(2)</script>`
	d.Names[0].Targets[0].Observations[0].Location = `<b onmouseover=alert(3)>`
	d.Members[0].Name = `<iframe src=//evil>`
	_, body := serve(t, Handler(func() *Document { return d }), "GET", "/")
	for _, bad := range []string{"<script", "<img", "<iframe", "<b onmouseover"} {
		if strings.Contains(body, bad) {
			t.Errorf("page has unescaped %s", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;.gslb.example.com.", "&lt;iframe src=//evil&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks escaped %s", want)
		}
	}
}
