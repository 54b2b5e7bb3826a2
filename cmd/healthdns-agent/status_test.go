package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/status"
)

// TestStatusOwners: an agent that runs a webhook lists the owners of the
// records in its store, with their counts, in /status.
func TestStatusOwners(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "gossip.key")
	os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
	opts, err := parseFlags([]string{
		"-name", "agent-1", "-observer", "lab", "-bind", "127.0.0.1:0", "-keyfile", keyFile, "-label", "test", "-status", "127.0.0.1:0",
		"-webhook", "127.0.0.1:0", "-webhook-health", "off", "-owner", "west", "-data", filepath.Join(dir, "data"),
		"-domain-filter", "gslb.example.com", "-default-check", "tcp {addr}:443",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAgent(opts, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() { cancel(); <-done }()

	base := "http://" + a.status.Addr().String()
	owners := func() []status.Owner {
		t.Helper()
		var st status.Document
		if err := json.Unmarshal([]byte(get(t, base+"/status")), &st); err != nil {
			t.Fatal(err)
		}
		return st.Owners
	}
	if o := owners(); len(o) != 0 {
		t.Errorf("owners before any record: %+v", o)
	}
	if _, err := a.sidecar.store.Apply("west", records.Changes{Create: []records.Endpoint{
		{DNSName: "app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.10", "192.0.2.11"}},
		{DNSName: "app.gslb.example.com", RecordType: "TXT", Targets: []string{`"heritage=external-dns"`}},
	}}); err != nil {
		t.Fatal(err)
	}
	if o := owners(); len(o) != 1 || o[0].Name != "west" || o[0].Records != 2 {
		t.Errorf("owners after west wrote 2 records: %+v", o)
	}
}
