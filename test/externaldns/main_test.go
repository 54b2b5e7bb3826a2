package externaldns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// serverBinary and agentBinary are cmd/healthdns and cmd/healthdns-agent
// of the main module (../..), built by TestMain for the tests that run
// real processes.
var serverBinary, agentBinary string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "healthdns-externaldns-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	serverBinary = filepath.Join(dir, "healthdns")
	agentBinary = filepath.Join(dir, "healthdns-agent")
	// Built in the main module (its go.mod, its dependencies), which this
	// module replaces github.com/healthdns/healthdns with.
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/healthdns", "./cmd/healthdns-agent")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/healthdns ./cmd/healthdns-agent (in ../..): %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
