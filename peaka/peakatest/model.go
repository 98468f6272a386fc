package peakatest

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind names one of a cache's two independent kinds of execution.
type Kind string

// The two kinds of cache execution.
const (
	Incremental Kind = "incremental"
	FullRefresh Kind = "full_refresh"
)

func (k Kind) index() int {
	switch k {
	case Incremental:
		return 0
	case FullRefresh:
		return 1
	}
	panic(fmt.Sprintf("peakatest: unknown execution kind %q", string(k)))
}

// modeNames are the kinds as the service writes them in executionMode and in
// the action logs' cacheType.
var modeNames = [2]string{"INCREMENTAL", "FULL_REFRESH"}
var kindLabels = [2]string{"Incremental", "Full refresh"}

// Records are an execution's progress counters.
type Records struct{ Cached, Inserted, Updated, Deleted int64 }

// Cache configures a simulated cache. Zero durations select the defaults
// noted on each field.
type Cache struct {
	ID, CatalogID, SchemaName, TableName string
	// IncrementalEvery and FullRefreshEvery are the schedules; 0 means
	// schedule type NONE, so no automatic runs of that kind.
	IncrementalEvery, FullRefreshEvery time.Duration
	// IncrementalRunFor and FullRefreshRunFor are how long an automatic run
	// lasts (default 30s and 2m).
	IncrementalRunFor, FullRefreshRunFor time.Duration
	// RecordsPerRun is about how many records an automatic run inserts; it
	// updates about a tenth as many and deletes none, because the live
	// service has been seen to report 0 deletes.
	RecordsPerRun int64
	// FailEvery makes every Nth automatic run end FAILED (0: never).
	FailEvery int
	// Hang makes the next automatic run never finish: RUNNING, progress
	// null and updatedAt equal to createdAt for ever. While it hangs no
	// further automatic run of its kind starts, as the scheduler does not
	// overlap runs of one kind.
	Hang bool
}

const (
	defaultIncrementalRunFor = 30 * time.Second
	defaultFullRefreshRunFor = 2 * time.Minute
	maxLogs                  = 50
)

type execution struct {
	id       string
	seq      uint64 // creation order, to order executions created at the same instant
	kind     int
	status   string
	errMsg   string
	progress *Records // nil is written as null, as for a hung run
	txID     string
	created  time.Time
	updated  time.Time
	finished time.Time // zero while running

	// auto is set while the scheduler drives the execution; a direct call
	// such as Progress takes it over for good.
	auto    bool
	hung    bool
	runFor  time.Duration
	planned Records // the counters an automatic run ends with
	fail    bool
}

type schedule struct{ typ, expression string }

type kindState struct {
	every, runFor time.Duration
	phase         time.Duration // lets the demo keep its two kinds from ticking together
	next          int64         // index of the next tick; tick k is at anchor + phase + k*every
	runs          int64         // automatic runs started, to pick every FailEvery-th
	active        *execution
	last          *execution // newest execution of the kind, the status slot
	override      *schedule  // SetSchedule's raw settings answer
}

type cacheState struct {
	cfg      Cache
	project  string
	anchor   time.Time // schedules tick at anchor + phase + k*every, k >= 1
	kinds    [2]kindState
	execs    []*execution // in creation order
	logs     []actionLog  // oldest first, at most maxLogs
	rows     int64        // records in the cache, grown by every run
	hangNext bool
	override string // SetCacheStatus
}

type actionLog struct {
	at                        time.Time
	action, message, cacheTyp string
	scheduled                 bool
}

// AddCache adds a cache to a project, creating the project if need be. Its
// schedules start now: the first automatic run of each kind starts one
// interval later, and until a run starts its status is NOT_INITIALIZED.
func (s *Sim) AddCache(projectID string, c Cache) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.step(now)
	s.addCache(projectID, c, now)
}

// addCache lets the demo anchor schedules in the past: the next step then
// back-fills the history as if the cache had been running all along.
func (s *Sim) addCache(projectID string, c Cache, anchor time.Time) *cacheState {
	p := s.ensureProject(projectID)
	if c.ID == "" {
		c.ID = s.newID()
	}
	if _, dup := p.cacheByID[c.ID]; dup {
		panic(fmt.Sprintf("peakatest: cache %q already exists in project %q", c.ID, projectID))
	}
	if c.IncrementalRunFor <= 0 {
		c.IncrementalRunFor = defaultIncrementalRunFor
	}
	if c.FullRefreshRunFor <= 0 {
		c.FullRefreshRunFor = defaultFullRefreshRunFor
	}
	cs := &cacheState{cfg: c, project: projectID, anchor: anchor, hangNext: c.Hang}
	cs.kinds[0] = kindState{every: max(c.IncrementalEvery, 0), runFor: c.IncrementalRunFor, next: 1}
	cs.kinds[1] = kindState{every: max(c.FullRefreshEvery, 0), runFor: c.FullRefreshRunFor, next: 1}
	p.caches = append(p.caches, cs)
	p.cacheByID[c.ID] = cs
	return cs
}

// RemoveCache deletes a cache; it is then unknown (404) like one never added.
func (s *Sim) RemoveCache(projectID, cacheID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	c := s.mustCache(projectID, cacheID)
	p.caches = slices.DeleteFunc(p.caches, func(x *cacheState) bool { return x == c })
	delete(p.cacheByID, cacheID)
}

func (s *Sim) mustCache(projectID, cacheID string) *cacheState {
	c, ok := s.mustProject(projectID).cacheByID[cacheID]
	if !ok {
		panic(fmt.Sprintf("peakatest: unknown cache %q in project %q", cacheID, projectID))
	}
	return c
}

// control steps the model before a direct call so that the call lands after
// everything the schedules did up to now.
func (s *Sim) control(projectID, cacheID string) (*cacheState, time.Time) {
	now := s.now()
	s.step(now)
	return s.mustCache(projectID, cacheID), now
}

// StartExecution starts an execution of kind k now and returns its id. A run
// of the same kind that is still going is left RUNNING in the history but is
// no longer the cache's current one, like a run lost by a crashed worker.
func (s *Sim) StartExecution(projectID, cacheID string, k Kind) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, now := s.control(projectID, cacheID)
	return s.start(c, k.index(), now, false).id
}

// Progress sets the counters of the running execution of kind k, with
// updatedAt now. It takes an automatic run over: that run then waits for
// FinishExecution instead of ending by itself.
func (s *Sim) Progress(projectID, cacheID string, k Kind, r Records) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, now := s.control(projectID, cacheID)
	e := c.mustActive(k)
	e.auto, e.hung = false, false
	e.progress = &r
	e.updated = now
}

// FinishExecution ends the running execution of kind k now with any status
// string; FAILED also gives it a non-empty error object.
func (s *Sim) FinishExecution(projectID, cacheID string, k Kind, status string, r Records) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, now := s.control(projectID, cacheID)
	c.mustActive(k)
	s.finish(c, k.index(), now, status, r, "", false)
}

// RunExecution starts and finishes an execution at the current time and
// returns its id.
func (s *Sim) RunExecution(projectID, cacheID string, k Kind, status string, r Records) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, now := s.control(projectID, cacheID)
	e := s.start(c, k.index(), now, false)
	s.finish(c, k.index(), now, status, r, "", false)
	return e.id
}

// SetCacheStatus overrides the top-level status, e.g. DELETED or a value the
// documentation does not list; "" returns to the computed status.
func (s *Sim) SetCacheStatus(projectID, cacheID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _ := s.control(projectID, cacheID)
	c.override = status
}

// LogAction appends an action log entry at the current time.
func (s *Sim) LogAction(projectID, cacheID string, action, cacheType, message string, scheduled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, now := s.control(projectID, cacheID)
	c.log(actionLog{at: now, action: action, cacheTyp: cacheType, message: message, scheduled: scheduled})
}

// SetSchedule overrides what the settings call reports for kind k, verbatim,
// so that a test can serve schedules the client must cope with, such as
// ("BASIC", "garbage"). An empty expression is left out of the answer. The
// simulated runs keep following the Cache's durations.
func (s *Sim) SetSchedule(projectID, cacheID string, k Kind, typ, expression string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _ := s.control(projectID, cacheID)
	c.kinds[k.index()].override = &schedule{typ: typ, expression: expression}
}

func (c *cacheState) mustActive(k Kind) *execution {
	e := c.kinds[k.index()].active
	if e == nil {
		panic(fmt.Sprintf("peakatest: cache %q has no running %s execution", c.cfg.ID, k))
	}
	return e
}

func (c *cacheState) log(l actionLog) {
	if len(c.logs) == maxLogs {
		c.logs = slices.Delete(c.logs, 0, 1)
	}
	c.logs = append(c.logs, l)
}

func (s *Sim) start(c *cacheState, k int, at time.Time, auto bool) *execution {
	ks := &c.kinds[k]
	e := &execution{
		id:       s.newID(),
		seq:      s.seq,
		kind:     k,
		status:   "RUNNING",
		progress: &Records{Cached: c.rows},
		created:  at,
		updated:  at,
		auto:     auto,
	}
	e.txID = strconv.FormatUint(7_000_000+e.seq*13, 10)
	c.execs = append(c.execs, e)
	ks.active, ks.last = e, e
	c.log(actionLog{at: at, action: "CACHE_STARTED", cacheTyp: modeNames[k],
		message: kindLabels[k] + " cache started", scheduled: auto})
	return e
}

func (s *Sim) finish(c *cacheState, k int, at time.Time, status string, r Records, errMsg string, auto bool) {
	ks := &c.kinds[k]
	e := ks.active
	e.auto, e.hung = false, false
	e.status = status
	e.progress = &r
	e.updated, e.finished = at, at
	if status == "FAILED" {
		if errMsg == "" {
			errMsg = "Execution failed (simulated)"
		}
		e.errMsg = errMsg
	}
	c.rows = r.Cached
	ks.active = nil
	// The scheduler does not queue the ticks that passed during a run.
	if ks.every > 0 {
		ks.next = max(ks.next, ceilDiv(at.Sub(c.anchor.Add(ks.phase)), ks.every))
	}
	msg := kindLabels[k] + " cache " + strings.ToLower(status)
	if errMsg != "" {
		msg += ": " + errMsg
	}
	c.log(actionLog{at: at, action: "CACHE_" + status, cacheTyp: modeNames[k], message: msg, scheduled: auto})
}

func ceilDiv(a, b time.Duration) int64 {
	if a <= 0 {
		return 0
	}
	return int64((a + b - 1) / b)
}

// topStatus follows the vendor's description: RUNNING while either kind
// runs, otherwise the status of the newest execution.
func (c *cacheState) topStatus() string {
	if c.override != "" {
		return c.override
	}
	a, b := c.kinds[0].last, c.kinds[1].last
	switch {
	case a == nil && b == nil:
		return "NOT_INITIALIZED"
	case a != nil && a.status == "RUNNING", b != nil && b.status == "RUNNING":
		return "RUNNING"
	case a == nil:
		return b.status
	case b == nil || newer(a, b):
		return a.status
	}
	return b.status
}

func newer(a, b *execution) bool { return newestFirst(a, b) < 0 }

// newestFirst orders by createdAt, and by creation order within an instant,
// since a manual clock lets several executions share a timestamp.
func newestFirst(a, b *execution) int {
	if c := b.created.Compare(a.created); c != 0 {
		return c
	}
	return cmp.Compare(b.seq, a.seq)
}

// Event ordering within one instant: a run that ends frees its kind before
// the tick at the same instant looks at it; exports come last.
const (
	prioEnd = iota
	prioTick
	prioExport
)

type event struct {
	at   time.Time
	prio int
	c    *cacheState
	kind int
	p    *project
}

// step brings the model up to `to`, processing every due event in time order
// across all caches, so that ids and logs do not depend on how the caller
// sliced time. It never moves the model back.
func (s *Sim) step(to time.Time) {
	if to.Before(s.model) {
		to = s.model
	}
	cutoff := to.Add(-retention)
	for {
		ev, ok := s.nextEvent(to)
		if !ok {
			break
		}
		switch ev.prio {
		case prioEnd:
			s.autoEnd(ev.c, ev.kind, ev.at)
		case prioTick:
			s.autoTick(ev.c, ev.kind, ev.at, cutoff)
		case prioExport:
			s.generateExport(ev.p, ev.at, to)
		}
	}
	s.model = to
	for _, p := range s.projects {
		for _, c := range p.caches {
			for k := range c.kinds {
				if e := c.kinds[k].active; e != nil && e.auto && !e.hung {
					e.advance(to, c.rows)
				}
			}
		}
	}
	// History is filtered exactly when answering; dropping the old entries
	// from memory can wait, and doing it hourly keeps requests cheap.
	if to.Sub(s.lastPrune) >= time.Hour {
		s.prune(to)
		s.lastPrune = to
	}
}

func (s *Sim) nextEvent(to time.Time) (event, bool) {
	var best event
	found := false
	consider := func(ev event) {
		if ev.at.After(to) {
			return
		}
		if !found || ev.at.Before(best.at) || ev.at.Equal(best.at) && ev.prio < best.prio {
			best, found = ev, true
		}
	}
	for _, p := range s.projects {
		for _, c := range p.caches {
			for k := range c.kinds {
				ks := &c.kinds[k]
				if e := ks.active; e != nil {
					if e.auto && !e.hung {
						consider(event{at: e.created.Add(e.runFor), prio: prioEnd, c: c, kind: k})
					}
					continue
				}
				if ks.every > 0 {
					consider(event{at: c.anchor.Add(ks.phase + time.Duration(ks.next)*ks.every), prio: prioTick, c: c, kind: k})
				}
			}
		}
		if g := p.gen; g != nil {
			consider(event{at: g.anchor.Add(time.Duration(g.next) * g.every), prio: prioExport, p: p})
		}
	}
	return best, found
}

func (s *Sim) autoTick(c *cacheState, k int, at, cutoff time.Time) {
	ks := &c.kinds[k]
	if !c.hangNext && at.Add(ks.runFor).Before(cutoff) {
		// A run that would have ended before the retention horizon leaves no
		// trace but its records, so a long gap costs one step, not one per run.
		last := int64((cutoff.Sub(c.anchor.Add(ks.phase)) - ks.runFor - 1) / ks.every)
		n := max(last-ks.next+1, 1)
		ks.next += n
		ks.runs += n
		c.rows += n * c.cfg.RecordsPerRun
		return
	}
	ks.next++
	ks.runs++
	e := s.start(c, k, at, true)
	e.runFor = ks.runFor
	if c.hangNext {
		c.hangNext = false
		e.hung = true
		e.progress = nil
		return
	}
	e.fail = c.cfg.FailEvery > 0 && ks.runs%int64(c.cfg.FailEvery) == 0
	e.planned = s.plan(c, k, ks.runs, e.fail)
}

// plan draws the counters a run ends with from its own seeded source, so
// they do not depend on how many other draws came before it.
func (s *Sim) plan(c *cacheState, k int, run int64, fail bool) Records {
	n := c.cfg.RecordsPerRun
	if n <= 0 {
		return Records{}
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s/%d/%d", c.project, c.cfg.ID, k, run)
	r := rand.New(rand.NewPCG(uint64(s.seed), h.Sum64()))
	ins := n*8/10 + r.Int64N(n*4/10+1)
	upd := ins/10 + r.Int64N(ins/20+1)
	if fail {
		// A failed run stops part way through.
		ins, upd = ins*3/5, upd*3/5
	}
	return Records{Inserted: ins, Updated: upd}
}

func (s *Sim) autoEnd(c *cacheState, k int, at time.Time) {
	e := c.kinds[k].active
	r := e.planned
	r.Cached = c.rows + r.Inserted
	status, msg := "COMPLETED", ""
	if e.fail {
		status = "FAILED"
		msg = failMessages[int(e.seq)%len(failMessages)]
	}
	s.finish(c, k, at, status, r, msg, true)
}

var failMessages = []string{
	"Connection to source timed out after 30000 ms",
	"Source returned HTTP 429 Too Many Requests",
	"Schema changed: column 'amount' type mismatch",
}

// progressTick is how often a running execution's counters move, which is
// what makes updatedAt step rather than follow the clock exactly.
func progressTick(runFor time.Duration) time.Duration {
	return max(min(5*time.Second, runFor/6), time.Second)
}

func (e *execution) advance(to time.Time, rows int64) {
	elapsed := min(to.Sub(e.created), e.runFor)
	elapsed -= elapsed % progressTick(e.runFor)
	f := float64(elapsed) / float64(e.runFor)
	ins := int64(f * float64(e.planned.Inserted))
	e.progress = &Records{
		Cached:   rows + ins,
		Inserted: ins,
		Updated:  int64(f * float64(e.planned.Updated)),
	}
	e.updated = e.created.Add(elapsed)
}

func (s *Sim) prune(to time.Time) {
	cutoff := to.Add(-retention)
	for _, p := range s.projects {
		for _, c := range p.caches {
			c.execs = slices.DeleteFunc(c.execs, func(e *execution) bool { return e.expired(cutoff) })
		}
		p.pruneGenerated(to)
	}
}

func (e *execution) expired(cutoff time.Time) bool {
	return !e.finished.IsZero() && e.finished.Before(cutoff)
}
