package collector

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peakacom/peaka_exporter/peaka"
)

var (
	executionsTotalDesc = desc("cache_executions_total", "Executions of the cache seen to finish since the exporter started, by outcome; each execution is counted once by its id, however many Prometheus servers scrape.", execLabels, "status")
	recordsTotalDesc    = desc("cache_records_total", "Records moved by the executions counted in peaka_cache_executions_total (kind: inserted, updated, deleted).", execLabels, "kind")

	// Outcomes and record kinds that exist from a cache's first sight, so
	// that increase() sees the first run.
	finishedStatuses = []string{"COMPLETED", "FAILED", "CANCELLED"}
	recordKinds      = []string{"inserted", "updated", "deleted"}
	executionKinds   = []string{executionIncremental, executionFullRefresh}
)

type cacheKey struct{ project, cache string }

// cacheCounts is what the exporter remembers of one cache between scrapes.
type cacheCounts struct {
	counted    [2]string             // id of the last execution counted, per slot
	executions map[[2]string]float64 // {execution, status} → count
	records    [2][3]float64         // slot × recordKinds
}

// executionCounters turns the latest execution of each slot into counters
// that count each finished execution once. It is shared by all scrapes,
// so concurrent scrapers cannot double count.
type executionCounters struct {
	mu     sync.Mutex
	caches map[cacheKey]*cacheCounts
}

func newExecutionCounters() *executionCounters {
	return &executionCounters{caches: map[cacheKey]*cacheCounts{}}
}

// observe records a cache's status. On the first sight of a cache nothing
// from the past is counted: an execution that had already finished is only
// remembered; one still running will count when it finishes.
func (c *executionCounters) observe(project, cacheID string, s *peaka.CacheStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey{project, cacheID}
	cc, seen := c.caches[k]
	if !seen {
		cc = &cacheCounts{executions: map[[2]string]float64{}}
		for _, x := range executionKinds {
			for _, st := range finishedStatuses {
				cc.executions[[2]string{x, st}] = 0
			}
		}
		c.caches[k] = cc
	}
	for slot, x := range []*peaka.Execution{s.LastIncrementalCacheExecution, s.LastFullRefreshCacheExecution} {
		if x == nil || x.ID == "" || !x.Finished() || cc.counted[slot] == x.ID {
			continue
		}
		cc.counted[slot] = x.ID
		if !seen {
			continue
		}
		cc.executions[[2]string{executionKinds[slot], labelValue(x.Status)}]++
		if p := x.Progress; p != nil {
			for i, v := range []*int64{p.NumberOfInsertedRecords, p.NumberOfUpdatedRecords, p.NumberOfDeletedRecords} {
				if v != nil && *v > 0 {
					cc.records[slot][i] += float64(*v)
				}
			}
		}
	}
}

// known returns the IDs of a project's caches that have counters, sorted.
func (c *executionCounters) known(project string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for k := range c.caches {
		if k.project == project {
			ids = append(ids, k.cache)
		}
	}
	sort.Strings(ids)
	return ids
}

// retain forgets the caches for which keep is false (a reload dropped them).
func (c *executionCounters) retain(keep func(project, cache string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.caches {
		if !keep(k.project, k.cache) {
			delete(c.caches, k)
		}
	}
}

// Describe implements prometheus.Collector.
func (c *executionCounters) Describe(ch chan<- *prometheus.Desc) {
	ch <- executionsTotalDesc
	ch <- recordsTotalDesc
}

// Collect implements prometheus.Collector.
func (c *executionCounters) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, cc := range c.caches {
		project, id := labelValue(k.project), labelValue(k.cache)
		for key, v := range cc.executions {
			ch <- prometheus.MustNewConstMetric(executionsTotalDesc, prometheus.CounterValue, v, project, id, key[0], key[1])
		}
		for slot, x := range executionKinds {
			for i, kind := range recordKinds {
				ch <- prometheus.MustNewConstMetric(recordsTotalDesc, prometheus.CounterValue, cc.records[slot][i], project, id, x, kind)
			}
		}
	}
}
