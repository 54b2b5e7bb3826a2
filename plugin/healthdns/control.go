package healthdns

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/listen"
	"github.com/healthdns/healthdns/plugin/healthdns/override"
)

// The control API is the one listener that writes: operators set and
// clear overrides through it (healthdns-agent drain). It is not the
// status listener, which is read-only and often open to all: it needs a
// bearer token from a file, compared in constant time, unless the
// operator writes insecure.
//
//	GET  /v1/overrides   every override this server holds, with the targets each selects
//	POST /v1/overrides   {"selector", "state": drain|down|up|clear, "reason", "who", "for": "1h"}

// controlConfig is "control ADDR { tokenfile FILE | insecure }".
type controlConfig struct {
	addr     string
	token    [sha256.Size]byte // of the token: compared in constant time, whatever its length
	insecure bool
}

// controlServer is one control listener, shared across reloads as the
// status listener is.
type controlServer struct {
	srv    *http.Server
	source atomic.Pointer[HealthDNS]
}

var controlServers registry[string, *controlServer]

func acquireControl(addr string, h *HealthDNS) error {
	_, err := controlServers.acquire(addr, func() (*controlServer, error) {
		ln, err := listen.Listen("control", addr, controlLimits)
		if err != nil {
			return nil, err
		}
		s := &controlServer{}
		s.srv = listen.Server(http.HandlerFunc(s.serve), controlLimits)
		s.srv.MaxHeaderBytes = 16 << 10
		go func() {
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Errorf("control listener %s: %v", addr, err)
			}
		}()
		log.Infof("control API on %s (healthdns-agent drain -server http://%s)", ln.Addr(), ln.Addr())
		return s, nil
	}, func(s *controlServer, _ bool) { s.source.Store(h) })
	return err
}

func releaseControl(addr string, h *HealthDNS) {
	controlServers.release(addr, func(s *controlServer, last bool) {
		s.source.CompareAndSwap(h, nil)
		if last {
			shutdown(s.srv)
		}
	})
}

// controlLimits: a few operators and scripts; the bound keeps clients
// that connect and stall from using up the process's descriptors.
var controlLimits = listen.Limits{
	MaxConns:          32,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      15 * time.Second,
	IdleTimeout:       time.Minute,
}

// maxControlBody bounds a request body.
const maxControlBody = 64 << 10

// maxFor bounds an override's duration.
const maxFor = 366 * 24 * time.Hour

// maxListed bounds the targets listed per override in an answer.
const maxListed = 100

func controlError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *controlServer) serve(w http.ResponseWriter, r *http.Request) {
	h := s.source.Load()
	if h == nil {
		controlError(w, http.StatusServiceUnavailable, "the server is reloading; try again")
		return
	}
	cc := h.cfg.control
	if !cc.insecure {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(sum[:], cc.token[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="healthdns control"`)
			controlError(w, http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer TOKEN, the control tokenfile's)")
			return
		}
	}
	switch r.URL.Path {
	case "/v1/overrides":
	default:
		controlError(w, http.StatusNotFound, "no %s here: the control API serves /v1/overrides", r.URL.Path)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, h.listOverrides())
	case http.MethodPost:
		h.postOverride(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		controlError(w, http.StatusMethodNotAllowed, "%s: use GET to list or POST to set and clear", r.Method)
	}
}

// overrideRequest is the body of a POST.
type overrideRequest struct {
	Selector string `json:"selector"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Who      string `json:"who"`
	For      string `json:"for"`
}

// overrideAnswer is one override and what it selects now.
type overrideAnswer struct {
	override.Entry
	Active  bool     `json:"active"`
	Matched int      `json:"matched"` // targets it selects now
	Targets []string `json:"targets"` // "NAME ADDRESS", at most maxListed
}

// MarshalJSON flattens the entry and the rest into one object.
func (a overrideAnswer) MarshalJSON() ([]byte, error) {
	e, err := json.Marshal(a.Entry)
	if err != nil {
		return nil, err
	}
	rest, err := json.Marshal(struct {
		Active  bool     `json:"active"`
		Matched int      `json:"matched"`
		Targets []string `json:"targets"`
	}{a.Active, a.Matched, a.Targets})
	if err != nil {
		return nil, err
	}
	return append(append(e[:len(e)-1], ','), rest[1:]...), nil
}

type overrideList struct {
	Node      string           `json:"node"`
	Time      time.Time        `json:"time"`
	Overrides []overrideAnswer `json:"overrides"`
}

func (h *HealthDNS) nodeName() string {
	if h.member != nil {
		return h.member.node.Name()
	}
	return "self"
}

// answerOf says what e selects among the targets served now.
func (h *HealthDNS) answerOf(e override.Entry, now time.Time) overrideAnswer {
	a := overrideAnswer{Entry: e, Active: e.Active(now), Targets: []string{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.names {
		for _, t := range n.Targets {
			if e.Selector.Match(selectable(&t, n.FQDN)) {
				a.Matched++
				if len(a.Targets) < maxListed {
					a.Targets = append(a.Targets, n.FQDN+" "+t.Probe.Addr.String())
				}
			}
		}
	}
	return a
}

func (h *HealthDNS) listOverrides() overrideList {
	now := time.Now()
	es, _ := h.book().All()
	l := overrideList{Node: h.nodeName(), Time: now.UTC(), Overrides: []overrideAnswer{}}
	for _, e := range es {
		l.Overrides = append(l.Overrides, h.answerOf(e, now))
	}
	return l
}

func (h *HealthDNS) postOverride(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			controlError(w, http.StatusUnsupportedMediaType, "Content-Type %q: want application/json", ct)
			return
		}
	}
	var req overrideRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			controlError(w, http.StatusRequestEntityTooLarge, "body over %d bytes", maxControlBody)
			return
		}
		controlError(w, http.StatusBadRequest, "body: %v", err)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		controlError(w, http.StatusBadRequest, "body: one JSON object, nothing after it")
		return
	}
	sel, err := override.ParseSelector(req.Selector)
	if err != nil {
		controlError(w, http.StatusBadRequest, "selector: %v", err)
		return
	}
	st, err := override.ParseState(req.State)
	if err != nil {
		controlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	now := time.Now().UTC()
	e := override.Entry{Selector: sel, State: st, Reason: req.Reason, Who: req.Who, At: now, Node: h.nodeName()}
	if e.Who == "" {
		e.Who, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	switch {
	case st == override.None && req.For != "":
		controlError(w, http.StatusBadRequest, "for: a clear takes no duration")
		return
	case st == override.None:
		old, ok := h.book().Get(sel.String())
		if !ok || !old.Active(now) {
			controlError(w, http.StatusNotFound, "no override in force for selector %s (list them with GET /v1/overrides)", sel)
			return
		}
		e.Until = e.At
	case req.For != "":
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 || d > maxFor {
			controlError(w, http.StatusBadRequest, "for %q: want a duration from 1s to %s, like 30m or 2h", req.For, maxFor)
			return
		}
		e.Until = now.Add(d)
	}
	if old, ok := h.book().Get(sel.String()); ok && !e.Newer(old) {
		// This server's clock is behind the one that wrote the entry in
		// force: the operator's word is still the newest.
		d := old.At.Sub(e.At) + time.Nanosecond
		e.At = e.At.Add(d)
		if st == override.None || !e.Until.IsZero() {
			e.Until = e.Until.Add(d)
		}
	}
	if err := e.Validate(); err != nil {
		controlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := h.writeOverride(e); err != nil {
		controlError(w, http.StatusInternalServerError, "not stored, nothing changed: %v", err)
		return
	}
	a := h.answerOf(e, time.Now())
	log.Infof("control: override %s %s by %s (%s), %d targets: %s", e.Key(), e.State, orDash(e.Who), r.RemoteAddr, a.Matched, orDash(e.Reason))
	writeJSON(w, http.StatusOK, a)
}

// writeOverride takes an operator's override: stored in the data
// directory first (if any), then in force here, then sent to every
// server.
func (h *HealthDNS) writeOverride(e override.Entry) error {
	var err error
	if h.member != nil {
		_, err = h.member.node.PublishOverrides(h.persist(), e)
	} else {
		_, err = h.vs.ov.book.Apply(time.Now(), h.persist(), e)
	}
	if err != nil {
		return err
	}
	h.rebuild()
	return nil
}
