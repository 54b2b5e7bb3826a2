package healthdns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// healthdnsBlock cuts the healthdns directive and its block out of a
// Corefile.
func healthdnsBlock(t *testing.T, corefile string) string {
	t.Helper()
	i := strings.Index(corefile, "healthdns {")
	if i < 0 {
		t.Fatal("no healthdns block")
	}
	depth := 0
	for j := i; j < len(corefile); j++ {
		switch corefile[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return corefile[i : j+1]
			}
		}
	}
	t.Fatal("unbalanced braces")
	return ""
}

// The shipped Corefiles must parse: a user copies them first.
func TestExampleCorefilesParse(t *testing.T) {
	root, _ := filepath.Abs("../..")
	key := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(key, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file    string
		names   int
		cluster bool
	}{
		{"Corefile.example", 5, false},
		{"deploy/compose/Corefile", 1, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(root, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			block := healthdnsBlock(t, string(b))
			block = strings.ReplaceAll(block, "zones/", root+"/zones/")
			block = strings.ReplaceAll(block, "/etc/healthdns/gossip.key", key)
			block = strings.ReplaceAll(block, "{$NODE}", "dns1")
			c := caddy.NewTestController("dns", block)
			c.ServerBlockKeys = []string{"gslb.example.com."}
			cfg, err := parse(c)
			if err != nil {
				t.Fatalf("%s does not parse: %v", tc.file, err)
			}
			if len(cfg.names) != tc.names || (cfg.cluster != nil) != tc.cluster {
				t.Errorf("%s: %d names, cluster %v", tc.file, len(cfg.names), cfg.cluster != nil)
			}
		})
	}
}
