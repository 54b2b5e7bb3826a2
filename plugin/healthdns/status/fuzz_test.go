package status

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzStatusQuery feeds the status handler any path and query string: it
// must not panic, must answer a known status code, and /status must be
// JSON holding only names that were asked for.
func FuzzStatusQuery(f *testing.F) {
	for _, s := range [][2]string{
		{"/status", ""}, {"/status", "name=app.example.org"}, {"/status", "name=APP.example.org."},
		{"/status", "name=app.example.org&name=w.example.org."}, {"/", "name=%00"}, {"/", "name=%zz"},
		{"/status", "name=" + strings.Repeat("a.", 200)}, {"/status", ";;;&&&=="}, {"/health", "x=1"},
		{"/nope", ""}, {"/status/", "name"}, {"/", "name=<script>"},
	} {
		f.Add(s[0], s[1])
	}
	d := fixture()
	h := Handler(func() *Document { return d })
	f.Fuzz(func(t *testing.T, path, query string) {
		u := &url.URL{Path: path, RawQuery: query}
		if !strings.HasPrefix(path, "/") {
			t.Skip()
		}
		// Parse the request as the server does from the wire: what
		// cannot be a request line never reaches the handler.
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: status.test\r\n\r\n")))
		if err != nil {
			t.Skip()
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK, http.StatusNotFound:
		default:
			t.Fatalf("GET %s: status %d", u.RequestURI(), w.Code)
		}
		if r.URL.Path != "/status" || w.Code != http.StatusOK {
			return
		}
		var got Document
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("GET %s: not JSON: %v", u.RequestURI(), err)
		}
		want := map[string]bool{}
		for _, n := range r.URL.Query()["name"] {
			want[canonical(n)] = true
		}
		for _, n := range got.Names {
			if len(want) > 0 && !want[canonical(n.Name)] {
				t.Fatalf("GET %s: name %s not asked for", u.RequestURI(), n.Name)
			}
		}
	})
}
