package peakatest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestEndpointShapes(t *testing.T) {
	f := newFixture(t)
	orgFields := map[string]string{"id": "string", "name": "string", "owner": "string", "createdAt": "string",
		"iconFileId": "null", "description": "string"}
	wsFields := map[string]string{"id": "string", "name": "string", "createdBy": "string", "organizationId": "string",
		"description": "string", "createdAt": "string", "defaultWorkspace": "bool"}
	projFields := map[string]string{"id": "string", "name": "string", "description": "null", "domain": "string",
		"webhookBaseUrl": "string", "createdAt": "string", "workspaceId": "string"}
	scheduleFields := map[string]string{"type": "string", "expression": "string?"}

	tests := []struct {
		name  string
		path  string
		check func(t *testing.T, a answer)
	}{
		{"cache status", "/data/projects/" + p1 + "/cache/" + cacheA + "/status", func(t *testing.T, a answer) {
			m := a.object(t)
			checkCacheStatus(t, "status", m)
			if m["status"] != "RUNNING" || m["id"] != cacheA || m["projectId"] != p1 || m["catalogId"] != catalog1 {
				t.Errorf("wrong values: %s", a.body)
			}
			inc := m["lastIncrementalCacheExecution"].(map[string]any)
			full := m["lastFullRefreshCacheExecution"].(map[string]any)
			if inc["status"] != "RUNNING" || inc["executionMode"] != "INCREMENTAL" || inc["finishedAt"] != nil {
				t.Errorf("incremental slot: %v", inc)
			}
			if full["status"] != "COMPLETED" || full["executionMode"] != "FULL_REFRESH" {
				t.Errorf("full refresh slot: %v", full)
			}
			if p := inc["progress"].(map[string]any); p["numberOfInsertedRecords"] != 20.0 || p["numberOfDeletedRecords"] != 0.0 {
				t.Errorf("progress: %v", p)
			}
			if len(full["error"].(map[string]any)) != 0 {
				t.Errorf("error of a completed run should be {}: %v", full["error"])
			}
			if logs := m["cacheActionLogs"].([]any); len(logs) != 3 {
				t.Errorf("want 3 action logs (start, finish, start), got %d", len(logs))
			}
		}},
		{"cache status without logs", "/data/projects/" + p1 + "/cache/" + cacheA + "/status?excludeLogs=true", func(t *testing.T, a answer) {
			m := a.object(t)
			checkCacheStatus(t, "status", m)
			if _, ok := m["cacheActionLogs"]; ok {
				t.Error("excludeLogs=true still has cacheActionLogs")
			}
		}},
		{"never run cache", "/data/projects/" + p1 + "/cache/" + cacheB + "/status", func(t *testing.T, a answer) {
			m := a.object(t)
			checkCacheStatus(t, "status", m)
			if m["status"] != "NOT_INITIALIZED" || m["lastIncrementalCacheExecution"] != nil || m["lastFullRefreshCacheExecution"] != nil {
				t.Errorf("want NOT_INITIALIZED with null slots: %s", a.body)
			}
			if logs := m["cacheActionLogs"].([]any); len(logs) != 0 {
				t.Errorf("want [] logs, got %v", logs)
			}
		}},
		{"project caches", "/data/projects/" + p1 + "/cache/status", func(t *testing.T, a answer) {
			arr := a.array(t)
			if len(arr) != 2 {
				t.Fatalf("want 2 caches, got %d", len(arr))
			}
			for _, c := range arr {
				m := c.(map[string]any)
				checkCacheStatus(t, "item", m)
				if _, ok := m["cacheActionLogs"]; !ok {
					t.Error("project list must include logs")
				}
			}
		}},
		{"project without caches", "/data/projects/" + p2 + "/cache/status", func(t *testing.T, a answer) {
			if string(a.body) != "[]" {
				t.Errorf("want [], got %s", a.body)
			}
		}},
		{"catalog caches", "/data/projects/" + p1 + "/catalog/" + catalog1 + "/cache/status", func(t *testing.T, a answer) {
			arr := a.array(t)
			if len(arr) != 1 || arr[0].(map[string]any)["id"] != cacheA {
				t.Fatalf("want only cache A: %s", a.body)
			}
			checkCacheStatus(t, "item", arr[0].(map[string]any))
		}},
		{"unknown catalog", "/data/projects/" + p1 + "/catalog/nope/cache/status", func(t *testing.T, a answer) {
			if string(a.body) != "[]" {
				t.Errorf("want [], got %s", a.body)
			}
		}},
		{"settings", "/data/projects/" + p1 + "/cache/" + cacheA, func(t *testing.T, a answer) {
			m := a.object(t)
			fields(t, "settings", m, map[string]string{"id": "string", "catalogId": "string", "schemaName": "string",
				"tableName": "string", "projectId": "string", "incrementalCacheSchedule": "object", "fullRefreshCacheSchedule": "object"})
			inc := m["incrementalCacheSchedule"].(map[string]any)
			full := m["fullRefreshCacheSchedule"].(map[string]any)
			fields(t, "incremental", inc, scheduleFields)
			fields(t, "full", full, scheduleFields)
			if inc["type"] != "BASIC" || inc["expression"] != "PT15M" || full["expression"] != "P1D" {
				t.Errorf("schedules: %v %v", inc, full)
			}
		}},
		{"settings without schedule", "/data/projects/" + p1 + "/cache/" + cacheB, func(t *testing.T, a answer) {
			inc := a.object(t)["incrementalCacheSchedule"].(map[string]any)
			if inc["type"] != "NONE" {
				t.Errorf("want NONE: %v", inc)
			}
			if _, ok := inc["expression"]; ok {
				t.Errorf("NONE must have no expression: %v", inc)
			}
		}},
		{"history", "/data/projects/" + p1 + "/cache/" + cacheA + "/executionHistory", func(t *testing.T, a answer) {
			arr := a.array(t)
			if len(arr) != 2 {
				t.Fatalf("want 2 executions, got %s", a.body)
			}
			for _, e := range arr {
				checkExecution(t, "history", e.(map[string]any))
			}
			if arr[0].(map[string]any)["executionMode"] != "INCREMENTAL" {
				t.Errorf("newest first: %s", a.body)
			}
		}},
		{"history of a never run cache", "/data/projects/" + p1 + "/cache/" + cacheB + "/executionHistory", func(t *testing.T, a answer) {
			if string(a.body) != "[]" {
				t.Errorf("want [], got %s", a.body)
			}
		}},
		{"exports", "/data/projects/" + p1 + "/exports", func(t *testing.T, a answer) {
			arr := a.array(t)
			if len(arr) != 1 {
				t.Fatalf("want 1 export: %s", a.body)
			}
			m := arr[0].(map[string]any)
			fields(t, "export", m, exportFields)
			if _, ok := m["files"]; ok {
				t.Error("list items must not carry files")
			}
			if m["status"] != "SUCCEEDED" || m["rowCount"] != 993.0 || m["bytes"] != 3706920.0 || m["durationMs"] != 5000.0 {
				t.Errorf("values: %v", m)
			}
		}},
		{"export", "/data/projects/" + p1 + "/exports/" + export1, func(t *testing.T, a answer) {
			m := a.object(t)
			fields(t, "export", m, exportFields)
			isTimestamp(t, "createdAt", m["createdAt"])
			if m["downloadable"] != false {
				t.Error("partner user is not the owner")
			}
		}},
		{"organizations", "/organizations", func(t *testing.T, a answer) {
			arr := a.array(t)
			if len(arr) != 1 {
				t.Fatalf("want 1: %s", a.body)
			}
			fields(t, "org", arr[0].(map[string]any), orgFields)
		}},
		{"workspaces", "/organizations/" + org1 + "/workspaces", func(t *testing.T, a answer) {
			arr := a.array(t)
			if len(arr) != 1 {
				t.Fatalf("want 1: %s", a.body)
			}
			m := arr[0].(map[string]any)
			fields(t, "ws", m, wsFields)
			if m["defaultWorkspace"] != true || m["organizationId"] != org1 {
				t.Errorf("workspace: %v", m)
			}
		}},
		{"projects", "/organizations/" + org1 + "/workspaces/" + ws1 + "/projects", func(t *testing.T, a answer) {
			arr := a.array(t)
			if len(arr) != 2 {
				t.Fatalf("want 2: %s", a.body)
			}
			for _, p := range arr {
				fields(t, "project", p.(map[string]any), projFields)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := f.get(tc.path)
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			tc.check(t, a)
		})
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/data/projects/" + p1 + "/cache/nope/status", 404},
		{"GET", "/data/projects/" + p1 + "/cache/nope", 404},
		{"GET", "/data/projects/" + p1 + "/cache/nope/executionHistory", 404},
		{"GET", "/data/projects/nope/cache/" + cacheA + "/status", 404},
		{"GET", "/data/projects/nope/cache/status", 404},
		{"GET", "/data/projects/nope/catalog/x/cache/status", 404},
		{"GET", "/data/projects/nope/exports", 404},
		{"GET", "/data/projects/" + p1 + "/exports/nope", 404},
		{"GET", "/organizations/nope/workspaces", 404},
		{"GET", "/organizations/" + org1 + "/workspaces/nope/projects", 404},
		{"GET", "/data/projects/" + p1 + "/materialized-queries/status", 404},
		{"GET", "/", 404},
		{"GET", "/organizations/", 404},
		{"POST", "/data/projects/" + p1 + "/cache/" + cacheA + "/status", 405},
		{"DELETE", "/data/projects/" + p1 + "/exports/" + export1, 405},
		{"PUT", "/organizations", 405},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			a := f.do(tc.method, tc.path, partnerKey)
			if a.status != tc.want {
				t.Fatalf("status %d, want %d: %s", a.status, tc.want, a.body)
			}
			if tc.want == 405 && a.header.Get("Allow") != "GET" {
				t.Errorf("Allow %q", a.header.Get("Allow"))
			}
			if msg, _ := a.object(t)["message"].(string); msg == "" {
				t.Errorf("error body without a message: %s", a.body)
			}
		})
	}
}

func TestPathPrefixIsIgnored(t *testing.T) {
	f := newFixture(t)
	a := f.get("/api/v1/data/projects/" + p1 + "/cache/" + cacheA + "/status")
	if a.object(t)["id"] != cacheA {
		t.Fatalf("prefixed path: %s", a.body)
	}
	f.get("/partner/api/v1/organizations")
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	cacheStatus := "/data/projects/" + p1 + "/cache/" + cacheA + "/status"
	other := "/data/projects/" + p2 + "/cache/status"
	tests := []struct {
		name, path, header string
		want               int
	}{
		{"no header", cacheStatus, "", 401},
		{"unknown key", cacheStatus, "Bearer nope", 401},
		{"not bearer", cacheStatus, "Basic " + partnerKey, 401},
		{"bare key", cacheStatus, partnerKey, 401},
		{"partner key", cacheStatus, "Bearer " + partnerKey, 200},
		{"partner key, other project", other, "Bearer " + partnerKey, 200},
		{"partner key, organizations", "/organizations", "Bearer " + partnerKey, 200},
		{"project key, own project", cacheStatus, "Bearer " + p1Key, 200},
		{"project key, own exports", "/data/projects/" + p1 + "/exports", "Bearer " + p1Key, 200},
		{"project key, other project", other, "Bearer " + p1Key, 403},
		{"project key, other project's unknown cache", "/data/projects/" + p2 + "/cache/x/status", "Bearer " + p1Key, 403},
		{"project key, organizations", "/organizations", "Bearer " + p1Key, 403},
		{"project key, workspaces", "/organizations/" + org1 + "/workspaces", "Bearer " + p1Key, 403},
		{"project key, projects", "/organizations/" + org1 + "/workspaces/" + ws1 + "/projects", "Bearer " + p1Key, 403},
		{"unknown key beats unknown cache", "/data/projects/" + p1 + "/cache/nope/status", "Bearer nope", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", f.srv.URL+tc.path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// The live service's error bodies come in three shapes; the simulator must
// serve all of them so that a client that knows only one fails a test.
func TestErrorBodiesRotate(t *testing.T) {
	f := newFixture(t)
	shapes := map[string]bool{}
	for range 4 {
		a := f.do("GET", "/data/projects/"+p1+"/cache/nope/status", partnerKey)
		m := a.object(t)
		if _, ok := m["error"]; ok {
			shapes["error+message+null code"] = m["errorCode"] == nil && m["message"] != ""
		} else {
			shapes["numeric code"] = m["errorCode"] == 100.0 && m["message"] != ""
		}
	}
	if len(shapes) != 2 || !shapes["error+message+null code"] || !shapes["numeric code"] {
		t.Errorf("404 bodies: %v", shapes)
	}
	f.sim.SetFault(cacheA, Fault{Status: 500})
	html := 0
	for range 3 {
		a := f.do("GET", "/data/projects/"+p1+"/cache/"+cacheA+"/status", partnerKey)
		if a.status != 500 {
			t.Fatalf("status %d", a.status)
		}
		if strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			html++
			if !strings.Contains(string(a.body), "<html>") {
				t.Errorf("HTML body: %s", a.body)
			}
		} else {
			a.object(t)
		}
	}
	if html != 1 {
		t.Errorf("want one HTML page in three 500s, got %d", html)
	}
}

func TestSchedulesInSettings(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	for _, tc := range []struct {
		every time.Duration
		want  string
	}{
		{15 * time.Minute, "PT15M"}, {90 * time.Minute, "PT1H30M"}, {24 * time.Hour, "P1D"},
		{48 * time.Hour, "P2D"}, {36 * time.Hour, "PT36H"}, {90 * time.Second, "PT1M30S"},
		{1500 * time.Millisecond, "PT1.5S"}, {10 * time.Hour, "PT10H"},
	} {
		if got := isoDuration(tc.every); got != tc.want {
			t.Errorf("isoDuration(%v) = %q, want %q", tc.every, got, tc.want)
		}
	}
	s.AddCache(p1, Cache{ID: cacheA, IncrementalEvery: 90 * time.Minute, FullRefreshEvery: 24 * time.Hour})
	f := serve(t, s)
	path := "/data/projects/" + p1 + "/cache/" + cacheA
	m := f.get(path).object(t)
	if m["incrementalCacheSchedule"].(map[string]any)["expression"] != "PT1H30M" {
		t.Errorf("settings: %v", m)
	}
	s.SetSchedule(p1, cacheA, Incremental, "BASIC", "garbage")
	s.SetSchedule(p1, cacheA, FullRefresh, "NONE", "")
	m = f.get(path).object(t)
	inc := m["incrementalCacheSchedule"].(map[string]any)
	full := m["fullRefreshCacheSchedule"].(map[string]any)
	if inc["type"] != "BASIC" || inc["expression"] != "garbage" {
		t.Errorf("override: %v", inc)
	}
	if _, ok := full["expression"]; ok || full["type"] != "NONE" {
		t.Errorf("override: %v", full)
	}
}

func TestRequestCounting(t *testing.T) {
	f := newFixture(t)
	f.sim.ResetRequests()
	f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/status")
	f.do("GET", "/data/projects/"+p1+"/cache/"+cacheA+"/status", "bad")
	f.do("GET", "/data/projects/"+p1+"/cache/nope/status", partnerKey)
	f.get("/data/projects/" + p1 + "/cache/status")
	f.do("POST", "/organizations", partnerKey)
	f.do("GET", "/nowhere", partnerKey)
	for route, want := range map[string]int{
		RouteCacheStatus:        3,
		RouteProjectCacheStatus: 1,
		RouteCacheSettings:      0,
		"POST /organizations":   1,
		RouteOrganizations:      0,
		"/data/projects/{projectId}/cache/{cacheId}/status": 3,
	} {
		if got := f.sim.Requests(route); got != want {
			t.Errorf("Requests(%q) = %d, want %d", route, got, want)
		}
	}
	if got := f.sim.TotalRequests(); got != 6 {
		t.Errorf("TotalRequests = %d, want 6", got)
	}
	f.sim.ResetRequests()
	if f.sim.TotalRequests() != 0 || f.sim.Requests(RouteCacheStatus) != 0 {
		t.Error("ResetRequests left counts")
	}
}
