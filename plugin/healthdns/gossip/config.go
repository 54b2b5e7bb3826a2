package gossip

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Role says what a node does in the cluster.
type Role uint8

const (
	// RoleServer answers DNS and publishes the catalog of targets it serves.
	RoleServer Role = 1
	// RoleAgent probes the catalog's targets and publishes observations.
	RoleAgent Role = 2
	// RoleWitness is an agent that also votes: it counts toward the
	// majority of servers that decides whether a server may act (the
	// third voter of a two-datacenter cluster). It serves no DNS.
	RoleWitness Role = 3
)

func (r Role) String() string {
	switch r {
	case RoleServer:
		return "server"
	case RoleAgent:
		return "agent"
	case RoleWitness:
		return "witness"
	}
	return "unknown"
}

// Votes reports whether nodes of role r count toward the majority that
// lets a server act: servers and witnesses do, agents do not.
func (r Role) Votes() bool { return r == RoleServer || r == RoleWitness }

func (r Role) valid() bool { return r == RoleServer || r == RoleAgent || r == RoleWitness }

// Config configures a Node. Zero durations take memberlist's
// DefaultLANConfig values (gossip every 200ms, push/pull every 30s, probe
// every 1s).
type Config struct {
	// Name is the node's name, unique in the cluster (default: host name).
	Name string
	// DurableRecords: this node will keep records in a data directory.
	// Until that store is attached (a cold start, a store that cannot
	// open yet), edge clients' record writes are taken but not
	// acknowledged: an acknowledgement from memory could be lost.
	DurableRecords bool
	// Observer is the node's location label, e.g. "eu-west-1".
	Observer string
	// Role is RoleServer, RoleAgent or RoleWitness (default RoleServer).
	Role Role

	// BindAddr and BindPort are where gossip listens (UDP and TCP);
	// default 0.0.0.0:7946. Port 0 picks a free port: see Node.Addr.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what other nodes dial, when not
	// the bind address (NAT, 0.0.0.0 binds).
	AdvertiseAddr string
	AdvertisePort int

	// Join lists host:port addresses of members to join. Join uses them
	// and, while the node is alone, it retries them every RejoinInterval.
	Join []string
	// KeyFile holds one base64 key (16, 24 or 32 bytes) per line; the
	// first encrypts, all decrypt, so keys can be rotated. Empty means no
	// encryption (for tests and single machines only).
	KeyFile string
	// Label is carried on every packet and stream; nodes with another
	// label are refused, so two clusters never mix.
	Label string

	GossipInterval   time.Duration
	PushPullInterval time.Duration
	ProbeInterval    time.Duration
	// HeartbeatInterval is how often the node re-announces itself even
	// with nothing new (default 2 × GossipInterval). Servers tell a
	// silent node by its heartbeats (see SilenceWindow), and confirm a
	// verdict change by hearing a majority of voters after it, so this
	// bounds how late a change is applied.
	HeartbeatInterval time.Duration
	// RejoinInterval is how often a node alone retries Join, and how
	// often a node tries to join a few of the members it thinks dead, to
	// heal a partition (default 10s).
	RejoinInterval time.Duration
	// Retention is how long the state of a node not heard from is kept
	// (default 10m), and how long a dead member is tried again. A dead
	// server's catalog stays in Catalog that long.
	Retention time.Duration

	// LogOutput receives memberlist's log lines (default os.Stderr).
	LogOutput io.Writer

	// wrapTransport, for tests, wraps the node's network transport (to
	// cut it off from some addresses).
	wrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
	// deaf, for tests, drops every gossip delta received while it is
	// set (heartbeats among them); pings, acks and direct messages pass.
	deaf *atomic.Bool
}

// Defaults.
const (
	defaultRejoin    = 10 * time.Second
	defaultRetention = 10 * time.Minute
	inboxDepth       = 4096
	maxQueued        = 8192 // broadcasts kept queued; older ones are pruned
)

func (c *Config) fill() error {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("gossip: no node name and no host name: %w", err)
		}
		c.Name = h
	}
	if len(c.Name) > maxNameLen {
		return fmt.Errorf("gossip: node name longer than %d bytes", maxNameLen)
	}
	if len(c.Observer) > maxLabelLen {
		return fmt.Errorf("gossip: observer label longer than %d bytes", maxLabelLen)
	}
	if c.Role == 0 {
		c.Role = RoleServer
	}
	if !c.Role.valid() {
		return fmt.Errorf("gossip: bad role %d", c.Role)
	}
	if len(c.Label) > 255 {
		return errors.New("gossip: cluster label longer than 255 bytes")
	}
	def := memberlist.DefaultLANConfig()
	if c.BindAddr == "" {
		c.BindAddr = def.BindAddr
	}
	if c.GossipInterval <= 0 {
		c.GossipInterval = def.GossipInterval
	}
	if c.PushPullInterval <= 0 {
		c.PushPullInterval = def.PushPullInterval
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = def.ProbeInterval
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 2 * c.GossipInterval
	}
	if c.RejoinInterval <= 0 {
		c.RejoinInterval = defaultRejoin
	}
	if c.Retention <= 0 {
		c.Retention = defaultRetention
	}
	if c.LogOutput == nil {
		c.LogOutput = os.Stderr
	}
	return nil
}

// memberlistConfig builds memberlist's configuration, delegates aside.
func (c *Config) memberlistConfig(keyring *memberlist.Keyring) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort
	}
	mc.Label = c.Label
	mc.Keyring = keyring
	mc.GossipInterval = c.GossipInterval
	mc.PushPullInterval = c.PushPullInterval
	mc.ProbeInterval = c.ProbeInterval
	if mc.ProbeTimeout > c.ProbeInterval {
		mc.ProbeTimeout = c.ProbeInterval / 2
	}
	// memberlist gossips to the dead for 30 probe intervals by default;
	// keep that ratio with other probe intervals.
	mc.GossipToTheDeadTime = 30 * c.ProbeInterval
	// No LZW: memberlist compresses every message in the sender's
	// goroutine, and a courier sending a 100,000-target view or catalog
	// spent longer compressing than TCP takes to carry it. At 100,000
	// targets (test/bench/scale.sh) ten agents' first views took 31-347 s
	// to reach the servers, a new server 12-17 s to converge and a burst
	// of 10,000 changes 4.3-7.8 s; without, 7.8 s, 8.0 s and 3.1 s. The
	// bytes are a few hundred KB more per join, which a WAN carries in
	// well under a second; small gossip packets gained nothing from it.
	mc.EnableCompression = false
	mc.LogOutput = c.LogOutput
	t, port, err := c.transport()
	if err != nil {
		return nil, err
	}
	if c.BindPort == 0 {
		mc.BindPort, mc.AdvertisePort = port, port
	}
	mc.Transport = t
	return mc, nil
}

// transport builds memberlist's network transport, as memberlist would
// (with a few tries for a free port when BindPort is 0), wrapped so that
// streams have a deadline (streamTransport).
func (c *Config) transport() (memberlist.NodeAwareTransport, int, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{c.BindAddr}, BindPort: c.BindPort, Logger: log.New(c.LogOutput, "", log.LstdFlags)}
	tries := 1
	if c.BindPort == 0 {
		tries = 10 // the port is free for UDP, maybe not for TCP
	}
	var nt *memberlist.NetTransport
	var err error
	for range tries {
		if nt, err = memberlist.NewNetTransport(nc); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("gossip: listen on %s:%d: %w", c.BindAddr, c.BindPort, err)
	}
	var t memberlist.NodeAwareTransport = nt
	if c.wrapTransport != nil {
		t = c.wrapTransport(t)
	}
	return newStreamTransport(t, streamTimeout), nt.GetAutoBindPort(), nil
}

// LoadKeyring reads a key file: one base64 key of 16, 24 or 32 bytes per
// line, blank lines and # comments ignored. The first key is the primary
// (it encrypts); every key decrypts, which is how keys are rotated: add
// the new key on a second line everywhere, then move it first, then drop
// the old one.
func LoadKeyring(path string) (*memberlist.Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("gossip key file %s line %d: not base64: %w", path, line, err)
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("gossip key file %s line %d: key of %d bytes, want 16, 24 or 32", path, line, n)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("gossip key file %s: no key", path)
	}
	return memberlist.NewKeyring(keys, keys[0])
}

// meta is what a node says of itself in memberlist's NodeMeta: wire
// version, role, observer label. It stays far below memberlist's 512 bytes.
type meta struct {
	Role     Role
	Observer string
}

func (m meta) encode() []byte {
	b := []byte{wireVersion, byte(m.Role)}
	return appendString(b, m.Observer)
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) < 2 || b[0] != wireVersion {
		return meta{}, errors.New("bad node meta")
	}
	d := &decoder{b: b[1:]}
	m := meta{Role: d.role(true), Observer: d.string(maxLabelLen, "observer length")}
	return m, d.finish()
}
