package config

import (
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDurationRoundTrip(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"10s", 10 * time.Second, "10s"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"1d", 24 * time.Hour, "1d"},
		{"1w", 7 * 24 * time.Hour, "1w"},
		{"1500ms", 1500 * time.Millisecond, "1s500ms"},
		{"0", 0, "0s"},
		{"-1h", -time.Hour, "-1h"},
	}
	for _, tt := range tests {
		var d Duration
		if err := yaml.Unmarshal([]byte(tt.in), &d); err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if d.D() != tt.want {
			t.Errorf("%q = %v, want %v", tt.in, d.D(), tt.want)
		}
		out, err := yaml.Marshal(d)
		if err != nil || string(out) != tt.out+"\n" {
			t.Errorf("marshal %q = %q, %v; want %q", tt.in, out, err, tt.out)
		}
	}
}

func TestURL(t *testing.T) {
	good := map[string]string{
		"https://partner.peaka.studio/api/v1":     "https://partner.peaka.studio/api/v1",
		"https://partner.eu.peaka.studio/api/v1/": "https://partner.eu.peaka.studio/api/v1",
		"HTTP://localhost:8080//":                 "http://localhost:8080",
		" https://example.com/a%2Fb/ ":            "https://example.com/a%2Fb",
	}
	for in, want := range good {
		var u URL
		if err := yaml.Unmarshal([]byte(`"`+in+`"`), &u); err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if u.String() != want {
			t.Errorf("%q parsed as %q, want %q", in, u.String(), want)
		}
		out, _ := yaml.Marshal(u)
		if string(out) != want+"\n" {
			t.Errorf("%q marshals as %q", in, out)
		}
	}
	bad := []string{"", "ftp://x", "x", "https://", "https://u@h", "https://h/#f", "https://h/?", "mailto:a@b"}
	for _, in := range bad {
		var u URL
		if err := yaml.Unmarshal([]byte(`"`+in+`"`), &u); err == nil {
			t.Errorf("%q accepted as %q", in, u.String())
		}
	}
	if (URL{}).String() != "" {
		t.Error("zero URL should print as empty")
	}
}

func TestCachesIncludeActionLogs(t *testing.T) {
	f, tr := false, true
	for _, tt := range []struct {
		c    Caches
		want bool
	}{{Caches{}, true}, {Caches{ActionLogs: &tr}, true}, {Caches{ActionLogs: &f}, false}} {
		if got := tt.c.IncludeActionLogs(); got != tt.want {
			t.Errorf("%+v: got %v", tt.c, got)
		}
	}
}

func TestLookup(t *testing.T) {
	src := `peaka:
  url: x
projects:
  - id: a
  - id: b
    caches:
      ids:
        - c0
        - c1
`
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		value string
		line  int
	}{
		{"peaka.url", "x", 2},
		{"projects[1].id", "b", 5},
		{"projects[1].caches.ids[1]", "c1", 9},
		{"projects[0].caches", "", 4},  // missing: falls back to projects[0]
		{"projects[7].id", "", 3},      // out of range: falls back to the projects key
		{"nope", "", 0},                // missing at top level
		{"projects[x]", "", 3},         // malformed index
		{"peaka.url.deeper[0]", "", 2}, // scalar has no children
	}
	for _, tt := range tests {
		_, val := lookup(&root, tt.path)
		got := ""
		if val != nil {
			got = val.Value
		}
		if got != tt.value {
			t.Errorf("lookup(%q) = %q, want %q", tt.path, got, tt.value)
		}
		if line := lineOf(&root, tt.path); line != tt.line {
			t.Errorf("lineOf(%q) = %d, want %d", tt.path, line, tt.line)
		}
	}
}
