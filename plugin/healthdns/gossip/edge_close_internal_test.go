package gossip

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedLog keeps log lines for a test to look for.
type lockedLog struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *lockedLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(b)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

func edgeKeyFile(t *testing.T) (string, []byte) {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, k
}

// TestEdgeEmptyFrame: an authenticated frame with an empty message (a
// buggy or hostile key holder) closes the connection with an error on
// either side; it must not crash the server or the client.
func TestEdgeEmptyFrame(t *testing.T) {
	kf, key := edgeKeyFile(t)
	var slog lockedLog
	n, err := New(Config{Name: "s1", Observer: "dc1", Role: RoleServer, BindAddr: "127.0.6.2", KeyFile: kf, Label: "test",
		HeartbeatInterval: 300 * time.Millisecond, LogOutput: &slog})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	addr, err := n.ServeEdge("127.0.6.2:0", 0)
	if err != nil {
		t.Fatal(err)
	}

	// Client to server.
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := clientHandshake(c, key, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.write((&edgeHello{Node: "edge1", Label: "eu", Role: RoleAgent}).encode()); err != nil {
		t.Fatal(err)
	}
	if err := sc.write(nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := sc.read(time.Second); err != nil {
			break // closed by the server
		}
		if time.Now().After(deadline) {
			t.Fatal("the server kept a connection that sent an empty message")
		}
	}
	if !waitLog(&slog, "an empty frame") {
		t.Errorf("the server did not say why it closed the connection: %s", slog.String())
	}

	// Server to client.
	ln, err := net.Listen("tcp", "127.0.6.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var clog lockedLog
	ec, err := NewEdgeClient(EdgeConfig{Name: "edge2", Servers: []string{ln.Addr().String()}, KeyFile: kf, Label: "test", LogOutput: &clog})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close(false)
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	sconn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close()
	ss, err := serverHandshake(sconn, [][]byte{key}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss.read(time.Second); err != nil { // the hello
		t.Fatal(err)
	}
	if err := ss.write(nil); err != nil {
		t.Fatal(err)
	}
	sconn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, sconn); err != nil {
		t.Fatalf("the client kept a connection whose server sent an empty message: %v", err)
	}
	if !waitLog(&clog, "an empty frame") {
		t.Errorf("the client did not say why it closed the connection: %s", clog.String())
	}
}

func waitLog(l *lockedLog, s string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(l.String(), s) {
			return true
		}
	}
	return false
}

// TestEdgeCloseDuringConnect: a client closed while a connection is being
// made (a handshake under way) ends, even though the server completes the
// handshake afterwards and keeps the connection busy.
func TestEdgeCloseDuringConnect(t *testing.T) {
	kf, key := edgeKeyFile(t)
	ln, err := net.Listen("tcp", "127.0.6.4:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ec, err := NewEdgeClient(EdgeConfig{Name: "edge3", Servers: []string{ln.Addr().String()}, KeyFile: kf, Label: "test",
		HeartbeatInterval: 100 * time.Millisecond, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello := make([]byte, len(edgeMagic)+nonceLen)
	if _, err := io.ReadFull(c, hello); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { ec.Close(false); close(closed) }()
	time.Sleep(200 * time.Millisecond) // Close is waiting for the session
	// The server's side of the handshake, late.
	nc := hello[len(edgeMagic):]
	ns := make([]byte, nonceLen)
	rand.Read(ns)
	c.Write(ns)
	mac := make([]byte, 32)
	if _, err := io.ReadFull(c, mac); err != nil {
		t.Fatal(err)
	}
	c.Write(edgeMAC(key, "server", "test", nc, ns))
	sc, err := newSecure(c, key, "test", nc, ns, false, maxEdgeIn, maxEdgeOut)
	if err != nil {
		t.Fatal(err)
	}
	// The keepalives must not outlive the test: others set the timeouts
	// they read.
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() { // keepalives, as a server sends them
		defer close(done)
		for range 100 {
			if sc.write((&edgeStored{}).encode()) != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return: the connection made meanwhile keeps the client running")
	}
}

// TestEdgeShutdownDuringHandshake: a server that shuts down while a client
// is in its handshake returns, though the client then completes it and
// keeps sending heartbeats.
func TestEdgeShutdownDuringHandshake(t *testing.T) {
	kf, key := edgeKeyFile(t)
	n, err := New(Config{Name: "s2", Observer: "dc1", Role: RoleServer, BindAddr: "127.0.6.5", KeyFile: kf, Label: "test",
		HeartbeatInterval: 300 * time.Millisecond, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := n.ServeEdge("127.0.6.5:0", 0)
	if err != nil {
		n.Shutdown()
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		n.Shutdown()
		t.Fatal(err)
	}
	defer c.Close()
	nc := make([]byte, nonceLen)
	rand.Read(nc)
	c.Write(append([]byte(edgeMagic), nc...))
	ns := make([]byte, nonceLen)
	if _, err := io.ReadFull(c, ns); err != nil {
		n.Shutdown()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { n.Shutdown(); close(done) }()
	time.Sleep(200 * time.Millisecond) // Shutdown is waiting for the handshake
	c.Write(edgeMAC(key, "client", "test", nc, ns))
	mac := make([]byte, 32)
	if _, err := io.ReadFull(c, mac); err == nil {
		sc, err := newSecure(c, key, "test", nc, ns, true, maxEdgeOut, maxEdgeIn)
		if err != nil {
			t.Fatal(err)
		}
		sc.write((&edgeHello{Node: "edge4", Label: "eu", Role: RoleAgent}).encode())
		go func() { // heartbeats, as a client sends them
			st := newState("edge4", "eu", RoleAgent, 1, time.Hour)
			st.self.edge = true
			for range 100 {
				if sc.write(st.heartbeat(time.Now()).encode()) != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not return: the session admitted meanwhile keeps the server running")
	}
}
