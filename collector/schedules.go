package collector

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/peakacom/peaka_exporter/peaka"
)

var (
	scheduleIntervalFamily    = gauge("cache_schedule_interval_seconds", "Refresh interval of the cache's schedule of each kind, from its ISO-8601 expression (BASIC schedules only; absent for NONE). Read from the cache's settings at most every peaka.settings_refresh, so it may be that old.", cacheLabels, "execution")
	scheduleParseErrorsFamily = counter("cache_schedule_parse_errors_total", "Schedule expressions of the cache that could not be read as an ISO-8601 duration; such a schedule is skipped.", cacheLabels)
)

// settingsRetry is how soon settings are asked for again after a failed
// read, so that a broken call is neither hammered nor left for the whole
// refresh period.
const settingsRetry = time.Minute

// claimSettings reports whether this scrape should read the cache's
// settings, and if so marks the read as under way so that a concurrent
// scrape does not repeat it.
func (cs *cacheState) claimSettings(now time.Time) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.settingsBusy || now.Before(cs.settingsNext) {
		return false
	}
	cs.settingsBusy = true
	return true
}

// refreshSettings reads the cache's settings when they are due and keeps
// its schedule intervals. Unparsable expressions are counted, returned as
// parseErrs and skipped; a failed read (err) keeps the old values.
func (cs *cacheState) refreshSettings(ctx context.Context, pc *peaka.Client, project, cache string, now time.Time, every time.Duration) (parseErrs []error, err error) {
	if !cs.claimSettings(now) {
		return nil, nil
	}
	settings, err := pc.CacheSettings(ctx, project, cache)

	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.settingsBusy = false
	if err != nil {
		cs.settingsNext = now.Add(min(every, settingsRetry))
		return nil, err
	}
	// Spread the reads of many caches over the period instead of letting
	// them all fall due in the same scrape again.
	cs.settingsNext = now.Add(every - jitter(project+"/"+cache, every/10))
	for i, sched := range []*peaka.Schedule{settings.IncrementalCacheSchedule, settings.FullRefreshCacheSchedule} {
		cs.intervals[i] = 0
		if sched == nil || (sched.Expression == "" && (sched.Type == "" || sched.Type == "NONE")) || sched.Type == "NONE" {
			continue
		}
		d, perr := peaka.ParseISODuration(sched.Expression)
		if perr == nil && d <= 0 {
			perr = fmt.Errorf("schedule interval %s is not positive", d)
		}
		if perr != nil {
			cs.parseErrors++
			parseErrs = append(parseErrs, fmt.Errorf("%s schedule: %w", executionKinds[i], perr))
			continue
		}
		cs.intervals[i] = d.Seconds()
	}
	return parseErrs, nil
}

// jitter is a stable fraction of max derived from key.
func jitter(key string, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(max))
}
