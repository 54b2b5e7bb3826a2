package healthdns

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// The Corefiles in the READMEs parse as written, checks and all: a user
// copies them.
func TestReadmeCorefilesParse(t *testing.T) {
	root, _ := filepath.Abs("../..")
	fence := regexp.MustCompile("(?s)(?:```|~~~) ?corefile\n(.*?)\n(?:```|~~~)")
	token := tokenFile(t, "readme-token-0123456789")
	n := 0
	for _, file := range []string{"README.md", "plugin/healthdns/README.md"} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fence.FindAllStringSubmatch(string(b), -1) {
			if !strings.Contains(m[1], "healthdns {") {
				continue
			}
			block := healthdnsBlock(t, m[1])
			block = strings.ReplaceAll(block, "zones/", root+"/zones/")
			block = strings.ReplaceAll(block, "/etc/healthdns/control.token", token)
			c := caddy.NewTestController("dns", block)
			c.ServerBlockKeys = []string{"gslb.example.com."}
			if _, err := parse(c); err != nil {
				t.Errorf("%s: a Corefile does not parse: %v\n%s", file, err, block)
			}
			n++
		}
	}
	if n < 4 {
		t.Errorf("found %d Corefiles with a healthdns block, want at least 4", n)
	}
}
