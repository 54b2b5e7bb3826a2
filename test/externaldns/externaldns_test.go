// Package externaldns drives the healthdns webhook through ExternalDNS's
// own code: its webhook provider client (provider/webhook), its TXT
// ownership registry (registry/txt) and its planner (plan), which together
// are one reconcile cycle of the ExternalDNS controller. It is a module of
// its own so that ExternalDNS's dependencies stay out of healthdns's.
//
// The tests take the webhook's URL from an Env. In TestTwoClustersOneName
// the webhooks run in this process over a records.Store in a temporary
// directory. TestTwoClustersRealServer (e2e_test.go) runs the real
// binaries, built by TestMain from the main module: a healthdns server and
// two healthdns-agent sidecars, one per cluster, on 127.0.0.91-94; its Env
// answers with the server's DNS answers over UDP and TCP.
//
// Run from the repository root:
//
//	cd test/externaldns && go test -count=1 ./...
package externaldns

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
	hdwebhook "github.com/healthdns/healthdns/plugin/healthdns/webhook"

	"sigs.k8s.io/external-dns/endpoint"
	"sigs.k8s.io/external-dns/pkg/apis/externaldns"
	"sigs.k8s.io/external-dns/plan"
	"sigs.k8s.io/external-dns/provider"
	"sigs.k8s.io/external-dns/provider/webhook"
	"sigs.k8s.io/external-dns/registry"
	"sigs.k8s.io/external-dns/registry/txt"
	"sigs.k8s.io/external-dns/source/annotations"
)

const zone = "gslb.example.com"

// Env is where the webhooks under test run.
type Env struct {
	// URL is the webhook URL of an owner (ExternalDNS's
	// --webhook-provider-url).
	URL func(owner string) string
	// Answers returns what the name answers for a type across every
	// owner, sorted: here the merged targets of every owner's records;
	// against a real server, its DNS answers over the wire.
	Answers func(t *testing.T, name, qtype string) []string
}

// inProcess starts one webhook per owner in this process, over one
// records.Store in a temporary directory, as a healthdns server with a
// webhook per cluster would hold them.
func inProcess(t *testing.T, owners ...string) (Env, *records.Store) {
	t.Helper()
	st, err := records.Open(t.TempDir(), records.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	filter, err := records.NewFilter([]string{zone}, nil)
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{}
	for _, o := range owners {
		w, err := hdwebhook.New(st, hdwebhook.Config{Owner: o, Filter: filter, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(w)
		t.Cleanup(srv.Close)
		urls[o] = srv.URL
	}
	return Env{
		URL: func(owner string) string { return urls[owner] },
		Answers: func(t *testing.T, name, qtype string) []string {
			var out []string
			state := st.State()
			for _, o := range state.Owners() {
				state.Range(o, func(e records.Endpoint) bool {
					if e.DNSName == name && e.RecordType == qtype {
						out = append(out, e.Targets...)
					}
					return true
				})
			}
			sort.Strings(out)
			return out
		},
	}, st
}

// Cluster is the ExternalDNS of one Kubernetes cluster, configured with the
// flags the README gives.
type Cluster struct {
	Owner    string
	Provider provider.Provider
	Registry registry.Registry
	cfg      *externaldns.Config
}

// Flags are ExternalDNS's command line for a cluster, as in the README.
func Flags(owner, url string) []string {
	return []string{
		"--source=service",
		"--provider=webhook",
		"--webhook-provider-url=" + url,
		"--registry=txt",
		"--txt-owner-id=" + owner,
		"--domain-filter=" + zone,
		"--policy=sync",
	}
}

// NewCluster negotiates with the webhook, as ExternalDNS does at start.
func NewCluster(t *testing.T, ctx context.Context, owner, url string) *Cluster {
	t.Helper()
	cfg := externaldns.NewConfig()
	if err := cfg.ParseFlags(Flags(owner, url)); err != nil {
		t.Fatal(err)
	}
	p, err := webhook.New(ctx, cfg, endpoint.NewDomainFilter(cfg.DomainFilter))
	if err != nil {
		t.Fatalf("%s: negotiate: %v", owner, err)
	}
	r, err := txt.New(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Owner: owner, Provider: p, Registry: r, cfg: cfg}
}

// Service is what a source turns a Kubernetes Service into: a name, its
// load balancer addresses, and the annotations of the Service.
type Service struct {
	Name        string
	Addrs       []string
	Annotations map[string]string
}

// desired makes the endpoints a source and ExternalDNS's post-processing
// produce for the services.
func (c *Cluster) desired(svcs []Service) []*endpoint.Endpoint {
	var out []*endpoint.Endpoint
	for _, s := range svcs {
		byType := map[string][]string{}
		for _, a := range s.Addrs {
			typ := endpoint.RecordTypeA
			if strings.Contains(a, ":") {
				typ = endpoint.RecordTypeAAAA
			}
			byType[typ] = append(byType[typ], a)
		}
		props, setID := annotations.ProviderSpecificAnnotations(s.Annotations)
		for typ, addrs := range byType {
			e := endpoint.NewEndpoint(s.Name, typ, addrs...)
			e.SetIdentifier = setID
			e.ProviderSpecific = slices.Clone(props)
			e.Labels[endpoint.ResourceLabelKey] = "service/default/" + strings.Split(s.Name, ".")[0]
			e.RetainProviderProperties(c.cfg.Provider)
			out = append(out, e)
		}
	}
	return out
}

// Reconcile is one cycle of ExternalDNS's controller (controller.RunOnce):
// read the registry, adjust the desired endpoints, plan, apply.
func (c *Cluster) Reconcile(t *testing.T, ctx context.Context, svcs ...Service) *plan.Changes {
	t.Helper()
	changes, err := c.TryReconcile(ctx, svcs...)
	if err != nil {
		t.Fatal(err)
	}
	return changes
}

// TryReconcile is Reconcile that returns the error a cycle ends with, as
// ExternalDNS logs it and tries again at the next.
func (c *Cluster) TryReconcile(ctx context.Context, svcs ...Service) (*plan.Changes, error) {
	current, err := c.Registry.Records(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: records: %w", c.Owner, err)
	}
	desired, err := c.Registry.AdjustEndpoints(c.desired(svcs))
	if err != nil {
		return nil, fmt.Errorf("%s: adjust endpoints: %w", c.Owner, err)
	}
	p := &plan.Plan{
		Policies:       []plan.Policy{plan.Policies[c.cfg.Policy]},
		Current:        current,
		Desired:        desired,
		DomainFilter:   endpoint.MatchAllDomainFilters{endpoint.NewDomainFilter(c.cfg.DomainFilter), c.Registry.GetDomainFilter()},
		ManagedRecords: c.cfg.ManagedDNSRecordTypes,
		ExcludeRecords: c.cfg.ExcludeDNSRecordTypes,
		OwnerID:        c.Registry.OwnerID(),
	}
	p = p.Calculate()
	if p.Changes.HasChanges() {
		if err := c.Registry.ApplyChanges(ctx, p.Changes); err != nil {
			return nil, fmt.Errorf("%s: apply changes: %w", c.Owner, err)
		}
	}
	return p.Changes, nil
}

// Records is what the cluster's ExternalDNS reads back, as
// "name type target,target owner=OWNER", sorted.
func (c *Cluster) Records(t *testing.T, ctx context.Context) []string {
	t.Helper()
	eps, err := c.Registry.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range eps {
		ts := slices.Clone([]string(e.Targets))
		sort.Strings(ts)
		out = append(out, fmt.Sprintf("%s %s %s owner=%s", e.DNSName, e.RecordType, strings.Join(ts, ","), e.Labels[endpoint.OwnerLabelKey]))
	}
	sort.Strings(out)
	return out
}

func summary(c *plan.Changes) string {
	f := func(eps []*endpoint.Endpoint) string {
		var s []string
		for _, e := range eps {
			s = append(s, e.RecordType+" "+e.DNSName)
		}
		sort.Strings(s)
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("create [%s] update [%s] delete [%s]", f(c.Create), f(c.UpdateNew), f(c.Delete))
}

func expect(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

const app = "app." + zone

func TestTwoClustersOneName(t *testing.T) {
	env, st := inProcess(t, "eu", "us")
	TwoClustersOneName(t, env)
	// Each owner's records are its own.
	if got := st.State().Owners(); len(got) != 2 || got[0] != "eu" || got[1] != "us" {
		t.Errorf("owners %v", got)
	}
}

// TwoClustersOneName runs the scenario of the issue against env: two
// clusters publish one name; each reads, updates and deletes only its own.
func TwoClustersOneName(t *testing.T, env Env) {
	ctx := context.Background()
	eu := NewCluster(t, ctx, "eu", env.URL("eu"))
	us := NewCluster(t, ctx, "us", env.URL("us"))

	// Negotiation gave ExternalDNS the domain filter.
	df := eu.Provider.GetDomainFilter()
	if !df.Match(app) || df.Match("app.example.org") {
		t.Fatalf("negotiated domain filter %+v", df)
	}

	// Create: the first cluster publishes app, with a weight.
	euSvc := Service{Name: app, Addrs: []string{"192.0.2.1"}, Annotations: map[string]string{
		annotations.WebhookPrefix + "weight": "2",
		annotations.WebhookPrefix + "check":  "http://{addr}/healthz",
	}}
	ch := eu.Reconcile(t, ctx, euSvc)
	if got := summary(ch); got != "create [A app.gslb.example.com] update [] delete []" {
		t.Fatalf("eu's first plan: %s", got)
	}
	expect(t, "eu reads", eu.Records(t, ctx), []string{"app.gslb.example.com A 192.0.2.1 owner=eu"})
	expect(t, "A answers", env.Answers(t, app, "A"), []string{"192.0.2.1"})
	// The TXT registry wrote its ownership record beside it.
	expect(t, "TXT answers", env.Answers(t, "a-app."+zone, "TXT"), []string{`"heritage=external-dns,external-dns/owner=eu,external-dns/resource=service/default/app"`})

	// The second cluster publishes the same name. With one shared view it
	// would see eu's record, not own it, and plan nothing; with its own
	// view it creates its record beside eu's.
	usSvc := Service{Name: app, Addrs: []string{"198.51.100.1", "2001:db8::1"}}
	ch = us.Reconcile(t, ctx, usSvc)
	if got := summary(ch); got != "create [A app.gslb.example.com, AAAA app.gslb.example.com] update [] delete []" {
		t.Fatalf("us's first plan: %s", got)
	}
	expect(t, "us reads", us.Records(t, ctx), []string{"app.gslb.example.com A 198.51.100.1 owner=us", "app.gslb.example.com AAAA 2001:db8::1 owner=us"})
	expect(t, "eu still reads", eu.Records(t, ctx), []string{"app.gslb.example.com A 192.0.2.1 owner=eu"})
	expect(t, "A answers", env.Answers(t, app, "A"), []string{"192.0.2.1", "198.51.100.1"})
	expect(t, "AAAA answers", env.Answers(t, app, "AAAA"), []string{"2001:db8::1"})
	// The TXT registry records of both are stored and served.
	txts := env.Answers(t, "a-app."+zone, "TXT")
	if len(txts) != 2 || !strings.Contains(txts[0], "external-dns/owner=eu") || !strings.Contains(txts[1], "external-dns/owner=us") {
		t.Fatalf("TXT answers %q", txts)
	}

	// Nothing changed: a second cycle plans nothing (adjust and read agree).
	for _, c := range []struct {
		c   *Cluster
		svc Service
	}{{eu, euSvc}, {us, usSvc}} {
		if ch := c.c.Reconcile(t, ctx, c.svc); ch.HasChanges() {
			t.Fatalf("%s: a cycle with nothing new planned %s", c.c.Owner, summary(ch))
		}
	}

	// Adjust: healthdns normalises its properties and leaves out what it
	// cannot serve.
	adj, err := eu.Provider.AdjustEndpoints([]*endpoint.Endpoint{
		endpoint.NewEndpoint("web."+zone, "A", "192.0.2.7").WithProviderSpecific("webhook/weight", "010").WithProviderSpecific("webhook/tier", "first"),
		endpoint.NewEndpoint("mail."+zone, "MX", "10 mx.example.com"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(adj) != 1 || adj[0].DNSName != "web."+zone || len(adj[0].ProviderSpecific) != 1 || adj[0].ProviderSpecific[0] != (endpoint.ProviderSpecificProperty{Name: "webhook/weight", Value: "10"}) {
		t.Fatalf("adjusted %+v", adj)
	}

	// Update: eu adds an address and changes the weight; us is untouched.
	euSvc.Addrs = []string{"192.0.2.1", "192.0.2.2"}
	euSvc.Annotations[annotations.WebhookPrefix+"weight"] = "3"
	ch = eu.Reconcile(t, ctx, euSvc)
	if got := summary(ch); got != "create [] update [A app.gslb.example.com] delete []" {
		t.Fatalf("eu's update plan: %s", got)
	}
	expect(t, "eu reads", eu.Records(t, ctx), []string{"app.gslb.example.com A 192.0.2.1,192.0.2.2 owner=eu"})
	expect(t, "us reads", us.Records(t, ctx), []string{"app.gslb.example.com A 198.51.100.1 owner=us", "app.gslb.example.com AAAA 2001:db8::1 owner=us"})
	expect(t, "A answers", env.Answers(t, app, "A"), []string{"192.0.2.1", "192.0.2.2", "198.51.100.1"})

	// Delete: eu's service goes; us's targets stay.
	ch = eu.Reconcile(t, ctx)
	if got := summary(ch); got != "create [] update [] delete [A app.gslb.example.com]" {
		t.Fatalf("eu's delete plan: %s", got)
	}
	expect(t, "eu reads", eu.Records(t, ctx), nil)
	expect(t, "us reads", us.Records(t, ctx), []string{"app.gslb.example.com A 198.51.100.1 owner=us", "app.gslb.example.com AAAA 2001:db8::1 owner=us"})
	expect(t, "A answers", env.Answers(t, app, "A"), []string{"198.51.100.1"})
	if txts := env.Answers(t, "a-app."+zone, "TXT"); len(txts) != 1 || !strings.Contains(txts[0], "owner=us") {
		t.Fatalf("TXT answers after eu's delete %q", txts)
	}
	if ch := us.Reconcile(t, ctx, usSvc); ch.HasChanges() {
		t.Fatalf("us after eu's delete planned %s", summary(ch))
	}

	// And us leaves too: the name is gone.
	us.Reconcile(t, ctx)
	expect(t, "A answers", env.Answers(t, app, "A"), nil)
}

func TestNegotiationRefusesWrongServer(t *testing.T) {
	// ExternalDNS refuses a server that does not answer in the media type.
	srv := httptest.NewServer(nil) // 404 for everything
	defer srv.Close()
	cfg := externaldns.NewConfig()
	if err := cfg.ParseFlags(Flags("eu", srv.URL)); err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.New(context.Background(), cfg, nil); err == nil {
		t.Fatal("negotiated with a server that is not a webhook")
	}
}

func TestChangesOutsideTheFilterAreRefused(t *testing.T) {
	// ExternalDNS never plans names outside the negotiated filter; a
	// client that sends one anyway gets a permanent (4xx) error and
	// nothing changes.
	env, st := inProcess(t, "eu")
	ctx := context.Background()
	eu := NewCluster(t, ctx, "eu", env.URL("eu"))
	err := eu.Provider.ApplyChanges(ctx, &plan.Changes{Create: []*endpoint.Endpoint{endpoint.NewEndpoint("app.example.org", "A", "192.0.2.1")}})
	if err == nil || strings.Contains(err.Error(), "soft") {
		t.Fatalf("error %v, want a permanent one", err)
	}
	if len(st.State().Owners()) != 0 {
		t.Error("stored a refused change")
	}
}
