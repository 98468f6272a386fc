package peaka

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics instruments the client's requests. One Metrics outlives the
// clients that a config reload replaces, so that its counters never reset.
//
// The client observes them itself (sent and answered) rather than through
// promhttp's round-tripper middleware, with the same semantics: in flight
// while the round trip runs; a request counted, and its time observed, once
// answer headers arrived. The middleware builds a label map and reads the
// endpoint from a context value on every request, which the profile of a
// scrape put at 7 % of the exporter's own work per target.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	retries  *prometheus.CounterVec
	// answeredOK holds, by endpoint, the series of answered requests with
	// status 200, looked up once: nearly every request ends there.
	answeredOK sync.Map // endpoint → *answeredSeries
}

type answeredSeries struct {
	duration prometheus.Observer
	requests prometheus.Counter
}

// NewMetrics returns unregistered request metrics; register them once.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peaka_exporter_api_requests_total",
			Help: "Requests made to the Peaka API, by route template and HTTP status code. Requests that got no answer are not counted here but in peaka_target_failures_total.",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "peaka_exporter_api_request_duration_seconds",
			Help:    "Time until the Peaka API's answer headers arrived, by route template.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "peaka_exporter_api_requests_in_flight",
			Help: "Requests to the Peaka API currently waiting for an answer.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peaka_exporter_api_retries_total",
			Help: "Calls to the Peaka API tried again, by route template and the reason the previous attempt failed (network, timeout, rate_limited, server_error).",
		}, []string{"endpoint", "reason"}),
	}
}

// retried counts one retry; m may be nil.
func (m *Metrics) retried(endpoint string, reason Reason) {
	if m != nil {
		m.retries.WithLabelValues(endpoint, string(reason)).Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
	m.inFlight.Describe(ch)
	m.retries.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
	m.inFlight.Collect(ch)
	m.retries.Collect(ch)
}

// sent marks a request as in flight; m may be nil.
func (m *Metrics) sent() {
	if m != nil {
		m.inFlight.Inc()
	}
}

// answered records the end of a request sent at start: its status code when
// code is not 0 (an answer arrived), nothing else when the round trip
// failed. m may be nil.
func (m *Metrics) answered(endpoint string, code int, start time.Time) {
	if m == nil {
		return
	}
	m.inFlight.Dec()
	switch {
	case code == 0:
	case code == http.StatusOK:
		s, ok := m.answeredOK.Load(endpoint)
		if !ok {
			s, _ = m.answeredOK.LoadOrStore(endpoint, &answeredSeries{
				duration: m.duration.WithLabelValues(endpoint),
				requests: m.requests.WithLabelValues(endpoint, "200"),
			})
		}
		as := s.(*answeredSeries)
		as.duration.Observe(time.Since(start).Seconds())
		as.requests.Inc()
	default:
		m.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	}
}
