package peaka

import (
	"encoding/json"
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
		template     string
		ids          []string
		path, target string
	}{
		{EndpointCacheStatus, []string{"mtKDhe1U", "960b"}, "/data/projects/mtKDhe1U/cache/960b/status", "project mtKDhe1U cache 960b"},
		{EndpointListExports, []string{"p"}, "/data/projects/p/exports", "project p"},
		{EndpointProjects, []string{"o", "w"}, "/organizations/o/workspaces/w/projects", "organization o workspace w"},
		{EndpointOrganizations, nil, "/organizations", ""},
		{EndpointExport, []string{"a/b", "x y"}, "/data/projects/a%2Fb/exports/x%20y", "project a/b export x y"},
	} {
		path, target := route(tc.template, tc.ids...)
		if path != tc.path || target != tc.target {
			t.Errorf("route(%s, %q) = %q, %q; want %q, %q", tc.template, tc.ids, path, target, tc.path, tc.target)
		}
	}
}
