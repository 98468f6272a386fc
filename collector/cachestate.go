package collector

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peakacom/peaka_exporter/peaka"
)

var (
	executionsTotalFamily = counter("cache_executions_total", "Executions of the cache that finished since the exporter first saw the cache, by outcome; read from the cache's execution history so that runs between scrapes count too, each exactly once by its id however many Prometheus servers scrape.", execLabels, "status")
	recordsTotalFamily    = counter("cache_records_total", "Records moved by the executions counted in peaka_cache_executions_total (kind: inserted, updated, deleted).", execLabels, "kind")
	historyGapsFamily     = counter("cache_history_gaps_total", "Times the exporter could not account for every execution of the cache: its last counted execution was no longer in the history (kept 14 days), the history answered 404, or kept failing. Runs in such a gap may be missing from peaka_cache_executions_total.", cacheLabels)

	// Outcomes, record kinds and execution kinds whose series exist from a
	// cache's first sight, so that increase() sees the first run.
	finishedStatuses = []string{"COMPLETED", "FAILED", "CANCELLED"}
	recordKinds      = []string{"inserted", "updated", "deleted"}
	executionKinds   = []string{executionIncremental, executionFullRefresh}
)

// executionOther labels history entries whose executionMode names neither
// kind; the API documents no values for it.
const executionOther = "other"

const (
	defaultHistoryPageSize = 50
	defaultMaxHistoryPages = 5
	// historyRetention is how long Peaka keeps executions (14 days) plus a
	// margin; older ones need not be remembered.
	historyRetention = 15 * 24 * time.Hour
	// maxKnownExecutions bounds the memory of one cache whatever its pace.
	maxKnownExecutions = 20000
	// maxHistoryFailures is how many scrapes in a row may fail to read the
	// history before the exporter gives up on the runs in between.
	maxHistoryFailures = 3
	// stateExpiry forgets caches (of caches.all projects) not seen for a day.
	stateExpiry = 24 * time.Hour
)

type cacheKey struct{ project, cache string }

// knownExecution is an execution the exporter has accounted for.
type knownExecution struct {
	counted bool      // finished and counted (or finished before first sight)
	gen     int       // the scan generation that learnt it (0: first sight)
	created time.Time // for forgetting it once it left the history
	// settled marks an execution taken from the status because the history
	// did not show it: what is older than it was not read, so a walk must
	// not stop there.
	settled bool
}

// resumePoint is where a history scan that ran out of pages goes on at the
// next scrape. Newer executions only push older ones to higher offsets, so
// going on at the same offset skips nothing.
type resumePoint struct {
	offset int
	origin int // generation of the scan that began it
}

// cacheState is what the exporter remembers of one cache between scrapes.
type cacheState struct {
	// lock serialises accounting, history calls included, so that two
	// scrapes never count the same execution. A channel so that waiting
	// for it respects the scrape's deadline.
	lock chan struct{}

	// Guarded by lock.
	seen        bool
	known       map[string]*knownExecution
	slots       [2]string
	gen         int
	resume      *resumePoint
	historyFail int
	// horizon is, during a scan, the creation time of the oldest execution
	// still to be seen finish that has left its slot: the walk goes on at
	// least that far back. Zero: none.
	horizon time.Time

	// Guarded by mu; read by Collect.
	mu         sync.Mutex
	lastSeen   time.Time
	executions [2][3]float64 // executionKinds × finishedStatuses
	records    [2][3]float64 // executionKinds × recordKinds
	// otherExecutions and otherRecords count what the arrays have no
	// place for (an undocumented execution mode or outcome); nil until then.
	otherExecutions map[[2]string]float64 // {execution, status}
	otherRecords    map[[2]string]float64 // {execution, kind}
	gaps            float64
	parseErrors     float64
	intervals       [2]float64 // schedule interval in seconds per kind; 0: none
	settingsNext    time.Time
	settingsBusy    bool
}

func newCacheState() *cacheState {
	return &cacheState{
		lock:  make(chan struct{}, 1),
		known: map[string]*knownExecution{},
	}
}

// historyPage reads one page of a cache's execution history.
type historyPage func(ctx context.Context, limit, offset int) ([]peaka.Execution, error)

// historyOptions bounds the history calls of one cache in one scrape.
type historyOptions struct {
	pageSize, maxPages int
}

// account counts the executions that finished since the last scrape. Where
// a slot holds an execution the exporter has not seen, it reads the history
// back to what it knew (at most maxPages pages; the rest at the next
// scrape). On the first sight of a cache it only remembers: counters start
// at 0. The returned error is the history call's.
func (cs *cacheState) account(ctx context.Context, read historyPage, st *peaka.CacheStatus, now time.Time, o historyOptions) error {
	select {
	case cs.lock <- struct{}{}:
	case <-ctx.Done():
		return nil // another scrape is accounting; this one has no time left to wait
	}
	defer func() { <-cs.lock }()
	if ctx.Err() != nil {
		return nil // the lock came free too late: nothing is read, nothing lost
	}

	cs.mu.Lock()
	cs.lastSeen = now
	cs.mu.Unlock()

	slots := [2]*peaka.Execution{st.LastIncrementalCacheExecution, st.LastFullRefreshCacheExecution}
	for i, x := range slots {
		if x != nil && x.ID != "" {
			cs.slots[i] = x.ID
		}
	}
	if !cs.seen {
		cs.seen = true
		for _, x := range slots {
			if x != nil && x.ID != "" {
				cs.known[x.ID] = &knownExecution{counted: x.Finished(), created: x.CreatedAt.Time}
			}
		}
		return nil
	}

	newHead := false
	for i, x := range slots {
		if x == nil || x.ID == "" {
			continue
		}
		if k := cs.known[x.ID]; k != nil {
			// Still the latest of its kind: nothing else of that kind ran,
			// so the status alone settles it.
			if !k.counted && x.Finished() {
				k.counted = true
				cs.count(executionKinds[i], x)
			}
		} else {
			newHead = true
		}
	}
	if !newHead && cs.resume == nil {
		return nil
	}

	cs.horizon = cs.pendingHorizon(now)
	err := cs.scan(ctx, read, newHead, o)
	gaveUp := false
	if err != nil {
		if ctx.Err() != nil {
			return err // our own deadline, not the history's fault: go on next scrape
		}
		cs.historyFail++
		if peaka.ReasonOf(err) != peaka.ReasonNotFound && cs.historyFail < maxHistoryFailures {
			return err // try again next scrape; nothing is lost yet
		}
		cs.mu.Lock()
		cs.gaps++
		cs.mu.Unlock()
		cs.resume = nil
		gaveUp = true
	}
	cs.historyFail = 0
	// What the history did not show (it may lag, or it failed for good) is
	// settled from the status, so that no scrape reads the history for it
	// again.
	settled := false
	for i, x := range slots {
		if x != nil && x.ID != "" && cs.known[x.ID] == nil {
			cs.known[x.ID] = &knownExecution{counted: x.Finished(), gen: cs.gen, created: x.CreatedAt.Time, settled: true}
			settled = true
			if x.Finished() {
				cs.count(executionKinds[i], x)
			}
		}
	}
	if settled && !gaveUp && cs.resume == nil {
		// A lagging history may show runs older than the settled ones
		// later: read it again from the top, down to what was known before.
		cs.resume = &resumePoint{offset: 0, origin: cs.gen}
	}
	cs.forget(now)
	return err
}

// pendingWindow bounds how far back a walk goes for an execution that left
// its slot unfinished: a run hung for longer is not waited for.
const pendingWindow = 24 * time.Hour

// pendingHorizon returns the creation time of the oldest known execution
// that is not finished, no longer in a slot and younger than pendingWindow.
func (cs *cacheState) pendingHorizon(now time.Time) time.Time {
	var h time.Time
	for id, k := range cs.known {
		if k.counted || k.created.IsZero() || id == cs.slots[0] || id == cs.slots[1] || now.Sub(k.created) > pendingWindow {
			continue
		}
		if h.IsZero() || k.created.Before(h) {
			h = k.created
		}
	}
	return h
}

// scan reads the history newest first. The head part stops at the first
// execution learnt before this scan; an unfinished earlier scan goes on
// from its resume point to the first execution learnt before it began.
// Reaching the end of the history instead means the executions the
// exporter knew have aged out: a gap.
func (cs *cacheState) scan(ctx context.Context, read historyPage, newHead bool, o historyOptions) error {
	cs.gen++
	g := cs.gen
	pages := 0
	walk := func(offset, stopGen, budget int) (next int, done bool, err error) {
		for pages < budget {
			items, err := read(ctx, o.pageSize, offset)
			pages++
			if err != nil {
				return offset, false, err
			}
			for i := range items {
				if cs.visit(&items[i], g, stopGen) {
					return offset, true, nil
				}
			}
			offset += len(items)
			if len(items) < o.pageSize {
				// The whole history is read; nothing is left to resume.
				cs.resume = nil
				if cs.knewBefore(stopGen) {
					cs.mu.Lock()
					cs.gaps++
					cs.mu.Unlock()
				}
				return offset, true, nil
			}
		}
		return offset, false, nil
	}

	if newHead {
		// Leave a page for an unfinished earlier scan, so that new runs at
		// the head cannot starve it.
		budget := o.maxPages
		if cs.resume != nil && budget > 1 {
			budget--
		}
		if err := cs.scanHead(walk, g, budget); err != nil || cs.resume == nil {
			return err
		}
	}
	offset, done, err := walk(cs.resume.offset, cs.resume.origin, o.maxPages)
	if done {
		cs.resume = nil
	} else {
		cs.resume.offset = offset
	}
	return err
}

// scanHead walks from the newest execution down to the first one learnt
// before generation g.
func (cs *cacheState) scanHead(walk func(offset, stopGen, budget int) (int, bool, error), g, budget int) error {
	offset, done, err := walk(0, g, budget)
	if err != nil || !done {
		// Below offset nothing was read: go on from there next time, down
		// to what was known before the oldest unfinished scan began.
		origin := g
		if cs.resume != nil {
			origin = cs.resume.origin
		}
		cs.resume = &resumePoint{offset: offset, origin: origin}
		return err
	}
	return nil
}

// visit accounts for one history entry and reports whether it was learnt
// before generation stopGen, where the walk may stop.
func (cs *cacheState) visit(x *peaka.Execution, g, stopGen int) bool {
	if x.ID == "" {
		return false
	}
	k := cs.known[x.ID]
	if k == nil {
		k = &knownExecution{gen: g, created: x.CreatedAt.Time}
		cs.known[x.ID] = k
	}
	if !k.counted && x.Finished() {
		k.counted = true
		cs.count(executionKindOf(x.ExecutionMode), x)
	}
	if k.settled {
		k.settled = false // the history shows it now
		return false
	}
	// Stop at what was known before, once past every execution still to
	// be seen finish (they are older than the walk's horizon).
	return k.gen < stopGen && (cs.horizon.IsZero() || k.created.IsZero() || !k.created.After(cs.horizon))
}

func (cs *cacheState) knewBefore(gen int) bool {
	for _, k := range cs.known {
		if k.gen < gen {
			return true
		}
	}
	return false
}

func (cs *cacheState) count(kind string, x *peaka.Execution) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	k, st := slices.Index(executionKinds, kind), slices.Index(finishedStatuses, x.Status)
	if k >= 0 && st >= 0 {
		cs.executions[k][st]++
	} else {
		if cs.otherExecutions == nil {
			cs.otherExecutions = map[[2]string]float64{}
		}
		cs.otherExecutions[[2]string{kind, labelValue(x.Status)}]++
	}
	if p := x.Progress; p != nil {
		for i, v := range []*int64{p.NumberOfInsertedRecords, p.NumberOfUpdatedRecords, p.NumberOfDeletedRecords} {
			switch {
			case v == nil || *v <= 0:
			case k >= 0:
				cs.records[k][i] += float64(*v)
			default:
				if cs.otherRecords == nil {
					cs.otherRecords = map[[2]string]float64{}
				}
				cs.otherRecords[[2]string{kind, recordKinds[i]}] += float64(*v)
			}
		}
	}
}

// forget drops executions that have left the history, keeping the slots'
// (a slot can hold an execution older than the retention).
func (cs *cacheState) forget(now time.Time) {
	cutoff := now.Add(-historyRetention)
	for id, k := range cs.known {
		if !k.created.IsZero() && k.created.Before(cutoff) && id != cs.slots[0] && id != cs.slots[1] {
			delete(cs.known, id)
		}
	}
	if excess := len(cs.known) - maxKnownExecutions; excess > 0 {
		// Forget the longest-known first; sorting once keeps this
		// proportional to the map, however many generations went by.
		ids := make([]string, 0, len(cs.known))
		for id := range cs.known {
			if id != cs.slots[0] && id != cs.slots[1] {
				ids = append(ids, id)
			}
		}
		slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(cs.known[a].gen, cs.known[b].gen) })
		for _, id := range ids[:min(excess, len(ids))] {
			delete(cs.known, id)
		}
	}
}

func executionKindOf(mode string) string {
	m := strings.ToUpper(mode)
	switch {
	case strings.Contains(m, "FULL"):
		return executionFullRefresh
	case strings.Contains(m, "INCR"):
		return executionIncremental
	}
	return executionOther
}

// cacheStates holds the state of every cache the exporter has seen.
type cacheStates struct {
	mu sync.Mutex
	m  map[cacheKey]*cacheState
}

func newCacheStates() *cacheStates {
	return &cacheStates{m: map[cacheKey]*cacheState{}}
}

func (c *cacheStates) get(project, cache string) *cacheState {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey{project, cache}
	cs := c.m[k]
	if cs == nil {
		cs = newCacheState()
		c.m[k] = cs
	}
	return cs
}

// known returns the IDs of a project's caches the exporter has seen.
func (c *cacheStates) known(project string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for k := range c.m {
		if k.project == project {
			ids = append(ids, k.cache)
		}
	}
	return ids
}

// retain forgets the caches for which keep is false: a reload dropped them,
// or a caches.all project has not listed them for a day.
func (c *cacheStates) retain(keep func(project, cache string, cs *cacheState) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, cs := range c.m {
		if !keep(k.project, k.cache, cs) {
			delete(c.m, k)
		}
	}
}

// write writes the families kept across scrapes for the caches of the
// given projects, in a stable order.
func (c *cacheStates) write(x *expositionWriter, projects map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]cacheKey, 0, len(c.m))
	for k := range c.m {
		if projects[k.project] {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b cacheKey) int {
		return cmp.Or(strings.Compare(a.project, b.project), strings.Compare(a.cache, b.cache))
	})
	// Label values and states once per cache, not once per family.
	labels := make([][2]escaped, len(keys))
	states := make([]*cacheState, len(keys))
	for i, k := range keys {
		labels[i] = [2]escaped{exposed(k.project), exposed(k.cache)}
		states[i] = c.m[k]
	}
	each := func(f family, write func(project, id escaped, cs *cacheState)) {
		x.begin(f)
		for i, cs := range states {
			cs.mu.Lock()
			write(labels[i][0], labels[i][1], cs)
			cs.mu.Unlock()
		}
	}
	each(executionsTotalFamily, func(project, id escaped, cs *cacheState) {
		writeCounts(x, project, id, &cs.executions, finishedStatuses, executionsOrder, cs.otherExecutions)
	})
	each(recordsTotalFamily, func(project, id escaped, cs *cacheState) {
		writeCounts(x, project, id, &cs.records, recordKinds, recordsOrder, cs.otherRecords)
	})
	each(historyGapsFamily, func(project, id escaped, cs *cacheState) {
		x.sample(cs.gaps, project, id)
	})
	each(scheduleParseErrorsFamily, func(project, id escaped, cs *cacheState) {
		x.sample(cs.parseErrors, project, id)
	})
	each(scheduleIntervalFamily, func(project, id escaped, cs *cacheState) {
		for i, v := range cs.intervals {
			if v > 0 {
				x.sample(v, project, id, escaped(executionKinds[i]))
			}
		}
	})
}

type labelledCount struct {
	key [2]string // {execution, second label}
	v   float64
}

// executionsOrder and recordsOrder are the cells of the per-kind arrays in
// the order of their labels, as the text format wants series sorted.
var (
	executionsOrder = labelOrder(finishedStatuses)
	recordsOrder    = labelOrder(recordKinds)
)

func labelOrder(second []string) [][2]int {
	var cells [][2]int
	for k := range executionKinds {
		for i := range second {
			cells = append(cells, [2]int{k, i})
		}
	}
	slices.SortFunc(cells, func(a, b [2]int) int {
		return cmp.Or(strings.Compare(executionKinds[a[0]], executionKinds[b[0]]), strings.Compare(second[a[1]], second[b[1]]))
	})
	return cells
}

// writeCounts writes a per-kind array (every series, zeros included, so
// that increase() sees the first run) and the odd ones beside it, sorted
// by labels.
func writeCounts(x *expositionWriter, project, id escaped, a *[2][3]float64, second []string, order [][2]int, other map[[2]string]float64) {
	if len(other) == 0 {
		for _, c := range order {
			x.sample(a[c[0]][c[1]], project, id, escaped(executionKinds[c[0]]), escaped(second[c[1]]))
		}
		return
	}
	out := make([]labelledCount, 0, len(order)+len(other))
	for _, c := range order {
		out = append(out, labelledCount{[2]string{executionKinds[c[0]], second[c[1]]}, a[c[0]][c[1]]})
	}
	for key, v := range other {
		out = append(out, labelledCount{key, v})
	}
	slices.SortFunc(out, func(a, b labelledCount) int {
		return cmp.Or(strings.Compare(a.key[0], b.key[0]), strings.Compare(a.key[1], b.key[1]))
	})
	for _, c := range out {
		x.sample(c.v, project, id, exposed(c.key[0]), exposed(c.key[1]))
	}
}
