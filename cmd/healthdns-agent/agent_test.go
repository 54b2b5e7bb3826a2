package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
)

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func agentState(server *gossip.Node, agent string, id gossip.TargetID) (gossip.ObserverView, health.State) {
	for _, v := range server.Views() {
		if v.Node == agent {
			return v, v.Observation(id).State
		}
	}
	return gossip.ObserverView{}, health.Unknown
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// TestAgent runs the agent's main loop in-process against a gossip node
// acting as a server: the agent learns a target from the server's catalog,
// probes a real HTTP backend, and the server sees it go up, then down when
// the backend closes, then gone when the agent leaves.
func TestAgent(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)

	server, err := gossip.New(gossip.Config{
		Name: "server", Observer: "dc1", Role: gossip.RoleServer,
		BindAddr: "127.0.0.1", KeyFile: keyFile, Label: "test",
		GossipInterval: 50 * time.Millisecond, PushPullInterval: time.Second, ProbeInterval: 200 * time.Millisecond,
		LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Shutdown()

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer backend.Close()
	check, err := probe.ParseURLCheck(backend.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	target, err := gossip.NewCatalogTarget(probe.Target{
		Addr: netip.MustParseAddr("127.0.0.1"), Checks: []probe.Check{check},
		Interval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := server.PublishCatalog([]gossip.CatalogTarget{target}); err != nil {
		t.Fatal(err)
	}

	var logs strings.Builder
	opts, err := parseFlags([]string{
		"-name", "agent-1", "-observer", "lab", "-bind", "127.0.0.1:0",
		"-join", server.Addr(), "-keyfile", keyFile, "-label", "test", "-status", "127.0.0.1:0",
		"-gossip-interval", "50ms", "-pushpull-interval", "1s", "-member-probe-interval", "200ms", "-leave-timeout", "1s",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sw := &syncWriter{w: &logs}
	a, err := newAgent(opts, sw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()

	d := waitFor(t, 10*time.Second, "server sees the agent's observation up", func() bool {
		_, s := agentState(server, "agent-1", target.ID)
		return s == health.Up
	})
	t.Logf("agent joined, learned the catalog, probed and published up in %v", d)
	v, _ := agentState(server, "agent-1", target.ID)
	if v.Observer != "lab" || v.Role != gossip.RoleAgent || !v.Alive {
		t.Errorf("server's view of the agent: %+v", v)
	}

	base := "http://" + a.status.Addr().String()
	var st status.Document
	if err := json.Unmarshal([]byte(get(t, base+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Node != "agent-1" || st.Role != status.RoleAgent || st.Observer != "lab" || st.Partition != nil || len(st.Names) != 0 {
		t.Errorf("status: %+v", st)
	}
	if len(st.Catalog) != 1 || st.Catalog[0].State != status.StateUp || st.Catalog[0].ID != target.ID.String() ||
		st.Catalog[0].Address != "127.0.0.1" || st.Catalog[0].Interval != "100ms" || st.Catalog[0].Checked.IsZero() {
		t.Errorf("status catalog: %+v", st.Catalog)
	}
	if len(st.Members) != 2 || st.Members[0].Name != "agent-1" || st.Members[0].Role != "agent" ||
		st.Members[1].Name != "server" || st.Members[1].State != "alive" {
		t.Errorf("status members: %+v", st.Members)
	}
	// The server observes nothing here: the only view is the agent's own.
	if len(st.Views) != 1 || st.Views[0].Node != "agent-1" || st.Views[0].Location != "lab" || st.Views[0].Up != 1 ||
		st.Views[0].LastHeard.IsZero() {
		t.Errorf("status views: %+v", st.Views)
	}
	if page := get(t, base+"/"); !strings.Contains(page, `http-equiv="refresh"`) || !strings.Contains(page, "probed by this node") {
		t.Errorf("status page:\n%s", page)
	}
	if ok := get(t, base+"/health"); ok != "OK" {
		t.Errorf("/health: %q", ok)
	}
	var table strings.Builder
	if err := statusCommand(context.Background(), []string{"-url", base}, &table, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "node agent-1 (agent, observer lab)") || !strings.Contains(table.String(), "127.0.0.1  up") {
		t.Errorf("healthdns-agent status:\n%s", table.String())
	}
	metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`coredns_healthdns_probes_total{result="success",target="127.0.0.1",type="http"}`,
		`coredns_healthdns_gossip_members{state="alive"} 2`,
		`coredns_healthdns_catalog_targets 1`,
		`coredns_healthdns_observed_targets{state="up"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	backend.Close()
	d = waitFor(t, 5*time.Second, "server sees the agent's observation down", func() bool {
		_, s := agentState(server, "agent-1", target.ID)
		return s == health.Down
	})
	t.Logf("backend closed: down at the server in %v (interval 100ms, fall 1)", d)

	// The target leaves the catalog: the agent stops probing it and drops
	// its observation.
	server.PublishCatalog(nil)
	waitFor(t, 5*time.Second, "agent drops the observation", func() bool {
		v, _ := agentState(server, "agent-1", target.ID)
		return v.Node != "" && len(v.States) == 0
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not stop")
	}
	waitFor(t, 5*time.Second, "server sees the agent left", func() bool {
		v, _ := agentState(server, "agent-1", target.ID)
		return v.State == gossip.MemberLeft && !v.Alive
	})
	if t.Failed() {
		t.Log(sw.String())
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-name", "a", "-join", "10.0.0.1:7946, 10.0.0.2:7946", "-bind", "127.0.0.1:7000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.join) != 2 || o.join[1] != "10.0.0.2:7946" || o.bind != "127.0.0.1:7000" {
		t.Errorf("%+v", o)
	}
	if o, err := parseFlags([]string{"-witness", "-probe=false"}, io.Discard); err != nil || !o.witness || o.probe {
		t.Errorf("-witness -probe=false: %+v, %v", o, err)
	}
	if o, err := parseFlags([]string{"-connect", "dns1:7947,dns2:7947", "-keyfile", "k", "-connect-from", "10.0.0.9"}, io.Discard); err != nil || len(o.connect) != 2 || o.from != "10.0.0.9" || !o.sidecar.edge {
		t.Errorf("-connect: %+v, %v", o, err)
	}
	// An edge sidecar needs no -data: the servers store its records.
	if _, err := parseFlags([]string{"-connect", "dns1:7947", "-keyfile", "k", "-probe=false", "-webhook", "localhost:8888",
		"-owner", "eu", "-domain-filter", "gslb.example.com", "-default-check", "tcp {addr}:443"}, io.Discard); err != nil {
		t.Errorf("edge sidecar without -data: %v", err)
	}
	for _, args := range [][]string{
		{"-probe=false"},          // neither probes nor votes
		{"-connect", "dns1:7947"}, // no key
		{"-connect", "dns1", "-keyfile", "k"},
		{"-connect", "dns1:7947", "-keyfile", "k", "-join", "dns1:7946"},
		{"-connect", "dns1:7947", "-keyfile", "k", "-bind", "0.0.0.0:7946"},
		{"-connect", "dns1:7947", "-keyfile", "k", "-witness"},
		{"-connect", "dns1:7947", "-keyfile", "k", "-connect-from", "here"},
		{"-connect-from", "10.0.0.9"},
		{"-webhook", "localhost:8888", "-owner", "eu", "-domain-filter", "gslb.example.com", "-default-check", "tcp {addr}:443"}, // a member sidecar needs -data
		{"-bind", "nope"},
		{"-bind", "127.0.0.1:99999"},
		{"-join", "host-without-port"},
		{"-advertise", "1.2.3.4"},
		{"extra"},
		{"-unknown"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// TestWitness: an agent started with -witness -probe=false is a voter to
// the servers and no observer: it publishes no view, and its status says
// witness.
func TestWitness(t *testing.T) {
	server, err := gossip.New(gossip.Config{
		Name: "server", Observer: "dc1", Role: gossip.RoleServer, BindAddr: "127.0.0.1",
		GossipInterval: 50 * time.Millisecond, PushPullInterval: time.Second, ProbeInterval: 200 * time.Millisecond,
		LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Shutdown()
	opts, err := parseFlags([]string{
		"-name", "w1", "-observer", "third", "-bind", "127.0.0.1:0", "-join", server.Addr(), "-status", "127.0.0.1:0",
		"-witness", "-probe=false", "-gossip-interval", "50ms", "-leave-timeout", "1s", "-insecure",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	sw := &syncWriter{w: &logs}
	a, err := newAgent(opts, sw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	waitFor(t, 10*time.Second, "the server hears the witness as a voter", func() bool {
		for _, v := range server.Voters() {
			if v.Node == "w1" && v.Role == gossip.RoleWitness && time.Now().Before(v.Until()) {
				return true
			}
		}
		return false
	})
	for _, v := range server.Views() {
		if v.Node == "w1" {
			t.Errorf("a witness that does not probe published a view: %+v", v)
		}
	}
	var st status.Document
	if err := json.Unmarshal([]byte(get(t, "http://"+a.status.Addr().String()+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Role != status.RoleWitness || len(st.Catalog) != 0 {
		t.Errorf("witness status: role %q, catalog %+v", st.Role, st.Catalog)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if !strings.Contains(sw.String(), "witness (it votes; it does not probe) w1") {
		t.Errorf("log does not say what it is:\n%s", sw.String())
	}
}

// TestAgentNeedsKey: an agent refuses to gossip without a key unless
// -insecure says so, and then says it in its log and its status.
func TestAgentNeedsKey(t *testing.T) {
	o, err := parseFlags([]string{"-name", "a", "-bind", "127.0.2.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newAgent(o, io.Discard); err == nil || !strings.Contains(err.Error(), "no -keyfile") || !strings.Contains(err.Error(), "-insecure") {
		t.Fatalf("keyless agent: %v, want a refusal naming -keyfile and -insecure", err)
	}
	o.keyFile, o.insecure = "/some/key", true
	if _, err := newAgent(o, io.Discard); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Fatalf("-keyfile and -insecure: %v", err)
	}
	o.keyFile = ""
	var logs strings.Builder
	sw := &syncWriter{w: &logs}
	a, err := newAgent(o, sw)
	if err != nil {
		t.Fatal(err)
	}
	defer a.node.Shutdown()
	if !strings.Contains(sw.String(), "INSECURE") {
		t.Errorf("no INSECURE line in the log:\n%s", sw.String())
	}
	if d := a.document(); d.Cluster == nil || !d.Cluster.Insecure {
		t.Errorf("status cluster %+v, want insecure", d.Cluster)
	}
}
