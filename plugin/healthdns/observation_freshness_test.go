package healthdns

import (
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

// TestPeerObservation: another observer's observation of a target counts
// until the observer is silent past its window, or its view is older than
// the target's own timing allows (or stale, when set); a dead observer's
// is unknown at once.
func TestPeerObservation(t *testing.T) {
	now := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	fast := targetConfig{TargetSpec: &targetSpec{ID: 1, Probe: &probe.Target{Interval: time.Second, Timeout: 500 * time.Millisecond}}}
	slow := targetConfig{TargetSpec: &targetSpec{ID: 2, Probe: &probe.Target{Interval: time.Minute, Timeout: 2 * time.Second}}}
	view := func(lastHeard, heard time.Duration, alive bool) gossip.ObserverView {
		return gossip.ObserverView{
			Node: "a1", Alive: alive, LastHeard: now.Add(-lastHeard), Heard: now.Add(-heard), Silence: 1600 * time.Millisecond,
			States: map[gossip.TargetID]health.State{1: health.Up, 2: health.Up},
		}
	}
	for _, tc := range []struct {
		name   string
		stale  time.Duration
		v      gossip.ObserverView
		t      targetConfig
		counts bool
	}{
		{"live and on schedule", 0, view(200*time.Millisecond, 100*time.Millisecond, true), fast, true},
		{"silent past its window: dead or cut off", 0, view(200*time.Millisecond, 1700*time.Millisecond, true), fast, false},
		{"heard, but its probes stalled past interval and lag", 0, view(2700*time.Millisecond, 100*time.Millisecond, true), fast, false},
		{"the same age is fresh for a 60 s check", 0, view(2700*time.Millisecond, 100*time.Millisecond, true), slow, true},
		{"stale overrides the per-target rule", 30 * time.Second, view(20*time.Second, 100*time.Millisecond, true), fast, true},
		{"stale does not outlast silence", 30 * time.Second, view(200*time.Millisecond, 1700*time.Millisecond, true), fast, false},
		{"a dead observer says nothing", 0, view(0, 0, false), fast, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &HealthDNS{cfg: &config{cluster: &clusterConfig{stale: tc.stale}}}
			o := h.peerObservation(tc.v, tc.t.ID, tc.t.Probe.Interval)
			if got := o.State == health.Up && o.Fresh(now); got != tc.counts {
				t.Errorf("counts %v (state %v until %v), want %v", got, o.State, o.Until.Sub(now), tc.counts)
			}
		})
	}
}
