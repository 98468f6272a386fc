package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The keys below are distinctive so that a leak cannot hide behind a
// coincidental substring.
const (
	inlineGlobal  = "inline-GLOBAL-8f3a1c"
	inlineProject = "inline-PROJECT-27d9e4"
	fileGlobal    = "file-GLOBAL-b61f05"
	fileProject   = "file-PROJECT-c3e8a2"
	envSecret     = "env-SECRET-55aa91"
)

var allSecrets = []string{inlineGlobal, inlineProject, fileGlobal, fileProject, envSecret}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, k := range allSecrets {
		if strings.Contains(s, k) {
			t.Errorf("%s leaks key %q:\n%s", what, k, s)
		}
	}
}

// secretConfigs writes configs that take keys from every source, into a
// temporary directory so the key files exist only for this test.
func secretConfigs(t *testing.T) (dir string, files map[string]string) {
	dir = t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("global.key", "\n"+fileGlobal+"\n")
	write("project.key", fileProject)
	files = map[string]string{
		"inline.yml": `peaka:
  api_key: ` + inlineGlobal + `
projects:
  - id: a
    caches: {all: true}
  - id: b
    api_key: ` + inlineProject + `
    caches: {all: true}
`,
		"file.yml": `peaka:
  api_key_file: global.key
projects:
  - id: a
    caches: {all: true}
  - id: b
    api_key_file: project.key
    caches: {all: true}
`,
		"env.yml": `projects:
  - id: a
    caches: {all: true}
`,
	}
	return dir, files
}

func TestSecretsNeverShown(t *testing.T) {
	dir, files := secretConfigs(t)
	env := envWith(map[string]string{APIKeyEnv: envSecret})
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse([]byte(content), name, env, dir)
			if err != nil {
				t.Fatal(err)
			}
			// Guard against a vacuous pass: the keys must really be loaded.
			if cfg.Projects[0].Key.Value() == "" {
				t.Fatal("no key resolved")
			}

			out, err := cfg.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			assertNoSecret(t, "Marshal", string(out))
			if name == "inline.yml" && !strings.Contains(string(out), "api_key: <secret>") {
				t.Errorf("Marshal should show the inline key as <secret>:\n%s", out)
			}
			// Marshal output must still be YAML of the same shape.
			var back map[string]any
			if err := yaml.Unmarshal(out, &back); err != nil {
				t.Errorf("Marshal output is not YAML: %v\n%s", err, out)
			}

			for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s", "%d"} {
				assertNoSecret(t, format, fmt.Sprintf(format, cfg))
				assertNoSecret(t, format, fmt.Sprintf(format, *cfg))
				assertNoSecret(t, format, fmt.Sprintf(format, cfg.Peaka))
				assertNoSecret(t, format, fmt.Sprintf(format, cfg.Projects))
				assertNoSecret(t, format, fmt.Sprintf(format, cfg.Projects[0].Key))
			}
			js, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			assertNoSecret(t, "json", string(js))

			var logs strings.Builder
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "config", cfg, "key", cfg.Peaka.Key)
			slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", "config", cfg, "key", cfg.Peaka.Key)
			assertNoSecret(t, "slog", logs.String())
		})
	}
}

// TestSecretsNotInErrors breaks configs that hold keys in every way that
// still lets the key be read, and checks the error text.
func TestSecretsNotInErrors(t *testing.T) {
	dir, _ := secretConfigs(t)
	env := envWith(map[string]string{APIKeyEnv: envSecret})
	broken := []string{
		// Another problem after a valid inline key.
		"peaka:\n  api_key: " + inlineGlobal + "\n  timeout: 0s\nprojects:\n  - id: a\n    caches: {all: true}\n",
		// Both key settings.
		"peaka:\n  api_key: " + inlineGlobal + "\n  api_key_file: global.key\nprojects:\n  - id: a\n    caches: {all: true}\n",
		// Key under a misspelled setting, and as the wrong type.
		"peaka:\n  apikey: " + inlineGlobal + "\nprojects:\n  - id: a\n    caches: {all: true}\n",
		"peaka:\n  api_key: [" + inlineGlobal + "]\nprojects:\n  - id: a\n    caches: {all: true}\n",
		"peaka:\n  api_key: {" + inlineGlobal + ": 1}\nprojects:\n  - id: a\n    caches: {all: true}\n",
		// A key with inner whitespace.
		"peaka:\n  api_key: \"" + inlineGlobal + " " + inlineProject + "\"\nprojects:\n  - id: a\n    caches: {all: true}\n",
		// File keys followed by a problem.
		"peaka:\n  api_key_file: global.key\nprojects:\n  - id: a\n    api_key_file: project.key\n",
		// Env key followed by a problem.
		"projects:\n  - id: a\n",
		// A URL carrying the key as a password.
		"peaka:\n  url: https://user:" + inlineGlobal + "@partner.peaka.studio/api/v1\nprojects:\n  - id: a\n    caches: {all: true}\n",
		"peaka:\n  url: \"https://user:" + inlineGlobal + "@[::1\"\nprojects:\n  - id: a\n    caches: {all: true}\n",
	}
	for i, content := range broken {
		_, err := Parse([]byte(content), "x.yml", env, dir)
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		assertNoSecret(t, fmt.Sprintf("case %d error", i), err.Error())
	}

	// A key file with whitespace inside must not be quoted back either.
	if err := os.WriteFile(filepath.Join(dir, "bad.key"), []byte(fileGlobal+"\n"+fileProject+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte("peaka:\n  api_key_file: bad.key\nprojects:\n  - id: a\n    caches: {all: true}\n"), "x.yml", env, dir)
	if err == nil {
		t.Fatal("multi-line key file accepted")
	}
	assertNoSecret(t, "bad key file error", err.Error())
	// Env key with whitespace inside.
	_, err = Parse([]byte("projects:\n  - id: a\n    caches: {all: true}\n"), "x.yml",
		envWith(map[string]string{APIKeyEnv: envSecret + " " + fileGlobal}), dir)
	if err == nil {
		t.Fatal("env key with whitespace accepted")
	}
	assertNoSecret(t, "bad env key error", err.Error())
}

func TestSecretFormatting(t *testing.T) {
	s := Secret("k-123")
	tests := []struct {
		got, want string
	}{
		{s.String(), "<secret>"},
		{s.GoString(), "<secret>"},
		{fmt.Sprint(s), "<secret>"},
		{fmt.Sprintf("%v|%+v|%#v|%s", s, s, s, s), "<secret>|<secret>|<secret>|<secret>"},
		{fmt.Sprintf("%q", s), `"<secret>"`},
		{fmt.Sprintf("%10s|", s), "  <secret>|"},
		{Secret("").String(), ""},
		{fmt.Sprintf("%v|%#v", Secret(""), Secret("")), "|"},
		{s.Value(), "k-123"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
	// encoding/json escapes <>, so compare the decoded string.
	var fromJSON string
	if b, err := json.Marshal(s); err != nil || json.Unmarshal(b, &fromJSON) != nil || fromJSON != "<secret>" {
		t.Errorf("json = %s, %v", b, err)
	}
	if b, _ := yaml.Marshal(map[string]Secret{"k": s}); string(b) != "k: <secret>\n" {
		t.Errorf("yaml = %q", b)
	}
}
