package collector

import (
	"github.com/peakacom/peaka_exporter/peaka"
)

// Execution slots of a cache: the label values of "execution".
const (
	executionIncremental = "incremental"
	executionFullRefresh = "full_refresh"
)

var (
	cacheLabels = []string{"project_id", "cache_id"}
	execLabels  = []string{"project_id", "cache_id", "execution"}

	cacheUpFamily     = gauge("cache_up", "1 if this scrape read the cache's status from the Peaka API, 0 if the call failed (see peaka_target_failures_total). With peaka.min_interval set, an answer younger than it may be reused.", cacheLabels)
	cacheInfoFamily   = gauge("cache_info", "The cached table of a cache; always 1.", cacheLabels, "catalog_id", "schema_name", "table_name")
	cacheStatusFamily = gauge("cache_status", "The cache's status as a state set: 1 for the current status, 0 for the other documented ones. An undocumented status gets its own series.", cacheLabels, "status")

	execStatusFamily   = gauge("cache_execution_status", "Status of the cache's latest execution of each kind as a state set over RUNNING, COMPLETED, FAILED, CANCELLED (and any undocumented value seen).", execLabels, "status")
	execRecordsFamily  = gauge("cache_execution_records", "Record counters of the cache's latest execution of each kind, as reported by Peaka (kind: cached, inserted, updated, deleted). Peaka has been seen reporting 0 deleted records while rows were deleted.", execLabels, "kind")
	execCreatedFamily  = gauge("cache_execution_created_timestamp_seconds", "When the cache's latest execution of each kind was created (Unix time); absent when Peaka does not say.", execLabels)
	execUpdatedFamily  = gauge("cache_execution_updated_timestamp_seconds", "When the cache's latest execution of each kind last reported progress (Unix time). A RUNNING execution whose value stops moving is hung.", execLabels)
	execFinishedFamily = gauge("cache_execution_finished_timestamp_seconds", "When the cache's latest execution of each kind finished (Unix time); absent while it runs.", execLabels)
	execDurationFamily = gauge("cache_execution_duration_seconds", "finishedAt - createdAt of the cache's latest finished execution of each kind.", execLabels)
	execErrorFamily    = gauge("cache_execution_error", "1 when the cache's latest execution of each kind carries an error object, else 0.", execLabels)
	lastActionFamily   = gauge("cache_last_action_timestamp_seconds", "Time of the newest action-log entry of each action, cache type and scheduled flag (Unix time). Only with caches.action_logs enabled.", cacheLabels, "action", "cache_type", "scheduled")
)

// maxActionSeries bounds the action-log series of one cache; the action
// vocabulary is Peaka's, not ours, and may grow.
const maxActionSeries = 32

// cacheWriters write, family after family, the series of each cache that
// was read; cache_up (for every cache) comes first, in writeCaches.
var cacheWriters = []struct {
	family
	write func(x *expositionWriter, project, id escaped, s *peaka.CacheStatus, withLogs bool)
}{
	{cacheInfoFamily, func(x *expositionWriter, project, id escaped, s *peaka.CacheStatus, _ bool) {
		x.sample(1, project, id, exposed(s.CatalogID), exposed(s.SchemaName), exposed(s.TableName))
	}},
	{cacheStatusFamily, func(x *expositionWriter, project, id escaped, s *peaka.CacheStatus, _ bool) {
		x.stateSet(peaka.CacheStatuses, s.Status, project, id)
	}},
	{execStatusFamily, eachExecution(func(x *expositionWriter, project, id, kind escaped, e *peaka.Execution) {
		x.stateSet(peaka.ExecutionStatuses, e.Status, project, id, kind)
	})},
	{execRecordsFamily, eachExecution(func(x *expositionWriter, project, id, kind escaped, e *peaka.Execution) {
		p := e.Progress
		if p == nil {
			return
		}
		for _, r := range [...]struct {
			kind escaped
			v    *int64
		}{
			{"cached", p.NumberOfCachedRecords},
			{"inserted", p.NumberOfInsertedRecords},
			{"updated", p.NumberOfUpdatedRecords},
			{"deleted", p.NumberOfDeletedRecords},
		} {
			if r.v != nil {
				x.sample(float64(*r.v), project, id, kind, r.kind)
			}
		}
	})},
	{execCreatedFamily, eachExecution(func(x *expositionWriter, project, id, kind escaped, e *peaka.Execution) {
		if !e.CreatedAt.IsZero() {
			x.sample(e.CreatedAt.Seconds(), project, id, kind)
		}
	})},
	{execUpdatedFamily, eachExecution(func(x *expositionWriter, project, id, kind escaped, e *peaka.Execution) {
		if !e.UpdatedAt.IsZero() {
			x.sample(e.UpdatedAt.Seconds(), project, id, kind)
		}
	})},
	{execFinishedFamily, eachExecution(func(x *expositionWriter, project, id, kind escaped, e *peaka.Execution) {
		if !e.FinishedAt.IsZero() {
			x.sample(e.FinishedAt.Seconds(), project, id, kind)
		}
	})},
	{execDurationFamily, eachExecution(func(x *expositionWriter, project, id, kind escaped, e *peaka.Execution) {
		if !e.FinishedAt.IsZero() && !e.CreatedAt.IsZero() && !e.FinishedAt.Before(e.CreatedAt.Time) {
			x.sample(e.FinishedAt.Sub(e.CreatedAt.Time).Seconds(), project, id, kind)
		}
	})},
	{execErrorFamily, eachExecution(func(x *expositionWriter, project, id, kind escaped, e *peaka.Execution) {
		x.sample(boolValue(e.HasError()), project, id, kind)
	})},
	{lastActionFamily, func(x *expositionWriter, project, id escaped, s *peaka.CacheStatus, withLogs bool) {
		if withLogs {
			writeActionLogs(x, project, id, s.CacheActionLogs)
		}
	}},
}

// eachExecution adapts a per-execution writer to both slots of a cache.
func eachExecution(f func(x *expositionWriter, project, id, kind escaped, e *peaka.Execution)) func(*expositionWriter, escaped, escaped, *peaka.CacheStatus, bool) {
	return func(x *expositionWriter, project, id escaped, s *peaka.CacheStatus, _ bool) {
		if e := s.LastIncrementalCacheExecution; e != nil {
			f(x, project, id, executionIncremental, e)
		}
		if e := s.LastFullRefreshCacheExecution; e != nil {
			f(x, project, id, executionFullRefresh, e)
		}
	}
}

// writeCaches writes the gauges of every cache target of a scrape.
func (r *Result) writeCaches(x *expositionWriter) {
	x.begin(cacheUpFamily)
	for _, pr := range r.projects {
		for _, c := range pr.caches {
			c.label = exposed(c.id) // once, for every family below
			x.sample(boolValue(c.err == nil && c.status != nil), pr.label, c.label)
		}
	}
	for _, cw := range cacheWriters {
		x.begin(cw.family)
		for _, pr := range r.projects {
			for _, c := range pr.caches {
				if c.err == nil && c.status != nil {
					cw.write(x, pr.label, c.label, c.status, c.withLogs)
				}
			}
		}
	}
}

func writeActionLogs(x *expositionWriter, project, id escaped, logs []peaka.ActionLog) {
	// A series is found by the values as the API sent them, and their
	// label values are made once per series: a cache's log has dozens of
	// entries but a few series. Two values may make the same label value
	// (cut to the length limit), so a new pair is looked up by its label
	// values too: one series each.
	type (
		raw   struct{ action, cacheType string }
		label struct{ action, cacheType, scheduled escaped }
	)
	var (
		raws   [maxActionSeries]raw
		labels [maxActionSeries]label
		newest [maxActionSeries]float64
		n      int
	)
	for _, l := range logs {
		if l.Timestamp.IsZero() {
			continue
		}
		r, scheduled := raw{l.Action, l.CacheType}, boolLabel(l.IsScheduled)
		i := 0
		for i < n && (raws[i] != r || labels[i].scheduled != scheduled) {
			i++
		}
		if i == n {
			lb := label{exposed(l.Action), exposed(l.CacheType), scheduled}
			i = 0
			for i < n && labels[i] != lb {
				i++
			}
			if i == n {
				if n == maxActionSeries {
					continue
				}
				raws[n], labels[n], newest[n] = r, lb, l.Timestamp.Seconds()
				n++
				continue
			}
		}
		newest[i] = max(newest[i], l.Timestamp.Seconds())
	}
	for i := range n {
		x.sample(newest[i], project, id, labels[i].action, labels[i].cacheType, labels[i].scheduled)
	}
}
