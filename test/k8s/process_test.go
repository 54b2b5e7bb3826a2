package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/healthdns/healthdns/test/testproc"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// The addresses of this test (the block 127.0.0.250-254 is its own): one
// per pod, as a pod has an address of its own.
const (
	serverIPBase = 250                 // server pods 127.0.0.250, .251, .252
	agentIP      = "127.0.0.253"       // the chart's probe agent
	sidecarIP    = "127.0.0.254"       // ExternalDNS's pod, with the healthdns-agent webhook sidecar
	eastBackend  = "127.0.0.254:19001" // the backends the test values' checks point at
	westBackend  = "127.0.0.254:19002"
	namespace    = "healthdns"
)

// entrypoints are the images' ENTRYPOINTs (Dockerfile), for containers
// that set no command.
var entrypoints = map[string]string{
	"ghcr.io/healthdns/healthdns":       "/usr/local/bin/healthdns",
	"ghcr.io/healthdns/healthdns-agent": "/usr/local/bin/healthdns-agent",
}

// TestChartProcesses runs what the chart renders (and the ExternalDNS
// chart's webhook sidecar from the example values) as real processes on
// loopback: the rendered Corefile, zone, key and container arguments, with
// only what a kubelet and the cluster's DNS provide rewritten:
//
//   - each pod's own addresses: a listen address on every interface or on
//     loopback (":9153", "0.0.0.0:7946", "127.0.0.1:8053", "localhost:8888")
//     becomes the pod's address here, and each Corefile server block gets
//     "bind POD_IP" (in a pod, all interfaces are the pod's; here they are
//     shared);
//   - the downward API: POD_NAME, POD_IP, POD_NAMESPACE, and $(VAR) in
//     arguments expanded as the kubelet does;
//   - cluster DNS names (the servers' stable names under the headless
//     Service, the Service's own name, the example's server host names)
//     become the addresses the DNS would return;
//   - mount paths become directories holding the ConfigMap's and Secret's
//     files and the volumes (the PVC survives a restart of its pod);
//   - the image's binaries are the ones built from this checkout.
//
// Then it checks what a user would: every pod becomes ready by its
// readinessProbe, the DNS Service's ports answer over UDP and TCP, the
// members find each other, a backend's death moves every server's answer,
// a record written through the sidecar's webhook is answered by every
// server, and a restarted server comes back ready with its volume.
//
// It runs twice: flat, the agent and the sidecar gossip members; and edge,
// the servers' client port on (cluster.edge.enabled), the agent in edge
// mode and the sidecar of examples/external-dns-edge-values.yaml, both
// connecting out.
func TestChartProcesses(t *testing.T) {
	for _, mode := range []string{"flat", "edge"} {
		t.Run(mode, func(t *testing.T) { chartProcesses(t, mode == "edge") })
	}
}

func chartProcesses(t *testing.T, edge bool) {
	args := []string{"-f", "testdata/process-values.yaml"}
	example := "external-dns-values.yaml"
	if edge {
		args = append(args, "--set", "cluster.edge.enabled=true,agents.mode=edge,agents.connect[0]=hd-healthdns-clients."+namespace+".svc.cluster.local:7947")
		example = "external-dns-edge-values.yaml"
	}
	objs := render(t, chartDir, "hd", args...)
	edns := render(t, externalDNSChart(t), "edns", "-f", filepath.Join(examplesDir, example))
	b := binaries(t)
	k := &kubelet{t: t, bins: b, root: t.TempDir(), objs: objs, hosts: map[string][]string{}, secrets: map[string]map[string][]byte{}}

	sts := find[*appsv1.StatefulSet](objs)
	deps := find[*appsv1.Deployment](objs)
	if len(sts) != 1 || len(deps) != 1 {
		t.Fatalf("want one StatefulSet and one Deployment, got %d and %d", len(sts), len(deps))
	}
	ss := sts[0]
	replicas := int(*ss.Spec.Replicas)
	if replicas != 3 {
		t.Fatalf("%d server replicas: this test has addresses for 3", replicas)
	}
	// What the cluster's DNS answers.
	svcDomain := fmt.Sprintf("%s.%s.svc.cluster.local", ss.Spec.ServiceName, namespace)
	var serverIPs []string
	for i := range replicas {
		ip := fmt.Sprintf("127.0.0.%d", serverIPBase+i)
		serverIPs = append(serverIPs, ip)
		k.hosts[fmt.Sprintf("%s-%d.%s", ss.Name, i, svcDomain)] = []string{ip}
		k.hosts[fmt.Sprintf("dns-%d.gslb-servers.example.net", i)] = []string{ip} // the ExternalDNS example's
	}
	k.hosts[svcDomain] = serverIPs
	// The client port's Service, and the ExternalDNS edge example's name
	// for it.
	k.hosts["hd-healthdns-clients."+namespace+".svc.cluster.local"] = serverIPs
	k.hosts["healthdns-clients.gslb-servers.example.net"] = serverIPs
	for _, s := range find[*corev1.Secret](objs) {
		k.secrets[s.Name] = s.Data
	}
	// The operator copies the chart's key into the application cluster as
	// the Secret the ExternalDNS example names.
	k.secrets["healthdns-gossip-key"] = k.secrets[named[*corev1.Secret](objs, "hd-healthdns-gossip-key").Name]

	east := startBackend(t, eastBackend)
	startBackend(t, westBackend)

	var servers []*pod
	for i, ip := range serverIPs {
		servers = append(servers, k.start(fmt.Sprintf("%s-%d", ss.Name, i), ip, ss.Spec.Template.Spec, ss.Spec.VolumeClaimTemplates))
	}
	agent := k.start(deps[0].Name+"-7d4f9c-x2x4z", agentIP, deps[0].Spec.Template.Spec, nil)
	ednsDeps := find[*appsv1.Deployment](edns)
	if len(ednsDeps) != 1 {
		t.Fatalf("ExternalDNS chart: %d Deployments", len(ednsDeps))
	}
	// Only the webhook sidecar: ExternalDNS itself needs a Kubernetes API
	// (test/externaldns runs its webhook client against the same code).
	ednsSpec := ednsDeps[0].Spec.Template.Spec
	ednsSpec.Containers = slices.DeleteFunc(slices.Clone(ednsSpec.Containers), func(c corev1.Container) bool { return c.Name != "webhook" })
	// The record below checks a backend on loopback, not its own address:
	// the owner allows that network, as an operator would its own.
	ednsSpec.Containers[0].Args = append(slices.Clone(ednsSpec.Containers[0].Args), "-check-networks=127.0.0.0/8")
	sidecar := k.start(ednsDeps[0].Name+"-5c9d8b-q7wn2", sidecarIP, ednsSpec, nil)

	pods := append(slices.Clone(servers), agent, sidecar)
	for _, p := range pods {
		p.waitReady(60 * time.Second)
	}

	// The DNS Service, port by port: its targetPort is the servers'
	// container port that the Corefile listens on.
	dnsSvc := named[*corev1.Service](objs, "hd-healthdns-dns")
	if dnsSvc == nil {
		t.Fatal("no DNS Service")
	}
	for _, sp := range dnsSvc.Spec.Ports {
		network := strings.ToLower(string(sp.Protocol))
		for _, s := range servers {
			addr := net.JoinHostPort(s.ip, strconv.Itoa(s.containerPort("healthdns", sp.TargetPort.StrVal)))
			m := query(t, network, addr, "gslb.example.com.", dns.TypeSOA)
			if !m.Authoritative || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
				t.Fatalf("Service port %d/%s -> %s: SOA %v", sp.Port, sp.Protocol, addr, m)
			}
			m = query(t, network, addr, "gslb.example.com.", dns.TypeNS)
			if len(m.Answer) != 2 || len(m.Extra) < 2 {
				t.Errorf("%s %s: NS with glue from the generated zone: %v", network, addr, m)
			}
			m = query(t, network, addr, "example.org.", dns.TypeA)
			if m.Rcode != dns.RcodeRefused {
				t.Errorf("%s %s: out of zone: %s, want REFUSED", network, addr, dns.RcodeToString[m.Rcode])
			}
		}
	}
	dnsAddrs := func() []string {
		var out []string
		for _, s := range servers {
			out = append(out, net.JoinHostPort(s.ip, strconv.Itoa(s.containerPort("healthdns", "dns-udp"))))
		}
		return out
	}
	waitAnswer(t, dnsAddrs(), "app.gslb.example.com.", "192.0.2.10", 20*time.Second)

	// Every server sees the five members: three servers, the site's agent
	// and the ExternalDNS sidecar, each under the name the pod gave it. In
	// edge mode the agent and the sidecar are no members but observers,
	// alive through the server each is connected to.
	statusURL := "http://" + servers[0].ip + ":8053/status"
	members := len(pods)
	if edge {
		members = len(servers)
	}
	if _, ok := testproc.Poll(30*time.Second, 200*time.Millisecond, func() bool {
		var doc statusDoc
		if getJSON(statusURL, &doc) != nil {
			return false
		}
		alive := 0
		for _, m := range doc.Members {
			if m.State == "alive" {
				alive++
			}
		}
		views := 0
		for _, v := range doc.Views {
			// Its location too: a member that joined through another
			// server is known here by gossip before its heartbeat says
			// where it is.
			if (v.Node == agent.name || v.Node == sidecar.name) && v.State == "alive" && v.Location != "" {
				views++
			}
		}
		return alive == members && views == 2
	}); !ok {
		var doc statusDoc
		err := getJSON(statusURL, &doc)
		t.Fatalf("members of %s: %+v, views %+v (%v), want %d members and the agent and sidecar alive", servers[0].name, doc.Members, doc.Views, err, members)
	}
	var doc statusDoc
	if err := getJSON(statusURL, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Node != servers[0].name || doc.Build == nil || doc.Build.CoreDNS == "" {
		t.Errorf("status of %s: node %q, build %+v", servers[0].name, doc.Node, doc.Build)
	}
	observers := map[string]string{}
	for _, v := range doc.Views {
		observers[v.Node] = v.Location
	}
	if observers[agent.name] != "probe-site" || observers[sidecar.name] != "eu-west-1" {
		t.Errorf("observers: %v, want %s=probe-site (the values) and %s=eu-west-1 (the ExternalDNS example)", observers, agent.name, sidecar.name)
	}
	if body, err := get("http://" + servers[0].ip + ":" + strconv.Itoa(servers[0].containerPort("healthdns", "metrics")) + "/metrics"); err != nil || !strings.Contains(body, "coredns_healthdns_build_info{") {
		t.Errorf("servers' metrics port (the ServiceMonitor's): %v", err)
	}

	// A cluster dies: every server stops answering it.
	east.Close()
	took := waitAnswer(t, dnsAddrs(), "app.gslb.example.com.", "198.51.100.10", 20*time.Second)
	t.Logf("east's backend closed: every server answered west after %v", took)

	// ExternalDNS writes a record through the sidecar's webhook (the
	// protocol it speaks; the URL is its default, localhost:8888 in the
	// pod): every server answers it.
	webhook := "http://" + sidecarIP + ":8888"
	req, _ := http.NewRequest("GET", webhook+"/", nil)
	req.Header.Set("Accept", "application/external.dns.webhook+json;version=1")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook negotiation: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	changes := `{"create":[{"dnsName":"web.gslb.example.com","targets":["192.0.2.77"],"recordType":"A","recordTTL":30,
		"providerSpecific":[{"name":"webhook/check","value":"tcp ` + westBackend + `"}]}]}`
	req, _ = http.NewRequest("POST", webhook+"/records", strings.NewReader(changes))
	req.Header.Set("Content-Type", "application/external.dns.webhook+json;version=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /records: %s %s", resp.Status, body)
	}
	took = waitAnswer(t, dnsAddrs(), "web.gslb.example.com.", "192.0.2.77", 20*time.Second)
	t.Logf("a record written through the ExternalDNS sidecar: every server answered it after %v", took)

	// A rolling update replaces one server at a time: it comes back with
	// the same name and volume, becomes ready and answers as the others.
	// SIGTERM: the server says it is not ready (the Service drops it) but
	// keeps answering for the lameduck time, so no query is lost.
	addr0 := dnsAddrs()[0]
	readyURL := fmt.Sprintf("http://%s:%d/ready", servers[0].ip, servers[0].containerPort("healthdns", "ready"))
	servers[0].stop(func() {
		if _, ok := testproc.Poll(3*time.Second, 50*time.Millisecond, func() bool { _, err := get(readyURL); return err != nil }); !ok {
			t.Errorf("%s still ready 3s after SIGTERM", servers[0].name)
		}
		if m := query(t, "udp", addr0, "gslb.example.com.", dns.TypeSOA); m.Rcode != dns.RcodeSuccess {
			t.Errorf("%s stopped answering before the end of its lameduck time: %v", servers[0].name, m)
		}
	})
	servers[0] = k.start(servers[0].name, servers[0].ip, ss.Spec.Template.Spec, ss.Spec.VolumeClaimTemplates)
	servers[0].waitReady(60 * time.Second)
	waitAnswer(t, dnsAddrs()[:1], "web.gslb.example.com.", "192.0.2.77", 20*time.Second)
	waitAnswer(t, dnsAddrs()[:1], "app.gslb.example.com.", "198.51.100.10", 20*time.Second)
	entries, err := os.ReadDir(servers[0].mounts["/var/lib/healthdns"])
	if err != nil || len(entries) == 0 {
		t.Errorf("the server's record store volume is empty after a restart: %v", err)
	}
}

// kubelet starts pods: the containers of a rendered pod spec as processes
// on one loopback address.
type kubelet struct {
	t       *testing.T
	bins    *testproc.Binaries
	root    string
	objs    []object
	hosts   map[string][]string          // what the cluster's DNS answers
	secrets map[string]map[string][]byte // Secrets by name
}

type pod struct {
	t      *testing.T
	name   string
	ip     string
	spec   corev1.PodSpec
	mounts map[string]string // mount path in the container -> directory here
	procs  []*testproc.Process
}

func (k *kubelet) start(name, ip string, spec corev1.PodSpec, claims []corev1.PersistentVolumeClaim) *pod {
	t := k.t
	t.Helper()
	dir := filepath.Join(k.root, name)
	p := &pod{t: t, name: name, ip: ip, spec: spec, mounts: map[string]string{}}
	volumes := slices.Clone(spec.Volumes)
	for _, c := range claims {
		volumes = append(volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name}}})
	}
	volDirs := map[string]string{}
	for _, v := range volumes {
		d := filepath.Join(dir, "volumes", v.Name)
		switch {
		case v.ConfigMap != nil:
			cm := named[*corev1.ConfigMap](k.objs, v.ConfigMap.Name)
			if cm == nil {
				t.Fatalf("pod %s: ConfigMap %s not rendered", name, v.ConfigMap.Name)
			}
			os.RemoveAll(d)
			mustMkdir(t, d)
			for key, val := range cm.Data {
				mustWrite(t, filepath.Join(d, key), []byte(val), 0o644)
			}
		case v.Secret != nil:
			data, ok := k.secrets[v.Secret.SecretName]
			if !ok {
				t.Fatalf("pod %s: no Secret %s", name, v.Secret.SecretName)
			}
			os.RemoveAll(d)
			mustMkdir(t, d)
			for key, val := range data {
				mustWrite(t, filepath.Join(d, key), val, 0o440)
			}
		case v.EmptyDir != nil:
			os.RemoveAll(d) // an emptyDir does not outlive its pod
			mustMkdir(t, d)
		case v.PersistentVolumeClaim != nil:
			mustMkdir(t, d) // a claim does
		default:
			t.Fatalf("pod %s: volume %s of a kind this test cannot provide", name, v.Name)
		}
		volDirs[v.Name] = d
	}
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			p.mounts[m.MountPath] = volDirs[m.Name]
		}
	}
	// The Corefile the server reads gets the same rewrites as arguments.
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		if f := filepath.Join(volDirs[v.Name], "Corefile"); fileExists(f) {
			b, _ := os.ReadFile(f)
			mustWrite(t, f, []byte(p.rewriteCorefile(string(b), k.hosts)), 0o644)
			t.Logf("pod %s: Corefile as run:\n%s", name, indent(p.rewriteCorefile(string(b), k.hosts)))
		}
	}
	for _, c := range spec.Containers {
		env := map[string]string{}
		var envList []string
		for _, e := range c.Env {
			val := e.Value
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				val = map[string]string{"metadata.name": name, "metadata.namespace": namespace, "status.podIP": ip}[e.ValueFrom.FieldRef.FieldPath]
				if val == "" {
					t.Fatalf("pod %s: fieldRef %s", name, e.ValueFrom.FieldRef.FieldPath)
				}
			} else if e.ValueFrom != nil {
				t.Fatalf("pod %s: env %s from a source this test cannot provide", name, e.Name)
			}
			val = expandVars(val, env)
			env[e.Name] = val
			envList = append(envList, e.Name+"="+val)
		}
		argv := slices.Clone(c.Command)
		if len(argv) == 0 {
			repo, _, _ := strings.Cut(c.Image, ":")
			ep, ok := entrypoints[repo]
			if !ok {
				t.Fatalf("pod %s: image %s has no known entrypoint", name, c.Image)
			}
			argv = []string{ep}
		}
		argv = append(argv, c.Args...)
		for i := range argv {
			argv[i] = p.rewrite(expandVars(argv[i], env), k.hosts, ",")
		}
		bin := map[string]string{"/usr/local/bin/healthdns": k.bins.Server, "/usr/local/bin/healthdns-agent": k.bins.Agent}[argv[0]]
		if bin == "" {
			t.Fatalf("pod %s: command %s is not one of the image's binaries", name, argv[0])
		}
		for _, a := range argv[1:] {
			if strings.HasPrefix(a, "-join=") {
				for _, j := range strings.Split(strings.TrimPrefix(a, "-join="), ",") {
					if h, _, _ := net.SplitHostPort(j); net.ParseIP(h) == nil {
						t.Fatalf("pod %s: -join %s: a name this test's DNS does not know", name, j)
					}
				}
			}
		}
		cmd := exec.Command(bin, argv[1:]...)
		cmd.Env = envList
		cmd.Dir = dir
		t.Logf("pod %s container %s: %s", name, c.Name, strings.Join(argv, " "))
		p.procs = append(p.procs, testproc.Start(t, name+"/"+c.Name, cmd))
	}
	return p
}

var listenAddr = regexp.MustCompile(`(^|[\s=,])(?:0\.0\.0\.0|127\.0\.0\.1|localhost|\[::\])?:(\d+)\b`)
var hostPort = regexp.MustCompile(`([A-Za-z0-9][A-Za-z0-9.-]*):(\d+)`)

// rewrite applies the pod's addresses, the cluster's DNS and the mounts
// to one argument or file; sep joins the addresses of a name with several.
func (p *pod) rewrite(s string, hosts map[string][]string, sep string) string {
	paths := slices.Collect(maps.Keys(p.mounts))
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, m := range paths {
		s = strings.ReplaceAll(s, m, p.mounts[m])
	}
	s = hostPort.ReplaceAllStringFunc(s, func(hp string) string {
		m := hostPort.FindStringSubmatch(hp)
		ips, ok := hosts[m[1]]
		if !ok {
			return hp
		}
		var out []string
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, m[2]))
		}
		return strings.Join(out, sep)
	})
	return listenAddr.ReplaceAllString(s, "${1}"+p.ip+":${2}")
}

// rewriteCorefile is rewrite for a Corefile, whose server blocks listen on
// every interface unless they say bind.
func (p *pod) rewriteCorefile(s string, hosts map[string][]string) string {
	s = p.rewrite(s, hosts, " ")
	return regexp.MustCompile(`(?m)^(\S+:\d+(?:\s+\S+:\d+)*\s*\{)\s*$`).ReplaceAllString(s, "${1}\n    bind "+p.ip)
}

// expandVars expands $(VAR) as the kubelet does: defined variables only,
// $$ for a literal $.
func expandVars(s string, env map[string]string) string {
	return regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

func (p *pod) containerPort(container, name string) int {
	for _, c := range p.spec.Containers {
		if c.Name != container {
			continue
		}
		for _, cp := range c.Ports {
			if cp.Name == name {
				return int(cp.ContainerPort)
			}
		}
	}
	p.t.Fatalf("pod %s: container %s has no port %s", p.name, container, name)
	return 0
}

// waitReady polls every container's readinessProbe as the kubelet does.
func (p *pod) waitReady(timeout time.Duration) {
	p.t.Helper()
	for i, c := range p.spec.Containers {
		for _, pr := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
			if pr == nil || pr.HTTPGet == nil {
				continue
			}
			port := pr.HTTPGet.Port.IntValue()
			if pr.HTTPGet.Port.StrVal != "" {
				port = p.containerPort(c.Name, pr.HTTPGet.Port.StrVal)
			}
			url := fmt.Sprintf("http://%s:%d%s", p.ip, port, pr.HTTPGet.Path)
			proc := p.procs[i]
			took, ok := testproc.Poll(timeout, 100*time.Millisecond, func() bool {
				if proc.Exited() {
					return true
				}
				_, err := get(url)
				return err == nil
			})
			if proc.Exited() {
				p.t.Fatalf("pod %s container %s exited (%v):\n%s", p.name, c.Name, proc.Err, proc.Out.String())
			}
			if !ok {
				p.t.Fatalf("pod %s container %s: %s not 200 after %v", p.name, c.Name, url, timeout)
			}
			p.t.Logf("pod %s container %s: %s ok after %v", p.name, c.Name, url, took.Round(time.Millisecond))
		}
	}
}

// stop ends the pod as the kubelet does: SIGTERM, then SIGKILL after the
// termination grace period. Each container must have exited by itself.
// whileStopping runs right after the SIGTERM.
func (p *pod) stop(whileStopping func()) {
	p.t.Helper()
	grace := 30 * time.Second
	if g := p.spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	start := time.Now()
	for _, proc := range p.procs {
		proc.Cmd.Process.Signal(syscall.SIGTERM)
	}
	if whileStopping != nil {
		whileStopping()
	}
	for i, proc := range p.procs {
		select {
		case <-proc.Done:
		case <-time.After(grace - time.Since(start)):
			proc.Cmd.Process.Kill()
			<-proc.Done
			p.t.Errorf("pod %s container %s: still running after the %v grace period", p.name, p.spec.Containers[i].Name, grace)
		}
	}
	p.t.Logf("pod %s stopped after %v (SIGTERM)", p.name, time.Since(start).Round(time.Millisecond))
}

func fileExists(f string) bool {
	_, err := os.Stat(f)
	return err == nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

type statusDoc struct {
	Node    string `json:"node"`
	Members []struct {
		Name, Observer, State string
	} `json:"members"`
	Views []struct {
		Node, Location, State string
	} `json:"views"`
	Build *struct{ Version, CoreDNS string } `json:"build"`
}

func get(url string) (string, error) {
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

func getJSON(url string, v any) error {
	b, err := get(url)
	if err != nil {
		return err
	}
	return json.NewDecoder(bytes.NewReader([]byte(b))).Decode(v)
}

func query(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	c := &dns.Client{Net: network, Timeout: time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, addr, name, err)
	}
	return r
}

// waitAnswer waits until every server answers name A with exactly want,
// over UDP and TCP.
func waitAnswer(t *testing.T, addrs []string, name, want string, timeout time.Duration) time.Duration {
	t.Helper()
	var last string
	took, ok := testproc.Poll(timeout, 100*time.Millisecond, func() bool {
		for _, addr := range addrs {
			for _, network := range []string{"udp", "tcp"} {
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				c := &dns.Client{Net: network, Timeout: time.Second}
				r, _, err := c.Exchange(m, addr)
				if err != nil {
					last = err.Error()
					return false
				}
				var got []string
				for _, rr := range r.Answer {
					if a, ok := rr.(*dns.A); ok {
						got = append(got, a.A.String())
					}
				}
				if !r.Authoritative || strings.Join(got, ",") != want {
					last = fmt.Sprintf("%s %s: %v", network, addr, got)
					return false
				}
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("%s: not every server answers %s after %v; last %s", name, want, timeout, last)
	}
	return took
}

// startBackend listens on addr until the test ends or Close.
func startBackend(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l
}

func mustMkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, f string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(f, b, mode); err != nil {
		t.Fatal(err)
	}
}
