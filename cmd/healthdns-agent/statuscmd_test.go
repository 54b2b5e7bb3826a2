package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/status"
)

// serverDoc is a server's status: app failed over to west, www has no
// target up.
func serverDoc() *status.Document {
	at := time.Date(2026, 11, 26, 2, 1, 14, 0, time.UTC)
	return &status.Document{
		Node: "dns1", Role: status.RoleServer, Observer: "eu-west", Time: at,
		Partition: &status.Partition{Heard: 2, Known: 2},
		Members: []status.Member{
			{Name: "agent1", Addr: "127.0.0.14:7946", Role: "agent", Observer: "eu-west", State: "alive"},
			{Name: "dns1", Addr: "127.0.0.11:7946", Role: "server", Observer: "eu-west", State: "alive"},
		},
		Names: []status.Name{
			{
				Name: "app.gslb.example.com.", Policy: "priority", Quorum: "majority", TTL: 10, Fallback: "all",
				AnswerA: []string{"198.51.100.10"}, Outcome: status.OutcomeHealthy,
				Targets: []status.Target{
					{Address: "192.0.2.10", Tier: 1, Weight: 1, Verdict: status.StateDown, Since: at.Add(-12 * time.Second),
						Observations: []status.Observation{
							{Observer: "agent1", Location: "eu-west", State: "down", AgeSeconds: 0.4, LastHeard: at},
							{Observer: "dns1", Location: "eu-west", State: "down", LastHeard: at},
						}},
					{Address: "198.51.100.10", Tier: 2, Weight: 1, Verdict: status.StateUp, Since: at.Add(-time.Hour),
						Observations: []status.Observation{
							{Observer: "agent1", Location: "eu-west", State: "up", AgeSeconds: 0.4, LastHeard: at},
							{Observer: "dns1", Location: "eu-west", State: "up", LastHeard: at},
						}},
				},
			},
			{
				Name: "www.gslb.example.com.", Policy: "roundrobin", Quorum: "majority", TTL: 30, Fallback: "none", Outcome: status.OutcomeNone,
				Targets: []status.Target{{Address: "203.0.113.10", Verdict: status.StateDown}},
			},
		},
	}
}

const appTable = `node dns1 (server, observer eu-west) at 2026-11-26T02:01:14Z
partition: no; hearing 2 of 2 observers

MEMBER  ROLE    OBSERVER  STATE  SINCE  ADDR
agent1  agent   eu-west   alive  never  127.0.0.14:7946
dns1    server  eu-west   alive  never  127.0.0.11:7946

app.gslb.example.com. policy=priority quorum=majority ttl=10 fallback=all
answer: healthy 198.51.100.10
TARGET         TIER  WEIGHT  OWNER  VERDICT  SINCE                             agent1     dns1
192.0.2.10     1     1       -      down     2026-11-26T02:01:02Z (12s ago)    down 0.4s  down 0.0s
198.51.100.10  2     1       -      up       2026-11-26T01:01:14Z (1h00m ago)  up 0.4s    up 0.0s
`

func runStatus(args ...string) (string, error) {
	var out strings.Builder
	err := statusCommand(context.Background(), args, &out, io.Discard)
	return out.String(), err
}

func TestStatusCommand(t *testing.T) {
	srv := httptest.NewServer(status.Handler(serverDoc))
	defer srv.Close()

	// The whole document is the table status.Table prints for it.
	got, err := runStatus("-url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	status.Table(&want, serverDoc())
	if got != want.String() {
		t.Errorf("got:\n%s\nwant:\n%s", got, want.String())
	}

	// -name keeps one name; the URL may be a bare host:port or end in /status.
	for _, u := range []string{srv.URL, strings.TrimPrefix(srv.URL, "http://"), srv.URL + "/status", srv.URL + "/"} {
		got, err := runStatus("-url", u, "-name", "APP.gslb.example.com")
		if err != nil {
			t.Fatalf("-url %s: %v", u, err)
		}
		if got != appTable {
			t.Errorf("-url %s -name app:\n%s\nwant:\n%s", u, got, appTable)
		}
	}

	if _, err := runStatus("-url", srv.URL, "-name", "nope.gslb.example.com"); err == nil || !strings.Contains(err.Error(), `serves no name "nope.gslb.example.com"`) {
		t.Errorf("unknown name: %v", err)
	}
}

func TestStatusCommandErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<html>a web server</html>")
	}))
	defer html.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{not json")
	}))
	defer garbage.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"name": "agent-1", "targets": []}`) // the agent's old /status
	}))
	defer other.Close()
	starting := httptest.NewServer(status.Handler(func() *status.Document { return nil }))
	defer starting.Close()
	agent := httptest.NewServer(status.Handler(func() *status.Document {
		return &status.Document{Node: "agent1", Role: status.RoleAgent}
	}))
	defer agent.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()

	for _, tc := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"-url", closed}, "cannot reach http://" + closed + "/status: dial tcp " + closed + ": connect: connection refused", false},
		{[]string{"-url", html.URL}, `not a healthdns status document (Content-Type "text/html; charset=utf-8")`, false},
		{[]string{"-url", garbage.URL}, "not a healthdns status document (invalid character", false},
		{[]string{"-url", other.URL}, "not a healthdns status document (no node and role)", false},
		{[]string{"-url", starting.URL}, "503 Service Unavailable: no status yet", false},
		{[]string{"-url", agent.URL, "-name", "app"}, "is agent agent1, which serves no names", false},
		{[]string{"-url", slow.URL, "-timeout", "100ms"}, "context deadline exceeded", false},
		{[]string{"-url", "ftp://example.com"}, `scheme "ftp"`, true},
		{[]string{"-url", "http://"}, "no host", true},
		{[]string{"-bogus"}, "flag provided but not defined", true},
		{[]string{"extra"}, "unexpected arguments", true},
	} {
		_, err := runStatus(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
			continue
		}
		if usage := errors.As(err, new(usageError)); usage != tc.usage {
			t.Errorf("%q: usage error %v, want %v", tc.args, usage, tc.usage)
		}
	}
}
