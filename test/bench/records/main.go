// Command records measures the record store and its replication at scale:
// 10 owners (ExternalDNS in 10 clusters, each through a healthdns-agent
// sidecar's webhook) of 20,000 endpoints each, replicated to 3 servers,
// all real processes on 127.0.0.184-197.
//
// It reports: the time for every owner's first batch (20,000 endpoints in
// one body, as ExternalDNS sends it) to reach every server; the time for
// a one-record change to be answered by every server's DNS; the time of
// GET /records of one owner; each server's data directory against the
// records' size after 100,000 one-record changes; RSS per server.
//
//	go run ./test/bench/records            # the figures in the README
//	go run ./test/bench/records -endpoints 2000 -changes 10000   # quicker
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/healthdns/healthdns/test/bench/internal/cleanup"
)

var (
	nOwners    = flag.Int("owners", 10, "owners (sidecar webhooks)")
	nEndpoints = flag.Int("endpoints", 20000, "endpoints per owner: half A, half their TXT registry records")
	nChanges   = flag.Int("changes", 100000, "one-record changes, spread over the owners")
	nLatency   = flag.Int("latency", 20, "one-record changes timed until every server answers them")
	keep       = flag.Bool("keep", false, "keep the working directory")
	verbose    = flag.Bool("v", false, "say more")
	memLimit   = flag.String("gomemlimit", "", "GOMEMLIMIT of the servers, as a container's memory limit sets it (90% of it); empty for none")
	heapProf   = flag.String("heapprofile", "", "write server 0's heap profile (after a GC) to this prefix: PREFIX-sync.pb.gz after the first sync, PREFIX-storm.pb.gz when the changes are all acknowledged, PREFIX-end.pb.gz at the end")
)

const (
	zone     = "gslb.example.com"
	nServers = 3
	media    = "application/external.dns.webhook+json;version=1"
)

func serverIP(i int) string { return fmt.Sprintf("127.0.0.%d", 184+i) }
func agentIP(i int) string  { return fmt.Sprintf("127.0.0.%d", 187+i) }

const backendIP = "127.0.0.197"

type endpoint struct {
	DNSName    string            `json:"dnsName"`
	Targets    []string          `json:"targets"`
	RecordType string            `json:"recordType"`
	RecordTTL  int64             `json:"recordTTL,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

type changes struct {
	Create    []endpoint `json:"create,omitempty"`
	UpdateOld []endpoint `json:"updateOld,omitempty"`
	UpdateNew []endpoint `json:"updateNew,omitempty"`
}

func owner(o int) string { return fmt.Sprintf("cluster%d", o) }

// aRecord is owner o's A record i, on one of 4 load balancer addresses.
func aRecord(o, i, v int) endpoint {
	return endpoint{DNSName: fmt.Sprintf("app%d.c%d.%s", i, o, zone), RecordType: "A", RecordTTL: 30,
		Targets: []string{fmt.Sprintf("192.0.2.%d", o*4+(i+v)%4+1)},
		Labels:  map[string]string{"owner": owner(o), "resource": fmt.Sprintf("ingress/default/app%d", i)}}
}

// txtRecord is the TXT registry record of A record i, version v.
func txtRecord(o, i, v int) endpoint {
	return endpoint{DNSName: fmt.Sprintf("a-app%d.c%d.%s", i, o, zone), RecordType: "TXT",
		Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=%s,external-dns/resource=ingress/default/app%d,v=%d"`, owner(o), i, v)},
		Labels:  map[string]string{"owner": owner(o), "resource": fmt.Sprintf("ingress/default/app%d", i)}}
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	defer cleanup.Run()
	dir, err := os.MkdirTemp("", "healthdns-records-bench")
	must(err)
	if *keep {
		log.Printf("working directory %s", dir)
	} else {
		cleanup.Add(func() { os.RemoveAll(dir) })
	}
	for _, b := range []string{"healthdns", "healthdns-agent"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b), "./cmd/"+b).CombinedOutput(); err != nil {
			cleanup.Fatalf("build %s: %v\n%s", b, err, out)
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "gossip.key")
	must(os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "zone"), []byte("$ORIGIN "+zone+".\n@ 300 IN SOA ns1 h 1 3600 600 604800 30\n@ 300 IN NS ns1\nns1 300 IN A "+serverIP(0)+"\n"), 0o644))

	// The targets' health check: a TCP listener that accepts.
	bl, err := net.Listen("tcp", backendIP+":0")
	must(err)
	defer bl.Close()
	go func() {
		for {
			c, err := bl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	var procs []*exec.Cmd
	cleanup.Add(func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	start := func(name string, args ...string) *exec.Cmd {
		f, err := os.Create(filepath.Join(dir, name+".log"))
		must(err)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if *memLimit != "" && strings.HasPrefix(name, "dns") {
			cmd.Env = append(os.Environ(), "GOMEMLIMIT="+*memLimit)
		}
		cmd.Stdout, cmd.Stderr = f, f
		must(cmd.Start())
		procs = append(procs, cmd)
		return cmd
	}
	var join []string
	for i := range nServers {
		join = append(join, serverIP(i)+":7946")
	}
	var servers []*exec.Cmd
	for i := range nServers {
		ip := serverIP(i)
		cf := fmt.Sprintf(`%s:1053 {
    bind %s
    prometheus %s:9153
    pprof %s:6060
    healthdns {
        zonefile zone
        interval 2s
        timeout 1s
        data data%d
        cluster {
            name dns%d
            bind %s:7946
            join %s
            keyfile %s
            label records
            probe off
            stale 30s
        }
    }
}
`, zone, ip, ip, ip, i, i, ip, strings.Join(join, " "), keyFile)
		p := filepath.Join(dir, fmt.Sprintf("Corefile%d", i))
		must(os.WriteFile(p, []byte(cf), 0o644))
		servers = append(servers, start(fmt.Sprintf("dns%d", i), filepath.Join(dir, "healthdns"), "-conf", p))
	}
	for i := range nServers {
		waitFor(time.Minute, "server "+serverIP(i), func() bool { return metric(serverIP(i), `coredns_healthdns_gossip_members{state="alive"}`) >= 1 })
	}
	for o := range *nOwners {
		start(fmt.Sprintf("agent%d", o), filepath.Join(dir, "healthdns-agent"),
			"-name", fmt.Sprintf("agent%d", o), "-bind", agentIP(o)+":7946", "-join", strings.Join(join, ","),
			"-keyfile", keyFile, "-label", "records",
			"-webhook", agentIP(o)+":8888", "-webhook-health", agentIP(o)+":8080", "-owner", owner(o), "-data", fmt.Sprintf("agent%d-data", o),
			"-domain-filter", zone, "-default-check", "tcp "+bl.Addr().String())
	}
	for o := range *nOwners {
		waitFor(time.Minute, "webhook of "+owner(o), func() bool {
			resp, err := http.Get(hook(o) + "/")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		})
	}
	waitFor(time.Minute, "every member", func() bool {
		for i := range nServers {
			if metric(serverIP(i), `coredns_healthdns_gossip_members{state="alive"}`) < float64(nServers+*nOwners) {
				return false
			}
		}
		return true
	})
	fmt.Printf("%d servers and %d sidecars up\n", nServers, *nOwners)

	// Every owner's first sync: its endpoints in one batch.
	half := *nEndpoints / 2
	t0 := time.Now()
	var wg sync.WaitGroup
	var bodyBytes atomic.Int64
	for o := range *nOwners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c changes
			for i := range half {
				c.Create = append(c.Create, aRecord(o, i, 0), txtRecord(o, i, 0))
			}
			n := post(o, c)
			bodyBytes.Add(int64(n))
		}()
	}
	wg.Wait()
	acked := time.Since(t0)
	seen := map[[2]int]time.Duration{}
	waitFor(5*time.Minute, "every owner's records on every server", func() bool {
		for i := range nServers {
			for o := range *nOwners {
				if _, ok := seen[[2]int{i, o}]; ok {
					continue
				}
				if ans, _ := query(serverIP(i), txtRecord(o, half-1, 0).DNSName, dns.TypeTXT); len(ans) == 0 {
					return false
				}
				seen[[2]int{i, o}] = time.Since(t0)
			}
		}
		return true
	})
	if *verbose {
		for k, d := range seen {
			log.Printf("server %d has owner %d after %v", k[0], k[1], d.Round(time.Millisecond))
		}
	}
	loaded := time.Since(t0)
	fmt.Printf("first sync: %d owners x %d endpoints (%d MB of JSON) acknowledged in %.1fs, on every server in %.1fs\n",
		*nOwners, *nEndpoints, bodyBytes.Load()>>20, acked.Seconds(), loaded.Seconds())
	waitFor(5*time.Minute, "A records answered", func() bool {
		for i := range nServers {
			for o := range *nOwners {
				if ans, _ := query(serverIP(i), aRecord(o, half-1, 0).DNSName, dns.TypeA); len(ans) == 0 {
					return false
				}
			}
		}
		return true
	})
	fmt.Printf("every server answers every owner's A records %.1fs after the first sync began\n", time.Since(t0).Seconds())
	for s := range nServers {
		fmt.Printf("  dns%d: %s\n", s, metrics(serverIP(s)+":9153", "gossip_records_sent_total", "rebuilds_total"))
	}
	for o := range *nOwners {
		fmt.Printf("  agent%d: %s\n", o, metrics(agentIP(o)+":8080", "gossip_records_sent_total"))
	}
	report := func(what string) int {
		worst := 0
		var parts []string
		for i, s := range servers {
			r, hwm := rss(s.Process.Pid)
			worst = max(worst, hwm)
			parts = append(parts, fmt.Sprintf("dns%d %d MB (peak %d)", i, r, hwm))
		}
		fmt.Printf("RSS %s: %s\n", what, strings.Join(parts, ", "))
		return worst
	}
	report("after the first sync")
	heapProfile("sync")

	// One-record changes, each timed until every server answers it: a
	// TXT record (the store and replication) and an A record's address
	// (the same, and a verdict for the new target).
	var txtLat, aLat []time.Duration
	version := make([]int, *nOwners)
	for k := range *nLatency {
		o := k % *nOwners
		version[o]++
		v := version[o]
		i := (k * 7919) % half
		txt := txtRecord(o, i, v)
		t := time.Now()
		post(o, changes{UpdateNew: []endpoint{txt}})
		waitFor(30*time.Second, "a TXT change everywhere", func() bool {
			for s := range nServers {
				if ans, _ := query(serverIP(s), txt.DNSName, dns.TypeTXT); len(ans) != 1 || !strings.Contains(ans[0], fmt.Sprintf("v=%d", v)) {
					return false
				}
			}
			return true
		})
		txtLat = append(txtLat, time.Since(t))
		a := aRecord(o, i, v)
		t = time.Now()
		post(o, changes{UpdateNew: []endpoint{a}})
		waitFor(30*time.Second, "an A change everywhere", func() bool {
			for s := range nServers {
				if ans, _ := query(serverIP(s), a.DNSName, dns.TypeA); len(ans) != 1 || ans[0] != a.Targets[0] {
					return false
				}
			}
			return true
		})
		aLat = append(aLat, time.Since(t))
	}
	fmt.Printf("one-record change answered by all %d servers: TXT %s; A %s\n", nServers, stats(txtLat), stats(aLat))

	var getLat []time.Duration
	var recordsSize int64
	for o := range *nOwners {
		t := time.Now()
		n, count := getRecords(o)
		getLat = append(getLat, time.Since(t))
		recordsSize += int64(n)
		if count != *nEndpoints {
			cleanup.Fatalf("GET /records of %s: %d endpoints", owner(o), count)
		}
	}
	fmt.Printf("GET /records of one owner (%d endpoints): %s\n", *nEndpoints, stats(getLat))

	// Many one-record changes: each owner's writer in turn updates its
	// TXT records, one POST each.
	t1 := time.Now()
	per := max(1, *nChanges / *nOwners)
	stopPeak := watchPeak(procs[0].Process.Pid)
	for o := range *nOwners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range per {
				i := k % half
				post(o, changes{UpdateNew: []endpoint{txtRecord(o, i, 1000+k)}})
			}
		}()
	}
	wg.Wait()
	posted := time.Since(t1)
	heapProfile("storm")
	if *verbose {
		for range 5 {
			for s := range nServers {
				n := 0
				for o := range *nOwners {
					last := txtRecord(o, (per-1)%half, 1000+per-1)
					if ans, _ := query(serverIP(s), last.DNSName, dns.TypeTXT); len(ans) == 1 && strings.Contains(ans[0], fmt.Sprintf("v=%d", 1000+per-1)) {
						n++
					}
				}
				log.Printf("%.1fs: server %d answers the last change of %d owners; %s", time.Since(t1).Seconds(), s, n, metrics(serverIP(s)+":9153", "gossip_messages_total", "gossip_direct", "gossip_states_total"))
			}
			log.Printf("   agent0: %s", metrics(agentIP(0)+":8080", "gossip_direct", "gossip_broadcast_queue", "gossip_messages_sent"))
			time.Sleep(2 * time.Second)
		}
	}
	waitFor(5*time.Minute, "the last changes on every server", func() bool {
		for s := range nServers {
			for o := range *nOwners {
				last := txtRecord(o, (per-1)%half, 1000+per-1)
				if ans, _ := query(serverIP(s), last.DNSName, dns.TypeTXT); len(ans) != 1 || !strings.Contains(ans[0], fmt.Sprintf("v=%d", 1000+per-1)) {
					return false
				}
			}
		}
		return true
	})
	stopPeak()
	fmt.Printf("%d one-record changes (%d writers at once) acknowledged in %.1fs (%.0f/s), on every server %.1fs after the first\n",
		per**nOwners, *nOwners, posted.Seconds(), float64(per**nOwners)/posted.Seconds(), time.Since(t1).Seconds())
	// Owners' records sent whole after the first sync mean a peer fell
	// further behind than the log of recent changes reaches.
	for s := range nServers {
		fmt.Printf("  dns%d: %s\n", s, metrics(serverIP(s)+":9153", "gossip_records_sent_total", "rebuilds_total"))
	}
	for o := range *nOwners {
		fmt.Printf("  agent%d: %s\n", o, metrics(agentIP(o)+":8080", "gossip_records_sent_total"))
	}
	recordsSize = 0
	for o := range *nOwners {
		n, _ := getRecords(o)
		recordsSize += int64(n)
	}
	worstRatio := 0.0
	var parts []string
	for i := range nServers {
		n := dirSize(filepath.Join(dir, fmt.Sprintf("data%d", i)))
		ratio := float64(n) / float64(recordsSize)
		worstRatio = max(worstRatio, ratio)
		parts = append(parts, fmt.Sprintf("dns%d %.1f MB (%.2fx)", i, float64(n)/1e6, ratio))
	}
	fmt.Printf("data directories after the changes, against %.1f MB of records (GET /records' JSON): %s\n", float64(recordsSize)/1e6, strings.Join(parts, ", "))
	worstRSS := report("at the end")
	heapProfile("end")
	var agentRSS []int
	for _, p := range procs[nServers:] {
		r, _ := rss(p.Process.Pid)
		agentRSS = append(agentRSS, r)
	}
	fmt.Printf("RSS of the sidecars: max %d MB\n", slices.Max(agentRSS))
	slices.Sort(txtLat)
	slices.Sort(aLat)
	slices.Sort(getLat)
	fmt.Printf("records scale: change visible p50 %v max %v (A max %v); GET /records max %v; data dir max %.2fx records; RSS max %d MB\n",
		txtLat[len(txtLat)/2].Round(time.Millisecond), txtLat[len(txtLat)-1].Round(time.Millisecond), aLat[len(aLat)-1].Round(time.Millisecond),
		getLat[len(getLat)-1].Round(time.Millisecond), worstRatio, worstRSS)
}

// heapProfile saves server 0's heap profile, taken after a collection
// (pprof's gc=1), so its inuse figures are the live heap.
func heapProfile(when string) {
	if *heapProf == "" {
		return
	}
	// Not fatal: a server busy with a storm may not answer, and a
	// missing profile is not worth the run.
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Get("http://" + serverIP(0) + ":6060/debug/pprof/heap?gc=1")
	if err != nil {
		log.Printf("heap profile of dns0 %s: %v", when, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Printf("heap profile of dns0 %s: %v", when, err)
		return
	}
	p := *heapProf + "-" + when + ".pb.gz"
	must(os.WriteFile(p, b, 0o644))
	fmt.Printf("heap profile of dns0 %s: %s\n", when, p)
}

// watchPeak samples server 0's RSS each second until stopped and, with
// -heapprofile, saves its heap profile (PREFIX-peak.pb.gz) each time RSS
// passes its highest yet by 32 MB (PREFIX-peak1.pb.gz, -peak2, ...): what
// is live as the storm peaks.
func watchPeak(pid int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		top, n := 0, 0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			r, _ := rss(pid)
			if r < top+32 {
				continue
			}
			top = r
			if *verbose {
				log.Printf("dns0 RSS %d MB", r)
			}
			if *heapProf != "" && r > 300 {
				n++
				heapProfile(fmt.Sprintf("peak%d", n))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func hook(o int) string { return "http://" + agentIP(o) + ":8888" }

var client = &http.Client{Timeout: 2 * time.Minute}

// post sends a batch to owner o's webhook until it is acknowledged (503,
// retried, as ExternalDNS does) and returns the body's size.
func post(o int, c changes) int {
	b, err := json.Marshal(c)
	must(err)
	for try := 0; ; try++ {
		req, _ := http.NewRequest(http.MethodPost, hook(o)+"/records", bytes.NewReader(b))
		req.Header.Set("Content-Type", media)
		resp, err := client.Do(req)
		if err != nil {
			cleanup.Fatalf("POST to %s: %v", owner(o), err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNoContent:
			return len(b)
		case resp.StatusCode == http.StatusServiceUnavailable && try < 20:
			time.Sleep(time.Second)
		default:
			cleanup.Fatalf("POST to %s: %d %s", owner(o), resp.StatusCode, msg)
		}
	}
}

// getRecords returns the size of owner o's GET /records and its count.
func getRecords(o int) (int, int) {
	req, _ := http.NewRequest(http.MethodGet, hook(o)+"/records", nil)
	req.Header.Set("Accept", media)
	resp, err := client.Do(req)
	must(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(err)
	var eps []json.RawMessage
	must(json.Unmarshal(b, &eps))
	return len(b), len(eps)
}

// metrics returns the series of an endpoint whose names contain any of
// names.
func metrics(addr string, names ...string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		for _, n := range names {
			if strings.Contains(l, n) {
				out = append(out, strings.TrimPrefix(l, "coredns_healthdns_"))
			}
		}
	}
	return strings.Join(out, " ")
}

// metric returns a server's metric, -1 if it has none (yet).
func metric(ip, series string) float64 {
	resp, err := http.Get("http://" + ip + ":9153/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func query(ip, name string, qtype uint16) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, ip+":1053")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.TXT:
			out = append(out, strings.Join(rr.Txt, ""))
		}
	}
	return out, nil
}

func waitFor(d time.Duration, what string, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			cleanup.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rss returns a process's VmRSS and VmHWM in MB.
func rss(pid int) (int, int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	var r, hwm int
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			r = n >> 10
		case "VmHWM:":
			hwm = n >> 10
		}
	}
	return r, hwm
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func stats(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %v, median %v, max %v", s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

func must(err error) {
	if err != nil {
		cleanup.Fatalf("%v", err)
	}
}
