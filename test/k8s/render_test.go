package k8s

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// object is one rendered manifest, decoded strictly into its API type.
type object struct {
	APIVersion, Kind, Name string
	Source                 string // helm's "# Source:" line
	Raw                    []byte
	Obj                    any
}

// apiTypes are the kinds the chart and the ExternalDNS example may render.
// A kind not listed fails the test: every object must be checked.
var apiTypes = map[string]func() any{
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"apps/v1/StatefulSet":                      func() any { return &appsv1.StatefulSet{} },
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"rbac.authorization.k8s.io/v1/ClusterRole": func() any { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
	"monitoring.coreos.com/v1/ServiceMonitor":         func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule":         func() any { return &monitoringv1.PrometheusRule{} },
}

// render runs helm template and decodes every object strictly: unknown or
// misspelt fields, duplicate keys and wrong types are errors, as the API
// server's strict field validation would make them.
func render(t *testing.T, chart, release string, args ...string) []object {
	t.Helper()
	out := runHelm(t, append([]string{"template", release, chart, "--namespace", "healthdns"}, args...)...)
	var objs []object
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(out, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if head.Kind == "" {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) != "" {
				t.Errorf("a rendered document has no kind:\n%s", doc)
			}
			continue
		}
		o := object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Raw: []byte(doc)}
		if m := regexp.MustCompile(`(?m)^# Source: (.*)$`).FindStringSubmatch(doc); m != nil {
			o.Source = m[1]
		}
		mk, ok := apiTypes[o.APIVersion+"/"+o.Kind]
		if !ok {
			t.Errorf("%s: %s/%s is not a kind this test knows", o.Source, o.APIVersion, o.Kind)
			continue
		}
		o.Obj = mk()
		if err := yaml.UnmarshalStrict(o.Raw, o.Obj); err != nil {
			t.Errorf("%s: %s %s does not decode strictly into its API type: %v", o.Source, o.Kind, o.Name, err)
			continue
		}
		objs = append(objs, o)
	}
	return objs
}

func find[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func named[T interface{ GetName() string }](objs []object, name string) T {
	var zero T
	for _, v := range find[T](objs) {
		if v.GetName() == name {
			return v
		}
	}
	return zero
}

// chartCases are the values the chart is linted and rendered with: its
// defaults, each example, the process test's, and every option turned on.
var chartCases = []struct {
	name string
	args []string
}{
	{"defaults", nil},
	{"examples/servers.yaml", []string{"-f", filepath.Join(examplesDir, "servers.yaml")}},
	{"examples/probe-site.yaml", []string{"-f", filepath.Join(examplesDir, "probe-site.yaml")}},
	{"testdata/process-values.yaml", []string{"-f", "testdata/process-values.yaml"}},
	{"examples/dnssec.yaml", []string{"-f", filepath.Join(examplesDir, "dnssec.yaml")}},
	{"everything on", []string{"--set", "agents.enabled=true,agents.observer=site-x,metrics.serviceMonitor.enabled=true," +
		"metrics.prometheusRule.enabled=true,cluster.edge.enabled=true,agents.witness=true," +
		"servers.persistence.enabled=false,servers.antiAffinity=hard,servers.replicas=5,servers.probe=false," +
		"cluster.stale=20s,cluster.syncTimeout=10s,corefile.log=false,healthdns.matrix=null"}},
	{"edge agents only", []string{"--set", "servers.enabled=false,agents.enabled=true,agents.observer=site-x," +
		"agents.mode=edge,agents.connect[0]=dns.example.net:7947,cluster.keySecret.existingSecret=shared-key"}},
}

func TestHelmLint(t *testing.T) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			runHelm(t, append([]string{"lint", "--strict", chartDir}, c.args...)...)
		})
	}
	for _, f := range externalDNSExamples {
		t.Run("ExternalDNS chart with examples/"+f, func(t *testing.T) {
			// Also validates the values against that chart's values.schema.json.
			runHelm(t, "lint", "--strict", externalDNSChart(t), "-f", filepath.Join(examplesDir, f))
		})
	}
}

// externalDNSExamples are the values for ExternalDNS's chart: the sidecar
// as a gossip member, and as an edge client.
var externalDNSExamples = []string{"external-dns-values.yaml", "external-dns-edge-values.yaml"}

func TestTemplateDecodesStrictly(t *testing.T) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			objs := render(t, chartDir, "hd", c.args...)
			if len(objs) == 0 {
				t.Fatal("nothing rendered")
			}
			checkObjects(t, objs, true)
		})
	}
	for _, f := range externalDNSExamples {
		t.Run("ExternalDNS chart with examples/"+f, func(t *testing.T) {
			objs := render(t, externalDNSChart(t), "edns", "-f", filepath.Join(examplesDir, f))
			checkObjects(t, objs, false)
			d := find[*appsv1.Deployment](objs)
			if len(d) != 1 {
				t.Fatalf("%d Deployments, want ExternalDNS's one", len(d))
			}
			var sidecar *corev1.Container
			for i, c := range d[0].Spec.Template.Spec.Containers {
				if c.Name == "webhook" {
					sidecar = &d[0].Spec.Template.Spec.Containers[i]
				}
			}
			if sidecar == nil || !strings.Contains(sidecar.Image, "healthdns-agent") {
				t.Fatalf("no healthdns-agent webhook sidecar: %+v", d[0].Spec.Template.Spec.Containers)
			}
			checkRestrictive(t, "ExternalDNS webhook sidecar", d[0].Spec.Template.Spec.SecurityContext, sidecar)
			edge := slices.ContainsFunc(sidecar.Args, func(a string) bool { return strings.HasPrefix(a, "-connect=") })
			gossips := slices.ContainsFunc(sidecar.Args, func(a string) bool { return strings.HasPrefix(a, "-join=") || strings.HasPrefix(a, "-bind=") })
			if want := strings.Contains(f, "edge"); edge != want || gossips == want {
				t.Errorf("sidecar args %q: want -connect %v, -bind/-join %v", sidecar.Args, want, !want)
			}
		})
	}
}

// checkObjects checks what the API server accepts but a running cluster
// would trip over: references between objects (volumes, Secrets,
// ConfigMaps, Service and PDB selectors, named ports, $(VAR)s), and for
// the chart's own workloads a restrictive security context and resources.
func checkObjects(t *testing.T, objs []object, ours bool) {
	t.Helper()
	configMaps, secrets, headless := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, cm := range find[*corev1.ConfigMap](objs) {
		configMaps[cm.Name] = true
	}
	for _, s := range find[*corev1.Secret](objs) {
		secrets[s.Name] = true
	}
	for _, s := range find[*corev1.Service](objs) {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless[s.Name] = s.Spec.PublishNotReadyAddresses
		}
	}
	type pod struct {
		what   string
		labels map[string]string
		spec   corev1.PodSpec
	}
	var pods []pod
	for _, s := range find[*appsv1.StatefulSet](objs) {
		what := "StatefulSet " + s.Name
		if !subset(s.Spec.Selector.MatchLabels, s.Spec.Template.Labels) {
			t.Errorf("%s: selector %v does not select its pods %v", what, s.Spec.Selector.MatchLabels, s.Spec.Template.Labels)
		}
		if ready, ok := headless[s.Spec.ServiceName]; !ok || !ready {
			t.Errorf("%s: serviceName %q is not a headless Service that publishes unready pods", what, s.Spec.ServiceName)
		}
		spec := s.Spec.Template.Spec
		for _, pvc := range s.Spec.VolumeClaimTemplates {
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: pvc.Name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}})
		}
		pods = append(pods, pod{what, s.Spec.Template.Labels, spec})
	}
	for _, d := range find[*appsv1.Deployment](objs) {
		what := "Deployment " + d.Name
		if !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: selector %v does not select its pods %v", what, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		pods = append(pods, pod{what, d.Spec.Template.Labels, d.Spec.Template.Spec})
	}

	for _, p := range pods {
		volumes := map[string]bool{}
		for _, v := range p.spec.Volumes {
			volumes[v.Name] = true
			if v.ConfigMap != nil && !configMaps[v.ConfigMap.Name] {
				t.Errorf("%s: volume %s: ConfigMap %s is not rendered", p.what, v.Name, v.ConfigMap.Name)
			}
			if v.Secret != nil && !secrets[v.Secret.SecretName] && !externalSecret(v.Secret.SecretName) {
				t.Errorf("%s: volume %s: Secret %s is neither rendered nor an existingSecret", p.what, v.Name, v.Secret.SecretName)
			}
			if v.Secret != nil && v.Secret.DefaultMode != nil && *v.Secret.DefaultMode&0o040 == 0 && p.spec.SecurityContext != nil && p.spec.SecurityContext.FSGroup != nil {
				t.Errorf("%s: volume %s: mode %o, but a non-root user reads it through fsGroup (group read needed)", p.what, v.Name, *v.Secret.DefaultMode)
			}
		}
		for _, c := range p.spec.Containers {
			what := p.what + " container " + c.Name
			if c.Image == "" || !strings.Contains(c.Image, ":") {
				t.Errorf("%s: image %q without a tag", what, c.Image)
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("%s: mounts %s, which is no volume of the pod", what, m.Name)
				}
			}
			ports := map[string]corev1.ContainerPort{}
			for _, cp := range c.Ports {
				ports[cp.Name] = cp
			}
			for kind, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
				if pr == nil || pr.HTTPGet == nil {
					continue
				}
				if pr.HTTPGet.Port.StrVal != "" {
					if _, ok := ports[pr.HTTPGet.Port.StrVal]; !ok {
						t.Errorf("%s: %s probe's port %q is not a container port", what, kind, pr.HTTPGet.Port.StrVal)
					}
				}
			}
			env := map[string]bool{}
			for _, e := range c.Env {
				env[e.Name] = true
				if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && !slices.Contains([]string{"metadata.name", "metadata.namespace", "status.podIP", "status.podIPs", "spec.nodeName", "status.hostIP"}, e.ValueFrom.FieldRef.FieldPath) {
					t.Errorf("%s: env %s: fieldRef %s is not a downward API field", what, e.Name, e.ValueFrom.FieldRef.FieldPath)
				}
			}
			// The kubelet leaves an undefined $(VAR) as it is, silently.
			for _, a := range append(slices.Clone(c.Command), c.Args...) {
				for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(a, -1) {
					if !env[m[1]] {
						t.Errorf("%s: argument %q uses $(%s), which is not in its env", what, a, m[1])
					}
				}
			}
			if ours || strings.Contains(c.Image, "healthdns") {
				checkRestrictive(t, what, p.spec.SecurityContext, &c)
				if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("%s: resources %v: want CPU and memory requests and a memory limit", what, c.Resources)
				}
			}
		}
		if ours && (p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken) {
			t.Errorf("%s: mounts a service account token it has no use for", p.what)
		}
	}

	for _, s := range find[*corev1.Service](objs) {
		what := "Service " + s.Name
		var selected []pod
		for _, p := range pods {
			if len(s.Spec.Selector) > 0 && subset(s.Spec.Selector, p.labels) {
				selected = append(selected, p)
			}
		}
		if len(selected) == 0 {
			t.Errorf("%s: selector %v selects no rendered pods", what, s.Spec.Selector)
			continue
		}
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.StrVal == "" {
				continue
			}
			for _, p := range selected {
				found := false
				for _, c := range p.spec.Containers {
					for _, cp := range c.Ports {
						found = found || (cp.Name == sp.TargetPort.StrVal && protocol(cp.Protocol) == protocol(sp.Protocol))
					}
				}
				if !found {
					t.Errorf("%s: port %s targets %s/%s, which %s has not", what, sp.Name, sp.TargetPort.StrVal, protocol(sp.Protocol), p.what)
				}
			}
		}
	}
	for _, b := range find[*policyv1.PodDisruptionBudget](objs) {
		n := 0
		for _, p := range pods {
			if subset(b.Spec.Selector.MatchLabels, p.labels) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("PodDisruptionBudget %s selects no rendered pods", b.Name)
		}
	}
	for _, sm := range find[*monitoringv1.ServiceMonitor](objs) {
		for _, ep := range sm.Spec.Endpoints {
			n := 0
			for _, s := range find[*corev1.Service](objs) {
				if subset(sm.Spec.Selector.MatchLabels, s.Labels) && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					n++
				}
			}
			if n == 0 {
				t.Errorf("ServiceMonitor %s: endpoint port %q is on no selected Service", sm.Name, ep.Port)
			}
		}
	}
}

// checkRestrictive: no root, no privilege escalation, no capabilities, a
// read-only root file system, the runtime's seccomp profile.
func checkRestrictive(t *testing.T, what string, pod *corev1.PodSecurityContext, c *corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", what)
		return
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot)
	seccomp := sc.SeccompProfile != nil || (pod != nil && pod.SeccompProfile != nil)
	if !nonRoot || !seccomp || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: security context not restrictive: pod %+v, container %+v", what, pod, sc)
	}
}

// externalSecret: Secrets the values say exist already.
func externalSecret(name string) bool {
	return slices.Contains([]string{"healthdns-gossip-key", "healthdns-dnssec", "shared-key"}, name)
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// corefileOf returns the rendered Corefile.
func corefileOf(t *testing.T, objs []object) string {
	t.Helper()
	for _, cm := range find[*corev1.ConfigMap](objs) {
		if c, ok := cm.Data["Corefile"]; ok {
			return c
		}
	}
	t.Fatal("no ConfigMap with a Corefile")
	return ""
}

// TestTemplateOptions: the values turn into the Corefile lines, objects
// and numbers they promise.
func TestTemplateOptions(t *testing.T) {
	def := render(t, chartDir, "hd")
	core := corefileOf(t, def)
	for _, want := range []string{
		"gslb.example.com:1053 {", "bufsize 1232", "health :8080 {", "lameduck 5s", "ready :8181", "prometheus :9153",
		"zonefile /etc/healthdns/config/gslb.example.com.zone", "data /var/lib/healthdns", "status 127.0.0.1:8053",
		"name {$POD_NAME}", "advertise [{$POD_IP}]:7946", "keyfile /etc/healthdns/keys/gossip.key", "label healthdns",
		"join hd-healthdns-0.hd-healthdns-gossip.healthdns.svc.cluster.local:7946 hd-healthdns-1.hd-healthdns-gossip.healthdns.svc.cluster.local:7946 hd-healthdns-2.hd-healthdns-gossip.healthdns.svc.cluster.local:7946\n",
	} {
		if !strings.Contains(core, want) {
			t.Errorf("default Corefile lacks %q:\n%s", want, core)
		}
	}
	// The voter count defaults to the release's servers.
	if !regexp.MustCompile(`(?m)^\s*servers 3$`).MatchString(core) {
		t.Errorf("default Corefile lacks servers 3 (servers.replicas):\n%s", core)
	}
	// Edge clients are off by default.
	for _, off := range []string{"clients "} {
		if regexp.MustCompile(`(?m)^\s*` + off).MatchString(core) {
			t.Errorf("default Corefile has %q, off by default:\n%s", off, core)
		}
	}
	if s := named[*corev1.Service](def, "hd-healthdns-clients"); s != nil {
		t.Error("the edge clients' Service is rendered by default")
	}
	dnsSvc := named[*corev1.Service](def, "hd-healthdns-dns")
	if dnsSvc == nil || dnsSvc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(dnsSvc.Spec.Ports) != 2 ||
		dnsSvc.Spec.Ports[0].Port != 53 || dnsSvc.Spec.Ports[0].Protocol != corev1.ProtocolUDP || dnsSvc.Spec.Ports[1].Protocol != corev1.ProtocolTCP {
		t.Errorf("DNS Service: want a LoadBalancer on 53 UDP and TCP, got %+v", dnsSvc)
	}
	if b := find[*policyv1.PodDisruptionBudget](def); len(b) != 1 || b[0].Spec.MinAvailable.IntValue() != 2 {
		t.Errorf("3 servers: want a PDB with minAvailable 2, got %+v", b)
	}
	sec := named[*corev1.Secret](def, "hd-healthdns-gossip-key")
	if sec == nil {
		t.Fatal("no generated gossip key Secret")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sec.Data["gossip.key"])))
	if err != nil || len(key) != 32 {
		t.Errorf("generated gossip key %q: want one base64 32-byte key (%v)", sec.Data["gossip.key"], err)
	}
	if sec.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("generated gossip key is deleted on uninstall")
	}

	all := render(t, chartDir, "hd", caseArgs(t, "everything on")...)
	core = corefileOf(t, all)
	for _, want := range []string{"servers 5\n", "clients 0.0.0.0:7947\n", "probe off\n", "stale 20s\n", "sync-timeout 10s\n", "matrix off\n"} {
		if !strings.Contains(core, want) {
			t.Errorf("Corefile with everything on lacks %q:\n%s", want, core)
		}
	}
	if strings.Contains(core, "\n    log\n") {
		t.Error("corefile.log=false still logs")
	}
	if s := named[*corev1.Service](all, "hd-healthdns-clients"); s == nil || s.Spec.Ports[0].Port != 7947 {
		t.Errorf("edge on: want the clients Service on 7947, got %+v", s)
	}
	if b := find[*policyv1.PodDisruptionBudget](all); len(b) != 1 || b[0].Spec.MinAvailable.IntValue() != 3 {
		t.Errorf("5 servers: want a PDB with minAvailable 3, got %+v", b)
	}
	if one := render(t, chartDir, "hd", "--set", "servers.replicas=1"); len(find[*policyv1.PodDisruptionBudget](one)) != 0 {
		t.Error("1 server: a PDB that no drain could ever satisfy")
	}
	edge := render(t, chartDir, "hd", caseArgs(t, "edge agents only")...)
	if d := find[*appsv1.Deployment](edge); len(d) != 1 || !slices.Contains(d[0].Spec.Template.Spec.Containers[0].Args, "-connect=dns.example.net:7947") ||
		slices.ContainsFunc(d[0].Spec.Template.Spec.Containers[0].Args, func(a string) bool { return strings.HasPrefix(a, "-join") }) {
		t.Errorf("edge agents: want -connect and no -join, got %+v", d)
	}

	// The PrometheusRule is docs/alerts.yml, which the chart carries a copy of.
	docs, err := os.ReadFile("../../docs/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	copyInChart, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, copyInChart) {
		t.Error("deploy/helm/healthdns/files/alerts.yml differs from docs/alerts.yml: cp docs/alerts.yml deploy/helm/healthdns/files/")
	}
	var want monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(docs, &want); err != nil {
		t.Fatalf("docs/alerts.yml: %v", err)
	}
	rules := find[*monitoringv1.PrometheusRule](all)
	if len(rules) != 1 {
		t.Fatalf("%d PrometheusRules", len(rules))
	}
	got, _ := yaml.Marshal(rules[0].Spec)
	wantYAML, _ := yaml.Marshal(want)
	if !bytes.Equal(got, wantYAML) || len(want.Groups) == 0 || len(want.Groups[0].Rules) < 5 {
		t.Errorf("PrometheusRule spec differs from docs/alerts.yml:\n%s\nwant:\n%s", got, wantYAML)
	}
}

func caseArgs(t *testing.T, name string) []string {
	for _, c := range chartCases {
		if c.name == name {
			return c.args
		}
	}
	t.Fatalf("no case %q", name)
	return nil
}

// TestTemplateErrors: values that cannot work stop helm with a reason.
func TestTemplateErrors(t *testing.T) {
	for _, c := range []struct {
		set, want string
	}{
		{"agents.enabled=true", "agents.observer"},
		{"servers.enabled=false,agents.enabled=true,agents.observer=x", "agents.join"},
		{"agents.enabled=true,agents.observer=x,agents.mode=edge", "agents.connect"},
		{"agents.enabled=true,agents.observer=x,agents.mode=mesh", `agents.mode "mesh"`},
		{"agents.enabled=true,agents.observer=x,agents.mode=edge,agents.connect[0]=d:7947,agents.witness=true", "agents.witness"},
		{"servers.antiAffinity=always", `servers.antiAffinity "always"`},
		{"zone.nameservers=null", "zone.nameservers"},
	} {
		t.Run(c.set, func(t *testing.T) {
			_, err := helmCmd(t, "template", "hd", chartDir, "--set", c.set)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("helm template --set %s: %v, want an error naming %s", c.set, err, c.want)
			}
		})
	}
}
