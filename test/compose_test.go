package test

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// There is no Docker engine here: docker-compose.yml is checked with a YAML
// parser for what a user would trip over first.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Build   string            `yaml:"build"`
			Ports   []string          `yaml:"ports"`
			Volumes []string          `yaml:"volumes"`
			Env     map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, want := range []string{"dns1", "dns2", "dns3", "agent1", "agent2", "east", "west"} {
		if _, ok := doc.Services[want]; !ok {
			t.Errorf("service %s missing", want)
		}
	}
	seen := map[string]string{}
	for name, s := range doc.Services {
		if s.Build != "." {
			t.Errorf("%s: build %q, want the repository's Dockerfile", name, s.Build)
		}
		for _, p := range s.Ports {
			host := p[:strings.LastIndex(p, ":")]
			proto := "tcp"
			if strings.HasSuffix(p, "/udp") {
				proto = "udp"
			}
			if other, dup := seen[host+proto]; dup {
				t.Errorf("%s and %s both publish %s/%s", name, other, host, proto)
			}
			seen[host+proto] = name
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasSuffix(src, "gossip.key") {
				continue // the user makes it, as the file's header says
			}
			if _, err := os.Stat("../" + src); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
		}
	}
	if _, err := os.Stat("../Dockerfile"); err != nil {
		t.Errorf("no Dockerfile for build: .: %v", err)
	}
}
