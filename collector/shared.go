package collector

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sharedCalls lets concurrent scrapes (an HA pair of Prometheus servers)
// share one API call per target instead of each making its own, and with
// peaka.min_interval reuse an answer younger than that.
type sharedCalls struct {
	mu      sync.Mutex
	entries map[string]*sharedCall
	gen     int // bumped by reset: older entries are not to be used
	calls   int // since the last sweep of expired entries
	reused  *prometheus.CounterVec
}

type sharedCall struct {
	done chan struct{}
	val  any
	err  error
	at   time.Time // when the call returned
	gen  int
}

// sweepEvery is how many calls pass between sweeps of expired answers,
// which bounds the memory of targets that are no longer scraped.
const sweepEvery = 1000

func newSharedCalls() *sharedCalls {
	s := &sharedCalls{
		entries: map[string]*sharedCall{},
		reused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peaka_exporter_api_answers_reused_total",
			Help: "API answers a scrape took from another instead of calling: in_flight, a call another concurrent scrape had under way; min_interval, an answer younger than peaka.min_interval.",
		}, []string{"reason"}),
	}
	s.reused.WithLabelValues("in_flight")
	s.reused.WithLabelValues("min_interval")
	return s
}

// do returns fn's result for key, calling fn unless a call for key is under
// way (its result is shared) or a successful one returned less than maxAge
// ago (its result is reused). Failures are never reused: the next scrape
// calls again. Results are shared read-only.
func (s *sharedCalls) do(ctx context.Context, key string, maxAge time.Duration, fn func() (any, error)) (any, error) {
	s.mu.Lock()
	if s.calls++; s.calls >= sweepEvery {
		s.calls = 0
		s.sweep(maxAge)
	}
	if c, ok := s.entries[key]; ok && c.gen == s.gen {
		select {
		case <-c.done:
			if c.err == nil && maxAge > 0 && time.Since(c.at) < maxAge {
				s.mu.Unlock()
				s.reused.WithLabelValues("min_interval").Inc()
				return c.val, nil
			}
		default:
			s.mu.Unlock()
			s.reused.WithLabelValues("in_flight").Inc()
			select {
			case <-c.done:
				// The call ran on the first scrape's deadline; if that
				// cut it short while this scrape still has time, call
				// again rather than report this scrape's target as timed
				// out.
				if c.err != nil && isContextError(c.err) && ctx.Err() == nil {
					return fn()
				}
				return c.val, c.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	c := &sharedCall{done: make(chan struct{}), gen: s.gen}
	s.entries[key] = c
	s.mu.Unlock()

	c.val, c.err = fn()
	c.at = time.Now()
	close(c.done)
	if c.err != nil || maxAge <= 0 {
		s.mu.Lock()
		if s.entries[key] == c {
			delete(s.entries, key)
		}
		s.mu.Unlock()
	}
	return c.val, c.err
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// sweep drops answers older than maxAge (all finished ones when it is 0).
func (s *sharedCalls) sweep(maxAge time.Duration) {
	for k, c := range s.entries {
		select {
		case <-c.done:
			if c.gen != s.gen || time.Since(c.at) >= maxAge {
				delete(s.entries, k)
			}
		default:
		}
	}
}

// reset forgets every kept answer, and makes calls under way unusable to
// later scrapes: a new configuration may change keys, URLs or what a target
// means.
func (s *sharedCalls) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.sweep(0)
}

// Describe implements prometheus.Collector.
func (s *sharedCalls) Describe(ch chan<- *prometheus.Desc) { s.reused.Describe(ch) }

// Collect implements prometheus.Collector.
func (s *sharedCalls) Collect(ch chan<- prometheus.Metric) { s.reused.Collect(ch) }
