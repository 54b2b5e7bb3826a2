// Package probe runs health checks (HTTP, HTTPS, TCP connect, gRPC health)
// against targets, off the query path, and keeps each target's rise/fall
// state. It owns the check grammar (grammar.go) that the Corefile, the
// webhook/check property and the gossip catalog all read. It reports
// changes by a non-blocking notification; it never looks at DNS, and it
// judges only what its checks see: anything an operator forces on a
// target belongs above it, on the verdict.
package probe

import (
	"context"
	"slices"
	"strconv"
)

// Kind is the kind of a check.
type Kind uint8

const (
	// HTTP is a GET over plain HTTP that expects a status (and a body).
	HTTP Kind = iota
	// HTTPS is the same over TLS.
	HTTPS
	// TCP is a TCP connect.
	TCP
	// GRPC asks the gRPC health checking protocol (grpc.health.v1).
	GRPC
)

func (k Kind) String() string {
	if int(k) < len(kinds) {
		return kinds[k].name
	}
	return "kind" + strconv.Itoa(int(k))
}

// Check is one health check of a target, a plain value: Parse makes it,
// String writes it back, and Parse(c.String()) is Equal to c.
type Check struct {
	Kind     Kind
	URL      string // HTTP, HTTPS: as written
	Addr     string // TCP, GRPC: HOST:PORT as written
	Host     string // HTTP(S): Host header and TLS server name; GRPC: authority and TLS server name
	Status   []int  // HTTP(S): accepted statuses, as written; empty means 200
	Body     string // HTTP(S): text the first 64 KiB of the body must contain
	Service  string // GRPC: the service asked about; empty is the server as a whole
	TLS      bool   // GRPC: over TLS
	Insecure bool   // HTTPS, GRPC with TLS: do not verify the certificate

	prober prober // built by the first Run
}

// A prober runs one kind of check. Each kind is one implementation in its
// own file (http.go, tcp.go, grpc.go), as CoreDNS's proxy HealthChecker is;
// the grammar and the pool see only this.
type prober interface {
	probe(ctx context.Context) error
}

// kindSpec is what the grammar needs to know of one kind of check.
type kindSpec struct {
	name string
	// word is true when the check starts with the kind's name and an
	// address (tcp, grpc) rather than with a URL.
	word bool
	// options are the options the kind takes, in canonical order.
	options []string
	// validate checks the URL or address: target is c's with {addr}
	// filled in.
	validate  func(c *Check, target string) error
	newProber func(c Check) prober
}

var kinds = [...]kindSpec{HTTP: httpKind, HTTPS: httpsKind, TCP: tcpKind, GRPC: grpcKind}

// Options are the options a kind of check takes, in canonical order.
func (k Kind) Options() []string {
	if int(k) < len(kinds) {
		return slices.Clone(kinds[k].options)
	}
	return nil
}

// Equal reports whether c and o describe the same check.
func (c Check) Equal(o Check) bool {
	return c.Kind == o.Kind && c.URL == o.URL && c.Addr == o.Addr && c.Host == o.Host &&
		slices.Equal(c.Status, o.Status) && c.Body == o.Body && c.Service == o.Service &&
		c.TLS == o.TLS && c.Insecure == o.Insecure
}

// Run performs the check once; nil means it passed, else the error says
// why for the operator. ctx bounds it. The first Run builds the check's
// prober and keeps it, so one Check must not Run in two goroutines at once.
func (c *Check) Run(ctx context.Context) error {
	if c.prober == nil {
		c.prober = kinds[c.Kind].newProber(*c)
	}
	return c.prober.probe(ctx)
}
