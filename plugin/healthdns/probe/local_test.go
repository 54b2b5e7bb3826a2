package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/health"
)

func TestLocalReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("connection refused"), ""},
		{syscall.ECONNREFUSED, ""},
		{context.DeadlineExceeded, ""},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}, LocalEMFILE},
		{fmt.Errorf("get: %w", &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.ENFILE)}), LocalENFILE},
		{os.NewSyscallError("connect", syscall.ENOBUFS), LocalENOBUFS},
		{syscall.ENOMEM, LocalENOMEM},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}, LocalEADDRNOTAVAIL},
		{fmt.Errorf("probe: %w", context.Canceled), LocalShutdown},
		// gRPC's status errors carry the text only.
		{errors.New("rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 192.0.2.1:50051: socket: " + syscall.EMFILE.Error() + "\""), LocalEMFILE},
		{errors.New("transport: Error while dialing: dial tcp: socket: " + syscall.ENFILE.Error()), LocalENFILE},
		{errors.New("status 503 " + syscall.EMFILE.Error()), ""}, // the backend's words
	} {
		if got := LocalReason(tc.err); got != tc.want {
			t.Errorf("LocalReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestEMFILEIsUnknown runs out of file descriptors for real: with the
// process's descriptor limit lowered to what it has open, a TCP check
// cannot open its socket. The target must turn unknown, not down, the
// result must say emfile, and it must be up again once descriptors are
// back, without waiting for rise rounds.
func TestEMFILEIsUnknown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, _ := ParseTCPCheck(ln.Addr().String())
	tg := Target{Addr: netip.MustParseAddr("192.0.2.1"), Checks: []Check{c}, Interval: 30 * time.Millisecond, Timeout: 25 * time.Millisecond, Rise: 2, Fall: 1}
	p := NewPool()
	var mu sync.Mutex
	locals := map[string]int{}
	var downs int
	p.OnResult = func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		if r.Local != "" {
			locals[r.Local]++
		}
	}
	p.OnChange = func(_ *Target, _, to health.State, _ string) {
		mu.Lock()
		defer mu.Unlock()
		if to == health.Down {
			downs++
		}
	}
	release := p.Acquire([]Target{tg})
	defer release()
	waitState(t, p, tg.Key(), health.Up, 2*time.Second)

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	// ReadDir's own descriptor is closed again: this is exactly what is open.
	low := old
	low.Cur = uint64(len(fds) - 1)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	// Fill the holes below the limit, so no descriptor is left.
	var hold []*os.File
	restored := false
	restore := func() {
		if !restored {
			restored = true
			for _, f := range hold {
				f.Close()
			}
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	for range 1000 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		hold = append(hold, f)
	}
	waitState(t, p, tg.Key(), health.Unknown, 2*time.Second)
	st := p.Status(tg.Key())
	restore()
	if !strings.Contains(st.Err, "local error (emfile") {
		t.Errorf("status error %q does not say it was a local emfile", st.Err)
	}
	waitState(t, p, tg.Key(), health.Up, 2*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if downs != 0 {
		t.Errorf("the target went down %d times while only this process lacked descriptors", downs)
	}
	if locals[LocalEMFILE] == 0 {
		t.Errorf("no result counted as emfile: %v", locals)
	}
}
