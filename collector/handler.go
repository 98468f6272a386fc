package collector

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peakacom/peaka_exporter/config"
)

// scrapeTimeoutHeader is how Prometheus tells a target its scrape timeout.
const scrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// ScrapeTimeout returns the time a scrape may spend on API calls: the
// smaller of the configured timeout and Prometheus's scrape timeout less
// offset (the time left to write the answer).
func ScrapeTimeout(h http.Header, configured, offset time.Duration) (time.Duration, error) {
	v := h.Get(scrapeTimeoutHeader)
	if v == "" {
		return configured, nil
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(secs > 0) || secs > 1e6 { // !(secs > 0) also refuses NaN
		return 0, fmt.Errorf("invalid %s header %q: want a positive number of seconds", scrapeTimeoutHeader, v)
	}
	prom := time.Duration(secs * float64(time.Second))
	if prom-offset > 0 {
		prom -= offset
	}
	return min(configured, prom), nil
}

// scrapeContext bounds a scrape by ScrapeTimeout. For a bad timeout header
// it answers 400 itself and returns ok false.
func scrapeContext(w http.ResponseWriter, r *http.Request, cfg *config.Config, offset time.Duration) (ctx context.Context, cancel context.CancelFunc, ok bool) {
	timeout, err := ScrapeTimeout(r.Header, cfg.Peaka.Timeout.D(), offset)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, nil, false
	}
	ctx, cancel = context.WithTimeout(r.Context(), timeout)
	return ctx, cancel, true
}

// logWriteError logs a failure to send metrics; a scraper that gave up is
// no fault of the exporter's, so that is only logged at debug level.
func (e *Exporter) logWriteError(r *http.Request, err error, kv ...any) {
	lvl := level.Error
	if r.Context().Err() != nil {
		lvl = level.Debug
	}
	lvl(e.logger).Log(append([]any{"msg", "writing metrics", "path", r.URL.Path, "err", err}, kv...)...)
}

// Handler serves /metrics: one scrape of the configured projects, written
// out together with the long-lived metrics of gatherer.
func (e *Exporter) Handler(current func() *config.Config, gatherer prometheus.Gatherer, offset time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := current()
		ctx, cancel, ok := scrapeContext(w, r, cfg, offset)
		if !ok {
			return
		}
		defer cancel()
		res := e.Scrape(ctx, cfg)
		w.Header().Set("Content-Type", ExpositionContentType)
		if err := e.WriteExposition(w, res, gatherer); err != nil {
			e.logWriteError(r, err)
		}
	})
}

// maxProjectParam bounds the project parameter of /probe; project IDs are
// short.
const maxProjectParam = 128

// ProbeHandler serves /probe?project=ID: one project's metrics (configured
// or discovered) and its counters, so that a large fleet can be spread over
// many scrape jobs. The exporter's own metrics stay on /metrics.
func (e *Exporter) ProbeHandler(current func() *config.Config, offset time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		project := r.URL.Query().Get("project")
		switch {
		case project == "":
			http.Error(w, "missing the project parameter: /probe?project=<Peaka project ID>", http.StatusBadRequest)
			return
		case len(project) > maxProjectParam:
			http.Error(w, "the project parameter is too long", http.StatusBadRequest)
			return
		}
		cfg := current()
		ctx, cancel, ok := scrapeContext(w, r, cfg, offset)
		if !ok {
			return
		}
		defer cancel()
		res, err := e.Probe(ctx, cfg, project)
		switch {
		case errors.Is(err, errUnknownProject):
			http.Error(w, fmt.Sprintf("unknown project %q: neither configured nor discovered", labelValue(project)), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, "discovering projects failed: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", ExpositionContentType)
		bw := bufio.NewWriterSize(w, 32<<10)
		x := newExpositionWriter(bw)
		res.write(x)
		e.states.write(x, res.projectIDs())
		if err := bw.Flush(); err != nil {
			e.logWriteError(r, err, "project_id", project)
		}
	})
}

// sdTargetGroup is one entry of Prometheus's HTTP service discovery.
type sdTargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// DiscoveryHandler serves /discovery in Prometheus's HTTP service-discovery
// format: one /probe target per project (configured or discovered), at the
// address the request was made to, so that Prometheus spreads the work
// (relabel __param_project with hashmod to shard).
func (e *Exporter) DiscoveryHandler(current func() *config.Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "" {
			http.Error(w, "no Host header to name the exporter by", http.StatusBadRequest)
			return
		}
		cfg := current()
		ctx, cancel := context.WithTimeout(r.Context(), cfg.Peaka.Timeout.D())
		defer cancel()
		projects, err := e.probeTargets(ctx, cfg)
		if err != nil && len(projects) == len(cfg.Projects) && cfg.Discover != nil {
			// Nothing discovered yet: an error lets Prometheus keep the
			// targets it had.
			http.Error(w, "discovering projects failed: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		groups := make([]sdTargetGroup, 0, len(projects))
		for _, p := range projects {
			groups = append(groups, sdTargetGroup{
				Targets: []string{r.Host},
				Labels:  map[string]string{"__metrics_path__": "/probe", "__param_project": p.ID},
			})
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(groups); err != nil {
			level.Error(e.logger).Log("msg", "writing discovery", "err", err)
		}
	})
}
