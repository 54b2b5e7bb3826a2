package gossip

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// Edge connections. An edge client (an agent or webhook sidecar that no
// server can reach: a pod in another cluster, a host behind NAT) opens
// one TCP connection to a server's client port and keeps it. The server
// carries what the client sends into the gossip cluster as if the client
// had gossiped it (edge_server.go); the client stays the only writer of
// its observations and of its owner's records (edge_client.go).
//
// The connection is authenticated and encrypted with the gossip key file,
// so a cluster needs no PKI: whoever holds the key may gossip, and so may
// connect. The handshake (plain, but nothing secret in it):
//
//	client: edgeMagic, client nonce (32 bytes)
//	server: server nonce (32 bytes)
//	client: HMAC-SHA256(key, "client" label nc ns)
//	server: HMAC-SHA256(key, "server" label nc ns), if a key of its
//	        keyring matches (rotation: any key of the file), else it
//	        hangs up and logs the refusal
//
// Both sides then derive per-direction AES-256-GCM keys,
// HMAC-SHA256(key, "c2s"/"s2c" label nc ns), and every frame is a 4-byte
// big-endian length and a sealed message (nonce: a per-direction
// counter). The label takes part so that two clusters never mix. Frames
// are bounded (maxEdgeIn from clients, maxEdgeOut to them).
//
// Messages are those of the kinds table (kinds.go) whose fromEdge or
// toEdge is set: gossip messages of the client's own (observations,
// heartbeats with the edge flag, its view whole on connect), its owner's
// record changes, and three of the connection's own:
//
//	edge hello   (20): client: name str, label str, role byte, flags byte
//	                   (1 = it probes: send the catalog), owner str ("" =
//	                   no records), head of the owner's records here
//	edge catalog (21): server: n uv, n × target, the catalog whole
//	edge stored  (22): server: owner str, head: the owner's records on
//	                   the server's disk are at head (after a client's
//	                   change, and on connect); also a keepalive
const (
	msgEdgeHello   byte = 20
	msgEdgeCatalog byte = 21
	msgEdgeStored  byte = 22

	edgeMagic = "HDEDGE1\n"
	nonceLen  = 32

	// maxEdgeIn bounds a frame from a client: a record part and some.
	maxEdgeIn = maxRecordDirect + 64<<10
	// maxEdgeOut bounds a frame to a client: a large catalog.
	maxEdgeOut = maxDirect
)

// Deadlines (variables for the tests).
var (
	// handshakeTimeout bounds the handshake and hello.
	handshakeTimeout = 5 * time.Second
	// edgeWriteTimeout bounds writing one frame, and reading one once it
	// started.
	edgeWriteTimeout = 10 * time.Second
	// edgeIdleMin is the least time a server waits for a word from a
	// client before it cuts it off.
	edgeIdleMin = 5 * time.Second
)

type edgeHello struct {
	Node   string
	Label  string
	Role   Role
	Probes bool
	Owner  string
	Head   records.Head
}

func (m *edgeHello) encode() []byte {
	b := appendHeader(nil, msgEdgeHello)
	b = appendString(b, m.Node)
	b = appendString(b, m.Label)
	b = append(b, byte(m.Role))
	b = appendBool(b, m.Probes)
	b = appendString(b, m.Owner)
	return records.AppendHead(b, m.Head)
}

func decodeEdgeHello(_ byte, d *decoder) (any, error) {
	m := &edgeHello{Node: d.node(), Label: d.string(maxLabelLen, "label length"), Role: d.role(true)}
	switch f := d.byte(); f {
	case 0, 1:
		m.Probes = f == 1
	default:
		d.fail(fmt.Errorf("bad hello flags %#x", f))
	}
	m.Owner = d.string(records.MaxOwnerLen, "owner length")
	if m.Owner != "" && d.err == nil {
		if err := records.CheckOwner(m.Owner); err != nil {
			d.fail(err)
		}
	}
	m.Head = d.head()
	return m, d.finish()
}

type edgeCatalog struct{ Targets []CatalogTarget }

func (m *edgeCatalog) encode() []byte {
	b := appendHeader(make([]byte, 0, 16+64*len(m.Targets)), msgEdgeCatalog)
	b = appendUvarint(b, uint64(len(m.Targets)))
	for _, t := range m.Targets {
		b = appendTarget(b, t)
	}
	return b
}

func decodeEdgeCatalog(_ byte, d *decoder) (any, error) {
	m := &edgeCatalog{}
	n := d.count(minTarget, "targets")
	for i := 0; i < n && d.err == nil; i++ {
		m.Targets = append(m.Targets, d.target())
	}
	return m, d.finish()
}

type edgeStored struct {
	Owner string
	Head  records.Head
}

func (m *edgeStored) encode() []byte {
	b := appendHeader(nil, msgEdgeStored)
	b = appendString(b, m.Owner)
	return records.AppendHead(b, m.Head)
}

func decodeEdgeStored(_ byte, d *decoder) (any, error) {
	m := &edgeStored{Owner: d.string(records.MaxOwnerLen, "owner length")}
	m.Head = d.head()
	return m, d.finish()
}

// secureConn is an authenticated, encrypted edge connection.
type secureConn struct {
	c      net.Conn
	seal   cipher.AEAD
	open   cipher.AEAD
	sendN  uint64
	recvN  uint64
	maxIn  int
	maxOut int
	lenBuf [4]byte
	// One nonce buffer per direction: a connection's reader and writer
	// run in goroutines of their own, and a nonce garbled by the other
	// direction could repeat under the same key.
	sealNonce, openNonce [12]byte
}

var errWrongKey = errors.New("the peer does not hold the gossip key (or uses another label)")

func edgeMAC(key []byte, what, label string, nc, ns []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(what))
	h.Write([]byte{byte(len(label))})
	h.Write([]byte(label))
	h.Write(nc)
	h.Write(ns)
	return h.Sum(nil)
}

func newSecure(c net.Conn, key []byte, label string, nc, ns []byte, client bool, maxIn, maxOut int) (*secureConn, error) {
	mk := func(what string) (cipher.AEAD, error) {
		blk, err := aes.NewCipher(edgeMAC(key, what, label, nc, ns))
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(blk)
	}
	c2s, err := mk("c2s")
	if err != nil {
		return nil, err
	}
	s2c, err := mk("s2c")
	if err != nil {
		return nil, err
	}
	s := &secureConn{c: c, maxIn: maxIn, maxOut: maxOut}
	if client {
		s.seal, s.open = c2s, s2c
	} else {
		s.seal, s.open = s2c, c2s
	}
	return s, nil
}

// clientHandshake proves to the server that this side holds key, and
// checks that the server does too.
func clientHandshake(c net.Conn, key []byte, label string) (*secureConn, error) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	nc := make([]byte, nonceLen)
	rand.Read(nc)
	if _, err := c.Write(append([]byte(edgeMagic), nc...)); err != nil {
		return nil, err
	}
	ns := make([]byte, nonceLen)
	if _, err := io.ReadFull(c, ns); err != nil {
		return nil, fmt.Errorf("handshake: %w (is it a healthdns client port?)", err)
	}
	if _, err := c.Write(edgeMAC(key, "client", label, nc, ns)); err != nil {
		return nil, err
	}
	mac := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, mac); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("refused by the server: %w", errWrongKey)
		}
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if !hmac.Equal(mac, edgeMAC(key, "server", label, nc, ns)) {
		return nil, fmt.Errorf("server: %w", errWrongKey)
	}
	return newSecure(c, key, label, nc, ns, true, maxEdgeOut, maxEdgeIn)
}

// serverHandshake checks that the client holds one of keys, and proves
// the same to it.
func serverHandshake(c net.Conn, keys [][]byte, label string) (*secureConn, error) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	hello := make([]byte, len(edgeMagic)+nonceLen)
	if _, err := io.ReadFull(c, hello); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if !bytes.Equal(hello[:len(edgeMagic)], []byte(edgeMagic)) {
		return nil, errors.New("handshake: not a healthdns edge client")
	}
	nc := hello[len(edgeMagic):]
	ns := make([]byte, nonceLen)
	rand.Read(ns)
	if _, err := c.Write(ns); err != nil {
		return nil, err
	}
	mac := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, mac); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	for _, k := range keys {
		if hmac.Equal(mac, edgeMAC(k, "client", label, nc, ns)) {
			if _, err := c.Write(edgeMAC(k, "server", label, nc, ns)); err != nil {
				return nil, err
			}
			return newSecure(c, k, label, nc, ns, false, maxEdgeIn, maxEdgeOut)
		}
	}
	return nil, errWrongKey
}

func nonceOf(buf *[12]byte, n uint64) []byte {
	binary.BigEndian.PutUint64(buf[4:], n)
	return buf[:]
}

// write seals and writes one message; not safe for concurrent use.
func (s *secureConn) write(msg []byte) error {
	if len(msg) > s.maxOut {
		return fmt.Errorf("edge: a %d-byte message is over the %d-byte limit", len(msg), s.maxOut)
	}
	out := make([]byte, 4, 4+len(msg)+s.seal.Overhead())
	out = s.seal.Seal(out, nonceOf(&s.sealNonce, s.sendN), msg, nil)
	s.sendN++
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	s.c.SetWriteDeadline(time.Now().Add(edgeWriteTimeout))
	_, err := s.c.Write(out)
	return err
}

// read reads and opens one message, waiting at most idle for it to
// start; not safe for concurrent use.
func (s *secureConn) read(idle time.Duration) ([]byte, error) {
	s.c.SetReadDeadline(time.Now().Add(idle))
	if _, err := io.ReadFull(s.c, s.lenBuf[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(s.lenBuf[:]))
	if n < s.open.Overhead() || n > s.maxIn+s.open.Overhead() {
		return nil, fmt.Errorf("edge: frame of %d bytes, limit %d", n, s.maxIn)
	}
	// A frame that started must arrive within the write timeout: a
	// trickle cannot hold the connection's buffer forever.
	s.c.SetReadDeadline(time.Now().Add(edgeWriteTimeout + idle))
	buf := make([]byte, n)
	if _, err := io.ReadFull(s.c, buf); err != nil {
		return nil, err
	}
	msg, err := s.open.Open(buf[:0], nonceOf(&s.openNonce, s.recvN), buf, nil)
	if err != nil {
		return nil, errors.New("edge: a frame failed authentication")
	}
	s.recvN++
	if len(msg) == 0 { // every message starts with its type byte
		return nil, errors.New("edge: an empty frame")
	}
	return msg, nil
}

func (s *secureConn) Close() error { return s.c.Close() }

// keysOf returns the keys of a gossip key file, primary first.
func keysOf(path string) ([][]byte, error) {
	if path == "" {
		return nil, errors.New("edge clients need a gossip key file (keyfile): it authenticates and encrypts their connections")
	}
	kr, err := LoadKeyring(path)
	if err != nil {
		return nil, err
	}
	return kr.GetKeys(), nil
}
