package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peakacom/peaka_exporter/peaka"
)

// Execution slots of a cache: the label values of "execution".
const (
	executionIncremental = "incremental"
	executionFullRefresh = "full_refresh"
)

var (
	cacheLabels     = []string{"project_id", "cache_id"}
	execLabels      = []string{"project_id", "cache_id", "execution"}
	cacheUpDesc     = desc("cache_up", "1 if this scrape read the cache's status from the Peaka API, 0 if the call failed (see peaka_target_failures_total). With peaka.min_interval set, an answer younger than it may be reused.", cacheLabels)
	cacheInfoDesc   = desc("cache_info", "The cached table of a cache; always 1.", cacheLabels, "catalog_id", "schema_name", "table_name")
	cacheStatusDesc = desc("cache_status", "The cache's status as a state set: 1 for the current status, 0 for the other documented ones. An undocumented status gets its own series.", cacheLabels, "status")

	execStatusDesc   = desc("cache_execution_status", "Status of the cache's latest execution of each kind as a state set over RUNNING, COMPLETED, FAILED, CANCELLED (and any undocumented value seen).", execLabels, "status")
	execRecordsDesc  = desc("cache_execution_records", "Record counters of the cache's latest execution of each kind, as reported by Peaka (kind: cached, inserted, updated, deleted). Peaka has been seen reporting 0 deleted records while rows were deleted.", execLabels, "kind")
	execCreatedDesc  = desc("cache_execution_created_timestamp_seconds", "When the cache's latest execution of each kind was created (Unix time); absent when Peaka does not say.", execLabels)
	execUpdatedDesc  = desc("cache_execution_updated_timestamp_seconds", "When the cache's latest execution of each kind last reported progress (Unix time). A RUNNING execution whose value stops moving is hung.", execLabels)
	execFinishedDesc = desc("cache_execution_finished_timestamp_seconds", "When the cache's latest execution of each kind finished (Unix time); absent while it runs.", execLabels)
	execDurationDesc = desc("cache_execution_duration_seconds", "finishedAt - createdAt of the cache's latest finished execution of each kind.", execLabels)
	execErrorDesc    = desc("cache_execution_error", "1 when the cache's latest execution of each kind carries an error object, else 0.", execLabels)
	lastActionDesc   = desc("cache_last_action_timestamp_seconds", "Time of the newest action-log entry of each action, cache type and scheduled flag (Unix time). Only with caches.action_logs enabled.", cacheLabels, "action", "cache_type", "scheduled")
)

// maxActionSeries bounds the action-log series of one cache; the action
// vocabulary is Peaka's, not ours, and may grow.
const maxActionSeries = 32

func desc(name, help string, labels []string, extra ...string) *prometheus.Desc {
	all := append(labels[:len(labels):len(labels)], extra...)
	return prometheus.NewDesc("peaka_"+name, help, all, nil)
}

// emitCache writes the gauges of one cache target.
func emitCache(e emitter, project string, c *cacheResult) {
	id := labelValue(c.id)
	if c.err != nil || c.status == nil {
		e.gauge(cacheUpDesc, 0, project, id)
		return
	}
	s := c.status
	e.gauge(cacheUpDesc, 1, project, id)
	e.gauge(cacheInfoDesc, 1, project, id, labelValue(s.CatalogID), labelValue(s.SchemaName), labelValue(s.TableName))
	e.stateSet(cacheStatusDesc, peaka.CacheStatuses, s.Status, project, id)
	emitExecution(e, project, id, executionIncremental, s.LastIncrementalCacheExecution)
	emitExecution(e, project, id, executionFullRefresh, s.LastFullRefreshCacheExecution)
	if c.withLogs {
		emitActionLogs(e, project, id, s.CacheActionLogs)
	}
}

func emitExecution(e emitter, project, id, kind string, x *peaka.Execution) {
	if x == nil {
		return
	}
	e.stateSet(execStatusDesc, peaka.ExecutionStatuses, x.Status, project, id, kind)
	if p := x.Progress; p != nil {
		for _, r := range []struct {
			kind string
			v    *int64
		}{
			{"cached", p.NumberOfCachedRecords},
			{"inserted", p.NumberOfInsertedRecords},
			{"updated", p.NumberOfUpdatedRecords},
			{"deleted", p.NumberOfDeletedRecords},
		} {
			if r.v != nil {
				e.gauge(execRecordsDesc, float64(*r.v), project, id, kind, r.kind)
			}
		}
	}
	if !x.CreatedAt.IsZero() {
		e.gauge(execCreatedDesc, x.CreatedAt.Seconds(), project, id, kind)
	}
	if !x.UpdatedAt.IsZero() {
		e.gauge(execUpdatedDesc, x.UpdatedAt.Seconds(), project, id, kind)
	}
	if !x.FinishedAt.IsZero() {
		e.gauge(execFinishedDesc, x.FinishedAt.Seconds(), project, id, kind)
		if !x.CreatedAt.IsZero() && !x.FinishedAt.Before(x.CreatedAt.Time) {
			e.gauge(execDurationDesc, x.FinishedAt.Sub(x.CreatedAt.Time).Seconds(), project, id, kind)
		}
	}
	e.gauge(execErrorDesc, boolValue(x.HasError()), project, id, kind)
}

func emitActionLogs(e emitter, project, id string, logs []peaka.ActionLog) {
	type key struct{ action, cacheType, scheduled string }
	newest := map[key]float64{}
	var order []key
	for _, l := range logs {
		if l.Timestamp.IsZero() {
			continue
		}
		k := key{labelValue(l.Action), labelValue(l.CacheType), boolLabel(l.IsScheduled)}
		ts := l.Timestamp.Seconds()
		old, ok := newest[k]
		if !ok {
			if len(order) == maxActionSeries {
				continue
			}
			order = append(order, k)
		}
		if !ok || ts > old {
			newest[k] = ts
		}
	}
	for _, k := range order {
		e.gauge(lastActionDesc, newest[k], project, id, k.action, k.cacheType, k.scheduled)
	}
}
