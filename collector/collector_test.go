package collector

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// goldenWorld fills the simulation with one example of every case the
// exposition has to render.
func goldenWorld(s *peakatest.Sim) {
	s.AddProject(peakatest.Project{ID: "alpha", Name: "Alpha"})
	s.AddProject(peakatest.Project{ID: "beta", Name: "Beta"})
	add := func(project, id, table string) {
		s.AddCache(project, peakatest.Cache{ID: id, CatalogID: "367189801096446904", SchemaName: "public", TableName: table})
	}
	s.AddCache("alpha", peakatest.Cache{ID: "c-ok", CatalogID: "367189801096446904", SchemaName: "public", TableName: "orders",
		IncrementalEvery: 15 * time.Minute, FullRefreshEvery: 24 * time.Hour})
	add("alpha", "c-running", "customers")
	add("alpha", "c-failed", "payments")
	add("alpha", "c-new", "refunds")
	add("alpha", "c-odd", "we\"ird\\tab\nle\xff"+strings.Repeat("x", 200))
	add("alpha", "c-html", "invoices")
	add("alpha", "c-nulls", "events")
	add("beta", "b-1", "accounts")
	add("beta", "b-2", "contacts")

	s.RunExecution("alpha", "c-ok", peakatest.FullRefresh, "COMPLETED", peakatest.Records{Cached: 1000, Inserted: 1000})
	s.LogAction("alpha", "c-ok", "CACHE_STARTED", "INCREMENTAL", "started by owner@example.com", true)
	s.Advance(time.Minute)
	s.StartExecution("alpha", "c-ok", peakatest.Incremental)
	s.StartExecution("alpha", "c-running", peakatest.Incremental)
	s.Advance(30 * time.Second)
	s.FinishExecution("alpha", "c-ok", peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 1010, Inserted: 10, Updated: 3})
	s.LogAction("alpha", "c-ok", "CACHE_COMPLETED", "INCREMENTAL", "done", true)
	s.Progress("alpha", "c-running", peakatest.Incremental, peakatest.Records{Cached: 500, Inserted: 500})
	s.RunExecution("alpha", "c-failed", peakatest.FullRefresh, "FAILED", peakatest.Records{})
	s.RunExecution("alpha", "c-odd", peakatest.Incremental, "SKIPPED", peakatest.Records{Cached: 3})
	s.SetCacheStatus("alpha", "c-odd", "PAUSED")
	s.SetSchedule("alpha", "c-odd", peakatest.Incremental, "BASIC", "every day")
	s.SetSchedule("alpha", "c-odd", peakatest.FullRefresh, "BASIC", "PT1H30M")
	s.RunExecution("alpha", "c-nulls", peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 7, Inserted: 7})
	s.SetFault("c-nulls", peakatest.Fault{MissingFields: true})
	s.SetFault("c-html", peakatest.Fault{Status: http.StatusInternalServerError, HTML: true})
	s.RunExecution("beta", "b-1", peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 42, Inserted: 2})
	s.RunExecution("beta", "b-2", peakatest.FullRefresh, "CANCELLED", peakatest.Records{})

	now := s.Now()
	export := func(id string, created time.Duration, mod func(*peakatest.Export)) {
		e := peakatest.Export{
			ID: id, Format: "JSONL", Compression: "NONE", QueryID: "709922802836177297",
			Source: `peaka.query."charges_view"`, UserID: ownerID, UserName: "owner@example.com",
			APIKeyPrefix: "hBWIQxjc", ClientSource: "peaka-studio", Rows: 993, Bytes: 3706920, Files: 2,
			CreatedAt: now.Add(-created), RunFor: 1055 * time.Millisecond,
		}
		if mod != nil {
			mod(&e)
		}
		s.AddExport("alpha", e)
	}
	export("e-ok", 2*time.Hour, nil)
	export("e-failed", time.Hour, func(e *peakatest.Export) { e.Fail = "Query exceeded the 1,000,000 row export limit" })
	export("e-listed", 30*time.Minute, func(e *peakatest.Export) {
		e.UserID, e.QueryID, e.Format, e.Compression = "someone-else", "", "CSV", "GZIP"
		e.CatalogID, e.SchemaName, e.TableName, e.Source = "367189801096446904", "payment", "charges", `peaka.payment."charges"`
	})
	export("e-old", 48*time.Hour, nil)
}

const goldenProjects = `  - id: alpha
    caches:
      ids: [c-ok, c-running, c-failed, c-new, c-odd, c-missing, c-html, c-nulls]
    exports:
      ids: [e-ok, e-failed]
      recent: 24h
  - id: beta
    caches:
      all: true
      action_logs: false
`

func TestGoldenExposition(t *testing.T) {
	e := newEnv(t)
	goldenWorld(e.sim)
	e.configure(goldenProjects)
	_, got := e.scrape(context.Background())
	golden(t, "golden.prom", deterministic(got))

	for _, secret := range []string{partnerKey, "owner@example.com", "X-Amz-Signature", "storage.example"} {
		if strings.Contains(got, secret) {
			t.Errorf("exposition contains %q", secret)
		}
	}
}

// TestExpositionIsValid runs client_golang's linter and, where installed,
// promtool on the real output of a scrape with odd label values.
func TestExpositionIsValid(t *testing.T) {
	e := newEnv(t)
	goldenWorld(e.sim)
	e.configure(goldenProjects)
	_, text := e.scrape(context.Background())

	mfs := parse(t, text)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if len(mfs) < 20 {
		t.Errorf("only %d metric families: %v", len(mfs), familyNames(mfs))
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not on PATH; CI installs Debian's prometheus package")
		}
		t.Skip("promtool not on PATH (apt-get install prometheus); skipping promtool check metrics")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestCountersCountEachFinishedExecutionOnce(t *testing.T) {
	e := newEnv(t)
	s := e.sim
	s.AddProject(peakatest.Project{ID: "p"})
	s.AddCache("p", peakatest.Cache{ID: "done-before", TableName: "a"})
	s.AddCache("p", peakatest.Cache{ID: "running-before", TableName: "b"})
	s.RunExecution("p", "done-before", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 100})
	s.StartExecution("p", "running-before", peakatest.Incremental)
	e.configure("  - id: p\n    caches:\n      ids: [done-before, running-before]\n")

	series := func(cache, execution, status string) string {
		return fmt.Sprintf(`peaka_cache_executions_total{cache_id=%q,execution=%q,project_id="p",status=%q}`, cache, execution, status)
	}
	records := func(cache, execution, kind string) string {
		return fmt.Sprintf(`peaka_cache_records_total{cache_id=%q,execution=%q,kind=%q,project_id="p"}`, cache, execution, kind)
	}

	// First sight: the past is not counted, but the series exist at 0.
	_, text := e.scrape(context.Background())
	for _, c := range []string{"done-before", "running-before"} {
		for _, x := range []string{"incremental", "full_refresh"} {
			for _, st := range []string{"COMPLETED", "FAILED", "CANCELLED"} {
				if v := value(t, text, series(c, x, st)); v != "0" {
					t.Errorf("%s = %s on first sight, want 0", series(c, x, st), v)
				}
			}
			if v := value(t, text, records(c, x, "inserted")); v != "0" {
				t.Errorf("%s = %s on first sight, want 0", records(c, x, "inserted"), v)
			}
		}
	}

	// The running execution finishes; a new one finishes on the other cache.
	s.Advance(time.Minute)
	s.FinishExecution("p", "running-before", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 5, Updated: 2, Deleted: 1})
	s.RunExecution("p", "done-before", peakatest.Incremental, "FAILED", peakatest.Records{Inserted: 3})
	e.scrape(context.Background())
	// Scraping again without change must not count again.
	_, text = e.scrape(context.Background())
	want := map[string]string{
		series("running-before", "incremental", "COMPLETED"): "1",
		series("done-before", "incremental", "COMPLETED"):    "0",
		series("done-before", "incremental", "FAILED"):       "1",
		records("running-before", "incremental", "inserted"): "5",
		records("running-before", "incremental", "updated"):  "2",
		records("running-before", "incremental", "deleted"):  "1",
		records("done-before", "incremental", "inserted"):    "3",
		records("done-before", "full_refresh", "inserted"):   "0",
	}
	for s, v := range want {
		if got := value(t, text, s); got != v {
			t.Errorf("%s = %s, want %s", s, got, v)
		}
	}
}

func TestConcurrentScrapersDoNotDoubleCount(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	e.configure("  - id: p\n    caches:\n      ids: [c]\n")
	e.scrape(context.Background())

	const rounds, scrapers = 10, 4
	for range rounds {
		e.sim.Advance(time.Minute)
		e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 10})
		var wg sync.WaitGroup
		for range scrapers {
			wg.Go(func() { e.exp.Scrape(context.Background(), e.cfg) })
		}
		wg.Wait()
	}
	_, text := e.scrape(context.Background())
	if got := value(t, text, `peaka_cache_executions_total{cache_id="c",execution="incremental",project_id="p",status="COMPLETED"}`); got != fmt.Sprint(rounds) {
		t.Errorf("executions = %s, want %d", got, rounds)
	}
	if got := value(t, text, `peaka_cache_records_total{cache_id="c",execution="incremental",kind="inserted",project_id="p"}`); got != fmt.Sprint(rounds*10) {
		t.Errorf("inserted records = %s, want %d", got, rounds*10)
	}
}

func TestDeadlineReportsUnfinishedTargetsAsFailed(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	for _, id := range []string{"fast", "slow"} {
		e.sim.AddCache("p", peakatest.Cache{ID: id, TableName: id})
	}
	e.sim.SetFault("slow", peakatest.Fault{Delay: time.Hour})
	e.configure("  - id: p\n    caches:\n      ids: [fast, slow]\n")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, text := e.scrape(ctx)
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Fatalf("scrape took %v despite its deadline", elapsed)
	}
	checks := map[string]string{
		`peaka_cache_up{cache_id="fast",project_id="p"}`:                  "1",
		`peaka_cache_up{cache_id="slow",project_id="p"}`:                  "0",
		`peaka_target_failures_total{kind="cache",reason="timeout"}`:      "1",
		`peaka_target_failures_total{kind="cache",reason="server_error"}`: "0",
		`peaka_project_up{project_id="p"}`:                                "1",
	}
	for s, v := range checks {
		if got := value(t, text, s); got != v {
			t.Errorf("%s = %s, want %s", s, got, v)
		}
	}
}

func TestFailuresByReason(t *testing.T) {
	e := newEnv(t)
	s := e.sim
	s.AddProject(peakatest.Project{ID: "p"})
	s.AddProject(peakatest.Project{ID: "other"})
	s.AddProjectKey("project-key-of-other", "other", "u2")
	cases := map[string]peakatest.Fault{
		"c-429":       {Status: http.StatusTooManyRequests, RetryAfter: "1"},
		"c-503":       {Status: http.StatusServiceUnavailable},
		"c-malformed": {Malformed: true},
		"c-shape":     {WrongShape: true},
	}
	for id, f := range cases {
		s.AddCache("p", peakatest.Cache{ID: id, TableName: id})
		s.SetFault(id, f)
	}
	s.AddCache("p", peakatest.Cache{ID: "c-good", TableName: "good"})
	s.AddCache("other", peakatest.Cache{ID: "c-x", TableName: "x"})
	e.configure(`  - id: p
    caches:
      ids: [c-429, c-503, c-malformed, c-shape, c-gone, c-good]
  - id: other
    api_key: wrong-key
    caches:
      ids: [c-x]
  - id: p-forbidden
    api_key: project-key-of-other
    caches:
      ids: [c-y]
`)
	_, text := e.scrape(context.Background())
	want := map[string]string{
		`peaka_target_failures_total{kind="cache",reason="rate_limited"}`: "1",
		`peaka_target_failures_total{kind="cache",reason="server_error"}`: "1",
		`peaka_target_failures_total{kind="cache",reason="bad_response"}`: "2",
		`peaka_target_failures_total{kind="cache",reason="not_found"}`:    "1",
		`peaka_target_failures_total{kind="cache",reason="unauthorized"}`: "1",
		`peaka_target_failures_total{kind="cache",reason="forbidden"}`:    "1",
		`peaka_cache_up{cache_id="c-good",project_id="p"}`:                "1",
		`peaka_cache_up{cache_id="c-gone",project_id="p"}`:                "0",
		`peaka_cache_up{cache_id="c-x",project_id="other"}`:               "0",
		`peaka_project_up{project_id="p"}`:                                "1",
		`peaka_project_up{project_id="other"}`:                            "0",
		`peaka_project_up{project_id="p-forbidden"}`:                      "0",
		`peaka_scrape_targets{kind="cache"}`:                              "8",
	}
	for s, v := range want {
		if got := value(t, text, s); got != v {
			t.Errorf("%s = %s, want %s", s, got, v)
		}
	}
	// Tried three times: a 429 is retried (after its Retry-After of 1s).
	if got := value(t, text, `peaka_exporter_api_requests_total{code="429",endpoint="/data/projects/{projectId}/cache/{cacheId}/status"}`); got != "3" {
		t.Errorf("429 requests = %s, want 3", got)
	}
}

func TestListCallServesAllAndNamedCaches(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	for _, id := range []string{"a", "b", "c"} {
		e.sim.AddCache("p", peakatest.Cache{ID: id, TableName: id})
	}
	e.configure("  - id: p\n    caches:\n      all: true\n      ids: [b, missing]\n")
	_, text := e.scrape(context.Background())

	if n := e.sim.Requests("GET /data/projects/{projectId}/cache/status"); n != 1 {
		t.Errorf("list calls = %d, want 1", n)
	}
	if n := e.sim.Requests("GET /data/projects/{projectId}/cache/{cacheId}/status"); n != 0 {
		t.Errorf("per-cache calls = %d, want 0", n)
	}
	for id, up := range map[string]string{"a": "1", "b": "1", "c": "1", "missing": "0"} {
		if got := value(t, text, fmt.Sprintf(`peaka_cache_up{cache_id=%q,project_id="p"}`, id)); got != up {
			t.Errorf("cache %s up = %s, want %s", id, got, up)
		}
	}
	if got := value(t, text, `peaka_target_failures_total{kind="cache",reason="not_found"}`); got != "1" {
		t.Errorf("not_found failures = %s, want 1", got)
	}

	// When the list call fails, every cache seen before is reported down,
	// and the failure is counted once, on the list.
	e.sim.SetFault("p", peakatest.Fault{Status: http.StatusInternalServerError, HTML: true})
	_, text = e.scrape(context.Background())
	for _, id := range []string{"a", "b", "c", "missing"} {
		if got := value(t, text, fmt.Sprintf(`peaka_cache_up{cache_id=%q,project_id="p"}`, id)); got != "0" {
			t.Errorf("cache %s up = %s after a failed list call, want 0", id, got)
		}
	}
	if got := value(t, text, `peaka_target_failures_total{kind="cache_list",reason="server_error"}`); got != "1" {
		t.Errorf("cache_list server_error failures = %s, want 1", got)
	}
	if got := value(t, text, `peaka_project_up{project_id="p"}`); got != "0" {
		t.Errorf("project up = %s, want 0", got)
	}
}

func TestRecentExportsPageThroughTheWindow(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	now := e.sim.Now()
	// 450 exports a minute apart (7.5 hours), and 10 older than the window.
	for i := range 460 {
		age := time.Duration(i) * time.Minute
		if i >= 450 {
			age = 25*time.Hour + time.Duration(i)*time.Minute
		}
		e.sim.AddExport("p", peakatest.Export{ID: fmt.Sprintf("x-%03d", i), Format: "CSV", Rows: int64(i), CreatedAt: now.Add(-age)})
	}
	e.configure("  - id: p\n    exports:\n      recent: 24h\n")
	_, text := e.scrape(context.Background())
	if got := value(t, text, `peaka_scrape_targets{kind="export"}`); got != "450" {
		t.Errorf("export targets = %s, want 450", got)
	}
	if n := e.sim.Requests("GET /data/projects/{projectId}/exports"); n != 3 {
		t.Errorf("list pages = %d, want 3", n)
	}
	value(t, text, `peaka_export_rows{export_id="x-449",project_id="p"}`)
	absent(t, text, `peaka_export_up{export_id="x-450"`)
	absent(t, text, `peaka_export_files{`) // list items carry no files
}

func TestFailedTargetIsLoggedOnceWithoutSecrets(t *testing.T) {
	var buf bytes.Buffer
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	exp, err := New(reg, Options{Logger: log.NewLogfmtLogger(log.NewSyncWriter(&buf)), Now: e.sim.Now, PerCacheCalls: true})
	if err != nil {
		t.Fatal(err)
	}
	e.exp, e.reg = exp, reg
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddExport("p", peakatest.Export{ID: "x", UserID: ownerID, UserName: "owner@example.com", Files: 1})
	e.sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	e.sim.SetFault("c", peakatest.Fault{Status: http.StatusUnauthorized})
	e.configure("  - id: p\n    caches:\n      ids: [c, missing]\n    exports:\n      ids: [x]\n")
	e.scrape(context.Background())

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines (one per failed target), got %d:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"cache_id=c ", "cache_id=missing "} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
	for _, l := range lines {
		for _, want := range []string{"level=warn", "project_id=p", "reason="} {
			if !strings.Contains(l, want) {
				t.Errorf("log line lacks %q: %s", want, l)
			}
		}
	}
	for _, secret := range []string{partnerKey, "owner@example.com", "X-Amz-Signature"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

func TestScrapeTimeout(t *testing.T) {
	for _, tc := range []struct {
		header  string
		want    time.Duration
		wantErr bool
	}{
		{"", 10 * time.Second, false},
		{"5", 4500 * time.Millisecond, false},
		{"30", 10 * time.Second, false},
		{"0.3", 300 * time.Millisecond, false},
		{"abc", 0, true},
		{"-1", 0, true},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("X-Prometheus-Scrape-Timeout-Seconds", tc.header)
		}
		got, err := ScrapeTimeout(h, 10*time.Second, 500*time.Millisecond)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("header %q: got %v, %v; want %v, error %v", tc.header, got, err, tc.want, tc.wantErr)
		}
	}
}
