package collector

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

const routeCacheStatus = "GET /data/projects/{projectId}/cache/{cacheId}/status"

func TestConcurrentScrapesShareInFlightCalls(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	e.configure("  - id: p\n    caches:\n      ids: [c]\n")

	arrived, release := make(chan struct{}, 10), make(chan struct{})
	hold := func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/cache/c/status") {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return false // then the simulation answers
	}
	e.intercept.Store(&hold)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := make([]*Result, 2)
	var wg sync.WaitGroup
	wg.Go(func() { results[0] = e.exp.Scrape(ctx, e.cfg) })
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("the first scrape never called the API")
	}
	wg.Go(func() { results[1] = e.exp.Scrape(ctx, e.cfg) })
	// Wait until the second scrape has joined the first one's call.
	for testutil.ToFloat64(e.exp.shared.reused.WithLabelValues("in_flight")) < 1 {
		if ctx.Err() != nil {
			t.Fatal("the second scrape did not join the call under way")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()

	if n := e.sim.Requests(routeCacheStatus); n != 1 {
		t.Errorf("two concurrent scrapes made %d status calls, want 1", n)
	}
	for i, r := range results {
		if got := value(t, e.expose(r), `peaka_cache_up{cache_id="c",project_id="p"}`); got != "1" {
			t.Errorf("scrape %d: cache up = %s, want 1", i, got)
		}
	}
}

func TestMinIntervalReusesRecentAnswers(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddCache("p", peakatest.Cache{ID: "ok", TableName: "t"})
	e.sim.AddCache("p", peakatest.Cache{ID: "broken", TableName: "t"})
	e.sim.SetFault("broken", peakatest.Fault{Status: http.StatusNotFound})
	e.configure("  - id: p\n    caches:\n      ids: [ok, broken]\n", "min_interval: 1h")

	e.scrape(context.Background())
	_, text := e.scrape(context.Background())
	if got := value(t, text, `peaka_cache_up{cache_id="ok",project_id="p"}`); got != "1" {
		t.Errorf("reused answer: cache up = %s, want 1", got)
	}
	if got := value(t, text, `peaka_exporter_api_answers_reused_total{reason="min_interval"}`); got != "1" {
		t.Errorf("answers reused = %s, want 1", got)
	}
	// The good answer was reused; the failed one was asked for again.
	if got := value(t, text, `peaka_exporter_api_requests_total{code="200",endpoint="/data/projects/{projectId}/cache/{cacheId}/status"}`); got != "1" {
		t.Errorf("successful status calls = %s, want 1", got)
	}
	if got := value(t, text, `peaka_exporter_api_requests_total{code="404",endpoint="/data/projects/{projectId}/cache/{cacheId}/status"}`); got != "2" {
		t.Errorf("failed status calls = %s, want 2", got)
	}

	// Without min_interval every scrape calls.
	e.configure("  - id: p\n    caches:\n      ids: [ok]\n")
	e.sim.ResetRequests()
	e.scrape(context.Background())
	e.scrape(context.Background())
	if n := e.sim.Requests(routeCacheStatus); n != 2 {
		t.Errorf("two scrapes without min_interval made %d status calls, want 2", n)
	}
}

// A scrape that joined another's call must not inherit that scrape's
// deadline: when the first scrape's time runs out, the second calls again.
func TestJoinedScrapeOutlivesTheFirstScrapesDeadline(t *testing.T) {
	e := newEnv(t)
	e.sim.AddProject(peakatest.Project{ID: "p"})
	e.sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	e.configure("  - id: p\n    caches:\n      ids: [c]\n")

	arrived := make(chan struct{}, 10)
	var first sync.Once
	hold := func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/cache/c/status") {
			held := false
			first.Do(func() { held = true })
			if held {
				arrived <- struct{}{}
				<-r.Context().Done() // until the first scrape gives up
			}
		}
		return false
	}
	e.intercept.Store(&hold)

	long, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	short, cancelShort := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	results := make([]*Result, 2)
	wg.Go(func() { results[0] = e.exp.Scrape(short, e.cfg) })
	select {
	case <-arrived:
	case <-long.Done():
		t.Fatal("the first scrape never called the API")
	}
	wg.Go(func() { results[1] = e.exp.Scrape(long, e.cfg) })
	for testutil.ToFloat64(e.exp.shared.reused.WithLabelValues("in_flight")) < 1 {
		if long.Err() != nil {
			t.Fatal("the second scrape did not join the call under way")
		}
		time.Sleep(time.Millisecond)
	}
	cancelShort() // the first scrape's Prometheus gives up
	wg.Wait()

	if got := value(t, e.expose(results[0]), `peaka_cache_up{cache_id="c",project_id="p"}`); got != "0" {
		t.Errorf("first scrape: cache up = %s, want 0", got)
	}
	if got := value(t, e.expose(results[1]), `peaka_cache_up{cache_id="c",project_id="p"}`); got != "1" {
		t.Errorf("second scrape: cache up = %s, want 1 (it had time to call again)", got)
	}
}
