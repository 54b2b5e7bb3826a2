package gossip

import (
	"testing"
)

// TestTargetIDsDoNotChange pins target IDs as the wire carries them: an ID
// is the hash of the target's probe key, so a change to the key's format
// would make servers and agents of two versions disagree on every target
// during a rolling upgrade.
func TestTargetIDsDoNotChange(t *testing.T) {
	for _, c := range []struct {
		addr   string
		checks []string
		want   string
	}{
		{"192.0.2.10", []string{"tcp 192.0.2.10:443"}, "c7b9052fd9ee0aef"},
		{"2001:db8::1", []string{"http://[2001:db8::1]:8080/healthz", "tcp [2001:db8::1]:443"}, "3ef7714a3518eedf"},
		{"198.51.100.7", []string{"https://198.51.100.7/ready host app.example.com status 200,204"}, "829b17a7679ceb0f"},
	} {
		ct := testTarget(t, c.addr, c.checks...)
		if got := ct.ID.String(); got != c.want {
			t.Errorf("ID of %s %v = %s, want %s", c.addr, c.checks, got, c.want)
		}
	}
}
