package collector

import (
	"sync"
	"time"
)

// A project's named caches can be read one call each or all from the
// project-wide list (GET …/cache/status), which answers for every cache of
// the project. The list wins unless the project holds many more caches
// than are named: then its answer is mostly caches nobody asked for.
const (
	// minNamedForList: a single named cache is never worth the list.
	minNamedForList = 2
	// maxListOverhead: the list is used while the project has at most this
	// many times as many caches as are named.
	maxListOverhead = 4
)

// listChoices remembers, per project, how many caches its list returned,
// to decide between the list and per-cache calls.
type listChoices struct {
	enabled bool
	mu      sync.Mutex
	seen    map[string]listSize
}

type listSize struct {
	caches int
	at     time.Time
}

func newListChoices(enabled bool) *listChoices {
	return &listChoices{enabled: enabled, seen: map[string]listSize{}}
}

// prefer reports whether the project's named caches should be read with the
// list call. Without a recent size it tries the list; a size older than
// recheck is measured again.
func (l *listChoices) prefer(project string, named int, now time.Time, recheck time.Duration) bool {
	if !l.enabled || named < minNamedForList {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.seen[project]
	if !ok || now.Sub(s.at) >= recheck {
		return true
	}
	return s.caches <= maxListOverhead*named
}

// note records how many caches the project's list returned.
func (l *listChoices) note(project string, caches int, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[project] = listSize{caches: caches, at: now}
}

func (l *listChoices) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.seen)
}
