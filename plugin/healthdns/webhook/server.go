package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/listen"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server runs a webhook on its two listeners, as ExternalDNS expects of a
// sidecar: the provider API (default localhost:8888) and, apart from it,
// /healthz and /metrics (default :8080).
type Server struct {
	api, health         *http.Server
	apiLn, healthLn     net.Listener
	apiDone, healthDone chan struct{}
}

// Listen binds addr for the provider API and, unless healthAddr is empty,
// healthAddr for /healthz and /metrics (gatherer's metrics, or the
// default registry's when nil), and serves them until Shutdown.
func Listen(w *Webhook, addr, healthAddr string, gatherer prometheus.Gatherer) (*Server, error) {
	s := &Server{}
	ln, err := listen.Listen("webhook", addr, apiLimits)
	if err != nil {
		return nil, fmt.Errorf("webhook: listen on %s: %w", addr, err)
	}
	s.apiLn = ln
	s.api = listen.Server(w, apiLimits)
	if healthAddr != "" {
		hl, err := listen.Listen("webhook-health", healthAddr, listen.Default)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("webhook: health listener on %s: %w", healthAddr, err)
		}
		if gatherer == nil {
			gatherer = prometheus.DefaultGatherer
		}
		mux := http.NewServeMux()
		mux.Handle("/healthz", w.Health())
		mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
		s.healthLn, s.health = hl, listen.Server(mux, listen.Default)
	}
	s.apiDone = serve(s.api, s.apiLn)
	if s.health != nil {
		s.healthDone = serve(s.health, s.healthLn)
	}
	return s, nil
}

// apiLimits: ExternalDNS's client gives up after its read + write
// timeouts (15 s by default); these only bound clients that stall. One
// ExternalDNS needs a connection or two.
var apiLimits = listen.Limits{
	MaxConns:          64,
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       time.Minute,
	WriteTimeout:      time.Minute,
	IdleTimeout:       2 * time.Minute,
}

func serve(srv *http.Server, ln net.Listener) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return done
}

// Addr is the provider API's address (with the port picked, for ":0").
func (s *Server) Addr() string { return s.apiLn.Addr().String() }

// HealthAddr is the health listener's address, or "" without one.
func (s *Server) HealthAddr() string {
	if s.healthLn == nil {
		return ""
	}
	return s.healthLn.Addr().String()
}

// Shutdown stops both listeners, waiting for requests in flight (an
// acknowledged batch is already on disk) until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.api.Shutdown(ctx)
	<-s.apiDone
	if s.health != nil {
		err = errors.Join(err, s.health.Shutdown(ctx))
		<-s.healthDone
	}
	return err
}
