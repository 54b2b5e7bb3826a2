package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// TestExampleCorefiles: every Corefile a user is shown (the embedded
// example, the compose demo, the cluster demo script and the server blocks
// in the READMEs) parses with this build's directives, caps UDP answers at
// 1232 bytes (bufsize; DNS Flag Day 2020) and leaves the per-query log
// out, as the README says.
func TestExampleCorefiles(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	examples := map[string]string{
		"Corefile.example":        read("Corefile.example"),
		"deploy/compose/Corefile": read("deploy/compose/Corefile"),
	}
	demo := read("test/cluster-demo.sh")
	if i, j := strings.Index(demo, "<<CF\n"), strings.Index(demo, "\nCF\n"); i >= 0 && j > i {
		examples["test/cluster-demo.sh"] = strings.NewReplacer("$((i + 1))", "1", "$ip", "127.0.0.11", "$join", "127.0.0.12:7946").Replace(demo[i+5 : j])
	} else {
		t.Fatal("test/cluster-demo.sh: no Corefile here-document")
	}
	fence := regexp.MustCompile("(?s)(?:```|~~~) ?corefile\n(.*?)(?:```|~~~)")
	for _, readme := range []string{"README.md", "plugin/healthdns/README.md"} {
		for i, m := range fence.FindAllStringSubmatch(read(readme), -1) {
			first := strings.Fields(m[1])
			if len(first) > 1 && strings.Contains(first[0], ".") && first[1] == "{" { // a whole server block
				examples[fmt.Sprintf("%s, block %d", readme, i+1)] = m[1]
			}
		}
	}
	if len(examples) < 6 {
		t.Fatalf("found only %d example Corefiles", len(examples))
	}
	for name, text := range examples {
		blocks, err := caddyfile.Parse(name, strings.NewReader(text), dnsserver.Directives)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, b := range blocks {
			size := b.Tokens["bufsize"]
			if len(size) != 2 || size[1].Text != "1232" {
				t.Errorf("%s: server block %v has no bufsize 1232", name, b.Keys)
			}
			if _, ok := b.Tokens["log"]; ok {
				t.Errorf("%s: server block %v enables log (one line per query); the README says the examples leave it out", name, b.Keys)
			}
		}
	}
}
