package zone

import (
	"fmt"
	"maps"
	"testing"
)

// A clone changed by Set and Delete has its changes, and the map it was
// cloned from keeps what it had; both agree with a plain map.
func TestNameMapClone(t *testing.T) {
	m := NewNameMap[int]()
	want := map[string]int{}
	for i := range 2000 {
		k := fmt.Sprintf("n%d.example.org.", i)
		m.Set(k, i)
		want[k] = i
	}
	c := m.Clone()
	cw := maps.Clone(want)
	for i := range 300 {
		k := fmt.Sprintf("n%d.example.org.", i*7)
		c.Set(k, -i)
		cw[k] = -i
		d := fmt.Sprintf("n%d.example.org.", i*7+1)
		c.Delete(d)
		delete(cw, d)
		c.Set(fmt.Sprintf("new%d.example.org.", i), i)
		cw[fmt.Sprintf("new%d.example.org.", i)] = i
	}
	c.Delete("absent.example.org.")
	for name, tc := range map[string]struct {
		m    *NameMap[int]
		want map[string]int
	}{"original": {m, want}, "clone": {c, cw}} {
		if tc.m.Len() != len(tc.want) {
			t.Errorf("%s: Len %d, want %d", name, tc.m.Len(), len(tc.want))
		}
		got := maps.Collect(tc.m.All())
		if !maps.Equal(got, tc.want) {
			t.Errorf("%s: All differs from the plain map (%d names, want %d)", name, len(got), len(tc.want))
		}
		for k, v := range tc.want {
			if g, ok := tc.m.Lookup(k); !ok || g != v {
				t.Fatalf("%s: %s = %d, %v; want %d", name, k, g, ok, v)
			}
		}
		if _, ok := tc.m.Lookup("absent.example.org."); ok {
			t.Errorf("%s: an absent name found", name)
		}
	}
	var nilMap *NameMap[int]
	if nilMap.Len() != 0 || nilMap.Get("x.") != 0 || nilMap.Clone().Len() != 0 {
		t.Error("a nil NameMap is not empty")
	}
}
