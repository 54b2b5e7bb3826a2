package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// grpcHealthServer serves the standard health service on loopback; the
// test sets statuses on the returned *health.Server.
func grpcHealthServer(t testing.TB, opts ...grpc.ServerOption) (string, *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String(), hs
}

// selfSigned is a certificate for 127.0.0.1 and health.example.test that
// nothing trusts.
func selfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "health.example.test"},
		DNSNames:     []string{"health.example.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func runCheck(t *testing.T, spec string) error {
	t.Helper()
	c, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Run(ctx)
}

func TestGRPCCheck(t *testing.T) {
	addr, hs := grpcHealthServer(t)
	hs.SetServingStatus("app.v1.Orders", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("app.v1.Billing", healthpb.HealthCheckResponse_NOT_SERVING)
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	// A gRPC server without the health service.
	bare := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		go s.Serve(ln)
		t.Cleanup(s.Stop)
		return ln.Addr().String()
	}()
	tests := []struct {
		spec string
		why  string // "" passes
	}{
		{"grpc " + addr, ""}, // the server as a whole is SERVING by default
		{"grpc " + addr + " service app.v1.Orders", ""},
		{"grpc " + addr + " service app.v1.Orders host orders.example.test", ""},
		{"grpc " + addr + " service app.v1.Billing", "status NOT_SERVING"},
		{"grpc " + addr + " service app.v1.Nope", `service "app.v1.Nope" unknown to the health server`},
		{"grpc " + refused, "connection refused"},
		{"grpc " + bare, "no grpc.health.v1 health service"},
		{"grpc " + addr + " tls insecure", "Unavailable"}, // TLS to a plaintext server
	}
	for _, tc := range tests {
		err := runCheck(t, tc.spec)
		if tc.why == "" {
			if err != nil {
				t.Errorf("%s: %v, want it to pass", tc.spec, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, want an error saying %q", tc.spec, err, tc.why)
		}
	}

	// The same check follows the server's status as it changes.
	spec := "grpc " + addr + " service app.v1.Orders"
	hs.SetServingStatus("app.v1.Orders", healthpb.HealthCheckResponse_NOT_SERVING)
	if err := runCheck(t, spec); err == nil || !strings.Contains(err.Error(), "NOT_SERVING") {
		t.Errorf("after NOT_SERVING: %v", err)
	}
	hs.Shutdown() // every service NOT_SERVING, as a server going away does
	if err := runCheck(t, "grpc "+addr); err == nil {
		t.Error("a shut-down health server passed")
	}
}

func TestGRPCCheckTLS(t *testing.T) {
	cert := selfSigned(t)
	addr, _ := grpcHealthServer(t, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	tests := []struct {
		spec string
		why  string
	}{
		{"grpc " + addr + " tls", "certificate"}, // nothing trusts it
		{"grpc " + addr + " host health.example.test tls", "certificate"},
		{"grpc " + addr + " tls insecure", ""},
		{"grpc " + addr + " host health.example.test tls insecure", ""},
		{"grpc " + addr, "Unavailable"}, // plaintext to a TLS server
	}
	for _, tc := range tests {
		err := runCheck(t, tc.spec)
		if tc.why == "" {
			if err != nil {
				t.Errorf("%s: %v, want it to pass", tc.spec, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, want an error saying %q", tc.spec, err, tc.why)
		}
	}
}

// A listener that accepts and never speaks is bounded by the timeout.
func TestGRPCCheckTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	c, _ := Parse("grpc " + ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Run(ctx)
	if err == nil {
		t.Fatal("a silent listener passed")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v, want the timeout to bound it", d)
	}
	if !strings.Contains(err.Error(), "no answer in time") {
		t.Errorf("error %q, want it to say it timed out", err)
	}
}
