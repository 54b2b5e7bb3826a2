package main

import (
	"io"
	"strings"
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

func TestCheckNetworksFlag(t *testing.T) {
	args := []string{"-webhook", "localhost:8888", "-owner", "eu", "-data", t.TempDir(), "-domain-filter", "gslb.example.com", "-default-check", "tcp {addr}:443"}
	o, err := parseFlags(append(args, "-check-networks", "10.0.0.0/8, 192.0.2.7"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if nets, err := o.sidecar.checkNetworks(); err != nil || len(nets) != 2 || nets[1].String() != "192.0.2.7/32" {
		t.Errorf("-check-networks: %v %v", nets, err)
	}
	if _, err := parseFlags(append(args, "-check-networks", "10.0.0.0/8,intranet"), io.Discard); err == nil || !strings.Contains(err.Error(), `-check-networks "intranet"`) {
		t.Errorf("a bad network: %v", err)
	}
}
