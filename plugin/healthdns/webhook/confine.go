package webhook

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// confined says why e's own check (webhook/check) may not run, or nil.
// A record may check its own addresses ({addr}, or the address itself)
// and use the owner's default check; any other host only inside the
// owner's CheckNetworks. Otherwise one owner could make every server
// probe a cloud metadata address or an internal service and read the
// result in /status and CH TXT.
func (w *Webhook) confined(e records.Endpoint) error {
	if e.RecordType != records.TypeA && e.RecordType != records.TypeAAAA {
		return nil
	}
	spec := e.Properties().Check
	if spec == "" || spec == w.defaultCheck {
		return nil
	}
	c, err := probe.Parse(spec)
	if err != nil {
		return err
	}
	for _, t := range e.Targets {
		a, err := netip.ParseAddr(t)
		if err != nil {
			return err
		}
		fc, err := c.ForAddr(a)
		if err != nil {
			return err
		}
		host := fc.DialHost()
		h, err := netip.ParseAddr(host)
		if err == nil && h.Unmap() == a.Unmap() {
			continue
		}
		if err == nil && slices.ContainsFunc(w.cfg.CheckNetworks, func(p netip.Prefix) bool { return p.Contains(h.Unmap()) }) {
			continue
		}
		why := fmt.Sprintf("check %q of target %s connects to %s, not to the target (use %s) and not inside the owner's check networks", spec, t, host, records.AddrPlaceholder)
		if len(w.cfg.CheckNetworks) == 0 {
			why = fmt.Sprintf("check %q of target %s connects to %s: a record's own check may connect only to its own address (%s); the operator can allow more networks with check-networks", spec, t, host, records.AddrPlaceholder)
		}
		return fmt.Errorf("%s", why)
	}
	return nil
}

// unconfined lists the puts of b whose checks are not allowed; "" if none.
func (w *Webhook) unconfined(b records.Batch) string {
	var bad []string
	n := 0
	for i, e := range b.Puts() {
		if err := w.confined(e); err != nil {
			if n++; n <= maxErrorRecords {
				bad = append(bad, fmt.Sprintf("%s: %s %s: %v", b.Where(i), e.DNSName, e.RecordType, err))
			}
		}
	}
	if n == 0 {
		return ""
	}
	msg := fmt.Sprintf("%d record(s) have a check that is not allowed, so none of the batch is applied: %s", n, strings.Join(bad, "; "))
	if n > len(bad) {
		msg += fmt.Sprintf("; and %d more", n-len(bad))
	}
	return msg
}

// ParseCheckNetworks reads check-networks: networks (10.0.0.0/8) or
// addresses, as the Corefile and the agent's -check-networks give them.
func ParseCheckNetworks(args []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, a := range args {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ip, ierr := netip.ParseAddr(a)
			if ierr != nil {
				return nil, fmt.Errorf("check-networks %q: want networks like 10.0.0.0/8 or addresses", a)
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("check-networks %q: write IPv4 networks as IPv4", a)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
