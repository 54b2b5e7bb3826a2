package healthdns

import (
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
)

// freshness gives each snapshot its deadline (snapshot.ValidUntil), so that
// a server resumed after a pause (SIGSTOP, a frozen VM or container) does
// not answer health-aware names from what it knew before: its peers may
// have dropped a dead target long ago.
//
// Rebuilds run at least every second, and each renews the deadline to
// window from its start; a snapshot not renewed in time expires by itself,
// and ServeDNS (which reads the monotonic clock once per health-aware
// answer) answers its health-aware names SERVFAIL, so resolvers ask
// another server. A gap between rebuilds longer than window, on the
// monotonic or the wall clock (a frozen VM may stop the first), is a stall:
// the deadline stays expired until a rebuild rests on fresh evidence only.
// This server's probes have all finished a round since the stall was
// noticed (the pool lets that first round decide at once), and in a
// cluster the judge is not partitioned and some peer's observations are
// newer than the stall. If that does not happen within window (this server
// is cut off, say), the usual partition rules decide again.
//
// freshness is not safe for concurrent use; rebuild serialises it.
type freshness struct {
	window  time.Duration
	last    time.Time // the previous rebuild
	stalled time.Time // the last rebuild before a stall; zero unless recovering
	resumed time.Time // the rebuild that noticed it
}

// evidence is what a rebuild's verdicts rest on, for freshness.
type evidence struct {
	probing     bool
	ownChecked  time.Time // the oldest latest round of this server's probes
	cluster     bool
	partitioned bool
	peerHeard   time.Time // the newest observation round of a live peer
}

// defaultFreshness is the window of a server with no targets of its own.
const defaultFreshness = 10 * time.Second

// minFreshness keeps the window above the rebuild loop's one-second beat,
// so a loaded machine does not pass for a paused one.
const minFreshness = 3 * time.Second

// freshnessWindow is how long a snapshot stays valid without a rebuild:
// the cluster's explicit stale, else as long as an observation of the
// quickest target stays fresh (2 × interval + timeout, the rule observers
// are judged by), at least minFreshness.
func freshnessWindow(cfg *config) time.Duration {
	if cfg.cluster != nil && cfg.cluster.stale > 0 {
		return cfg.cluster.stale
	}
	w := time.Duration(0)
	for _, t := range cfg.probeTargets() {
		if d := 2*t.Interval + t.Timeout; w == 0 || d < w {
			w = d
		}
	}
	if w == 0 {
		return defaultFreshness
	}
	return max(w, minFreshness)
}

// until returns the deadline of the snapshot built at now, and logs when a
// stall begins and ends.
func (f *freshness) until(now time.Time, ev evidence) time.Time {
	if !f.last.IsZero() {
		gap, wall := now.Sub(f.last), now.Round(0).Sub(f.last.Round(0))
		if gap > f.window || wall > f.window {
			if f.stalled.IsZero() {
				log.Warningf("stalled for %s (the process was paused or starved): answering health-aware names with SERVFAIL until fresh observations arrive", max(gap, wall).Round(time.Millisecond))
			}
			f.stalled, f.resumed = f.last, now
		}
	}
	f.last = now
	if !f.resumed.IsZero() {
		fresh := (!ev.probing || ev.ownChecked.After(f.resumed)) &&
			(!ev.cluster || (!ev.partitioned && ev.peerHeard.After(f.stalled)))
		waited := now.Sub(f.resumed)
		if !fresh && waited < f.window {
			return f.stalled // already past: SERVFAIL
		}
		if fresh {
			log.Infof("fresh observations %s after the stall: answering health-aware names again", waited.Round(time.Millisecond))
		} else {
			log.Warningf("no fresh observations %s after the stall: answering health-aware names again under the usual partition rules", waited.Round(time.Millisecond))
		}
		f.stalled, f.resumed = time.Time{}, time.Time{}
	}
	return now.Add(f.window)
}

// evidenceOf gathers what freshness needs from a rebuild's inputs: the
// same read of this server's probes (own) as its verdicts.
func (h *HealthDNS) evidenceOf(views []gossip.ObserverView, probing bool, own map[string]ownRead) evidence {
	ev := evidence{probing: probing, cluster: h.member != nil, partitioned: h.judge.Partitioned()}
	if probing {
		for _, r := range own {
			if c := r.checked; !c.IsZero() && (ev.ownChecked.IsZero() || c.Before(ev.ownChecked)) {
				ev.ownChecked = c
			}
		}
		if ev.ownChecked.IsZero() {
			ev.probing = false // nothing probed yet: no old view to distrust
		}
	}
	for _, v := range views {
		if v.Alive && v.State != gossip.MemberLeft && v.LastHeard.After(ev.peerHeard) {
			ev.peerHeard = v.LastHeard
		}
	}
	return ev
}
