package collector

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

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

func benchmarkScrape(b *testing.B, n int, logs bool) {
	e := newEnv(&testing.T{})
	defer e.srv.Close()
	s := e.sim
	s.AddProject(peakatest.Project{ID: "p"})
	var caches, exports []string
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
	e.t = &testing.T{}
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
