package probe

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Reasons a check failed for want of this process's or machine's
// resources rather than because of the target. Bounded: they are metric
// label values.
const (
	LocalEMFILE        = "emfile"        // this process is out of file descriptors
	LocalENFILE        = "enfile"        // the machine is out of file descriptors
	LocalENOBUFS       = "enobufs"       // no socket buffer space
	LocalENOMEM        = "enomem"        // no memory for the socket
	LocalEADDRNOTAVAIL = "eaddrnotavail" // no local port left to connect from
	LocalShutdown      = "shutdown"      // the probe was cancelled: the process is stopping or reloading
)

// LocalReason returns why err is a local failure (one of the Local
// constants), or "" when err is nil or may be the target's fault. A
// local failure says nothing about the target: the pool counts that
// check's observation as unknown for the round, never as down, so a
// process that runs out of descriptors does not turn every target down.
func LocalReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.EMFILE):
		return LocalEMFILE
	case errors.Is(err, syscall.ENFILE):
		return LocalENFILE
	case errors.Is(err, syscall.ENOBUFS):
		return LocalENOBUFS
	case errors.Is(err, syscall.ENOMEM):
		return LocalENOMEM
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return LocalEADDRNOTAVAIL
	case errors.Is(err, context.Canceled):
		// The round's own timeout ends in DeadlineExceeded; Canceled
		// comes only from the pool's context, on release or shutdown.
		return LocalShutdown
	}
	// gRPC turns dial errors into status messages that do not wrap the
	// errno: match its dial error's text (ENFILE's contains EMFILE's, so
	// first). Only a dial's: a backend's own message must not be able to
	// turn its failure into unknown.
	msg := err.Error()
	if !strings.Contains(msg, "while dialing") {
		return ""
	}
	for _, l := range localErrnos {
		if strings.Contains(msg, l.errno.Error()) {
			return l.reason
		}
	}
	return ""
}

var localErrnos = []struct {
	errno  syscall.Errno
	reason string
}{
	{syscall.ENFILE, LocalENFILE}, {syscall.EMFILE, LocalEMFILE}, {syscall.ENOBUFS, LocalENOBUFS},
	{syscall.ENOMEM, LocalENOMEM}, {syscall.EADDRNOTAVAIL, LocalEADDRNOTAVAIL},
}

// Every allows one event per period, for log lines that could otherwise
// repeat on every probe. Safe for concurrent use.
type Every struct {
	period time.Duration
	next   atomic.Int64 // unix nanoseconds
}

// NewEvery returns an Every that allows one event per period.
func NewEvery(period time.Duration) *Every { return &Every{period: period} }

// Allow reports whether an event may happen now.
func (e *Every) Allow() bool {
	now := time.Now().UnixNano()
	n := e.next.Load()
	return now >= n && e.next.CompareAndSwap(n, now+int64(e.period))
}
