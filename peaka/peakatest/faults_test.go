package peakatest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	statusPath := "/data/projects/" + p1 + "/cache/" + cacheA + "/status"
	settingsPath := "/data/projects/" + p1 + "/cache/" + cacheA
	listPath := "/data/projects/" + p1 + "/cache/status"
	exportsPath := "/data/projects/" + p1 + "/exports"
	exportPath := exportsPath + "/" + export1

	isJSONError := func(t *testing.T, a answer) {
		t.Helper()
		if !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
			t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
		}
		if msg, _ := a.object(t)["message"].(string); msg == "" {
			t.Errorf("no message: %s", a.body)
		}
	}
	tests := []struct {
		name  string
		id    string
		fault Fault
		path  string
		want  int
		check func(t *testing.T, a answer)
	}{
		{"401", cacheA, Fault{Status: 401}, statusPath, 401, isJSONError},
		{"403", cacheA, Fault{Status: 403}, statusPath, 403, isJSONError},
		{"404", cacheA, Fault{Status: 404}, settingsPath, 404, isJSONError},
		{"429 with Retry-After", cacheA, Fault{Status: 429, RetryAfter: "7"}, statusPath, 429, func(t *testing.T, a answer) {
			isJSONError(t, a)
			if a.header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
			}
		}},
		{"429 without Retry-After", cacheA, Fault{Status: 429}, statusPath, 429, func(t *testing.T, a answer) {
			if _, ok := a.header["Retry-After"]; ok {
				t.Error("unexpected Retry-After")
			}
		}},
		{"503 with an HTTP date", cacheA, Fault{Status: 503, RetryAfter: "Wed, 21 Oct 2026 07:28:00 GMT"}, statusPath, 503, func(t *testing.T, a answer) {
			if a.header.Get("Retry-After") != "Wed, 21 Oct 2026 07:28:00 GMT" {
				t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
			}
		}},
		{"500 HTML", cacheA, Fault{Status: 500, HTML: true}, statusPath, 500, func(t *testing.T, a answer) {
			if !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(string(a.body), "500") {
				t.Errorf("%s %s", a.header.Get("Content-Type"), a.body)
			}
			if json.Valid(a.body) {
				t.Error("an HTML page should not be JSON")
			}
		}},
		{"Retry-After on a 200", cacheA, Fault{RetryAfter: "1"}, statusPath, 200, func(t *testing.T, a answer) {
			if a.header.Get("Retry-After") != "1" {
				t.Error("no Retry-After")
			}
			checkCacheStatus(t, "status", a.object(t))
		}},
		{"malformed", cacheA, Fault{Malformed: true}, statusPath, 200, func(t *testing.T, a answer) {
			if json.Valid(a.body) || len(a.body) == 0 {
				t.Errorf("body should be cut-off JSON: %s", a.body)
			}
		}},
		{"malformed list", p1, Fault{Malformed: true}, listPath, 200, func(t *testing.T, a answer) {
			if json.Valid(a.body) || !strings.HasPrefix(string(a.body), "[") {
				t.Errorf("body should be cut-off JSON: %s", a.body)
			}
		}},
		{"wrong shape: object for an array", p1, Fault{WrongShape: true}, listPath, 200, func(t *testing.T, a answer) {
			if _, ok := a.json(t).(map[string]any); !ok {
				t.Errorf("want an object: %s", a.body)
			}
		}},
		{"wrong shape: strings for numbers", cacheA, Fault{WrongShape: true}, statusPath, 200, func(t *testing.T, a answer) {
			m := a.object(t)
			p := m["lastIncrementalCacheExecution"].(map[string]any)["progress"].(map[string]any)
			if p["numberOfCachedRecords"] != "120" {
				t.Errorf("want a string counter: %v", p)
			}
			if l := m["cacheActionLogs"].([]any)[0].(map[string]any); l["isScheduled"] != "false" {
				t.Errorf("want a string boolean: %v", l)
			}
		}},
		{"wrong shape: array for an object", cacheA, Fault{WrongShape: true}, settingsPath, 200, func(t *testing.T, a answer) {
			if _, ok := a.json(t).([]any); !ok {
				t.Errorf("want an array: %s", a.body)
			}
		}},
		{"huge cache status", cacheA, Fault{HugeBytes: 1 << 20}, statusPath, 200, func(t *testing.T, a answer) {
			if len(a.body) < 1<<20 {
				t.Fatalf("%d bytes", len(a.body))
			}
			m := a.object(t)
			checkCacheStatus(t, "huge", m)
			if n := len(m["cacheActionLogs"].([]any)); n < 1000 {
				t.Errorf("padded with %d logs", n)
			}
		}},
		{"huge without logs", cacheA, Fault{HugeBytes: 100_000}, statusPath + "?excludeLogs=true", 200, func(t *testing.T, a answer) {
			if len(a.body) < 100_000 || len(a.object(t)["message"].(string)) < 90_000 {
				t.Errorf("%d bytes", len(a.body))
			}
		}},
		{"huge export list", p1, Fault{HugeBytes: 50_000}, exportsPath, 200, func(t *testing.T, a answer) {
			if len(a.body) < 50_000 || len(a.array(t)) != 1 {
				t.Errorf("%d bytes", len(a.body))
			}
		}},
		{"huge empty list", p2, Fault{HugeBytes: 10_000}, "/data/projects/" + p2 + "/cache/status", 200, func(t *testing.T, a answer) {
			if len(a.body) < 10_000 || len(a.array(t)) != 0 {
				t.Errorf("%d bytes", len(a.body))
			}
		}},
		{"unknown status", cacheA, Fault{UnknownStatus: "PAUSED"}, statusPath, 200, func(t *testing.T, a answer) {
			m := a.object(t)
			checkCacheStatus(t, "status", m)
			inc := m["lastIncrementalCacheExecution"].(map[string]any)
			if m["status"] != "PAUSED" || inc["status"] != "PAUSED" {
				t.Errorf("statuses %v %v", m["status"], inc["status"])
			}
		}},
		{"unknown export status", export1, Fault{UnknownStatus: "ARCHIVED"}, exportPath, 200, func(t *testing.T, a answer) {
			if a.object(t)["status"] != "ARCHIVED" {
				t.Errorf("%s", a.body)
			}
		}},
		{"missing fields", cacheA, Fault{MissingFields: true}, statusPath, 200, func(t *testing.T, a answer) {
			m := a.object(t)
			if _, ok := m["catalogId"]; ok {
				t.Error("catalogId present")
			}
			inc := m["lastIncrementalCacheExecution"].(map[string]any)
			for _, k := range []string{"progress", "createdAt", "updatedAt", "finishedAt", "error"} {
				if v, ok := inc[k]; !ok || v != nil {
					t.Errorf("%s should be an explicit null: %v", k, inc)
				}
			}
			if _, ok := inc["executionMode"]; ok {
				t.Error("executionMode present")
			}
			if m["id"] != cacheA || m["status"] != "RUNNING" {
				t.Errorf("identity must stay: %v", m)
			}
		}},
		{"missing schedule expression", cacheA, Fault{MissingFields: true}, settingsPath, 200, func(t *testing.T, a answer) {
			m := a.object(t)
			inc := m["incrementalCacheSchedule"].(map[string]any)
			if _, ok := inc["expression"]; ok || inc["type"] != "BASIC" || m["fullRefreshCacheSchedule"] != nil {
				t.Errorf("%s", a.body)
			}
		}},
		{"missing export fields", export1, Fault{MissingFields: true}, exportPath, 200, func(t *testing.T, a answer) {
			m := a.object(t)
			if m["createdAt"] != nil || m["rowCount"] != nil {
				t.Errorf("%s", a.body)
			}
			if _, ok := m["format"]; ok {
				t.Error("format present")
			}
		}},
		{"big numbers", cacheA, Fault{BigNumbers: true}, statusPath, 200, func(t *testing.T, a answer) {
			dec := json.NewDecoder(strings.NewReader(string(a.body)))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			full := m["lastFullRefreshCacheExecution"].(map[string]any)["progress"].(map[string]any)
			n, err := full["numberOfCachedRecords"].(json.Number).Int64()
			if err != nil || n <= math.MaxInt32 || n != 3_000_000_100 {
				t.Errorf("cached %v (%v)", full["numberOfCachedRecords"], err)
			}
			if full["numberOfDeletedRecords"].(json.Number) != "0" {
				t.Errorf("deletes stay 0: %v", full)
			}
		}},
		{"big export numbers", p1, Fault{BigNumbers: true}, exportsPath, 200, func(t *testing.T, a answer) {
			if e := a.array(t)[0].(map[string]any); e["rowCount"].(float64) <= math.MaxInt32 {
				t.Errorf("%v", e)
			}
		}},
		{"project fault leaves single calls alone", p1, Fault{Status: 500}, statusPath, 200, nil},
		{"project fault on exports", p1, Fault{Status: 503}, exportsPath, 503, nil},
		{"project fault on catalog list", p1, Fault{Status: 500}, "/data/projects/" + p1 + "/catalog/" + catalog1 + "/cache/status", 500, nil},
		{"cache fault on settings", cacheA, Fault{Status: 500}, settingsPath, 500, nil},
		{"cache fault on history", cacheA, Fault{Status: 500}, settingsPath + "/executionHistory", 500, nil},
		{"cache fault leaves the list alone", cacheA, Fault{Status: 500}, listPath, 200, nil},
		{"export fault leaves the list alone", export1, Fault{Status: 500}, exportsPath, 200, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.sim.SetFault(tc.id, tc.fault)
			a := f.do("GET", tc.path, partnerKey)
			if a.status != tc.want {
				t.Fatalf("status %d, want %d: %.300s", a.status, tc.want, a.body)
			}
			if tc.check != nil {
				tc.check(t, a)
			}
			// Auth is checked before any fault.
			if b := f.do("GET", tc.path, "wrong"); b.status != 401 {
				t.Errorf("bad key with a fault: %d", b.status)
			}
			f.sim.SetFault(tc.id, Fault{})
			if b := f.do("GET", tc.path, partnerKey); b.status != 200 || !json.Valid(b.body) {
				t.Errorf("after clearing: %d %.200s", b.status, b.body)
			}
		})
	}
}

func TestFaultDelay(t *testing.T) {
	f := newFixture(t)
	path := "/data/projects/" + p1 + "/cache/" + cacheA + "/status"
	f.sim.SetFault(cacheA, Fault{Delay: 150 * time.Millisecond})
	start := time.Now()
	f.get(path)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v", d)
	}

	// A client that gives up ends the wait, and the server stays usable.
	f.sim.SetFault(cacheA, Fault{Delay: time.Hour, Status: 500})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+partnerKey)
	if _, err := f.srv.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want a deadline error, got %v", err)
	}
	f.get("/data/projects/" + p1 + "/cache/status")
}

func TestFaultNeverEnds(t *testing.T) {
	f := newFixture(t)
	path := "/data/projects/" + p1 + "/cache/" + cacheA + "/status"
	f.sim.SetFault(cacheA, Fault{NeverEnds: true})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+partnerKey)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("headers should arrive: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	buf := make([]byte, 10)
	if n, err := io.ReadFull(resp.Body, buf); err != nil || string(buf[:n]) != `{"id":"aaa` {
		t.Fatalf("partial body: %q %v", buf[:n], err)
	}
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reading the rest should block until the deadline, got %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("blocked past the deadline")
	}

	// Close releases a held handler even while the client waits.
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+partnerKey)
		resp, err := f.srv.Client().Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	f.sim.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the handler")
	}
}
