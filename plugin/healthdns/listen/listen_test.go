package listen

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// At the bound, one more connection is closed at once; when a held one
// goes, a new one is served; an idle one is closed after its timeout.
func TestLimits(t *testing.T) {
	l := Limits{MaxConns: 2, ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: 300 * time.Millisecond}
	ln, err := Listen("test", "127.0.2.1:0", l)
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), l)
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial(), dial()
	defer a.Close()
	defer b.Close()
	if body, err := get(t, a); err != nil || body != "ok" {
		t.Fatalf("first connection: %q %v", body, err)
	}
	if body, err := get(t, b); err != nil || body != "ok" {
		t.Fatalf("second connection: %q %v", body, err)
	}
	// Both slots are held by keep-alive connections: a third is refused.
	c := dial()
	if body, err := get(t, c); err == nil {
		t.Fatalf("third connection over a bound of 2 answered %q", body)
	}
	c.Close()
	a.Close()
	start := time.Now()
	var served bool
	for time.Since(start) < 2*time.Second && !served {
		d := dial()
		body, err := get(t, d)
		d.Close()
		served = err == nil && body == "ok"
		time.Sleep(20 * time.Millisecond)
	}
	if !served {
		t.Fatal("no connection served after one of the two was closed")
	}
	// b idles past IdleTimeout: the server closes it, freeing its slot.
	b.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := b.Read(make([]byte, 1))
	if n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("idle keep-alive connection: read %d, %v; want closed by the server", n, err)
	}
	// A client that connects and sends nothing is closed after
	// ReadHeaderTimeout.
	s := dial()
	defer s.Close()
	s.SetReadDeadline(time.Now().Add(3 * time.Second))
	t0 := time.Now()
	if _, err := s.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("silent client: %v; want closed by the server", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("silent client closed after %v", d)
	}
}
