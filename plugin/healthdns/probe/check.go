// Package probe runs health checks (HTTP, HTTPS, TCP connect) against
// targets, off the query path, and keeps each target's rise/fall state. It
// reports changes by a non-blocking notification; it never looks at DNS.
package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Kind is the kind of a check.
type Kind uint8

const (
	// HTTP is a GET over plain HTTP that expects a status.
	HTTP Kind = iota
	// HTTPS is the same over TLS.
	HTTPS
	// TCP is a TCP connect.
	TCP
)

func (k Kind) String() string {
	return [...]string{"http", "https", "tcp"}[k]
}

// Check is one health check of a target.
type Check struct {
	Kind     Kind
	URL      string // HTTP and HTTPS
	Addr     string // TCP: host:port
	Host     string // Host header and TLS server name, if not the URL's
	Status   []int  // accepted statuses; empty means 200
	Insecure bool   // HTTPS: do not verify the certificate

	client *http.Client
}

// ParseURLCheck makes an HTTP or HTTPS check from a URL.
func ParseURLCheck(raw string) (Check, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Check{}, fmt.Errorf("check %q: %w", raw, err)
	}
	var k Kind
	switch u.Scheme {
	case "http":
		k = HTTP
	case "https":
		k = HTTPS
	default:
		return Check{}, fmt.Errorf("check %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return Check{}, fmt.Errorf("check %q: no host", raw)
	}
	return Check{Kind: k, URL: u.String()}, nil
}

// ParseTCPCheck makes a TCP connect check for host:port.
func ParseTCPCheck(addr string) (Check, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Check{}, fmt.Errorf("tcp check %q: %w", addr, err)
	}
	if host == "" {
		return Check{}, fmt.Errorf("tcp check %q: no host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return Check{}, fmt.Errorf("tcp check %q: bad port", addr)
	}
	return Check{Kind: TCP, Addr: addr}, nil
}

// String is the canonical form of the check; equal checks have equal strings.
func (c Check) String() string {
	if c.Kind == TCP {
		return "tcp " + c.Addr
	}
	var b strings.Builder
	b.WriteString(c.URL)
	if c.Host != "" {
		b.WriteString(" host " + c.Host)
	}
	if len(c.Status) > 0 {
		b.WriteString(" status")
		for _, s := range c.Status {
			b.WriteString(" " + strconv.Itoa(s))
		}
	}
	if c.Insecure {
		b.WriteString(" insecure")
	}
	return b.String()
}

// Run performs the check once; nil means it passed. ctx bounds it.
func (c *Check) Run(ctx context.Context) error {
	if c.Kind == TCP {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.Addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	if c.client == nil {
		c.client = c.newClient()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return err
	}
	if c.Host != "" {
		req.Host = c.Host
	}
	req.Header.Set("User-Agent", "healthdns-probe")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	want := c.Status
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	if !slices.Contains(want, resp.StatusCode) {
		return fmt.Errorf("status %d, want %v", resp.StatusCode, want)
	}
	return nil
}

func (c *Check) newClient() *http.Client {
	tr := &http.Transport{
		// Every probe opens a new connection: a pooled one would hide a
		// listener that stopped accepting.
		DisableKeepAlives: true,
		Proxy:             nil,
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: c.Insecure,
			ServerName:         c.Host,
		},
	}
	return &http.Client{
		Transport: tr,
		// A redirect is an answer from the target; judge it by its status.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
