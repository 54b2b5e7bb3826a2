package records

import (
	"errors"
	"strings"
	"testing"
)

func a(name string, targets ...string) Endpoint {
	return Endpoint{DNSName: name, RecordType: TypeA, Targets: targets}
}

func names(eps []Endpoint) string {
	var s []string
	for _, e := range eps {
		s = append(s, e.DNSName+"/"+e.RecordType+"="+strings.Join(e.Targets, ","))
	}
	return strings.Join(s, " ")
}

func TestApplyChanges(t *testing.T) {
	cur, err := ApplyChanges(nil, Changes{Create: []Endpoint{a("b.example.com", "192.0.2.2"), a("a.example.com", "192.0.2.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(cur), "a.example.com/A=192.0.2.1 b.example.com/A=192.0.2.2"; got != want {
		t.Fatalf("create: %s, want %s", got, want)
	}
	tests := []struct {
		name string
		c    Changes
		want string
		err  string
	}{
		{"update", Changes{UpdateOld: []Endpoint{a("a.example.com", "192.0.2.1")}, UpdateNew: []Endpoint{a("a.example.com", "192.0.2.9")}},
			"a.example.com/A=192.0.2.9 b.example.com/A=192.0.2.2", ""},
		{"delete matches by key, not targets", Changes{Delete: []Endpoint{{DNSName: "A.example.com.", RecordType: "A"}}},
			"b.example.com/A=192.0.2.2", ""},
		{"delete of a missing record", Changes{Delete: []Endpoint{a("zzz.example.com", "192.0.2.1")}},
			"a.example.com/A=192.0.2.1 b.example.com/A=192.0.2.2", ""},
		{"create replaces", Changes{Create: []Endpoint{a("a.example.com", "192.0.2.7")}},
			"a.example.com/A=192.0.2.7 b.example.com/A=192.0.2.2", ""},
		{"delete then create the same key", Changes{Delete: []Endpoint{a("a.example.com", "192.0.2.1")}, Create: []Endpoint{a("a.example.com", "192.0.2.8")}},
			"a.example.com/A=192.0.2.8 b.example.com/A=192.0.2.2", ""},
		{"types are distinct keys", Changes{Create: []Endpoint{{DNSName: "a.example.com", RecordType: "AAAA", Targets: []string{"2001:db8::1"}}}},
			"a.example.com/A=192.0.2.1 a.example.com/AAAA=2001:db8::1 b.example.com/A=192.0.2.2", ""},
		{"one bad endpoint fails the batch", Changes{Create: []Endpoint{a("c.example.com", "192.0.2.3"), a("d.example.com", "nope")}}, "", "create[1]"},
		{"the same key twice", Changes{Create: []Endpoint{a("c.example.com", "192.0.2.3")}, UpdateNew: []Endpoint{a("C.example.com", "192.0.2.4")}}, "", "also in create[0]"},
		{"delete of an unsupported type", Changes{Delete: []Endpoint{{DNSName: "a.example.com", RecordType: "SRV"}}}, "", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyChanges(cur, tt.c)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if names(got) != tt.want {
				t.Fatalf("got %s, want %s", names(got), tt.want)
			}
		})
	}
}

func TestChangesCheckFilter(t *testing.T) {
	f, _ := NewFilter([]string{"gslb.example.com"}, nil)
	ok := Changes{Create: []Endpoint{a("app.gslb.example.com", "192.0.2.1")}}
	if err := ok.Check(&f); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Changes{
		{Create: []Endpoint{a("app.example.org", "192.0.2.1")}},
		{Delete: []Endpoint{a("app.example.org", "192.0.2.1")}},
		{UpdateNew: []Endpoint{a("example.com", "192.0.2.1")}},
	} {
		if err := c.Check(&f); err == nil || !strings.Contains(err.Error(), "outside the domain filter") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestHeadAfter(t *testing.T) {
	h := func(e, s, d uint64) Head { return Head{Version: Version{e, s}, Digest: d} }
	tests := []struct {
		a, b Head
		want bool
	}{
		{h(5, 2, 0), h(5, 1, 9), true},
		{h(6, 1, 0), h(5, 9, 0), true},
		{h(5, 1, 9), h(5, 2, 0), false},
		{h(5, 1, 3), h(5, 1, 3), false},
		{h(5, 1, 3), Head{}, true},
		{Head{}, Head{}, false},
		// Two writers at one version: exactly one wins, the same everywhere.
		{h(5, 1, 4), h(5, 1, 3), true},
		{h(5, 1, 3), h(5, 1, 4), false},
	}
	for i, tt := range tests {
		if got := tt.a.After(tt.b); got != tt.want {
			t.Errorf("%d: %v after %v: %v", i, tt.a, tt.b, got)
		}
	}
}

func TestDigestIsOfContent(t *testing.T) {
	// The same records have the same digest whatever order of changes
	// brought them, and a different record changes it.
	x, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("a.example.com", "192.0.2.1"), a("b.example.com", "192.0.2.2")}})
	y, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("b.example.com", "192.0.2.2")}})
	y, _ = ApplyChanges(y, Changes{Create: []Endpoint{a("a.example.com", "192.0.2.9")}})
	y, _ = ApplyChanges(y, Changes{UpdateNew: []Endpoint{a("a.example.com", "192.0.2.1")}})
	if Digest(x) != Digest(y) || Digest(x) == 0 {
		t.Errorf("digests %x and %x of the same records", Digest(x), Digest(y))
	}
	z, _ := ApplyChanges(x, Changes{UpdateNew: []Endpoint{{DNSName: "a.example.com", RecordType: TypeA, Targets: []string{"192.0.2.1"}, RecordTTL: 60}}})
	if Digest(z) == Digest(x) {
		t.Error("a different TTL, the same digest")
	}
}

func TestSetValidate(t *testing.T) {
	eps, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("a.example.com", "192.0.2.1"), a("b.example.com", "192.0.2.2")}})
	good := Set{Owner: "eu-west_1.k8s", Head: Head{Version{1, 1}, Digest(eps)}, Endpoints: eps}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Set{
		{Owner: "eu", Head: Head{Version{1, 1}, Digest(eps) + 1}, Endpoints: eps},
		{Owner: "", Endpoints: eps},
		{Owner: "eu west", Endpoints: eps},
		{Owner: strings.Repeat("o", 64)},
		{Owner: "eu", Endpoints: []Endpoint{eps[1], eps[0]}},
		{Owner: "eu", Endpoints: []Endpoint{eps[0], eps[0]}},
		{Owner: "eu", Endpoints: []Endpoint{a("A.example.com", "192.0.2.1")}},
		{Owner: "eu", Endpoints: []Endpoint{{DNSName: "a.example.com", RecordType: "MX", Targets: []string{"x"}}}},
	}
	for i, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%d: %+v accepted", i, s)
		}
	}
}
