package status

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
)

// Handler serves a node's status, read-only:
//
//	GET /status   the Document as JSON (application/json); ?name=NAME,
//	              repeatable, keeps only those names (case-insensitive,
//	              final dot optional)
//	GET /         the HTML status page, refreshing itself every 2 s; takes
//	              ?name= too
//	GET /health   200 "OK"
//
// Other paths are 404 and other methods 405 (HEAD is served as GET).
// doc is called once per request and may return nil while the node has no
// state yet: /status and / answer 503 then. The handler never modifies
// what doc returns, so doc may hand out a shared, immutable Document.
func Handler(doc func() *Document) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/", "/status", "/health":
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/health" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("OK"))
			return
		}
		d := doc()
		if d == nil {
			http.Error(w, "no status yet: the node is starting", http.StatusServiceUnavailable)
			return
		}
		v := normalize(d, r.URL.Query()["name"])
		var buf bytes.Buffer
		var err error
		ctype := "application/json"
		if r.URL.Path == "/status" {
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			err = enc.Encode(v)
		} else {
			ctype = "text/html; charset=utf-8"
			err = page.Execute(&buf, newPage(&v, r.URL.Query()))
		}
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Write(buf.Bytes())
	})
}

// normalize returns a copy of d with only the names asked for (all when
// none are), and every list non-nil so that JSON shows [] rather than
// null. d itself is not modified.
func normalize(d *Document, names []string) Document {
	v := *d
	want := map[string]bool{}
	for _, n := range names {
		want[canonical(n)] = true
	}
	v.Names = make([]Name, 0, len(d.Names))
	for _, n := range d.Names {
		if len(want) > 0 && !want[canonical(n.Name)] {
			continue
		}
		n.AnswerA = nonNil(n.AnswerA)
		n.AnswerAAAA = nonNil(n.AnswerAAAA)
		ts := make([]Target, len(n.Targets))
		for i, t := range n.Targets {
			t.Checks = nonNil(t.Checks)
			t.Observations = nonNil(t.Observations)
			t.History = nonNil(t.History)
			ts[i] = t
		}
		n.Targets = ts
		v.Names = append(v.Names, n)
	}
	v.Members = nonNil(v.Members)
	v.Views = nonNil(v.Views)
	v.Owners = nonNil(v.Owners)
	v.Overrides = nonNil(v.Overrides)
	v.Catalog = slices.Clone(nonNil(v.Catalog))
	for i := range v.Catalog {
		v.Catalog[i].Checks = nonNil(v.Catalog[i].Checks)
	}
	return v
}

func nonNil[S ~[]E, E any](s S) S {
	if s == nil {
		return S{}
	}
	return s
}
