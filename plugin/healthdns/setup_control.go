package healthdns

import (
	"crypto/sha256"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/coredns/caddy"
)

// minTokenLen keeps tokens out of guessing range.
const minTokenLen = 16

// parseControl reads the control line and block; the cursor is on
// "control".
func parseControl(c *caddy.Controller, root string) (*controlConfig, error) {
	if !c.NextArg() {
		return nil, c.Errf("control: want one listen address, like control 127.0.0.1:8054 { tokenfile FILE }")
	}
	addr := c.Val()
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, c.Errf("control %q: want a listen address like 127.0.0.1:8054", addr)
	}
	cc := &controlConfig{addr: addr}
	tokens := 0
	needs := "control: needs tokenfile FILE: the control API changes what every server answers (write insecure to run it without, on a trusted network only)"
	if !c.NextArg() {
		return nil, c.Err(needs + ", in a block: control ADDR { tokenfile FILE }")
	}
	if c.Val() != "{" {
		return nil, c.Errf("control: want { at the end of the line")
	}
	for {
		if !c.Next() {
			return nil, c.Err("control: missing }")
		}
		key := c.Val()
		if key == "}" {
			break
		}
		rest := c.RemainingArgs()
		switch key {
		case "tokenfile":
			if len(rest) != 1 {
				return nil, c.Errf("control tokenfile: want one file")
			}
			path := rest[0]
			if !filepath.IsAbs(path) && root != "" {
				path = filepath.Join(root, path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, c.Errf("control tokenfile: %v", err)
			}
			tok := strings.TrimSpace(string(b))
			if len(tok) < minTokenLen || strings.ContainsAny(tok, " \t\r\n") {
				return nil, c.Errf("control tokenfile %s: want one token of at least %d characters without spaces (e.g. openssl rand -hex 32)", path, minTokenLen)
			}
			cc.token = sha256.Sum256([]byte(tok))
			tokens++
		case "insecure":
			if len(rest) != 0 {
				return nil, c.ArgErr()
			}
			cc.insecure = true
		default:
			return nil, c.Errf("control: unknown property %q (want tokenfile FILE or insecure)", key)
		}
	}
	switch {
	case tokens > 1:
		return nil, c.Err("control: one tokenfile")
	case tokens == 1 && cc.insecure:
		return nil, c.Err("control: tokenfile or insecure, not both")
	case tokens == 0 && !cc.insecure:
		return nil, c.Err(needs)
	}
	return cc, nil
}
