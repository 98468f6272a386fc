package peaka

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics instruments the client's requests with client_golang's
// round-tripper middleware. One Metrics outlives the clients that a config
// reload replaces, so that its counters never reset.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	retries  *prometheus.CounterVec
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

func endpointFromContext(ctx context.Context) string {
	if e, ok := ctx.Value(endpointKey{}).(string); ok {
		return e
	}
	return "other"
}

func (m *Metrics) instrument(next http.RoundTripper) http.RoundTripper {
	label := promhttp.WithLabelFromCtx("endpoint", endpointFromContext)
	return promhttp.InstrumentRoundTripperInFlight(m.inFlight,
		promhttp.InstrumentRoundTripperCounter(m.requests,
			promhttp.InstrumentRoundTripperDuration(m.duration, next, label), label))
}
