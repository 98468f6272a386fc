package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const envKey = "env-global-key"

// envWith fakes os.LookupEnv so tests neither depend on nor change the real
// environment.
func envWith(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

var withEnvKey = envWith(map[string]string{APIKeyEnv: envKey})

func parseFile(t *testing.T, path string, env func(string) (string, bool)) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data, path, env, filepath.Dir(path))
}

// project is the part of a Project the good-file table checks.
type project struct {
	id         string
	key        string
	cacheIDs   []string
	allCaches  bool
	actionLogs bool
	exportIDs  []string
	recent     time.Duration
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		file           string
		env            func(string) (string, bool)
		url            string
		timeout        time.Duration
		maxConcurrency int
		globalKey      string
		projects       []project
	}{
		{
			file: "minimal.yml", env: withEnvKey,
			url: DefaultURL, timeout: 10 * time.Second, maxConcurrency: 8, globalKey: envKey,
			projects: []project{
				{id: "mtKDhe1U", key: envKey, allCaches: true, actionLogs: true},
			},
		},
		{
			// The file key wins over $PEAKA_API_KEY and is trimmed.
			file: "full.yml", env: withEnvKey,
			url: "http://peaka.internal:8080/partner/api/v1", timeout: 30 * time.Second, maxConcurrency: 16,
			globalKey: "file-global-key",
			projects: []project{
				{
					id: "mtKDhe1U", key: "file-global-key",
					cacheIDs:   []string{"960bd651-7b3c-4511-9a88-18e14ac7742a", "0b6c53a2-5a41-4c61-8a8e-4fbbd1e5b0f7"},
					actionLogs: false,
					exportIDs:  []string{"4c9fcb44-126a-45f8-99a0-f1d245083d78"},
					recent:     24 * time.Hour,
				},
				{id: "Qx7pLm2A", key: "inline-project-key", allCaches: true, actionLogs: true},
			},
		},
		{
			file: "eu.yml", env: withEnvKey,
			url: "https://partner.eu.peaka.studio/api/v1", timeout: 10 * time.Second, maxConcurrency: 8,
			globalKey: "inline-global-key",
			projects: []project{
				{id: "euProj01", key: "inline-global-key", actionLogs: true, recent: time.Hour},
			},
		},
		{
			// No environment at all: per-project keys are enough.
			file: "per-project-keys.yml", env: nil,
			url: DefaultURL, timeout: 10 * time.Second, maxConcurrency: 8, globalKey: "",
			projects: []project{
				{id: "billing", key: "file-billing-key", cacheIDs: []string{"c1"}, actionLogs: true},
				{id: "marketing", key: "file-marketing-key", exportIDs: []string{"e1"}, actionLogs: true},
			},
		},
		{
			file: "override.yml", env: withEnvKey,
			url: DefaultURL, timeout: 10 * time.Second, maxConcurrency: 8, globalKey: envKey,
			projects: []project{
				{id: "shared", key: envKey, allCaches: true, actionLogs: true},
				{id: "billing", key: "file-billing-key", allCaches: true, actionLogs: true},
			},
		},
		{
			// Surrounding whitespace in the variable is not part of the key.
			file: "override.yml", env: envWith(map[string]string{APIKeyEnv: "  " + envKey + "\n"}),
			url: DefaultURL, timeout: 10 * time.Second, maxConcurrency: 8, globalKey: envKey,
			projects: []project{
				{id: "shared", key: envKey, allCaches: true, actionLogs: true},
				{id: "billing", key: "file-billing-key", allCaches: true, actionLogs: true},
			},
		},
		{
			file: "durations.yml", env: withEnvKey,
			url: DefaultURL, timeout: 90 * time.Second, maxConcurrency: 8, globalKey: envKey,
			projects: []project{
				{id: "daily", key: envKey, actionLogs: true, recent: 24 * time.Hour},
				{id: "weekly", key: envKey, actionLogs: true, recent: 7 * 24 * time.Hour},
				{id: "mixed", key: envKey, actionLogs: true, recent: 90 * time.Minute},
				{id: "off", key: envKey, allCaches: true, actionLogs: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := parseFile(t, filepath.Join("testdata", "good", tt.file), tt.env)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			p := cfg.Peaka
			if got := p.URL.String(); got != tt.url {
				t.Errorf("url = %q, want %q", got, tt.url)
			}
			if got := p.Timeout.D(); got != tt.timeout {
				t.Errorf("timeout = %v, want %v", got, tt.timeout)
			}
			if p.MaxConcurrency != tt.maxConcurrency {
				t.Errorf("max_concurrency = %d, want %d", p.MaxConcurrency, tt.maxConcurrency)
			}
			if got := p.Key.Value(); got != tt.globalKey {
				t.Errorf("global key = %q, want %q", got, tt.globalKey)
			}
			if len(cfg.Projects) != len(tt.projects) {
				t.Fatalf("got %d projects, want %d", len(cfg.Projects), len(tt.projects))
			}
			for i, want := range tt.projects {
				got := cfg.Projects[i]
				if got.ID != want.id {
					t.Errorf("projects[%d].id = %q, want %q", i, got.ID, want.id)
				}
				if got.Key.Value() != want.key {
					t.Errorf("projects[%d] key = %q, want %q", i, got.Key.Value(), want.key)
				}
				if !slices.Equal(got.Caches.IDs, want.cacheIDs) {
					t.Errorf("projects[%d].caches.ids = %q, want %q", i, got.Caches.IDs, want.cacheIDs)
				}
				if got.Caches.All != want.allCaches {
					t.Errorf("projects[%d].caches.all = %v, want %v", i, got.Caches.All, want.allCaches)
				}
				if got.Caches.IncludeActionLogs() != want.actionLogs {
					t.Errorf("projects[%d] IncludeActionLogs = %v, want %v", i, got.Caches.IncludeActionLogs(), want.actionLogs)
				}
				if !slices.Equal(got.Exports.IDs, want.exportIDs) {
					t.Errorf("projects[%d].exports.ids = %q, want %q", i, got.Exports.IDs, want.exportIDs)
				}
				if got.Exports.Recent.D() != want.recent {
					t.Errorf("projects[%d].exports.recent = %v, want %v", i, got.Exports.Recent.D(), want.recent)
				}
			}
		})
	}
}

// TestGoodFilesCovered keeps new good files from being added without
// assertions.
func TestGoodFilesCovered(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, f := range files {
		if _, err := parseFile(t, f, withEnvKey); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Setenv(APIKeyEnv, "from-the-real-env")
	cfg, err := Load("testdata/good/override.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Projects[0].Key.Value(); got != "from-the-real-env" {
		t.Errorf("key from environment = %q", got)
	}
	// Relative api_key_file paths resolve against the config file's
	// directory, not the working directory.
	if got := cfg.Projects[1].Key.Value(); got != "file-billing-key" {
		t.Errorf("key from file = %q", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yml")
	want := "testdata/does-not-exist.yml: cannot read config file: no such file or directory"
	var e *Error
	if !errors.As(err, &e) || err.Error() != want {
		t.Errorf("got %v, want *Error %q", err, want)
	}
}

var badTests = []struct {
	file string
	env  func(string) (string, bool) // withEnvKey when nil, so only the rule under test fails
	want string
}{
	{file: "empty.yml", want: "testdata/bad/empty.yml: no projects configured (add a projects list)"},
	{file: "comments-only.yml", want: "testdata/bad/comments-only.yml: no projects configured (add a projects list)"},
	{file: "no-projects.yml", want: "testdata/bad/no-projects.yml: no projects configured (add a projects list)"},
	{file: "empty-projects.yml", want: "testdata/bad/empty-projects.yml:3: projects: no projects configured"},
	{file: "empty-id.yml", want: "testdata/bad/empty-id.yml:2: projects[0].id: empty project id"},
	{file: "missing-id.yml", want: "testdata/bad/missing-id.yml:2: projects[0].id: empty project id"},
	{file: "duplicate-project.yml", want: `testdata/bad/duplicate-project.yml:8: projects[2].id: duplicate project id "mtKDhe1U" (first defined on line 2)`},
	{file: "watches-nothing.yml", want: `testdata/bad/watches-nothing.yml:2: projects[0]: project "idle" watches nothing: set caches.ids, caches.all, exports.ids or exports.recent`},
	{file: "empty-cache-id.yml", want: "testdata/bad/empty-cache-id.yml:6: projects[0].caches.ids[1]: empty cache id"},
	{file: "duplicate-cache-id.yml", want: `testdata/bad/duplicate-cache-id.yml:7: projects[0].caches.ids[2]: duplicate cache id "c1" (first listed on line 5)`},
	{file: "empty-export-id.yml", want: "testdata/bad/empty-export-id.yml:4: projects[0].exports.ids[0]: empty export id"},
	{file: "duplicate-export-id.yml", want: `testdata/bad/duplicate-export-id.yml:6: projects[0].exports.ids[1]: duplicate export id "e1" (first listed on line 5)`},
	{file: "timeout-zero.yml", want: "testdata/bad/timeout-zero.yml:2: peaka.timeout: must be greater than 0, got 0s"},
	{file: "timeout-negative.yml", want: "testdata/bad/timeout-negative.yml:2: peaka.timeout: must be greater than 0, got -5s"},
	{file: "timeout-too-long.yml", want: "testdata/bad/timeout-too-long.yml:2: peaka.timeout: must be at most 10m, got 1h"},
	{file: "concurrency-zero.yml", want: "testdata/bad/concurrency-zero.yml:2: peaka.max_concurrency: must be between 1 and 1024, got 0"},
	{file: "settings-refresh-zero.yml", want: "testdata/bad/settings-refresh-zero.yml:3: peaka.settings_refresh: must be at least 1s, got 0s"},
	{file: "min-interval-negative.yml", want: "testdata/bad/min-interval-negative.yml:3: peaka.min_interval: must not be negative, got -5s"},
	{file: "max-response-tiny.yml", want: "testdata/bad/max-response-tiny.yml:3: peaka.max_response_bytes: must be between 1024 and 1073741824, got 10"},
	{file: "ca-file-missing.yml", want: `testdata/bad/ca-file-missing.yml:3: peaka.ca_file: cannot read CA file "testdata/bad/no-such-ca.pem": no such file or directory`},
	{file: "ca-file-not-pem.yml", want: `testdata/bad/ca-file-not-pem.yml:3: peaka.ca_file: CA file "testdata/bad/keys/not-a-cert.pem" holds no PEM certificate`},
	{file: "discover-ids.yml", want: "testdata/bad/discover-ids.yml:5: discover.caches.ids: not allowed: cache IDs belong to one project (use caches.all, or list the project under projects) (and 1 more error)"},
	{file: "discover-nothing.yml", want: "testdata/bad/discover-nothing.yml:3: discover: discovered projects would watch nothing: set caches.all or exports.recent"},
	{file: "discover-no-key.yml", env: envWith(nil), want: "testdata/bad/discover-no-key.yml:1: discover: discovery needs a Partner API key: set peaka.api_key_file, peaka.api_key or the PEAKA_API_KEY environment variable"},
	{file: "padded-id.yml", want: `testdata/bad/padded-id.yml:6: projects[0].caches.ids[0]: cache id " c1" has white space around it`},
	{file: "concurrency-too-high.yml", want: "testdata/bad/concurrency-too-high.yml:2: peaka.max_concurrency: must be between 1 and 1024, got 1025"},
	{file: "recent-negative.yml", want: "testdata/bad/recent-negative.yml:4: projects[0].exports.recent: must not be negative, got -1h"},
	{file: "bad-duration.yml", want: `testdata/bad/bad-duration.yml:2: peaka.timeout: invalid duration "ten seconds" (want a number with a unit: ms, s, m, h, d, w or y, e.g. 10s or 1h30m)`},
	{file: "bad-duration-recent.yml", want: `testdata/bad/bad-duration-recent.yml:5: projects[1].exports.recent: invalid duration "10" (want a number with a unit: ms, s, m, h, d, w or y, e.g. 10s or 1h30m)`},
	{file: "url-unparseable.yml", want: "testdata/bad/url-unparseable.yml:2: peaka.url: invalid URL: missing ']' in host"},
	{file: "url-scheme.yml", want: `testdata/bad/url-scheme.yml:2: peaka.url: invalid URL: unsupported scheme "ftp" (want http or https)`},
	{file: "url-no-scheme.yml", want: "testdata/bad/url-no-scheme.yml:2: peaka.url: invalid URL: missing scheme (want http:// or https://)"},
	{file: "url-no-host.yml", want: "testdata/bad/url-no-host.yml:2: peaka.url: invalid URL: missing host"},
	{file: "url-userinfo.yml", want: "testdata/bad/url-userinfo.yml:2: peaka.url: invalid URL: must not contain a user name or password (it would leak credentials); use api_key_file for the API key"},
	{file: "url-query.yml", want: "testdata/bad/url-query.yml:2: peaka.url: invalid URL: must not contain a query or fragment"},
	{file: "url-list.yml", want: "testdata/bad/url-list.yml:2: peaka.url: expected a URL string, got a list"},
	{file: "both-keys.yml", want: "testdata/bad/both-keys.yml:3: peaka.api_key_file: api_key and api_key_file are both set; use only one"},
	{file: "project-both-keys.yml", want: "testdata/bad/project-both-keys.yml:5: projects[1].api_key_file: api_key and api_key_file are both set; use only one"},
	{file: "key-file-missing.yml", want: `testdata/bad/key-file-missing.yml:2: peaka.api_key_file: cannot read API key file "testdata/bad/keys/missing.key": no such file or directory`},
	{file: "key-file-absolute.yml", want: `testdata/bad/key-file-absolute.yml:3: projects[0].api_key_file: cannot read API key file "/nonexistent/peaka_exporter_test/key": no such file or directory`},
	{file: "key-file-dir.yml", want: `testdata/bad/key-file-dir.yml:2: peaka.api_key_file: cannot read API key file "testdata/bad/keys": is a directory`},
	{file: "key-file-empty.yml", want: `testdata/bad/key-file-empty.yml:2: peaka.api_key_file: API key file "testdata/bad/keys/empty.key" is empty`},
	{file: "key-file-blank.yml", want: `testdata/bad/key-file-blank.yml:3: projects[0].api_key_file: API key file "testdata/bad/keys/blank.key" is empty`},
	{file: "key-file-spaces.yml", want: `testdata/bad/key-file-spaces.yml:2: peaka.api_key_file: API key file "testdata/bad/keys/spaces.key" contains whitespace or control characters inside the key`},
	{file: "empty-inline-key.yml", want: "testdata/bad/empty-inline-key.yml:2: peaka.api_key: empty API key (remove the key to fall back to the default)"},
	{file: "api-key-list.yml", want: "testdata/bad/api-key-list.yml:2: peaka.api_key: expected a string, got a list"},
	{
		file: "bad-env-key.yml", env: envWith(map[string]string{APIKeyEnv: "env key"}),
		want: "testdata/bad/bad-env-key.yml: the PEAKA_API_KEY environment variable contains whitespace or control characters inside the key",
	},
	{
		file: "no-key.yml", env: envWith(nil),
		want: `testdata/bad/no-key.yml:5: projects[1]: no Peaka API key for project "unkeyed": set peaka.api_key_file, peaka.api_key or the PEAKA_API_KEY environment variable (or api_key_file/api_key on the project)`,
	},
	{file: "unknown-key.yml", want: `testdata/bad/unknown-key.yml:3: unknown key "foo" in peaka (known keys: url, api_key, api_key_file, timeout, max_concurrency, settings_refresh, min_interval, max_response_bytes, ca_file)`},
	{file: "unknown-key-top.yml", want: `testdata/bad/unknown-key-top.yml:1: unknown key "projets" at top level (known keys: peaka, projects, discover)`},
	{file: "unknown-key-project.yml", want: `testdata/bad/unknown-key-project.yml:5: unknown key "cache" in projects[1] (known keys: id, api_key, api_key_file, caches, exports)`},
	{file: "unknown-key-caches.yml", want: `testdata/bad/unknown-key-caches.yml:5: unknown key "action_log" in projects[0].caches (known keys: ids, all, action_logs)`},
	{file: "wrong-type.yml", want: `testdata/bad/wrong-type.yml:4: peaka.max_concurrency: expected an integer, got "eight"`},
	{file: "wrong-type-bool.yml", want: `testdata/bad/wrong-type-bool.yml:4: projects[0].caches.all: expected a boolean (true or false), got "maybe"`},
	{file: "wrong-type-list.yml", want: `testdata/bad/wrong-type-list.yml:1: projects: expected a list of projects, got "mtKDhe1U"`},
	{file: "wrong-type-ids.yml", want: `testdata/bad/wrong-type-ids.yml:4: projects[0].caches.ids: expected a list of IDs, got "960bd651-7b3c-4511-9a88-18e14ac7742a"`},
	{file: "not-a-mapping.yml", want: "testdata/bad/not-a-mapping.yml:1: top level: expected a mapping, got a list"},
	{file: "multiple-errors.yml", want: `testdata/bad/multiple-errors.yml:2: unknown key "foo" in peaka (known keys: url, api_key, api_key_file, timeout, max_concurrency, settings_refresh, min_interval, max_response_bytes, ca_file) (and 2 more errors)`},
	{file: "multiple-semantic-errors.yml", want: "testdata/bad/multiple-semantic-errors.yml:2: peaka.timeout: must be greater than 0, got 0s (and 1 more error)"},
	{file: "duplicate-key.yml", want: `testdata/bad/duplicate-key.yml:3: duplicate key "timeout" in peaka (first defined on line 2)`},
	{file: "syntax-error.yml", want: "testdata/bad/syntax-error.yml:5: YAML syntax error: mapping values are not allowed in this context"},
	{file: "multi-document.yml", want: "testdata/bad/multi-document.yml:4: more than one YAML document; put everything in one"},
}

func TestParseBad(t *testing.T) {
	for _, tt := range badTests {
		t.Run(tt.file, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = withEnvKey
			}
			cfg, err := parseFile(t, filepath.Join("testdata", "bad", tt.file), env)
			if err == nil {
				t.Fatalf("Parse succeeded (%d projects), want error %q", len(cfg.Projects), tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %q is not a *config.Error", err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

// TestBadFilesCovered makes sure every bad file has an expected error.
func TestBadFilesCovered(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tt := range badTests {
		covered[tt.file] = true
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no entry in badTests", f)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "a.yml", Line: 3, Msg: "m"}, "a.yml:3: m"},
		{Error{File: "a.yml", Msg: "m"}, "a.yml: m"},
		{Error{Line: 3, Msg: "m"}, "line 3: m"},
		{Error{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestErrorsInFlowStyle checks that errors are pinned to the right key when
// several values share a line.
func TestErrorsInFlowStyle(t *testing.T) {
	tests := []struct {
		yaml string
		want string
	}{
		{
			"peaka: {timeout: 10s, url: 'ftp://x'}\nprojects: [{id: a, caches: {all: true}}]\n",
			`f.yml:1: peaka.url: invalid URL: unsupported scheme "ftp" (want http or https)`,
		},
		{
			"projects: [{id: a, exports: {recent: 1h}}, {id: b, exports: {recent: 1x}}]\n",
			`f.yml:1: projects[1].exports.recent: invalid duration "1x" (want a number with a unit: ms, s, m, h, d, w or y, e.g. 10s or 1h30m)`,
		},
		{
			"projects: [{id: a, caches: {all: true}}, {id: b, caches: {all: true}, exports: [x]}]\n",
			"f.yml:1: projects[1].exports: expected a mapping, got a list",
		},
		{
			"projects: [{id: a, caches: {all: true}}, {id: b, caches: {all: true, x: 1}}]\n",
			`f.yml:1: unknown key "x" in projects[1].caches (known keys: ids, all, action_logs)`,
		},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml), "f.yml", withEnvKey, ".")
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q)\n got: %v\nwant: %s", tt.yaml, err, tt.want)
		}
	}
}

// TestExampleConfig keeps the shipped example valid. It uses the
// environment variable because the example's key file only exists on a
// real deployment.
func TestExampleConfig(t *testing.T) {
	cfg, err := parseFile(t, "../peaka_exporter.yml", withEnvKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Projects) != 2 {
		t.Fatalf("example has %d projects, want 2", len(cfg.Projects))
	}
	named, all := cfg.Projects[0], cfg.Projects[1]
	if len(named.Caches.IDs) == 0 || named.Caches.ActionLogs == nil {
		t.Errorf("first project should show named caches and action_logs: %+v", named.Caches)
	}
	if !all.Caches.All || all.Exports.Recent <= 0 {
		t.Errorf("second project should show caches.all and exports.recent: %+v %+v", all.Caches, all.Exports)
	}
	for _, p := range cfg.Projects {
		if p.Key.Value() != envKey {
			t.Errorf("project %s key not taken from %s", p.ID, APIKeyEnv)
		}
	}
}

func TestTrailingEmptyDocument(t *testing.T) {
	src := "projects: [{id: a, caches: {all: true}}]\n---\n"
	if _, err := Parse([]byte(src), "f.yml", withEnvKey, "."); err != nil {
		t.Errorf("trailing empty document rejected: %v", err)
	}
}

func TestNullsKeepDefaults(t *testing.T) {
	src := "peaka:\n  url:\n  timeout:\n  max_concurrency:\nprojects: [{id: a, caches: {all: true}}]\n"
	cfg, err := Parse([]byte(src), "f.yml", withEnvKey, ".")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Peaka.URL.String() != DefaultURL || cfg.Peaka.Timeout.D() != DefaultTimeout || cfg.Peaka.MaxConcurrency != DefaultMaxConcurrency {
		t.Errorf("empty values did not keep defaults: %+v", cfg.Peaka)
	}
}

func TestMarshalShape(t *testing.T) {
	cfg, err := parseFile(t, "testdata/good/full.yml", withEnvKey)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `peaka:
  url: http://peaka.internal:8080/partner/api/v1
  api_key_file: keys/global.key
  timeout: 30s
  max_concurrency: 16
  settings_refresh: 10m
  max_response_bytes: 16777216
projects:
  - id: mtKDhe1U
    caches:
      ids:
        - 960bd651-7b3c-4511-9a88-18e14ac7742a
        - 0b6c53a2-5a41-4c61-8a8e-4fbbd1e5b0f7
      action_logs: false
    exports:
      ids:
        - 4c9fcb44-126a-45f8-99a0-f1d245083d78
      recent: 1d
  - id: Qx7pLm2A
    api_key: <secret>
    caches:
      all: true
      action_logs: true
`
	if string(out) != want {
		t.Errorf("Marshal:\n%s\nwant:\n%s", out, want)
	}
}

func TestDiscover(t *testing.T) {
	cfg, err := parseFile(t, "testdata/good/discover.yml", envWith(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Discover
	if d == nil || len(cfg.Projects) != 0 {
		t.Fatalf("discover %+v, projects %d", d, len(cfg.Projects))
	}
	if d.RefreshPeriod() != 30*time.Minute {
		t.Errorf("refresh %v, want 30m", d.RefreshPeriod())
	}
	p := d.Project("found", cfg.Peaka.Key)
	if p.ID != "found" || !p.Caches.All || p.Caches.IncludeActionLogs() || p.Exports.Recent.D() != 24*time.Hour || p.Key.Value() != "partner-key" {
		t.Errorf("discovered project %+v", p)
	}
	if (&Discover{}).RefreshPeriod() != DefaultDiscoverRefresh {
		t.Error("no refresh should mean the default")
	}
}
