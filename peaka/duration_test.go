package peaka

import (
	"testing"
	"time"
)

func TestParseISODuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"PT15M", 15 * time.Minute, false},
		{"PT10H", 10 * time.Hour, false},
		{"P2D", 48 * time.Hour, false},
		{"PT1H30M", 90 * time.Minute, false},
		{"P1DT12H", 36 * time.Hour, false},
		{"P1W", 7 * 24 * time.Hour, false},
		{"PT0.5S", 500 * time.Millisecond, false},
		{"PT1,5S", 1500 * time.Millisecond, false},
		{"PT20.345S", 20345 * time.Millisecond, false},
		{"pt15m", 15 * time.Minute, false},
		{" PT5M ", 5 * time.Minute, false},
		{"-PT6H", -6 * time.Hour, false},
		{"PT-6H3M", -6*time.Hour + 3*time.Minute, false},
		{"PT0S", 0, false},
		{"", 0, true},
		{"P", 0, true},
		{"PT", 0, true},
		{"15M", 0, true},
		{"PT15", 0, true},
		{"P1Y", 0, true},
		{"P1M", 0, true},
		{"PT1.5M", 0, true},
		{"PT5M1H", 0, true},
		{"PT5M5M", 0, true},
		{"P1H", 0, true},
		{"PT1D", 0, true},
		{"PTT1H", 0, true},
		{"PT1X", 0, true},
		{"PT1..5S", 0, true},
		{"P99999999999999999D", 0, true},
		{"garbage", 0, true},
		{"*/5 * * * *", 0, true},
	} {
		got, err := ParseISODuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
