// Command healthdns-agent is a healthdns probe agent. It joins the gossip
// cluster of healthdns servers, learns from their catalog which targets to
// probe, probes them from where it runs, and publishes what it sees as the
// observations of its location. It has no CoreDNS inside.
//
//	healthdns-agent -name agent-eu1 -observer eu-west -bind 0.0.0.0:7946 \
//	    -join dns1.example.com:7946,dns2.example.com:7946 \
//	    -keyfile /etc/healthdns/gossip.key -label prod -status 127.0.0.1:8054
//
// An agent (or ExternalDNS sidecar) that no server can reach connects out
// to a server's client port instead (the Corefile's cluster clients):
//
//	healthdns-agent -name agent-eu1 -observer eu-west \
//	    -connect dns1.example.com:7947,dns2.example.com:7947 \
//	    -keyfile /etc/healthdns/gossip.key -label prod
//
// -status serves /status (JSON), the status page at /, /metrics
// (Prometheus) and /health. SIGINT or SIGTERM makes it leave the cluster
// and exit. -witness makes it a voter too: with two datacenters, a
// witness in a third place lets the surviving server hear a majority
// when the other datacenter dies.
//
// The status subcommand prints the health matrix of a server or agent:
//
//	healthdns-agent status [-url http://127.0.0.1:8053] [-name app.gslb.example.com]
//
// The drain, undrain and force subcommands set and clear operators'
// overrides through a server's control API (drain.go):
//
//	healthdns-agent drain -server http://127.0.0.1:8054 -token-file control.token -reason "bad deploy" -for 1h owner=east
//	healthdns-agent force down 192.0.2.10
//	healthdns-agent undrain owner=east
//	healthdns-agent drain -list
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/healthdns/healthdns/internal/memlimit"
	"github.com/healthdns/healthdns/plugin/healthdns/version"
	"github.com/healthdns/healthdns/plugin/healthdns/webhook"
)

// options are the agent's command line.
type options struct {
	name      string
	observer  string
	bind      string
	advertise string
	join      []string
	connect   []string
	from      string
	keyFile   string
	insecure  bool
	label     string
	status    string
	debug     bool
	version   bool
	witness   bool
	probe     bool
	sidecar   sidecarOptions

	gossipInterval   time.Duration
	pushPullInterval time.Duration
	probeInterval    time.Duration
	leaveTimeout     time.Duration
}

func parseFlags(args []string, errOut io.Writer) (options, error) {
	var o options
	var join, connect string
	fs := flag.NewFlagSet("healthdns-agent", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: healthdns-agent [flags]          run a probe agent")
		fmt.Fprintln(fs.Output(), "       healthdns-agent status [-url URL] [-name NAME]   print a server's or agent's health matrix")
		fmt.Fprintln(fs.Output(), "       healthdns-agent drain|undrain|force ...          set or clear operators' overrides (-h for each)")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.name, "name", "", "node name, unique in the cluster (default: the host name)")
	fs.StringVar(&o.observer, "observer", "", "location label of this agent's observations, e.g. eu-west (default: the node name)")
	fs.StringVar(&o.bind, "bind", "0.0.0.0:7946", "gossip listen address, host:port (UDP and TCP)")
	fs.StringVar(&o.advertise, "advertise", "", "address other nodes reach this one at, host:port (default: the bind address)")
	fs.StringVar(&join, "join", "", "comma-separated host:port of cluster members to join")
	fs.StringVar(&connect, "connect", "", "comma-separated host:port of servers' client ports (their cluster clients address): connect out to one of them as an edge client instead of gossiping (-bind/-join), for an agent or sidecar that no server can reach; needs -keyfile")
	fs.StringVar(&o.from, "connect-from", "", "with -connect: the local IP address to connect from (default: the system's choice)")
	fs.StringVar(&o.keyFile, "keyfile", "", "gossip key file: one base64 key per line, the first encrypts")
	fs.BoolVar(&o.insecure, "insecure", false, "gossip without -keyfile, in the clear: anyone who reaches -bind can change records and observations (default: refuse to start without -keyfile)")
	fs.StringVar(&o.label, "label", "", "cluster label; nodes with another label are refused")
	fs.StringVar(&o.status, "status", "", "listen address for /status, /metrics and /health, e.g. 127.0.0.1:8054 (default: off)")
	fs.StringVar(&o.sidecar.addr, "webhook", "", "serve the ExternalDNS webhook provider on this address, e.g. localhost:8888 (default: off)")
	fs.StringVar(&o.sidecar.health, "webhook-health", webhook.DefaultHealthAddr, "with -webhook: the listener of the webhook's /healthz and /metrics, for the kubelet's probes, as ExternalDNS recommends; off for none")
	fs.StringVar(&o.sidecar.owner, "owner", "", "the webhook's owner: this cluster's name, as ExternalDNS's --txt-owner-id")
	fs.StringVar(&o.sidecar.data, "data", "", "directory of the webhook's record store (acknowledged records are fsynced there)")
	fs.StringVar(&o.sidecar.domains, "domain-filter", "", "comma-separated zones the servers serve, e.g. gslb.example.com")
	fs.StringVar(&o.sidecar.check, "default-check", "", "the owner's default health check, e.g. \"tcp {addr}:443\" or \"https://{addr}/healthz host app.example.com\"")
	fs.StringVar(&o.sidecar.networks, "check-networks", "", "with -webhook: comma-separated networks (10.0.0.0/8) a record's own webhook/check may connect to besides the record's own address (default: only its own address, and the owner's -default-check)")
	fs.StringVar(&o.sidecar.tier, "default-tier", "", "the owner's default priority tier (default 1)")
	fs.StringVar(&o.sidecar.weight, "default-weight", "", "the owner's default weight (default 1)")
	fs.StringVar(&o.sidecar.region, "default-region", "", "the owner's default region for the geo policy (default none)")
	fs.StringVar(&o.sidecar.policy, "default-policy", "", "the owner's default policy for names only it defines: roundrobin, weighted, priority, geo or sticky")
	fs.BoolVar(&o.witness, "witness", false, "vote as a witness: count toward the majority of servers that decides whether a server may act (the third voter of two datacenters)")
	fs.BoolVar(&o.probe, "probe", true, "probe the catalog's targets and publish observations (-probe=false: a witness that only votes)")
	fs.BoolVar(&o.debug, "debug", false, "log memberlist's debug lines")
	fs.BoolVar(&o.version, "version", false, "print the version, commit, build date and CoreDNS version, and exit")
	fs.DurationVar(&o.gossipInterval, "gossip-interval", 0, "gossip interval (default: memberlist's LAN default, 200ms); with -connect, the client heartbeats every two")
	fs.DurationVar(&o.pushPullInterval, "pushpull-interval", 0, "full state sync interval (default: memberlist's LAN default, 30s)")
	fs.DurationVar(&o.probeInterval, "member-probe-interval", 0, "memberlist failure detector interval (default 1s)")
	fs.DurationVar(&o.leaveTimeout, "leave-timeout", 5*time.Second, "how long to wait for the leave to go out on shutdown")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.sidecar.health == "off" {
		o.sidecar.health = ""
	}
	if !o.probe && !o.witness && o.sidecar.addr == "" {
		return o, errors.New("-probe=false: an agent that neither probes nor votes nor serves the webhook does nothing; add -witness or -webhook, or drop -probe=false")
	}
	for _, j := range strings.Split(join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			if _, _, err := net.SplitHostPort(j); err != nil {
				return o, fmt.Errorf("-join %q: %w", j, err)
			}
			o.join = append(o.join, j)
		}
	}
	for _, c := range strings.Split(connect, ",") {
		if c = strings.TrimSpace(c); c != "" {
			if _, _, err := splitHostPort(c); err != nil {
				return o, fmt.Errorf("-connect %q: %w", c, err)
			}
			o.connect = append(o.connect, c)
		}
	}
	if len(o.connect) > 0 {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, f := range []string{"join", "bind", "advertise", "witness", "pushpull-interval", "member-probe-interval"} {
			if set[f] {
				return o, fmt.Errorf("-connect and -%s: an edge client does not gossip (it connects out to a server, which carries what it says); drop one", f)
			}
		}
		if o.from != "" && net.ParseIP(o.from) == nil {
			return o, fmt.Errorf("-connect-from %q: not an IP address", o.from)
		}
		if o.keyFile == "" {
			return o, errors.New("-connect needs -keyfile: the gossip key authenticates and encrypts the connection")
		}
	}
	if o.from != "" && len(o.connect) == 0 {
		return o, errors.New("-connect-from without -connect")
	}
	if _, _, err := splitHostPort(o.bind); err != nil {
		return o, fmt.Errorf("-bind: %w", err)
	}
	o.sidecar.edge = len(o.connect) > 0
	if err := o.sidecar.validate(); err != nil {
		return o, err
	}
	if o.advertise != "" {
		if _, _, err := splitHostPort(o.advertise); err != nil {
			return o, fmt.Errorf("-advertise: %w", err)
		}
	}
	return o, nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	return host, p, nil
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "status" || os.Args[1] == "drain" || os.Args[1] == "undrain" || os.Args[1] == "force") {
		var err error
		if os.Args[1] == "status" {
			err = statusCommand(context.Background(), os.Args[2:], os.Stdout, os.Stderr)
		} else {
			err = drainCommand(context.Background(), os.Args[1], os.Args[2:], os.Stdout, os.Stderr)
		}
		var usage usageError
		switch {
		case errors.Is(err, flag.ErrHelp):
			os.Exit(0)
		case errors.As(err, &usage):
			fmt.Fprintln(os.Stderr, "healthdns-agent:", err)
			os.Exit(2)
		case err != nil:
			fmt.Fprintln(os.Stderr, "healthdns-agent:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthdns-agent:", err)
		os.Exit(2)
	}
	if o.version {
		fmt.Print("healthdns-agent ", version.Get())
		return
	}
	if line := memlimit.Set(); line != "" {
		fmt.Fprintln(os.Stderr, "healthdns-agent:", line)
	}
	a, err := newAgent(o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthdns-agent:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := a.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "healthdns-agent:", err)
		os.Exit(1)
	}
}
