package healthdns

import (
	"bytes"
	stdlog "log"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/override"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"

	"github.com/prometheus/client_golang/prometheus"
)

// An override on a target of a name the webhook replaces in place (same
// FQDN, other addresses) follows the change on the incremental path, as
// a full rebuild would: the target the records let go loses its
// target_override series and its override is logged as ended, and one
// the records bring under the override is logged in force, in the very
// rebuild of the change, not at some later full rebuild (a steady
// cluster may never run one).
func TestRebuildSomeEndsOverrides(t *testing.T) {
	const origin = "ovinc.example.org."
	d, err := zone.Parse(strings.NewReader("$ORIGIN "+origin+"\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n"), "test.zone", origin)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config{zones: []*zone.Data{d}, ttl: 30}
	cfg.timing.interval, cfg.timing.timeout, cfg.timing.rise, cfg.timing.fall = time.Second, time.Second, 2, 2
	st := records.Memory(records.Options{})
	h := newHandler(cfg, probe.NewPool())
	h.storeRef = &storeRef{store: st}
	h.vs.ov = newOverrideState()
	defer func() { h.vs.ov = newOverrideState() }()

	var logs lockedBuffer
	stdlog.SetOutput(&logs)
	defer stdlog.SetOutput(os.Stderr)

	app := func(addrs ...string) records.Endpoint {
		return records.Endpoint{DNSName: "app." + strings.TrimSuffix(origin, "."), RecordType: "A", Targets: addrs,
			ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: "tcp {addr}:443"}}}
	}
	// other holds every address app moves between: their verdict
	// groups stay, so that app's changes are built incrementally.
	other := records.Endpoint{DNSName: "other." + strings.TrimSuffix(origin, "."), RecordType: "A", Targets: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"},
		ProviderSpecific: []records.Property{{Name: records.PropCheck, Value: "tcp {addr}:443"}}}
	if _, err := st.Apply("east", records.Changes{Create: []records.Endpoint{app("192.0.2.1", "192.0.2.2"), other}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sel, err := override.ParseSelector("app.ovinc.example.org/192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	h.vs.ov.book.Merge(now, override.Entry{Selector: sel, State: override.Drain, Who: "ops", Reason: "maintenance", At: now, Node: "dns1"})
	h.rebuild()
	const series = "app.ovinc.example.org. drain 192.0.2.2" // name, state, target
	if got := overrideSeries(t, origin); got != series {
		t.Fatalf("target_override before the change: %q, want %q", got, series)
	}
	if !strings.Contains(logs.String(), "in force for 1 targets") {
		t.Fatalf("no log line of the override in force:\n%s", logs.String())
	}

	// rebuild replaces app in place and says whether it ran incrementally.
	rebuild := func(e records.Endpoint) {
		t.Helper()
		logs.Reset()
		if _, err := st.Apply("east", records.Changes{UpdateNew: []records.Endpoint{e}}); err != nil {
			t.Fatal(err)
		}
		r0 := h.judge.Rounds()
		h.rebuild()
		if h.judge.Rounds() != r0 {
			t.Fatal("a name replaced in place was rebuilt in full")
		}
	}
	rebuild(app("192.0.2.1", "192.0.2.3"))
	if got := overrideSeries(t, origin); got != "" {
		t.Errorf("target_override after the records let 192.0.2.2 go: %q, want none", got)
	}
	if !strings.Contains(logs.String(), "ended for 1 targets") {
		t.Errorf("no log line of the override ended:\n%s", logs.String())
	}
	if n := len(h.vs.ov.forced); n != 0 {
		t.Errorf("%d targets still under an override", n)
	}

	rebuild(app("192.0.2.2", "192.0.2.3"))
	if got := overrideSeries(t, origin); got != series {
		t.Errorf("target_override after the records took 192.0.2.2 back: %q, want %q", got, series)
	}
	if !strings.Contains(logs.String(), "in force for 1 targets") {
		t.Errorf("no log line of the override in force again:\n%s", logs.String())
	}

	// Dropped in one rebuild, back in the next: ended, then in force
	// again, not taken for still in force.
	rebuild(app("192.0.2.3"))
	rebuild(app("192.0.2.2", "192.0.2.3"))
	if got := overrideSeries(t, origin); got != series {
		t.Errorf("target_override after the records let 192.0.2.2 go and took it back: %q, want %q", got, series)
	}
	if !strings.Contains(logs.String(), "in force for 1 targets") {
		t.Errorf("no log line of the override in force again:\n%s", logs.String())
	}
	rebuild(app("192.0.2.3"))
	if got := overrideSeries(t, origin); got != "" {
		t.Errorf("target_override after the records let 192.0.2.2 go again: %q, want none", got)
	}

	// A full rebuild agrees: nothing left to end, nothing in force.
	logs.Reset()
	h.inc.ok = false
	h.rebuild()
	if strings.Contains(logs.String(), "override") {
		t.Errorf("the full rebuild after logged overrides the incremental one should have:\n%s", logs.String())
	}
	if got := overrideSeries(t, origin); got != "" {
		t.Errorf("target_override after a full rebuild: %q, want none", got)
	}
}

// overrideSeries lists target_override's series of the names in origin,
// their labels in the order of their names.
func overrideSeries(t *testing.T, origin string) string {
	t.Helper()
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		if f.GetName() != "coredns_healthdns_target_override" {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetValue())
			}
			if len(ls) > 0 && strings.HasSuffix(ls[0], origin) {
				out = append(out, strings.Join(ls, " "))
			}
		}
	}
	return strings.Join(out, ", ")
}

// lockedBuffer is a log's output, read while others may still write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
