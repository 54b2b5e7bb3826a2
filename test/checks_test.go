package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// This file's processes and listeners use 127.0.0.230-239: the server on
// .230, the backends its checks point at on .231 and up.

// grpcCorefile: app is active-standby over two gRPC services, east in
// plaintext and west over TLS with a certificate nothing trusts (hence
// insecure).
const grpcCorefile = `gslb.example.com:%[1]s {
    bind 127.0.0.230
    errors
    healthdns {
        zonefile %[2]s
        interval 200ms
        timeout 150ms
        rise 2
        fall 2
        name app {
            policy priority
            ttl 5
            target 192.0.2.30    tier 1 check grpc %[3]s service app.v1.Orders
            target 198.51.100.30 tier 2 check grpc %[4]s service app.v1.Orders host orders.example.test tls insecure
        }
    }
}
`

// A healthdns process checks two real gRPC health servers: when east's
// turns NOT_SERVING, app fails over to west within interval × fall plus
// slack, the log says why, and app comes back when east is SERVING
// again.
func TestGRPCFailover(t *testing.T) {
	dir := t.TempDir()
	eastAddr, east := startGRPCHealth(t, "127.0.0.231", nil)
	cert := selfSignedCert(t, "orders.example.test")
	westAddr, west := startGRPCHealth(t, "127.0.0.232", &cert)
	east.SetServingStatus("app.v1.Orders", healthpb.HealthCheckResponse_SERVING)
	west.SetServingStatus("app.v1.Orders", healthpb.HealthCheckResponse_SERVING)

	addr := freeAddrOn(t, "127.0.0.230")
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	s := startServer(t, dir, addr, fmt.Sprintf(grpcCorefile, portOf(t, addr), zf, eastAddr, westAddr))

	appEast, appWest := []string{"192.0.2.30"}, []string{"198.51.100.30"}
	for _, network := range []string{"udp", "tcp"} {
		assertAnswer(t, s.query(t, network, "app.gslb.example.com", dns.TypeA, false), network+" app A", appEast, 5)
	}

	d := s.waitChange(t, "udp", "app.gslb.example.com", appEast, appWest, func() {
		east.SetServingStatus("app.v1.Orders", healthpb.HealthCheckResponse_NOT_SERVING)
	})
	t.Logf("failover on NOT_SERVING took %v (bound %v)", d, failBound)
	if d > failBound {
		t.Errorf("failover took %v, want at most interval*fall + 1s = %v", d, failBound)
	}
	// The operator sees why, with the check that failed.
	want := "target 192.0.2.30 is down, was up (rise 2, fall 2, every 200ms): grpc " + eastAddr + " service app.v1.Orders: status NOT_SERVING"
	if _, ok := poll(5*time.Second, 50*time.Millisecond, func() bool { return strings.Contains(s.Out.String(), want) }); !ok {
		t.Errorf("the log does not say %q", want)
	}

	d = s.waitChange(t, "udp", "app.gslb.example.com", appWest, appEast, func() {
		east.SetServingStatus("app.v1.Orders", healthpb.HealthCheckResponse_SERVING)
	})
	t.Logf("recovery took %v (bound %v)", d, riseBound)
	if d > riseBound {
		t.Errorf("recovery took %v, want at most interval*rise + 1s = %v", d, riseBound)
	}

	// West's TLS check passed all along; when it fails too, nothing is
	// healthy and the fallback (all) answers both.
	east.SetServingStatus("app.v1.Orders", healthpb.HealthCheckResponse_NOT_SERVING)
	s.waitAnswer(t, "tcp", "app.gslb.example.com", appWest, failBound)
	west.SetServingStatus("app.v1.Orders", healthpb.HealthCheckResponse_NOT_SERVING)
	s.waitAnswer(t, "tcp", "app.gslb.example.com", sorted("192.0.2.30", "198.51.100.30"), failBound)
}

// startGRPCHealth serves grpc.health.v1 on ip (over TLS with cert if
// given) in this process; the test sets statuses on the returned server.
func startGRPCHealth(t *testing.T, ip string, cert *tls.Certificate) (string, *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(cert)))
	}
	s := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String(), hs
}

// selfSignedCert is a certificate for name that nothing trusts.
func selfSignedCert(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
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

// freeAddrOn returns ip:PORT with PORT free for both TCP and UDP right now.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatalf("no free TCP+UDP port on %s", ip)
	return ""
}

// bodyCorefile: web is active-standby over two HTTP endpoints that both
// answer 200; only the body says whether east is ready.
const bodyCorefile = `gslb.example.com:%[1]s {
    bind 127.0.0.230
    errors
    healthdns {
        zonefile %[2]s
        interval 200ms
        timeout 150ms
        rise 2
        fall 2
        name web {
            policy priority
            ttl 5
            target 192.0.2.31    tier 1 check http://%[3]s/ready body "status: ready"
            target 198.51.100.31 tier 2 check http://%[4]s/ready status 200,204
        }
    }
}
`

// A body check in a Corefile (quoted text with a space) takes a target
// out when its body changes though its status stays 200.
func TestBodyFailover(t *testing.T) {
	dir := t.TempDir()
	var body atomic.Value
	body.Store("status: ready")
	east := startHTTP(t, "127.0.0.233", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body.Load().(string))) })
	west := startHTTP(t, "127.0.0.234", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	addr := freeAddrOn(t, "127.0.0.230")
	zf := writeFile(t, dir, "gslb.zone", zoneText)
	s := startServer(t, dir, addr, fmt.Sprintf(bodyCorefile, portOf(t, addr), zf, east, west))

	webEast, webWest := []string{"192.0.2.31"}, []string{"198.51.100.31"}
	assertAnswer(t, s.query(t, "udp", "web.gslb.example.com", dns.TypeA, false), "web A", webEast, 5)
	d := s.waitChange(t, "udp", "web.gslb.example.com", webEast, webWest, func() { body.Store("status: draining") })
	t.Logf("failover on a body change took %v (bound %v)", d, failBound)
	if d > failBound {
		t.Errorf("failover took %v, want at most %v", d, failBound)
	}
	want := `body (16 bytes) does not contain "status: ready"`
	if _, ok := poll(5*time.Second, 50*time.Millisecond, func() bool { return strings.Contains(s.Out.String(), want) }); !ok {
		t.Errorf("the log does not say %q", want)
	}
	d = s.waitChange(t, "udp", "web.gslb.example.com", webWest, webEast, func() { body.Store("status: ready") })
	if d > riseBound {
		t.Errorf("recovery took %v, want at most %v", d, riseBound)
	}
}

// startHTTP serves h on ip in this process and returns its address.
func startHTTP(t *testing.T, ip string, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
