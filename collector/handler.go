package collector

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
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
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs <= 0 || secs > 1e6 {
		return 0, fmt.Errorf("invalid %s header %q: want a positive number of seconds", scrapeTimeoutHeader, v)
	}
	prom := time.Duration(secs * float64(time.Second))
	if prom-offset > 0 {
		prom -= offset
	}
	return min(configured, prom), nil
}

// Handler serves /metrics: one scrape of the current configuration into a
// fresh registry, exposed together with the long-lived metrics of
// gatherer.
func (e *Exporter) Handler(current func() *config.Config, gatherer prometheus.Gatherer, offset time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := current()
		timeout, err := ScrapeTimeout(r.Header, cfg.Peaka.Timeout.D(), offset)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		res := e.Scrape(ctx, cfg)
		w.Header().Set("Content-Type", ExpositionContentType)
		if err := e.WriteExposition(w, res, gatherer); err != nil {
			level.Error(e.logger).Log("msg", "writing metrics", "err", err)
		}
	})
}
