// Package testproc runs healthdns's binaries as real processes for the
// end-to-end tests of this module and of test/externaldns (a module of its
// own): one build of both binaries, processes stopped in t.Cleanup with
// their output in the log of a failed test, and bounded polling.
package testproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binaries are the paths of the built binaries.
type Binaries struct {
	Server, Agent string
	dir           string
}

// Build builds cmd/healthdns and cmd/healthdns-agent of the module at
// moduleDir into a temporary directory that Remove deletes.
func Build(moduleDir string) (*Binaries, error) {
	dir, err := os.MkdirTemp("", "healthdns-bin-")
	if err != nil {
		return nil, err
	}
	// One build for both: with several packages, -o names a directory.
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/healthdns", "./cmd/healthdns-agent")
	build.Dir = moduleDir
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build ./cmd/healthdns ./cmd/healthdns-agent in %s: %v\n%s", moduleDir, err, out)
	}
	return &Binaries{Server: filepath.Join(dir, "healthdns"), Agent: filepath.Join(dir, "healthdns-agent"), dir: dir}, nil
}

// Remove deletes the binaries.
func (b *Binaries) Remove() { os.RemoveAll(b.dir) }

// Poll calls cond every step until it returns true or timeout passes, and
// returns the time taken and whether cond became true. The number of calls
// is bounded too, so a slow cond cannot keep it going.
func Poll(timeout, step time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	deadline := start.Add(timeout)
	for i := 0; i < int(timeout/step)+2; i++ {
		if cond() {
			return time.Since(start), true
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(step)
	}
	return time.Since(start), false
}

// SyncBuffer collects a process's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Process is a running binary.
type Process struct {
	Cmd  *exec.Cmd
	Out  *SyncBuffer
	Done chan struct{} // closed when the process has exited
	Err  error         // Wait's result, valid after Done
}

// Start starts cmd with its output collected and stops it in t.Cleanup;
// what names the process in the log of a failed test.
func Start(t testing.TB, what string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, Out: &SyncBuffer{}, Done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	go func() {
		p.Err = cmd.Wait()
		close(p.Done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", what, p.Out.String())
		}
	})
	return p
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.Done:
		return true
	default:
		return false
	}
}

// Stop ends the process: SIGTERM, then SIGKILL if it is still there after
// 5 s.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(5 * time.Second):
		p.Cmd.Process.Kill()
		<-p.Done
	}
}
