package healthdns

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// One check text, three ways in: a Corefile target, a webhook/check
// property (and the webhook block's default check), and the gossip
// catalog an agent learns from a server over a real memberlist. Each must
// come out as the same probe with the same target ID, or a kind one path
// misses is silently never probed in a cluster.
func TestCheckSameOnEveryPath(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.10")
	texts := []string{
		"tcp 127.0.0.1:443",
		"tcp {addr}:443",
		"http://127.0.0.1:8080/healthz",
		"http://{addr}:8080/ready status 200,204",
		`https://127.0.0.1/healthz host app.example.com status 200,301 body "ready: yes" insecure`,
		`https://{addr}/healthz host app.example.com body {"status":"UP"}`,
		"grpc 127.0.0.1:50051",
		"grpc {addr}:50051 service app.v1.Orders host app.example.com tls insecure",
	}
	server := startGossip(t, "server-1", gossip.RoleServer)
	agent := startGossip(t, "agent-1", gossip.RoleAgent)
	if _, err := agent.Join(server.Addr()); err != nil {
		t.Fatal(err)
	}

	zf := writeZone(t, testZone)
	type paths struct{ corefile, property, webhook probe.Target }
	got := map[gossip.TargetID]paths{}
	var catalog []gossip.CatalogTarget
	for _, text := range texts {
		// The Corefile: a name's target, and the webhook block's default.
		c := caddy.NewTestController("dns", `healthdns example.org {
			zonefile `+zf+`
			interval 1s
			timeout 500ms
			data `+t.TempDir()+`
			webhook 127.0.0.1:8888 {
				owner east
				check `+text+`
			}
			name app {
				target 192.0.2.10 check `+text+`
			}
		}`)
		cfg, err := parse(c)
		if err != nil {
			t.Fatalf("%s: Corefile: %v", text, err)
		}
		fromCorefile := *cfg.names[0].Targets[0].Probe
		var def string
		for _, p := range cfg.webhook.defaults {
			if p.Name == records.PropCheck {
				def = p.Value
			}
		}

		// webhook/check as ExternalDNS sends it, and the webhook block's
		// default, both filled in per target.
		v, err := records.NormalizeProperty(records.PropCheck, text)
		if err != nil {
			t.Fatalf("%s: property: %v", text, err)
		}
		if v != text || def != text {
			t.Errorf("%s: stored as %q (property) and %q (webhook default), want it as written", text, v, def)
		}
		timed := func(ch probe.Check) probe.Target {
			return probe.Target{Addr: addr, Checks: []probe.Check{ch}, Interval: fromCorefile.Interval, Timeout: fromCorefile.Timeout, Rise: fromCorefile.Rise, Fall: fromCorefile.Fall}
		}
		prop, err := records.CheckFor(v, addr)
		if err != nil {
			t.Fatalf("%s: CheckFor: %v", text, err)
		}
		hook, err := records.CheckFor(def, addr)
		if err != nil {
			t.Fatalf("%s: CheckFor(default): %v", text, err)
		}
		ps := paths{fromCorefile, timed(prop), timed(hook)}
		for what, pt := range map[string]probe.Target{"property": ps.property, "webhook default": ps.webhook} {
			if pt.Key() != fromCorefile.Key() {
				t.Errorf("%s: %s gives %q, the Corefile %q", text, what, pt.Key(), fromCorefile.Key())
			}
		}
		ct, err := gossip.NewCatalogTarget(fromCorefile)
		if err != nil {
			t.Fatalf("%s: catalog: %v", text, err)
		}
		got[ct.ID] = ps
		catalog = append(catalog, ct)
	}
	if err := server.PublishCatalog(catalog); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(agent.Catalog()) < len(catalog) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	learnt := agent.Catalog()
	if len(learnt) != len(catalog) {
		t.Fatalf("the agent learnt %d of %d targets: %v", len(learnt), len(catalog), learnt)
	}
	for _, ct := range learnt {
		ps, ok := got[ct.ID]
		if !ok {
			t.Errorf("the agent learnt an ID no path made: %v", ct)
			continue
		}
		pt, err := ct.Probe()
		if err != nil {
			t.Errorf("%v: %v", ct, err)
			continue
		}
		if pt.Key() != ps.corefile.Key() || gossip.IDOf(pt) != ct.ID {
			t.Errorf("through the catalog: %q, from the Corefile %q", pt.Key(), ps.corefile.Key())
		}
		for i := range pt.Checks {
			if !pt.Checks[i].Equal(ps.corefile.Checks[i]) {
				t.Errorf("through the catalog: %+v, from the Corefile %+v", pt.Checks[i], ps.corefile.Checks[i])
			}
		}
	}
}

func startGossip(t *testing.T, name string, role gossip.Role) *gossip.Node {
	t.Helper()
	n, err := gossip.New(gossip.Config{
		Name: name, Observer: name, Role: role,
		BindAddr: "127.0.0.1", BindPort: 0, LogOutput: io.Discard,
		GossipInterval: 50 * time.Millisecond, PushPullInterval: time.Second,
		ProbeInterval: 200 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		RejoinInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	return n
}
