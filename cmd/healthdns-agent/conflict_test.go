package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
)

// TestAgentNameTaken: an agent started with the name of a live member
// stops with an error that says so, instead of logging "joined the
// cluster" while the cluster ignores it; and it does not leave in that
// member's name.
func TestAgentNameTaken(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
	first, err := gossip.New(gossip.Config{
		Name: "agent-1", Observer: "dc1", Role: gossip.RoleAgent,
		BindAddr: "127.0.0.1", KeyFile: keyFile, Label: "test",
		GossipInterval: 50 * time.Millisecond, PushPullInterval: time.Second, ProbeInterval: 200 * time.Millisecond,
		LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Shutdown()

	opts, err := parseFlags([]string{
		"-name", "agent-1", "-observer", "lab", "-bind", "127.0.0.1:0",
		"-join", first.Addr(), "-keyfile", keyFile, "-label", "test",
		"-gossip-interval", "50ms", "-pushpull-interval", "1s", "-member-probe-interval", "200ms", "-leave-timeout", "1s",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	w := &syncWriter{w: &logs}
	a, err := newAgent(opts, w)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, gossip.ErrNameTaken) || !strings.Contains(err.Error(), first.Addr()) {
			t.Errorf("run: %v, want ErrNameTaken naming %s", err, first.Addr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent with a name already alive is still running after 10 s")
	}
	w.mu.Lock()
	out := logs.String()
	w.mu.Unlock()
	for _, bad := range []string{"joined the cluster", "leaving the cluster"} {
		if strings.Contains(out, bad) {
			t.Errorf("the log says %q:\n%s", bad, out)
		}
	}
	// The member that had the name is still a member in good standing.
	if ms := first.Members(); len(ms) != 1 || ms[0].Name != "agent-1" || ms[0].State != gossip.MemberAlive {
		t.Errorf("the first agent-1 sees %+v", ms)
	}
}
