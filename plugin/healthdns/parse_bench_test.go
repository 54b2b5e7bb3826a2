package healthdns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// BenchmarkParseNames parses the healthdns block of test/bench/scale.sh:
// names of five targets each, at two sizes.
func BenchmarkParseNames(b *testing.B) {
	for _, targets := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("targets=%d", targets), func(b *testing.B) {
			var sb strings.Builder
			zf := filepath.Join(b.TempDir(), "zone")
			if err := os.WriteFile(zf, []byte("$ORIGIN gslb.example.com.\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.1\n"), 0o644); err != nil {
				b.Fatal(err)
			}
			sb.WriteString("healthdns gslb.example.com {\n zonefile " + zf + "\n interval 30s\n timeout 1s\n")
			for n := 0; n < targets/5; n++ {
				fmt.Fprintf(&sb, " name n%d {\n  quorum majority\n  fallback none\n", n)
				for t := 0; t < 5; t++ {
					i := n*5 + t
					a := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
					fmt.Fprintf(&sb, "  target %s check tcp %s:443\n", a, a)
				}
				sb.WriteString(" }\n")
			}
			sb.WriteString("}\n")
			in := sb.String()
			b.ResetTimer()
			for b.Loop() {
				c := caddy.NewTestController("dns", in)
				if _, err := parse(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
