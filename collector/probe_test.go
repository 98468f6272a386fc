package collector

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/peakacom/peaka_exporter/config"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// probeWorld has three projects in one organization: "static" is
// configured, the other two are found by discovery.
func probeWorld(t *testing.T) (*env, *httptest.Server) {
	e := newEnv(t)
	s := e.sim
	s.AddOrganization("org", "Org")
	s.AddWorkspace("org", "ws1", "One")
	s.AddWorkspace("org", "ws2", "Two")
	s.AddProject(peakatest.Project{ID: "static", OrganizationID: "org", WorkspaceID: "ws1"})
	s.AddProject(peakatest.Project{ID: "found-a", OrganizationID: "org", WorkspaceID: "ws1"})
	s.AddProject(peakatest.Project{ID: "found-b", OrganizationID: "org", WorkspaceID: "ws2"})
	s.AddCache("static", peakatest.Cache{ID: "s1", TableName: "t"})
	s.AddCache("found-a", peakatest.Cache{ID: "a1", TableName: "t"})
	s.AddCache("found-a", peakatest.Cache{ID: "a2", TableName: "t"})
	s.AddCache("found-b", peakatest.Cache{ID: "b1", TableName: "t"})
	e.configure("  - id: static\n    caches:\n      ids: [s1]\ndiscover:\n  refresh: 1h\n  caches:\n    all: true\n")

	mux := http.NewServeMux()
	current := func() *config.Config { return e.cfg }
	mux.Handle("/probe", e.exp.ProbeHandler(current, 0))
	mux.Handle("/discovery", e.exp.DiscoveryHandler(current))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return e, srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDiscoveryListsAProbeTargetPerProject(t *testing.T) {
	e, srv := probeWorld(t)
	code, body := get(t, srv.URL+"/discovery")
	if code != http.StatusOK {
		t.Fatalf("/discovery: %d %s", code, body)
	}
	var groups []sdTargetGroup
	if err := json.Unmarshal([]byte(body), &groups); err != nil {
		t.Fatalf("/discovery is not HTTP SD JSON: %v\n%s", err, body)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	var projects []string
	for _, g := range groups {
		if len(g.Targets) != 1 || g.Targets[0] != host || g.Labels["__metrics_path__"] != "/probe" {
			t.Errorf("group %+v, want target %s and __metrics_path__ /probe", g, host)
		}
		projects = append(projects, g.Labels["__param_project"])
	}
	if strings.Join(projects, ",") != "static,found-a,found-b" {
		t.Errorf("projects %v, want static, found-a, found-b", projects)
	}

	// The walk is reused for discover.refresh, then done again.
	get(t, srv.URL+"/discovery")
	if n := e.sim.Requests(peakatest.RouteOrganizations); n != 1 {
		t.Errorf("organizations listed %d times within the refresh period, want 1", n)
	}
	e.sim.Advance(61 * time.Minute)
	get(t, srv.URL+"/discovery")
	if n := e.sim.Requests(peakatest.RouteOrganizations); n != 2 {
		t.Errorf("organizations listed %d times after the refresh period, want 2", n)
	}
}

func TestProbeScrapesOneProject(t *testing.T) {
	e, srv := probeWorld(t)
	code, body := get(t, srv.URL+"/probe?project=found-a")
	if code != http.StatusOK {
		t.Fatalf("/probe: %d %s", code, body)
	}
	for _, want := range []string{
		`peaka_cache_up{cache_id="a1",project_id="found-a"} 1`,
		`peaka_cache_up{cache_id="a2",project_id="found-a"} 1`,
		`peaka_project_up{project_id="found-a"} 1`,
		`peaka_cache_executions_total{cache_id="a1",execution="incremental",project_id="found-a",status="COMPLETED"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/probe?project=found-a lacks %q", want)
		}
	}
	for _, unwanted := range []string{`project_id="static"`, `project_id="found-b"`, "go_goroutines", "peaka_exporter_api_requests_total"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("/probe?project=found-a contains %q", unwanted)
		}
	}
	parse(t, body)

	code, body = get(t, srv.URL+"/probe?project=static")
	if code != http.StatusOK || !strings.Contains(body, `peaka_cache_up{cache_id="s1",project_id="static"} 1`) {
		t.Errorf("/probe of the configured project: %d\n%s", code, body)
	}
	// /metrics covers the configured project only, counters included: a
	// discovered project's series live on its /probe.
	_, text := e.scrape(t.Context())
	if strings.Contains(text, `project_id="found-a"`) {
		t.Error("/metrics shows a discovered project's series")
	}
	if code, body := get(t, srv.URL+"/probe?project=nope"); code != http.StatusNotFound || !strings.Contains(body, "unknown project") {
		t.Errorf("/probe of an unknown project: %d %s", code, body)
	}
	if code, _ := get(t, srv.URL+"/probe"); code != http.StatusBadRequest {
		t.Errorf("/probe without a project: %d, want 400", code)
	}
	if code, _ := get(t, srv.URL+"/probe?project="+strings.Repeat("x", 500)); code != http.StatusBadRequest {
		t.Errorf("/probe with a huge project: %d, want 400", code)
	}
}

func TestFailedDiscovery(t *testing.T) {
	e, srv := probeWorld(t)
	e.sim.AddProjectKey("project-scoped", "static", "u")
	// A Project key cannot list organizations.
	e.configure("  - id: static\n    api_key: project-scoped\n    caches:\n      ids: [s1]\ndiscover:\n  caches:\n    all: true\n", "api_key: project-scoped")
	code, body := get(t, srv.URL+"/discovery")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "discovering projects failed") {
		t.Errorf("/discovery with a project key: %d %s", code, body)
	}
	// The configured project can still be probed.
	if code, _ := get(t, srv.URL+"/probe?project=static"); code != http.StatusOK {
		t.Errorf("/probe of the configured project after a failed discovery: %d", code)
	}
	_, text := e.scrape(t.Context())
	if got := value(t, text, `peaka_target_failures_total{kind="discovery",reason="forbidden"}`); got == "0" {
		t.Errorf("failed discovery not counted")
	}
}
