// Package webhook serves the ExternalDNS webhook provider protocol for one
// owner (a cluster) over a records.Store, as ExternalDNS's own client
// (sigs.k8s.io/external-dns/provider/webhook) speaks it:
//
//	GET  /                 negotiation: the domain filter, in the media type
//	GET  /records          the owner's endpoints, and only the owner's
//	POST /records          a batch of changes; 204 once it is on disk (fsynced)
//	POST /adjustendpoints  the endpoints as healthdns would store them
//	GET  /healthz          on the separate health listener, with /metrics
//
// Every change touches only the owner's records, so two clusters that
// publish the same name never delete or overwrite each other's targets.
// Bad input gets a 4xx with a JSON body {"error": "..."} and changes
// nothing, and so does a record the servers would not answer as written
// (Config.Servable). A store that cannot write (a full disk, an I/O
// error, not opened) gets 503, which ExternalDNS retries. Request bodies
// are read within a byte budget shared by all requests, so memory stays
// bounded whatever many large bodies arrive at once.
//
// The package speaks HTTP and validates; storing is package records',
// replicating package gossip's, and it never looks at DNS or health.
package webhook

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/records"

	"golang.org/x/sync/semaphore"
)

// The protocol's constants, as in sigs.k8s.io/external-dns/provider/webhook/api.
const (
	// MediaType is the only media type of the protocol, version 1.
	MediaType = "application/external.dns.webhook+json;version=1"
	mediaBase = "application/external.dns.webhook+json"

	// DefaultAddr is where ExternalDNS looks for its provider by default
	// (--webhook-provider-url=http://localhost:8888): localhost only.
	DefaultAddr = "localhost:8888"
	// DefaultHealthAddr is where a webhook provider serves /healthz and
	// /metrics by ExternalDNS's recommendation: port 8080, all interfaces,
	// for the kubelet's probes.
	DefaultHealthAddr = ":8080"
	// DefaultMaxBody bounds a request body: ExternalDNS sends a large
	// cluster's records (tens of thousands) in one batch.
	DefaultMaxBody = 32 << 20
	// bodyWait is how long a request waits for the body budget before it
	// gets 503.
	bodyWait = 10 * time.Second
	// maxErrorRecords bounds the records a refusal lists.
	maxErrorRecords = 20
)

// Config configures a webhook.
type Config struct {
	// Owner is the one owner whose records this webhook reads and writes.
	Owner string
	// Filter is the domain filter negotiated with ExternalDNS: the zones
	// the servers are authoritative for. Names outside it are refused.
	Filter records.Filter
	// MaxBodyBytes bounds request bodies (default DefaultMaxBody); a
	// larger one gets 413.
	MaxBodyBytes int64
	// BodyBudget bounds the bytes of request bodies being read and
	// decoded at once, by all requests together (default MaxBodyBytes):
	// a request waits for its share (its Content-Length, or MaxBodyBytes
	// without one), and gets 503 after bodyWait. Decoding takes a few
	// times the body's size, so this bounds the webhook's memory.
	BodyBudget int64
	// Logf receives a line per applied batch and per refused request or
	// adjusted endpoint (default log.Printf).
	Logf func(format string, args ...any)
	// Defaults are the owner's webhook/* properties (weight, tier, check,
	// policy). They are written into every A and AAAA endpoint that does
	// not set them, so a record means the same on every server, whoever
	// took it.
	Defaults []records.Property
	// Servable, if set, says why the servers would not answer a record
	// as written (a name the zone file holds, one below a delegation); a
	// batch with such a record is refused with 422, naming each. See also
	// SetServable.
	Servable func(records.Endpoint) error
	// Stored, if set, waits until a change the store wrote is stored
	// durably where it counts (a sidecar that connects out: on a server)
	// before the write is acknowledged; an error answers 503 (the change
	// stays in the store and is sent on, so ExternalDNS's retry finds it
	// there).
	Stored func(ctx context.Context, c records.Change) error
	// CheckNetworks are where a record's own check (webhook/check) may
	// connect besides the record's own address; the owner's default check
	// may connect anywhere. Empty: only the record's own address.
	CheckNetworks []netip.Prefix
}

// Webhook is the provider API of one owner. It is an http.Handler.
type Webhook struct {
	cfg      Config
	store    atomic.Pointer[records.Store]
	down     atomic.Pointer[string] // why there is no store, when there is none
	servable atomic.Pointer[func(records.Endpoint) error]
	bodies   *semaphore.Weighted
	bodyWait time.Duration
	// defaultCheck is the owner's default check, canonical: a record
	// that names it is not confined (see confined).
	defaultCheck string
}

var _ http.Handler = &Webhook{}

// New returns the webhook of cfg.Owner over store. With a nil store it
// answers 503 until Attach gives it one (a store that could not be
// opened: see Unavailable).
func New(store *records.Store, cfg Config) (*Webhook, error) {
	if err := records.CheckOwner(cfg.Owner); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBody
	}
	if cfg.BodyBudget <= 0 {
		cfg.BodyBudget = cfg.MaxBodyBytes
	}
	cfg.BodyBudget = max(cfg.BodyBudget, cfg.MaxBodyBytes)
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	defaultCheck := ""
	for _, d := range cfg.Defaults {
		v, err := records.NormalizeProperty(d.Name, d.Value)
		if err != nil {
			return nil, fmt.Errorf("webhook: owner default %s: %w", d.Name, err)
		}
		if d.Name == records.PropCheck {
			defaultCheck = v
		}
	}
	w := &Webhook{cfg: cfg, bodies: semaphore.NewWeighted(cfg.BodyBudget), bodyWait: bodyWait, defaultCheck: defaultCheck}
	w.SetServable(cfg.Servable)
	if store != nil {
		w.Attach(store)
	} else {
		w.Unavailable(errors.New("the record store is not open"))
	}
	return w, nil
}

// Attach makes st the webhook's store.
func (w *Webhook) Attach(st *records.Store) {
	w.store.Store(st)
	w.down.Store(nil)
	recordCount.WithLabelValues(w.cfg.Owner).Set(float64(st.State().Len(w.cfg.Owner)))
}

// Unavailable detaches the store: every request but negotiation gets 503
// with why (a store that could not be opened), until Attach.
func (w *Webhook) Unavailable(why error) {
	msg := why.Error()
	w.down.Store(&msg)
	w.store.Store(nil)
}

// SetServable replaces the check of what the servers can answer (after a
// reload changed the zones); nil checks nothing.
func (w *Webhook) SetServable(f func(records.Endpoint) error) {
	if f == nil {
		w.servable.Store(nil)
		return
	}
	w.servable.Store(&f)
}

// storeOr returns the store, or answers 503 and returns nil.
func (w *Webhook) storeOr(rw http.ResponseWriter, r *http.Request) *records.Store {
	if st := w.store.Load(); st != nil {
		return st
	}
	why := "the record store is not open"
	if d := w.down.Load(); d != nil {
		why = *d
	}
	w.unavailable(rw, r, "records unavailable: "+why)
	return nil
}

// unavailable answers 503, which ExternalDNS retries.
func (w *Webhook) unavailable(rw http.ResponseWriter, r *http.Request, msg string) {
	w.cfg.Logf("[ERR] healthdns webhook %s: %s %s: 503: %s", w.cfg.Owner, r.Method, r.URL.Path, msg)
	rw.Header().Set("Retry-After", "5")
	writeError(rw, http.StatusServiceUnavailable, msg)
}

// Owner is the webhook's owner.
func (w *Webhook) Owner() string { return w.cfg.Owner }

// endpoint names a route for the metrics, after the provider's methods.
func endpointOf(r *http.Request) string {
	switch {
	case r.URL.Path == "/":
		return "negotiate"
	case r.URL.Path == "/records" && r.Method == http.MethodPost:
		return "applychanges"
	case r.URL.Path == "/records":
		return "records"
	case r.URL.Path == "/adjustendpoints":
		return "adjustendpoints"
	}
	return "other"
}

// ServeHTTP serves the provider API.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: rw}
	defer func() {
		requests.WithLabelValues(w.cfg.Owner, endpointOf(r), strconv.Itoa(sw.code())).Inc()
	}()
	switch r.URL.Path {
	case "/":
		if !allow(sw, r, http.MethodGet) || !w.acceptable(sw, r) {
			return
		}
		w.negotiate(sw)
	case "/records":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if w.acceptable(sw, r) {
				w.records(sw, r)
			}
		case http.MethodPost:
			w.applyChanges(sw, r)
		default:
			allow(sw, r, http.MethodGet, http.MethodPost)
		}
	case "/adjustendpoints":
		if !allow(sw, r, http.MethodPost) || !w.acceptable(sw, r) {
			return
		}
		w.adjustEndpoints(sw, r)
	default:
		writeError(sw, http.StatusNotFound, fmt.Sprintf("no such path %q: the webhook serves /, /records and /adjustendpoints", r.URL.Path))
	}
}

// filterJSON is endpoint.DomainFilter's JSON form.
type filterJSON struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

func (w *Webhook) negotiate(rw http.ResponseWriter) {
	writeJSON(rw, http.StatusOK, filterJSON{Include: w.cfg.Filter.Include, Exclude: w.cfg.Filter.Exclude})
}

// records streams the owner's endpoints as a JSON array, one at a time,
// from an immutable State: memory stays small however many there are and
// however slowly the client reads.
func (w *Webhook) records(rw http.ResponseWriter, r *http.Request) {
	store := w.storeOr(rw, r)
	if store == nil {
		return
	}
	st := store.State()
	recordCount.WithLabelValues(w.cfg.Owner).Set(float64(st.Len(w.cfg.Owner)))
	streamJSON(rw, func(each func(any) bool) {
		st.Range(w.cfg.Owner, func(e records.Endpoint) bool { return each(e) })
	})
}

// streamJSON writes the values list calls each with as a JSON array.
func streamJSON(rw http.ResponseWriter, list func(each func(any) bool)) {
	rw.Header().Set("Content-Type", MediaType)
	rw.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(rw, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	bw.WriteByte('[')
	first := true
	var werr error
	list(func(v any) bool {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		// Encode ends each value with a newline, which JSON allows
		// between array elements.
		werr = enc.Encode(v)
		return werr == nil
	})
	if werr == nil {
		bw.WriteString("]\n")
		bw.Flush()
	}
}

func (w *Webhook) applyChanges(rw http.ResponseWriter, r *http.Request) {
	if !w.contentType(rw, r) {
		return
	}
	store := w.storeOr(rw, r)
	if store == nil {
		return
	}
	var c records.Changes
	release, ok := w.decode(rw, r, &c)
	if !ok {
		return
	}
	defer release()
	for _, es := range [][]records.Endpoint{c.Create, c.UpdateNew} {
		for i := range es {
			es[i] = w.withDefaults(es[i])
		}
	}
	batch, err := c.Prepare(&w.cfg.Filter)
	if err != nil {
		w.refuse(rw, r, http.StatusUnprocessableEntity, err.Error())
		return
	}
	nc, nu, nd, total := len(c.Create), len(c.UpdateNew), len(c.Delete), c.Len()
	c = records.Changes{} // let the decoded copy go
	if msg := w.unservable(batch); msg != "" {
		w.refuse(rw, r, http.StatusUnprocessableEntity, msg)
		return
	}
	if msg := w.unconfined(batch); msg != "" {
		w.refuse(rw, r, http.StatusUnprocessableEntity, msg)
		return
	}
	start := time.Now()
	ch, err := store.ApplyBatch(w.cfg.Owner, batch)
	applyDuration.WithLabelValues(w.cfg.Owner).Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, records.ErrInvalid):
		w.refuse(rw, r, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		// A full disk, an I/O error, a closed store: nothing was
		// acknowledged and what was before is intact. 503: ExternalDNS
		// retries, and reports a soft error.
		w.unavailable(rw, r, err.Error())
		return
	}
	if w.cfg.Stored != nil && ch.From != ch.To {
		if err := w.cfg.Stored(r.Context(), ch); err != nil {
			w.unavailable(rw, r, err.Error())
			return
		}
	}
	n := store.State().Len(w.cfg.Owner)
	recordCount.WithLabelValues(w.cfg.Owner).Set(float64(n))
	if total > 0 {
		w.cfg.Logf("[INFO] healthdns webhook %s: applied %d create, %d update, %d delete (%d records changed); %d records at version %s",
			w.cfg.Owner, nc, nu, nd, ch.Len(), n, ch.To.Version)
	}
	rw.WriteHeader(http.StatusNoContent)
}

// unservable lists the records of b that the servers would not answer as
// written, and why; "" if there are none.
func (w *Webhook) unservable(b records.Batch) string {
	f := w.servable.Load()
	if f == nil {
		return ""
	}
	var bad []string
	n := 0
	for i, e := range b.Puts() {
		if err := (*f)(e); err != nil {
			if n++; n <= maxErrorRecords {
				bad = append(bad, fmt.Sprintf("%s: %s %s: %v", b.Where(i), e.DNSName, e.RecordType, err))
			}
		}
	}
	if n == 0 {
		return ""
	}
	msg := fmt.Sprintf("%d record(s) would not be served as written, so none of the batch is applied: %s", n, strings.Join(bad, "; "))
	if n > len(bad) {
		msg += fmt.Sprintf("; and %d more", n-len(bad))
	}
	return msg
}

// adjustEndpoints returns the endpoints as healthdns would store them, so
// that ExternalDNS's plan compares like with like: canonical names and
// targets, healthdns's properties normalised. An endpoint healthdns cannot
// serve (an unsupported type, a bad target, a name outside the filter) is
// left out, and an invalid healthdns property is dropped from its endpoint
// (the owner's default applies), each with a log line: one bad annotation
// must not stop a cluster's other records from syncing, and POST /records
// would refuse them anyway.
func (w *Webhook) adjustEndpoints(rw http.ResponseWriter, r *http.Request) {
	if !w.contentType(rw, r) {
		return
	}
	var in []*records.Endpoint
	release, ok := w.decode(rw, r, &in)
	if !ok {
		return
	}
	defer release()
	out := make([]records.Endpoint, 0, len(in))
	for i, e := range in {
		if e == nil {
			continue
		}
		a, err := w.adjust(*e)
		if err != nil {
			w.cfg.Logf("[WARN] healthdns webhook %s: adjustendpoints: left out endpoint %d: %v", w.cfg.Owner, i, err)
			continue
		}
		out = append(out, a)
	}
	streamJSON(rw, func(each func(any) bool) {
		for _, e := range out {
			if !each(e) {
				return
			}
		}
	})
}

// withDefaults adds the owner's default properties an address endpoint
// lacks.
func (w *Webhook) withDefaults(e records.Endpoint) records.Endpoint {
	if len(w.cfg.Defaults) == 0 || (e.RecordType != records.TypeA && e.RecordType != records.TypeAAAA) {
		return e
	}
	have := map[string]bool{}
	for _, p := range e.ProviderSpecific {
		have[p.Name] = true
	}
	props := append([]records.Property(nil), e.ProviderSpecific...)
	for _, d := range w.cfg.Defaults {
		if !have[d.Name] {
			props = append(props, d)
		}
	}
	e.ProviderSpecific = props
	return e
}

func (w *Webhook) adjust(e records.Endpoint) (records.Endpoint, error) {
	var props []records.Property
	for _, p := range e.ProviderSpecific {
		if _, err := records.NormalizeProperty(p.Name, p.Value); err != nil {
			w.cfg.Logf("[WARN] healthdns webhook %s: adjustendpoints: %s %s: dropped %v", w.cfg.Owner, e.DNSName, e.RecordType, err)
			continue
		}
		props = append(props, p)
	}
	e.ProviderSpecific = props
	a, err := records.Normalize(w.withDefaults(e))
	if err != nil {
		return records.Endpoint{}, err
	}
	if err := w.confined(a); err != nil {
		// As with an invalid property: the owner's default applies.
		w.cfg.Logf("[WARN] healthdns webhook %s: adjustendpoints: %s %s: dropped its check: %v", w.cfg.Owner, a.DNSName, a.RecordType, err)
		e.ProviderSpecific = slices.DeleteFunc(slices.Clone(e.ProviderSpecific), func(p records.Property) bool { return p.Name == records.PropCheck })
		if a, err = records.Normalize(w.withDefaults(e)); err != nil {
			return records.Endpoint{}, err
		}
	}
	if !w.cfg.Filter.Match(a.DNSName) {
		return records.Endpoint{}, fmt.Errorf("name %s is outside the domain filter %v", a.DNSName, w.cfg.Filter.Include)
	}
	return a, nil
}

// Request checks. Each writes the error response and returns false.

func allow(rw http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
	}
	rw.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(rw, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(methods, ", ")))
	return false
}

// acceptable checks the Accept header: absent, or admitting the media
// type (version 1), application/*, */*, or application/json.
func (w *Webhook) acceptable(rw http.ResponseWriter, r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if strings.TrimSpace(strings.Join(accept, "")) == "" {
		return true
	}
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			switch mt {
			case "*/*", "application/*", "application/json":
				return true
			case mediaBase:
				if v, ok := params["version"]; !ok || v == "1" {
					return true
				}
			}
		}
	}
	w.refuse(rw, r, http.StatusNotAcceptable, fmt.Sprintf("Accept %q: this webhook serves %s", strings.Join(accept, ", "), MediaType))
	return false
}

// contentType checks that a request body is in the media type, version 1.
func (w *Webhook) contentType(rw http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == mediaBase {
		if v, ok := params["version"]; !ok || v == "1" {
			return true
		}
	}
	w.refuse(rw, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want %s", ct, MediaType))
	return false
}

// decode reads a JSON body of at most MaxBodyBytes into v, within the
// body budget; release gives the budget back once v is no longer needed.
func (w *Webhook) decode(rw http.ResponseWriter, r *http.Request, v any) (release func(), ok bool) {
	weight := w.cfg.MaxBodyBytes
	if r.ContentLength >= 0 && r.ContentLength < weight {
		weight = max(r.ContentLength, 1)
	}
	ctx, cancel := context.WithTimeout(r.Context(), w.bodyWait)
	err := w.bodies.Acquire(ctx, weight)
	cancel()
	if err != nil {
		w.unavailable(rw, r, fmt.Sprintf("busy: other requests' bodies are being read (a budget of %d bytes); try again", w.cfg.BodyBudget))
		return nil, false
	}
	release = func() { w.bodies.Release(weight) }
	if !w.decodeBody(rw, r, v) {
		release()
		return nil, false
	}
	return release, true
}

func (w *Webhook) decodeBody(rw http.ResponseWriter, r *http.Request, v any) bool {
	// No early 413 on Content-Length: answering before the body is read
	// makes the server close the connection on an unread body, and the
	// client often sees a reset instead of the 413. MaxBytesReader reads up
	// to the limit and then refuses.
	body := http.MaxBytesReader(rw, r.Body, w.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	var err error
	switch v := v.(type) {
	case *records.Changes:
		err = streamChanges(dec, v)
	case *[]*records.Endpoint:
		err = streamEndpoints(dec, v)
	default:
		err = dec.Decode(v)
	}
	if err == nil {
		// One JSON value and nothing after it.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		w.refuse(rw, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over the limit of %d bytes", w.cfg.MaxBodyBytes))
		return false
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("empty body")
	}
	w.refuse(rw, r, http.StatusBadRequest, "malformed JSON: "+err.Error())
	return false
}

// streamChanges decodes a Changes object an endpoint at a time: a
// json.Decoder buffers a whole value, and a batch is megabytes, so
// decoding it as one value would hold the body and its endpoints at once.
// Keys match as encoding/json matches them (case-insensitively); others
// are skipped.
func streamChanges(dec *json.Decoder, c *records.Changes) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // null: no changes
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want an object of changes, got %v", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var list *[]records.Endpoint
		switch {
		case strings.EqualFold(key, "create"):
			list = &c.Create
		case strings.EqualFold(key, "updateOld"):
			list = &c.UpdateOld
		case strings.EqualFold(key, "updateNew"):
			list = &c.UpdateNew
		case strings.EqualFold(key, "delete"):
			list = &c.Delete
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		*list = nil // a key given twice: the last one counts, as in encoding/json
		if err := streamArray(dec, key, func() error {
			var e records.Endpoint
			if err := dec.Decode(&e); err != nil {
				return err
			}
			*list = append(*list, e)
			return nil
		}); err != nil {
			return err
		}
	}
	_, err = dec.Token() // '}'
	return err
}

// streamEndpoints decodes an array of endpoints (null ones included) an
// endpoint at a time.
func streamEndpoints(dec *json.Decoder, out *[]*records.Endpoint) error {
	return streamArray(dec, "endpoints", func() error {
		var e *records.Endpoint
		if err := dec.Decode(&e); err != nil {
			return err
		}
		*out = append(*out, e)
		return nil
	})
}

// streamArray reads an array (or null), calling each for every element.
func streamArray(dec *json.Decoder, what string, each func() error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("%s: want an array, got %v", what, tok)
	}
	for dec.More() {
		if err := each(); err != nil {
			return err
		}
	}
	_, err = dec.Token() // ']'
	return err
}

func (w *Webhook) refuse(rw http.ResponseWriter, r *http.Request, code int, msg string) {
	w.cfg.Logf("[WARN] healthdns webhook %s: %s %s: %d: %s", w.cfg.Owner, r.Method, r.URL.Path, code, msg)
	writeError(rw, code, msg)
}

// Responses.

type errorJSON struct {
	Error string `json:"error"`
}

func writeError(rw http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(errorJSON{Error: msg})
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	rw.Write(append(b, '\n'))
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(rw, http.StatusInternalServerError, err.Error())
		return
	}
	rw.Header().Set("Content-Type", MediaType)
	rw.WriteHeader(code)
	rw.Write(append(b, '\n'))
}

// statusWriter remembers the status code for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Health serves /healthz: 200 while the store takes changes, 503 when it
// cannot write or is not open.
func (w *Webhook) Health() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		st := w.store.Load()
		if st == nil {
			why := "the record store is not open"
			if d := w.down.Load(); d != nil {
				why = *d
			}
			writeError(rw, http.StatusServiceUnavailable, why)
			return
		}
		if err := st.Err(); err != nil {
			writeError(rw, http.StatusServiceUnavailable, err.Error())
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(rw, "OK\n")
	})
}
