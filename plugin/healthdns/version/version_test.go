package version

import (
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	stamped := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{
			Main: debug.Module{Path: "github.com/healthdns/healthdns", Version: "v0.1.1-0.20261126120000-0123456789ab+dirty"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
				{Key: "vcs.time", Value: "2026-11-26T12:00:00Z"},
				{Key: "vcs.modified", Value: "true"},
			},
		}, true
	}
	devel := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/healthdns/healthdns", Version: "(devel)"}}, true
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }

	tests := []struct {
		name                  string
		version, commit, date string
		bi                    func() (*debug.BuildInfo, bool)
		want                  Info
	}{
		{"release build: -ldflags win", "v0.1.0", "abc", "2026-11-27T00:00:00Z", stamped,
			Info{Version: "v0.1.0", Commit: "abc", Date: "2026-11-27T00:00:00Z"}},
		{"go build in a checkout: the build info", "", "", "", stamped,
			Info{Version: "v0.1.1-0.20261126120000-0123456789ab+dirty", Commit: "0123456789abcdef0123456789abcdef01234567-dirty", Date: "2026-11-26T12:00:00Z"}},
		{"only a version by -ldflags: vcs fills the rest", "v0.2.0", "", "", stamped,
			Info{Version: "v0.2.0", Commit: "0123456789abcdef0123456789abcdef01234567-dirty", Date: "2026-11-26T12:00:00Z"}},
		{"no vcs information", "", "", "", devel, Info{Version: "(devel)"}},
		{"no build info at all", "", "", "", none, Info{Version: "(devel)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := read(tc.version, tc.commit, tc.date, tc.bi)
			if got.Version != tc.want.Version || got.Commit != tc.want.Commit || got.Date != tc.want.Date {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.CoreDNS != CoreDNS || !strings.HasPrefix(got.Go, "go") {
				t.Errorf("CoreDNS %q, Go %q", got.CoreDNS, got.Go)
			}
		})
	}
}

func TestString(t *testing.T) {
	s := Info{Version: "v0.1.0", Commit: "abc", CoreDNS: "1.15.0", Go: "go1.26.8"}.String()
	for _, want := range []string{"v0.1.0\n", "commit:  abc\n", "built:   unknown\n", "CoreDNS: 1.15.0\n", "go:      go1.26.8 "} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	if got := (Info{Version: "v0.1.0", CoreDNS: "1.15.0"}).Short(); got != "v0.1.0 (CoreDNS-1.15.0)" {
		t.Errorf("Short() = %q", got)
	}
}

// The agent links no CoreDNS, so CoreDNS is a constant: it must follow
// go.mod when CoreDNS is upgraded.
func TestCoreDNSIsGoModsRequirement(t *testing.T) {
	b, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/coredns/coredns v(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod requires no github.com/coredns/coredns")
	}
	if string(m[1]) != CoreDNS {
		t.Errorf("go.mod requires CoreDNS v%s, version.CoreDNS is %s", m[1], CoreDNS)
	}
}
