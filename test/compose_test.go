package test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeBuild is a service's build: "." or {context: ., target: STAGE}.
type composeBuild struct {
	Context string `yaml:"context"`
	Target  string `yaml:"target"`
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

// There is no Docker engine here: docker-compose.yml is checked with a YAML
// parser for what a user would trip over first.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Build   composeBuild      `yaml:"build"`
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
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatalf("no Dockerfile for build: .: %v", err)
	}
	// The servers' DNS port in the container is the Corefile's.
	corefile, err := os.ReadFile("../deploy/compose/Corefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\S+:(\d+) \{`).FindSubmatch(corefile)
	if m == nil {
		t.Fatal("deploy/compose/Corefile: no ZONE:PORT server block")
	}
	dnsPort := string(m[1])
	seen := map[string]string{}
	for name, s := range doc.Services {
		if s.Build.Context != "." {
			t.Errorf("%s: build context %q, want the repository's Dockerfile", name, s.Build.Context)
		}
		if s.Build.Target != "" && !regexp.MustCompile(`(?mi)^FROM \S+ AS `+regexp.QuoteMeta(s.Build.Target)+`$`).Match(dockerfile) {
			t.Errorf("%s: build target %q is not a stage of the Dockerfile", name, s.Build.Target)
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
			if strings.HasPrefix(name, "dns") && strings.Contains(p, "/") {
				if inner := strings.TrimSuffix(strings.TrimSuffix(p[strings.LastIndex(p, ":")+1:], "/udp"), "/tcp"); inner != dnsPort {
					t.Errorf("%s publishes container port %s, the Corefile listens on %s", name, inner, dnsPort)
				}
			}
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
}
