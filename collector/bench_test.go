package collector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peakacom/peaka_exporter/config"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// BenchmarkScrape measures one full scrape (API calls over loopback HTTP to
// the simulation, decoding, conversion and the text exposition) per
// configured cache and export. The simulation runs in the same process, so
// the figures include its work; go run ./bench measures the exporter alone.
// Run with:
//
//	go test ./collector -run '^$' -bench Scrape -benchmem
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, logs := range []bool{true, false} {
			b.Run(fmt.Sprintf("targets=%d/action_logs=%v", 2*n, logs), func(b *testing.B) {
				benchmarkScrape(b, n, logs)
			})
		}
	}
}

// addBenchProject adds project "p" with n caches (a full refresh and five
// incremental runs each) and n exports, and returns their IDs.
func addBenchProject(s *peakatest.Sim, n int) (caches, exports []string) {
	s.AddProject(peakatest.Project{ID: "p"})
	for i := range n {
		id := fmt.Sprintf("cache-%05d", i)
		caches = append(caches, id)
		s.AddCache("p", peakatest.Cache{ID: id, CatalogID: "367189801096446904", SchemaName: "public", TableName: id})
		s.RunExecution("p", id, peakatest.FullRefresh, "COMPLETED", peakatest.Records{Cached: 1000, Inserted: 1000})
		for range 5 {
			s.RunExecution("p", id, peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 1010, Inserted: 10, Updated: 2})
		}
		xid := fmt.Sprintf("export-%05d", i)
		exports = append(exports, xid)
		s.AddExport("p", peakatest.Export{ID: xid, Format: "CSV", Rows: 10, Bytes: 1000, Files: 1, UserID: ownerID, CreatedAt: s.Now().Add(-time.Hour)})
	}
	return caches, exports
}

func benchmarkScrape(b *testing.B, n int, logs bool) {
	e := newEnv(b)
	s := e.sim
	caches, exports := addBenchProject(s, n)
	e.configure(fmt.Sprintf("  - id: p\n    caches:\n      action_logs: %v\n      ids: [%s]\n    exports:\n      ids: [%s]\n",
		logs, strings.Join(caches, ", "), strings.Join(exports, ", ")))
	ctx := context.Background()
	// The first scrape meets every cache and reads its settings; the loop
	// measures the steady state that follows.
	e.exp.Scrape(ctx, e.cfg)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		res := e.exp.Scrape(ctx, e.cfg)
		if err := e.exp.WriteExposition(io.Discard, res, e.reg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	perTarget := float64(b.N) * float64(2*n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/perTarget, "ns/target")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/perTarget, "B/target")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/perTarget, "allocs/target")
}

// BenchmarkExporterWork measures the exporter's own work per target and
// scrape, decode + convert + expose, without the network's: the API
// client's transport replays, from memory, answers recorded from the
// simulated API in the same process during two warm-up scrapes. The project is
// read as go run ./bench reads it: N named caches from the project's cache
// list (one request), N exports one request each, action logs on; with
// calls=per_target every cache is read with a request of its own.
//
//	go test ./collector -run '^$' -bench ExporterWork -benchmem
func BenchmarkExporterWork(b *testing.B) {
	for _, n := range []int{50, 500, 5000} {
		for _, perTarget := range []bool{false, true} {
			calls := "list"
			if perTarget {
				calls = "per_target"
			}
			b.Run(fmt.Sprintf("targets=%d/calls=%s", 2*n, calls), func(b *testing.B) {
				benchmarkExporterWork(b, n, perTarget)
			})
		}
	}
}

// exporterWithReplay sets up BenchmarkExporterWork: the simulated API with
// n caches and n exports, an exporter on a replay transport, and two
// warm-up scrapes that record every answer. The simulation is closed and
// dropped before it returns, so that only the exporter's heap is left for
// the garbage collector, as in the exporter's own process.
func exporterWithReplay(b *testing.B, n int, perTarget bool) (*Exporter, *config.Config, *prometheus.Registry, *replayTransport) {
	sim := peakatest.New(peakatest.Options{Start: simStart, Seed: 1})
	sim.AddPartnerKey(partnerKey, ownerID)
	caches, exports := addBenchProject(sim, n)
	replay := &replayTransport{handler: sim, answers: map[replayKey]*recordedAnswer{}}
	now := sim.Now() // the clock stands still: the answers do not change
	// The exporter's own metrics are part of what a scrape exposes.
	reg := prometheus.NewRegistry()
	exp, err := New(reg, Options{Logger: log.NewNopLogger(), Now: func() time.Time { return now }, PerCacheCalls: perTarget, Transport: replay})
	if err != nil {
		b.Fatal(err)
	}
	doc := fmt.Sprintf("peaka:\n  url: http://peaka.invalid\nprojects:\n  - id: p\n    caches:\n      ids: [%s]\n    exports:\n      ids: [%s]\n",
		strings.Join(caches, ", "), strings.Join(exports, ", "))
	cfg, err := config.Parse([]byte(doc), "bench.yml", func(k string) (string, bool) {
		return partnerKey, k == "PEAKA_API_KEY"
	}, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	// Two scrapes record every answer (the first meets every cache and
	// reads its settings); the benchmark then runs on recorded answers only.
	for range 2 {
		if res := exp.Scrape(context.Background(), cfg); failures(res) > 0 {
			b.Fatalf("warm-up scrape: %d targets failed", failures(res))
		}
	}
	replay.freeze()
	sim.Close()
	return exp, cfg, reg, replay
}

func benchmarkExporterWork(b *testing.B, n int, perTarget bool) {
	exp, cfg, reg, replay := exporterWithReplay(b, n, perTarget)
	runtime.GC()
	ctx := context.Background()
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpuBefore, measured := processCPU(b)
	b.ResetTimer()
	for b.Loop() {
		res := exp.Scrape(ctx, cfg)
		if err := exp.WriteExposition(io.Discard, res, reg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpuAfter, _ := processCPU(b)
	runtime.ReadMemStats(&after)
	if m := replay.misses.Load(); m > 0 {
		b.Fatalf("%d requests were not among the recorded answers", m)
	}
	per := float64(b.N) * float64(2*n)
	// The scrape works on both cores: CPU time, not wall time, is what a
	// target costs.
	if measured {
		b.ReportMetric(float64((cpuAfter-cpuBefore).Nanoseconds())/per, "cpu-ns/target")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/target")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "B/target")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/target")
}

// replayTransport answers a request from the answers it recorded for the
// same URL, asking handler (in process, without a connection) for those it
// has not seen. Once frozen, it answers from memory only, and a request it
// has no answer for is a miss (and a 404). It is the benchmark's stand-in
// for the network, so it costs as little as it can: no lock once frozen,
// no key built per request, one allocation for the body.
type replayTransport struct {
	handler http.Handler
	frozen  atomic.Bool
	misses  atomic.Int64
	mu      sync.Mutex // guards answers until frozen; read-only after
	answers map[replayKey]*recordedAnswer
}

type replayKey struct{ path, query string }

type recordedAnswer struct {
	status int
	header http.Header
	body   []byte
}

// replayBody is an answer's body: a reader of the recorded bytes.
type replayBody struct{ bytes.Reader }

func (*replayBody) Close() error { return nil }

func (t *replayTransport) freeze() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frozen.Store(true)
	t.handler = nil
}

func (t *replayTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := replayKey{req.URL.EscapedPath(), req.URL.RawQuery}
	if t.frozen.Load() {
		a := t.answers[key]
		if a == nil {
			t.misses.Add(1)
			a = &recordedAnswer{status: http.StatusNotFound, header: http.Header{}}
		}
		return a.response(req), nil
	}
	t.mu.Lock()
	a, handler := t.answers[key], t.handler
	t.mu.Unlock()
	if a == nil {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		a = &recordedAnswer{status: rec.Code, header: rec.Header().Clone(), body: rec.Body.Bytes()}
		if a.status == http.StatusOK {
			t.mu.Lock()
			t.answers[key] = a
			t.mu.Unlock()
		}
	}
	return a.response(req), nil
}

func (a *recordedAnswer) response(req *http.Request) *http.Response {
	body := new(replayBody)
	body.Reset(a.body)
	return &http.Response{
		StatusCode:    a.status,
		Status:        http.StatusText(a.status),
		Header:        a.header,
		Body:          body,
		ContentLength: int64(len(a.body)),
		Request:       req,
		ProtoMajor:    1, ProtoMinor: 1,
	}
}

// failures counts the targets of res that could not be read.
func failures(res *Result) int {
	n := 0
	for _, p := range res.projects {
		if p.cacheListErr != nil {
			n++
		}
		for _, c := range p.caches {
			if c.err != nil {
				n++
			}
		}
		for _, x := range p.exports {
			if x.err != nil {
				n++
			}
		}
	}
	return n
}
