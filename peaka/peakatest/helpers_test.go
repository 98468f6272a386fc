package peakatest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	partnerKey = "partner-key"
	partnerUID = "u-partner"
	p1Key      = "project-1-key"
	p1UID      = "u-owner"
	p1, p2     = "Proj0001", "Proj0002"
	org1, ws1  = "org-1", "ws-1"
	cacheA     = "aaaaaaaa-0000-4000-8000-00000000000a"
	cacheB     = "bbbbbbbb-0000-4000-8000-00000000000b"
	catalog1   = "627249916703408649"
	export1    = "4c9fcb44-126a-45f8-99a0-f1d245083d78"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture is a simulator with keys, an organization tree, two projects, two
// caches with some history and one export, served over real HTTP.
type fixture struct {
	t   *testing.T
	sim *Sim
	srv *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := New(Options{Seed: 7})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddProjectKey(p1Key, p1, p1UID)
	s.AddOrganization(org1, "Org One")
	s.AddWorkspace(org1, ws1, "Default")
	s.AddProject(Project{ID: p1, Name: "One", OrganizationID: org1, WorkspaceID: ws1})
	s.AddProject(Project{ID: p2, Name: "Two", OrganizationID: org1, WorkspaceID: ws1})
	s.AddCache(p1, Cache{ID: cacheA, CatalogID: catalog1, SchemaName: "payment", TableName: "charges",
		IncrementalEvery: 15 * time.Minute, FullRefreshEvery: 24 * time.Hour})
	s.AddCache(p1, Cache{ID: cacheB, CatalogID: "other", SchemaName: "public", TableName: "orders"})
	s.RunExecution(p1, cacheA, FullRefresh, "COMPLETED", Records{Cached: 100, Inserted: 100})
	s.Advance(time.Second)
	s.StartExecution(p1, cacheA, Incremental)
	s.Progress(p1, cacheA, Incremental, Records{Cached: 120, Inserted: 20, Updated: 3})
	s.AddExport(p1, Export{ID: export1, QueryID: "709922802836177297", Source: `peaka.query."charges_view"`,
		UserID: p1UID, UserName: "owner@example.com", APIKeyPrefix: "hBWIQxjc", ClientSource: "peaka-studio",
		Rows: 993, Bytes: 3706920, Files: 2})
	s.Advance(time.Minute)
	return serve(t, s)
}

func serve(t *testing.T, s *Sim) *fixture {
	t.Helper()
	srv := httptest.NewServer(s)
	// Cleanups run last-in first-out: release held handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	return &fixture{t: t, sim: s, srv: srv}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, a.body)
	}
	return v
}

func (a answer) object(t *testing.T) map[string]any {
	t.Helper()
	m, ok := a.json(t).(map[string]any)
	if !ok {
		t.Fatalf("body is not an object: %s", a.body)
	}
	return m
}

func (a answer) array(t *testing.T) []any {
	t.Helper()
	v, ok := a.json(t).([]any)
	if !ok {
		t.Fatalf("body is not an array: %s", a.body)
	}
	return v
}

func (f *fixture) do(method, path, key string) answer {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// get fetches path with the partner key and insists on a 200.
func (f *fixture) get(path string) answer {
	f.t.Helper()
	a := f.do("GET", path, partnerKey)
	if a.status != http.StatusOK {
		f.t.Fatalf("GET %s: status %d, body %s", path, a.status, a.body)
	}
	return a
}

// jsonType names a decoded JSON value's type the way the checks spell it.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// fields checks that m has exactly the given fields, each of one of the
// types listed ("string|null"); a field marked "?" may be absent.
func fields(t *testing.T, where string, m map[string]any, want map[string]string) {
	t.Helper()
	for name, spec := range want {
		optional := strings.HasSuffix(spec, "?")
		spec = strings.TrimSuffix(spec, "?")
		v, ok := m[name]
		if !ok {
			if !optional {
				t.Errorf("%s: field %q missing", where, name)
			}
			continue
		}
		if got := jsonType(v); !strings.Contains("|"+spec+"|", "|"+got+"|") {
			t.Errorf("%s: field %q is %s (%v), want %s", where, name, got, v, spec)
		}
	}
	for name := range m {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected field %q", where, name)
		}
	}
}

// isTimestamp checks the wire time format: ISO-8601 UTC with Z.
func isTimestamp(t *testing.T, where string, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok || !strings.HasSuffix(s, "Z") {
		t.Fatalf("%s: %v is not a UTC timestamp", where, v)
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	return ts
}

var (
	cacheStatusFields = map[string]string{
		"id": "string", "status": "string", "catalogId": "string", "schemaName": "string",
		"tableName": "string", "projectId": "string",
		"lastIncrementalCacheExecution": "object|null", "lastFullRefreshCacheExecution": "object|null",
		"cacheActionLogs": "array?",
	}
	executionFields = map[string]string{
		"id": "string", "executionMode": "string", "status": "string", "error": "object",
		"progress": "object|null", "createdAt": "string", "updatedAt": "string", "finishedAt": "string|null",
	}
	progressFields = map[string]string{
		"numberOfCachedRecords": "number", "numberOfInsertedRecords": "number",
		"numberOfUpdatedRecords": "number", "numberOfDeletedRecords": "number",
		"lastOffset": "string", "lastCacheTxId": "string",
	}
	logFields = map[string]string{
		"timestamp": "string", "action": "string", "message": "string", "cacheType": "string", "isScheduled": "bool",
	}
	exportFields = map[string]string{
		"id": "string", "status": "string", "format": "string", "compression": "string",
		"rowCount": "number?", "bytes": "number?", "durationMs": "number?", "files": "array?",
		"expiresAt": "string?", "downloadable": "bool", "error": "string?", "createdAt": "string",
		"queryId": "string?", "catalogId": "string?", "schemaName": "string?", "tableName": "string?",
		"source": "string?", "userId": "string?", "userName": "string?", "apiKeyPrefix": "string?",
		"clientSource": "string?",
	}
)

func checkCacheStatus(t *testing.T, where string, m map[string]any) {
	t.Helper()
	fields(t, where, m, cacheStatusFields)
	for _, slot := range []string{"lastIncrementalCacheExecution", "lastFullRefreshCacheExecution"} {
		if e, ok := m[slot].(map[string]any); ok {
			checkExecution(t, where+"."+slot, e)
		}
	}
	if logs, ok := m["cacheActionLogs"].([]any); ok {
		for i, l := range logs {
			fields(t, fmt.Sprintf("%s.cacheActionLogs[%d]", where, i), l.(map[string]any), logFields)
		}
	}
}

func checkExecution(t *testing.T, where string, e map[string]any) {
	t.Helper()
	fields(t, where, e, executionFields)
	isTimestamp(t, where+".createdAt", e["createdAt"])
	if p, ok := e["progress"].(map[string]any); ok {
		fields(t, where+".progress", p, progressFields)
	}
}
