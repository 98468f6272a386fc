package collector

import (
	"strings"
	"unicode/utf8"
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
