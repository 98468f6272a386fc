// Package collector turns Peaka API answers into Prometheus metrics. Each
// scrape reads the API afresh (Exporter.Scrape) into a Result that a
// per-request registry exposes; what must outlive a scrape (counters, the
// API client's metrics) lives in the Exporter.
package collector

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peakacom/peaka_exporter/config"
	"github.com/peakacom/peaka_exporter/peaka"
)

// Options configures an Exporter.
type Options struct {
	Logger    log.Logger
	UserAgent string
	// Now is the clock for the exports.recent window, settings refreshes
	// and forgetting old executions; nil → time.Now. Tests set it to the
	// simulated API's clock.
	Now func() time.Time
	// HistoryPageSize and MaxHistoryPages bound the execution-history calls
	// of one cache in one scrape (0: 50 per page, 5 pages); what is left is
	// read at the next scrape.
	HistoryPageSize, MaxHistoryPages int
	// PerCacheCalls reads named caches with one call each even where the
	// project-wide list would be cheaper (tests of per-cache behaviour).
	PerCacheCalls bool
	// Transport, if set, carries the API requests instead of the client's
	// own keep-alive transport (a benchmark replays answers from memory
	// with it, to measure the exporter's work without the network's).
	Transport http.RoundTripper
}

// Exporter holds the state shared by all scrapes.
type Exporter struct {
	logger    log.Logger
	userAgent string
	now       func() time.Time
	api       *peaka.Metrics
	failures  *prometheus.CounterVec
	states    *cacheStates
	shared    *sharedCalls
	lists     *listChoices
	discovery *projectDiscovery
	history   historyOptions
	transport http.RoundTripper

	mu     sync.Mutex
	cfg    *config.Config
	client *peaka.Client
}

// New returns an Exporter whose long-lived metrics are registered with reg.
func New(reg prometheus.Registerer, o Options) (*Exporter, error) {
	e := &Exporter{
		logger:    o.Logger,
		userAgent: o.UserAgent,
		now:       o.Now,
		api:       peaka.NewMetrics(),
		states:    newCacheStates(),
		shared:    newSharedCalls(),
		lists:     newListChoices(!o.PerCacheCalls),
		discovery: newProjectDiscovery(),
		history:   historyOptions{pageSize: o.HistoryPageSize, maxPages: o.MaxHistoryPages},
		transport: o.Transport,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peaka_target_failures_total",
			Help: "Targets that could not be read, by kind and reason (timeout, network, unauthorized, forbidden, not_found, rate_limited, server_error, bad_response).",
		}, []string{"kind", "reason"}),
	}
	if e.logger == nil {
		e.logger = log.NewNopLogger()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.history.pageSize <= 0 {
		e.history.pageSize = defaultHistoryPageSize
	}
	if e.history.maxPages <= 0 {
		e.history.maxPages = defaultMaxHistoryPages
	}
	for _, k := range failureKinds {
		for _, r := range peaka.Reasons {
			e.failures.WithLabelValues(k, string(r))
		}
	}
	for _, c := range []prometheus.Collector{e.api, e.failures, e.shared, e.discovery} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering exporter metrics: %w", err)
		}
	}
	return e, nil
}

// clientFor returns the API client for cfg, building a new one when the
// configuration changed. Counters of caches the new configuration no longer
// names are dropped; the others carry on.
func (e *Exporter) clientFor(cfg *config.Config) (*peaka.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cfg == e.cfg && e.client != nil {
		return e.client, nil
	}
	old := e.client
	c, err := peaka.New(peaka.Options{
		BaseURL:          cfg.Peaka.URL.URL,
		MaxConcurrency:   cfg.Peaka.MaxConcurrency,
		MaxResponseBytes: cfg.Peaka.MaxResponseBytes,
		CACerts:          cfg.Peaka.CACerts,
		Metrics:          e.api,
		UserAgent:        e.userAgent,
		Transport:        e.transport,
	})
	if err != nil {
		return nil, err
	}
	if old != nil {
		old.CloseIdleConnections()
	}
	e.cfg, e.client = cfg, c
	e.shared.reset()
	e.lists.reset()
	e.discovery.reset()
	e.states.retain(func(project, cache string, _ *cacheState) bool {
		for _, p := range cfg.Projects {
			if p.ID == project {
				return p.Caches.All || slices.Contains(p.Caches.IDs, cache)
			}
		}
		// Perhaps a discovered project's: kept until unseen for a day.
		return cfg.Discover != nil && cfg.Discover.Caches.All
	})
	return c, nil
}
