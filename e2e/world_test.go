package e2e

import (
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// The simulated world of the end-to-end test. Every alert the test expects
// and every README and dashboard expression needs something in it: a cache
// that failed, one stale against its schedule, one without a schedule not
// refreshed for two days, a hung RUNNING execution, a cache and an export
// that do not exist (404), a cache Peaka rate-limits, a schedule the
// exporter cannot parse, a project whose key is wrong, exports in every
// status, and a project of live caches running on schedules.
const (
	apiKey   = "e2e-partner-key-7c1d"
	apiUser  = "5d0c7e11-0000-4000-8000-0000000e2e01"
	projA    = "proj-a"
	projB    = "proj-b"
	projLock = "proj-locked"

	cacheOK        = "cache-ok"        // an incremental and a full refresh that completed 2h ago
	cacheBroken    = "cache-broken"    // FAILED for good
	cacheFlaky     = "cache-flaky"     // COMPLETED; the test makes it fail and recover
	cacheStale     = "cache-stale"     // scheduled every 5m, last run 2h ago
	cacheAncient   = "cache-ancient"   // no schedule, last run 50h ago
	cacheHung      = "cache-hung"      // scheduled every 5m, its run hangs since 1h55m
	cacheThrottled = "cache-throttled" // Peaka answers 429 about it (its settings)
	cacheBadSched  = "cache-badsched"  // a schedule expression that is not ISO-8601
	cacheGone      = "cache-gone"      // in the configuration, not in Peaka

	exportOK        = "exp-ok"
	exportFailed    = "exp-failed"
	exportExpired   = "exp-expired"
	exportRunning   = "exp-running"
	exportPending   = "exp-pending"
	exportCancelled = "exp-cancelled"
	exportGone      = "exp-gone"
)

// What the simulation is told, to compare with what Prometheus shows.
var (
	okIncremental = peakatest.Records{Cached: 50000, Inserted: 1234, Updated: 56}
	okFullRefresh = peakatest.Records{Cached: 48000, Inserted: 48000}
	okFullRunFor  = 90 * time.Second
	exportOKRows  = int64(4321)
	exportOKBytes = int64(987654)
	exportOKFiles = 2
)

// jumpClock is the simulation's clock: real time minus an offset that only
// shrinks, so that it only moves forward. Executions made while it is
// behind are old once it catches up.
type jumpClock struct{ behind atomic.Int64 }

func (c *jumpClock) now() time.Time { return time.Now().Add(-time.Duration(c.behind.Load())) }

func (c *jumpClock) set(behind time.Duration) {
	if time.Duration(c.behind.Load()) < behind {
		panic("jumpClock may only move forward")
	}
	c.behind.Store(int64(behind))
}

type world struct {
	sim *peakatest.Sim
	srv *httptest.Server
	// When cacheOK's incremental execution finished, in Unix seconds.
	okFinished float64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clock := &jumpClock{}
	clock.behind.Store(int64(50 * time.Hour))
	sim := peakatest.New(peakatest.Options{Now: clock.now, Seed: 4})
	sim.AddPartnerKey(apiKey, apiUser)
	for _, p := range []string{projA, projB, projLock} {
		sim.AddProject(peakatest.Project{ID: p, Name: strings.ToUpper(p)})
	}
	table := func(id string) peakatest.Cache {
		return peakatest.Cache{ID: id, CatalogID: "367189801096446904", SchemaName: "public", TableName: strings.TrimPrefix(id, "cache-")}
	}

	// 50 hours ago.
	sim.AddCache(projA, table(cacheAncient))
	sim.RunExecution(projA, cacheAncient, peakatest.FullRefresh, "COMPLETED", peakatest.Records{Cached: 777, Inserted: 777})

	// 2 hours ago.
	clock.set(2 * time.Hour)
	for _, id := range []string{cacheOK, cacheBroken, cacheFlaky, cacheStale, cacheThrottled, cacheBadSched} {
		sim.AddCache(projA, table(id))
	}
	hung := table(cacheHung)
	hung.IncrementalEvery, hung.Hang, hung.RecordsPerRun = 5*time.Minute, true, 1000
	sim.AddCache(projA, hung)
	sim.AddCache(projLock, table("cache-locked"))

	w := &world{sim: sim}
	sim.RunExecution(projA, cacheOK, peakatest.Incremental, "COMPLETED", okIncremental)
	w.okFinished = float64(sim.Now().UnixMicro()) / 1e6
	sim.StartExecution(projA, cacheOK, peakatest.FullRefresh)
	sim.RunExecution(projA, cacheBroken, peakatest.Incremental, "FAILED", peakatest.Records{Cached: 10, Inserted: 3})
	sim.RunExecution(projA, cacheFlaky, peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 20, Inserted: 20})
	sim.RunExecution(projA, cacheStale, peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 30, Inserted: 30})
	sim.SetSchedule(projA, cacheStale, peakatest.Incremental, "BASIC", "PT5M")
	sim.RunExecution(projA, cacheThrottled, peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 40, Inserted: 40})
	// A Retry-After beyond what the exporter waits for: the call fails at once.
	sim.SetFault(cacheThrottled, peakatest.Fault{Status: 429, RetryAfter: "3600"})
	sim.RunExecution(projA, cacheBadSched, peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 50, Inserted: 50})
	sim.SetSchedule(projA, cacheBadSched, peakatest.Incremental, "BASIC", "every five minutes")
	sim.AddExport(projA, peakatest.Export{ID: exportExpired, QueryID: "q-expired", Source: `peaka.query."expired_view"`,
		Rows: 10, Bytes: 100, ExpireAfter: 30 * time.Minute, UserID: apiUser})
	sim.AddExport(projA, peakatest.Export{ID: exportRunning, CatalogID: "367189801096446904", SchemaName: "public", TableName: "events",
		Source: `peaka.public."events"`, Format: "PARQUET", RunFor: 10 * time.Hour, Rows: 9e6, Bytes: 2e9, UserID: apiUser})

	// 2 hours minus 90 seconds ago.
	clock.set(2*time.Hour - okFullRunFor)
	sim.FinishExecution(projA, cacheOK, peakatest.FullRefresh, "COMPLETED", okFullRefresh)
	for i, c := range []peakatest.Cache{
		{ID: "live-orders", IncrementalEvery: time.Minute, IncrementalRunFor: 10 * time.Second, FullRefreshEvery: 30 * time.Minute,
			FullRefreshRunFor: 20 * time.Second, RecordsPerRun: 500},
		{ID: "live-customers", IncrementalEvery: 2 * time.Minute, IncrementalRunFor: 5 * time.Second, RecordsPerRun: 100},
	} {
		c.CatalogID, c.SchemaName, c.TableName = "627249916703408649", "payment", []string{"orders", "customers"}[i]
		sim.AddCache(projB, c)
	}
	sim.AddExport(projA, peakatest.Export{ID: exportOK, QueryID: "q-ok", Source: `peaka.query."charges_view"`, Format: "CSV",
		Compression: "GZIP", Rows: exportOKRows, Bytes: exportOKBytes, Files: exportOKFiles, RunFor: 3 * time.Second, UserID: apiUser})
	sim.AddExport(projA, peakatest.Export{ID: exportFailed, QueryID: "q-failed", Source: `peaka.query."big_view"`,
		Fail: "Query exceeded the 1,000,000 row export limit", UserID: apiUser})
	sim.AddExport(projA, peakatest.Export{ID: exportPending, QueryID: "q-pending", Source: `peaka.query."stuck_view"`, UserID: apiUser})
	sim.SetExportStatus(projA, exportPending, "PENDING")
	sim.AddExport(projA, peakatest.Export{ID: exportCancelled, QueryID: "q-cancelled", Source: `peaka.query."cancelled_view"`, UserID: apiUser})
	sim.SetExportStatus(projA, exportCancelled, "CANCELLED")
	for i := range 3 {
		sim.AddExport(projB, peakatest.Export{QueryID: "q-b", Source: `peaka.query."daily_view"`, Rows: int64(100 * (i + 1)),
			Bytes: int64(2048 * (i + 1)), CreatedAt: clock.now().Add(-time.Duration(i) * time.Hour)})
	}

	// Now.
	clock.set(0)
	w.srv = httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		w.srv.Close()
	})
	return w
}

// exporterConfig watches the world: projA cache by cache and export by
// export, projB wholesale, projLock with a key Peaka does not know.
func (w *world) exporterConfig() string {
	return `peaka:
  url: ` + w.srv.URL + `
  api_key_file: api-key
  timeout: 10s
  # Reads schedules every few seconds, so that an unreadable one is counted
  # again while the test runs.
  settings_refresh: 2s
projects:
  - id: ` + projA + `
    caches:
      ids: [` + strings.Join([]string{cacheOK, cacheBroken, cacheFlaky, cacheStale, cacheAncient, cacheHung, cacheThrottled, cacheBadSched, cacheGone}, ", ") + `]
    exports:
      ids: [` + strings.Join([]string{exportOK, exportFailed, exportExpired, exportRunning, exportPending, exportCancelled, exportGone}, ", ") + `]
  - id: ` + projB + `
    caches:
      all: true
    exports:
      recent: 1d
  - id: ` + projLock + `
    api_key: not-a-key-peaka-knows
    caches:
      ids: [cache-locked]
`
}
