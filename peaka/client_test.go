package peaka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/peakacom/peaka_exporter/peaka"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

const key = "pk-test-abcdef0123456789"

// fastRetry keeps the default number of attempts but waits only
// milliseconds, and no Retry-After longer than a second.
var fastRetry = peaka.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxRetryAfter: time.Second}

func setup(t *testing.T, opts ...func(*peaka.Options)) (*peakatest.Sim, *peaka.Client) {
	t.Helper()
	sim := peakatest.New(peakatest.Options{Seed: 3})
	sim.AddPartnerKey(key, "owner")
	sim.AddProject(peakatest.Project{ID: "p"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close) // runs first: releases requests held by Delay faults
	u, _ := url.Parse(srv.URL)
	o := peaka.Options{BaseURL: u, MaxConcurrency: 4, Retry: fastRetry}
	for _, f := range opts {
		f(&o)
	}
	c, err := peaka.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c.WithKey(key)
}

func TestCacheStatusDecodesEveryField(t *testing.T) {
	sim, c := setup(t)
	sim.AddCache("p", peakatest.Cache{ID: "c", CatalogID: "cat", SchemaName: "sch", TableName: "tbl"})
	sim.RunExecution("p", "c", peakatest.FullRefresh, "COMPLETED", peakatest.Records{Cached: 10, Inserted: 10})
	sim.Advance(time.Minute)
	id := sim.StartExecution("p", "c", peakatest.Incremental)
	sim.Advance(20 * time.Second)
	sim.Progress("p", "c", peakatest.Incremental, peakatest.Records{Cached: 12, Inserted: 2, Updated: 1})
	sim.LogAction("p", "c", "CACHE_STARTED", "INCREMENTAL", "m", true)

	s, err := c.CacheStatus(context.Background(), "p", "c", false)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "c" || s.CatalogID != "cat" || s.SchemaName != "sch" || s.TableName != "tbl" || s.ProjectID != "p" {
		t.Errorf("identity fields: %+v", s)
	}
	if s.Status != "RUNNING" {
		t.Errorf("status %q, want RUNNING", s.Status)
	}
	inc := s.LastIncrementalCacheExecution
	if inc == nil || inc.ID != id || inc.Status != "RUNNING" || inc.Finished() {
		t.Fatalf("incremental execution: %+v", inc)
	}
	if inc.Progress == nil || inc.Progress.NumberOfUpdatedRecords == nil || *inc.Progress.NumberOfUpdatedRecords != 1 {
		t.Errorf("progress: %+v", inc.Progress)
	}
	if got := inc.UpdatedAt.Sub(inc.CreatedAt.Time); got != 20*time.Second {
		t.Errorf("updatedAt - createdAt = %v, want 20s", got)
	}
	full := s.LastFullRefreshCacheExecution
	if full == nil || full.Status != "COMPLETED" || !full.Finished() || full.FinishedAt.IsZero() || full.HasError() {
		t.Errorf("full refresh execution: %+v", full)
	}
	if len(s.CacheActionLogs) == 0 || s.CacheActionLogs[len(s.CacheActionLogs)-1].Timestamp.IsZero() {
		t.Errorf("action logs: %+v", s.CacheActionLogs)
	}

	s, err = c.CacheStatus(context.Background(), "p", "c", true)
	if err != nil {
		t.Fatal(err)
	}
	if s.CacheActionLogs != nil {
		t.Errorf("excludeLogs=true still returned %d logs", len(s.CacheActionLogs))
	}
}

func TestErrorsAreClassified(t *testing.T) {
	for _, tc := range []struct {
		fault  peakatest.Fault
		reason peaka.Reason
		code   int
	}{
		{peakatest.Fault{Status: 401}, peaka.ReasonUnauthorized, 401},
		{peakatest.Fault{Status: 403}, peaka.ReasonForbidden, 403},
		{peakatest.Fault{Status: 404}, peaka.ReasonNotFound, 404},
		{peakatest.Fault{Status: 429, RetryAfter: "7"}, peaka.ReasonRateLimited, 429},
		{peakatest.Fault{Status: 429}, peaka.ReasonRateLimited, 429},
		{peakatest.Fault{Status: 500, HTML: true}, peaka.ReasonServerError, 500},
		{peakatest.Fault{Status: 503}, peaka.ReasonServerError, 503},
		{peakatest.Fault{Status: 400}, peaka.ReasonBadResponse, 400},
		{peakatest.Fault{Malformed: true}, peaka.ReasonBadResponse, 200},
		{peakatest.Fault{WrongShape: true}, peaka.ReasonBadResponse, 200},
	} {
		t.Run(fmt.Sprintf("%+v", tc.fault), func(t *testing.T) {
			sim, c := setup(t)
			sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
			sim.SetFault("c", tc.fault)
			_, err := c.CacheStatus(context.Background(), "p", "c", false)
			var e *peaka.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *peaka.Error", err, err)
			}
			if e.Reason != tc.reason || e.StatusCode != tc.code || peaka.ReasonOf(err) != tc.reason {
				t.Errorf("reason %s code %d, want %s %d (%v)", e.Reason, e.StatusCode, tc.reason, tc.code, err)
			}
			if e.RetryAfter != tc.fault.RetryAfter {
				t.Errorf("Retry-After %q, want %q", e.RetryAfter, tc.fault.RetryAfter)
			}
			msg := err.Error()
			if !strings.Contains(msg, peaka.EndpointCacheStatus) || !strings.Contains(msg, "cache c") {
				t.Errorf("message does not name the call and the cache: %s", msg)
			}
			if strings.Contains(msg, key) || strings.Contains(msg, "<html") || strings.Contains(msg, "\n") {
				t.Errorf("message leaks the key, HTML or newlines: %q", msg)
			}
		})
	}
}

func TestBadKey(t *testing.T) {
	sim, c := setup(t)
	sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	_, err := c.WithKey("wrong").CacheStatus(context.Background(), "p", "c", false)
	if peaka.ReasonOf(err) != peaka.ReasonUnauthorized {
		t.Errorf("wrong key: %v, want unauthorized", err)
	}
	sim.AddProject(peakatest.Project{ID: "q"})
	sim.AddProjectKey("project-q-key", "q", "u")
	_, err = c.WithKey("project-q-key").CacheStatus(context.Background(), "p", "c", false)
	if peaka.ReasonOf(err) != peaka.ReasonForbidden {
		t.Errorf("project key outside its project: %v, want forbidden", err)
	}
}

func TestOddButValidAnswers(t *testing.T) {
	sim, c := setup(t)
	sim.AddCache("p", peakatest.Cache{ID: "nulls", TableName: "t"})
	sim.AddCache("p", peakatest.Cache{ID: "big", TableName: "t"})
	sim.AddCache("p", peakatest.Cache{ID: "odd", TableName: "t"})
	for _, id := range []string{"nulls", "big", "odd"} {
		sim.RunExecution("p", id, peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 1, Inserted: 1})
	}
	sim.SetFault("nulls", peakatest.Fault{MissingFields: true})
	sim.SetFault("big", peakatest.Fault{BigNumbers: true})
	sim.SetFault("odd", peakatest.Fault{UnknownStatus: "PAUSED_BY_ADMIN"})
	ctx := context.Background()

	s, err := c.CacheStatus(ctx, "p", "nulls", false)
	if err != nil {
		t.Fatalf("missing fields: %v", err)
	}
	if x := s.LastIncrementalCacheExecution; x != nil && x.Progress != nil && x.Progress.NumberOfCachedRecords != nil && !x.CreatedAt.IsZero() {
		t.Errorf("missing-fields answer decoded as complete: %+v", x)
	}

	s, err = c.CacheStatus(ctx, "p", "big", false)
	if err != nil {
		t.Fatalf("big numbers: %v", err)
	}
	if p := s.LastIncrementalCacheExecution.Progress; p == nil || p.NumberOfCachedRecords == nil || *p.NumberOfCachedRecords <= 1<<31 {
		t.Errorf("counter beyond int32 not kept: %+v", p)
	}

	s, err = c.CacheStatus(ctx, "p", "odd", false)
	if err != nil {
		t.Fatalf("unknown status: %v", err)
	}
	if s.Status != "PAUSED_BY_ADMIN" {
		t.Errorf("status %q, want the undocumented value kept", s.Status)
	}
}

func TestHugeAnswerIsCut(t *testing.T) {
	sim, c := setup(t, func(o *peaka.Options) { o.MaxResponseBytes = 256 << 10 })
	sim.AddCache("p", peakatest.Cache{ID: "huge", TableName: "t"})
	sim.SetFault("huge", peakatest.Fault{HugeBytes: 4 << 20})
	_, err := c.CacheStatus(context.Background(), "p", "huge", false)
	if peaka.ReasonOf(err) != peaka.ReasonBadResponse || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge answer: %v, want bad_response naming the limit", err)
	}
}

func TestSlowAndEndlessAnswersStopAtTheDeadline(t *testing.T) {
	for name, f := range map[string]peakatest.Fault{
		"slow":      {Delay: time.Hour},
		"neverends": {NeverEnds: true},
	} {
		t.Run(name, func(t *testing.T) {
			sim, c := setup(t)
			sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
			sim.SetFault("c", f)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := c.CacheStatus(ctx, "p", "c", false)
			if peaka.ReasonOf(err) != peaka.ReasonTimeout {
				t.Errorf("%v, want timeout", err)
			}
		})
	}
}

func TestExportReadAndFiles(t *testing.T) {
	sim, c := setup(t)
	now := sim.Now()
	sim.AddExport("p", peakatest.Export{ID: "mine", UserID: "owner", UserName: "owner@example.com", Rows: 993, Bytes: 3706920, Files: 2, CreatedAt: now.Add(-time.Hour), RunFor: 1055 * time.Millisecond, Format: "JSONL"})
	sim.AddExport("p", peakatest.Export{ID: "theirs", UserID: "other", Files: 2, CreatedAt: now.Add(-time.Hour)})
	sim.AddExport("p", peakatest.Export{ID: "failed", CreatedAt: now.Add(-time.Hour), Fail: "row limit"})

	e, err := c.Export(context.Background(), "p", "mine")
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != "SUCCEEDED" || e.RowCount == nil || *e.RowCount != 993 || e.Bytes == nil || *e.Bytes != 3706920 ||
		e.DurationMs == nil || len(e.Files) != 2 || e.Files[0].Bytes == nil || e.Downloadable == nil || !*e.Downloadable || e.Format != "JSONL" {
		t.Errorf("owner's export: %+v", e)
	}
	e, err = c.Export(context.Background(), "p", "theirs")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Files) != 0 || (e.Downloadable != nil && *e.Downloadable) {
		t.Errorf("someone else's export has files or is downloadable: %+v", e)
	}
	e, err = c.Export(context.Background(), "p", "failed")
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != "FAILED" || e.Error == "" {
		t.Errorf("failed export: status %q error %q", e.Status, e.Error)
	}
	if _, err := c.Export(context.Background(), "p", "nope"); peaka.ReasonOf(err) != peaka.ReasonNotFound {
		t.Errorf("unknown export: %v, want not_found", err)
	}
}

func TestRecentExportsPagingKeepsTiesAcrossPages(t *testing.T) {
	sim, c := setup(t)
	now := sim.Now()
	// 199 exports a second apart, then three sharing one timestamp right
	// at the page boundary, then 100 more, then some outside the window.
	n := 0
	add := func(created time.Time) {
		sim.AddExport("p", peakatest.Export{ID: fmt.Sprintf("x-%03d", n), CreatedAt: created})
		n++
	}
	for i := range 199 {
		add(now.Add(-time.Duration(i) * time.Second))
	}
	tie := now.Add(-199 * time.Second)
	for range 3 {
		add(tie)
	}
	for i := range 100 {
		add(tie.Add(-time.Duration(i+1) * time.Second))
	}
	for i := range 5 {
		add(now.Add(-48*time.Hour - time.Duration(i)*time.Second))
	}

	got, truncated, err := c.RecentExports(context.Background(), "p", now.Add(-24*time.Hour), 0)
	if err != nil || truncated {
		t.Fatalf("err %v truncated %v", err, truncated)
	}
	if len(got) != 302 {
		t.Errorf("got %d exports, want 302", len(got))
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Errorf("duplicate %s", e.ID)
		}
		seen[e.ID] = true
	}
	for i := range 302 {
		if id := fmt.Sprintf("x-%03d", i); !seen[id] {
			t.Errorf("missing %s", id)
		}
	}
	if r := sim.Requests("GET " + peaka.EndpointListExports); r != 2 {
		t.Errorf("%d list requests, want 2", r)
	}

	// A page limit cuts the walk short and says so.
	_, truncated, err = c.RecentExports(context.Background(), "p", now.Add(-24*time.Hour), 1)
	if err != nil || !truncated {
		t.Errorf("one page: err %v truncated %v, want truncated", err, truncated)
	}
}

func TestRequestMetrics(t *testing.T) {
	m := peaka.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	sim, c := setup(t, func(o *peaka.Options) { o.Metrics = m })
	sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	ctx := context.Background()
	for range 3 {
		if _, err := c.CacheStatus(ctx, "p", "c", true); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.CacheStatus(ctx, "p", "missing", true)
	want := `
# HELP peaka_exporter_api_requests_total Requests made to the Peaka API, by route template and HTTP status code. Requests that got no answer are not counted here but in peaka_target_failures_total.
# TYPE peaka_exporter_api_requests_total counter
peaka_exporter_api_requests_total{code="200",endpoint="/data/projects/{projectId}/cache/{cacheId}/status"} 3
peaka_exporter_api_requests_total{code="404",endpoint="/data/projects/{projectId}/cache/{cacheId}/status"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "peaka_exporter_api_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m, "peaka_exporter_api_request_duration_seconds"); n != 1 {
		t.Errorf("%d duration series, want 1 (one endpoint)", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP peaka_exporter_api_requests_in_flight Requests to the Peaka API currently waiting for an answer.
# TYPE peaka_exporter_api_requests_in_flight gauge
peaka_exporter_api_requests_in_flight 0
`), "peaka_exporter_api_requests_in_flight"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// A request is in flight until its answer headers arrive; one that got no
// answer is neither counted nor timed, and leaves the flight.
func TestRequestMetricsInFlightAndUnanswered(t *testing.T) {
	m := peaka.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","status":"COMPLETED"}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(o *peaka.Options) { o.Metrics = m; o.Retry.MaxAttempts = 1 })
	done := make(chan error, 1)
	go func() {
		_, err := c.Export(context.Background(), "p", "x")
		done <- err
	}()
	metric := func(name string) *dto.Metric {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0]
			}
		}
		t.Fatalf("no %s", name)
		return nil
	}
	inFlight := func() float64 { return metric("peaka_exporter_api_requests_in_flight").GetGauge().GetValue() }
	for i := 0; inFlight() != 1; i++ {
		if i == 500 {
			t.Fatal("the request never showed in flight")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := c.Export(context.Background(), "p", "x"); err == nil {
		t.Fatal("a closed server answered")
	}
	if got := inFlight(); got != 0 {
		t.Errorf("in flight %v after both requests ended, want 0", got)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP peaka_exporter_api_requests_total Requests made to the Peaka API, by route template and HTTP status code. Requests that got no answer are not counted here but in peaka_target_failures_total.
# TYPE peaka_exporter_api_requests_total counter
peaka_exporter_api_requests_total{code="200",endpoint="/data/projects/{projectId}/exports/{exportId}"} 1
`), "peaka_exporter_api_requests_total"); err != nil {
		t.Error(err)
	}
	if n := metric("peaka_exporter_api_request_duration_seconds").GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("%d requests timed, want 1 (the answered one)", n)
	}
}

func TestTimeDecoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{`"2023-11-07T05:31:56Z"`, time.Date(2023, 11, 7, 5, 31, 56, 0, time.UTC), false},
		{`"2026-06-10T15:23:26.893985Z"`, time.Date(2026, 6, 10, 15, 23, 26, 893985000, time.UTC), false},
		{`"2026-06-10T17:23:26+02:00"`, time.Date(2026, 6, 10, 15, 23, 26, 0, time.UTC), false},
		{`"2026-06-10T15:23:26.5"`, time.Date(2026, 6, 10, 15, 23, 26, 5e8, time.UTC), false},
		{`null`, time.Time{}, false},
		{`""`, time.Time{}, false},
		{`"yesterday"`, time.Time{}, true},
		{`12`, time.Time{}, true},
	} {
		var v peaka.Time
		err := v.UnmarshalJSON([]byte(tc.in))
		if (err != nil) != tc.err || !v.Time.Equal(tc.want) {
			t.Errorf("%s: got %v, %v; want %v, error %v", tc.in, v.Time, err, tc.want, tc.err)
		}
	}
}

func TestExecutionHasError(t *testing.T) {
	for in, want := range map[string]bool{``: false, `null`: false, `{}`: false, `{ }`: false, `{"message":"boom"}`: true, `"boom"`: true} {
		x := peaka.Execution{Error: []byte(in)}
		if got := x.HasError(); got != want {
			t.Errorf("error %q: HasError %v, want %v", in, got, want)
		}
	}
}

// The transport must keep connections alive: a burst of sequential calls
// opens one connection, not one per call.
func TestConnectionsAreReused(t *testing.T) {
	sim := peakatest.New(peakatest.Options{})
	sim.AddPartnerKey(key, "owner")
	sim.AddProject(peakatest.Project{ID: "p"})
	sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	srv := httptest.NewUnstartedServer(sim)
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c, _ := peaka.New(peaka.Options{BaseURL: u, MaxConcurrency: 2})
	for range 20 {
		if _, err := c.WithKey(key).CacheStatus(context.Background(), "p", "c", true); err != nil {
			t.Fatal(err)
		}
	}
	srv.Close()
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential calls opened %d connections, want 1", n)
	}
}

// An error body that echoes the key across the point where the message is
// shortened must not leave a piece of the key behind.
func TestEchoedKeyIsRemovedBeforeTheMessageIsCut(t *testing.T) {
	for _, pad := range []int{0, 150, 191, 199, 240} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"message":"%s %s rejected"}`, strings.Repeat("x", pad), key)
		}))
		u, _ := url.Parse(srv.URL)
		c, _ := peaka.New(peaka.Options{BaseURL: u})
		_, err := c.WithKey(key).CacheStatus(context.Background(), "p", "c", false)
		srv.Close()
		if err == nil {
			t.Fatal("a 401 succeeded")
		}
		for n := 6; n <= len(key); n++ {
			if strings.Contains(err.Error(), key[:n]) {
				t.Errorf("padding %d: the error keeps %q of the key: %s", pad, key[:n], err)
				break
			}
		}
	}
}
