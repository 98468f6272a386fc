package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

var listenRE = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// start runs the binary and waits until it listens (or exits).
func start(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--web.listen-address=127.0.0.1:0", "--log.level=debug"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.output.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
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
