package externaldns

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/healthdns/healthdns/test/testproc"
)

// serverBinary and agentBinary are cmd/healthdns and cmd/healthdns-agent
// of the main module (../..), built by TestMain for the tests that run
// real processes.
var serverBinary, agentBinary string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// Built in the main module (its go.mod, its dependencies), which this
	// module replaces github.com/healthdns/healthdns with.
	bins, err := testproc.Build(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer bins.Remove()
	serverBinary, agentBinary = bins.Server, bins.Agent
	return m.Run()
}
