package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
)

// http://... and https://...: a GET whose status is one of the accepted
// ones and whose body, if asked, holds a text in its first BodyWindow bytes.
var (
	httpKind  = kindSpec{name: "http", options: httpOptions, validate: validateURL, newProber: newHTTPProber}
	httpsKind = kindSpec{name: "https", options: httpOptions, validate: validateURL, newProber: newHTTPProber}
	// insecure is accepted on http too, where it does nothing, because
	// records stored before the grammar was one carry it.
	httpOptions = []string{"host", "status", "body", "insecure"}
)

func validateURL(c *Check, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("check %q: %v", c.URL, err)
	}
	if (c.Kind == HTTP && u.Scheme != "http") || (c.Kind == HTTPS && u.Scheme != "https") {
		return fmt.Errorf("check %q: scheme must be http or https", c.URL)
	}
	if u.Host == "" {
		return fmt.Errorf("check %q: no host", c.URL)
	}
	return nil
}

type httpProber struct {
	url    string
	host   string
	status []int
	body   []byte
	client *http.Client
}

func newHTTPProber(c Check) prober {
	serverName := c.Host
	if h, _, err := net.SplitHostPort(c.Host); err == nil {
		serverName = h
	}
	tr := &http.Transport{
		// Every probe opens a new connection: a pooled one would hide a
		// listener that stopped accepting.
		DisableKeepAlives: true,
		Proxy:             nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dial(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: c.Insecure,
			ServerName:         serverName,
		},
		MaxResponseHeaderBytes: BodyWindow,
	}
	p := &httpProber{url: c.URL, host: c.Host, status: c.Status}
	if len(p.status) == 0 {
		p.status = []int{http.StatusOK}
	}
	if c.Body != "" {
		p.body = []byte(c.Body)
	}
	p.client = &http.Client{
		Transport: tr,
		// A redirect is an answer from the target; judge it by its status.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p
}

func (p *httpProber) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	if p.host != "" {
		req.Host = p.host
	}
	req.Header.Set("User-Agent", "healthdns-probe")
	resp, err := p.client.Do(req)
	if err != nil {
		// Without `Get "URL": `: the check (the URL) is said next to it
		// already, and the status views have little room.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return fmt.Errorf("timeout: %w", ue.Err)
			}
			return ue.Err
		}
		return err
	}
	// Closing unread is fine: the connection is not reused, and a huge
	// body must not be read to its end.
	defer resp.Body.Close()
	if !slices.Contains(p.status, resp.StatusCode) {
		return fmt.Errorf("status %d, want %v", resp.StatusCode, p.status)
	}
	if p.body == nil {
		return nil
	}
	return matchBody(resp.Body, p.body)
}

// bodyBufs keeps the windows of body checks between probes.
var bodyBufs = sync.Pool{New: func() any { return new([BodyWindow]byte) }}

// matchBody reads r until it has seen want, up to BodyWindow bytes and
// never more.
func matchBody(r io.Reader, want []byte) error {
	bp := bodyBufs.Get().(*[BodyWindow]byte)
	defer bodyBufs.Put(bp)
	buf := bp[:]
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		from := max(0, n-len(want)+1)
		n += m
		if bytes.Contains(buf[from:n], want) {
			return nil
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("body (%d bytes) does not contain %q", n, want)
		}
		if err != nil {
			return fmt.Errorf("body: %w", err)
		}
	}
	return fmt.Errorf("body does not contain %q in its first %d bytes", want, BodyWindow)
}
