package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"
)

// drainCommand is `healthdns-agent drain`, `undrain` and `force`: it sets,
// clears and lists operators' overrides through a server's control API
// (the Corefile's control listener, not the status one). verb is the
// subcommand.
//
//	healthdns-agent drain  [flags] SELECTOR        answered only when nothing else is
//	healthdns-agent force  [flags] down|up SELECTOR
//	healthdns-agent drain  -clear SELECTOR         (or: healthdns-agent undrain SELECTOR)
//	healthdns-agent drain  -list
func drainCommand(ctx context.Context, verb string, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("healthdns-agent "+verb, flag.ContinueOnError)
	fs.SetOutput(errOut)
	server := fs.String("server", envOr("HEALTHDNS_CONTROL", "http://127.0.0.1:8054"), "control API of a healthdns server (its Corefile control address); $HEALTHDNS_CONTROL")
	tokenFile := fs.String("token-file", os.Getenv("HEALTHDNS_TOKEN_FILE"), "file holding the control API's token (the server's control tokenfile); $HEALTHDNS_TOKEN_FILE")
	reason := fs.String("reason", "", "why, shown in status, the matrix and the history")
	who := fs.String("who", defaultWho(), "who sets it")
	dur := fs.Duration("for", 0, "end it by itself after this long, e.g. 30m or 2h (default: until cleared)")
	clear := fs.Bool("clear", verb == "undrain", "clear the override of SELECTOR: the verdicts rule again")
	list := fs.Bool("list", false, "list the overrides the server holds")
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	fs.Usage = func() {
		o := fs.Output()
		fmt.Fprintln(o, "usage: healthdns-agent drain [flags] SELECTOR           answer SELECTOR's targets only when nothing else may be")
		fmt.Fprintln(o, "       healthdns-agent force [flags] down|up SELECTOR   treat them as down (or up) whatever the probes say")
		fmt.Fprintln(o, "       healthdns-agent drain -clear SELECTOR            clear it (also: healthdns-agent undrain SELECTOR)")
		fmt.Fprintln(o, "       healthdns-agent drain -list                      list the overrides")
		fmt.Fprintln(o, "SELECTOR is an address (192.0.2.10), NAME/ADDRESS with globs (app.gslb.example.com/*, */10.1.*),")
		fmt.Fprintln(o, "or comma-separated terms addr=GLOB, name=GLOB, owner=NAME (a webhook owner), region=NAME.")
		fmt.Fprintln(o, "The override is replicated to every server of the cluster and kept across restarts.")
		fs.PrintDefaults()
	}
	// Flags may come after the positional words too.
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	state := "drain"
	if verb == "force" && !*clear && !*list {
		if len(words) == 0 || (words[0] != "down" && words[0] != "up") {
			return usageError{errors.New("force: want down or up, then SELECTOR")}
		}
		state, words = words[0], words[1:]
	}
	if *clear {
		state = "clear"
	}
	c, err := newControlClient(*server, *tokenFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *list {
		if len(words) > 0 || *clear {
			return usageError{fmt.Errorf("%s -list takes no selector", verb)}
		}
		var l overrideList
		raw, err := c.do(ctx, http.MethodGet, nil, &l)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := out.Write(raw)
			return err
		}
		return printOverrides(out, l)
	}
	if len(words) != 1 {
		return usageError{fmt.Errorf("%s: want one SELECTOR, got %d words %q (quote a selector with spaces)", verb, len(words), words)}
	}
	if state == "clear" && (*dur != 0 || *reason != "") {
		return usageError{errors.New("-clear takes no -for or -reason")}
	}
	req := map[string]string{"selector": words[0], "state": state, "reason": *reason, "who": *who}
	if *dur != 0 {
		req["for"] = dur.String()
	}
	var a overrideAnswer
	raw, err := c.do(ctx, http.MethodPost, req, &a)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := out.Write(raw)
		return err
	}
	what := map[string]string{"drain": "drained", "down": "forced down", "up": "forced up", "none": "cleared"}[a.State]
	fmt.Fprintf(out, "%s %s on %s: %s", what, a.Selector, a.Node, targets(a.Matched))
	if !a.Until.IsZero() && a.State != "none" {
		fmt.Fprintf(out, " until %s (in %s)", a.Until.Format(time.RFC3339), time.Until(a.Until).Round(time.Second))
	}
	fmt.Fprintln(out)
	for _, t := range a.Targets {
		fmt.Fprintln(out, "  "+t)
	}
	if a.Matched > len(a.Targets) {
		fmt.Fprintf(out, "  ... and %d more\n", a.Matched-len(a.Targets))
	}
	if a.Matched == 0 && a.State != "none" {
		fmt.Fprintln(out, "note: it selects no target now; it will apply to targets that match later")
	}
	return nil
}

func targets(n int) string {
	if n == 1 {
		return "1 target"
	}
	return fmt.Sprintf("%d targets", n)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func defaultWho() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}

// overrideAnswer is one override as the control API answers it.
type overrideAnswer struct {
	Selector string    `json:"selector"`
	State    string    `json:"state"`
	Reason   string    `json:"reason"`
	Who      string    `json:"who"`
	Set      time.Time `json:"set"`
	Node     string    `json:"node"`
	Until    time.Time `json:"until"`
	Active   bool      `json:"active"`
	Matched  int       `json:"matched"`
	Targets  []string  `json:"targets"`
}

type overrideList struct {
	Node      string           `json:"node"`
	Time      time.Time        `json:"time"`
	Overrides []overrideAnswer `json:"overrides"`
}

func printOverrides(out io.Writer, l overrideList) error {
	n := 0
	for _, o := range l.Overrides {
		if !o.Active {
			continue
		}
		n++
		until := "until cleared"
		if !o.Until.IsZero() {
			until = "until " + o.Until.Format(time.RFC3339) + " (in " + o.Until.Sub(l.Time).Round(time.Second).String() + ")"
		}
		fmt.Fprintf(out, "%-6s %s  %s  by %s on %s at %s, %s", o.State, o.Selector, targets(o.Matched), dash(o.Who), o.Node, o.Set.Format(time.RFC3339), until)
		if o.Reason != "" {
			fmt.Fprintf(out, ": %s", o.Reason)
		}
		fmt.Fprintln(out)
	}
	if n == 0 {
		fmt.Fprintf(out, "no overrides in force on %s\n", l.Node)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type controlClient struct {
	url   string
	token string
}

func newControlClient(server, tokenFile string) (*controlClient, error) {
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("-server %q: want http://HOST:PORT, the server's control address", server)}
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/overrides"
	c := &controlClient{url: u.String()}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("-token-file: %w", err)}
		}
		c.token = strings.TrimSpace(string(b))
		if c.token == "" {
			return nil, usageError{fmt.Errorf("-token-file %s is empty", tokenFile)}
		}
	}
	return c, nil
}

// do sends a request and decodes the answer into v; it returns the raw
// answer too. An error answer becomes an error with the server's words.
func (c *controlClient) do(ctx context.Context, method string, body any, v any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
			msg += " (no -token-file given)"
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, c.url, resp.Status, msg)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("%s %s: not a control API answer (%v); is -server the control address of a healthdns server?", method, c.url, err)
	}
	return raw, nil
}
