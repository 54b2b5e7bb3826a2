// Package memlimit gives the Go runtime a soft memory limit from the
// container's, as automaxprocs gives GOMAXPROCS from its CPU quota.
//
// Without one the collector lets the heap grow to twice what is live
// before it collects: a server holding 300 MB of verdicts and records
// reaches 600 MB and more, and a pod limited to 512 MiB is killed. With
// the limit it collects harder as the heap nears it instead.
package memlimit

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// Ratio of the container's limit given to the Go heap: the rest is for
// goroutine stacks, the binary and what the kernel counts besides.
const Ratio = 0.9

// Set sets the soft memory limit to Ratio of the cgroup's memory limit,
// unless GOMEMLIMIT is set or there is no limit. It returns a line
// saying what it did, for the start-up log ("" when nothing to say).
func Set() string {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return "memlimit: GOMEMLIMIT=" + v + " from the environment"
	}
	limit, from := Cgroup("/")
	if limit <= 0 {
		return ""
	}
	soft := int64(float64(limit) * Ratio)
	debug.SetMemoryLimit(soft)
	return fmt.Sprintf("memlimit: Go memory limit %d MiB (%.0f%% of the cgroup's %d MiB, %s); set GOMEMLIMIT to choose another", soft>>20, Ratio*100, limit>>20, from)
}

// unlimited is above any real limit: cgroup v1 writes a page-rounded
// maximum int64 for none.
const unlimited = 1 << 60

// Cgroup returns this process's cgroup memory limit in bytes, and the
// file it came from, or 0 if there is none. root is the file system root
// (tests use a directory of their own).
func Cgroup(root string) (int64, string) {
	// The process's own group (v2, or v1's memory controller), then the
	// namespace's root (in a container with its own cgroup namespace the
	// two are the same). The first file that exists decides.
	var paths []string
	if b, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.SplitN(l, ":", 3)
			switch {
			case len(f) < 3:
			case f[0] == "0" && f[1] == "":
				paths = append(paths, filepath.Join(root, "sys/fs/cgroup", f[2], "memory.max"))
			case slices.Contains(strings.Split(f[1], ","), "memory"): // v1
				paths = append(paths, filepath.Join(root, "sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes"))
			}
		}
	}
	paths = append(paths,
		filepath.Join(root, "sys/fs/cgroup/memory.max"),
		filepath.Join(root, "sys/fs/cgroup/memory/memory.limit_in_bytes"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, p
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= unlimited {
			return 0, p
		}
		return n, p
	}
	return 0, ""
}
