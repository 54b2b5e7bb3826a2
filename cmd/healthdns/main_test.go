package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
)

// TestUsablePlugins: every plugin `healthdns -plugins` lists is a
// directive a Corefile may use, and one linked in only as a dependency
// (transfer) is neither listed nor accepted.
func TestUsablePlugins(t *testing.T) {
	listed := usablePlugins()
	if !slices.Contains(listed, "healthdns") || !slices.Contains(listed, "cache") {
		t.Fatalf("-plugins lists %v: healthdns or cache is missing", listed)
	}
	registered := map[string]bool{}
	for _, name := range caddy.ListPlugins()["others"] {
		registered[strings.TrimPrefix(name, "dns.")] = true
	}
	accepts := func(directive string) error {
		_, err := caddyfile.Parse("Corefile", strings.NewReader("example.org {\n    "+directive+"\n}\n"), dnsserver.Directives)
		return err
	}
	for _, name := range listed {
		if !registered[name] {
			t.Errorf("-plugins lists %s, which is not registered", name)
		}
		if err := accepts(name); err != nil {
			t.Errorf("-plugins lists %s, but a Corefile naming it fails: %v", name, err)
		}
	}
	if !registered["transfer"] {
		t.Skip("transfer is no longer linked in; nothing to leave out")
	}
	if slices.Contains(listed, "transfer") {
		t.Errorf("-plugins lists transfer")
	}
	if err := accepts("transfer"); err == nil || !strings.Contains(err.Error(), "Unknown directive") {
		t.Errorf("a Corefile with transfer: %v, want Unknown directive (else list it)", err)
	}
}
