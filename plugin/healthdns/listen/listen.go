// Package listen opens the HTTP listeners of healthdns servers and agents
// (status, webhook, the webhook's health and metrics, edge clients) with
// one protection for all: a bound on the connections open at once and
// read, write and idle timeouts. Idle or slow clients then cost at most
// that many descriptors, so they cannot starve the probes and the DNS
// listeners of the process. It owns nothing else: handlers are the
// callers'.
package listen

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Limits bound one listener.
type Limits struct {
	// MaxConns is how many connections may be open at once; one more is
	// accepted and closed at once, so it fails fast rather than waiting
	// in the kernel's queue.
	MaxConns          int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration // from the end of the request headers to the end of the reply
	IdleTimeout       time.Duration // a keep-alive connection between requests
}

// Default is for the read-only listeners (status, metrics, health): small
// requests, replies of at most a few megabytes.
var Default = Limits{
	MaxConns:          128,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       30 * time.Second,
}

var refused = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "coredns", // plugin.Namespace, without importing CoreDNS into the agent
	Subsystem: "healthdns",
	Name:      "listener_refused_total",
	Help:      "Connections closed on accept because the listener already had its maximum open, by listener.",
}, []string{"listener"})

// Listen listens on TCP addr with at most l.MaxConns connections open at
// once; name labels the refusals in the metric (status, webhook, ...).
func Listen(name, addr string, l Limits) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return Limit(name, ln, l.MaxConns), nil
}

// Limit wraps ln so that at most max connections are open at once
// (max <= 0: Default.MaxConns).
func Limit(name string, ln net.Listener, max int) net.Listener {
	if max <= 0 {
		max = Default.MaxConns
	}
	return &limited{Listener: ln, slots: make(chan struct{}, max), refused: refused.WithLabelValues(name)}
}

// Server returns an http.Server for h with l's timeouts.
func Server(h http.Handler, l Limits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
	}
}

type limited struct {
	net.Listener
	slots   chan struct{}
	refused prometheus.Counter
}

func (l *limited) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &conn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			// Full: close at once. Waiting instead would leave this
			// client and every later one queued with no answer.
			l.refused.Inc()
			c.Close()
		}
	}
}

type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
