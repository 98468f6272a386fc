// Package config loads and validates the peaka_exporter configuration file.
//
// Every problem is reported as a single-line *Error naming the file, the
// line and the YAML key, because the exporter usually runs unattended and
// the log line is all the operator gets.
package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

const (
	// DefaultURL is the partner API of Peaka's US region.
	DefaultURL = "https://partner.peaka.studio/api/v1"
	// DefaultTimeout bounds one scrape.
	DefaultTimeout = 10 * time.Second
	// MaxTimeout caps peaka.timeout so the HTTP server can size its write
	// timeout to outlast the longest scrape a valid config allows.
	MaxTimeout = 10 * time.Minute
	// DefaultMaxConcurrency is the number of API requests in flight at once.
	DefaultMaxConcurrency = 8
	// MaxConcurrencyLimit stops a typo from opening thousands of connections.
	MaxConcurrencyLimit = 1024
	// DefaultSettingsRefresh is how long cache settings (schedules) are
	// reused before they are read again: they change rarely.
	DefaultSettingsRefresh = 10 * time.Minute
	// DefaultMaxResponseBytes cuts off larger API answers. The project-wide
	// cache list always carries action logs (tens of KiB per cache), so a
	// project with a few hundred caches needs several MiB.
	DefaultMaxResponseBytes = 16 << 20
	// APIKeyEnv is the environment variable consulted when the file names
	// no global key.
	APIKeyEnv = "PEAKA_API_KEY"
)

// Config is the whole configuration file.
type Config struct {
	Peaka    Peaka     `yaml:"peaka"`
	Projects []Project `yaml:"projects"`
	// Discover, when set, also watches every project the Partner key
	// reaches, each scraped through /probe.
	Discover *Discover `yaml:"discover,omitempty"`
}

// DefaultDiscoverRefresh is how long a discovered project list is reused.
const DefaultDiscoverRefresh = time.Hour

// Discover finds the projects a Partner API key reaches (organizations →
// workspaces → projects) and says what to watch in each.
type Discover struct {
	// Refresh is how long the discovered list is reused; 0 means
	// DefaultDiscoverRefresh.
	Refresh Duration `yaml:"refresh,omitempty"`
	Caches  Caches   `yaml:"caches,omitempty"`
	Exports Exports  `yaml:"exports,omitempty"`
}

// Project returns the configuration of a discovered project: what
// discover watches, with the global key.
func (d *Discover) Project(id string, key Secret) Project {
	return Project{ID: id, Caches: d.Caches, Exports: d.Exports, Key: key}
}

// RefreshPeriod returns Refresh or its default.
func (d *Discover) RefreshPeriod() time.Duration {
	if d.Refresh <= 0 {
		return DefaultDiscoverRefresh
	}
	return d.Refresh.D()
}

// Peaka holds the settings shared by all projects.
type Peaka struct {
	URL            URL      `yaml:"url"`
	APIKey         Secret   `yaml:"api_key,omitempty"`
	APIKeyFile     string   `yaml:"api_key_file,omitempty"`
	Timeout        Duration `yaml:"timeout"`
	MaxConcurrency int      `yaml:"max_concurrency"`
	// SettingsRefresh is how long cache settings are reused between reads.
	SettingsRefresh Duration `yaml:"settings_refresh"`
	// MinInterval reuses a target's API answer younger than this instead of
	// calling again (0: off), for several Prometheus servers scraping one
	// exporter.
	MinInterval Duration `yaml:"min_interval,omitempty"`
	// MaxResponseBytes cuts off larger API answers (reported as bad_response).
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// CAFile holds PEM certificates to trust for the API in addition to
	// the system's.
	CAFile string `yaml:"ca_file,omitempty"`

	// CACerts is the content of CAFile, read and checked at load time.
	CACerts []byte `yaml:"-"`

	// Key is the resolved global key: api_key, else the contents of
	// api_key_file, else $PEAKA_API_KEY. It may be empty only if every
	// project has its own key.
	Key Secret `yaml:"-"`
}

// Project is one Peaka project to watch.
type Project struct {
	ID         string  `yaml:"id"`
	APIKey     Secret  `yaml:"api_key,omitempty"`
	APIKeyFile string  `yaml:"api_key_file,omitempty"`
	Caches     Caches  `yaml:"caches,omitempty"`
	Exports    Exports `yaml:"exports,omitempty"`

	// Key is the key to use for this project: its own api_key or
	// api_key_file, else Peaka.Key. Never empty after a successful Parse.
	Key Secret `yaml:"-"`
}

// Caches selects the project's caches to watch.
type Caches struct {
	IDs []string `yaml:"ids,omitempty"`
	All bool     `yaml:"all,omitempty"`
	// ActionLogs is a pointer so that an absent key can default to true.
	ActionLogs *bool `yaml:"action_logs,omitempty"`
}

// IncludeActionLogs reports whether cache action logs should be fetched;
// only an explicit action_logs: false turns them off.
func (c Caches) IncludeActionLogs() bool { return c.ActionLogs == nil || *c.ActionLogs }

// Exports selects the project's export jobs to watch.
type Exports struct {
	IDs []string `yaml:"ids,omitempty"`
	// Recent also watches every export created within this window; 0 is off.
	Recent Duration `yaml:"recent,omitempty"`
}

// Load reads and parses the config file at path. Relative api_key_file
// paths are taken relative to the config file, so the pair can be moved
// together.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read config file: " + osReason(err)}
	}
	return Parse(data, path, os.LookupEnv, filepath.Dir(path))
}

// Parse decodes and validates a config file. filename is used only in error
// messages; lookupEnv (may be nil) supplies $PEAKA_API_KEY; relative
// api_key_file paths are resolved against baseDir. Every error is an *Error.
func Parse(data []byte, filename string, lookupEnv func(string) (string, bool), baseDir string) (*Config, error) {
	cfg := &Config{Peaka: Peaka{
		URL:              mustParseURL(DefaultURL),
		Timeout:          Duration(DefaultTimeout),
		MaxConcurrency:   DefaultMaxConcurrency,
		SettingsRefresh:  Duration(DefaultSettingsRefresh),
		MaxResponseBytes: DefaultMaxResponseBytes,
	}}

	// The strict decode has to come first: yaml.Node.Decode would silently
	// ignore unknown keys. The node tree is only used for line numbers.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && err != io.EOF {
		var root yaml.Node
		if yaml.Unmarshal(data, &root) != nil {
			return nil, decodeError(filename, nil, err)
		}
		return nil, decodeError(filename, &root, err)
	}
	// A second document would be ignored by the decoder, which would hide
	// whatever the operator put there. Empty ones (a trailing "---") are
	// harmless.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, decodeError(filename, nil, err)
		}
		if n := documentRoot(&extra); n != nil && n.ShortTag() != "!!null" {
			return nil, &Error{File: filename, Line: extra.Line, Msg: "more than one YAML document; put everything in one"}
		}
	}

	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, decodeError(filename, nil, err)
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	c := checker{file: filename, root: &root, env: lookupEnv, baseDir: baseDir}
	c.check(cfg)
	if err := combine(c.errs); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Marshal renders the config for the /config page. Secrets come out as
// <secret> and the resolved keys not at all.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checker runs the semantic checks. It collects every problem so that the
// count of further errors can be reported along with the first.
type checker struct {
	file    string
	root    *yaml.Node
	env     func(string) (string, bool)
	baseDir string
	errs    []*Error
}

// fail records a problem at path, using the line of the nearest node that
// exists in the file.
func (c *checker) fail(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: lineOf(c.root, path), Msg: msg})
}

func (c *checker) present(path string) bool {
	_, val := lookup(c.root, path)
	return val != nil
}

func (c *checker) check(cfg *Config) {
	p := &cfg.Peaka
	if p.Timeout <= 0 {
		c.fail("peaka.timeout", "must be greater than 0, got %s", p.Timeout)
	} else if p.Timeout.D() > MaxTimeout {
		c.fail("peaka.timeout", "must be at most %s, got %s", Duration(MaxTimeout), p.Timeout)
	}
	if p.MaxConcurrency < 1 || p.MaxConcurrency > MaxConcurrencyLimit {
		c.fail("peaka.max_concurrency", "must be between 1 and %d, got %d", MaxConcurrencyLimit, p.MaxConcurrency)
	}
	if p.SettingsRefresh.D() < time.Second {
		c.fail("peaka.settings_refresh", "must be at least 1s, got %s", p.SettingsRefresh)
	}
	if p.MinInterval < 0 {
		c.fail("peaka.min_interval", "must not be negative, got %s", p.MinInterval)
	}
	if p.MaxResponseBytes < 1024 || p.MaxResponseBytes > 1<<30 {
		c.fail("peaka.max_response_bytes", "must be between 1024 and %d, got %d", 1<<30, p.MaxResponseBytes)
	}
	if c.present("peaka.ca_file") {
		p.CACerts = c.readCAFile("peaka.ca_file", p.CAFile)
	}

	globalOK := true
	key, ok := c.resolveKey("peaka", p.APIKey, p.APIKeyFile)
	if !ok {
		globalOK = false
	} else if key == "" {
		if v, set := c.env(APIKeyEnv); set {
			key, ok = checkKey(strings.TrimSpace(v))
			if !ok {
				c.fail("", "the %s environment variable contains whitespace or control characters inside the key", APIKeyEnv)
				globalOK = false
			}
		}
	}
	p.Key = key

	if d := cfg.Discover; d != nil {
		c.checkDiscover(d, p.Key != "" || !globalOK)
	}
	if len(cfg.Projects) == 0 {
		if cfg.Discover != nil {
			return
		}
		if c.present("projects") {
			c.fail("projects", "no projects configured")
		} else {
			c.fail("", "no projects configured (add a projects list)")
		}
		return
	}

	firstID := map[string]int{}
	for i := range cfg.Projects {
		pr := &cfg.Projects[i]
		path := fmt.Sprintf("projects[%d]", i)

		switch first, dup := firstID[pr.ID]; {
		case strings.TrimSpace(pr.ID) == "":
			c.fail(path+".id", "empty project id")
		case strings.TrimSpace(pr.ID) != pr.ID:
			c.fail(path+".id", "project id %q has white space around it", pr.ID)
		case dup:
			c.fail(path+".id", "duplicate project id %q (first defined on line %d)", pr.ID, first)
		default:
			firstID[pr.ID] = lineOf(c.root, path+".id")
		}

		c.checkIDs(path+".caches.ids", "cache", pr.Caches.IDs)
		c.checkIDs(path+".exports.ids", "export", pr.Exports.IDs)
		if pr.Exports.Recent < 0 {
			c.fail(path+".exports.recent", "must not be negative, got %s", pr.Exports.Recent)
		}
		if len(pr.Caches.IDs) == 0 && !pr.Caches.All && len(pr.Exports.IDs) == 0 && pr.Exports.Recent == 0 {
			c.fail(path, "project %q watches nothing: set caches.ids, caches.all, exports.ids or exports.recent", pr.ID)
		}

		own, ok := c.resolveKey(path, pr.APIKey, pr.APIKeyFile)
		switch {
		case !ok:
		case own != "":
			pr.Key = own
		case p.Key != "":
			pr.Key = p.Key
		case globalOK:
			// When the global key failed to load, that error already says
			// what to fix; repeating it per project would bury it.
			c.fail(path, "no Peaka API key for project %q: set peaka.api_key_file, peaka.api_key or the %s environment variable (or api_key_file/api_key on the project)", pr.ID, APIKeyEnv)
		}
	}
}

// checkDiscover checks the discover block; haveKey is false when no global
// key is set (discovery needs a Partner key).
func (c *checker) checkDiscover(d *Discover, haveKey bool) {
	if d.Refresh < 0 {
		c.fail("discover.refresh", "must not be negative, got %s", d.Refresh)
	}
	if len(d.Caches.IDs) > 0 {
		c.fail("discover.caches.ids", "not allowed: cache IDs belong to one project (use caches.all, or list the project under projects)")
	}
	if len(d.Exports.IDs) > 0 {
		c.fail("discover.exports.ids", "not allowed: export IDs belong to one project (use exports.recent, or list the project under projects)")
	}
	if d.Exports.Recent < 0 {
		c.fail("discover.exports.recent", "must not be negative, got %s", d.Exports.Recent)
	}
	if !d.Caches.All && d.Exports.Recent == 0 {
		c.fail("discover", "discovered projects would watch nothing: set caches.all or exports.recent")
	}
	if !haveKey {
		c.fail("discover", "discovery needs a Partner API key: set peaka.api_key_file, peaka.api_key or the %s environment variable", APIKeyEnv)
	}
}

func (c *checker) checkIDs(path, kind string, ids []string) {
	first := map[string]int{}
	for i, id := range ids {
		p := fmt.Sprintf("%s[%d]", path, i)
		if strings.TrimSpace(id) == "" {
			c.fail(p, "empty %s id", kind)
			continue
		}
		if strings.TrimSpace(id) != id {
			c.fail(p, "%s id %q has white space around it", kind, id)
			continue
		}
		if line, dup := first[id]; dup {
			c.fail(p, "duplicate %s id %q (first listed on line %d)", kind, id, line)
			continue
		}
		first[id] = lineOf(c.root, p)
	}
}

// resolveKey returns the key set by api_key or api_key_file under path, ""
// if neither is set, and ok=false after recording a problem. Messages never
// include the key: they go to logs.
func (c *checker) resolveKey(path string, inline Secret, file string) (key Secret, ok bool) {
	inlineSet, fileSet := c.present(path+".api_key"), c.present(path+".api_key_file")
	switch {
	case inlineSet && fileSet:
		c.fail(path+".api_key_file", "api_key and api_key_file are both set; use only one")
		return "", false
	case inlineSet:
		v := strings.TrimSpace(inline.Value())
		if v == "" {
			c.fail(path+".api_key", "empty API key (remove the key to fall back to the default)")
			return "", false
		}
		if key, ok = checkKey(v); !ok {
			c.fail(path+".api_key", "API key contains whitespace or control characters")
		}
		return key, ok
	case fileSet:
		name, data, ok := c.readFile(path+".api_key_file", "API key", file)
		if !ok {
			return "", false
		}
		v := strings.TrimSpace(string(data))
		if v == "" {
			c.fail(path+".api_key_file", "API key file %q is empty", name)
			return "", false
		}
		if key, ok = checkKey(v); !ok {
			c.fail(path+".api_key_file", "API key file %q contains whitespace or control characters inside the key", name)
		}
		return key, ok
	}
	return "", true
}

// readCAFile returns the PEM certificates in file, or nil after recording
// why they cannot be used.
func (c *checker) readCAFile(path, file string) []byte {
	name, data, ok := c.readFile(path, "CA", file)
	if !ok {
		return nil
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		c.fail(path, "CA file %q holds no PEM certificate", name)
		return nil
	}
	return data
}

// readFile reads a file named at path (relative names are relative to the
// config file), recording why it cannot; what names the file's use in
// messages ("API key", "CA"), never its contents.
func (c *checker) readFile(path, what, file string) (name string, data []byte, ok bool) {
	if strings.TrimSpace(file) == "" {
		c.fail(path, "empty file name")
		return "", nil, false
	}
	name = file
	if !filepath.IsAbs(name) {
		name = filepath.Join(c.baseDir, name)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		c.fail(path, "cannot read %s file %q: %s", what, name, osReason(err))
		return name, nil, false
	}
	return name, data, true
}

// checkKey rejects keys with inner whitespace or control characters: they
// usually mean the wrong file, and would be mangled in an HTTP header.
func checkKey(v string) (Secret, bool) {
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", false
	}
	return Secret(v), true
}

// osReason drops the path from an *os.PathError: callers name the file
// themselves, and quoting it twice makes the line hard to read.
func osReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
