// Command webhookmem measures a server's memory under concurrent large
// webhook requests: it starts a healthdns server with a store and a
// webhook on 127.0.0.190, then sends 40 POST /records of 8 MB each at
// once (updates of the same 20,000-odd TXT records, as an ExternalDNS
// resync of a large cluster sends), and reports the server's resident
// memory before and at its peak.
//
//	go run ./test/bench/webhookmem              # this tree's server
//	go run ./test/bench/webhookmem -bin PATH    # another build, to compare
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	binFlag = flag.String("bin", "", "healthdns binary (default: build ./cmd/healthdns)")
	nPosts  = flag.Int("posts", 40, "concurrent POST /records")
	size    = flag.Int("size", 8<<20, "bytes of each body")
)

const ip = "127.0.0.190"

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "wt12-webhookmem")
	must(err)
	defer os.RemoveAll(dir)
	bin := *binFlag
	if bin == "" {
		bin = filepath.Join(dir, "healthdns")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/healthdns").CombinedOutput(); err != nil {
			log.Fatalf("build: %v\n%s", err, out)
		}
	}
	zone := `$ORIGIN gslb.example.com.
$TTL 300
@ IN SOA ns1.gslb.example.com. hostmaster.example.com. 1 3600 600 604800 30
  IN NS  ns1.gslb.example.com.
ns1 IN A 127.0.0.1
`
	must(os.WriteFile(filepath.Join(dir, "gslb.zone"), []byte(zone), 0o644))
	dnsPort, hookPort := freePort(), freePort()
	conf := fmt.Sprintf(`gslb.example.com:%d {
    bind %s
    healthdns {
        zonefile gslb.zone
        data data
        webhook %s:%d {
            owner big
            check tcp {addr}:443
        }
    }
}
`, dnsPort, ip, ip, hookPort)
	must(os.WriteFile(filepath.Join(dir, "Corefile"), []byte(conf), 0o644))
	cmd := exec.Command(bin, "-conf", "Corefile")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(cmd.Start())
	defer cmd.Process.Kill()
	hook := fmt.Sprintf("http://%s:%d", ip, hookPort)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(hook + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("server not up:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A body of size bytes: TXT records of ~300 bytes each.
	type endpoint struct {
		DNSName    string   `json:"dnsName"`
		Targets    []string `json:"targets"`
		RecordType string   `json:"recordType"`
	}
	var eps []endpoint
	body := []byte(`{"create":[]}`)
	for i := 0; len(body) < *size-400; i++ {
		eps = append(eps, endpoint{DNSName: fmt.Sprintf("r%d.gslb.example.com", i), RecordType: "TXT",
			Targets: []string{fmt.Sprintf(`"heritage=external-dns,external-dns/owner=big,external-dns/resource=ingress/default/app-%d %s"`, i, strings.Repeat("x", 180))}})
		if i%1000 == 999 {
			body, _ = json.Marshal(map[string]any{"create": eps})
		}
	}
	body, _ = json.Marshal(map[string]any{"create": eps})
	log.Printf("body: %d endpoints, %d bytes", len(eps), len(body))

	time.Sleep(time.Second)
	base := rss(cmd.Process.Pid, "VmRSS")
	var peak int
	stop := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		for {
			peak = max(peak, rss(cmd.Process.Pid, "VmRSS"))
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Minute}
	t0 := time.Now()
	for range *nPosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, hook+"/records", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/external.dns.webhook+json;version=1")
			code := 0
			if resp, err := client.Do(req); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	close(stop)
	sampled.Wait()
	hwm := rss(cmd.Process.Pid, "VmHWM")
	log.Printf("%d concurrent POSTs of %d MB in %v: status codes %v", *nPosts, len(body)>>20, took.Round(time.Millisecond), codes)
	fmt.Printf("webhookmem: rss before %d MB, peak %d MB (VmHWM %d MB)\n", base>>10, peak>>10, hwm>>10)
}

// rss returns a /proc/PID/status field in KiB.
func rss(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func freePort() int {
	l, err := net.Listen("tcp", ip+":0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
