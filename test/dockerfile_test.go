package test

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// There is no Docker engine here, so the Dockerfile is checked the way a
// build would fail: the context that .dockerignore leaves is assembled
// from the repository's files, every COPY source must be in it, the build
// stages' RUN commands are run here in it (with /out, the stages' output
// directory, moved to a temporary directory: the only rewrite), and every
// file a later stage copies --from them must then exist. What it cannot
// check: that the base images exist and that the result starts.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "../Dockerfile")
	ctx := buildContext(t, "..")
	out := t.TempDir()

	byName := map[string]*dockerStage{}
	var final *dockerStage
	for _, s := range stages {
		byName[s.name] = s
		final = s
	}
	built := map[string]bool{} // stages whose RUNs ran
	var run func(s *dockerStage)
	run = func(s *dockerStage) {
		if built[s.name] {
			return
		}
		built[s.name] = true
		env := map[string]string{"TARGETOS": "linux", "TARGETARCH": "amd64", "BUILDPLATFORM": "linux/amd64"}
		if parent := byName[s.base]; parent != nil {
			run(parent)
			for k, v := range parent.env {
				env[k] = v
			}
		}
		for _, in := range s.steps {
			switch in.op {
			case "ARG", "ENV":
				for _, kv := range in.args {
					k, v, _ := strings.Cut(kv, "=")
					env[k] = os.Expand(strings.Trim(v, `"`), func(n string) string { return env[n] })
				}
			case "COPY":
				if in.from == "" {
					for _, src := range in.args[:len(in.args)-1] {
						if _, err := os.Stat(filepath.Join(ctx, src)); err != nil {
							t.Errorf("stage %s: COPY %s: not in the build context (.dockerignore?)", s.name, src)
						}
					}
				}
			case "RUN":
				cmd := exec.Command("sh", "-c", strings.ReplaceAll(strings.Join(in.args, " "), "/out", out))
				cmd.Dir = ctx
				cmd.Env = os.Environ()
				for k, v := range env {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("stage %s: RUN %s: %v\n%s", s.name, strings.Join(in.args, " "), err, b)
				}
			}
		}
		s.env = env
	}

	for _, s := range stages {
		for _, in := range s.steps {
			if in.op != "COPY" || in.from == "" {
				continue
			}
			src := byName[in.from]
			if src == nil {
				t.Errorf("stage %s: COPY --from=%s: no such stage", s.name, in.from)
				continue
			}
			run(src)
			for _, p := range in.args[:len(in.args)-1] {
				if !strings.HasPrefix(p, "/out") {
					t.Errorf("stage %s: COPY --from=%s %s: not under /out, which this test maps", s.name, in.from, p)
					continue
				}
				if _, err := os.Stat(filepath.Join(out, strings.TrimPrefix(p, "/out"))); err != nil {
					t.Errorf("stage %s: COPY --from=%s %s: stage did not produce it", s.name, in.from, p)
				}
			}
		}
	}

	// The release image (entrypoint healthdns) and the agent image (for the
	// ExternalDNS chart's sidecar, which sets args but not a command): both
	// binaries where the entrypoints, the compose file and the Helm chart
	// expect them, no test backend, not root.
	images := map[*dockerStage]string{final: "/usr/local/bin/healthdns", byName["agent"]: "/usr/local/bin/healthdns-agent"}
	for img, entrypoint := range images {
		if img == nil {
			t.Errorf("no stage named agent")
			continue
		}
		var copied []string
		for _, in := range img.steps {
			if in.op == "COPY" && in.from != "" {
				dst := in.args[len(in.args)-1]
				for _, p := range in.args[:len(in.args)-1] {
					copied = append(copied, path.Join(dst, path.Base(p)))
				}
			}
		}
		for _, want := range []string{"/usr/local/bin/healthdns", "/usr/local/bin/healthdns-agent"} {
			if !slices.Contains(copied, want) {
				t.Errorf("image %s has no %s (it has %v)", img.name, want, copied)
			}
		}
		for _, c := range copied {
			if strings.Contains(c, "backend") {
				t.Errorf("image %s contains the test backend: %s", img.name, c)
			}
		}
		if e := img.last("ENTRYPOINT"); e == nil || strings.Trim(e.args[0], `[]",`) != entrypoint {
			t.Errorf("image %s: ENTRYPOINT %v, want %s", img.name, e, entrypoint)
		}
		if u := img.last("USER"); u == nil || strings.HasPrefix(u.args[0], "0") || strings.HasPrefix(u.args[0], "root") {
			t.Errorf("image %s runs as %v, want a non-root USER", img.name, u)
		}
		if !strings.Contains(img.base, "nonroot") {
			t.Errorf("image %s is based on %s, want a distroless nonroot image", img.name, img.base)
		}
	}
	for _, b := range []string{"healthdns", "healthdns-agent"} {
		if _, err := os.Stat(filepath.Join(out, b)); err != nil {
			t.Errorf("the build stage made no %s", b)
		}
	}
}

type dockerStep struct {
	op   string
	from string // COPY --from
	args []string
}

type dockerStage struct {
	name, base string
	steps      []dockerStep
	env        map[string]string
}

func (s *dockerStage) last(op string) *dockerStep {
	for i := len(s.steps) - 1; i >= 0; i-- {
		if s.steps[i].op == op {
			return &s.steps[i]
		}
	}
	return nil
}

// parseDockerfile reads the instructions of each stage, joining
// continued lines; unnamed stages are named by their index.
func parseDockerfile(t *testing.T, name string) []*dockerStage {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var stages []*dockerStage
	var logical []string
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		logical = append(logical, cur+trimmed)
		cur = ""
	}
	for _, l := range logical {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		op, args := strings.ToUpper(f[0]), f[1:]
		if op == "FROM" {
			var opts []string
			for len(args) > 0 && strings.HasPrefix(args[0], "--") {
				opts, args = append(opts, args[0]), args[1:]
			}
			s := &dockerStage{name: strings.Repeat("_", len(stages)+1), base: args[0]}
			if len(args) == 3 && strings.EqualFold(args[1], "AS") {
				s.name = args[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			continue // global ARGs before the first FROM
		}
		st := dockerStep{op: op}
		for _, a := range args {
			switch {
			case op == "COPY" && strings.HasPrefix(a, "--from="):
				st.from = strings.TrimPrefix(a, "--from=")
			case op == "COPY" && strings.HasPrefix(a, "--"):
			default:
				st.args = append(st.args, a)
			}
		}
		s := stages[len(stages)-1]
		s.steps = append(s.steps, st)
	}
	if len(stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return stages
}

// buildContext copies the files a fresh clone has, less what
// .dockerignore excludes, into a temporary directory.
func buildContext(t *testing.T, repo string) string {
	t.Helper()
	ls := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard")
	ls.Dir = repo
	b, err := ls.Output()
	if err != nil {
		t.Skipf("git ls-files: %v (the build context is the repository's files)", err)
	}
	ignore, err := os.ReadFile(filepath.Join(repo, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		re     *regexp.Regexp
		except bool
	}
	var rules []rule
	for _, l := range strings.Split(string(ignore), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r := rule{}
		if strings.HasPrefix(l, "!") {
			r.except, l = true, l[1:]
		}
		r.re = regexp.MustCompile("^" + globRegexp(strings.Trim(path.Clean(l), "/")) + "$")
		rules = append(rules, r)
	}
	// Docker's rule: a path is excluded by the last pattern that matches it
	// or one of its parent directories.
	excluded := func(p string) bool {
		ex := false
		for _, r := range rules {
			for q := p; q != "." && q != "/"; q = path.Dir(q) {
				if r.re.MatchString(q) {
					ex = !r.except
					break
				}
			}
		}
		return ex
	}
	dir := t.TempDir()
	n := 0
	for _, f := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f == "" || excluded(f) {
			continue
		}
		src := filepath.Join(repo, f)
		data, err := os.ReadFile(src)
		if err != nil {
			continue // deleted in the work tree
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for _, gone := range []string{"test/e2e_test.go", "test/externaldns/go.mod", "docs/alerts.yml", "deploy/compose/Corefile"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); err == nil {
			t.Errorf(".dockerignore lets %s into the build context", gone)
		}
	}
	t.Logf("build context: %d files", n)
	return dir
}

// globRegexp turns a .dockerignore pattern into a regular expression:
// ** any number of path elements, * and ? within one.
func globRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}
