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

// escaped is a label value as the text format writes it between its quotes:
// valid UTF-8, cut to maxLabelValueLength, with backslash, double quote and
// newline escaped. exposed makes one from any string; a constant of this
// package converts directly when it needs no escaping (labels_test.go
// checks every such set), so the writer copies values as they are instead
// of escaping the same few strings in every one of a cache's fifty series.
type escaped string

// exposed returns s as a label value for the exposition; s itself, without
// a copy, when it needs neither cutting nor escaping.
func exposed(s string) escaped {
	s = labelValue(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' || c == '\n' {
			return escaped(appendEscaped(make([]byte, 0, len(s)+8), s, true))
		}
	}
	return escaped(s)
}

func boolLabel(b *bool) escaped {
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
