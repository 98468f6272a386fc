package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/peakacom/peaka_exporter/peaka"
)

func TestExposedEscapesForTheTextFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want escaped
	}{
		{"plain", "plain"},
		{"", ""},
		{`a"b`, `a\"b`},
		{`back\slash`, `back\\slash`},
		{"two\nlines", `two\nlines`},
		{"tab\tstays", "tab\tstays"},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		{strings.Repeat("é", 100), escaped(strings.Repeat("é", 64))},   // cut at 128 bytes, on a rune boundary
		{strings.Repeat(`"`, 200), escaped(strings.Repeat(`\"`, 128))}, // cut first, then escaped
	} {
		if got := exposed(tc.in); got != tc.want {
			t.Errorf("exposed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The writer copies label values as they are; the constants that convert
// to escaped directly, without exposed, must need no escaping.
func TestConstantLabelValuesNeedNoEscaping(t *testing.T) {
	sets := map[string][]string{
		"peaka.CacheStatuses":     peaka.CacheStatuses,
		"peaka.ExecutionStatuses": peaka.ExecutionStatuses,
		"peaka.ExportStatuses":    peaka.ExportStatuses,
		"executionKinds":          executionKinds,
		"finishedStatuses":        finishedStatuses,
		"recordKinds":             recordKinds,
		"targetKinds":             targetKinds,
	}
	for name, set := range sets {
		if len(set) == 0 {
			t.Errorf("%s is empty", name)
		}
		for _, s := range set {
			if exposed(s) != escaped(s) {
				t.Errorf("%s holds %q, which needs escaping", name, s)
			}
		}
	}
}

// writeActionLogs keeps the newest entry per action, cache type and
// scheduled flag; values that make the same label value (cut to the length
// limit) are one series, and a cache has at most maxActionSeries of them.
func TestWriteActionLogs(t *testing.T) {
	at := func(sec int64) peaka.Time { return peaka.Time{Time: time.Unix(sec, 0)} }
	yes, no := true, false
	long := strings.Repeat("A", maxLabelValueLength)
	logs := []peaka.ActionLog{
		{Timestamp: at(100), Action: "CACHE_STARTED", CacheType: "INCREMENTAL", IsScheduled: &yes},
		{Timestamp: at(300), Action: "CACHE_STARTED", CacheType: "INCREMENTAL", IsScheduled: &yes},
		{Timestamp: at(200), Action: "CACHE_STARTED", CacheType: "INCREMENTAL", IsScheduled: &no},
		{Timestamp: at(50), Action: "CACHE_STARTED", CacheType: "INCREMENTAL"},
		{Action: "CACHE_FAILED", CacheType: "INCREMENTAL"}, // no time: no series
		{Timestamp: at(400), Action: long + "x", CacheType: `a"b`},
		{Timestamp: at(500), Action: long + "y", CacheType: `a"b`}, // same label values as the one before
		{Timestamp: at(450), Action: long + "x", CacheType: `a"b`},
	}
	want := []string{
		`{action="CACHE_STARTED",cache_id="c",cache_type="INCREMENTAL",project_id="p",scheduled="true"} 300`,
		`{action="CACHE_STARTED",cache_id="c",cache_type="INCREMENTAL",project_id="p",scheduled="false"} 200`,
		`{action="CACHE_STARTED",cache_id="c",cache_type="INCREMENTAL",project_id="p",scheduled=""} 50`,
		`{action="` + long + `",cache_id="c",cache_type="a\"b",project_id="p",scheduled=""} 500`,
	}
	if got := actionLogLines(t, logs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	many := make([]peaka.ActionLog, 0, 2*maxActionSeries)
	for i := range 2 * maxActionSeries {
		many = append(many, peaka.ActionLog{Timestamp: at(int64(i + 1)), Action: fmt.Sprintf("A%02d", i)})
	}
	if got := actionLogLines(t, many); len(got) != maxActionSeries {
		t.Errorf("%d series from %d actions, want the first %d", len(got), len(many), maxActionSeries)
	}
}

// actionLogLines writes logs as the action series of cache c in project p
// and returns the lines without the metric name.
func actionLogLines(t *testing.T, logs []peaka.ActionLog) []string {
	t.Helper()
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	x := newExpositionWriter(bw)
	x.begin(lastActionFamily)
	writeActionLogs(x, "p", "c", logs)
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(out.String()) {
		if name, rest, ok := strings.Cut(strings.TrimSuffix(l, "\n"), "{"); ok && name == lastActionFamily.name {
			lines = append(lines, "{"+rest)
		}
	}
	return lines
}
