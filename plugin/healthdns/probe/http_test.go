package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the bytes a check reads from the network.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// countReads makes every check dial through a counter until the test ends.
func countReads(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	old := dial
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := old(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{conn, &n}, nil
	}
	t.Cleanup(func() { dial = old })
	return &n
}

func TestHTTPBody(t *testing.T) {
	const tenMB = 10 << 20
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/up":
			w.Write([]byte(`{"status":"UP","checks":[]}`))
		case "/degraded":
			w.Write([]byte(`{"status":"DEGRADED"}`))
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"UP"}`)) // the status decides first
		case "/huge", "/huge-late":
			// 10 MB, the text either at the very start or after the window.
			chunk := []byte(strings.Repeat("x", 32<<10))
			if r.URL.Path == "/huge" {
				w.Write([]byte("ready"))
			}
			for i := 0; i < tenMB/len(chunk); i++ {
				n, err := w.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
			w.Write([]byte("ready"))
		case "/edge":
			// The text straddles the last byte of the window.
			w.Write([]byte(strings.Repeat("x", BodyWindow-3) + "ready"))
		case "/inside":
			w.Write([]byte(strings.Repeat("x", BodyWindow-5) + "ready"))
		}
	}))
	defer srv.Close()
	read := countReads(t)
	tests := []struct {
		path, body string
		ok         bool
		why        string
	}{
		{"/up", `"status":"UP"`, true, ""},
		{"/degraded", `"status":"UP"`, false, `body (21 bytes) does not contain "\"status\":\"UP\""`},
		{"/down", `"status":"UP"`, false, "status 503"},
		{"/huge", "ready", true, ""},
		{"/huge-late", "ready", false, "in its first 65536 bytes"},
		{"/edge", "ready", false, "in its first 65536 bytes"},
		{"/inside", "ready", true, ""},
	}
	for _, tc := range tests {
		c, err := Parse(srv.URL + tc.path + " body " + quoteWord(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		read.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		err = c.Run(ctx)
		cancel()
		if (err == nil) != tc.ok {
			t.Errorf("%s body %q: err=%v, want ok=%v", tc.path, tc.body, err, tc.ok)
		} else if err != nil && !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s body %q: %v, want it to say %q", tc.path, tc.body, err, tc.why)
		}
		// Headers and one read buffer past the window at most.
		if n := read.Load(); n > BodyWindow+16<<10 {
			t.Errorf("%s: read %d bytes from the network, want no more than the %d-byte window and headers", tc.path, n, BodyWindow)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", tc.path, d)
		}
	}
	// The server could not have pushed the 10 MB body through: the probe
	// hung up after the window.
	if n := sent.Load(); n >= 2*tenMB {
		t.Errorf("the server wrote %d bytes of the two 10 MB bodies: the check read them whole", n)
	}
}

// Without a body option the body is not read at all.
func TestHTTPStatusOnlyReadsNoBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 1<<20)))
	}))
	defer srv.Close()
	read := countReads(t)
	c, err := Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := read.Load(); n > BodyWindow {
		t.Errorf("read %d bytes for a status check", n)
	}
}

// The host option is the Host header and, for https, the TLS server name
// without its port.
func TestHTTPSHostIsServerName(t *testing.T) {
	var gotSNI, gotHost atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotSNI.Store(r.TLS.ServerName)
		gotHost.Store(r.Host)
	}))
	srv.StartTLS()
	defer srv.Close()
	c, err := Parse(srv.URL + "/ host app.example.com:8443 insecure")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if gotSNI.Load() != "app.example.com" || gotHost.Load() != "app.example.com:8443" {
		t.Errorf("server name %q, Host %q; want app.example.com and app.example.com:8443", gotSNI.Load(), gotHost.Load())
	}
	// Without insecure the test server's certificate is refused.
	c, _ = Parse(srv.URL + "/")
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed certificate: %v, want a certificate error", err)
	}
}
