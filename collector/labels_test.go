package collector

import (
	"strings"
	"testing"

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
