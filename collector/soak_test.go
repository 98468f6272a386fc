package collector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// TestSoak scrapes the exporter continuously through its real /metrics
// handler over HTTP, with several scrapers at once (an HA pair and then
// some), while the simulated API injects random faults, and checks that
// nothing grows: goroutines, open connections and file descriptors, heap.
// Every scrape must answer 200 with a valid exposition in time.
//
// It runs 30s by default; PEAKA_SOAK=3m (any Go duration) runs longer,
// PEAKA_SOAK_SEED=n repeats a run's faults, PEAKA_SOAK_HEAPPROFILE=file
// writes what is live at the end. With -short it runs 5s.
func TestSoak(t *testing.T) {
	duration := 30 * time.Second
	if testing.Short() {
		duration = 5 * time.Second
	}
	if v := os.Getenv("PEAKA_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("PEAKA_SOAK=%q: want a duration such as 3m", v)
		}
		duration = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PEAKA_SOAK_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	const (
		scrapers      = 3
		scrapeTimeout = 2 * time.Second // what the scrapers announce, as Prometheus does
	)
	t.Logf("soak: %v, %d scrapers, seed %d (PEAKA_SOAK_SEED=%d repeats the faults)", duration, scrapers, seed, seed)

	// A simulation on the real clock, so that schedules run executions
	// and the counters move during the soak.
	api := newFTAPI(t, time.Now, false)
	s := api.sim
	projects := map[string][]string{"sa": {"sa-1", "sa-2", "sa-3"}, "sb": {"sb-1", "sb-2"}, "sc": {"sc-1", "sc-2", "sc-3", "sc-4"}}
	var cacheIDs, exportIDs []string
	for p, caches := range projects {
		s.AddProject(peakatest.Project{ID: p})
		for i, c := range caches {
			s.AddCache(p, peakatest.Cache{ID: c, TableName: c, RecordsPerRun: 1000,
				IncrementalEvery: time.Duration(5+i) * time.Second, IncrementalRunFor: 2 * time.Second,
				FullRefreshEvery: 20 * time.Second, FullRefreshRunFor: 5 * time.Second, FailEvery: 4})
			cacheIDs = append(cacheIDs, c)
		}
	}
	now := s.Now()
	for i := range 6 {
		id := fmt.Sprintf("sx-%d", i)
		s.AddExport("sc", peakatest.Export{ID: id, UserID: ownerID, UserName: "soak@example.com", Rows: int64(100 * i),
			Bytes: int64(1000 * i), Files: 1, CreatedAt: now.Add(-time.Duration(i) * time.Minute), RunFor: time.Second})
		exportIDs = append(exportIDs, id)
	}
	cfg := ftConfig(t, api.srv.URL, `  - id: sa
    caches:
      all: true
  - id: sb
    caches:
      ids: [sb-1, sb-2]
  - id: sc
    caches:
      ids: [sc-1, sc-2, sc-3, sc-4]
    exports:
      ids: [sx-0, sx-1, sx-2]
      recent: 1h
`, "max_concurrency: 4", "max_response_bytes: 262144")
	x := newFTExporter(t, cfg, nil)
	x.logs.countOnly()
	client := &http.Client{Timeout: scrapeTimeout + 30*time.Second}
	defer client.CloseIdleConnections()

	faultIDs := append(append(append([]string{}, cacheIDs...), exportIDs...), "sa", "sb", "sc")
	faults := []peakatest.Fault{
		{Status: 401}, {Status: 403}, {Status: 404}, {Status: 429}, {Status: 429, RetryAfter: "1"},
		{Status: 429, RetryAfter: "30"}, {Status: 500, HTML: true}, {Status: 502}, {Status: 503},
		{Malformed: true}, {WrongShape: true}, {HugeBytes: 1 << 20}, {HugeBytes: 1 << 20, NoLength: true},
		{NeverEnds: true}, {Delay: 300 * time.Millisecond}, {Delay: time.Minute}, {ResetMidBody: true},
		{BigNumbers: true}, {HugeNumbers: true}, {MissingFields: true}, {UnknownStatus: "PAUSED"},
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	clearFaults := func() {
		for _, id := range faultIDs {
			s.SetFault(id, peakatest.Fault{})
		}
	}

	// scrapeOnce is one Prometheus scrape: 200, a valid exposition, in
	// time. It reports problems instead of failing, since scrapers run on
	// their own goroutines.
	var maxTook atomic.Int64
	scrapeOnce := func() error {
		req, _ := http.NewRequest(http.MethodGet, x.web.URL+"/metrics", nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(scrapeTimeout.Seconds(), 'f', -1, 64))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		_, perr := parseExposition(resp)
		took := time.Since(start)
		for {
			m := maxTook.Load()
			if int64(took) <= m || maxTook.CompareAndSwap(m, int64(took)) {
				break
			}
		}
		if perr != nil {
			return perr
		}
		if took > scrapeTimeout+ftSlack {
			return fmt.Errorf("took %v with a scrape timeout of %v", took, scrapeTimeout)
		}
		return nil
	}

	// quiet brings the process to a state that can be compared: no
	// fault, no scrape running, no connection open on either server.
	type figures struct {
		goroutines, fds, apiConns, webConns int
		heap                                uint64
	}
	quiet := func(label string) figures {
		clearFaults()
		for range 2 {
			if err := scrapeOnce(); err != nil {
				t.Errorf("%s: healthy scrape failed: %v", label, err)
			}
		}
		client.CloseIdleConnections()
		api.srv.CloseClientConnections()
		var f figures
		settled := eventually(15*time.Second, func() bool {
			f.goroutines = runtime.NumGoroutine()
			f.apiConns = int(api.open.Load())
			return f.apiConns == 0 && api.handlers.Load() == 0
		})
		if !settled {
			t.Errorf("%s: API connections %d, handlers %d did not settle", label, api.open.Load(), api.handlers.Load())
		}
		// Let the goroutines of just-closed connections end: the count
		// must stop falling (two equal readings 100ms apart).
		prev := -1
		eventually(10*time.Second, func() bool {
			n := runtime.NumGoroutine()
			stable := n == prev
			prev = n
			if !stable {
				time.Sleep(100 * time.Millisecond)
			}
			return stable
		})
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		f.goroutines = runtime.NumGoroutine()
		f.heap = ms.HeapAlloc
		f.fds = openFDs()
		x.web.CloseClientConnections()
		eventually(10*time.Second, func() bool { return x.open.Load() == 0 })
		f.webConns = int(x.open.Load())
		return f
	}

	// Warm up (first connections, lazily started runtime goroutines, the
	// exporter's per-cache state), then take the baseline.
	for range 3 {
		if err := scrapeOnce(); err != nil {
			t.Fatalf("warm-up scrape: %v", err)
		}
	}
	base := quiet("baseline")

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var (
		wg                    sync.WaitGroup
		scrapes, failed       atomic.Int64
		injected              atomic.Int64
		firstErrMu            sync.Mutex
		firstErr              error
		maxGoroutines, maxFDs atomic.Int64
		maxHeap               atomic.Uint64
		maxAPIConns           atomic.Int64
	)
	for range scrapers {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := scrapeOnce()
				scrapes.Add(1)
				if err != nil {
					failed.Add(1)
					firstErrMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					firstErrMu.Unlock()
				}
			}
		})
	}
	// The fault injector changes a few faults every 100ms; about a third
	// of the targets are faulty at any time.
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for range 2 {
				id := faultIDs[rng.IntN(len(faultIDs))]
				if rng.IntN(2) == 0 {
					s.SetFault(id, peakatest.Fault{})
					continue
				}
				s.SetFault(id, faults[rng.IntN(len(faults))])
				injected.Add(1)
			}
		}
	})
	// The sampler records the peaks during the run.
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			storeMax(&maxGoroutines, int64(runtime.NumGoroutine()))
			storeMax(&maxFDs, int64(openFDs()))
			storeMax(&maxAPIConns, api.open.Load())
			runtime.ReadMemStats(&ms)
			for {
				m := maxHeap.Load()
				if ms.HeapAlloc <= m || maxHeap.CompareAndSwap(m, ms.HeapAlloc) {
					break
				}
			}
		}
	})
	wg.Wait()
	end := quiet("end")
	if path := os.Getenv("PEAKA_SOAK_HEAPPROFILE"); path != "" {
		// What is live at the end, for go tool pprof -sample_index=inuse_space.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Error(err)
		}
		f.Close()
	}

	n, bad := scrapes.Load(), failed.Load()
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	t.Logf("scrapes %d (%.1f/s), failed %d, faults injected %d, API requests %d, slowest scrape %v, log lines %d",
		n, float64(n)/duration.Seconds(), bad, injected.Load(), api.requests.Load(), time.Duration(maxTook.Load()).Round(time.Millisecond), x.logs.count())
	t.Logf("goroutines %d → %d (peak %d); open fds %d → %d (peak %d); API connections %d → %d (peak %d); heap after GC %.1f → %.1f MiB (peak %.1f MiB before GC)",
		base.goroutines, end.goroutines, maxGoroutines.Load(), base.fds, end.fds, maxFDs.Load(),
		base.apiConns, end.apiConns, maxAPIConns.Load(), mib(base.heap), mib(end.heap), mib(maxHeap.Load()))
	fmt.Printf("SOAK %v scrapers=%d scrapes=%d failed=%d faults=%d api_requests=%d slowest=%v goroutines=%d->%d fds=%d->%d api_conns_peak=%d heap_mib=%.1f->%.1f\n",
		duration, scrapers, n, bad, injected.Load(), api.requests.Load(), time.Duration(maxTook.Load()).Round(time.Millisecond),
		base.goroutines, end.goroutines, base.fds, end.fds, maxAPIConns.Load(), mib(base.heap), mib(end.heap))

	if bad > 0 {
		t.Errorf("%d of %d scrapes failed; first: %v", bad, n, firstErr)
	}
	if n < int64(scrapers) {
		t.Errorf("only %d scrapes in %v", n, duration)
	}
	// Tolerances: a few goroutines and descriptors the runtime or the
	// test's own servers may start lazily; heap within 50% or 4 MiB (the
	// exporter keeps per-cache state, small next to that).
	if end.goroutines > base.goroutines+5 {
		t.Errorf("goroutines grew from %d to %d", base.goroutines, end.goroutines)
	}
	if base.fds >= 0 && end.fds > base.fds+5 {
		t.Errorf("open file descriptors grew from %d to %d", base.fds, end.fds)
	}
	if end.apiConns != 0 || end.webConns != 0 {
		t.Errorf("connections left open: API %d, exporter %d", end.apiConns, end.webConns)
	}
	if limit := base.heap + max(base.heap/2, 4<<20); end.heap > limit {
		t.Errorf("heap grew from %.1f to %.1f MiB", mib(base.heap), mib(end.heap))
	}
	if peak := maxAPIConns.Load(); peak > int64(cfg.Peaka.MaxConcurrency)*2+2 {
		// The client keeps max_concurrency connections; one being closed
		// and its replacement may overlap.
		t.Errorf("%d API connections open at once with max_concurrency %d", peak, cfg.Peaka.MaxConcurrency)
	}
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

// openFDs counts this process's open file descriptors (-1 where /proc is
// not available).
func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// parseExposition reads an answer of /metrics and parses it as the text
// format.
func parseExposition(resp *http.Response) (int, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, fmt.Errorf("reading: %w", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("invalid exposition: %w", err)
	}
	if _, ok := mfs["peaka_scrape_duration_seconds"]; !ok {
		return 0, fmt.Errorf("exposition without peaka_scrape_duration_seconds (%d families)", len(mfs))
	}
	return len(mfs), nil
}
