package probe

import (
	"net/netip"
	"testing"
)

// FuzzParseCheck holds the grammar to its promise for any text: no panic,
// and whatever Parse accepts it writes in a canonical form that reads back
// Equal, stays within MaxLen, and fills {addr} for either family. The seed
// corpus is in testdata/fuzz/FuzzParseCheck.
func FuzzParseCheck(f *testing.F) {
	for _, s := range canonicalChecks {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		text := c.String()
		if len(text) > MaxLen {
			t.Fatalf("Parse(%q) wrote %d bytes, more than %d", s, len(text), MaxLen)
		}
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q) wrote %q, which does not parse: %v", s, text, err)
		}
		if !back.Equal(c) || back.String() != text {
			t.Fatalf("Parse(%q) = %+v, written %q, read back %+v", s, c, text, back)
		}
		for _, a := range []string{"192.0.2.1", "2001:db8::1"} {
			x, err := c.ForAddr(netip.MustParseAddr(a))
			if err != nil {
				t.Fatalf("%q for %s: %v", text, a, err)
			}
			if x.IsTemplate() && !c.IsTemplate() {
				t.Fatalf("%q for %s made a template", text, a)
			}
			if y, err := Parse(x.String()); err != nil || !y.Equal(x) {
				t.Fatalf("%q for %s = %q, read back %+v, %v", text, a, x, y, err)
			}
		}
	})
}
