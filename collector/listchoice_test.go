package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

const routeProjectCaches = "GET /data/projects/{projectId}/cache/status"

func TestNamedCachesUseTheProjectListWhenCheaper(t *testing.T) {
	e := newEnv(t)
	e.withOptions(Options{})
	e.exp.lists.enabled = true // newEnv's exporter reads per cache; this test is about the choice
	s := e.sim
	var small, big []string
	for i := range 10 {
		id := fmt.Sprintf("s-%02d", i)
		s.AddCache("small", peakatest.Cache{ID: id, TableName: id})
		if i < 5 {
			small = append(small, id)
		}
	}
	for i := range 100 {
		id := fmt.Sprintf("b-%03d", i)
		s.AddCache("big", peakatest.Cache{ID: id, TableName: id})
		if i < 3 {
			big = append(big, id)
		}
	}
	s.AddCache("single", peakatest.Cache{ID: "only", TableName: "only"})
	e.configure(fmt.Sprintf(`  - id: small
    caches:
      ids: [%s]
  - id: big
    caches:
      ids: [%s]
  - id: single
    caches:
      ids: [only]
`, strings.Join(small, ", "), strings.Join(big, ", ")), "settings_refresh: 10m")

	calls := func() (lists, perCache int) {
		defer s.ResetRequests()
		return s.Requests(routeProjectCaches), s.Requests(routeCacheStatus)
	}
	// First scrape: both projects with several named caches try the list;
	// the single cache is read on its own.
	_, text := e.scrape(context.Background())
	if l, c := calls(); l != 2 || c != 1 {
		t.Errorf("first scrape: %d list and %d per-cache calls, want 2 and 1", l, c)
	}
	if got := value(t, text, `peaka_scrape_targets{kind="cache"}`); got != "9" {
		t.Errorf("cache targets = %s, want 9 (only the named ones)", got)
	}
	absent(t, text, `peaka_cache_up{cache_id="s-07"`)

	// The big project's list holds 100 caches for 3 named: per-cache calls
	// from now on; the small one keeps its list.
	s.Advance(time.Minute)
	_, text = e.scrape(context.Background())
	if l, c := calls(); l != 1 || c != 4 {
		t.Errorf("second scrape: %d list and %d per-cache calls, want 1 and 4", l, c)
	}
	for _, id := range append(small, big...) {
		project := map[bool]string{true: "small", false: "big"}[strings.HasPrefix(id, "s-")]
		if got := value(t, text, fmt.Sprintf(`peaka_cache_up{cache_id=%q,project_id=%q}`, id, project)); got != "1" {
			t.Errorf("cache %s up = %s", id, got)
		}
	}

	// After settings_refresh the big project's list is measured again.
	s.Advance(10 * time.Minute)
	e.scrape(context.Background())
	if l, c := calls(); l != 2 || c != 1 {
		t.Errorf("after the recheck period: %d list and %d per-cache calls, want 2 and 1", l, c)
	}
}
