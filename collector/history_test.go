package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

const (
	routeHistory  = "GET /data/projects/{projectId}/cache/{cacheId}/executionHistory"
	routeSettings = "GET /data/projects/{projectId}/cache/{cacheId}"
)

func execSeries(cache, execution, status string) string {
	return fmt.Sprintf(`peaka_cache_executions_total{cache_id=%q,execution=%q,project_id="p",status=%q}`, cache, execution, status)
}

func recordSeries(cache, execution, kind string) string {
	return fmt.Sprintf(`peaka_cache_records_total{cache_id=%q,execution=%q,kind=%q,project_id="p"}`, cache, execution, kind)
}

func gapSeries(cache string) string {
	return fmt.Sprintf(`peaka_cache_history_gaps_total{cache_id=%q,project_id="p"}`, cache)
}

func expectValues(t *testing.T, text string, want map[string]string) {
	t.Helper()
	for s, v := range want {
		if got := value(t, text, s); got != v {
			t.Errorf("%s = %s, want %s", s, got, v)
		}
	}
}

// oneCache sets up project p with cache c, already seen once by the
// exporter (so that its counters start from there).
func oneCache(t *testing.T, o Options) *env {
	e := newEnv(t)
	e.withOptions(o)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 1000})
	e.configure("  - id: p\n    caches:\n      ids: [c]\n")
	e.scrape(context.Background())
	return e
}

func TestSevenRunsBetweenScrapesAreCountedExactly(t *testing.T) {
	e := oneCache(t, Options{HistoryPageSize: 5})
	runs := []struct {
		kind   peakatest.Kind
		status string
		rec    peakatest.Records
	}{
		{peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 10, Updated: 1}},
		{peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 20, Updated: 2}},
		{peakatest.Incremental, "FAILED", peakatest.Records{}},
		{peakatest.FullRefresh, "COMPLETED", peakatest.Records{Cached: 5000, Inserted: 5000}},
		{peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 30, Updated: 3, Deleted: 4}},
		{peakatest.Incremental, "CANCELLED", peakatest.Records{Inserted: 5}},
		{peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 40}},
	}
	for _, r := range runs {
		e.sim.Advance(time.Minute)
		e.sim.RunExecution("p", "c", r.kind, r.status, r.rec)
	}
	e.sim.ResetRequests()
	_, text := e.scrape(context.Background())

	expectValues(t, text, map[string]string{
		execSeries("c", "incremental", "COMPLETED"):   "4",
		execSeries("c", "incremental", "FAILED"):      "1",
		execSeries("c", "incremental", "CANCELLED"):   "1",
		execSeries("c", "full_refresh", "COMPLETED"):  "1",
		recordSeries("c", "incremental", "inserted"):  "105",
		recordSeries("c", "incremental", "updated"):   "6",
		recordSeries("c", "incremental", "deleted"):   "4",
		recordSeries("c", "full_refresh", "inserted"): "5000",
		gapSeries("c"): "0",
	})
	// Seven new runs and the one known before: two pages of five.
	if n := e.sim.Requests(routeHistory); n != 2 {
		t.Errorf("history requests = %d, want 2 (paging across two pages)", n)
	}

	// Nothing changed: no history call, no count.
	e.sim.ResetRequests()
	_, text = e.scrape(context.Background())
	if n := e.sim.Requests(routeHistory); n != 0 {
		t.Errorf("history requests without change = %d, want 0", n)
	}
	expectValues(t, text, map[string]string{execSeries("c", "incremental", "COMPLETED"): "4"})
}

func TestHistoryBacklogIsPickedUpAtTheNextScrape(t *testing.T) {
	// One page of two per scrape: 9 runs need several scrapes, and more
	// runs arrive meanwhile.
	e := oneCache(t, Options{HistoryPageSize: 2, MaxHistoryPages: 1})
	total := 0
	for range 9 {
		e.sim.Advance(time.Minute)
		e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 1})
		total++
	}
	var text string
	for i := range 10 {
		if i < 3 {
			e.sim.Advance(time.Minute)
			e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 1})
			total++
		}
		e.sim.ResetRequests()
		_, text = e.scrape(context.Background())
		if n := e.sim.Requests(routeHistory); n > 1 {
			t.Fatalf("scrape %d made %d history requests, the bound is 1", i, n)
		}
	}
	expectValues(t, text, map[string]string{
		execSeries("c", "incremental", "COMPLETED"):  fmt.Sprint(total),
		recordSeries("c", "incremental", "inserted"): fmt.Sprint(total),
		gapSeries("c"): "0",
	})
	e.sim.ResetRequests()
	e.scrape(context.Background())
	if n := e.sim.Requests(routeHistory); n != 0 {
		t.Errorf("history requests once caught up = %d, want 0", n)
	}
}

func TestAgedOutHistoryIsAGap(t *testing.T) {
	e := oneCache(t, Options{})
	// The exporter is not scraped for 15 days: the run it knew and one
	// after it leave the 14-day history.
	e.sim.Advance(time.Hour)
	e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 7})
	e.sim.Advance(15 * 24 * time.Hour)
	e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 3})
	_, text := e.scrape(context.Background())
	expectValues(t, text, map[string]string{
		gapSeries("c"): "1",
		execSeries("c", "incremental", "COMPLETED"):  "1",
		recordSeries("c", "incremental", "inserted"): "3",
	})
	// The gap is counted once, not at every scrape after it.
	e.sim.Advance(time.Minute)
	e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 1})
	_, text = e.scrape(context.Background())
	expectValues(t, text, map[string]string{gapSeries("c"): "1", execSeries("c", "incremental", "COMPLETED"): "2"})
}

func TestHistoryFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		failures int // scrapes that fail before the history answers again
		wantGaps string
		wantRuns string
	}{
		// 404: the history is gone; the exporter settles the latest run
		// from the status and counts a gap at once.
		{"not found", http.StatusNotFound, 1, "1", "1"},
		// A passing 5xx: the next scrape reads the history and counts all
		// three runs, exactly.
		{"passing server error", http.StatusInternalServerError, 2, "0", "3"},
		// Failing for good: after three scrapes the exporter gives up,
		// counts a gap and settles the latest run from the status.
		{"lasting server error", http.StatusInternalServerError, 3, "1", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := oneCache(t, Options{})
			for range 3 {
				e.sim.Advance(time.Minute)
				e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 1})
			}
			fail := func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/executionHistory") {
					http.Error(w, `{"message":"nope"}`, tc.status)
					return true
				}
				return false
			}
			e.intercept.Store(&fail)
			for range tc.failures {
				_, text := e.scrape(context.Background())
				// The cache itself stays readable.
				expectValues(t, text, map[string]string{`peaka_cache_up{cache_id="c",project_id="p"}`: "1"})
			}
			e.intercept.Store(nil)
			e.scrape(context.Background())
			_, text := e.scrape(context.Background()) // a second scrape must not count again
			expectValues(t, text, map[string]string{
				gapSeries("c"): tc.wantGaps,
				execSeries("c", "incremental", "COMPLETED"):   tc.wantRuns,
				`peaka_cache_up{cache_id="c",project_id="p"}`: "1",
			})
			reason := map[int]string{404: "not_found", 500: "server_error"}[tc.status]
			expectValues(t, text, map[string]string{
				fmt.Sprintf(`peaka_target_failures_total{kind="cache_history",reason=%q}`, reason): fmt.Sprint(tc.failures),
			})
		})
	}
}

func TestConcurrentScrapersCountHistoryOnce(t *testing.T) {
	e := oneCache(t, Options{HistoryPageSize: 3})
	const rounds, perRound, scrapers = 6, 4, 4
	for range rounds {
		for range perRound {
			e.sim.Advance(time.Minute)
			e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 2})
		}
		var wg sync.WaitGroup
		for range scrapers {
			wg.Go(func() { e.exp.Scrape(context.Background(), e.cfg) })
		}
		wg.Wait()
	}
	_, text := e.scrape(context.Background())
	expectValues(t, text, map[string]string{
		execSeries("c", "incremental", "COMPLETED"):  fmt.Sprint(rounds * perRound),
		recordSeries("c", "incremental", "inserted"): fmt.Sprint(rounds * perRound * 2),
	})
}

func TestSettingsAreReadOncePerRefreshPeriod(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t", IncrementalEvery: 15 * time.Minute, FullRefreshEvery: 6 * time.Hour})
	e.configure("  - id: p\n    caches:\n      ids: [c]\n", "settings_refresh: 10m")

	var text string
	for range 25 { // a scrape a minute for 25 minutes
		_, text = e.scrape(context.Background())
		e.sim.Advance(time.Minute)
	}
	if n := e.sim.Requests(routeSettings); n != 3 {
		t.Errorf("settings read %d times in 25 minutes with settings_refresh 10m, want 3", n)
	}
	expectValues(t, text, map[string]string{
		`peaka_cache_schedule_interval_seconds{cache_id="c",execution="incremental",project_id="p"}`:  "900",
		`peaka_cache_schedule_interval_seconds{cache_id="c",execution="full_refresh",project_id="p"}`: "21600",
	})

	// A schedule that changes to NONE disappears at the next refresh; an
	// unreadable one is counted and skipped.
	e.sim.SetSchedule("p", "c", peakatest.Incremental, "NONE", "")
	e.sim.SetSchedule("p", "c", peakatest.FullRefresh, "BASIC", "every six hours")
	e.sim.Advance(10 * time.Minute)
	_, text = e.scrape(context.Background())
	absent(t, text, `peaka_cache_schedule_interval_seconds{`)
	expectValues(t, text, map[string]string{`peaka_cache_schedule_parse_errors_total{cache_id="c",project_id="p"}`: "1"})
}

func TestFailedSettingsReadIsRetriedSoon(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t", IncrementalEvery: 5 * time.Minute})
	e.configure("  - id: p\n    caches:\n      ids: [c]\n", "settings_refresh: 1h")
	fail := func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/cache/c") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	e.intercept.Store(&fail)
	_, text := e.scrape(context.Background())
	absent(t, text, `peaka_cache_schedule_interval_seconds{`)
	expectValues(t, text, map[string]string{`peaka_target_failures_total{kind="cache_settings",reason="server_error"}`: "1"})
	e.intercept.Store(nil)
	e.sim.Advance(30 * time.Second)
	e.scrape(context.Background()) // too soon to ask again
	e.sim.Advance(31 * time.Second)
	_, text = e.scrape(context.Background())
	expectValues(t, text, map[string]string{`peaka_cache_schedule_interval_seconds{cache_id="c",execution="incremental",project_id="p"}`: "300"})
	if n := e.sim.Requests(routeSettings); n != 1 {
		t.Errorf("settings answered %d times by the simulation, want 1 (the retry after a minute)", n)
	}
}

// A run still RUNNING when the exporter last saw it, that finishes after a
// run of the other kind started, must still be counted: the walk cannot
// stop at the newer, known full refresh.
func TestRunThatLeftItsSlotUnfinishedIsCounted(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	e.sim.StartExecution("p", "c", peakatest.Incremental) // I1, running
	e.sim.Advance(time.Minute)
	e.sim.RunExecution("p", "c", peakatest.FullRefresh, "COMPLETED", peakatest.Records{Inserted: 100}) // F1, newer
	e.configure("  - id: p\n    caches:\n      ids: [c]\n")
	e.scrape(context.Background()) // first sight: I1 running, F1 done

	e.sim.Advance(time.Minute)
	e.sim.FinishExecution("p", "c", peakatest.Incremental, "FAILED", peakatest.Records{})
	e.sim.Advance(time.Minute)
	e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 5}) // I2
	_, text := e.scrape(context.Background())
	expectValues(t, text, map[string]string{
		execSeries("c", "incremental", "FAILED"):     "1",
		execSeries("c", "incremental", "COMPLETED"):  "1",
		execSeries("c", "full_refresh", "COMPLETED"): "0",
		recordSeries("c", "incremental", "inserted"): "5",
	})
}

// When the history lags behind the status, the runs it shows later are
// still counted, once.
func TestLaggingHistoryIsReadAgain(t *testing.T) {
	e := oneCache(t, Options{})
	var hidden atomic.Pointer[map[string]bool]
	lag := func(w http.ResponseWriter, r *http.Request) bool {
		h := hidden.Load()
		if h == nil || !strings.HasSuffix(r.URL.Path, "/executionHistory") {
			return false
		}
		rec := httptest.NewRecorder()
		e.sim.ServeHTTP(rec, r)
		var items []map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil {
			t.Errorf("history answer: %v", err)
			return false
		}
		shown := items[:0]
		for _, it := range items {
			if !(*h)[fmt.Sprint(it["id"])] {
				shown = append(shown, it)
			}
		}
		_ = json.NewEncoder(w).Encode(shown)
		return true
	}
	e.intercept.Store(&lag)

	e.sim.Advance(time.Minute)
	i2 := e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 2})
	e.sim.Advance(time.Minute)
	i3 := e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 3})
	hidden.Store(&map[string]bool{i2: true, i3: true})
	_, text := e.scrape(context.Background()) // the status shows i3, the history neither
	expectValues(t, text, map[string]string{execSeries("c", "incremental", "COMPLETED"): "1"})

	hidden.Store(&map[string]bool{})
	_, text = e.scrape(context.Background())
	expectValues(t, text, map[string]string{
		execSeries("c", "incremental", "COMPLETED"):  "2",
		recordSeries("c", "incremental", "inserted"): "5",
	})
	e.sim.Advance(time.Minute)
	e.sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Inserted: 4})
	_, text = e.scrape(context.Background())
	expectValues(t, text, map[string]string{
		execSeries("c", "incremental", "COMPLETED"):  "3",
		recordSeries("c", "incremental", "inserted"): "9",
		gapSeries("c"): "0",
	})
}

func TestForgetKeepsTheNewestAndTheSlots(t *testing.T) {
	cs := newCacheState()
	cs.gen = 1_000_000 // many generations, most of them empty
	now := time.Now()
	for i := range maxKnownExecutions + 500 {
		cs.known[fmt.Sprintf("x%05d", i)] = &knownExecution{counted: true, gen: i * 40, created: now}
	}
	cs.slots = [2]string{"x00000", "x00001"} // the oldest, but in the slots
	cs.forget(now)
	if len(cs.known) != maxKnownExecutions {
		t.Errorf("%d known after forget, want %d", len(cs.known), maxKnownExecutions)
	}
	for _, id := range []string{"x00000", "x00001", fmt.Sprintf("x%05d", maxKnownExecutions+499)} {
		if cs.known[id] == nil {
			t.Errorf("%s forgotten", id)
		}
	}
	if cs.known["x00002"] != nil {
		t.Error("the oldest execution outside the slots was kept")
	}
}
