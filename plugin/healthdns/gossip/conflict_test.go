package gossip_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
)

// lines collects log lines.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestJoinWithNameTaken: a node that joins with the name of a live member
// is refused (memberlist would keep the member it knew and ignore the
// newcomer), and both sides say why in their logs. A node with a name of
// its own joins.
func TestJoinWithNameTaken(t *testing.T) {
	key := keyFile(t, newKey(t))
	var oldLog, newLog lines
	a := testConfig(t, "agent1", "east", gossip.RoleAgent, key, "t")
	a.LogOutput = &oldLog
	first := start(t, a)
	b := testConfig(t, "agent1", "west", gossip.RoleAgent, key, "t")
	b.LogOutput = &newLog
	second := start(t, b)
	_, err := second.Join(first.Addr())
	if !errors.Is(err, gossip.ErrNameTaken) || !strings.Contains(err.Error(), first.Addr()) {
		t.Fatalf("join with a name already alive: %v, want ErrNameTaken naming %s", err, first.Addr())
	}
	if !strings.Contains(newLog.String(), "is also named agent1") {
		t.Errorf("the newcomer's log does not report the conflict:\n%s", newLog.String())
	}
	waitFor(t, 2*time.Second, "the first agent1 reports the conflict", func() bool {
		return strings.Contains(oldLog.String(), "[ERR] healthdns gossip: the member at "+second.Addr()+" is also named agent1")
	})
	if strings.Count(oldLog.String(), "healthdns gossip: the member at") != 1 {
		t.Errorf("the conflict is logged more than once per address:\n%s", oldLog.String())
	}

	third := start(t, testConfig(t, "agent2", "west", gossip.RoleAgent, key, "t"))
	if _, err := third.Join(first.Addr()); err != nil {
		t.Errorf("a node with a name of its own: %v", err)
	}
}
