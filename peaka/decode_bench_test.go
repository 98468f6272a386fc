package peaka

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// BenchmarkDecodeCacheStatus decodes a realistic cache status answer (two
// execution slots, a dozen action-log entries), the exporter's hottest path.
func BenchmarkDecodeCacheStatus(b *testing.B) {
	sim := peakatest.New(peakatest.Options{Seed: 1})
	sim.AddPartnerKey("k", "u")
	sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	sim.RunExecution("p", "c", peakatest.FullRefresh, "COMPLETED", peakatest.Records{Cached: 1000, Inserted: 1000})
	for range 5 {
		sim.Advance(time.Minute)
		sim.RunExecution("p", "c", peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 1010, Inserted: 10, Updated: 2})
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/data/projects/p/cache/c/status", nil)
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var s CacheStatus
		if err := json.Unmarshal(body, &s); err != nil {
			b.Fatal(err)
		}
	}
}
