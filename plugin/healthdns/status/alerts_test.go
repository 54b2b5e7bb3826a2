package status

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestAlertRules checks docs/alerts.yml: it parses as a Prometheus rule
// file with the alerts operators rely on, and every metric it names is one
// that healthdns exports.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("../../../docs/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatal(err)
	}
	if len(file.Groups) != 1 || file.Groups[0].Name != "healthdns" {
		t.Fatalf("groups: %+v", file.Groups)
	}

	var exported strings.Builder
	for _, f := range []string{"../metrics.go", "../statemetrics.go", "../overrides.go", "../gossip/collector.go", "../../../cmd/healthdns-agent/metrics.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exported.Write(src)
	}
	metric := regexp.MustCompile(`coredns_healthdns_(\w+)`)

	want := map[string]struct{ expr, for_ string }{
		"HealthDNSTargetDown":        {"coredns_healthdns_target_healthy == 0", "1m"},
		"HealthDNSRecordTargetsDown": {`coredns_healthdns_record_series_limited == 1`, "1m"},
		"HealthDNSPartitioned":       {"coredns_healthdns_partitioned == 1", "30s"},
		"HealthDNSVoterSilent":       {"coredns_healthdns_voter_heard == 0", "1m"},
		"HealthDNSObserverSilent":    {"coredns_healthdns_observer_lag_seconds > 30", "1m"},
		"HealthDNSAnsweringFallback": {`sum by (instance, name, outcome) (rate(coredns_healthdns_answers_total{outcome=~"fallback|none"}[5m]))`, ""},
		"HealthDNSNameStandby":       {`coredns_healthdns_name_state{state="standby"} == 1`, "5m"},
		"HealthDNSGossipGarbled":     {`increase(coredns_healthdns_gossip_messages_total{result=~"garbled|oversized"}[10m])`, ""},
		"HealthDNSEdgeDisconnected":  {"coredns_healthdns_edge_connected == 0", "1m"},
		"HealthDNSEdgeRefused":       {"increase(coredns_healthdns_gossip_edge_refused_total[10m])", ""},
		"HealthDNSOverrideForgotten": {"coredns_healthdns_target_override) == 1", "12h"},
	}
	seen := map[string]bool{}
	for _, r := range file.Groups[0].Rules {
		seen[r.Alert] = true
		w, ok := want[r.Alert]
		if !ok {
			t.Errorf("unexpected alert %q", r.Alert)
			continue
		}
		if !strings.Contains(r.Expr, w.expr) {
			t.Errorf("%s: expr %q lacks %q", r.Alert, r.Expr, w.expr)
		}
		if r.For != w.for_ {
			t.Errorf("%s: for %q, want %q", r.Alert, r.For, w.for_)
		}
		if r.For != "" {
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for: %v", r.Alert, err)
			}
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: no summary or description", r.Alert)
		}
		for k, a := range r.Annotations {
			if strings.Count(a, "{{") != strings.Count(a, "}}") {
				t.Errorf("%s: annotation %s has unbalanced template braces", r.Alert, k)
			}
		}
		for _, m := range metric.FindAllStringSubmatch(r.Expr, -1) {
			if !strings.Contains(exported.String(), `"`+m[1]+`"`) {
				t.Errorf("%s: metric coredns_healthdns_%s is not exported", r.Alert, m[1])
			}
		}
	}
	for a := range want {
		if !seen[a] {
			t.Errorf("no alert %s", a)
		}
	}
}
