package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI sends what the operator typed, with the token, and words the
// server's refusals; usage mistakes never reach the server.
func TestDrainCommand(t *testing.T) {
	var got []map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer sekrit-token-0123456789" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"a valid bearer token is required"}`))
			return
		}
		if r.Method == http.MethodGet {
			w.Write([]byte(`{"node":"dns1","time":"2026-12-02T04:00:00Z","overrides":[{"selector":"owner=east","state":"drain","who":"alice","reason":"bad deploy","node":"dns1","set":"2026-12-02T03:59:00Z","until":"2026-12-02T05:00:00Z","active":true,"matched":2,"targets":[]}]}`))
			return
		}
		var req map[string]string
		json.NewDecoder(r.Body).Decode(&req)
		got = append(got, req)
		state := req["state"]
		if state == "clear" {
			state = "none"
		}
		json.NewEncoder(w).Encode(map[string]any{"selector": req["selector"], "state": state, "node": "dns1", "set": "2026-12-02T04:00:00Z", "matched": 1, "targets": []string{"app.gslb.example.com. 192.0.2.10"}})
	}))
	defer srv.Close()
	tf := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tf, []byte("sekrit-token-0123456789\n"), 0o600)
	run := func(verb string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := drainCommand(context.Background(), verb, append([]string{"-server", srv.URL, "-token-file", tf}, args...), &out, &errOut)
		return out.String(), err
	}

	out, err := run("drain", "-reason", "bad deploy", "192.0.2.10", "-for", "1h", "-who", "alice")
	if err != nil || !strings.Contains(out, "drained 192.0.2.10 on dns1: 1 target") {
		t.Errorf("drain: %q, %v", out, err)
	}
	if len(got) != 1 || got[0]["state"] != "drain" || got[0]["for"] != "1h0m0s" || got[0]["reason"] != "bad deploy" || got[0]["who"] != "alice" {
		t.Errorf("drain sent %v", got)
	}
	if out, err = run("force", "down", "owner=east"); err != nil || !strings.Contains(out, "forced down owner=east") {
		t.Errorf("force down: %q, %v", out, err)
	}
	if out, err = run("undrain", "owner=east"); err != nil || !strings.Contains(out, "cleared owner=east") || got[len(got)-1]["state"] != "clear" {
		t.Errorf("undrain: %q, %v, sent %v", out, err, got[len(got)-1])
	}
	if out, err = run("drain", "-list"); err != nil || !strings.Contains(out, "drain  owner=east  2 targets  by alice on dns1") || !strings.Contains(out, "bad deploy") {
		t.Errorf("list: %q, %v", out, err)
	}
	sent := len(got)
	for _, args := range [][]string{{"force", "sideways", "x"}, {"drain"}, {"drain", "a", "b"}, {"drain", "-clear", "-for", "1h", "x"}, {"drain", "-list", "x"}} {
		var usage usageError
		if _, err := run(args[0], args[1:]...); !errors.As(err, &usage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if len(got) != sent {
		t.Errorf("a usage error reached the server: %v", got[sent:])
	}
	var out2, errOut bytes.Buffer
	err = drainCommand(context.Background(), "drain", []string{"-server", srv.URL, "192.0.2.10"}, &out2, &errOut)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "no -token-file") {
		t.Errorf("without a token: %v", err)
	}
}
