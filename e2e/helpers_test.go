// Package e2e tests what deploy/ ships against the real thing: promtool and
// amtool on the Prometheus and Alertmanager files, the exporter binary's
// real output, the Kubernetes manifests, and a whole chain of simulated
// Peaka API → exporter → Prometheus → Alertmanager → webhook.
//
// The tests that need Debian's prometheus or prometheus-alertmanager
// packages skip when they are missing, except under CI=true, where a
// missing tool is a failure.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// versionPkg is where the exporter's version information is set at build
// time, as the Makefile and the Dockerfile do.
const versionPkg = "github.com/prometheus/common/version"

// Build information the test binary is built with, checked in
// peaka_exporter_build_info.
const (
	buildVersion  = "0.0.0-e2e"
	buildRevision = "e2e0000000000000000000000000000000000000"
	buildBranch   = "e2e-branch"
)

// repoRoot is the module root: tests run in their package's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found above the e2e package: %v", err)
	}
	return root
}

func deployPath(t testing.TB, parts ...string) string {
	return filepath.Join(append([]string{repoRoot(t), "deploy"}, parts...)...)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readYAML(t testing.TB, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// needTool returns the path of the first of names found on PATH. When none
// is, the test is skipped, or fails under CI=true: CI must run every check.
func needTool(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found on PATH (Debian: apt-get install %s)", strings.Join(names, " or "), pkg)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true requires it", msg)
	}
	t.Skip(msg + "; skipping")
	return ""
}

var (
	buildOnce   sync.Once
	builtBinary string
	buildErr    error
	buildDir    string
)

// exporterBinary builds the exporter once per test binary, with version
// information set the way the Makefile does, and with the race detector
// when the tests run with it.
func exporterBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is not on PATH: %w", err)
			return
		}
		buildDir, err = os.MkdirTemp("", "peaka_exporter_e2e")
		if err != nil {
			buildErr = err
			return
		}
		out := filepath.Join(buildDir, "peaka_exporter")
		var ldflags []string
		for _, kv := range [][2]string{
			{"Version", buildVersion}, {"Revision", buildRevision}, {"Branch", buildBranch},
			{"BuildUser", "e2e"}, {"BuildDate", "20260101-00:00:00"},
		} {
			ldflags = append(ldflags, "-X", versionPkg+"."+kv[0]+"="+kv[1])
		}
		args := []string{"build", "-o", out, "-ldflags", strings.Join(ldflags, " ")}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(gobin, append(args, ".")...)
		cmd.Dir = repoRoot(t)
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, b)
			return
		}
		builtBinary = out
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBinary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// process is a program the test runs, with its stderr and stdout kept for
// the failure message.
type process struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port it listens on

	mu     sync.Mutex
	output bytes.Buffer
	done   chan struct{}
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// listenRE matches the line the exporter, Prometheus and Alertmanager all
// log (through exporter-toolkit) with the address they actually bound.
var listenRE = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// startProcess runs a program that logs where it listens, and waits until
// it does (or exits, or 60s pass). The program is stopped at cleanup, and
// its output is logged when the test failed.
func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	setDeathSignal(cmd)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.output.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		<-p.done
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, tail(p.log(), 150))
		}
	})
	select {
	case a := <-addr:
		p.addr = a
	case <-exited:
		<-p.done
		t.Fatalf("%s exited before listening:\n%s", name, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not listen within 60s:\n%s", name, p.log())
	}
	return p
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("[... %d lines before]", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func httpGet(url string) (int, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// eventually polls check until it returns nil or the timeout passes, and
// then fails with the last error. Never a fixed sleep as an assertion.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
