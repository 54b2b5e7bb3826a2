package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The check grammar, one for the Corefile, the webhook/check property and
// the gossip catalog:
//
//	http://HOST[:PORT]/PATH  [host NAME] [status CODE[,CODE...]] [body TEXT] [insecure]
//	https://HOST[:PORT]/PATH [host NAME] [status CODE[,CODE...]] [body TEXT] [insecure]
//	tcp HOST:PORT
//	grpc HOST:PORT [service NAME] [host NAME] [tls] [insecure]
//
// Options come in any order, each at most once. String writes the
// canonical form: options in the order above, single spaces, the URL,
// address and codes as written, and TEXT in double quotes when it holds a
// space, a '#' (a Corefile comment) or a '|' (Target.Key's separator). Quotes work as in a Corefile: a word
// that starts with '"' runs to the next unescaped '"', and \" inside is a
// quote. {addr} in the URL or address stands for the target's address
// (ForAddr fills it in).

// AddrPlaceholder in a check's URL or address stands for the address of
// the target it checks, in brackets for IPv6.
const AddrPlaceholder = "{addr}"

// Limits, so that a check fits in a gossip packet and a property.
const (
	// MaxLen bounds a check's canonical form, the catalog's limit.
	MaxLen = 512
	// MaxBody bounds the text of a body option (Route 53 allows 255).
	MaxBody   = 255
	maxName   = 255 // host, service
	maxStatus = 32
)

// BodyWindow is how much of a response body a body option searches: the
// first 64 KiB. Nothing past it is read.
const BodyWindow = 64 << 10

// optionKinds says which kinds take each option, for the error that names
// the right ones.
var optionKinds = map[string][]Kind{
	"host":     {HTTP, HTTPS, GRPC},
	"status":   {HTTP, HTTPS},
	"body":     {HTTP, HTTPS},
	"insecure": {HTTP, HTTPS, GRPC},
	"service":  {GRPC},
	"tls":      {GRPC},
}

// flags are the options that take no value.
func isFlag(opt string) bool { return opt == "tls" || opt == "insecure" }

// Parse reads one check, in the canonical form or any form the grammar
// accepts.
func Parse(s string) (Check, error) {
	if len(s) > 4*MaxLen {
		return Check{}, fmt.Errorf("check %.40q...: longer than %d bytes", s, MaxLen)
	}
	args, err := splitWords(s)
	if err != nil {
		return Check{}, fmt.Errorf("check %q: %v", s, err)
	}
	c, n, err := ParseArgs(args)
	if err != nil {
		return Check{}, err
	}
	if n < len(args) {
		return Check{}, fmt.Errorf("check %q: unknown option %q (%s)", s, args[n], c.Kind.want())
	}
	return c, nil
}

// ParseArgs reads a check from the front of args, words as a Corefile line
// gives them, and returns it with the number of words it used. It stops at
// the first word that is no check's option, where the caller's own
// settings may go on.
func ParseArgs(args []string) (Check, int, error) {
	if len(args) == 0 {
		return Check{}, 0, errors.New("empty check: want a URL, tcp HOST:PORT or grpc HOST:PORT")
	}
	var c Check
	i := 1
	switch args[0] {
	case "tcp", "grpc":
		c.Kind = TCP
		if args[0] == "grpc" {
			c.Kind = GRPC
		}
		if len(args) < 2 {
			return Check{}, 0, fmt.Errorf("%s check: want %s HOST:PORT", args[0], args[0])
		}
		c.Addr = args[1]
		i = 2
	default:
		c.URL = args[0]
		scheme, _, _ := strings.Cut(c.URL, "://")
		switch strings.ToLower(scheme) {
		case "http":
			c.Kind = HTTP
		case "https":
			c.Kind = HTTPS
		default:
			if strings.Contains(c.URL, "://") {
				return Check{}, 0, fmt.Errorf("check %q: scheme must be http or https", c.URL)
			}
			return Check{}, 0, fmt.Errorf("check %q: want a URL (http:// or https://), tcp HOST:PORT or grpc HOST:PORT", c.URL)
		}
	}
	k := kinds[c.Kind]
	seen := map[string]bool{}
	for ; i < len(args); i++ {
		opt := args[i]
		takers, known := optionKinds[opt]
		if !known {
			break
		}
		if !slices.Contains(k.options, opt) {
			return Check{}, 0, fmt.Errorf("%s: %s is an option of %s checks, not %s", c.first(), opt, kindList(takers), k.name)
		}
		if seen[opt] {
			return Check{}, 0, fmt.Errorf("%s: %s given twice", c.first(), opt)
		}
		seen[opt] = true
		if isFlag(opt) {
			c.setFlag(opt)
			continue
		}
		if i+1 >= len(args) {
			return Check{}, 0, fmt.Errorf("%s: %s needs a value", c.first(), opt)
		}
		i++
		if err := c.setOption(opt, args[i]); err != nil {
			return Check{}, 0, fmt.Errorf("%s: %w", c.first(), err)
		}
	}
	if c.Kind == GRPC && c.Insecure && !c.TLS {
		// In grpc-go "insecure" means plaintext; here it means an
		// unverified certificate, which only TLS has.
		return Check{}, 0, fmt.Errorf("%s: insecure skips certificate checks and needs tls (without tls the check is plaintext)", c.first())
	}
	if err := c.validate(); err != nil {
		return Check{}, 0, err
	}
	if n := len(c.String()); n > MaxLen {
		return Check{}, 0, fmt.Errorf("%s: %d bytes, more than %d", c.first(), n, MaxLen)
	}
	return c, i, nil
}

func (c *Check) setFlag(opt string) {
	switch opt {
	case "tls":
		c.TLS = true
	case "insecure":
		c.Insecure = true
	}
}

func (c *Check) setOption(opt, v string) error {
	switch opt {
	case "host":
		if !isName(v) {
			return fmt.Errorf("host %q: want a host name (and port) of up to %d characters", v, maxName)
		}
		c.Host = v
	case "service":
		if !isName(v) {
			return fmt.Errorf("service %q: want a gRPC service name like app.v1.Orders, up to %d characters", v, maxName)
		}
		c.Service = v
	case "status":
		codes := strings.Split(v, ",")
		if len(codes) > maxStatus {
			return fmt.Errorf("status %q: more than %d codes", v, maxStatus)
		}
		for _, s := range codes {
			code, err := strconv.Atoi(s)
			if err != nil || code < 100 || code > 599 {
				return fmt.Errorf("status %q: want HTTP status codes like 200 or 200,204", v)
			}
			c.Status = append(c.Status, code)
		}
	case "body":
		if err := checkBody(v); err != nil {
			return err
		}
		c.Body = v
	}
	return nil
}

// validate checks the URL or address, with {addr} filled in by an address
// of each family when it is there, and the kind's own rules.
func (c *Check) validate() error {
	first := c.target()
	if len(first) > MaxLen {
		return fmt.Errorf("check %.40q...: %d bytes, more than %d", first, len(first), MaxLen)
	}
	if !isWord(first) {
		return fmt.Errorf("%s: want a URL or HOST:PORT of printable characters without spaces or '|' (write %%7C)", c.first())
	}
	if !c.IsTemplate() {
		return kinds[c.Kind].validate(c, first)
	}
	for _, a := range []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")} {
		if err := kinds[c.Kind].validate(c, fill(first, a)); err != nil {
			return fmt.Errorf("%w (with %s for %s)", err, a, AddrPlaceholder)
		}
	}
	return nil
}

// target is what the check connects to: its URL or its address.
func (c Check) target() string {
	if kinds[c.Kind].word {
		return c.Addr
	}
	return c.URL
}

// IsTemplate reports whether c's URL or address holds {addr}.
func (c Check) IsTemplate() bool {
	return strings.Contains(c.URL, AddrPlaceholder) || strings.Contains(c.Addr, AddrPlaceholder)
}

// ForAddr returns c with {addr} in its URL or address replaced by a ([a]
// for IPv6), the check of one target. A check without {addr} is returned
// as it is.
func (c Check) ForAddr(a netip.Addr) (Check, error) {
	if !c.IsTemplate() {
		return c, nil
	}
	x := c
	x.Status = append([]int(nil), c.Status...)
	x.prober = nil
	x.URL, x.Addr = fill(c.URL, a), fill(c.Addr, a)
	if err := kinds[x.Kind].validate(&x, x.target()); err != nil {
		return Check{}, fmt.Errorf("check %s for %s: %w", c, a, err)
	}
	if n := len(x.String()); n > MaxLen {
		return Check{}, fmt.Errorf("check %s for %s: %d bytes, more than %d", c, a, n, MaxLen)
	}
	return x, nil
}

func fill(s string, a netip.Addr) string {
	if s == "" {
		return s
	}
	host := a.Unmap().WithZone("").String()
	if a.Unmap().Is6() {
		host = "[" + host + "]"
	}
	return strings.ReplaceAll(s, AddrPlaceholder, host)
}

// String is the canonical form of the check.
func (c Check) String() string {
	var b strings.Builder
	k := kinds[c.Kind]
	if k.word {
		b.WriteString(k.name + " " + c.Addr)
	} else {
		b.WriteString(c.URL)
	}
	for _, opt := range k.options {
		switch opt {
		case "host":
			if c.Host != "" {
				b.WriteString(" host " + c.Host)
			}
		case "service":
			if c.Service != "" {
				b.WriteString(" service " + c.Service)
			}
		case "status":
			for i, s := range c.Status {
				if i == 0 {
					b.WriteString(" status ")
				} else {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Itoa(s))
			}
		case "body":
			if c.Body != "" {
				b.WriteString(" body " + quoteWord(c.Body))
			}
		case "tls", "insecure":
			if (opt == "tls" && c.TLS) || (opt == "insecure" && c.Insecure) {
				b.WriteString(" " + opt)
			}
		}
	}
	return b.String()
}

// first names the check by its start, for errors.
func (c Check) first() string {
	if c.Kind == TCP || c.Kind == GRPC {
		return fmt.Sprintf("%s check %q", c.Kind, c.Addr)
	}
	return fmt.Sprintf("check %q", c.URL)
}

// want lists the options of a kind, for errors.
func (k Kind) want() string {
	if len(kinds[k].options) == 0 {
		return "a " + k.String() + " check takes no options"
	}
	return "want " + strings.Join(kinds[k].options, ", ")
}

func kindList(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}

// isWord reports whether s is a non-empty run of printable ASCII without
// spaces that does not start a quoted word: it is written as it is. '|'
// is refused too: Target.Key joins checks with it, and a URL holding one
// could pass for two checks of another target (quoted body text cannot).
func isWord(s string) bool {
	if s == "" || s[0] == '"' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '|' {
			return false
		}
	}
	return true
}

func isName(s string) bool {
	return isWord(s) && len(s) <= maxName && !strings.ContainsAny(s, "\"#/")
}

// checkBody checks that text can be a body option and written back.
func checkBody(text string) error {
	if text == "" || len(text) > MaxBody {
		return fmt.Errorf("body: want 1 to %d bytes of text", MaxBody)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("body %q: not UTF-8", text)
	}
	for _, r := range text {
		if unicode.IsControl(r) {
			return fmt.Errorf("body %q: control characters cannot be matched", text)
		}
	}
	if needsQuotes(text) {
		// Inside quotes a backslash escapes the next character, as the
		// Corefile reads them; \" is a quote and nothing writes a lone
		// backslash before a quote or at the end.
		for i := 0; i < len(text); {
			if text[i] != '\\' {
				i++
				continue
			}
			j := i
			for j < len(text) && text[j] == '\\' {
				j++
			}
			if (j-i)%2 == 1 && (j == len(text) || text[j] == '"') {
				return fmt.Errorf("body %q: in quotes, an odd run of backslashes cannot come before a quote or at the end", text)
			}
			i = j
		}
	}
	return nil
}

func needsQuotes(s string) bool {
	return s == "" || s[0] == '"' || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '#' || r == '|' })
}

// quoteWord writes s so that splitWords reads it back as one word.
func quoteWord(s string) string {
	if !needsQuotes(s) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// splitWords splits s into words as the Corefile's lexer does: at spaces,
// and a word that starts with '"' runs to the next unescaped '"', with \"
// a quote and a backslash before anything else kept. '#' is no comment
// here: a property value has none.
func splitWords(s string) ([]string, error) {
	var words []string
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += n
			continue
		}
		if r != '"' {
			j := i
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if unicode.IsSpace(r) {
					break
				}
				j += n
			}
			words = append(words, s[i:j])
			i = j
			continue
		}
		var w strings.Builder
		escaped, closed := false, false
		for i++; i < len(s); i++ {
			ch := s[i]
			if !escaped {
				if ch == '\\' {
					escaped = true
					continue
				}
				if ch == '"' {
					closed = true
					i++
					break
				}
			}
			if escaped && ch != '"' {
				w.WriteByte('\\')
			}
			w.WriteByte(ch)
			escaped = false
		}
		if !closed {
			return nil, errors.New("a quote is not closed")
		}
		words = append(words, w.String())
	}
	return words, nil
}

// splitHostPort checks a HOST:PORT for tcp and grpc checks.
func splitHostPort(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if h == "" {
		return "", 0, errors.New("no host")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] < '0' || p[0] > '9' {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, n, nil
}

// ParseURLCheck is Parse of a URL alone, a shorthand for tests.
func ParseURLCheck(raw string) (Check, error) {
	if !strings.Contains(raw, "://") {
		return Check{}, fmt.Errorf("check %q: want an http:// or https:// URL", raw)
	}
	return Parse(quoteWord(raw))
}

// ParseTCPCheck is Parse of "tcp " + addr, a shorthand for tests.
func ParseTCPCheck(addr string) (Check, error) {
	return Parse("tcp " + quoteWord(addr))
}

// DialHost is the host a check connects to, as its prober will dial it:
// the URL's host or the address's host, without port or brackets. For a
// template it is "{addr}"; call it on ForAddr's result.
func (c Check) DialHost() string {
	if kinds[c.Kind].word {
		h, _, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return c.Addr
		}
		return h
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
