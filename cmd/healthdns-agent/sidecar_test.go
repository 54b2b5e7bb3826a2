package main

import (
	"io"
	"testing"
)

// TestWebhookHealthDefault: with -webhook, /healthz and /metrics listen on
// :8080 for the kubelet, as ExternalDNS recommends for a provider sidecar,
// unless -webhook-health moves them or turns them off.
func TestWebhookHealthDefault(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, ":8080"},
		{[]string{"-webhook-health", "127.0.0.1:9080"}, "127.0.0.1:9080"},
		{[]string{"-webhook-health", "off"}, ""},
	} {
		args := []string{"-webhook", "localhost:8888", "-owner", "eu", "-data", t.TempDir(), "-domain-filter", "gslb.example.com", "-default-check", "tcp {addr}:443"}
		o, err := parseFlags(append(args, c.args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if o.sidecar.health != c.want {
			t.Errorf("%q: health listener %q, want %q", c.args, o.sidecar.health, c.want)
		}
	}
}
