package peaka

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5", 5 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999", 0, false}, // beyond uint32 seconds: not a sane value
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},                  // in the past: no wait
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second, true}, // obsolete form, still HTTP
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryWaitBounds(t *testing.T) {
	c := &Client{retry: RetryPolicy{}.withDefaults()}
	for n, want := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 3: 800 * time.Millisecond, 6: 5 * time.Second, 40: 5 * time.Second} {
		for range 200 {
			w, ok := c.retryWait(n, "")
			if !ok || w < want/2 || w > want {
				t.Fatalf("retry %d: wait %v (ok %v), want within [%v, %v]", n, w, ok, want/2, want)
			}
		}
	}
	if w, ok := c.retryWait(1, "3"); !ok || w != 3*time.Second {
		t.Errorf("Retry-After 3 on the first retry: %v %v, want 3s", w, ok)
	}
	if w, ok := c.retryWait(6, "1"); !ok || w < 2500*time.Millisecond {
		t.Errorf("a backoff longer than Retry-After wins: %v %v", w, ok)
	}
	if _, ok := c.retryWait(1, "3600"); ok {
		t.Error("a Retry-After of an hour is waited for")
	}
}
