package gossip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/probe"
)

func mustCheck(t testing.TB, s string) probe.Check {
	t.Helper()
	c, err := probe.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testTarget(t testing.TB, addr string, checks ...string) CatalogTarget {
	t.Helper()
	pt := probe.Target{Addr: netip.MustParseAddr(addr), Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2}
	for _, c := range checks {
		pt.Checks = append(pt.Checks, mustCheck(t, c))
	}
	ct, err := NewCatalogTarget(pt)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func TestCatalogTargetRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		checks []string
	}{
		{"192.0.2.10", []string{"http://192.0.2.10/healthz"}},
		{"2001:db8::10", []string{"https://[2001:db8::10]:8443/healthz host app.example.com status 200,204 insecure"}},
		{"198.51.100.10", []string{"tcp 198.51.100.10:443", "http://198.51.100.10/ status 301"}},
		{"192.0.2.11", []string{"grpc 192.0.2.11:50051 service app.v1.Orders host app.example.com tls insecure", "grpc 127.0.0.1:50051"}},
		{"192.0.2.12", []string{`https://192.0.2.12/ready status 200 body "ready: \"yes\" #1"`}},
	} {
		pt := probe.Target{Addr: netip.MustParseAddr(tc.addr), Interval: 2 * time.Second, Timeout: time.Second, Rise: 3, Fall: 1}
		for _, c := range tc.checks {
			pt.Checks = append(pt.Checks, mustCheck(t, c))
		}
		ct, err := NewCatalogTarget(pt)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		for i, c := range ct.Checks {
			if c != tc.checks[i] {
				t.Errorf("%s: check %q, want %q", tc.addr, c, tc.checks[i])
			}
		}
		back, err := ct.Probe()
		if err != nil {
			t.Fatalf("%s: Probe: %v", tc.addr, err)
		}
		if back.Key() != pt.Key() || IDOf(back) != ct.ID {
			t.Errorf("%s: round trip changed the key: %q, want %q", tc.addr, back.Key(), pt.Key())
		}
	}
}

func TestCatalogTargetValidate(t *testing.T) {
	good := testTarget(t, "192.0.2.1", "tcp 192.0.2.1:80")
	bad := []func(*CatalogTarget){
		func(c *CatalogTarget) { c.ID++ },
		func(c *CatalogTarget) { c.Addr = netip.Addr{} },
		func(c *CatalogTarget) { c.Checks = nil },
		func(c *CatalogTarget) { c.Checks = []string{"ftp://x/"} },
		func(c *CatalogTarget) { c.Checks = []string{"http://x/ status"} },
		func(c *CatalogTarget) { c.Checks = []string{"http://x/ bogus"} },
		// Written before the grammar was one; its ID was the hash of this.
		func(c *CatalogTarget) { c.Checks = []string{"http://x/ status 200 204"} },
		// Valid, but not canonical: another server would hash another text.
		func(c *CatalogTarget) { c.Checks = []string{"http://x/ insecure host h"} },
		func(c *CatalogTarget) { c.Checks = []string{"tcp {addr}:80"} },
		func(c *CatalogTarget) { c.Checks = []string{"grpc x:1 insecure"} },
		func(c *CatalogTarget) { c.Interval = 0 },
		func(c *CatalogTarget) { c.Rise = 0 },
	}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	for i, f := range bad {
		c := good
		c.Checks = append([]string(nil), good.Checks...)
		f(&c)
		if err := c.validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, c)
		}
	}
}

// Every kind and option crosses the wire in a catalog page and comes back
// with the same ID.
func TestCatalogPageCarriesEveryKind(t *testing.T) {
	ts := []CatalogTarget{
		testTarget(t, "192.0.2.20", "grpc 127.0.0.1:50051 service app.v1.Orders host app.example.com tls insecure"),
		testTarget(t, "192.0.2.21", `https://127.0.0.1/ready host app.example.com status 200,204 body "say \"hi\"" insecure`, "tcp 127.0.0.1:443"),
	}
	s := newState("server-1", "eu-west", RoleServer, 1, time.Minute)
	pages, err := s.publishCatalog(ts, "server-1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[TargetID]CatalogTarget{}
	for _, p := range pages {
		m, err := decodeMessage(p.encode())
		if err != nil {
			t.Fatal(err)
		}
		for _, ct := range m.(*catalogPage).Targets {
			got[ct.ID] = ct
		}
	}
	if len(got) != len(ts) {
		t.Fatalf("%d targets back, want %d", len(got), len(ts))
	}
	for _, want := range ts {
		if !got[want.ID].equal(want) {
			t.Errorf("%+v back, want %+v", got[want.ID], want)
		}
	}
}
