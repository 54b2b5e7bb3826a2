package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The cost of one probe of each kind against a loopback server, each on a
// new connection as in production: run side by side, the ratios say what
// a gRPC or body check costs an agent next to a TCP connect.
func BenchmarkProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"UP"}`)) }))
	defer srv.Close()
	grpcAddr, _ := grpcHealthServer(b)
	for _, tc := range []struct{ name, spec string }{
		{"tcp", "tcp " + ln.Addr().String()},
		{"http", srv.URL + "/"},
		{"http-body", srv.URL + `/ body {"status":"UP"}`},
		{"grpc", "grpc " + grpcAddr},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := Parse(tc.spec)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
