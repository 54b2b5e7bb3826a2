package recordmerge

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/policy"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"
	"github.com/healthdns/healthdns/plugin/healthdns/zone"
)

// mergeZone is the zone every merge case serves: a name of its own
// (fixed), a delegation (sub) and a CNAME (alias).
const mergeZone = `$ORIGIN example.org.
@     3600 IN SOA ns1 hostmaster 1 3600 600 604800 60
@     3600 IN NS  ns1
ns1   3600 IN A   192.0.2.53
fixed 300  IN A   192.0.2.99
fixed 300  IN TXT "zone"
sub   3600 IN NS  ns.elsewhere.net.
alias 300  IN CNAME fixed
`

// corefileName is a name block of the Corefile with one tcp:80 target
// per address, as setup makes it.
func corefileName(fqdn string, p policy.Policy, maxAnswers int, addrs ...string) *Name {
	n := &Name{FQDN: fqdn, Settings: &Settings{TTL: 30, Policy: p, MaxAnswers: maxAnswers, Quorum: health.Quorum{Kind: health.Majority}}}
	for _, a := range addrs {
		addr := netip.MustParseAddr(a)
		pt := probe.Target{Addr: addr, Checks: []probe.Check{{Kind: probe.TCP, Addr: netip.AddrPortFrom(addr, 80).String()}}, Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 2}
		n.Targets = append(n.Targets, Target{TargetSpec: &TargetSpec{Tier: 1, Weight: 1, Probe: &pt, ID: gossip.IDOf(pt)}})
	}
	return n
}

// ep is an endpoint as ExternalDNS writes it; props are name=value pairs
// of webhook/ properties.
func ep(name, typ string, targets []string, props ...string) records.Endpoint {
	e := records.Endpoint{DNSName: name, RecordType: typ, Targets: targets}
	for _, p := range props {
		k, v, _ := strings.Cut(p, "=")
		e.ProviderSpecific = append(e.ProviderSpecific, records.Property{Name: "webhook/" + k, Value: v})
	}
	return e
}

// mergeSummary is what the merge decided, as lines a reader can check:
// "name NAME POLICY max=N ttl=T" followed by one "  target OWNER ADDR
// tier=N weight=N region=R shared VKEY" per target, then "rr NAME TYPE
// DATA" for every record of the zones that is not the zone file's.
func mergeSummary(names []*Name, zones [][]string) []string {
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf("name %s %s max=%d ttl=%d", n.FQDN, n.Policy.Name(), n.MaxAnswers, n.TTL))
		for _, t := range n.Targets {
			owner := t.Owner
			if owner == "" {
				owner = "corefile"
			}
			out = append(out, fmt.Sprintf("  target %s %s tier=%d weight=%d region=%q shared=%v vkey=%q", owner, t.Probe.Addr, t.Tier, t.Weight, t.Region, t.Shared, t.VKey))
		}
	}
	for _, z := range zones {
		out = append(out, z...)
	}
	return out
}

func TestMergeRecords(t *testing.T) {
	check := "check=tcp {addr}:443"
	cases := []struct {
		name     string
		corefile []*Name // the Corefile's names
		owners   map[string][]records.Endpoint
		want     []string
	}{
		{
			name:     "no records: the Corefile's names as they are",
			corefile: []*Name{corefileName("app.example.org.", policy.Default(), 0, "192.0.2.1")},
			want: []string{
				"name app.example.org. roundrobin max=0 ttl=30",
				`  target corefile 192.0.2.1 tier=1 weight=1 region="" shared=false vkey=""`,
			},
		},
		{
			name: "owners merge: the first owner's target of an address wins, each owner adds its own",
			owners: map[string][]records.Endpoint{
				"eu": {ep("web.example.org", "A", []string{"192.0.2.10", "192.0.2.11"}, check, "tier=2")},
				"us": {ep("web.example.org", "A", []string{"192.0.2.11", "192.0.2.12"}, check, "tier=3")},
			},
			want: []string{
				"name web.example.org. roundrobin max=0 ttl=30",
				`  target eu 192.0.2.10 tier=2 weight=1 region="" shared=true vkey="records/majority 192.0.2.10|tcp 192.0.2.10:443|5s/2s/2/2"`,
				`  target eu 192.0.2.11 tier=2 weight=1 region="" shared=true vkey="records/majority 192.0.2.11|tcp 192.0.2.11:443|5s/2s/2/2"`,
				`  target us 192.0.2.12 tier=3 weight=1 region="" shared=true vkey="records/majority 192.0.2.12|tcp 192.0.2.12:443|5s/2s/2/2"`,
			},
		},
		{
			name:     "a name block of the same name keeps its policy; records' targets get its own verdicts",
			corefile: []*Name{corefileName("web.example.org.", policy.Weighted, 2, "192.0.2.1")},
			owners: map[string][]records.Endpoint{
				"eu": {ep("web.example.org", "A", []string{"192.0.2.1", "192.0.2.20"}, check, "policy=priority", "weight=5")},
			},
			want: []string{
				"name web.example.org. weighted max=2 ttl=30",
				`  target corefile 192.0.2.1 tier=1 weight=1 region="" shared=false vkey=""`,
				`  target eu 192.0.2.20 tier=1 weight=5 region="" shared=false vkey="web.example.org. 192.0.2.20|tcp 192.0.2.20:443|5s/2s/2/2"`,
			},
		},
		{
			name: "TXT and CNAME records become static records; TXT of two owners add up",
			owners: map[string][]records.Endpoint{
				"eu": {ep("a-web.example.org", "TXT", []string{`"heritage=external-dns,external-dns/owner=eu"`}),
					ep("docs.example.org", "CNAME", []string{"web.example.net"})},
				"us": {ep("a-web.example.org", "TXT", []string{`"heritage=external-dns,external-dns/owner=us"`})},
			},
			want: []string{
				`rr a-web.example.org. TXT "heritage=external-dns,external-dns/owner=eu"`,
				`rr a-web.example.org. TXT "heritage=external-dns,external-dns/owner=us"`,
				"rr docs.example.org. CNAME web.example.net.",
			},
		},
		{
			name: "a CNAME beside other data is not served",
			owners: map[string][]records.Endpoint{
				"eu": {ep("web.example.org", "A", []string{"192.0.2.10"}, check),
					ep("fixed.example.org", "CNAME", []string{"web.example.net"}),
					ep("txt.example.org", "TXT", []string{`"x"`})},
				"us": {ep("web.example.org", "CNAME", []string{"web.example.net"}),
					ep("txt.example.org", "CNAME", []string{"web.example.net"})},
			},
			want: []string{
				"name web.example.org. roundrobin max=0 ttl=30",
				`  target eu 192.0.2.10 tier=1 weight=1 region="" shared=true vkey="records/majority 192.0.2.10|tcp 192.0.2.10:443|5s/2s/2/2"`,
				`rr txt.example.org. TXT "x"`,
			},
		},
		{
			name: "wildcards are names like any other",
			owners: map[string][]records.Endpoint{
				"eu": {ep("*.apps.example.org", "A", []string{"192.0.2.30"}, check),
					ep("*.txt.example.org", "TXT", []string{`"w"`})},
			},
			want: []string{
				"name *.apps.example.org. roundrobin max=0 ttl=30",
				`  target eu 192.0.2.30 tier=1 weight=1 region="" shared=true vkey="records/majority 192.0.2.30|tcp 192.0.2.30:443|5s/2s/2/2"`,
				`rr *.txt.example.org. TXT "w"`,
			},
		},
		{
			name: "records the zone holds or delegates, outside the zone, or without a check are refused",
			owners: map[string][]records.Endpoint{
				"eu": {ep("fixed.example.org", "A", []string{"192.0.2.40"}, check),
					ep("alias.example.org", "A", []string{"192.0.2.41"}, check),
					ep("x.sub.example.org", "A", []string{"192.0.2.42"}, check),
					ep("web.example.net", "A", []string{"192.0.2.43"}, check),
					ep("nocheck.example.org", "A", []string{"192.0.2.44"})},
			},
			want: nil,
		},
		{
			name: "regions, tier, weight, policy and TTL properties",
			owners: map[string][]records.Endpoint{
				"eu": {func() records.Endpoint {
					e := ep("geo.example.org", "A", []string{"192.0.2.50", "192.0.2.51"}, check, "region=eu-west", "tier=2", "weight=7", "policy=weighted")
					e.RecordTTL = 90
					return e
				}()},
			},
			want: []string{
				"name geo.example.org. weighted max=1 ttl=90",
				`  target eu 192.0.2.50 tier=2 weight=7 region="eu-west" shared=true vkey="records/majority 192.0.2.50|tcp 192.0.2.50:443|5s/2s/2/2"`,
				`  target eu 192.0.2.51 tier=2 weight=7 region="eu-west" shared=true vkey="records/majority 192.0.2.51|tcp 192.0.2.51:443|5s/2s/2/2"`,
			},
		},
		{
			name: "owners of one address share one verdict group across names",
			owners: map[string][]records.Endpoint{
				"eu": {ep("a.example.org", "A", []string{"192.0.2.60"}, check)},
				"us": {ep("b.example.org", "A", []string{"192.0.2.60"}, check)},
			},
			want: []string{
				"name a.example.org. roundrobin max=0 ttl=30",
				`  target eu 192.0.2.60 tier=1 weight=1 region="" shared=true vkey="records/majority 192.0.2.60|tcp 192.0.2.60:443|5s/2s/2/2"`,
				"name b.example.org. roundrobin max=0 ttl=30",
				`  target us 192.0.2.60 tier=1 weight=1 region="" shared=true vkey="records/majority 192.0.2.60|tcp 192.0.2.60:443|5s/2s/2/2"`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := zone.Parse(strings.NewReader(mergeZone), "merge.zone", "example.org.")
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{Zones: []*zone.Data{d}, Names: tc.corefile, TTL: 30, Timing: Timing{Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 2}}
			st := records.Memory(records.Options{})
			for owner, eps := range tc.owners {
				if _, err := st.Apply(owner, records.Changes{Create: eps}); err != nil {
					t.Fatalf("apply %s: %v", owner, err)
				}
			}
			names, zones := Merge(cfg, st.State())
			var extra []string
			for _, z := range zones {
				var orig map[string]map[uint16][]dns.RR
				for _, d := range cfg.Zones {
					if d.Origin == z.Origin {
						orig = d.Names
					}
				}
				for n, types := range z.All() {
					for typ, rrs := range types {
						if len(orig[n][typ]) == len(rrs) {
							continue
						}
						for _, rr := range rrs[len(orig[n][typ]):] {
							data := strings.TrimPrefix(rr.String(), rr.Header().String())
							extra = append(extra, fmt.Sprintf("rr %s %s %s", n, dns.TypeToString[typ], data))
						}
					}
				}
			}
			slices.Sort(extra)
			got := mergeSummary(names, [][]string{extra})
			if !slices.Equal(got, tc.want) {
				t.Errorf("merged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// A Merger that keeps each owner's part answers as the pure Merge does
// after an owner's records change, and its verdict groups follow.
func TestMergerFollowsChanges(t *testing.T) {
	d, err := zone.Parse(strings.NewReader(mergeZone), "merge.zone", "example.org.")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Zones: []*zone.Data{d}, TTL: 30, Timing: Timing{Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 2}}
	st := records.Memory(records.Options{})
	m := New(cfg)
	check := "check=tcp {addr}:443"
	steps := []records.Changes{
		{Create: []records.Endpoint{ep("a.example.org", "A", []string{"192.0.2.1"}, check)}},
		{UpdateOld: []records.Endpoint{ep("a.example.org", "A", []string{"192.0.2.1"}, check)},
			UpdateNew: []records.Endpoint{ep("a.example.org", "A", []string{"192.0.2.2", "192.0.2.3"}, check)}},
		{Delete: []records.Endpoint{ep("a.example.org", "A", []string{"192.0.2.2", "192.0.2.3"}, check)}},
	}
	wantGroups := []int{1, 2, 0}
	for i, c := range steps {
		if _, err := st.Apply("eu", c); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		gotNames, _ := m.Merge(st.State())
		wantNames, _ := Merge(cfg, st.State())
		if got, want := mergeSummary(gotNames, nil), mergeSummary(wantNames, nil); !slices.Equal(got, want) {
			t.Errorf("step %d: Merger:\n%s\nMerge:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(m.Groups()) != wantGroups[i] {
			t.Errorf("step %d: %d verdict groups, want %d", i, len(m.Groups()), wantGroups[i])
		}
	}
}

// sameRRs decides whether a name's static records changed, and so
// whether its answers are built again: a TTL, a TXT string or a name's
// case that differs is a change; the same records made again are not.
func TestSameRRs(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base := []dns.RR{rr(`a.example.org. 30 IN TXT "v=1"`), rr(`a.example.org. 30 IN A 192.0.2.1`)}
	for _, c := range []struct {
		other []dns.RR
		same  bool
	}{
		{[]dns.RR{rr(`a.example.org. 30 IN TXT "v=1"`), rr(`a.example.org. 30 IN A 192.0.2.1`)}, true},
		{[]dns.RR{rr(`a.example.org. 60 IN TXT "v=1"`), rr(`a.example.org. 30 IN A 192.0.2.1`)}, false},
		{[]dns.RR{rr(`a.example.org. 30 IN TXT "v=2"`), rr(`a.example.org. 30 IN A 192.0.2.1`)}, false},
		{[]dns.RR{rr(`a.example.org. 30 IN TXT "v=1"`), rr(`a.example.org. 30 IN A 192.0.2.2`)}, false},
		{[]dns.RR{rr(`A.example.org. 30 IN TXT "v=1"`), rr(`a.example.org. 30 IN A 192.0.2.1`)}, false},
		{[]dns.RR{rr(`a.example.org. 30 IN TXT "v=1"`)}, false},
	} {
		if got := sameRRs(base, c.other); got != c.same {
			t.Errorf("sameRRs(%v, %v) = %v, want %v", base, c.other, got, c.same)
		}
	}
	if !sameRRs(base, base) {
		t.Error("the very same records differ")
	}
}
