package peaka

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestOneOrManyDecodesBothShapes(t *testing.T) {
	for in, want := range map[string]int{`[{"id":"x"},{"id":"y"}]`: 2, `{"id":"x"}`: 1, `[]`: 0, `null`: 0} {
		var orgs oneOrMany[Organization]
		if err := json.Unmarshal([]byte(in), &orgs); err != nil || len(orgs) != want {
			t.Errorf("%s: %d organizations, %v; want %d", in, len(orgs), err, want)
		}
	}
	var orgs oneOrMany[Organization]
	if err := json.Unmarshal([]byte(`"nope"`), &orgs); err == nil {
		t.Error("a string decoded as organizations")
	}
}

func TestRoute(t *testing.T) {
	for _, tc := range []struct {
		prefix, escapedPrefix string
		template              string
		ids                   []string
		escaped, plain        string
		target                string
	}{
		{"", "", EndpointCacheStatus, []string{"mtKDhe1U", "960b"}, "/data/projects/mtKDhe1U/cache/960b/status", "/data/projects/mtKDhe1U/cache/960b/status", "project mtKDhe1U cache 960b"},
		{"/api/v1", "/api/v1", EndpointListExports, []string{"p"}, "/api/v1/data/projects/p/exports", "/api/v1/data/projects/p/exports", "project p"},
		{"", "", EndpointProjects, []string{"o", "w"}, "/organizations/o/workspaces/w/projects", "/organizations/o/workspaces/w/projects", "organization o workspace w"},
		{"", "", EndpointOrganizations, nil, "/organizations", "/organizations", ""},
		{"", "", EndpointExport, []string{"a/b", "x y"}, "/data/projects/a%2Fb/exports/x%20y", "/data/projects/a/b/exports/x y", "project a/b export x y"},
		{"/a b", "/a%20b", EndpointExport, []string{"p", "x"}, "/a%20b/data/projects/p/exports/x", "/a b/data/projects/p/exports/x", "project p export x"},
	} {
		r := route(tc.prefix, tc.escapedPrefix, tc.template, tc.ids...)
		if r.escaped != tc.escaped || r.plain != tc.plain {
			t.Errorf("route(%q, %s, %q) = %+v; want %q, %q", tc.prefix, tc.template, tc.ids, r, tc.escaped, tc.plain)
		}
		if target := routeTarget(tc.template, tc.ids...); target != tc.target {
			t.Errorf("routeTarget(%s, %q) = %q; want %q", tc.template, tc.ids, target, tc.target)
		}
	}
}

// The client builds each request's URL from the parsed base URL instead of
// parsing a string; what goes on the wire must be what parsing the joined
// string gives, whatever the IDs hold.
func TestRequestURLMatchesParsedURL(t *testing.T) {
	bases := []string{"http://127.0.0.1:8080", "https://partner.peaka.studio/api/v1", "https://h/api%20x/v1/", "http://h:/p", "https://[::1]:9/x%2Fy", "https://H.example/ü"}
	ids := []string{"mtKDhe1U", "a/b", "x y", "100%", "ü", "?#", "..", "a;b,c", "", "+&=:@$", "%2F", "tab\there"}
	queries := []url.Values{nil, {"excludeLogs": {"true"}}, {"limit": {"200"}, "sort": {"createdAt desc"}}}
	for _, b := range bases {
		base, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(Options{BaseURL: base})
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		for i, id := range ids {
			q := queries[i%len(queries)]
			other := ids[(i+3)%len(ids)]
			r := route(c.template.URL.Path, c.escapedBase, EndpointCacheStatus, id, other)
			got := c.requestURL(r, q)
			// As the client did before: the base's text and the escaped path.
			joined := strings.TrimSuffix(base.String(), "/") + route("", "", EndpointCacheStatus, id, other).escaped
			if len(q) > 0 {
				joined += "?" + q.Encode()
			}
			want, err := http.NewRequest(http.MethodGet, joined, nil)
			if err != nil {
				t.Fatalf("%s: %v", joined, err)
			}
			if got.String() != want.URL.String() || got.RequestURI() != want.URL.RequestURI() || got.Path != want.URL.Path || got.Host != want.URL.Host {
				t.Errorf("base %s, ids %q %q: built %s (request URI %s, path %q), parsed %s (%s, %q)",
					b, id, other, got, got.RequestURI(), got.Path, want.URL, want.URL.RequestURI(), want.URL.Path)
			}
			if c.template.Host != want.Host {
				t.Errorf("base %s: Host %q, parsed %q", b, c.template.Host, want.Host)
			}
		}
	}
}
