package peakatest

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

func historyIDs(t *testing.T, f *fixture, query string) []string {
	t.Helper()
	var ids []string
	for _, e := range f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/executionHistory" + query).array(t) {
		ids = append(ids, e.(map[string]any)["id"].(string))
	}
	return ids
}

func TestHistoryPagingAndAging(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddCache(p1, Cache{ID: cacheA})
	var made []string // oldest first
	for i := range 15 {
		k := Incremental
		if i%5 == 0 {
			k = FullRefresh
		}
		made = append(made, s.RunExecution(p1, cacheA, k, "COMPLETED", Records{Cached: int64(i)}))
		s.Advance(time.Hour)
	}
	f := serve(t, s)

	newestFirst := func(from, to int) []string { // made[to-1] ... made[from]
		var out []string
		for i := to - 1; i >= from; i-- {
			out = append(out, made[i])
		}
		return out
	}
	eq := func(name string, got, want []string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	eq("default page", historyIDs(t, f, ""), newestFirst(5, 15))
	eq("second page", historyIDs(t, f, "?limit=10&offset=10"), newestFirst(0, 5))
	eq("limit 3 offset 2", historyIDs(t, f, "?limit=3&offset=2"), newestFirst(10, 13))
	eq("past the end", historyIDs(t, f, "?offset=100"), nil)

	for _, q := range []string{"?limit=abc", "?limit=0", "?limit=-1", "?offset=-1", "?offset=x", "?limit=1.5"} {
		if a := f.do("GET", "/data/projects/"+p1+"/cache/"+cacheA+"/executionHistory"+q, partnerKey); a.status != 400 {
			t.Errorf("%s: status %d, want 400", q, a.status)
		}
	}

	// Execution i ended at t0 + i hours; the clock is at t0 + 15h. Each is
	// kept 14 days after it ended.
	s.SetTime(t0.Add(14*24*time.Hour + 4*time.Hour + 30*time.Minute))
	eq("after 14 days", historyIDs(t, f, "?limit=50"), newestFirst(5, 15))
	s.SetTime(t0.Add(14*24*time.Hour + 14*time.Hour))
	eq("exactly at the horizon", historyIDs(t, f, "?limit=50"), newestFirst(14, 15))
	s.Advance(time.Microsecond)
	eq("all aged out", historyIDs(t, f, "?limit=50"), nil)

	// The status slots remember the last runs even after history forgot them.
	m := f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/status").object(t)
	if m["status"] != "COMPLETED" || m["lastIncrementalCacheExecution"] == nil || m["lastFullRefreshCacheExecution"] == nil {
		t.Errorf("status after aging: %v", m)
	}
	// A running execution never ages out.
	id := s.StartExecution(p1, cacheA, Incremental)
	s.Advance(30 * 24 * time.Hour)
	eq("running is kept", historyIDs(t, f, ""), []string{id})
}

func exportPage(t *testing.T, f *fixture, project, query string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range f.get("/data/projects/" + project + "/exports" + query).array(t) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func TestExportsPaging(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	// Seven exports, a fractional second apart so the cursor must keep the
	// fraction; added out of order to prove the list sorts.
	base := t0.Add(-time.Hour)
	var want []string // newest first
	for _, i := range []int{3, 0, 6, 1, 5, 2, 4} {
		s.AddExport(p1, Export{ID: fmt.Sprintf("exp-%d", i), CreatedAt: base.Add(time.Duration(i)*time.Minute + 123456*time.Microsecond)})
	}
	for i := 6; i >= 0; i-- {
		want = append(want, fmt.Sprintf("exp-%d", i))
	}
	s.AddExport(p1, Export{ID: "future", CreatedAt: t0.Add(time.Hour)})
	f := serve(t, s)

	var got []string
	cursor := ""
	pages := 0
	for {
		q := "?limit=3"
		if cursor != "" {
			q += "&createdBefore=" + url.QueryEscape(cursor)
		}
		page := exportPage(t, f, p1, q)
		if len(page) == 0 {
			break
		}
		pages++
		for _, e := range page {
			got = append(got, e["id"].(string))
		}
		cursor = page[len(page)-1]["createdAt"].(string)
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if pages != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages %d, ids %v, want 3 pages of %v", pages, got, want)
	}

	if n := len(exportPage(t, f, p1, "")); n != 7 {
		t.Errorf("default limit: %d items, want all 7 (future one hidden)", n)
	}
	if n := len(exportPage(t, f, p1, "?limit=0")); n != 1 {
		t.Errorf("limit=0 clamps to 1, got %d", n)
	}
	if n := len(exportPage(t, f, p1, "?limit=-5")); n != 1 {
		t.Errorf("limit=-5 clamps to 1, got %d", n)
	}
	for _, q := range []string{"?createdBefore=yesterday", "?createdBefore=2026-01-01", "?limit=many"} {
		if a := f.do("GET", "/data/projects/"+p1+"/exports"+q, partnerKey); a.status != 400 {
			t.Errorf("%s: status %d, want 400", q, a.status)
		}
	}
	s.Advance(2 * time.Hour)
	if page := exportPage(t, f, p1, "?limit=1"); page[0]["id"] != "future" {
		t.Errorf("an export appears once the clock reaches its createdAt: %v", page)
	}
}

func TestExportsLimitClamp(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	for i := range 250 {
		s.AddExport(p1, Export{CreatedAt: t0.Add(-time.Duration(i) * time.Second)})
	}
	f := serve(t, s)
	for q, want := range map[string]int{"": 50, "?limit=200": 200, "?limit=201": 200, "?limit=100000": 200, "?limit=7": 7} {
		if n := len(exportPage(t, f, p1, q)); n != want {
			t.Errorf("%q: %d items, want %d", q, n, want)
		}
	}
}

func TestExportsStatusFilter(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddExport(p1, Export{ID: "ok", CreatedAt: t0.Add(-time.Hour)})
	s.AddExport(p1, Export{ID: "bad", CreatedAt: t0.Add(-50 * time.Minute), Fail: "boom"})
	s.AddExport(p1, Export{ID: "run", CreatedAt: t0.Add(-2 * time.Second), RunFor: time.Minute})
	s.AddExport(p1, Export{ID: "new"})
	s.AddExport(p1, Export{ID: "stop", CreatedAt: t0.Add(-40 * time.Minute)})
	s.SetExportStatus(p1, "stop", "CANCELLED")
	f := serve(t, s)
	ids := func(q string) string {
		var out []string
		for _, e := range exportPage(t, f, p1, q) {
			out = append(out, e["id"].(string))
		}
		return fmt.Sprint(out)
	}
	for q, want := range map[string]string{
		"?status=SUCCEEDED":               "[ok]",
		"?status=SUCCEEDED,RUNNING":       "[run ok]",
		"?status=FAILED,CANCELLED":        "[stop bad]",
		"?status=PENDING":                 "[new]",
		"?status=succeeded,%20FAILED":     "[bad ok]",
		"?status=EXPIRED":                 "[]",
		"":                                "[new run stop bad ok]",
		"?status=SUCCEEDED&limit=1":       "[ok]",
		"?status=RUNNING,PENDING&limit=1": "[new]",
	} {
		if got := ids(q); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
}
