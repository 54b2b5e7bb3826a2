package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/records"

	"github.com/miekg/dns"
)

// The store tests run a real server with a data directory on 127.0.0.180-
// 199 and hurt its disk: damage in every file of the data directory
// (TestStoreDamageAtStart), a full disk (TestStoreFullDisk), and records
// it would not serve (TestWebhookRefusesUnservable).

// storeZone is zoneText with a name the zone file holds and a delegation.
const storeZone = zoneText + `www     IN A    192.0.2.201
sub     IN NS   ns.sub.gslb.example.com.
ns.sub  IN A    192.0.2.202
`

const storeCorefile = `gslb.example.com:%[1]d {
    bind %[2]s
    errors
    healthdns {
        zonefile %[3]s
        interval 1s
        timeout 500ms
        rise 2
        fall 2
        ttl 5
        data %[4]s
        webhook %[2]s:%[5]d {
            owner local
            check %[6]s
        }
        status %[2]s:%[7]d
    }
}
`

// storeServer is a single server with a store, a webhook and a status
// listener on one address of the block.
type storeServer struct {
	t       *testing.T
	dir     string
	conf    string
	data    string
	addr    string // DNS
	hook    string // webhook base URL
	status  string // status base URL
	p       *process
	backend *backend
}

func newStoreServer(t *testing.T, ip, data string) *storeServer {
	t.Helper()
	dir := t.TempDir()
	b := startBackend(t, "http")
	ports := freePorts(t, 3, []string{ip})
	zf := writeFile(t, dir, "gslb.zone", storeZone)
	conf := writeFile(t, dir, "Corefile", fmt.Sprintf(storeCorefile, ports[0], ip, zf, data, ports[1], b.check(), ports[2]))
	return &storeServer{t: t, dir: dir, conf: conf, data: data, backend: b,
		addr:   net.JoinHostPort(ip, strconv.Itoa(ports[0])),
		hook:   "http://" + net.JoinHostPort(ip, strconv.Itoa(ports[1])),
		status: "http://" + net.JoinHostPort(ip, strconv.Itoa(ports[2]))}
}

func (s *storeServer) start() {
	s.t.Helper()
	s.p = launch(s.t, s.dir, "-conf", s.conf)
	recWaitReady(s.t, s.p, s.addr, time.Now())
}

func (s *storeServer) kill9() {
	s.t.Helper()
	recKill9(s.t, s.p)
}

// get GETs url and returns the status code and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/external.dns.webhook+json;version=1, application/json")
	resp, err := recClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// storeError returns what the status document says of the store.
func (s *storeServer) storeError() (string, bool) {
	s.t.Helper()
	code, b := get(s.t, s.status+"/status")
	if code != http.StatusOK {
		s.t.Fatalf("status: %d %s", code, b)
	}
	var doc struct {
		Store *struct {
			Dir   string `json:"dir"`
			Error string `json:"error"`
		} `json:"store"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		s.t.Fatal(err)
	}
	if doc.Store == nil {
		return "", false
	}
	return doc.Store.Error, true
}

// servesZone checks that DNS serves the zone file's names.
func (s *storeServer) servesZone() {
	s.t.Helper()
	for _, net := range []string{"udp", "tcp"} {
		if got, err := recAnswer(s.addr, net, "static.gslb.example.com", dns.TypeA); err != nil || got != "NOERROR 192.0.2.200" {
			s.t.Fatalf("static A over %s: %q %v", net, got, err)
		}
	}
}

// storeRecords makes a data directory with a snapshot and a log: a bulk
// batch large enough to compact, then single-record changes.
func storeRecords(t *testing.T, s *storeServer) recView {
	t.Helper()
	model := recView{}
	var bulk records.Changes
	for i := range 400 {
		bulk.Create = append(bulk.Create, ep(fmt.Sprintf("bulk-%d.gslb.example.com", i), "TXT", fmt.Sprintf(`"%s %d"`, strings.Repeat("x", 150), i)))
	}
	batches := []records.Changes{bulk}
	for i := range 8 {
		batches = append(batches, records.Changes{Create: []records.Endpoint{ep(fmt.Sprintf("app%d.gslb.example.com", i), "A", fmt.Sprintf("192.0.2.%d", 10+i))}})
	}
	batches = append(batches, records.Changes{Delete: []records.Endpoint{ep("bulk-7.gslb.example.com", "TXT")}})
	for _, c := range batches {
		if code, body, err := postChanges(s.hook, c); err != nil || code != http.StatusNoContent {
			t.Fatalf("POST: %d %v %s", code, err, body)
		}
		model.apply(c)
	}
	return model
}

// TestStoreDamageAtStart damages each file of a server's data directory,
// one byte flipped in its middle, or a few bytes cut off its end, and
// starts the server on it. Either the store opens with every
// acknowledged record served (a cut log is a torn tail: only its last
// entry may go, and the log says so), or the server refuses the store
// and says so, naming the file and offset, in the webhook's 503 and in
// status, while DNS goes on serving the zone. Moving the directory aside
// then lets the store open, without a restart.
func TestStoreDamageAtStart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := newStoreServer(t, "127.0.0.181", data)
	s.start()
	model := storeRecords(t, s)
	s.kill9()
	files, err := os.ReadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	clean := map[string][]byte{}
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(data, f.Name()))
		clean[f.Name()] = b
	}
	if len(clean["snapshot"]) == 0 || len(clean["wal"]) == 0 {
		t.Fatalf("want a snapshot and a log, have %v", files)
	}
	restore := func() {
		for name, b := range clean {
			if err := os.WriteFile(filepath.Join(data, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	refused, served := 0, 0
	for _, name := range []string{"wal", "snapshot", "LOCK"} {
		orig := clean[name]
		if len(orig) == 0 {
			t.Logf("%s is empty: nothing to damage", name)
			continue
		}
		for _, d := range []struct {
			what string
			b    []byte
		}{
			{"the middle byte flipped", func() []byte { b := append([]byte(nil), orig...); b[len(b)/2] ^= 0xff; return b }()},
			{"5 bytes cut off", orig[:len(orig)-5]},
		} {
			restore()
			os.WriteFile(filepath.Join(data, name), d.b, 0o600)
			s.start()
			s.servesZone()
			code, body := get(t, s.hook+"/records")
			if code == http.StatusServiceUnavailable {
				refused++
				path := filepath.Join(data, name)
				if !strings.Contains(string(body), path) || !strings.Contains(string(body), "offset") {
					t.Fatalf("%s, %s: the webhook's 503 does not name the file and offset: %s", name, d.what, body)
				}
				if why, ok := s.storeError(); !ok || !strings.Contains(why, path) || !strings.Contains(why, "To recover") {
					t.Fatalf("%s, %s: status says %q", name, d.what, why)
				}
				t.Logf("%s, %s: refused: %s", name, d.what, body)
			} else {
				served++
				if code != http.StatusOK {
					t.Fatalf("%s, %s: GET /records %d %s", name, d.what, code, body)
				}
				var eps []records.Endpoint
				json.Unmarshal(body, &eps)
				got := viewOf(eps)
				diff := model.diff(got)
				torn := strings.Contains(s.p.Out.String(), "cut off a torn tail")
				// A cut log's last entry (the delete of bulk-7) may go,
				// with a warning; nothing else.
				if len(diff) > 0 && !(name == "wal" && strings.Contains(d.what, "cut") && torn && len(diff) == 1 && strings.Contains(diff[0], "bulk-7")) {
					t.Fatalf("%s, %s: opened and lost acknowledged records:\n%s", name, d.what, strings.Join(diff, "\n"))
				}
				if bad := servedView(s.addr, recView{"app7.gslb.example.com A": {"192.0.2.17"}, "bulk-300.gslb.example.com TXT": model["bulk-300.gslb.example.com TXT"]}, nil); len(bad) > 0 {
					t.Fatalf("%s, %s: DNS: %s", name, d.what, strings.Join(bad, "; "))
				}
				t.Logf("%s, %s: opened, every intact record served (torn tail cut: %v)", name, d.what, torn)
			}
			s.kill9()
		}
	}
	if refused == 0 {
		t.Fatal("no damage was refused")
	}

	// The recovery the message gives: move the directory aside. The
	// running server opens a fresh store by itself.
	restore()
	b := append([]byte(nil), clean["wal"]...)
	b[len(b)/2] ^= 0xff
	os.WriteFile(filepath.Join(data, "wal"), b, 0o600)
	s.start()
	if code, _ := get(t, s.hook+"/records"); code != http.StatusServiceUnavailable {
		t.Fatalf("damaged: GET /records %d", code)
	}
	if err := os.Rename(data, data+".damaged"); err != nil {
		t.Fatal(err)
	}
	d, ok := poll(20*time.Second, 100*time.Millisecond, func() bool {
		code, _, err := postChanges(s.hook, records.Changes{Create: []records.Endpoint{ep("after.gslb.example.com", "A", "192.0.2.99")}})
		return err == nil && code == http.StatusNoContent
	})
	if !ok {
		t.Fatalf("the store did not open after the directory was moved aside:\n%s", s.p.Out.String())
	}
	if why, ok := s.storeError(); !ok || why != "" {
		t.Errorf("status after recovery: %q", why)
	}
	t.Logf("%d damaged directories refused, %d opened whole; after moving the directory aside the store opened %v later, without a restart", refused, served, d.Round(time.Millisecond))
}

// mountTmpfs mounts a tmpfs of size on a new directory, or skips.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes files in dir until the disk is full, and returns them.
func fill(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("fill-%d", i))
		f, err := os.Create(p)
		if err != nil {
			return out
		}
		out = append(out, p)
		_, err = f.Write(make([]byte, 4096))
		f.Close()
		if err != nil || i > 10000 {
			return out
		}
	}
}

// TestStoreFullDisk runs a server whose data directory is on a 256 KiB
// tmpfs. Writes fill it and then get 503 with the reason (ExternalDNS
// retries those) and change nothing; once space is freed the store takes
// writes again without a restart; and a disk full at start leaves DNS
// serving the zone while the webhook says why it cannot take records,
// until space is freed. Nothing acknowledged is lost.
func TestStoreFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, "256k")
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(mnt, "data")
	s := newStoreServer(t, "127.0.0.182", data)
	s.start()
	model := recView{}
	record := func(i int) records.Changes {
		return records.Changes{Create: []records.Endpoint{ep(fmt.Sprintf("r%d.gslb.example.com", i), "TXT", fmt.Sprintf(`"%s %d"`, strings.Repeat("x", 180), i))}}
	}
	acked, i := 0, 0
	var full []byte
	for ; i < 5000; i++ {
		code, body, err := postChanges(s.hook, record(i))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if code == http.StatusServiceUnavailable {
			full = body
			break
		}
		if code != http.StatusNoContent {
			t.Fatalf("record %d: %d %s", i, code, body)
		}
		model.apply(record(i))
		acked++
	}
	if full == nil {
		t.Fatal("5,000 records fit a 256 KiB disk")
	}
	if !strings.Contains(string(full), "no space left on device") {
		t.Errorf("the 503 of a full disk: %s", full)
	}
	_, eps := getRecords(t, s.hook)
	if diff := model.diff(viewOf(eps)); len(diff) > 0 {
		t.Fatalf("full: GET /records differs:\n%s", strings.Join(diff, "\n"))
	}
	if bad := servedView(s.addr, recView{fmt.Sprintf("r%d.gslb.example.com TXT", acked-1): model[fmt.Sprintf("r%d.gslb.example.com TXT", acked-1)]}, nil); len(bad) > 0 {
		t.Fatalf("full: DNS: %s", strings.Join(bad, "; "))
	}
	os.Remove(filler)
	for j := range 20 {
		if code, body, err := postChanges(s.hook, record(i)); err != nil || code != http.StatusNoContent {
			t.Fatalf("after freeing space, write %d: %d %v %s", j, code, err, body)
		}
		model.apply(record(i))
		i++
	}
	after := len(model)

	// A disk full at start: the server serves DNS anyway, and writes get
	// 503 with the reason (the store opened in the last page's slack, or
	// could not write its epoch and is not open) until space is freed.
	s.kill9()
	fillers := fill(t, mnt)
	s.start()
	s.servesZone()
	var batch records.Changes // more than the slack of the log's last page
	for range 30 {
		batch.Create = append(batch.Create, record(i).Create...)
		i++
	}
	code, body, err := postChanges(s.hook, batch)
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(string(body), "no space left") {
		t.Fatalf("a full disk at start: POST %d %v %s", code, err, body)
	}
	for _, f := range fillers {
		os.Remove(f)
	}
	if _, ok := poll(20*time.Second, 100*time.Millisecond, func() bool {
		code, _, err := postChanges(s.hook, batch)
		return err == nil && code == http.StatusNoContent
	}); !ok {
		t.Fatalf("no write taken once space was freed:\n%s", s.p.Out.String())
	}
	model.apply(batch)

	// A data directory that cannot be written at start (a read-only
	// mount) leaves the store closed: DNS serves, the webhook and status
	// say why, and once it can be written the store opens by itself.
	s.kill9()
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	s.start()
	s.servesZone()
	if got, err := recAnswer(s.addr, "udp", "r0.gslb.example.com", dns.TypeTXT); err != nil || !strings.HasPrefix(got, "NXDOMAIN") {
		t.Errorf("r0 while the store is closed: %q %v", got, err)
	}
	code, rbody := get(t, s.hook+"/records")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(rbody), "read-only file system") {
		t.Fatalf("a data directory that cannot be written at start: GET /records %d %s", code, rbody)
	}
	if why, ok := s.storeError(); !ok || !strings.Contains(why, "read-only file system") {
		t.Errorf("status while the store is closed: %q", why)
	}
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT, "size=256k"); err != nil {
		t.Fatalf("remount read-write: %v", err)
	}
	if _, ok := poll(20*time.Second, 100*time.Millisecond, func() bool {
		code, _ := get(t, s.hook+"/records")
		return code == http.StatusOK
	}); !ok {
		t.Fatalf("the store did not open once the disk could be written:\n%s", s.p.Out.String())
	}
	_, eps = getRecords(t, s.hook)
	if diff := model.diff(viewOf(eps)); len(diff) > 0 {
		t.Fatalf("after all that: GET /records differs:\n%s", strings.Join(diff, "\n"))
	}
	if bad := servedView(s.addr, recView{"r0.gslb.example.com TXT": model["r0.gslb.example.com TXT"]}, nil); len(bad) > 0 {
		t.Fatalf("after the store opened: DNS: %s", strings.Join(bad, "; "))
	}
	t.Logf("a 256 KiB disk took %d records of 200 bytes and then answered 503 %q; after 64 KiB were freed it took %d more; full at start, and read-only at start, DNS served and the webhook said why until the disk recovered; none of the %d lost",
		acked, strings.TrimSpace(string(full)), after-acked, len(model))
}

// TestWebhookRefusesUnservable: records the server would not answer as
// written get 422 naming each (ExternalDNS logs it), and nothing of the
// batch is applied: a name the zone file holds, a name below a
// delegation. A wildcard is served as a wildcard (RFC 4592): names below
// it that do not exist get its targets, names that exist their own.
func TestWebhookRefusesUnservable(t *testing.T) {
	s := newStoreServer(t, "127.0.0.183", filepath.Join(t.TempDir(), "data"))
	s.start()
	for _, c := range []struct {
		what string
		e    records.Endpoint
		want string
	}{
		{"a name the zone file has", ep("www.gslb.example.com", "A", "192.0.2.50"), "the zone file has A records"},
		{"a name below a delegation", ep("x.sub.gslb.example.com", "A", "192.0.2.50"), "delegation sub.gslb.example.com"},
		{"the delegation itself", ep("sub.gslb.example.com", "TXT", `"x"`), "delegation sub.gslb.example.com"},
		{"a CNAME beside zone data", ep("www.gslb.example.com", "CNAME", "lb.example.net"), "a CNAME can have no other records"},
		{"a CNAME at the apex", ep("gslb.example.com", "CNAME", "lb.example.net"), "apex"},
	} {
		ok := ep("fine.gslb.example.com", "A", "192.0.2.60")
		code, body, err := postChanges(s.hook, records.Changes{Create: []records.Endpoint{ok, c.e}})
		if err != nil || code != http.StatusUnprocessableEntity || !strings.Contains(string(body), c.want) || !strings.Contains(string(body), "create[1]") {
			t.Errorf("%s: %d %v %s", c.what, code, err, body)
		}
	}
	if _, eps := getRecords(t, s.hook); len(eps) != 0 {
		t.Fatalf("refused batches stored %v", eps)
	}
	// A wildcard from the webhook, and a name below it that exists.
	if code, body, err := postChanges(s.hook, records.Changes{Create: []records.Endpoint{
		ep("*.apps.gslb.example.com", "A", "192.0.2.70"),
		ep("*.apps.gslb.example.com", "TXT", `"wild"`),
		ep("one.apps.gslb.example.com", "A", "192.0.2.71"),
	}}); err != nil || code != http.StatusNoContent {
		t.Fatalf("wildcard: %d %v %s", code, err, body)
	}
	want := map[string]string{
		"x.apps.gslb.example.com A":     "NOERROR 192.0.2.70",
		"a.b.apps.gslb.example.com A":   "NOERROR 192.0.2.70",
		"x.apps.gslb.example.com TXT":   `NOERROR "wild"`,
		"one.apps.gslb.example.com A":   "NOERROR 192.0.2.71",
		"one.apps.gslb.example.com TXT": "NOERROR ",
		"*.apps.gslb.example.com A":     "NOERROR 192.0.2.70",
		"static.gslb.example.com A":     "NOERROR 192.0.2.200",
		"nothing.gslb.example.com A":    "NXDOMAIN ",
	}
	if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		got, err := recAnswer(s.addr, "udp", "x.apps.gslb.example.com", dns.TypeA)
		return err == nil && got == want["x.apps.gslb.example.com A"]
	}); !ok {
		t.Fatal("the wildcard is not served")
	}
	for k, w := range want {
		name, typ, _ := strings.Cut(k, " ")
		for _, net := range []string{"udp", "tcp"} {
			if got, err := recAnswer(s.addr, net, name, dns.StringToType[typ]); err != nil || got != w {
				t.Errorf("%s over %s: %q (%v), want %q", k, net, got, err, w)
			}
		}
	}
	// The answer carries the name asked.
	m, err := exchange(s.addr, "udp", "x.apps.gslb.example.com.", dns.TypeA, false)
	if err != nil || len(m.Answer) != 1 || m.Answer[0].Header().Name != "x.apps.gslb.example.com." {
		t.Errorf("wildcard answer %v (%v)", m, err)
	}
}
