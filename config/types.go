package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written the Prometheus way ("30s", "1h30m",
// "1d", "1w") so the config reads like the Prometheus configs operators
// already know.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String uses the same syntax as the config file so logs and the /config
// page show what the operator wrote.
func (d Duration) String() string { return model.Duration(d).String() }

// UnmarshalYAML parses a Prometheus duration. Negative values are accepted
// here so that the semantic checks can reject them with a message that says
// why, rather than a generic syntax error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "expected a duration such as 10s or 1h30m, got %s", describeNode(n))
	}
	v, err := model.ParseDurationAllowNegative(strings.TrimSpace(n.Value))
	if err != nil {
		return typeError(n, "invalid duration %q (want a number with a unit: ms, s, m, h, d, w or y, e.g. 10s or 1h30m)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in the syntax it was read in.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// URL is the base URL of the Peaka partner API. It is validated while
// decoding so a typo is reported with its line instead of failing every
// scrape later.
type URL struct{ *url.URL }

// String returns "" for an unset URL instead of panicking on the nil
// embedded pointer.
func (u URL) String() string {
	if u.URL == nil {
		return ""
	}
	return u.URL.String()
}

// UnmarshalYAML validates the URL. Error messages never echo the URL: it may
// contain credentials, which is exactly one of the things rejected here.
func (u *URL) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "expected a URL string, got %s", describeNode(n))
	}
	parsed, err := parseAPIURL(n.Value)
	if err != nil {
		return typeError(n, "%s", err)
	}
	u.URL = parsed
	return nil
}

// MarshalYAML writes the URL as a plain string.
func (u URL) MarshalYAML() (any, error) { return u.String(), nil }

// MarshalJSON writes the URL as a plain string rather than url.URL's fields.
func (u URL) MarshalJSON() ([]byte, error) { return json.Marshal(u.String()) }

func parseAPIURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("invalid URL: empty")
	}
	parsed, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the whole input, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid URL: %v", err)
	}
	switch {
	case parsed.Scheme == "":
		return nil, errors.New("invalid URL: missing scheme (want http:// or https://)")
	case parsed.Scheme != "http" && parsed.Scheme != "https":
		return nil, fmt.Errorf("invalid URL: unsupported scheme %q (want http or https)", parsed.Scheme)
	case parsed.User != nil:
		return nil, errors.New("invalid URL: must not contain a user name or password (it would leak credentials); use api_key_file for the API key")
	case parsed.Host == "":
		return nil, errors.New("invalid URL: missing host")
	case parsed.RawQuery != "" || parsed.ForceQuery || parsed.Fragment != "":
		return nil, errors.New("invalid URL: must not contain a query or fragment")
	}
	// API paths are appended to the base, so a trailing slash would double up.
	parsed.Path = strings.TrimRight(parsed.Path, "/")
	parsed.RawPath = strings.TrimRight(parsed.RawPath, "/")
	return parsed, nil
}

func mustParseURL(s string) URL {
	u, err := parseAPIURL(s)
	if err != nil {
		panic(err)
	}
	return URL{u}
}

// Secret holds an API key. Every way of printing or encoding it yields
// "<secret>" so keys cannot end up in logs, error messages or the /config
// page by accident; Value is the only way to get the key itself.
type Secret string

const redacted = "<secret>"

// Value returns the real key, for building request headers.
func (s Secret) Value() string { return string(s) }

// String keeps "" for an empty secret so an unset key is still visible as
// unset.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v.
func (s Secret) GoString() string { return s.String() }

// Format covers every fmt verb, including %q and %x which would otherwise
// format the underlying string.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// MarshalYAML redacts the key.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON redacts the key.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText redacts the key for encoders that only know
// encoding.TextMarshaler, such as log/slog's handlers.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// typeError wraps a message the way yaml.v3 reports its own type errors, so
// the decoder collects it with its line and Parse can rewrite all of them
// the same way.
func typeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

// describeNode names what was found, for "expected X, got Y" messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.ShortTag() == "!!null" {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}
