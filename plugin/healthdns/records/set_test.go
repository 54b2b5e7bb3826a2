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

func TestSupersedes(t *testing.T) {
	eps, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("a.example.com", "192.0.2.1")}})
	other, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("a.example.com", "192.0.2.2")}})
	v := func(e, s uint64) Version { return Version{e, s} }
	s1 := Set{Owner: "eu", Version: v(5, 1), Endpoints: eps}
	tests := []struct {
		a, b Set
		want bool
	}{
		{Set{Owner: "eu", Version: v(5, 2)}, s1, true},
		{Set{Owner: "eu", Version: v(6, 1)}, Set{Owner: "eu", Version: v(5, 9)}, true},
		{s1, Set{Owner: "eu", Version: v(5, 2)}, false},
		{s1, s1, false},
		{s1, Set{Owner: "eu"}, true},
		{Set{Owner: "eu"}, Set{Owner: "eu"}, false},
	}
	for i, tt := range tests {
		if got := tt.a.Supersedes(tt.b); got != tt.want {
			t.Errorf("%d: %v supersedes %v: %v", i, tt.a.Version, tt.b.Version, got)
		}
	}
	// Two writers at one version: exactly one of the two wins, the same
	// everywhere.
	s2 := Set{Owner: "eu", Version: v(5, 1), Endpoints: other}
	if s1.Supersedes(s2) == s2.Supersedes(s1) {
		t.Error("a tie at one version must be broken one way")
	}
}

func TestSetValidate(t *testing.T) {
	eps, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("a.example.com", "192.0.2.1"), a("b.example.com", "192.0.2.2")}})
	good := Set{Owner: "eu-west_1.k8s", Version: Version{1, 1}, Endpoints: eps}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Set{
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
