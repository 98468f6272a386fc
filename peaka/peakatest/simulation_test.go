package peakatest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func history(t *testing.T, f *fixture, project, cache string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range f.get("/data/projects/" + project + "/cache/" + cache + "/executionHistory?limit=1000").array(t) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func TestScheduledRuns(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddCache(p1, Cache{ID: cacheA, IncrementalEvery: time.Minute, RecordsPerRun: 1000})
	f := serve(t, s)
	status := func() map[string]any {
		return f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/status").object(t)
	}
	if st := status()["status"]; st != "NOT_INITIALIZED" {
		t.Fatalf("before the first tick: %v", st)
	}
	s.Advance(10 * time.Minute)

	// Ticks at 1..10 minutes: nine runs of 30s have finished and the tenth
	// started just now.
	h := history(t, f, p1, cacheA)
	if len(h) != 10 {
		t.Fatalf("want 10 executions, got %d", len(h))
	}
	seen := map[string]bool{}
	var prevCached float64 = 1 << 62
	for i, e := range h {
		checkExecution(t, fmt.Sprint("history[", i, "]"), e)
		id := e["id"].(string)
		if seen[id] {
			t.Errorf("duplicate id %s", id)
		}
		seen[id] = true
		created := isTimestamp(t, "createdAt", e["createdAt"])
		if want := t0.Add(time.Duration(10-i) * time.Minute); !created.Equal(want) {
			t.Errorf("history[%d] created %v, want %v", i, created, want)
		}
		if i == 0 {
			if e["status"] != "RUNNING" || e["finishedAt"] != nil {
				t.Errorf("newest should be running: %v", e)
			}
			continue
		}
		if e["status"] != "COMPLETED" {
			t.Errorf("history[%d] status %v", i, e["status"])
		}
		finished := isTimestamp(t, "finishedAt", e["finishedAt"])
		if finished.Sub(created) != 30*time.Second {
			t.Errorf("run lasted %v", finished.Sub(created))
		}
		p := e["progress"].(map[string]any)
		ins := p["numberOfInsertedRecords"].(float64)
		if ins < 800 || ins > 1200 || p["numberOfDeletedRecords"] != 0.0 {
			t.Errorf("progress %v", p)
		}
		if upd := p["numberOfUpdatedRecords"].(float64); upd < ins/20 || upd > ins/5 {
			t.Errorf("updated %v of %v inserted", upd, ins)
		}
		cached := p["numberOfCachedRecords"].(float64)
		if cached >= prevCached {
			t.Errorf("cached records should grow run by run: %v then %v", cached, prevCached)
		}
		prevCached = cached
	}

	// The running one moves: records grow and updatedAt follows in steps.
	s.Advance(12 * time.Second)
	m := status()
	if m["status"] != "RUNNING" {
		t.Fatalf("status %v", m["status"])
	}
	inc := m["lastIncrementalCacheExecution"].(map[string]any)
	created := isTimestamp(t, "createdAt", inc["createdAt"])
	updated := isTimestamp(t, "updatedAt", inc["updatedAt"])
	if d := updated.Sub(created); d != 10*time.Second {
		t.Errorf("updatedAt %v after start, want 10s", d)
	}
	if p := inc["progress"].(map[string]any); p["numberOfInsertedRecords"].(float64) <= 0 {
		t.Errorf("no progress after 12s: %v", p)
	}
	s.Advance(20 * time.Second)
	if st := status()["status"]; st != "COMPLETED" {
		t.Errorf("after the run: %v", st)
	}

	logs := status()["cacheActionLogs"].([]any)
	first := logs[0].(map[string]any)
	if first["action"] != "CACHE_COMPLETED" || first["cacheType"] != "INCREMENTAL" || first["isScheduled"] != true {
		t.Errorf("newest log: %v", first)
	}
	if len(logs) != 20 {
		t.Errorf("want 20 logs for 10 runs, got %d", len(logs))
	}
	s.Advance(time.Hour)
	if n := len(status()["cacheActionLogs"].([]any)); n != 50 {
		t.Errorf("logs are capped at 50, got %d", n)
	}
}

// Stepping once or in many small steps gives the same answers: the model
// orders events by time, not by how the caller sliced the time.
func TestSteppingGranularity(t *testing.T) {
	build := func() *Sim {
		s := New(Options{Seed: 3})
		s.AddPartnerKey(partnerKey, partnerUID)
		s.AddCache(p1, Cache{ID: cacheA, IncrementalEvery: time.Minute, FullRefreshEvery: 7 * time.Minute, RecordsPerRun: 50})
		s.AddCache(p1, Cache{ID: cacheB, IncrementalEvery: 90 * time.Second, FailEvery: 2, RecordsPerRun: 70})
		return s
	}
	a, b := build(), build()
	a.Advance(time.Hour)
	for range 360 {
		b.Advance(10 * time.Second)
	}
	fa, fb := serve(t, a), serve(t, b)
	for _, path := range []string{"/data/projects/" + p1 + "/cache/status",
		"/data/projects/" + p1 + "/cache/" + cacheB + "/executionHistory?limit=100"} {
		if x, y := fa.get(path).body, fb.get(path).body; !bytes.Equal(x, y) {
			t.Errorf("%s differs:\n%s\n%s", path, x, y)
		}
	}
}

func TestFailEvery(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddCache(p1, Cache{ID: cacheA, IncrementalEvery: time.Minute, FailEvery: 3, RecordsPerRun: 10})
	s.Advance(9*time.Minute + 30*time.Second)
	f := serve(t, s)
	h := history(t, f, p1, cacheA)
	if len(h) != 9 {
		t.Fatalf("want 9 runs, got %d", len(h))
	}
	for i, e := range h {
		run := 9 - i
		failed := run%3 == 0
		errObj := e["error"].(map[string]any)
		if failed != (e["status"] == "FAILED") || failed != (len(errObj) > 0) {
			t.Errorf("run %d: status %v, error %v", run, e["status"], errObj)
		}
	}
	m := f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/status").object(t)
	if m["status"] != "FAILED" {
		t.Errorf("the ninth run failed, status %v", m["status"])
	}
	if msg := m["cacheActionLogs"].([]any)[0].(map[string]any); msg["action"] != "CACHE_FAILED" {
		t.Errorf("newest log %v", msg)
	}
}

func TestHungExecution(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddCache(p1, Cache{ID: cacheA, IncrementalEvery: time.Minute, FullRefreshEvery: 10 * time.Minute, Hang: true, RecordsPerRun: 10})
	s.Advance(3*24*time.Hour + 5*time.Minute)
	f := serve(t, s)
	m := f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/status").object(t)
	if m["status"] != "RUNNING" {
		t.Fatalf("status %v", m["status"])
	}
	inc := m["lastIncrementalCacheExecution"].(map[string]any)
	if inc["status"] != "RUNNING" || inc["progress"] != nil || inc["updatedAt"] != inc["createdAt"] || inc["finishedAt"] != nil {
		t.Errorf("hung run: %v", inc)
	}
	if inc["createdAt"] != "2026-01-01T00:01:00Z" {
		t.Errorf("the first run should be the hung one: %v", inc["createdAt"])
	}
	// The other kind carries on beside it.
	full := m["lastFullRefreshCacheExecution"].(map[string]any)
	if full["status"] == "RUNNING" || full["createdAt"] == "2026-01-01T00:10:00Z" {
		t.Errorf("full refreshes should go on: %v", full)
	}
	incs := 0
	for _, e := range history(t, f, p1, cacheA) {
		if e["executionMode"] == "INCREMENTAL" {
			incs++
		}
	}
	if incs != 1 {
		t.Errorf("no incremental run may start while one hangs, got %d", incs)
	}
	// Finishing it by hand lets the schedule resume.
	s.FinishExecution(p1, cacheA, Incremental, "CANCELLED", Records{})
	s.Advance(time.Minute)
	if e := f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/executionHistory?limit=1").array(t)[0].(map[string]any); e["status"] != "RUNNING" || e["executionMode"] != "INCREMENTAL" {
		t.Errorf("the schedule should resume: %v", e)
	}
}

func TestDirectControls(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddCache(p1, Cache{ID: cacheA})
	f := serve(t, s)
	status := func() map[string]any {
		return f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/status").object(t)
	}
	full := s.StartExecution(p1, cacheA, FullRefresh)
	s.Advance(time.Minute)
	inc := s.RunExecution(p1, cacheA, Incremental, "COMPLETED", Records{Cached: 10, Inserted: 10})
	m := status()
	// A completed incremental beside a running full refresh: still RUNNING.
	if m["status"] != "RUNNING" || m["lastIncrementalCacheExecution"].(map[string]any)["id"] != inc ||
		m["lastFullRefreshCacheExecution"].(map[string]any)["id"] != full {
		t.Fatalf("independent slots: %v", m)
	}
	s.Advance(time.Minute)
	s.Progress(p1, cacheA, FullRefresh, Records{Cached: 5, Inserted: 5})
	fr := status()["lastFullRefreshCacheExecution"].(map[string]any)
	if fr["updatedAt"] != "2026-01-01T00:02:00Z" || fr["progress"].(map[string]any)["numberOfCachedRecords"] != 5.0 {
		t.Errorf("progress: %v", fr)
	}
	s.Advance(time.Minute)
	s.FinishExecution(p1, cacheA, FullRefresh, "FAILED", Records{Cached: 7})
	m = status()
	fr = m["lastFullRefreshCacheExecution"].(map[string]any)
	if m["status"] != "COMPLETED" || fr["status"] != "FAILED" || len(fr["error"].(map[string]any)) == 0 ||
		fr["finishedAt"] != "2026-01-01T00:03:00Z" {
		t.Errorf("the incremental is newer, so COMPLETED; the full refresh FAILED with an error: %v", m)
	}
	s.Advance(time.Minute)
	s.RunExecution(p1, cacheA, FullRefresh, "CANCELLED", Records{})
	if st := status()["status"]; st != "CANCELLED" {
		t.Errorf("status %v", st)
	}
	s.SetCacheStatus(p1, cacheA, "DELETED")
	if st := status()["status"]; st != "DELETED" {
		t.Errorf("override %v", st)
	}
	s.SetCacheStatus(p1, cacheA, "")
	if st := status()["status"]; st != "CANCELLED" {
		t.Errorf("cleared override %v", st)
	}
	s.LogAction(p1, cacheA, "CACHE_SETTINGS_UPDATED", "INCREMENTAL", "Schedule changed", false)
	l := status()["cacheActionLogs"].([]any)[0].(map[string]any)
	if l["action"] != "CACHE_SETTINGS_UPDATED" || l["isScheduled"] != false || l["timestamp"] != "2026-01-01T00:04:00Z" {
		t.Errorf("log %v", l)
	}
	s.RemoveCache(p1, cacheA)
	if a := f.do("GET", "/data/projects/"+p1+"/cache/"+cacheA+"/status", partnerKey); a.status != 404 {
		t.Errorf("removed cache: %d", a.status)
	}
	if a := f.get("/data/projects/" + p1 + "/cache/status"); string(a.body) != "[]" {
		t.Errorf("removed cache still listed: %s", a.body)
	}
}

func TestMisuseOfControlsPanics(t *testing.T) {
	s := New(Options{})
	s.AddCache(p1, Cache{ID: cacheA})
	for name, fn := range map[string]func(){
		"finish without a run":   func() { s.FinishExecution(p1, cacheA, Incremental, "COMPLETED", Records{}) },
		"progress without a run": func() { s.Progress(p1, cacheA, FullRefresh, Records{}) },
		"unknown cache":          func() { s.StartExecution(p1, "nope", Incremental) },
		"unknown project":        func() { s.StartExecution("nope", cacheA, Incremental) },
		"unknown kind":           func() { s.StartExecution(p1, cacheA, Kind("weekly")) },
		"duplicate cache":        func() { s.AddCache(p1, Cache{ID: cacheA}) },
		"advance a real clock":   func() { New(Options{Now: time.Now}).Advance(time.Second) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
}

func TestLongGapIsCheap(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddCache(p1, Cache{ID: cacheA, IncrementalEvery: time.Minute, FullRefreshEvery: time.Hour, RecordsPerRun: 10})
	start := time.Now()
	s.Advance(5 * 365 * 24 * time.Hour)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a five-year step took %v", d)
	}
	f := serve(t, s)
	var h []map[string]any
	for _, e := range f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/executionHistory?limit=100000").array(t) {
		h = append(h, e.(map[string]any))
	}
	// 14 days of one-minute and hourly runs, give or take the edges.
	if want := 14*24*60 + 14*24; len(h) < want-5 || len(h) > want+5 {
		t.Errorf("history holds %d executions, want about %d", len(h), want)
	}
	oldest := isTimestamp(t, "finishedAt", h[len(h)-1]["finishedAt"])
	if s.Now().Sub(oldest) > retention {
		t.Errorf("oldest execution ended %v ago", s.Now().Sub(oldest))
	}
	// The rows of the skipped runs still count.
	p := h[0]["progress"].(map[string]any)
	if p["numberOfCachedRecords"].(float64) < 5*365*24*60*8 {
		t.Errorf("cached records %v", p["numberOfCachedRecords"])
	}
}

func TestDeterminism(t *testing.T) {
	run := func(seed int64) [][]byte {
		s := New(Options{Seed: seed})
		s.AddPartnerKey(partnerKey, partnerUID)
		s.AddCache(p1, Cache{ID: cacheA, IncrementalEvery: time.Minute, FullRefreshEvery: time.Hour, RecordsPerRun: 1000, FailEvery: 4})
		s.AddExport(p1, Export{ID: export1, UserID: partnerUID, Rows: 3, Bytes: 30, Files: 3})
		s.Advance(3 * time.Hour)
		f := serve(t, s)
		var out [][]byte
		for _, path := range []string{
			"/data/projects/" + p1 + "/cache/" + cacheA + "/status",
			"/data/projects/" + p1 + "/cache/status",
			"/data/projects/" + p1 + "/cache/" + cacheA + "/executionHistory?limit=200",
			"/data/projects/" + p1 + "/exports",
			"/data/projects/" + p1 + "/exports/" + export1,
			"/data/projects/" + p1 + "/exports/" + export1,
		} {
			out = append(out, f.get(path).body)
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Errorf("answer %d differs between equal seeds:\n%s\n%s", i, a[i], b[i])
		}
	}
	if bytes.Equal(a[2], c[2]) {
		t.Error("a different seed should give different record counts")
	}
	if bytes.Equal(a[4], c[4]) {
		t.Error("a different seed should give different signatures")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddCache(p1, Cache{ID: cacheA, IncrementalEvery: time.Minute, RecordsPerRun: 10})
	s.AddExport(p1, Export{ID: export1, UserID: partnerUID})
	f := serve(t, s)
	paths := []string{
		"/data/projects/" + p1 + "/cache/" + cacheA + "/status",
		"/data/projects/" + p1 + "/cache/status",
		"/data/projects/" + p1 + "/cache/" + cacheA + "/executionHistory",
		"/data/projects/" + p1 + "/exports",
		"/data/projects/" + p1 + "/exports/" + export1,
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 8 {
		wg.Go(func() {
			for j := range 25 {
				req, _ := http.NewRequest("GET", f.srv.URL+paths[(i+j)%len(paths)], nil)
				req.Header.Set("Authorization", "Bearer "+partnerKey)
				resp, err := f.srv.Client().Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			s.Advance(17 * time.Second)
			s.SetFault(export1, Fault{Delay: time.Millisecond})
			s.SetFault(export1, Fault{})
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.Requests(RouteCacheStatus) + s.Requests(RouteExport); n != 80 {
		t.Errorf("counted %d requests, want 80", n)
	}
}

func TestDemo(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 5, 4, 10, 11, 12, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s, info := NewDemo(now)
	f := serve(t, s)
	if len(info.Projects) != 2 || info.APIKey == "" {
		t.Fatalf("info %+v", info)
	}
	get := func(path string) answer {
		a := f.do("GET", path, info.APIKey)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
		return a
	}
	statuses := map[string]int{}
	caches := 0
	for _, p := range info.Projects {
		arr := get("/data/projects/" + p.ID + "/cache/status").array(t)
		caches += len(arr)
		for _, c := range arr {
			m := c.(map[string]any)
			checkCacheStatus(t, p.ID, m)
			statuses[m["status"].(string)]++
		}
		for _, id := range p.CacheIDs {
			get("/data/projects/" + p.ID + "/cache/" + id + "/status?excludeLogs=true")
			get("/data/projects/" + p.ID + "/cache/" + id)
			get("/data/projects/" + p.ID + "/cache/" + id + "/executionHistory")
		}
		for _, id := range p.ExportIDs {
			fields(t, id, get("/data/projects/"+p.ID+"/exports/"+id).object(t), exportFields)
		}
	}
	if caches < 10 || caches > 14 {
		t.Errorf("%d caches, want about a dozen", caches)
	}
	if statuses["NOT_INITIALIZED"] != 1 || statuses["RUNNING"] == 0 {
		t.Errorf("cache statuses %v", statuses)
	}

	// The hung cache has been hung since the back-fill began, and the
	// failing one has failed runs in its history.
	p := info.Projects[0]
	hung, failed := false, false
	for _, id := range p.CacheIDs {
		m := get("/data/projects/" + p.ID + "/cache/" + id + "/status").object(t)
		if e, ok := m["lastIncrementalCacheExecution"].(map[string]any); ok && e["progress"] == nil {
			hung = now().Sub(isTimestamp(t, "createdAt", e["createdAt"])) > time.Hour
		}
		if strings.Contains(string(get("/data/projects/"+p.ID+"/cache/"+id+"/executionHistory?limit=10").body), `"FAILED"`) {
			failed = true
		}
	}
	if !hung || !failed {
		t.Errorf("hung %v, failed %v", hung, failed)
	}

	exportStatuses := map[string]bool{}
	for _, e := range get("/data/projects/" + p.ID + "/exports?limit=200").array(t) {
		exportStatuses[e.(map[string]any)["status"].(string)] = true
	}
	for _, st := range []string{"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"} {
		if !exportStatuses[st] {
			t.Errorf("no %s export in the demo (have %v)", st, exportStatuses)
		}
	}

	// New exports keep coming with a moving clock.
	first := get("/data/projects/" + p.ID + "/exports?limit=1").array(t)[0].(map[string]any)["id"]
	mu.Lock()
	clock = clock.Add(15 * time.Minute)
	mu.Unlock()
	if newest := get("/data/projects/" + p.ID + "/exports?limit=1").array(t)[0].(map[string]any)["id"]; newest == first {
		t.Error("no new export after 15 minutes")
	}
}
