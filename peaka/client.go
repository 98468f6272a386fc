// Package peaka is a client for the read-only monitoring calls of the Peaka
// API: cache status, cache settings and history, and export jobs.
package peaka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Route templates, used as the endpoint label of the client's metrics and in
// error messages; never the expanded path, which holds IDs.
const (
	EndpointCacheStatus         = "/data/projects/{projectId}/cache/{cacheId}/status"
	EndpointProjectCacheStatus  = "/data/projects/{projectId}/cache/status"
	EndpointCatalogCacheStatus  = "/data/projects/{projectId}/catalog/{catalogId}/cache/status"
	EndpointCacheSettings       = "/data/projects/{projectId}/cache/{cacheId}"
	EndpointCacheHistory        = "/data/projects/{projectId}/cache/{cacheId}/executionHistory"
	EndpointExport              = "/data/projects/{projectId}/exports/{exportId}"
	EndpointListExports         = "/data/projects/{projectId}/exports"
	DefaultMaxResponseBytes     = 16 << 20
	defaultMaxConcurrency       = 8
	maxErrorBodyBytes           = 64 << 10
	exportsPageLimit            = 200
	DefaultMaxRecentExportPages = 25
)

// Options configures a Client.
type Options struct {
	BaseURL          *url.URL          // e.g. https://partner.peaka.studio/api/v1
	MaxConcurrency   int               // requests in flight at once across all callers; 0 → 8
	MaxResponseBytes int64             // larger answers fail as bad_response; 0 → DefaultMaxResponseBytes
	Metrics          *Metrics          // request instrumentation; nil → none
	Transport        http.RoundTripper // nil → a keep-alive transport sized for MaxConcurrency
	UserAgent        string
}

// Client calls the Peaka API. It is safe for concurrent use; WithKey gives
// cheap copies that share its connections and concurrency limit.
type Client struct {
	base      string
	http      *http.Client
	transport *http.Transport // nil when the caller supplied the transport
	sem       chan struct{}
	maxBody   int64
	userAgent string
	key       string
}

// New returns a client without a key; use WithKey before calling the API.
func New(o Options) (*Client, error) {
	if o.BaseURL == nil || o.BaseURL.Host == "" {
		return nil, errors.New("peaka: base URL with a host is required")
	}
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = defaultMaxConcurrency
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	c := &Client{
		base:      strings.TrimSuffix(o.BaseURL.String(), "/"),
		sem:       make(chan struct{}, o.MaxConcurrency),
		maxBody:   o.MaxResponseBytes,
		userAgent: o.UserAgent,
	}
	rt := o.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// The semaphore bounds connections in use; keeping that many idle
		// means a steady scrape loop opens no new connection.
		t.MaxIdleConns = o.MaxConcurrency
		t.MaxIdleConnsPerHost = o.MaxConcurrency
		t.IdleConnTimeout = 5 * time.Minute
		t.ResponseHeaderTimeout = 0 // the scrape's context bounds each call
		c.transport = t
		rt = t
	}
	if o.Metrics != nil {
		rt = o.Metrics.instrument(rt)
	}
	c.http = &http.Client{
		Transport: rt,
		// The key rides in a header; a redirect could carry it to another
		// host, so none is followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// WithKey returns a copy of c that authenticates with key.
func (c *Client) WithKey(key string) *Client {
	cc := *c
	cc.key = key
	return &cc
}

// CloseIdleConnections releases the client's idle connections; used when a
// configuration reload replaces the client.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// String keeps the key out of fmt output.
func (c *Client) String() string { return "peaka.Client(" + c.base + ")" }

// GoString keeps the key out of %#v output.
func (c *Client) GoString() string { return c.String() }

// CacheStatus reads one cache's status.
func (c *Client) CacheStatus(ctx context.Context, projectID, cacheID string, excludeLogs bool) (*CacheStatus, error) {
	var q url.Values
	if excludeLogs {
		q = url.Values{"excludeLogs": {"true"}}
	}
	var out CacheStatus
	err := c.get(ctx, EndpointCacheStatus, target("project", projectID, "cache", cacheID),
		"/data/projects/"+url.PathEscape(projectID)+"/cache/"+url.PathEscape(cacheID)+"/status", q, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ProjectCacheStatuses reads the status of every cache of a project in one
// call (always with action logs: the call has no excludeLogs).
func (c *Client) ProjectCacheStatuses(ctx context.Context, projectID string) ([]CacheStatus, error) {
	var out []CacheStatus
	err := c.get(ctx, EndpointProjectCacheStatus, target("project", projectID),
		"/data/projects/"+url.PathEscape(projectID)+"/cache/status", nil, &out)
	return out, err
}

// CacheSettings reads a cache's settings, including its schedules.
func (c *Client) CacheSettings(ctx context.Context, projectID, cacheID string) (*CacheSettings, error) {
	var out CacheSettings
	err := c.get(ctx, EndpointCacheSettings, target("project", projectID, "cache", cacheID),
		"/data/projects/"+url.PathEscape(projectID)+"/cache/"+url.PathEscape(cacheID), nil, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ExecutionHistory reads one page of a cache's executions, newest first.
func (c *Client) ExecutionHistory(ctx context.Context, projectID, cacheID string, limit, offset int) ([]Execution, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
	var out []Execution
	err := c.get(ctx, EndpointCacheHistory, target("project", projectID, "cache", cacheID),
		"/data/projects/"+url.PathEscape(projectID)+"/cache/"+url.PathEscape(cacheID)+"/executionHistory", q, &out)
	return out, err
}

// Export reads one export job.
func (c *Client) Export(ctx context.Context, projectID, exportID string) (*Export, error) {
	var out Export
	err := c.get(ctx, EndpointExport, target("project", projectID, "export", exportID),
		"/data/projects/"+url.PathEscape(projectID)+"/exports/"+url.PathEscape(exportID), nil, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListExportsQuery selects one page of export jobs.
type ListExportsQuery struct {
	Status        []string  // empty: every status
	Limit         int       // 0: the API's default; the API clamps to 1..200
	CreatedBefore time.Time // zero: the first page
}

// ListExports reads one page of a project's export jobs, newest first.
func (c *Client) ListExports(ctx context.Context, projectID string, lq ListExportsQuery) ([]Export, error) {
	q := url.Values{}
	if len(lq.Status) > 0 {
		q.Set("status", strings.Join(lq.Status, ","))
	}
	if lq.Limit > 0 {
		q.Set("limit", strconv.Itoa(lq.Limit))
	}
	if !lq.CreatedBefore.IsZero() {
		q.Set("createdBefore", lq.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	var out []Export
	err := c.get(ctx, EndpointListExports, target("project", projectID),
		"/data/projects/"+url.PathEscape(projectID)+"/exports", q, &out)
	return out, err
}

// RecentExports pages through a project's export jobs created at or after
// since, at most maxPages pages (0: DefaultMaxRecentExportPages). truncated
// reports that the window held more than could be read.
//
// The API's cursor is strictly "created before"; asking with the last
// createdAt itself would skip jobs that share that timestamp across a page
// boundary, so each page overlaps the previous one by a microsecond and
// duplicates are dropped by ID.
func (c *Client) RecentExports(ctx context.Context, projectID string, since time.Time, maxPages int) (exports []Export, truncated bool, err error) {
	if maxPages <= 0 {
		maxPages = DefaultMaxRecentExportPages
	}
	seen := map[string]bool{}
	var cursor time.Time
	for page := 0; ; page++ {
		if page == maxPages {
			return exports, true, nil
		}
		items, err := c.ListExports(ctx, projectID, ListExportsQuery{Limit: exportsPageLimit, CreatedBefore: cursor})
		if err != nil {
			return exports, false, err
		}
		fresh := 0
		for _, e := range items {
			if e.ID == "" || seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			fresh++
			if !e.CreatedAt.IsZero() && !e.CreatedAt.Before(since) {
				exports = append(exports, e)
			}
		}
		if len(items) < exportsPageLimit {
			return exports, false, nil
		}
		last := items[len(items)-1].CreatedAt
		switch {
		case last.IsZero():
			// No cursor to go on with: say so rather than loop.
			return exports, true, nil
		case last.Before(since):
			return exports, false, nil
		case fresh == 0:
			// A whole page shares one timestamp: the cursor cannot move.
			return exports, true, nil
		}
		cursor = last.Add(time.Microsecond)
	}
}

func target(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[i])
		b.WriteByte(' ')
		b.WriteString(kv[i+1])
	}
	return b.String()
}

type endpointKey struct{}

// get performs one GET and decodes a 2xx JSON answer into out.
func (c *Client) get(ctx context.Context, endpoint, tgt, path string, q url.Values, out any) error {
	fail := func(code int, reason Reason, msg string, err error) error {
		return &Error{Endpoint: endpoint, Target: tgt, StatusCode: code, Reason: reason, Message: msg, Err: err}
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return fail(0, classifyTransport(ctx.Err()), "waiting for a free request slot: "+describeTransport(ctx.Err()), ctx.Err())
	}
	defer func() { <-c.sem }()

	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, endpointKey{}, endpoint), http.MethodGet, u, nil)
	if err != nil {
		return fail(0, ReasonBadResponse, "building request: "+err.Error(), err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fail(0, classifyTransport(err), describeTransport(err), err)
	}
	defer func() {
		// Drain a little so that the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
		resp.Body.Close()
	}()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
		msg := http.StatusText(resp.StatusCode)
		if m := errorMessage(body, resp.Header.Get("Content-Type")); m != "" {
			msg += ": " + m
		}
		e := fail(resp.StatusCode, reasonForStatus(resp.StatusCode), msg, nil).(*Error)
		e.RetryAfter = resp.Header.Get("Retry-After")
		return e
	}

	lr := &limitedReader{r: resp.Body, n: c.maxBody}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		switch {
		case lr.exceeded:
			return fail(resp.StatusCode, ReasonBadResponse, fmt.Sprintf("answer larger than %d bytes", c.maxBody), err)
		case ctx.Err() != nil:
			return fail(resp.StatusCode, classifyTransport(ctx.Err()), "reading answer: "+describeTransport(ctx.Err()), ctx.Err())
		case isDecodeError(err):
			return fail(resp.StatusCode, ReasonBadResponse, "decoding answer: "+err.Error(), err)
		default:
			return fail(resp.StatusCode, classifyTransport(err), "reading answer: "+describeTransport(err), err)
		}
	}
	return nil
}

// isDecodeError tells a malformed answer from a connection that broke while
// the answer was read.
func isDecodeError(err error) bool {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		tim *timeError
	)
	return errors.As(err, &syn) || errors.As(err, &typ) || errors.As(err, &tim) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// limitedReader fails once more than n bytes have been read, so a huge
// answer is cut off instead of filling memory.
type limitedReader struct {
	r        io.Reader
	n        int64
	exceeded bool
}

var errTooLarge = errors.New("answer too large")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.exceeded = true
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
