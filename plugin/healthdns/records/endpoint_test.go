package records

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   Endpoint
		want Endpoint
		err  string // part of the error; "" for none
	}{
		{
			name: "A, canonical forms",
			in:   Endpoint{DNSName: "App.GSLB.example.com.", RecordType: "a", Targets: []string{"192.0.2.2", "192.0.2.1", "192.0.2.2", "::ffff:192.0.2.3"}, RecordTTL: 30},
			want: Endpoint{DNSName: "app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, RecordTTL: 30},
		},
		{
			name: "AAAA",
			in:   Endpoint{DNSName: "app.gslb.example.com", RecordType: "AAAA", Targets: []string{"2001:DB8:0::1"}},
			want: Endpoint{DNSName: "app.gslb.example.com", RecordType: "AAAA", Targets: []string{"2001:db8::1"}},
		},
		{
			name: "CNAME",
			in:   Endpoint{DNSName: "www.gslb.example.com", RecordType: "CNAME", Targets: []string{"LB.Example.NET."}},
			want: Endpoint{DNSName: "www.gslb.example.com", RecordType: "CNAME", Targets: []string{"lb.example.net"}},
		},
		{
			name: "TXT of the registry, labels and properties",
			in: Endpoint{DNSName: "a-app.gslb.example.com", RecordType: "TXT", SetIdentifier: "eu",
				Targets:          []string{`"heritage=external-dns,external-dns/owner=eu,external-dns/resource=service/default/app"`},
				Labels:           map[string]string{"ownedRecord": "app.gslb.example.com"},
				ProviderSpecific: []Property{{"webhook/weight", " 010"}, {"alias", "false"}, {"webhook/policy", "Weighted"}}},
			want: Endpoint{DNSName: "a-app.gslb.example.com", RecordType: "TXT", SetIdentifier: "eu",
				Targets:          []string{`"heritage=external-dns,external-dns/owner=eu,external-dns/resource=service/default/app"`},
				Labels:           map[string]string{"ownedRecord": "app.gslb.example.com"},
				ProviderSpecific: []Property{{"alias", "false"}, {"webhook/policy", "weighted"}, {"webhook/weight", "10"}}},
		},
		{
			name: "wildcard",
			in:   Endpoint{DNSName: "*.app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}},
			want: Endpoint{DNSName: "*.app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}},
		},
		{
			name: "check normalised",
			in: Endpoint{DNSName: "app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1"},
				ProviderSpecific: []Property{{"webhook/check", "  http://{addr}:8080/healthz   insecure status 200,204 host app.example.com "}, {"webhook/tier", "2"}}},
			want: Endpoint{DNSName: "app.gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1"},
				ProviderSpecific: []Property{{"webhook/check", "http://{addr}:8080/healthz host app.example.com status 200,204 insecure"}, {"webhook/tier", "2"}}},
		},
		{name: "unsupported type", in: Endpoint{DNSName: "app.gslb.example.com", RecordType: "MX", Targets: []string{"10 mx.example.com"}}, err: "record type \"MX\" is not supported"},
		{name: "no type", in: Endpoint{DNSName: "app.gslb.example.com", Targets: []string{"192.0.2.1"}}, err: "no record type"},
		{name: "empty name", in: Endpoint{RecordType: "A", Targets: []string{"192.0.2.1"}}, err: "empty"},
		{name: "bad name", in: Endpoint{DNSName: "app gslb.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}}, err: "bad character"},
		{name: "long label", in: Endpoint{DNSName: strings.Repeat("a", 64) + ".example.com", RecordType: "A", Targets: []string{"192.0.2.1"}}, err: "longer than 63"},
		{name: "inner wildcard", in: Endpoint{DNSName: "app.*.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}}, err: "wildcard"},
		{name: "no targets", in: Endpoint{DNSName: "app.example.com", RecordType: "A"}, err: "no targets"},
		{name: "A with IPv6", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"2001:db8::1"}}, err: "not an IPv4 address"},
		{name: "AAAA with IPv4", in: Endpoint{DNSName: "app.example.com", RecordType: "AAAA", Targets: []string{"192.0.2.1"}}, err: "not an IPv6 address"},
		{name: "A with a name", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"lb.example.net"}}, err: "not an IP address"},
		{name: "A with a zone", in: Endpoint{DNSName: "app.example.com", RecordType: "AAAA", Targets: []string{"fe80::1%eth0"}}, err: "not an IP address"},
		{name: "CNAME to an address-like junk", in: Endpoint{DNSName: "app.example.com", RecordType: "CNAME", Targets: []string{"lb example"}}, err: "not a host name"},
		{name: "CNAME with two targets", in: Endpoint{DNSName: "app.example.com", RecordType: "CNAME", Targets: []string{"a.example.net", "b.example.net"}}, err: "exactly one target"},
		{name: "TXT too long", in: Endpoint{DNSName: "t.example.com", RecordType: "TXT", Targets: []string{strings.Repeat("x", MaxTXTLen+1)}}, err: "more than 2048"},
		{name: "TXT in all too long", in: Endpoint{DNSName: "t.example.com", RecordType: "TXT", Targets: []string{strings.Repeat("x", 2000), strings.Repeat("y", 2000), strings.Repeat("z", 2000), strings.Repeat("w", 2000), strings.Repeat("v", 2000)}}, err: "in all"},
		{name: "TXT control character", in: Endpoint{DNSName: "t.example.com", RecordType: "TXT", Targets: []string{"a\nb"}}, err: "control characters"},
		{name: "negative TTL", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}, RecordTTL: -1}, err: "TTL"},
		{name: "bad weight", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}, ProviderSpecific: []Property{{"webhook/weight", "heavy"}}}, err: "webhook/weight"},
		{name: "tier 0", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}, ProviderSpecific: []Property{{"webhook/tier", "0"}}}, err: "from 1 to"},
		{name: "bad policy", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}, ProviderSpecific: []Property{{"webhook/policy", "random"}}}, err: "geo, priority, roundrobin, sticky, weighted"},
		{name: "bad region", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}, ProviderSpecific: []Property{{"webhook/region", "eu west"}}}, err: "webhook/region"},
		{name: "bad check", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}, ProviderSpecific: []Property{{"webhook/check", "ftp://{addr}/"}}}, err: "scheme"},
		{name: "unknown webhook property", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}, ProviderSpecific: []Property{{"webhook/wieght", "1"}}}, err: "not one of healthdns's"},
		{name: "property twice", in: Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"}, ProviderSpecific: []Property{{"webhook/tier", "1"}, {"webhook/tier", "2"}}}, err: "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want one containing %q and wrapping ErrInvalid", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			again, err := Normalize(got)
			if err != nil || !again.equal(got) {
				t.Fatalf("not idempotent: %+v, %v", again, err)
			}
		})
	}
}

func TestProperties(t *testing.T) {
	e, err := Normalize(Endpoint{DNSName: "app.example.com", RecordType: "A", Targets: []string{"192.0.2.1"},
		ProviderSpecific: []Property{{PropWeight, "0"}, {PropTier, "3"}, {PropPolicy, "geo"}, {PropCheck, "tcp {addr}:443"}, {PropRegion, " EU-West "}}})
	if err != nil {
		t.Fatal(err)
	}
	want := Properties{Weight: 0, HasWeight: true, Tier: 3, Policy: "geo", Check: "tcp {addr}:443", Region: "eu-west"}
	if got := e.Properties(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := (Endpoint{}).Properties(); got != (Properties{}) {
		t.Errorf("no properties: %+v", got)
	}
}

func TestCheckFor(t *testing.T) {
	tests := []struct{ spec, addr, want string }{
		{"http://{addr}:8080/healthz", "192.0.2.1", "http://192.0.2.1:8080/healthz"},
		{"http://{addr}/healthz status 200,204", "2001:db8::1", "http://[2001:db8::1]/healthz status 200,204"},
		{`https://{addr}/ready body "ready: yes"`, "192.0.2.1", `https://192.0.2.1/ready body "ready: yes"`},
		{"grpc {addr}:50051 service app.v1.Orders tls", "2001:db8::1", "grpc [2001:db8::1]:50051 service app.v1.Orders tls"},
		{"https://{addr}/ host app.example.com insecure", "192.0.2.1", "https://192.0.2.1/ host app.example.com insecure"},
		{"tcp {addr}:443", "2001:db8::1", "tcp [2001:db8::1]:443"},
		{"http://lb.example.net/healthz", "192.0.2.1", "http://lb.example.net/healthz"},
	}
	for _, tt := range tests {
		ch, err := CheckFor(tt.spec, netip.MustParseAddr(tt.addr))
		if err != nil {
			t.Errorf("%s: %v", tt.spec, err)
			continue
		}
		if got := ch.String(); got != tt.want {
			t.Errorf("%s for %s: %s, want %s", tt.spec, tt.addr, got, tt.want)
		}
	}
	for _, bad := range []string{"", "tcp", "tcp {addr}", "http://{addr}/ status", "http://{addr}/ status 99", "http://{addr}/ bogus", "http://{addr}/ host", "http://{addr}/ status 200 204", "grpc {addr}:1 insecure"} {
		if _, err := CheckFor(bad, netip.MustParseAddr("192.0.2.1")); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestTXTStrings(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		in   string
		want []string
	}{
		{`"heritage=external-dns"`, []string{"heritage=external-dns"}},
		{"plain", []string{"plain"}},
		{`""`, []string{""}},
		{long, []string{long[:255], long[255:]}},
	}
	for _, tt := range tests {
		if got := TXTStrings(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	f, err := NewFilter([]string{"GSLB.example.com.", "other.example"}, []string{"internal.gslb.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Include, []string{"gslb.example.com", "other.example"}) {
		t.Errorf("include %v", f.Include)
	}
	for name, want := range map[string]bool{
		"gslb.example.com":            true,
		"app.gslb.example.com":        true,
		"*.app.gslb.example.com":      true,
		"app.other.example":           true,
		"xgslb.example.com":           false,
		"example.com":                 false,
		"internal.gslb.example.com":   false,
		"a.internal.gslb.example.com": false,
	} {
		if got := f.Match(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if !(Filter{}).Match("anything.example") {
		t.Error("an empty filter must match any name")
	}
	if _, err := NewFilter([]string{"*.example.com"}, nil); err == nil {
		t.Error("wildcard domain accepted")
	}
}
