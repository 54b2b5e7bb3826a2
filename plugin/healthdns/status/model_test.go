package status

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestJSONRoundTrip: what /status serves decodes into the documented
// structure and back to the same bytes.
func TestJSONRoundTrip(t *testing.T) {
	for _, doc := range []func() *Document{fixture, agentFixture} {
		_, body := serve(t, Handler(doc), "GET", "/status")
		var d Document
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatal(err)
		}
		want := normalize(doc(), nil)
		if !reflect.DeepEqual(d, want) {
			t.Errorf("decoded:\n%+v\nwant:\n%+v", d, want)
		}
		again, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if string(again)+"\n" != body {
			t.Errorf("re-encoded:\n%s\nserved:\n%s", again, body)
		}
	}
}

// TestJSONShape pins a few keys as a client reads them, and the empty
// lists that must be [] rather than null.
func TestJSONShape(t *testing.T) {
	_, body := serve(t, Handler(agentFixture), "GET", "/status")
	for _, want := range []string{
		`"node": "agent1"`, `"role": "agent"`, `"time": "2026-11-26T02:01:14Z"`, `"names": []`, `"owners": []`,
		`"interval": "1s"`, `"error": ""`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("agent JSON lacks %s", want)
		}
	}
	if strings.Contains(body, `"partition"`) || strings.Contains(body, "null") || strings.Contains(body, "0001-01-01") {
		t.Errorf("agent JSON has a partition, a null or a zero time:\n%s", body)
	}
	_, body = serve(t, Handler(fixture), "GET", "/status?name=www.gslb.example.com.")
	for _, want := range []string{
		`"partitioned": false`, `"answer_a": []`, `"answer_aaaa": []`, `"outcome": "none"`, `"observations": []`, `"history": []`,
		`"owner": ""`, `"quorum": "2"`, `"catalog": []`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("server JSON lacks %s", want)
		}
	}
}

// TestREADMEDocumentsEveryKey: the tables of README.md list exactly the
// JSON keys of each type of the model, in order.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	heading := regexp.MustCompile("^### (\\w+)$")
	key := regexp.MustCompile("^\\| `(\\w+)` \\|")
	current := ""
	for _, l := range strings.Split(string(b), "\n") {
		if m := heading.FindStringSubmatch(l); m != nil {
			current = m[1]
			documented[current] = []string{}
		} else if m := key.FindStringSubmatch(l); m != nil && current != "" {
			documented[current] = append(documented[current], m[1])
		} else if strings.HasPrefix(l, "## ") {
			current = ""
		}
	}
	types := []any{Document{}, Partition{}, Voter{}, Member{}, View{}, Name{}, Target{}, Observation{}, Change{}, Owner{}, Store{}, CatalogEntry{}, Build{}, Override{}}
	if len(documented) != len(types) {
		t.Errorf("README documents %d types, the model has %d", len(documented), len(types))
	}
	for _, v := range types {
		rt := reflect.TypeOf(v)
		var keys []string
		for f := range rt.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "" || tag == "-" {
				t.Errorf("%s.%s has no JSON key", rt.Name(), f.Name)
			}
			keys = append(keys, tag)
		}
		if !slices.Equal(keys, documented[rt.Name()]) {
			t.Errorf("%s: JSON keys %q, README documents %q", rt.Name(), keys, documented[rt.Name()])
		}
	}
}
