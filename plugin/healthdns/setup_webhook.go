package healthdns

import (
	"net/netip"
	"strings"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/webhook"
)

// webhookConfig is the webhook block: the ExternalDNS provider API of one
// owner, served by this server.
type webhookConfig struct {
	addr, healthAddr string
	owner            string
	defaults         []records.Property
	checkNetworks    []netip.Prefix // where records' own checks may connect besides their address
}

// parseWebhook reads "webhook [ADDR] { owner NAME; health ADDR; tier N;
// weight N; check SPEC; policy P; region R }"; the cursor is on "webhook".
func parseWebhook(c *caddy.Controller) (*webhookConfig, error) {
	wc := &webhookConfig{addr: webhook.DefaultAddr}
	args := c.RemainingArgs()
	if len(args) > 1 {
		return nil, c.ArgErr()
	}
	if len(args) == 1 {
		wc.addr = args[0]
	}
	if _, _, err := splitHostPort(wc.addr); err != nil {
		return nil, c.Errf("webhook %q: want a listen address like 127.0.0.1:8888", wc.addr)
	}
	err := eachBlockLine(c, "webhook", func(key string, args []string) error {
		if len(args) == 0 {
			return c.Errf("webhook %s: want a value", key)
		}
		switch key {
		case "owner":
			if err := records.CheckOwner(args[0]); err != nil || len(args) != 1 {
				return c.Errf("webhook owner %q: %v", strings.Join(args, " "), err)
			}
			wc.owner = args[0]
		case "health":
			if _, _, err := splitHostPort(args[0]); err != nil || len(args) != 1 {
				return c.Errf("webhook health %q: want a listen address", strings.Join(args, " "))
			}
			wc.healthAddr = args[0]
		case "check-networks":
			nets, err := webhook.ParseCheckNetworks(args)
			if err != nil {
				return c.Errf("webhook %v", err)
			}
			wc.checkNetworks = append(wc.checkNetworks, nets...)
		case "tier", "weight", "check", "policy", "region":
			name := map[string]string{"tier": records.PropTier, "weight": records.PropWeight, "check": records.PropCheck, "policy": records.PropPolicy, "region": records.PropRegion}[key]
			value := strings.Join(args, " ")
			if key == "check" {
				// The Corefile has unquoted the words; a body with
				// spaces must stay one word.
				ch, n, err := probe.ParseArgs(args)
				if err != nil {
					return c.Errf("webhook check: %v", err)
				}
				if n < len(args) {
					return c.Errf("webhook check: unknown option %q (want %s)", args[n], strings.Join(ch.Kind.Options(), ", "))
				}
				value = ch.String()
			}
			v, err := records.NormalizeProperty(name, value)
			if err != nil {
				return c.Errf("webhook %s: %v", key, err)
			}
			wc.defaults = append(wc.defaults, records.Property{Name: name, Value: v})
		default:
			return c.Errf("webhook: unknown property %q", key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if wc.owner == "" {
		return nil, c.Err("webhook: owner is required: the cluster name ExternalDNS runs in (its --txt-owner-id)")
	}
	hasCheck := false
	for _, d := range wc.defaults {
		hasCheck = hasCheck || d.Name == records.PropCheck
	}
	if !hasCheck {
		return nil, c.Err("webhook: check is required: the owner's default health check, e.g. check tcp {addr}:443")
	}
	return wc, nil
}
