package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpc HOST:PORT: the gRPC health checking protocol (grpc.health.v1, what
// Kubernetes gRPC probes ask). SERVING passes; any other status or an
// error fails, with the status or the error's code and text as the reason.
var grpcKind = kindSpec{
	name:    "grpc",
	word:    true,
	options: []string{"service", "host", "tls", "insecure"},
	validate: func(c *Check, addr string) error {
		if _, _, err := splitHostPort(addr); err != nil {
			return fmt.Errorf("grpc check %q: %v", c.Addr, err)
		}
		return nil
	},
	newProber: newGRPCProber,
}

type grpcProber struct {
	target  string
	service string
	opts    []grpc.DialOption
}

func newGRPCProber(c Check) prober {
	creds := insecure.NewCredentials()
	if c.TLS {
		cfg := &tls.Config{InsecureSkipVerify: c.Insecure}
		if c.Host != "" {
			cfg.ServerName = c.Host
			if h, _, err := net.SplitHostPort(c.Host); err == nil {
				cfg.ServerName = h
			}
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dial(ctx, "tcp", addr)
		}),
		grpc.WithUserAgent("healthdns-probe"),
		grpc.WithDisableServiceConfig(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(4 << 10)),
	}
	if c.Host != "" {
		opts = append(opts, grpc.WithAuthority(c.Host))
	}
	// passthrough: resolve the host as the tcp check does, not by grpc's
	// own DNS resolver.
	return &grpcProber{target: "passthrough:///" + c.Addr, service: c.Service, opts: opts}
}

func (p *grpcProber) probe(ctx context.Context) error {
	// A new connection for every probe, as for HTTP: a kept one would
	// hide a listener that stopped accepting.
	conn, err := grpc.NewClient(p.target, p.opts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: p.service})
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no answer in time: %v", status.Convert(err).Message())
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.NotFound:
			return fmt.Errorf("service %q unknown to the health server (%s)", p.service, st.Message())
		case codes.Unimplemented:
			return fmt.Errorf("no grpc.health.v1 health service (%s)", st.Message())
		}
		return fmt.Errorf("%s: %s", st.Code(), st.Message())
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %s", s)
	}
	return nil
}
