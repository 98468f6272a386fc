package peaka

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// slowTimestamp is parseTimestamp without its fast path: the layouts
// through time.Parse.
func slowTimestamp(s string) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			return v.UTC(), true
		}
	}
	return time.Time{}, false
}

// Whatever the fast path accepts, time.Parse accepts too, with the same
// value (the same representation, which reflect.DeepEqual compares).
func checkFastTimestamp(t *testing.T, s string) (fast bool) {
	t.Helper()
	got, ok := parseUTCTimestamp(s)
	if !ok {
		return false
	}
	want, wantOK := slowTimestamp(s)
	if !wantOK {
		t.Fatalf("%q: fast path accepts %v, time.Parse refuses it", s, got)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: fast path %#v, time.Parse %#v", s, got, want)
	}
	return true
}

func TestUTCTimestampFastPath(t *testing.T) {
	for _, tc := range []struct {
		s    string
		fast bool
	}{
		{"2023-11-07T05:31:56Z", true},
		{"2023-11-07T05:31:56", true},
		{"2023-11-07T05:31:56.1Z", true},
		{"2023-11-07T05:31:56.123456789Z", true},
		{"2023-11-07T05:31:56.000000001", true},
		{"0000-01-01T00:00:00Z", true},
		{"9999-12-31T23:59:59.999999999Z", true},
		{"2024-02-29T00:00:00Z", true},
		{"2000-02-29T00:00:00Z", true},
		{"2023-04-30T00:00:00Z", true},
		// Left to time.Parse, which reads or refuses them.
		{"2023-02-29T00:00:00Z", false}, {"1900-02-29T00:00:00Z", false}, {"2023-04-31T00:00:00Z", false},
		{"2023-13-01T00:00:00Z", false}, {"2023-00-01T00:00:00Z", false}, {"2023-01-00T00:00:00Z", false},
		{"2023-01-01T24:00:00Z", false}, {"2023-01-01T00:60:00Z", false}, {"2023-01-01T00:00:60Z", false},
		{"2023-11-07T05:31:56.1234567891Z", false}, {"2023-11-07T05:31:56.Z", false}, {"2023-11-07T05:31:56,5Z", false},
		{"2023-11-07T05:31:56+00:00", false}, {"2023-11-07T05:31:56-01:30", false}, {"2023-11-07t05:31:56z", false},
		{"2023-11-07 05:31:56", false}, {"+023-11-07T05:31:56Z", false}, {"2023-1-07T05:31:56Z", false},
		{"2023-11-07T05:31:56ZZ", false}, {"2023-11-07T05:31", false}, {"", false},
	} {
		if fast := checkFastTimestamp(t, tc.s); fast != tc.fast {
			t.Errorf("%q: fast path %v, want %v", tc.s, fast, tc.fast)
		}
	}
	// Random near-misses: digits anywhere, fractions of 0 to 11 digits,
	// every suffix, now and then a separator out of place.
	rng := rand.New(rand.NewPCG(5, 6))
	suffixes := []string{"", "Z", "z", "+00:00", "-01:30", "Z ", " "}
	fastN := 0
	for range 300000 {
		b := []byte(fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d",
			rng.IntN(10000), rng.IntN(14), rng.IntN(33), rng.IntN(26), rng.IntN(62), rng.IntN(62)))
		if rng.IntN(20) == 0 {
			b[rng.IntN(len(b))] = "0123456789-T: .x"[rng.IntN(16)]
		}
		s := string(b)
		if f := rng.IntN(12); f > 0 {
			s += "."
			for range f - 1 {
				s += string(rune('0' + rng.IntN(10)))
			}
		}
		s += suffixes[rng.IntN(len(suffixes))]
		if checkFastTimestamp(t, s) {
			fastN++
		}
	}
	if fastN < 10000 {
		t.Errorf("only %d of the random timestamps took the fast path: the test would not see its faults", fastN)
	}
}
