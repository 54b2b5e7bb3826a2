package gossip

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

func edgeTestServer(t *testing.T) (*Node, string, []byte) {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	kf := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(kf, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Name: "s1", Role: RoleServer, BindAddr: "127.0.0.1", KeyFile: kf, Label: "test", LogOutput: io.Discard,
		GossipInterval: 100 * time.Millisecond, HeartbeatInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	addr, err := n.ServeEdge("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	return n, addr.String(), k
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEdgeHostileClients: a client that stops reading, one that sends an
// oversized frame, one that never finishes its handshake, and more
// clients than the limit are cut off; the server goes on serving.
func TestEdgeHostileClients(t *testing.T) {
	// Restored after the server's own cleanup has stopped it (cleanups
	// run last first): its goroutines read them until then.
	w, h, i := edgeWriteTimeout, handshakeTimeout, edgeIdleMin
	t.Cleanup(func() { edgeWriteTimeout, handshakeTimeout, edgeIdleMin = w, h, i })
	// Short write and handshake deadlines; a long idle one, so that only
	// those cut clients off here.
	edgeWriteTimeout, handshakeTimeout, edgeIdleMin = 300*time.Millisecond, 300*time.Millisecond, time.Minute
	n, addr, key := edgeTestServer(t)
	connect := func(name string, probes bool) (*secureConn, net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		sc, err := clientHandshake(c, key, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.write((&edgeHello{Node: name, Label: name, Role: RoleAgent, Probes: probes}).encode()); err != nil {
			t.Fatal(err)
		}
		return sc, c
	}
	connected := func(name string) bool {
		for _, c := range n.EdgeClients() {
			if c == name {
				return true
			}
		}
		return false
	}

	// A client that never reads, sent a catalog larger than the socket
	// buffers: cut off once a write is past its deadline.
	connect("sleeper", true)
	waitUntil(t, 2*time.Second, "the sleeper connected", func() bool { return connected("sleeper") })
	var cat []CatalogTarget
	for i := range 20000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		c, err := probe.ParseTCPCheck(fmt.Sprintf("%s:80", a))
		if err != nil {
			t.Fatal(err)
		}
		ct, err := NewCatalogTarget(probe.Target{Addr: a, Checks: []probe.Check{c}, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2})
		if err != nil {
			t.Fatal(err)
		}
		cat = append(cat, ct)
	}
	// Catalogs of about 1 MB each, until the socket buffers are full.
	start := time.Now()
	for i := 0; i < 40 && connected("sleeper"); i++ {
		if err := n.PublishCatalog(cat[i:]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * edgeSettle)
	}
	waitUntil(t, 10*time.Second, "the sleeper cut off", func() bool { return !connected("sleeper") })
	t.Logf("a client that does not read was cut off %v after the first catalog", time.Since(start).Round(time.Millisecond))

	// A frame over the limit: cut off before it is read.
	_, raw := connect("giant", false)
	waitUntil(t, 2*time.Second, "the giant connected", func() bool { return connected("giant") })
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], maxEdgeIn+1024)
	raw.Write(hdr[:])
	waitUntil(t, 2*time.Second, "the giant cut off", func() bool { return !connected("giant") })

	// A handshake that never ends, and more connections than the limit
	// (3): the slow ones are closed after the handshake timeout; then a
	// client connects as usual.
	var slow []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
		t.Cleanup(func() { c.Close() })
	}
	for _, c := range slow {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 64)); err == nil || os.IsTimeout(err) {
			t.Fatalf("a connection that sent nothing was kept: %v", err)
		}
	}
	connect("ok", true)
	waitUntil(t, 2*time.Second, "a good client connected", func() bool { return connected("ok") })
	if r := n.edgeSrv().refused.Load(); r < 4 {
		t.Fatalf("%d refusals counted, want at least 4", r)
	}
}
