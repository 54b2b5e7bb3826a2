package healthdns

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The control listener is bounded as every other HTTP listener is: with
// its connections all held by clients that send nothing, one more is
// closed at once instead of holding another descriptor.
func TestControlConnectionBound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.6.3:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &HealthDNS{cfg: &config{control: &controlConfig{addr: addr, insecure: true}}}
	if err := acquireControl(addr, h); err != nil {
		t.Fatal(err)
	}
	defer releaseControl(addr, h)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range controlLimits.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them all
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
		t.Fatalf("a connection over the bound of %d: %v, want closed at once", controlLimits.MaxConns, err)
	}
}

// A region= selector (status README) drains the targets of that region:
// targets carry regions since the geo policy, and the selector sees them.
// Its own zone: overrides without a cluster live with the zones' verdicts.
func TestControlRegionSelector(t *testing.T) {
	up := upServer(t)
	token := "0123456789abcdef0123456789abcdef"
	ctl := freeAddr(t)
	zf := filepath.Join(t.TempDir(), "example.net.zone")
	zone := "$ORIGIN example.net.\n@ 3600 IN SOA ns1 admin 1 7200 3600 1209600 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.53\n"
	if err := os.WriteFile(zf, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	udp, tcp := startWire(t, `example.net:0 {
    bind 127.0.0.1
    healthdns {
        zonefile `+zf+`
        interval 200ms
        timeout 100ms
        rise 1
        fall 1
        control `+ctl+` {
            tokenfile `+tokenFile(t, token)+`
        }
        name app {
            target 192.0.2.10 region eu check `+up+`
            target 192.0.2.12 region us check `+up+`
        }
    }
}
`)
	answers := func(network, addr string) []string {
		m := new(dns.Msg)
		m.SetQuestion("app.example.net.", dns.TypeA)
		var out []string
		for _, rr := range exchange(t, network, addr, m).Answer {
			if a, ok := rr.(*dns.A); ok {
				out = append(out, a.A.String())
			}
		}
		slices.Sort(out)
		return out
	}
	want := func(what string, addrs ...string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			gotU, gotT := answers("udp", udp), answers("tcp", tcp)
			if slices.Equal(gotU, addrs) && slices.Equal(gotT, addrs) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: answers %v (UDP) %v (TCP), want %v", what, gotU, gotT, addrs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want("at start", "192.0.2.10", "192.0.2.12")
	c := controlClient{t: t, base: "http://" + ctl, token: token}
	code, body := c.do("POST", `{"selector":"region=eu","state":"drain"}`)
	if code != http.StatusOK || body["matched"] != 1.0 {
		t.Fatalf("drain region=eu: %d %v, want 200 matching 192.0.2.10", code, body)
	}
	want("region eu drained", "192.0.2.12")
}
