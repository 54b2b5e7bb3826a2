// Package version says which healthdns a binary is: its release version,
// commit and build date, and the CoreDNS release it is built on. A release
// build sets them with -ldflags (see the Makefile); any other build reads
// them from the Go build info (the module version and the vcs.* settings
// that `go build` records in a git checkout), so `go install` and
// `go run` builds say what they are too.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Set by -ldflags "-X github.com/healthdns/healthdns/plugin/healthdns/version.version=v0.1.0 ...".
var (
	version string // the release tag, e.g. v0.1.0
	commit  string // the full commit hash, with -dirty if the tree had changes
	date    string // the commit's date, RFC 3339, so that a rebuild is identical
)

// CoreDNS is the CoreDNS release healthdns is built on. The agent links no
// CoreDNS code, so it cannot be read from the build info there; a test
// keeps it equal to go.mod's requirement and to coremain.CoreVersion.
const CoreDNS = "1.15.0"

// Info is what a binary says about its build.
type Info struct {
	Version string // v0.1.0, a Go pseudo-version, or "(devel)"
	Commit  string // commit hash, "" if unknown; ends in -dirty for a modified tree
	Date    string // RFC 3339, "" if unknown
	CoreDNS string
	Go      string // the Go release it was built with
}

var (
	once sync.Once
	info Info
)

// Get returns the build information, computed once.
func Get() Info {
	once.Do(func() { info = read(version, commit, date, debug.ReadBuildInfo) })
	return info
}

// read prefers the -ldflags values and fills what they leave out from the
// build info.
func read(version, commit, date string, buildInfo func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: version, Commit: commit, Date: date, CoreDNS: CoreDNS, Go: runtime.Version()}
	bi, ok := buildInfo()
	if !ok {
		if i.Version == "" {
			i.Version = "(devel)"
		}
		return i
	}
	if i.Version == "" {
		i.Version = bi.Main.Version
	}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	var rev, at string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if i.Commit == "" && rev != "" {
		i.Commit = rev
		if modified {
			i.Commit += "-dirty"
		}
	}
	if i.Date == "" {
		i.Date = at
	}
	return i
}

// String is what -version prints after the program's name: one line per
// fact, so a bug report can paste it whole.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", i.Version)
	fmt.Fprintf(&b, "commit:  %s\n", orUnknown(i.Commit))
	fmt.Fprintf(&b, "built:   %s\n", orUnknown(i.Date))
	fmt.Fprintf(&b, "CoreDNS: %s\n", i.CoreDNS)
	fmt.Fprintf(&b, "go:      %s %s/%s\n", i.Go, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

// Short is the one-line form for CoreDNS's banner and the chaos plugin's
// version.bind answer: "v0.1.0 (CoreDNS-1.15.0)".
func (i Info) Short() string { return fmt.Sprintf("%s (CoreDNS-%s)", i.Version, i.CoreDNS) }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
