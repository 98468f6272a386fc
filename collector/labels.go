package collector

import (
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// maxLabelValueLength bounds label values that come from the API (table
// names, sources, actions): long values are cut so that one odd answer
// cannot bloat every series.
const maxLabelValueLength = 128

// labelValue makes an API string safe as a label value: valid UTF-8 and at
// most maxLabelValueLength bytes, cut on a rune boundary. Quotes, backslashes
// and newlines need nothing here: the exposition format escapes them.
func labelValue(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= maxLabelValueLength {
		return s
	}
	cut := maxLabelValueLength
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func boolLabel(b *bool) string {
	if b == nil {
		return ""
	}
	if *b {
		return "true"
	}
	return "false"
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// emitter sends constant gauges; every metric in a scrape result is one.
type emitter chan<- prometheus.Metric

func (e emitter) gauge(d *prometheus.Desc, v float64, labelValues ...string) {
	e <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labelValues...)
}

// stateSet emits one series per known value, 1 for current, and one more
// for current when it is not among the known values: an undocumented value
// must show rather than vanish.
func (e emitter) stateSet(d *prometheus.Desc, known []string, current string, labelValues ...string) {
	lv := append(labelValues[:len(labelValues):len(labelValues)], "")
	last := len(lv) - 1
	found := false
	for _, s := range known {
		lv[last] = s
		isCurrent := s == current
		found = found || isCurrent
		e.gauge(d, boolValue(isCurrent), lv...)
	}
	if !found && current != "" {
		lv[last] = labelValue(current)
		e.gauge(d, 1, lv...)
	}
}
