package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/status"
)

// maxStatus bounds the status document the CLI reads: 10,000 targets
// with their observations fit well within it.
const maxStatus = 256 << 20

// statusCommand is `healthdns-agent status`: it fetches /status from a
// server or an agent and prints it as a table.
func statusCommand(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("healthdns-agent status", flag.ContinueOnError)
	fs.SetOutput(errOut)
	base := fs.String("url", "http://127.0.0.1:8053", "status address of a healthdns server (its status listener) or agent (its -status)")
	name := fs.String("name", "", "show only this name, e.g. app.gslb.example.com")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: healthdns-agent status [-url URL] [-name NAME] [-timeout DURATION]")
		fmt.Fprintln(fs.Output(), "Prints the health matrix of a healthdns server or agent: members, and for each name its targets")
		fmt.Fprintln(fs.Output(), "(rows) against its observers (columns).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("status: unexpected arguments %q", fs.Args())}
	}
	u, err := statusURL(*base, *name)
	if err != nil {
		return usageError{fmt.Errorf("status: -url %q: %w", *base, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	d, err := fetchStatus(ctx, u)
	if err != nil {
		return err
	}
	if *name != "" && len(d.Names) == 0 {
		if d.Role == status.RoleAgent || d.Role == status.RoleWitness {
			return fmt.Errorf("%s is %s %s, which serves no names; ask a server", u, d.Role, d.Node)
		}
		return fmt.Errorf("%s: server %s serves no name %q", u, d.Node, *name)
	}
	return status.Table(out, d)
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// statusURL is the /status address for what the user typed: a bare
// host:port gets http://, a URL without /status at the end gets it.
func statusURL(base, name string) (string, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	if p := strings.TrimSuffix(u.Path, "/"); !strings.HasSuffix(p, "/status") {
		u.Path = p + "/status"
	}
	if name != "" {
		q := u.Query()
		q.Set("name", name)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// fetchStatus GETs a status document and checks that it is one.
func fetchStatus(ctx context.Context, u string) (*status.Document, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		msg, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, msg)
	}
	notOurs := func(why string) error {
		return fmt.Errorf("GET %s: not a healthdns status document (%s); is -url the status address of a healthdns server or agent?", u, why)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, notOurs("Content-Type " + fmt.Sprintf("%q", resp.Header.Get("Content-Type")))
	}
	var d status.Document
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxStatus))
	if err := dec.Decode(&d); err != nil {
		return nil, notOurs(err.Error())
	}
	if d.Node == "" || (d.Role != status.RoleServer && d.Role != status.RoleAgent && d.Role != status.RoleWitness) {
		return nil, notOurs("no node and role")
	}
	return &d, nil
}
