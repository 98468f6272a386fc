package peaka_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/peakacom/peaka_exporter/peaka"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// The fuzz targets feed arbitrary answers to the client's real request path
// (status handling, size limit, decoding, error classification) through a
// transport that answers from memory, and compare what the client decodes
// with what encoding/json makes of the same bytes.

var writeSeeds = flag.Bool("fuzzseeds", false, "rewrite testdata/fuzz seed corpora from the simulated API")

// fuzzLimit is the client's answer limit in the fuzz targets: small, so
// that the limit itself is exercised too.
const fuzzLimit = 64 << 10

type memoryTransport struct {
	status int
	ctype  string
	body   []byte
}

func (m memoryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	if m.ctype != "" {
		h.Set("Content-Type", m.ctype)
	}
	return &http.Response{
		StatusCode:    m.status,
		Status:        strconv.Itoa(m.status),
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(m.body)),
		ContentLength: int64(len(m.body)),
		Request:       r,
		ProtoMajor:    1, ProtoMinor: 1,
	}, nil
}

func memoryClient(t *testing.T, status int, ctype string, body []byte) *peaka.Client {
	t.Helper()
	u, _ := url.Parse("https://peaka.invalid/api/v1")
	c, err := peaka.New(peaka.Options{
		BaseURL:          u,
		Transport:        memoryTransport{status: status, ctype: ctype, body: body},
		MaxResponseBytes: fuzzLimit,
		Retry:            peaka.RetryPolicy{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.WithKey(key)
}

// checkError holds for every error the client returns: typed, classified,
// one short line, no key.
func checkError(t *testing.T, err error) {
	t.Helper()
	var e *peaka.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *peaka.Error", err, err)
	}
	if !slices.Contains(peaka.Reasons, e.Reason) || peaka.ReasonOf(err) != e.Reason {
		t.Fatalf("reason %q", e.Reason)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") || !utf8.ValidString(msg) || strings.Contains(msg, key) || len(msg) > 600 {
		t.Fatalf("error text not one short clean line: %q", msg)
	}
}

// decodeCheck runs one call of the client on body and compares the result
// with json.Unmarshal into a fresh T.
func decodeCheck[T any](t *testing.T, body []byte, call func(*peaka.Client) (T, error)) {
	got, err := call(memoryClient(t, 200, "application/json", body))
	var want T
	wantErr := json.Unmarshal(body, &want)
	if len(body) > fuzzLimit {
		if err == nil || peaka.ReasonOf(err) != peaka.ReasonBadResponse {
			t.Fatalf("answer over the limit: %v", err)
		}
		return
	}
	if err != nil {
		checkError(t, err)
		if peaka.ReasonOf(err) != peaka.ReasonBadResponse {
			t.Fatalf("a whole answer that does not decode must be bad_response: %v", err)
		}
		if wantErr == nil {
			t.Fatalf("client refused what encoding/json accepts: %v", err)
		}
		return
	}
	if wantErr != nil {
		t.Fatalf("client accepted what encoding/json refuses (%v)", wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("client decoded\n%+v\nencoding/json decoded\n%+v", got, want)
	}
}

func deref[T any](p *T, err error) (T, error) {
	if p == nil {
		var zero T
		return zero, err
	}
	return *p, err
}

var fuzzCtx = context.Background()

func FuzzCacheStatus(f *testing.F) {
	addSeeds(f, `{"id":"c","status":"COMPLETED","lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":1}}}`,
		// Cases where the streaming reader must do as encoding/json does:
		// folded and repeated keys, escapes, broken UTF-8, big numbers.
		`{"ID":"a","ſtatus":"RUNNING","id":"b","lastIncrementalCacheExecution":{"id":"e"},"lastIncrementalCacheExecution":{"status":"FAILED","error":{"m":[1]}}}`,
		`{"cacheActionLogs":[{"action":"a"},{"action":"b"}],"cacheActionLogs":[{"cacheType":"c"}],"cacheActionLogs":[{},{}]}`,
		"{\"id\":\"\\ud83d\\u0041\xff\\u00e9\",\"lastFullRefreshCacheExecution\":{\"progress\":{\"numberOfCachedRecords\":-9223372036854775808}}}")
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeCheck(t, body, func(c *peaka.Client) (peaka.CacheStatus, error) {
			return deref(c.CacheStatus(fuzzCtx, "p", "c", false))
		})
	})
}

func FuzzCacheList(f *testing.F) {
	addSeeds(f, `[{"id":"c","status":"RUNNING"}]`, `[]`)
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeCheck(t, body, func(c *peaka.Client) ([]peaka.CacheStatus, error) {
			return c.ProjectCacheStatuses(fuzzCtx, "p")
		})
	})
}

func FuzzCacheSettings(f *testing.F) {
	addSeeds(f, `{"id":"c","incrementalCacheSchedule":{"type":"BASIC","expression":"PT15M"},"fullRefreshCacheSchedule":null}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeCheck(t, body, func(c *peaka.Client) (peaka.CacheSettings, error) {
			return deref(c.CacheSettings(fuzzCtx, "p", "c"))
		})
	})
}

func FuzzExecutionHistory(f *testing.F) {
	addSeeds(f, `[{"id":"e","status":"FAILED","error":{"message":"x"},"createdAt":"2026-01-01T00:00:00"}]`)
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeCheck(t, body, func(c *peaka.Client) ([]peaka.Execution, error) {
			return c.ExecutionHistory(fuzzCtx, "p", "c", 50, 0)
		})
	})
}

func FuzzExport(f *testing.F) {
	addSeeds(f, `{"id":"x","status":"SUCCEEDED","rowCount":3000000000,"files":[{"name":"a","url":"https://s.invalid/a?X-Amz-Signature=00"}]}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeCheck(t, body, func(c *peaka.Client) (peaka.Export, error) {
			return deref(c.Export(fuzzCtx, "p", "x"))
		})
	})
}

func FuzzExportList(f *testing.F) {
	addSeeds(f, `[{"id":"x","status":"PENDING","createdAt":"2026-01-01T00:00:00Z"}]`)
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeCheck(t, body, func(c *peaka.Client) ([]peaka.Export, error) {
			return c.ListExports(fuzzCtx, "p", peaka.ListExportsQuery{Limit: 200})
		})
		// The paging walk over the same page ends and keeps its promises.
		c := memoryClient(t, 200, "application/json", body)
		got, _, err := c.RecentExports(fuzzCtx, "p", time.Time{}, 3)
		if err != nil {
			checkError(t, err)
			return
		}
		seen := map[string]bool{}
		for _, e := range got {
			if e.ID == "" || seen[e.ID] {
				t.Fatalf("RecentExports returned an empty or duplicate id %q", e.ID)
			}
			seen[e.ID] = true
		}
	})
}

// FuzzOrganizations covers the organization tree's answers, which may be
// an array or (as the OpenAPI description declares) a single object.
func FuzzOrganizations(f *testing.F) {
	addSeeds(f, `[{"id":"o","name":"Org"}]`, `{"id":"o","name":"Org"}`, ` [ ] `, `[{"id":1}]`, `{"id":"o"} x`)
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := memoryClient(t, 200, "application/json", body).Organizations(fuzzCtx)
		// The documented reading: an object is a list of one.
		var want []peaka.Organization
		var wantErr error
		if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
			var one peaka.Organization
			if wantErr = json.Unmarshal(body, &one); wantErr == nil {
				want = []peaka.Organization{one}
			}
		} else {
			wantErr = json.Unmarshal(body, &want)
		}
		if len(body) > fuzzLimit {
			if err == nil {
				t.Fatal("answer over the limit accepted")
			}
			checkError(t, err)
			return
		}
		switch {
		case err != nil:
			checkError(t, err)
			if wantErr == nil {
				t.Fatalf("refused %q: %v", body, err)
			}
		case wantErr != nil:
			t.Fatalf("accepted %q (%v)", body, wantErr)
		case !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0):
			t.Fatalf("decoded %+v, want %+v", got, want)
		}
	})
}

// FuzzErrorAnswer feeds any status, content type and body: the result is an
// error for every non-2xx status, classified by the status alone, with a
// message that is one clean line without secrets.
func FuzzErrorAnswer(f *testing.F) {
	f.Add(500, "text/html", []byte("<!DOCTYPE html><html><body><h1>500</h1></body></html>"))
	f.Add(429, "application/json", []byte(`{"error":"Too Many Requests","message":"slow down, owner@example.com","errorCode":null}`))
	f.Add(401, "application/json", []byte(`{"errorCode":100,"message":"Invalid key Bearer `+key+`"}`))
	f.Add(403, "application/json", []byte(`{"message":"see https://peaka.invalid/x?X-Amz-Signature=abc\nnext line"}`))
	f.Add(302, "", []byte(""))
	f.Add(200, "application/json", []byte(`{"id":"c"}`))
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		status = 100 + (status%500+500)%500 // 100..599
		if status < 200 {
			status += 100 // 1xx answers are interim; the transport never returns them
		}
		c := memoryClient(t, status, ctype, body)
		_, err := c.CacheStatus(fuzzCtx, "p", "c", false)
		if status >= 200 && status <= 299 {
			if err != nil {
				checkError(t, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("status %d accepted", status)
		}
		checkError(t, err)
		var e *peaka.Error
		errors.As(err, &e)
		if e.StatusCode != status {
			t.Fatalf("status %d reported as %d", status, e.StatusCode)
		}
		want := peaka.ReasonBadResponse
		switch {
		case status == 401:
			want = peaka.ReasonUnauthorized
		case status == 403:
			want = peaka.ReasonForbidden
		case status == 404:
			want = peaka.ReasonNotFound
		case status == 429:
			want = peaka.ReasonRateLimited
		case status >= 500:
			want = peaka.ReasonServerError
		}
		if e.Reason != want {
			t.Fatalf("status %d: reason %s, want %s", status, e.Reason, want)
		}
		msg := err.Error()
		if m := anyAddress.FindString(msg); m != "" {
			t.Fatalf("error text carries an e-mail address %q: %q", m, msg)
		}
		for _, secret := range []string{"x-amz-signature", "https://", "<html", "<!doctype", "bearer " + strings.ToLower(key)} {
			if strings.Contains(strings.ToLower(msg), secret) {
				t.Fatalf("error text carries %q: %q", secret, msg)
			}
		}
	})
}

// anyAddress finds an e-mail address whatever its case ("@example.com"
// alone is a domain, not an address).
var anyAddress = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}`)

// addSeeds adds inline seeds; the corpora in testdata/fuzz hold the
// simulator's answers (go test ./peaka -run TestWriteFuzzSeeds -fuzzseeds
// rewrites them).
func addSeeds(f *testing.F, bodies ...string) {
	for _, b := range bodies {
		f.Add([]byte(b))
	}
	for _, b := range []string{``, `null`, `{}`, `[]`, `"x"`, `{"id":1}`, `{} {}`, `{"id":"c"`} {
		f.Add([]byte(b))
	}
}

// TestWriteFuzzSeeds writes the seed corpora from the simulator's answers
// under every body fault, so that fuzzing starts from realistic answers.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -fuzzseeds to rewrite testdata/fuzz")
	}
	sim := peakatest.New(peakatest.Options{Seed: 11})
	sim.AddPartnerKey(key, "owner")
	sim.AddCache("p", peakatest.Cache{ID: "c", CatalogID: "367189801096446904", SchemaName: "public", TableName: "orders",
		IncrementalEvery: 15 * time.Minute, FullRefreshEvery: 24 * time.Hour})
	sim.Advance(time.Hour)
	sim.StartExecution("p", "c", peakatest.Incremental)
	sim.Progress("p", "c", peakatest.Incremental, peakatest.Records{Cached: 5, Inserted: 5})
	now := sim.Now()
	sim.AddExport("p", peakatest.Export{ID: "x", UserID: "owner", UserName: "owner@example.com", Rows: 993, Bytes: 3706920,
		Files: 2, CreatedAt: now.Add(-time.Hour), Format: "JSONL", Source: `peaka.query."charges_view"`})
	sim.AddExport("p", peakatest.Export{ID: "y", CreatedAt: now.Add(-2 * time.Hour), Fail: "row limit"})

	faults := map[string]peakatest.Fault{
		"plain":    {},
		"missing":  {MissingFields: true},
		"big":      {BigNumbers: true},
		"huge-num": {HugeNumbers: true},
		"odd":      {UnknownStatus: "PAUSED_BY_ADMIN"},
		"shape":    {WrongShape: true},
		"cut":      {Malformed: true},
	}
	targets := map[string]struct{ id, path string }{
		"FuzzCacheStatus":      {"c", "/data/projects/p/cache/c/status"},
		"FuzzCacheList":        {"p", "/data/projects/p/cache/status"},
		"FuzzCacheSettings":    {"c", "/data/projects/p/cache/c"},
		"FuzzExecutionHistory": {"c", "/data/projects/p/cache/c/executionHistory?limit=5"},
		"FuzzExport":           {"x", "/data/projects/p/exports/x"},
		"FuzzExportList":       {"p", "/data/projects/p/exports"},
	}
	for target, tg := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, fault := range faults {
			sim.SetFault(tg.id, fault)
			req, _ := http.NewRequest("GET", "http://sim"+tg.path, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			rec := httptest.NewRecorder()
			sim.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("%s %s: %d", target, name, rec.Code)
			}
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(rec.Body.String()) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sim.SetFault(tg.id, peakatest.Fault{})
	}
	sim.AddOrganization("org-1", "Org One")
	sim.AddWorkspace("org-1", "ws-1", "Default")
	sim.AddProject(peakatest.Project{ID: "p", Name: "P", OrganizationID: "org-1", WorkspaceID: "ws-1"})
	orgDir := filepath.Join("testdata", "fuzz", "FuzzOrganizations")
	if err := os.MkdirAll(orgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"organizations": "/organizations", "workspaces": "/organizations/org-1/workspaces",
		"projects": "/organizations/org-1/workspaces/ws-1/projects"} {
		req, _ := http.NewRequest("GET", "http://sim"+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: %d", path, rec.Code)
		}
		for form, body := range map[string]string{"": rec.Body.String(), "-one": strings.TrimSuffix(strings.TrimPrefix(rec.Body.String(), "["), "]")} {
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(body) + ")\n"
			if err := os.WriteFile(filepath.Join(orgDir, name+form), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	dir := filepath.Join("testdata", "fuzz", "FuzzErrorAnswer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, status := range []int{400, 401, 403, 404, 429, 500, 502, 503} {
		sim.SetFault("c", peakatest.Fault{Status: status, HTML: i%3 == 2})
		req, _ := http.NewRequest("GET", "http://sim/data/projects/p/cache/c/status", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		content := fmt.Sprintf("go test fuzz v1\nint(%d)\nstring(%s)\n[]byte(%s)\n",
			rec.Code, strconv.Quote(rec.Header().Get("Content-Type")), strconv.Quote(rec.Body.String()))
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(status)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
