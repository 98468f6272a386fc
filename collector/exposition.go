package collector

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// family describes a metric family of the exposition.
type family struct {
	name, help, typ string
	// sorted holds the indices of sample's label values (the family's
	// labels in the order gauge got them) by label name: the order
	// client_golang writes them in.
	sorted []int
	// before[n] is the text before the value of the n-th label in sorted
	// order: `name{label="` for the first, `",label="` for the others,
	// so that a series is written in a few appends.
	before []string
}

func gauge(name, help string, labels []string, extra ...string) family {
	all := append(labels[:len(labels):len(labels)], extra...)
	sorted := make([]int, len(all))
	for i := range sorted {
		sorted[i] = i
	}
	slices.SortFunc(sorted, func(a, b int) int { return strings.Compare(all[a], all[b]) })
	f := family{name: "peaka_" + name, help: help, typ: "gauge", sorted: sorted}
	for n, i := range sorted {
		if n == 0 {
			f.before = append(f.before, f.name+"{"+all[i]+`="`)
		} else {
			f.before = append(f.before, `",`+all[i]+`="`)
		}
	}
	return f
}

func counter(name, help string, labels []string, extra ...string) family {
	f := gauge(name, help, labels, extra...)
	f.typ = "counter"
	return f
}

// expositionWriter writes the text format (version 0.0.4) straight to its
// writer, one family after another. A scrape of thousands of targets thus
// builds no metric objects, no sorted copies and no consistency checks:
// what it writes is only the bytes that go out. The series themselves are
// made valid where their values come from (labelValue).
type expositionWriter struct {
	w   *bufio.Writer
	fam family
	// header is true once the current family's HELP and TYPE are out; a
	// family without series is left out altogether.
	header bool
	buf    []byte
}

func newExpositionWriter(w *bufio.Writer) *expositionWriter {
	return &expositionWriter{w: w, buf: make([]byte, 0, 512)}
}

// begin starts a family; its series follow with sample.
func (x *expositionWriter) begin(f family) {
	x.fam, x.header = f, false
}

// sample writes one series of the current family; labelValues match the
// family's label names, escaped already.
func (x *expositionWriter) sample(v float64, labelValues ...escaped) {
	// The line is built in bufio's own free space where a long line fits,
	// so that writing it copies nothing; else in buf, and copied.
	b, own := x.buf[:0], true
	if x.w.Available() >= 1024 {
		b, own = x.w.AvailableBuffer(), false
	}
	if !x.header {
		x.header = true
		b = append(b, "# HELP "...)
		b = append(b, x.fam.name...)
		b = append(b, ' ')
		b = appendEscaped(b, x.fam.help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, x.fam.name...)
		b = append(b, ' ')
		b = append(b, x.fam.typ...)
		b = append(b, '\n')
	}
	if len(labelValues) == 0 {
		b = append(b, x.fam.name...)
		b = append(b, ' ')
	} else {
		for n, i := range x.fam.sorted {
			b = append(b, x.fam.before[n]...)
			b = append(b, labelValues[i]...)
		}
		b = append(b, '"', '}', ' ')
	}
	b = appendFloat(b, v)
	b = append(b, '\n')
	_, _ = x.w.Write(b) // bufio keeps the first error; Flush reports it
	if own {
		x.buf = b // keeps the room a long line needed
	}
}

// stateSet writes one series per known value, 1 for current, and one more
// for current when it is not among the known values: an undocumented value
// must show rather than vanish.
func (x *expositionWriter) stateSet(known []string, current string, labelValues ...escaped) {
	var room [8]escaped // no allocation for the usual few labels
	lv := append(append(room[:0], labelValues...), "")
	last := len(lv) - 1
	found := false
	for _, s := range known {
		lv[last] = escaped(s) // the API's documented values need no escaping
		found = found || s == current
		x.sample(boolValue(s == current), lv...)
	}
	if !found && current != "" {
		lv[last] = exposed(current)
		x.sample(1, lv...)
	}
}

// appendEscaped escapes as the text format wants: backslash and newline
// everywhere, the double quote in label values.
func appendEscaped(b []byte, s string, quote bool) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch c := s[i]; {
		case c == '\\':
			esc = `\\`
		case c == '\n':
			esc = `\n`
		case c == '"' && quote:
			esc = `\"`
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendFloat formats v as expfmt's text encoder does: strconv's shortest
// 'g', except that -0 is written 0. Whole numbers (counts, and timestamps
// in whole seconds) are written from their integer digits without the
// float formatting.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 0: // the most common values: state sets, flags
		return append(b, '0')
	case v == 1:
		return append(b, '1')
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e6:
		return strconv.AppendInt(b, int64(v), 10)
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return appendWholeExp(b, int64(v))
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendWholeExp writes a whole number n, 1e6 <= |n| < 2^53, as shortest
// 'g' does: in exponent form (from 1e6 on), with the integer's digits less
// its trailing zeros as the mantissa. Below 2^53 every integer is a float
// of its own, whose shortest decimal form is therefore its own digits.
func appendWholeExp(b []byte, n int64) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var room [20]byte
	d := strconv.AppendInt(room[:0], n, 10)
	exp := len(d) - 1
	k := len(d)
	for k > 1 && d[k-1] == '0' {
		k--
	}
	b = append(b, d[0])
	if k > 1 {
		b = append(b, '.')
		b = append(b, d[1:k]...)
	}
	b = append(b, 'e', '+')
	if exp < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(exp), 10)
}

// ExpositionContentType is the content type WriteExposition writes.
var ExpositionContentType = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// WriteExposition writes a scrape's metrics, the per-cache counters and
// then whatever gatherer holds (the exporter's own metrics, go_*,
// process_*), in the text format. A failure of gatherer is returned after
// everything else is written, as promhttp's ContinueOnError would.
func (e *Exporter) WriteExposition(w io.Writer, res *Result, gatherer prometheus.Gatherer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	x := newExpositionWriter(bw)
	res.write(x)
	// Only the scraped projects' counters: a discovered project's are on
	// its /probe, and a series in two jobs would be counted twice.
	e.states.write(x, res.projectIDs())
	if gatherer == nil {
		return bw.Flush()
	}
	mfs, gatherErr := gatherer.Gather()
	enc := expfmt.NewEncoder(bw, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("writing %s: %w", mf.GetName(), err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	if gatherErr != nil {
		return fmt.Errorf("gathering the exporter's own metrics: %w", gatherErr)
	}
	return nil
}
