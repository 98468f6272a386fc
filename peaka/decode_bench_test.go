package peaka

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// BenchmarkDecodeCacheStatus decodes a realistic cache status answer (two
// execution slots, a dozen action-log entries), the exporter's hottest
// path, with the client's streaming reader and, for comparison, with
// encoding/json:
//
//	go test ./peaka -run '^$' -bench DecodeCacheStatus -benchmem
func BenchmarkDecodeCacheStatus(b *testing.B) {
	body := cacheStatusAnswer(b)
	b.Run("reader=stream", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var s CacheStatus
			if err := decodeStream(bytes.NewReader(body), &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reader=encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var s CacheStatus
			if err := json.Unmarshal(body, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func cacheStatusAnswer(b *testing.B) []byte {
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
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return body
}
