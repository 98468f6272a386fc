package config_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/peakacom/peaka_exporter/config"
)

var writeSeeds = flag.Bool("fuzzseeds", false, "rewrite testdata/fuzz/FuzzParse from testdata/good and testdata/bad")

// envSecret is what $PEAKA_API_KEY holds in the fuzz target; it must never
// come out of Parse's errors or Marshal.
const envSecret = "env-SECRET-key-7f3a9c"

func fuzzEnv(name string) (string, bool) {
	if name == config.APIKeyEnv {
		return envSecret, true
	}
	return "", false
}

// FuzzParse feeds arbitrary bytes to the config decoder. It must not panic;
// an error is a *config.Error on one line without secrets; a config it
// accepts is complete and valid, and renders for /config without secrets.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inline, ok := scalarsUnder(data, "api_key")
		if !ok {
			t.Skip("names a file outside the test data")
		}
		// Key files are looked up in testdata/good, whose keys/ the good
		// seeds use.
		cfg, err := config.Parse(data, "fuzz.yml", fuzzEnv, "testdata/good")
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is a %T, want *config.Error", err, err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line: %q", msg)
			}
			if strings.Contains(msg, envSecret) {
				t.Fatalf("error carries the environment's key: %q", msg)
			}
			for _, k := range inline {
				if strings.Contains(msg, k) {
					t.Fatalf("error carries the inline key %q: %q", k, msg)
				}
			}
			return
		}

		p := cfg.Peaka
		if p.URL.URL == nil || p.URL.Host == "" {
			t.Fatalf("accepted without a URL host: %+v", p.URL)
		}
		if p.Timeout <= 0 || p.Timeout.D() > config.MaxTimeout {
			t.Fatalf("accepted timeout %v", p.Timeout)
		}
		if p.MaxConcurrency < 1 || p.MaxConcurrency > config.MaxConcurrencyLimit {
			t.Fatalf("accepted max_concurrency %d", p.MaxConcurrency)
		}
		if len(cfg.Projects) == 0 && cfg.Discover == nil {
			t.Fatal("accepted without projects")
		}
		ids := map[string]bool{}
		var keys []string
		for _, pr := range cfg.Projects {
			if strings.TrimSpace(pr.ID) == "" || ids[pr.ID] {
				t.Fatalf("accepted an empty or duplicate project id %q", pr.ID)
			}
			ids[pr.ID] = true
			k := pr.Key.Value()
			if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				t.Fatalf("project %q: accepted key %q", pr.ID, k)
			}
			keys = append(keys, k)
		}
		out, err := cfg.Marshal()
		if err != nil {
			t.Fatalf("Marshal of an accepted config: %v", err)
		}
		if !utf8.Valid(out) && utf8.Valid(data) {
			t.Fatalf("Marshal wrote invalid UTF-8")
		}
		for _, k := range append(keys, envSecret) {
			// A key that also appears as some other value of the file
			// may show up legitimately; a short one may be a coincidence.
			if len(k) >= 8 && bytes.Count(data, []byte(k)) <= 1 && bytes.Contains(out, []byte(k)) {
				t.Fatalf("/config shows a key %q:\n%s", k, out)
			}
		}
		// What /config shows reads back without a panic.
		_, _ = config.Parse(out, "marshalled.yml", fuzzEnv, "testdata/good")
	})
}

// scalarsUnder returns the values (of 8 bytes or more, appearing once in
// data) of mapping keys named key. ok is false when some value could make
// Parse read a file outside the test data (an absolute path, "..", a
// !!binary value); such inputs are skipped rather than risk reading
// /dev/zero.
func scalarsUnder(data []byte, key string) (vals []string, ok bool) {
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	ok = true
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		if n.Kind == yaml.ScalarNode {
			// A !!binary scalar decodes to other bytes than its text.
			v := n.Value
			if strings.HasPrefix(strings.TrimSpace(v), "/") || strings.Contains(v, "..") || n.ShortTag() == "!!binary" {
				ok = false
			}
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == key && v.Kind == yaml.ScalarNode && len(v.Value) >= 8 && bytes.Count(data, []byte(v.Value)) == 1 {
					vals = append(vals, v.Value)
				}
			}
		}
		walk(n.Alias)
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	// Bytes that yaml refuses to read might still reach a later document
	// that yaml reads differently; a raw check covers those.
	for _, s := range []string{"/dev", "/proc", "/sys", ".."} {
		if bytes.Contains(data, []byte(s)) {
			ok = false
		}
	}
	return vals, ok
}

// TestWriteFuzzSeeds writes the good and bad example files as the seed
// corpus of FuzzParse.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -fuzzseeds to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"good", "bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", sub, "*.yml"))
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			out := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
			seed := sub + "-" + strings.TrimSuffix(filepath.Base(name), ".yml")
			if err := os.WriteFile(filepath.Join(dir, seed), []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestConfigErrorsAreOneLineWithoutSecrets holds inputs whose error once
// spanned lines (a log line that breaks in two; found by FuzzParse) or
// quoted an inline key (yaml's "cannot decode !!str `…` as a !!int").
func TestConfigErrorsAreOneLineWithoutSecrets(t *testing.T) {
	const secret = "SECRET-inline-key-0123"
	var open []string
	for _, in := range []string{
		"0\n\n0\n0",          // a multi-line plain scalar where a mapping belongs
		"{0\r\r0}",           // a multi-line key
		"peaka: \"a\\nb\"\n", // a quoted string with a newline where a mapping belongs
		"peaka:\n  api_key: !!int " + secret + "\nprojects: [{id: p, caches: {all: true}}]\n",
		"projects: [{id: p, api_key: !!float \"" + secret + "\\nx\", caches: {all: true}}]\n",
	} {
		_, err := config.Parse([]byte(in), "t.yml", nil, t.TempDir())
		if err == nil {
			t.Errorf("%q accepted", in)
			continue
		}
		if strings.ContainsAny(err.Error(), "\n\r") || strings.Contains(err.Error(), secret) {
			open = append(open, fmt.Sprintf("%q → %q", in, err))
		}
	}
	if len(open) > 0 {
		t.Errorf("errors span lines or quote the key:\n%s", strings.Join(open, "\n"))
	}
}
