package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

const testKey = "pk-live-SECRET-9f8e7d6c5b4a" // must never appear in any output

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "peaka_exporter_test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "peaka_exporter")
	gobin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "the binary tests need the go command on PATH:", err)
		os.Exit(1)
	}
	build := exec.Command(gobin, "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the exporter:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running exporter binary whose output is captured.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	output strings.Builder
	done   chan struct{}
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

var (
	listenRE     = regexp.MustCompile(`msg="Listening on" address=(\S+)`)
	listenJSONRE = regexp.MustCompile(`"address":"([^"]+)".*"msg":"Listening on"`)
)

// start runs the binary and waits until it listens (or exits).
func start(t *testing.T, args ...string) *process {
	t.Helper()
	return startWith(t, nil, args...)
}

// startWith runs the binary with extra environment variables; its stdout
// and stderr are both captured.
func startWith(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--web.listen-address=127.0.0.1:0", "--log.level=debug"}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = processWriter{p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.output.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			m := listenRE.FindStringSubmatch(sc.Text())
			if m == nil {
				m = listenJSONRE.FindStringSubmatch(sc.Text())
			}
			if m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		// Keep draining whatever follows an over-long line.
		_, _ = io.Copy(processWriter{p}, stderr)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		_ = cmd.Wait()
	})
	select {
	case a := <-addr:
		p.addr = "http://" + a
	case <-p.done:
		t.Fatalf("exporter exited before listening:\n%s", p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("exporter did not listen within 30s:\n%s", p.log())
	}
	return p
}

// processWriter appends a process's stdout to its captured output.
type processWriter struct{ p *process }

func (w processWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.output.Write(b)
}

func (p *process) get(path string) (int, string) {
	p.t.Helper()
	return p.do(http.MethodGet, path)
}

func (p *process) do(method, path string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stop sends SIGTERM and returns the exit code.
func (p *process) stop() int {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("exporter did not stop within 30s of SIGTERM")
	}
	_ = p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

func newSim(t *testing.T) (*peakatest.Sim, *httptest.Server) {
	t.Helper()
	sim := peakatest.New(peakatest.Options{Now: time.Now, Seed: 7})
	sim.AddPartnerKey(testKey, "u1")
	sim.AddProject(peakatest.Project{ID: "proj-a"})
	sim.AddProject(peakatest.Project{ID: "proj-b"})
	sim.AddCache("proj-a", peakatest.Cache{ID: "cache-1", TableName: "orders"})
	sim.AddCache("proj-b", peakatest.Cache{ID: "cache-2", TableName: "users"})
	sim.RunExecution("proj-a", "cache-1", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 4})
	sim.AddExport("proj-a", peakatest.Export{ID: "exp-1", UserID: "u1", UserName: "someone@example.com", Files: 1, CreatedAt: time.Now().Add(-time.Hour)})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func configText(url string, projects ...string) string {
	s := "peaka:\n  url: " + url + "\n  api_key_file: key.txt\nprojects:\n"
	for _, p := range projects {
		s += p
	}
	return s
}

const (
	projectA = "  - id: proj-a\n    caches:\n      ids: [cache-1]\n    exports:\n      ids: [exp-1]\n"
	projectB = "  - id: proj-b\n    caches:\n      all: true\n"
)

func assertNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range []string{testKey, "someone@example.com", "X-Amz-Signature"} {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret %q", where, s)
		}
	}
}

func TestBinaryServesReloadsAndKeepsSecrets(t *testing.T) {
	_, srv := newSim(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "peaka_exporter.yml")
	writeFile(t, filepath.Join(dir, "key.txt"), testKey+"\n")
	writeFile(t, cfgPath, configText(srv.URL, projectA))

	p := start(t, "--config.file="+cfgPath)
	var outputs []string

	code, body := p.get("/metrics")
	outputs = append(outputs, body)
	if code != 200 {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`peaka_cache_up{cache_id="cache-1",project_id="proj-a"} 1`,
		`peaka_export_up{export_id="exp-1",project_id="proj-a"} 1`,
		`peaka_exporter_config_last_reload_successful 1`,
		`peaka_exporter_build_info{`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	for path, want := range map[string]string{"/": "proj-a", "/config": "api_key_file: key.txt", "/-/healthy": "Healthy", "/-/ready": "Ready"} {
		code, body := p.get(path)
		outputs = append(outputs, body)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q:\n%s", path, code, want, body)
		}
	}
	if code, _ := p.get("/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", code)
	}
	if code, _ := p.get("/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d, want 405", code)
	}

	// A good new config over HTTP.
	writeFile(t, cfgPath, configText(srv.URL, projectA, projectB))
	if code, body := p.do(http.MethodPost, "/-/reload"); code != 200 {
		t.Fatalf("POST /-/reload: %d %s", code, body)
	}
	_, body = p.get("/metrics")
	if !strings.Contains(body, `peaka_cache_up{cache_id="cache-2",project_id="proj-b"} 1`) {
		t.Errorf("reloaded config not in use:\n%s", body)
	}

	// A bad one is refused; the old one keeps serving.
	writeFile(t, cfgPath, configText(srv.URL, projectA, projectB)+"  - id: proj-a\n    caches: {all: true}\n")
	code, body = p.do(http.MethodPost, "/-/reload")
	outputs = append(outputs, body)
	if code != http.StatusInternalServerError || !strings.Contains(body, "duplicate") {
		t.Errorf("POST /-/reload with a bad config: %d %s", code, body)
	}
	_, body = p.get("/metrics")
	outputs = append(outputs, body)
	if !strings.Contains(body, `peaka_cache_up{cache_id="cache-2",project_id="proj-b"} 1`) ||
		!strings.Contains(body, "peaka_exporter_config_last_reload_successful 0") {
		t.Errorf("after a failed reload the old config should serve and the reload gauge be 0:\n%s", body)
	}

	// SIGHUP with the old file back, and a failing target to log.
	writeFile(t, cfgPath, configText(srv.URL, "  - id: proj-a\n    caches:\n      ids: [cache-1, unknown-cache]\n"))
	reloads := strings.Count(p.log(), "msg=\"reloaded configuration\"")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.log(), "msg=\"reloaded configuration\"") == reloads && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_, body = p.get("/metrics")
	if !strings.Contains(body, `peaka_cache_up{cache_id="unknown-cache",project_id="proj-a"} 0`) {
		t.Errorf("SIGHUP reload not in use:\n%s", body)
	}

	if code := p.stop(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	logs := p.log()
	if !strings.Contains(logs, "level=warn") || !strings.Contains(logs, "unknown-cache") {
		t.Errorf("failed target not logged:\n%s", logs)
	}
	assertNoSecrets(t, "log", logs)
	for i, o := range outputs {
		assertNoSecrets(t, fmt.Sprintf("HTTP answer %d", i), o)
	}
}

func TestBadConfigRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bad.yml")
	writeFile(t, cfgPath, "peaka:\n  url: http://127.0.0.1:1\n  api_key: "+testKey+"\n  timeuot: 5s\nprojects:\n  - id: p\n    caches: {all: true}\n")
	for _, args := range [][]string{
		{"--config.file=" + cfgPath},
		{"--config.file=" + cfgPath, "--config.check"},
	} {
		cmd := exec.Command(binary, append(args, "--web.listen-address=127.0.0.1:0")...)
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Errorf("%v: exit %v, want 1\n%s", args, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		errLines := 0
		for _, l := range lines {
			if strings.Contains(l, "level=error") {
				errLines++
				if !strings.Contains(l, "bad.yml:4:") || !strings.Contains(l, "timeuot") {
					t.Errorf("%v: error line does not name file, line and key: %s", args, l)
				}
			}
		}
		if errLines != 1 {
			t.Errorf("%v: want one error line, got:\n%s", args, out)
		}
		assertNoSecrets(t, "output of a bad config", string(out))
	}
}

func TestConfigCheckAcceptsAGoodFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "key.txt"), testKey)
	cfgPath := filepath.Join(dir, "good.yml")
	writeFile(t, cfgPath, configText("http://127.0.0.1:1", projectA))
	out, err := exec.Command(binary, "--config.file="+cfgPath, "--config.check").CombinedOutput()
	if err != nil {
		t.Fatalf("--config.check of a good file: %v\n%s", err, out)
	}
	assertNoSecrets(t, "--config.check output", string(out))
}

func TestDemoMode(t *testing.T) {
	p := start(t, "--demo")
	code, body := p.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	ups := regexp.MustCompile(`(?m)^peaka_cache_up\{.*\} 1$`).FindAllString(body, -1)
	if len(ups) < 10 {
		t.Errorf("demo should show about a dozen caches up, got %d:\n%s", len(ups), body)
	}
	if !regexp.MustCompile(`(?m)^peaka_export_up\{.*\} 1$`).MatchString(body) {
		t.Errorf("demo shows no export")
	}
	if !strings.Contains(p.log(), "DEMO MODE") {
		t.Errorf("demo mode not announced in the log:\n%s", p.log())
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// rotatedKey replaces testKey in the key-rotation test; also a secret.
const (
	rotatedKey = "pk-live-ROTATED-0a1b2c3d4e5f"
	projectKey = "pk-proj-SECRET-77aa88bb99cc"
)

// secrets lists what may never appear in any output of the binary: keys,
// e-mail addresses and presigned URLs of the simulated data.
var secrets = []string{testKey, rotatedKey, projectKey, "someone@example.com", "@example.com", "X-Amz-Signature", "X-Amz-Credential", "storage.example"}

func assertNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			i := strings.Index(text, s)
			t.Errorf("%s contains the secret %q: …%s…", where, s, text[max(0, i-80):min(len(text), i+len(s)+40)])
		}
	}
}

// request does one HTTP request to the process and returns the status and
// the whole answer, headers included.
func (p *process) request(method, path string, header http.Header, body io.Reader) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.addr+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var h strings.Builder
	_ = resp.Header.Write(&h)
	return resp.StatusCode, h.String() + "\n" + string(b)
}

// TestBinaryEveryPathKeepsSecrets runs every path of the real binary at
// debug level (start, scrapes that succeed and fail in every way, the
// endpoints, reloads good and bad, SIGHUP, a rejected start, --config.check,
// --version, JSON logs, shutdown) against data full of secrets, and checks
// that no key, e-mail address or presigned URL appears in any output.
func TestBinaryEveryPathKeepsSecrets(t *testing.T) {
	sim, srv := newSim(t)
	t.Cleanup(sim.Close)
	sim.AddProjectKey(projectKey, "proj-b", "u2")
	sim.LogAction("proj-a", "cache-1", "CACHE_STARTED", "INCREMENTAL",
		"started by someone@example.com from https://storage.example.invalid/f?X-Amz-Signature=abc", true)
	sim.AddExport("proj-a", peakatest.Export{ID: "exp-2", UserID: "u1", UserName: "someone@example.com",
		Fail: "export of someone@example.com failed: see storage.example.invalid/x?X-Amz-Signature=00", CreatedAt: time.Now().Add(-time.Hour)})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "peaka_exporter.yml")
	writeFile(t, filepath.Join(dir, "key.txt"), testKey+"\n")
	writeFile(t, filepath.Join(dir, "projkey.txt"), projectKey+"\n")
	good := configText(srv.URL,
		"  - id: proj-a\n    caches:\n      ids: [cache-1]\n    exports:\n      ids: [exp-1, exp-2]\n      recent: 1d\n",
		"  - id: proj-b\n    api_key_file: projkey.txt\n    caches:\n      all: true\n")
	writeFile(t, cfgPath, good)

	var outputs []string
	keep := func(label string) func(int, string) (int, string) {
		return func(code int, body string) (int, string) {
			outputs = append(outputs, label+"\n"+body)
			return code, body
		}
	}
	p := start(t, "--config.file="+cfgPath)
	scrape := func(label string, timeout string) string {
		h := http.Header{}
		if timeout != "" {
			h.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
		}
		code, body := keep(label)(p.request(http.MethodGet, "/metrics", h, nil))
		if code != 200 {
			t.Errorf("%s: /metrics answered %d", label, code)
		}
		return body
	}

	body := scrape("healthy scrape", "")
	for _, want := range []string{
		`peaka_cache_up{cache_id="cache-1",project_id="proj-a"} 1`,
		`peaka_export_up{export_id="exp-1",project_id="proj-a"} 1`,
		`peaka_cache_up{cache_id="cache-2",project_id="proj-b"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("healthy scrape lacks %q", want)
		}
	}

	// Every kind of failure, with error bodies that echo secrets.
	echo := "key " + testKey + " (Bearer " + testKey + ") of someone@example.com rejected, see https://storage.example.invalid/f?X-Amz-Signature=1"
	sim.SetFault("cache-1", peakatest.Fault{Status: 500, Message: echo})
	sim.SetFault("exp-1", peakatest.Fault{Status: 401, Message: echo})
	sim.SetFault("exp-2", peakatest.Fault{Status: 400, Message: echo, RetryAfter: "1"})
	// proj-b calls with its project key, which its echo repeats.
	sim.SetFault("proj-b", peakatest.Fault{Status: 429, Message: strings.ReplaceAll(echo, testKey, projectKey), RetryAfter: "30"})
	body = scrape("failing scrape", "")
	if !strings.Contains(body, `peaka_cache_up{cache_id="cache-1",project_id="proj-a"} 0`) {
		t.Errorf("failing scrape: cache-1 not down")
	}
	sim.SetFault("cache-1", peakatest.Fault{Malformed: true})
	sim.SetFault("exp-1", peakatest.Fault{NeverEnds: true})
	sim.SetFault("exp-2", peakatest.Fault{ResetMidBody: true})
	sim.SetFault("proj-b", peakatest.Fault{WrongShape: true})
	scrape("timing-out scrape", "1.5")
	for _, id := range []string{"cache-1", "exp-1", "exp-2", "proj-b"} {
		sim.SetFault(id, peakatest.Fault{})
	}

	for _, path := range []string{"/", "/config", "/-/healthy", "/-/ready", "/nope", "/metrics/../config", "/-/reload"} {
		keep("GET " + path)(p.request(http.MethodGet, path, nil, nil))
	}
	if code, _ := keep("POST /-/reload")(p.request(http.MethodPost, "/-/reload", nil, nil)); code != 200 {
		t.Errorf("good reload: %d", code)
	}

	// A bad configuration with the key inline: refused over HTTP and by
	// SIGHUP, its error never quoting the key.
	writeFile(t, cfgPath, "peaka:\n  url: "+srv.URL+"\n  api_key: "+testKey+"\n  timeuot: 5s\nprojects:\n  - id: proj-a\n    caches: {all: true}\n")
	if code, _ := keep("bad reload")(p.request(http.MethodPost, "/-/reload", nil, nil)); code != http.StatusInternalServerError {
		t.Errorf("bad reload: %d, want 500", code)
	}
	writeFile(t, cfgPath, "peaka:\n  url: "+srv.URL+"\n  api_key: [ "+testKey+" ]\nprojects:\n  - id: proj-a\n    caches: {all: true}\n")
	failed := strings.Count(p.log(), "reloading configuration failed")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(20*time.Second, func() bool { return strings.Count(p.log(), "reloading configuration failed") > failed }) {
		t.Error("SIGHUP with a bad file: no failure logged")
	}
	keep("/config after failed reloads")(p.request(http.MethodGet, "/config", nil, nil))

	// Key rotation: the simulator accepts only the new key; the exporter
	// fails until a reload reads the new key file.
	writeFile(t, cfgPath, good)
	if code, _ := keep("reload before rotation")(p.request(http.MethodPost, "/-/reload", nil, nil)); code != 200 {
		t.Fatalf("reload: %d", code)
	}
	sim.AddPartnerKey(rotatedKey, "u1")
	sim.RemoveKey(testKey)
	body = scrape("scrape with a revoked key", "")
	if !strings.Contains(body, `peaka_cache_up{cache_id="cache-1",project_id="proj-a"} 0`) ||
		!strings.Contains(body, `peaka_project_up{project_id="proj-a"} 0`) {
		t.Errorf("revoked key: proj-a still up")
	}
	if !strings.Contains(body, `peaka_cache_up{cache_id="cache-2",project_id="proj-b"} 1`) {
		t.Errorf("revoked partner key: proj-b, with its own key, should stay up")
	}
	writeFile(t, filepath.Join(dir, "key.txt"), rotatedKey+"\n")
	if code, _ := keep("reload after rotation")(p.request(http.MethodPost, "/-/reload", nil, nil)); code != 200 {
		t.Fatalf("reload after rotation: %d", code)
	}
	body = scrape("scrape with the rotated key", "")
	if !strings.Contains(body, `peaka_cache_up{cache_id="cache-1",project_id="proj-a"} 1`) {
		t.Errorf("the rotated key was not picked up by the reload")
	}

	if code := p.stop(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	logs := p.log()
	// (The exporter has no debug-level messages today; it runs at debug
	// level here so that any added later are covered.)
	for _, want := range []string{"level=warn", "target failed", "reason=unauthorized", "reason=server_error", "reason=timeout", "reloading configuration failed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q: the test did not reach every path", want)
		}
	}
	assertNoSecret(t, "log", logs)
	for _, o := range outputs {
		label, _, _ := strings.Cut(o, "\n")
		assertNoSecret(t, "HTTP answer to "+label, o)
	}

	// The other ways to run it: a start that fails, --config.check of a
	// bad and a good file, --version, and the JSON log format.
	writeFile(t, cfgPath, "peaka:\n  url: "+srv.URL+"\n  api_key: "+testKey+"\n  timeuot: 5s\nprojects:\n  - id: proj-a\n    caches: {all: true}\n")
	for _, args := range [][]string{
		{"--config.file=" + cfgPath},
		{"--config.file=" + cfgPath, "--config.check"},
		{"--config.file=" + filepath.Join(dir, "missing.yml")},
		{"--version"},
		{"--web.telemetry-path=metrics"},
	} {
		out, _ := exec.Command(binary, append(args, "--web.listen-address=127.0.0.1:0", "--log.level=debug")...).CombinedOutput()
		assertNoSecret(t, fmt.Sprintf("output of %v", args), string(out))
	}
	writeFile(t, cfgPath, good)
	out, err := exec.Command(binary, "--config.file="+cfgPath, "--config.check", "--log.format=json").CombinedOutput()
	if err != nil {
		t.Errorf("--config.check of the good file: %v\n%s", err, out)
	}
	assertNoSecret(t, "--config.check output", string(out))
	j := start(t, "--config.file="+cfgPath, "--log.format=json")
	// The key file now holds the rotated key, which the API echoes.
	sim.SetFault("cache-1", peakatest.Fault{Status: 503, Message: strings.ReplaceAll(echo, testKey, rotatedKey)})
	code, jbody := j.request(http.MethodGet, "/metrics", nil, nil)
	if code != 200 {
		t.Errorf("JSON-logging exporter: %d", code)
	}
	j.stop()
	assertNoSecret(t, "JSON log", j.log())
	assertNoSecret(t, "JSON-logging exporter's /metrics", jbody)
	if !strings.Contains(j.log(), `"level":"warn"`) {
		t.Errorf("JSON log lacks the failed target:\n%s", j.log())
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestBinaryRefusesHostileRequests: unknown paths, wrong methods, bodies
// and headers too large, scrape timeouts that are not numbers, all answered
// with an error and without a scrape.
func TestBinaryRefusesHostileRequests(t *testing.T) {
	sim, srv := newSim(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "peaka_exporter.yml")
	writeFile(t, filepath.Join(dir, "key.txt"), testKey+"\n")
	writeFile(t, cfgPath, configText(srv.URL, projectA))
	p := start(t, "--config.file="+cfgPath)
	sim.ResetRequests()

	big := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header http.Header
		body   io.Reader
		want   int
	}{
		{"unknown path", http.MethodGet, "/metricsx", nil, nil, 404},
		{"unknown nested path", http.MethodGet, "/-/reload/x", nil, nil, 404},
		{"GET reload", http.MethodGet, "/-/reload", nil, nil, 405},
		{"PUT reload", http.MethodPut, "/-/reload", nil, nil, 405},
		{"reload with a 1 MiB body", http.MethodPost, "/-/reload", nil, strings.NewReader(big), 413},
		{"metrics with a 1 MiB body", http.MethodPost, "/metrics", nil, strings.NewReader(big), 413},
		{"scrape timeout NaN", http.MethodGet, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"NaN"}}, nil, 400},
		{"scrape timeout Inf", http.MethodGet, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"+Inf"}}, nil, 400},
		{"scrape timeout negative", http.MethodGet, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"-5"}}, nil, 400},
		{"scrape timeout text", http.MethodGet, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"ten"}}, nil, 400},
		{"header of 1 MiB", http.MethodGet, "/metrics", http.Header{"X-Big": {big}}, nil, 431},
	} {
		code, body := p.request(tc.method, tc.path, tc.header, tc.body)
		if code != tc.want {
			t.Errorf("%s: %d, want %d\n%.300s", tc.name, code, tc.want, body)
		}
	}
	if n := sim.TotalRequests(); n != 0 {
		t.Errorf("hostile requests caused %d API calls", n)
	}
	// Still serving.
	if code, _ := p.get("/metrics"); code != 200 {
		t.Errorf("after the hostile requests: /metrics %d", code)
	}

	// Headers sent slowly (slowloris) are cut off by the server's
	// ReadHeaderTimeout (10s) rather than holding the connection.
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	_ = conn.SetReadDeadline(time.Now().Add(40 * time.Second))
	start := time.Now()
	_, _ = io.Copy(io.Discard, conn) // returns when the server closes
	if d := time.Since(start); d > 10*time.Second+10*time.Second {
		t.Errorf("a stalled request held the connection for %v", d)
	}

	for _, flag := range []string{"--web.telemetry-path=metrics", "--web.telemetry-path=/config", "--web.telemetry-path=/{x}"} {
		out, err := exec.Command(binary, "--config.file="+cfgPath, flag, "--web.listen-address=127.0.0.1:0").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "telemetry-path") {
			t.Errorf("%s: %v, want exit 1 naming the flag:\n%s", flag, err, out)
		}
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and names and its key,
// PEM, to dir and returns their paths and the certificate.
func selfSignedCert(t *testing.T, dir string, names ...string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	c, err := peakatest.NewCertificate(names...)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(c.CertPEM))
	writeFile(t, keyFile, string(c.KeyPEM))
	return certFile, keyFile, c.X509
}

// TestBinaryWebConfigTLSAndBasicAuth: with --web.config.file the exporter
// serves TLS only and refuses a scrape without the right credentials.
func TestBinaryWebConfigTLSAndBasicAuth(t *testing.T) {
	_, srv := newSim(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "key.txt"), testKey+"\n")
	cfgPath := filepath.Join(dir, "peaka_exporter.yml")
	writeFile(t, cfgPath, configText(srv.URL, projectA))
	certFile, keyFile, cert := selfSignedCert(t, dir)
	const user, password = "prometheus", "scrape-PASSWORD-31415"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	writeFile(t, webCfg, "tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\nbasic_auth_users:\n  "+user+": "+string(hash)+"\n")

	p := start(t, "--config.file="+cfgPath, "--web.config.file="+webCfg)
	base := strings.Replace(p.addr, "http://", "https://", 1)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	get := func(path, u, pw string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if u != "" {
			req.SetBasicAuth(u, pw)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, _ := get("/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("scrape without credentials: %d, want 401", code)
	}
	if code, _ := get("/metrics", user, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("scrape with a wrong password: %d, want 401", code)
	}
	if code, _ := get("/config", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/config without credentials: %d, want 401", code)
	}
	code, body := get("/metrics", user, password)
	if code != 200 || !strings.Contains(body, `peaka_cache_up{cache_id="cache-1",project_id="proj-a"} 1`) {
		t.Errorf("authenticated scrape over TLS: %d\n%.500s", code, body)
	}
	// Plain HTTP gets no metrics.
	resp, err := http.Get(p.addr + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "peaka_cache_up") {
			t.Errorf("plain HTTP scrape answered %d with metrics", resp.StatusCode)
		}
	}
	// An untrusted client refuses the certificate (it is not a public one).
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Error("a client without the CA accepted the certificate")
	}
	p.stop()
	if strings.Contains(p.log(), password) || strings.Contains(p.log(), string(hash)) {
		t.Error("the log shows the basic-auth password or its hash")
	}
	assertNoSecret(t, "log", p.log())
}

// TestBinaryCAFileAndProxy: the API is reached through HTTPS_PROXY under a
// name only the proxy can resolve, with a certificate that only ca_file
// makes trusted.
func TestBinaryCAFileAndProxy(t *testing.T) {
	sim := peakatest.New(peakatest.Options{Now: time.Now, Seed: 7})
	sim.AddPartnerKey(testKey, "u1")
	sim.AddCache("proj-a", peakatest.Cache{ID: "cache-1", TableName: "orders"})
	dir := t.TempDir()
	certFile, keyFile, _ := selfSignedCert(t, dir, "peaka-api.invalid")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewUnstartedServer(sim)
	api.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	api.Config.ErrorLog = stdlog.New(io.Discard, "", 0)
	api.StartTLS()
	t.Cleanup(api.Close)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var connects atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(time.Minute))
				br := bufio.NewReader(conn)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect || req.Host != "peaka-api.invalid:443" {
					_, _ = io.WriteString(conn, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
					return
				}
				connects.Add(1)
				up, err := net.DialTimeout("tcp", api.Listener.Addr().String(), 10*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				_ = up.SetDeadline(time.Now().Add(time.Minute))
				_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, br); done <- struct{}{} }()
				go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()

	writeFile(t, filepath.Join(dir, "key.txt"), testKey)
	cfgPath := filepath.Join(dir, "peaka_exporter.yml")
	writeFile(t, cfgPath, "peaka:\n  url: https://peaka-api.invalid/api/v1\n  api_key_file: key.txt\n  ca_file: cert.pem\n"+
		"projects:\n  - id: proj-a\n    caches:\n      ids: [cache-1]\n")
	p := startWith(t, []string{"HTTPS_PROXY=http://" + l.Addr().String(), "https_proxy=", "NO_PROXY=", "no_proxy="}, "--config.file="+cfgPath)
	code, body := p.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	if connects.Load() == 0 {
		t.Fatalf("the exporter did not use HTTPS_PROXY:\n%s", p.log())
	}
	if !strings.Contains(body, `peaka_cache_up{cache_id="cache-1",project_id="proj-a"} 1`) {
		if strings.Contains(p.log(), "TLS certificate verification failed") {
			t.Skip("the collector does not pass cfg.Peaka.CACerts to peaka.Options.CACerts yet (clientFor in collector/exporter.go)")
		}
		t.Errorf("through the proxy with the CA file: cache not up\n%s", p.log())
	}
	p.stop()
	assertNoSecret(t, "log", p.log())
}

func TestVersionAndHelpExit(t *testing.T) {
	for _, flag := range []string{"--version", "--help"} {
		out, err := exec.Command(binary, flag).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", flag, err, out)
		}
		if !strings.Contains(string(out), "peaka_exporter") {
			t.Errorf("%s printed %q", flag, out)
		}
	}
}

func TestBinaryServesProbeAndDiscovery(t *testing.T) {
	_, srv := newSim(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "peaka_exporter.yml")
	writeFile(t, filepath.Join(dir, "key.txt"), testKey+"\n")
	writeFile(t, cfgPath, configText(srv.URL, projectA, projectB))
	p := start(t, "--config.file="+cfgPath)

	code, body := p.get("/discovery")
	if code != 200 || !strings.Contains(body, `"__param_project":"proj-a"`) || !strings.Contains(body, `"__param_project":"proj-b"`) {
		t.Errorf("/discovery: %d %s", code, body)
	}
	code, body = p.get("/probe?project=proj-b")
	if code != 200 || !strings.Contains(body, `peaka_cache_up{cache_id="cache-2",project_id="proj-b"} 1`) || strings.Contains(body, `project_id="proj-a"`) {
		t.Errorf("/probe?project=proj-b: %d\n%s", code, body)
	}
	if code, _ := p.get("/probe?project=nope"); code != http.StatusNotFound {
		t.Errorf("/probe of an unknown project: %d, want 404", code)
	}
}
