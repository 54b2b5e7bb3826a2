// Package k8s tests the Helm chart (deploy/helm/healthdns) and the example
// values for the ExternalDNS chart: helm lint and helm template with every
// values file, strict decoding of every rendered object into its
// Kubernetes API type, and a run of what the chart renders as real
// processes on loopback. It is a module of its own, so that the Kubernetes
// API types stay out of healthdns's dependencies.
package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthdns/healthdns/test/testproc"
)

const (
	chartDir    = "../../deploy/helm/healthdns"
	examplesDir = "../../deploy/helm/examples"
	// helmVersion is what .ci/run installs and what this test installs
	// when it finds no helm.
	helmVersion = "v3.22.0"
	helmModule  = "helm.sh/helm/v3/cmd/helm@" + helmVersion
	// The ExternalDNS release whose chart the example values are for: the
	// chart is in its module, which test/externaldns already pins.
	externalDNSModule = "sigs.k8s.io/external-dns@v0.22.0"
)

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm returns the helm binary: $HELM, else helm in GOBIN or GOPATH/bin
// (where .ci/run's go install puts it), on PATH, or in this test's cache;
// else it installs helmVersion into the cache with go install. It skips
// the test only if none of that works (no helm and no module proxy).
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() { helmPath, helmErr = findHelm() })
	if helmErr != nil {
		t.Skipf("no helm: %v (install it: go install %s)", helmErr, helmModule)
	}
	return helmPath
}

func findHelm() (string, error) {
	if p := os.Getenv("HELM"); p != "" {
		return p, nil
	}
	var candidates []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "helm"))
	}
	if gopath := goEnv("GOPATH"); gopath != "" {
		for _, p := range filepath.SplitList(gopath) {
			candidates = append(candidates, filepath.Join(p, "bin", "helm"))
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		candidates = append(candidates, p)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	cacheBin := filepath.Join(cache, "healthdns-test", "helm-"+helmVersion)
	candidates = append(candidates, filepath.Join(cacheBin, "helm"))
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "go", "install", helmModule)
	install.Env = append(os.Environ(), "GOBIN="+cacheBin)
	if out, err := install.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", helmModule, err, out)
	}
	return filepath.Join(cacheBin, "helm"), nil
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// runHelm runs helm with args and returns its standard output, or fails
// the test with its standard error.
func runHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helmCmd(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// helmCmd runs helm and returns its standard output, or an error that
// holds its standard error.
func helmCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

var (
	edOnce sync.Once
	edDir  string
	edErr  error
)

// externalDNSChart returns the ExternalDNS chart's directory in the module
// cache, downloading the module if needed (its checksum is in
// test/externaldns's go.sum and the checksum database).
func externalDNSChart(t *testing.T) string {
	t.Helper()
	edOnce.Do(func() {
		// Outside any module, so no go.sum here changes.
		dl := exec.Command("go", "mod", "download", "-json", externalDNSModule)
		dl.Dir = os.TempDir()
		out, err := dl.Output()
		if err != nil {
			edErr = fmt.Errorf("go mod download %s: %v", externalDNSModule, err)
			return
		}
		var m struct{ Dir, Error string }
		if err := json.Unmarshal(out, &m); err != nil || m.Error != "" {
			edErr = fmt.Errorf("go mod download %s: %v %s", externalDNSModule, err, m.Error)
			return
		}
		edDir = filepath.Join(m.Dir, "charts", "external-dns")
	})
	if edErr != nil {
		t.Skip(edErr)
	}
	return edDir
}

var (
	binOnce sync.Once
	bins    *testproc.Binaries
	binErr  error
)

// binaries builds cmd/healthdns and cmd/healthdns-agent of the main module
// once, for the tests that run processes.
func binaries(t *testing.T) *testproc.Binaries {
	t.Helper()
	binOnce.Do(func() { bins, binErr = testproc.Build(filepath.Join("..", "..")) })
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins != nil {
		bins.Remove()
	}
	os.Exit(code)
}
