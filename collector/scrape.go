package collector

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/log/level"

	"github.com/peakacom/peaka_exporter/config"
	"github.com/peakacom/peaka_exporter/peaka"
)

// Target kinds: the label values of peaka_scrape_targets and
// peaka_target_failures_total.
const (
	kindCache      = "cache"
	kindExport     = "export"
	kindCacheList  = "cache_list"
	kindExportList = "export_list"
)

// Kinds of the calls that follow a cache's status: its history and its
// settings. They are not targets of their own but can fail.
const (
	kindCacheHistory  = "cache_history"
	kindCacheSettings = "cache_settings"
)

var (
	targetKinds  = []string{kindCache, kindExport, kindCacheList, kindExportList}
	failureKinds = append(targetKinds[:len(targetKinds):len(targetKinds)], kindCacheHistory, kindCacheSettings, kindDiscovery)
)

var (
	projectUpFamily      = gauge("project_up", "1 if the Peaka API answered for the project in this scrape (at least one call succeeded or reported an object missing); 0 when every call failed, as with a rejected key, an unreachable API, timeouts or server errors.", []string{"project_id"})
	scrapeDurationFamily = gauge("scrape_duration_seconds", "How long this scrape's calls to the Peaka API took.", nil)
	scrapeTargetsFamily  = gauge("scrape_targets", "Targets read in this scrape, by kind (cache, export, and the project-wide cache_list and export_list calls), failed ones included.", []string{"kind"})
)

type cacheResult struct {
	id       string
	label    escaped // id as a label value, set when written
	withLogs bool
	status   *peaka.CacheStatus
	err      error

	historyErr  error
	settingsErr error
	parseErrs   []error
}

type exportResult struct {
	id       string
	label    escaped // id as a label value, set when written
	fromList bool
	export   *peaka.Export
	err      error
}

// projectResult gathers what one scrape learnt of one project. Each job
// writes only its own fields, so the jobs need no lock.
type projectResult struct {
	cfg     *config.Project
	label   escaped        // the project ID as a label value
	caches  []*cacheResult // named caches, then (after merge) listed ones
	exports []*exportResult

	listCaches   bool
	cacheList    []peaka.CacheStatus
	cacheListErr error

	recentExports bool
	recent        []peaka.Export
	recentErr     error
	truncated     bool

	up bool
}

// Result is one scrape's outcome, written out by WriteExposition.
type Result struct {
	projects []*projectResult
	targets  map[string]int
	duration time.Duration
}

// Scrape reads every target of cfg's projects from the Peaka API, at most
// cfg.Peaka.MaxConcurrency calls at once, until ctx ends. Targets that fail
// or do not finish in time are reported as down; the scrape itself never
// fails. Discovered projects are not included: they are probed one by one.
func (e *Exporter) Scrape(ctx context.Context, cfg *config.Config) *Result {
	projects := make([]*config.Project, len(cfg.Projects))
	for i := range cfg.Projects {
		projects[i] = &cfg.Projects[i]
	}
	return e.scrapeProjects(ctx, cfg, projects)
}

func (e *Exporter) scrapeProjects(ctx context.Context, cfg *config.Config, projects []*config.Project) *Result {
	start := time.Now()
	client, clientErr := e.clientFor(cfg)
	res := &Result{targets: map[string]int{}}
	q := newWorkQueue()
	now := e.now()
	every := cfg.Peaka.SettingsRefresh.D()
	for _, p := range projects {
		pr := &projectResult{cfg: p, label: exposed(p.ID), recentExports: p.Exports.Recent > 0}
		pr.listCaches = p.Caches.All || e.lists.prefer(p.ID, len(p.Caches.IDs), now, cfg.Peaka.SettingsRefresh.D())
		res.projects = append(res.projects, pr)
		var pc *peaka.Client
		if client != nil {
			pc = client.WithKey(p.Key.Value())
		}
		run := func(f func() error) func() error {
			if clientErr != nil {
				return func() error { return clientErr }
			}
			return f
		}
		maxAge := cfg.Peaka.MinInterval.D()
		if pr.listCaches {
			q.add(func() {
				pr.cacheListErr = run(func() (err error) {
					pr.cacheList, err = shared(ctx, e.shared, "cache_list/"+p.ID, maxAge, func() ([]peaka.CacheStatus, error) {
						return pc.ProjectCacheStatuses(ctx, p.ID)
					})
					return err
				})()
				if pr.cacheListErr == nil && !p.Caches.All {
					e.lists.note(p.ID, len(pr.cacheList), e.now())
				}
				var known []string
				if p.Caches.All {
					known = e.states.known(p.ID)
				}
				pr.mergeCacheList(known)
				// Each listed cache's follow-up calls go on the queue at
				// once, not after the rest of the scrape.
				for _, c := range pr.caches {
					if c.status != nil {
						q.add(func() { e.account(ctx, pc, p.ID, c, every) })
					}
				}
			})
		}
		for _, id := range p.Caches.IDs {
			c := &cacheResult{id: id, withLogs: p.Caches.IncludeActionLogs()}
			pr.caches = append(pr.caches, c)
			if pr.listCaches {
				continue // the list call serves named caches too
			}
			key := "cache/" + p.ID + "/" + id + "/" + strconv.FormatBool(c.withLogs)
			q.add(func() {
				c.err = run(func() (err error) {
					c.status, err = shared(ctx, e.shared, key, maxAge, func() (*peaka.CacheStatus, error) {
						return pc.CacheStatus(ctx, p.ID, id, !c.withLogs)
					})
					return err
				})()
				if c.status != nil {
					e.account(ctx, pc, p.ID, c, every)
				}
			})
		}
		for _, id := range p.Exports.IDs {
			x := &exportResult{id: id}
			pr.exports = append(pr.exports, x)
			q.add(func() {
				x.err = run(func() (err error) {
					x.export, err = shared(ctx, e.shared, "export/"+p.ID+"/"+id, maxAge, func() (*peaka.Export, error) {
						return pc.Export(ctx, p.ID, id)
					})
					return err
				})()
			})
		}
		if pr.recentExports {
			since := now.Add(-p.Exports.Recent.D())
			key := fmt.Sprintf("recent_exports/%s/%s", p.ID, p.Exports.Recent)
			q.add(func() {
				pr.recentErr = run(func() error {
					r, err := shared(ctx, e.shared, key, maxAge, func() (recentExports, error) {
						list, truncated, err := pc.RecentExports(ctx, p.ID, since, 0)
						return recentExports{list, truncated}, err
					})
					pr.recent, pr.truncated = r.list, r.truncated
					return err
				})()
			})
		}
	}
	q.run(cfg.Peaka.MaxConcurrency)
	for _, pr := range res.projects {
		e.finish(pr, res.targets)
	}
	e.states.retain(func(_, _ string, cs *cacheState) bool {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		return now.Sub(cs.lastSeen) < stateExpiry
	})
	res.duration = time.Since(start)
	return res
}

// account counts a cache's finished executions (reading its history where
// it changed) and refreshes its settings when they are due, right after its
// status arrived.
func (e *Exporter) account(ctx context.Context, pc *peaka.Client, project string, c *cacheResult, every time.Duration) {
	cs := e.states.get(project, c.id)
	read := func(ctx context.Context, limit, offset int) ([]peaka.Execution, error) {
		return pc.ExecutionHistory(ctx, project, c.id, limit, offset)
	}
	c.historyErr = cs.account(ctx, read, c.status, e.now(), e.history)
	c.parseErrs, c.settingsErr = cs.refreshSettings(ctx, pc, project, c.id, e.now(), every)
}

type recentExports struct {
	list      []peaka.Export
	truncated bool
}

// shared runs fn through calls, typed.
func shared[T any](ctx context.Context, calls *sharedCalls, key string, maxAge time.Duration, fn func() (T, error)) (T, error) {
	v, err := calls.do(ctx, key, maxAge, func() (any, error) { return fn() })
	t, _ := v.(T)
	return t, err
}

// workQueue runs jobs on at most n goroutines, and jobs may add more: a
// scrape of thousands of targets should not park thousands of goroutines on
// the client's limit, and a cache's follow-up calls should start as soon as
// its status is in.
type workQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	jobs   []func()
	active int
}

func newWorkQueue() *workQueue {
	q := &workQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *workQueue) add(job func()) {
	q.mu.Lock()
	q.jobs = append(q.jobs, job)
	q.mu.Unlock()
	q.cond.Signal()
}

// run returns when every job, including those added meanwhile, is done.
func (q *workQueue) run(n int) {
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Go(q.work)
	}
	wg.Wait()
}

func (q *workQueue) work() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		// With nothing queued, a running job may still add some.
		for len(q.jobs) == 0 && q.active > 0 {
			q.cond.Wait()
		}
		if len(q.jobs) == 0 {
			q.cond.Broadcast() // wake the others to leave too
			return
		}
		job := q.jobs[0]
		q.jobs = q.jobs[1:]
		q.active++
		q.mu.Unlock()
		job()
		q.mu.Lock()
		q.active--
		if q.active == 0 && len(q.jobs) == 0 {
			q.cond.Broadcast()
		}
	}
}

// finish counts and logs each failed target once and adds the recent
// exports to the targets.
func (e *Exporter) finish(pr *projectResult, targets map[string]int) {
	pid := pr.cfg.ID
	answered := func(err error) {
		if err == nil || peaka.ReasonOf(err) == peaka.ReasonNotFound {
			pr.up = true
		}
	}
	if pr.listCaches {
		targets[kindCacheList]++
		answered(pr.cacheListErr)
		e.recordFailure(kindCacheList, pid, "", pr.cacheListErr)
	}
	for _, c := range pr.caches {
		targets[kindCache]++
		// A failed list call was counted once above, not again per cache.
		if !pr.listCaches || pr.cacheListErr == nil {
			answered(c.err)
			e.recordFailure(kindCache, pid, c.id, c.err)
		}
		e.recordFailure(kindCacheHistory, pid, c.id, c.historyErr)
		e.recordFailure(kindCacheSettings, pid, c.id, c.settingsErr)
		for _, err := range c.parseErrs {
			level.Warn(e.logger).Log("msg", "cache schedule skipped", "project_id", pid, "cache_id", c.id, "err", err)
		}
	}
	if pr.recentExports {
		targets[kindExportList]++
		answered(pr.recentErr)
		e.recordFailure(kindExportList, pid, "", pr.recentErr)
		if pr.truncated {
			level.Warn(e.logger).Log("msg", "more recent exports than the exporter reads in one scrape; the oldest are left out", "project_id", pid, "max_pages", peaka.DefaultMaxRecentExportPages)
		}
	}
	named := len(pr.exports)
	for _, x := range pr.exports[:named] {
		targets[kindExport]++
		answered(x.err)
		e.recordFailure(kindExport, pid, x.id, x.err)
	}
	pr.mergeRecentExports()
	targets[kindExport] += len(pr.exports) - named
}

// mergeCacheList turns the project-wide list answer into cache targets:
// named caches missing from it are not found, and with caches.all every
// other listed cache is a target too. When the call failed, named caches
// and those seen in earlier scrapes (known) are reported down with its
// error (the failure itself is counted once, on the list).
func (pr *projectResult) mergeCacheList(known []string) {
	named := map[string]*cacheResult{}
	for _, c := range pr.caches {
		named[c.id] = c
	}
	if pr.cacheListErr != nil {
		for _, c := range pr.caches {
			c.err = pr.cacheListErr
		}
		for _, id := range known {
			if named[id] == nil {
				pr.caches = append(pr.caches, &cacheResult{id: id, err: pr.cacheListErr})
			}
		}
		return
	}
	withLogs := pr.cfg.Caches.IncludeActionLogs()
	listed := map[string]bool{}
	for i := range pr.cacheList {
		s := &pr.cacheList[i]
		if s.ID == "" || listed[s.ID] {
			continue
		}
		listed[s.ID] = true
		if c := named[s.ID]; c != nil {
			c.status = s
			continue
		}
		if pr.cfg.Caches.All {
			pr.caches = append(pr.caches, &cacheResult{id: s.ID, withLogs: withLogs, status: s})
		}
	}
	for _, c := range pr.caches {
		if c.status == nil {
			c.err = &peaka.Error{Endpoint: peaka.EndpointProjectCacheStatus, Target: "project " + pr.cfg.ID + " cache " + c.id,
				StatusCode: 200, Reason: peaka.ReasonNotFound, Message: "cache not in the project's cache list"}
		}
	}
	sort.SliceStable(pr.caches[len(named):], func(i, j int) bool {
		rest := pr.caches[len(named):]
		return rest[i].id < rest[j].id
	})
}

// mergeRecentExports adds listed exports that no named export covers; a
// named export's own read (with its files) wins over the list item.
func (pr *projectResult) mergeRecentExports() {
	if pr.recentErr != nil {
		return
	}
	seen := map[string]bool{}
	for _, x := range pr.exports {
		seen[x.id] = true
	}
	for i := range pr.recent {
		ex := &pr.recent[i]
		if seen[ex.ID] {
			continue
		}
		seen[ex.ID] = true
		pr.exports = append(pr.exports, &exportResult{id: ex.ID, fromList: true, export: ex})
	}
}

// recordFailure counts a failed target and logs it once at warn level.
func (e *Exporter) recordFailure(kind, project, id string, err error) {
	if err == nil {
		return
	}
	reason := peaka.ReasonOf(err)
	e.failures.WithLabelValues(kind, string(reason)).Inc()
	kv := []any{"msg", "target failed", "kind", kind, "project_id", project}
	switch kind {
	case kindCache, kindCacheHistory, kindCacheSettings:
		kv = append(kv, "cache_id", id)
	case kindExport:
		kv = append(kv, "export_id", id)
	}
	level.Warn(e.logger).Log(append(kv, "reason", reason, "err", err)...)
}

// projectIDs returns the IDs of the scraped projects.
func (r *Result) projectIDs() map[string]bool {
	ids := make(map[string]bool, len(r.projects))
	for _, pr := range r.projects {
		ids[pr.cfg.ID] = true
	}
	return ids
}

// write writes the scrape's own families.
func (r *Result) write(x *expositionWriter) {
	x.begin(projectUpFamily)
	for _, pr := range r.projects {
		x.sample(boolValue(pr.up), pr.label)
	}
	r.writeCaches(x)
	r.writeExports(x)
	x.begin(scrapeDurationFamily)
	x.sample(r.duration.Seconds())
	x.begin(scrapeTargetsFamily)
	for _, k := range targetKinds {
		x.sample(float64(r.targets[k]), escaped(k)) // a constant
	}
}
