package healthdns

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// freeAddrOn returns a free TCP address on ip, of this helper's block.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// statusCode GETs url and returns its status, 0 if nothing answers.
func statusCode(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A reload acquires the status and control listeners before the old
// instance releases them: they keep answering, from the new instance,
// and close only when the last instance lets go.
func TestListenersOutliveReload(t *testing.T) {
	for _, l := range []struct {
		what    string
		acquire func(string, *HealthDNS) error
		release func(string, *HealthDNS)
		path    string
		served  int // the answer while an instance holds it
	}{
		{"status", acquireStatus, releaseStatus, "/status", http.StatusOK},
		{"control", acquireControl, releaseControl, "/v1/overrides", http.StatusOK},
	} {
		t.Run(l.what, func(t *testing.T) {
			addr := freeAddrOn(t, "127.0.7.1")
			cfg := &config{control: &controlConfig{insecure: true}}
			old, cur := newHandler(cfg, probe.NewPool()), newHandler(cfg, probe.NewPool())
			url := "http://" + addr + l.path
			if err := l.acquire(addr, old); err != nil {
				t.Fatal(err)
			}
			if got := statusCode(url); got != l.served {
				t.Fatalf("held by one instance: %d, want %d", got, l.served)
			}
			if err := l.acquire(addr, cur); err != nil {
				t.Fatalf("second acquire (a reload): %v", err)
			}
			l.release(addr, old)
			if got := statusCode(url); got != l.served {
				t.Fatalf("after the old instance let go: %d, want %d", got, l.served)
			}
			l.release(addr, cur)
			if got := statusCode(url); got != 0 {
				t.Fatalf("after the last release: %d, want the port closed", got)
			}
			// The address is free again: a new server can take it.
			if err := l.acquire(addr, cur); err != nil {
				t.Fatalf("acquire after close: %v", err)
			}
			l.release(addr, cur)
		})
	}
}

// The registry opens a key once, counts its holders, forgets a failed
// open, and closes on the last release only.
func TestRegistry(t *testing.T) {
	var r registry[string, *int]
	opens, closes := 0, 0
	open := func() (*int, error) { opens++; v := opens; return &v, nil }
	var opened []bool
	use := func(_ *int, o bool) { opened = append(opened, o) }
	a, _ := r.acquire("k", open, use)
	b, _ := r.acquire("k", open, use)
	if a != b || opens != 1 || len(opened) != 2 || !opened[0] || opened[1] {
		t.Fatalf("two acquires: same value %v, %d opens, opened %v; want one open, the second reusing it", a == b, opens, opened)
	}
	done := func(_ *int, last bool) {
		if last {
			closes++
		}
	}
	r.release("k", done)
	if closes != 0 || r.len() != 1 {
		t.Fatalf("one of two released: %d closes, %d keys", closes, r.len())
	}
	r.release("k", done)
	r.release("k", done) // not held: nothing happens
	if closes != 1 || r.len() != 0 {
		t.Fatalf("both released: %d closes, %d keys; want 1, 0", closes, r.len())
	}
	if _, err := r.acquire("bad", func() (*int, error) { return nil, net.ErrClosed }, nil); err != net.ErrClosed || r.len() != 0 {
		t.Fatalf("failed open: %v, %d keys; want its error and nothing held", err, r.len())
	}
}

// A record store and its webhook outlive a reload the same way: the
// store stays open (its lock held) and the webhook answers until the last
// instance lets go; then the data directory can be opened again.
func TestStoreAndWebhookOutliveReload(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddrOn(t, "127.0.7.2")
	wc := &webhookConfig{addr: addr, owner: "eu", defaults: []records.Property{{Name: records.PropCheck, Value: "tcp {addr}:443"}}}
	url := "http://" + addr + "/"
	var refs []*storeRef
	for range 2 { // the old instance, then the new one of a reload
		ref := acquireStore(dir)
		if _, err := ref.get(); err != nil {
			t.Fatalf("store: %v", err)
		}
		if _, err := acquireWebhook(wc, ref, []string{"example.org."}); err != nil {
			t.Fatalf("webhook: %v", err)
		}
		refs = append(refs, ref)
	}
	if refs[0] != refs[1] {
		t.Fatal("a reload opened the store a second time")
	}
	releaseWebhook(addr)
	releaseStore(dir)
	if got := statusCode(url); got != http.StatusOK {
		t.Fatalf("webhook after the old instance let go: %d, want 200", got)
	}
	st, err := refs[1].get()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply("eu", records.Changes{Create: []records.Endpoint{{DNSName: "a.example.org", RecordType: "A", Targets: []string{"192.0.2.1"}}}}); err != nil {
		t.Fatalf("store after the old instance let go: %v", err)
	}
	releaseWebhook(addr)
	releaseStore(dir)
	if got := statusCode(url); got != 0 {
		t.Fatalf("webhook after the last release: %d, want the port closed", got)
	}
	again, err := records.Open(dir, records.Options{})
	if err != nil {
		t.Fatalf("the data directory after the last release: %v", err)
	}
	defer again.Close()
	if n := len(again.State().Owners()); n != 1 {
		t.Fatalf("reopened store has %d owners, want 1", n)
	}
}

// The gossip node outlives a reload too: the new instance gets the same
// node, which leaves the cluster only on the last release, after which
// its address can be bound again.
func TestMemberOutlivesReload(t *testing.T) {
	addr := freeAddrOn(t, "127.0.7.3")
	c := caddy.NewTestController("dns", "cluster {\nname s1\nbind "+addr+"\ninsecure\n}")
	c.Next()
	cc, err := parseCluster(c)
	if err != nil {
		t.Fatal(err)
	}
	old, cur := &HealthDNS{}, &HealthDNS{}
	a, err := acquireMember(cc, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := acquireMember(cc, "")
	if err != nil {
		t.Fatalf("second acquire (a reload): %v", err)
	}
	if a != b {
		t.Fatal("a reload started a second gossip node")
	}
	a.release(old)
	if n := len(b.node.Members()); n != 1 {
		t.Fatalf("after the old instance let go the node knows %d members, want itself", n)
	}
	b.release(cur)
	if members.len() != 0 {
		t.Fatalf("%d members held after the last release", members.len())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the gossip address after the last release: %v", err)
	}
	ln.Close()
}
