// Package peaka is a client for the read-only monitoring calls of the Peaka
// API: cache status, cache settings and history, and export jobs.
package peaka

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
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
	BaseURL          *url.URL // e.g. https://partner.peaka.studio/api/v1
	MaxConcurrency   int      // requests in flight at once across all callers; 0 → 8
	MaxResponseBytes int64    // larger answers fail as bad_response; 0 → DefaultMaxResponseBytes
	Metrics          *Metrics // request instrumentation; nil → none
	// Transport sends the requests; nil → a keep-alive transport sized for
	// MaxConcurrency. Like net/http's, it must not modify a request: the
	// requests of one key share their header.
	Transport http.RoundTripper
	UserAgent string
	// CACerts holds PEM certificates trusted for the API in addition to the
	// system's roots (config peaka.ca_file). It needs the client's own
	// transport: New fails if Transport is set too.
	CACerts []byte
	// Retry is how failed calls are tried again; the zero value is the
	// default policy (DefaultRetryPolicy).
	Retry RetryPolicy
}

// RetryPolicy says how a failed call is tried again. A call is retried
// after a connection error (not a DNS "no such host" or a TLS verification
// failure, which do not heal by themselves), a 5xx other than 501, or a 429;
// never after another 4xx or a malformed answer. Waits grow exponentially
// with jitter and honour Retry-After, but a retry is only started when its
// wait plus the time the call needs (the longer of MinCallTime and the
// failed attempt's own duration, its wait for a request slot included) fits
// before the context's deadline;
// otherwise the last error is returned. No request slot is held while
// waiting.
type RetryPolicy struct {
	MaxAttempts   int           // calls in all, the first included; 0 → 3; 1 → no retry
	BaseDelay     time.Duration // backoff before the first retry, doubled for each further one; 0 → 200ms
	MaxDelay      time.Duration // cap of the backoff (not of Retry-After); 0 → 5s
	MaxRetryAfter time.Duration // a longer Retry-After is not waited for; 0 → 1m
	MinCallTime   time.Duration // least time a retried call is given; 0 → 100ms
}

// DefaultRetryPolicy is the policy of a zero RetryPolicy.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:   3,
	BaseDelay:     200 * time.Millisecond,
	MaxDelay:      5 * time.Second,
	MaxRetryAfter: time.Minute,
	MinCallTime:   100 * time.Millisecond,
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = d.MaxRetryAfter
	}
	if p.MinCallTime <= 0 {
		p.MinCallTime = d.MinCallTime
	}
	return p
}

// Client calls the Peaka API. It is safe for concurrent use; WithKey gives
// cheap copies that share its connections and concurrency limit.
type Client struct {
	// template is a GET of the base URL, made once by http.NewRequest:
	// each request is a copy with its own URL and context, so that no
	// request parses a URL or builds a header map of its own.
	template *http.Request
	// escapedBase is the base URL's path as sent, prefixed to every route.
	escapedBase string
	// header is sent with every request and shared by them all: neither
	// net/http's transport nor anything else here writes to it.
	header    http.Header
	rt        http.RoundTripper
	sem       chan struct{}
	maxBody   int64
	userAgent string
	retry     RetryPolicy
	metrics   *Metrics
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
	base := *o.BaseURL
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawPath = strings.TrimSuffix(base.RawPath, "/")
	template, err := http.NewRequest(http.MethodGet, base.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("peaka: base URL: %w", err)
	}
	c := &Client{
		template:    template,
		escapedBase: template.URL.EscapedPath(),
		sem:         make(chan struct{}, o.MaxConcurrency),
		maxBody:     o.MaxResponseBytes,
		userAgent:   o.UserAgent,
		retry:       o.Retry.withDefaults(),
		metrics:     o.Metrics,
	}
	if len(o.CACerts) > 0 && o.Transport != nil {
		return nil, errors.New("peaka: CACerts cannot be combined with a caller's Transport")
	}
	rt := o.Transport
	if rt == nil {
		// A clone keeps the default's proxy from the environment
		// (HTTPS_PROXY, NO_PROXY), dial and TLS handshake timeouts, HTTP/2,
		// and certificate verification against the system's roots.
		t := http.DefaultTransport.(*http.Transport).Clone()
		if len(o.CACerts) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(o.CACerts) {
				return nil, errors.New("peaka: CACerts holds no PEM certificate")
			}
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		// The semaphore bounds connections in use; keeping that many idle
		// means a steady scrape loop opens no new connection.
		t.MaxIdleConns = o.MaxConcurrency
		t.MaxIdleConnsPerHost = o.MaxConcurrency
		t.IdleConnTimeout = 5 * time.Minute
		t.ResponseHeaderTimeout = 0 // the scrape's context bounds each call
		rt = t
	}
	// Requests go to the round tripper directly: http.Client would add
	// redirects (the key rides in a header, and a redirect could carry it
	// to another host, so none is followed: a 3xx answer is an error),
	// cookies (none) and a timeout (each call's context has the scrape's
	// deadline), and a copy of the header of every request.
	c.rt = rt
	c.header = c.headerFor("")
	return c, nil
}

// headerFor returns the header of every request made with key.
func (c *Client) headerFor(key string) http.Header {
	h := http.Header{
		"Authorization": {"Bearer " + key},
		"Accept":        {"application/json"},
	}
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
	return h
}

// WithKey returns a copy of c that authenticates with key.
func (c *Client) WithKey(key string) *Client {
	cc := *c
	cc.key = key
	cc.header = c.headerFor(key)
	return &cc
}

// CloseIdleConnections releases the client's idle connections; used when a
// configuration reload replaces the client.
func (c *Client) CloseIdleConnections() {
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// String keeps the key out of fmt output.
func (c *Client) String() string { return "peaka.Client(" + c.template.URL.String() + ")" }

// GoString keeps the key out of %#v output.
func (c *Client) GoString() string { return c.String() }

// CacheStatus reads one cache's status.
func (c *Client) CacheStatus(ctx context.Context, projectID, cacheID string, excludeLogs bool) (*CacheStatus, error) {
	var q url.Values
	if excludeLogs {
		q = url.Values{"excludeLogs": {"true"}}
	}
	return getOne[CacheStatus](ctx, c, EndpointCacheStatus, q, projectID, cacheID)
}

// ProjectCacheStatuses reads the status of every cache of a project in one
// call (always with action logs: the call has no excludeLogs).
func (c *Client) ProjectCacheStatuses(ctx context.Context, projectID string) ([]CacheStatus, error) {
	var out []CacheStatus
	err := c.get(ctx, EndpointProjectCacheStatus, nil, &out, projectID)
	return out, err
}

// CacheSettings reads a cache's settings, including its schedules.
func (c *Client) CacheSettings(ctx context.Context, projectID, cacheID string) (*CacheSettings, error) {
	return getOne[CacheSettings](ctx, c, EndpointCacheSettings, nil, projectID, cacheID)
}

// ExecutionHistory reads one page of a cache's executions, newest first.
func (c *Client) ExecutionHistory(ctx context.Context, projectID, cacheID string, limit, offset int) ([]Execution, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
	var out []Execution
	err := c.get(ctx, EndpointCacheHistory, q, &out, projectID, cacheID)
	return out, err
}

// Export reads one export job.
func (c *Client) Export(ctx context.Context, projectID, exportID string) (*Export, error) {
	return getOne[Export](ctx, c, EndpointExport, nil, projectID, exportID)
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
	err := c.get(ctx, EndpointListExports, q, &out, projectID)
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

// routePath is a route template filled with IDs.
type routePath struct {
	escaped string // as sent: each ID path-escaped, so "a/b" is a%2Fb
	plain   string // the same path with the IDs as they are: url.URL's Path
}

// route fills the {…} segments of a route template with ids, in order,
// after prefix (the base URL's path; escapedPrefix is its escaped form).
// Paths come from the same templates as the metrics' endpoint label, so
// the two cannot drift apart.
func route(prefix, escapedPrefix, template string, ids ...string) routePath {
	var buf [4]string
	escaped := buf[:0]
	same := prefix == escapedPrefix
	for _, id := range ids {
		e := url.PathEscape(id)
		same = same && e == id
		escaped = append(escaped, e)
	}
	r := routePath{escaped: fillRoute(escapedPrefix, template, escaped)}
	r.plain = r.escaped
	if !same {
		r.plain = fillRoute(prefix, template, ids)
	}
	return r
}

// routeTarget names the ids of a route for messages: "project P cache C".
// Only a failed call needs it.
func routeTarget(template string, ids ...string) string {
	var t strings.Builder
	i := 0
	for seg := range strings.SplitSeq(template, "/") {
		if isRouteParam(seg) && i < len(ids) {
			if t.Len() > 0 {
				t.WriteByte(' ')
			}
			t.WriteString(strings.TrimSuffix(seg[1:len(seg)-1], "Id"))
			t.WriteByte(' ')
			t.WriteString(ids[i])
			i++
		}
	}
	return t.String()
}

func isRouteParam(seg string) bool { return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' }

// fillRoute writes prefix and template with its {…} segments replaced by
// vals, in one allocation.
func fillRoute(prefix, template string, vals []string) string {
	n := len(prefix) + len(template)
	for _, v := range vals {
		n += len(v)
	}
	var p strings.Builder
	p.Grow(n)
	p.WriteString(prefix)
	i := 0
	for seg := range strings.SplitSeq(strings.TrimPrefix(template, "/"), "/") {
		p.WriteByte('/')
		if isRouteParam(seg) && i < len(vals) {
			p.WriteString(vals[i])
			i++
			continue
		}
		p.WriteString(seg)
	}
	return p.String()
}

// requestURL is the URL of r under the base URL, with query q.
func (c *Client) requestURL(r routePath, q url.Values) *url.URL {
	u := new(url.URL)
	*u = *c.template.URL
	u.Path, u.RawPath = r.plain, ""
	if r.plain != r.escaped {
		u.RawPath = r.escaped
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u
}

// getOne reads one object.
func getOne[T any](ctx context.Context, c *Client, endpoint string, q url.Values, ids ...string) (*T, error) {
	var out T
	if err := c.get(ctx, endpoint, q, &out, ids...); err != nil {
		return nil, err
	}
	return &out, nil
}

// get performs a GET of endpoint filled with ids, retried by the client's
// policy, and decodes a 2xx JSON answer into out.
func (c *Client) get(ctx context.Context, endpoint string, q url.Values, out any, ids ...string) error {
	u := c.requestURL(route(c.template.URL.Path, c.escapedBase, endpoint, ids...), q)
	var last *Error
	for attempt := 1; ; attempt++ {
		start := time.Now()
		e := c.attempt(ctx, endpoint, ids, u, out)
		if e == nil {
			return nil
		}
		if last != nil && e.Reason == ReasonTimeout && ctx.Err() != nil {
			// The deadline caught the retry: what the API said before
			// says more than "timeout".
			return last
		}
		last = e
		if attempt >= c.retry.MaxAttempts || !retryable(ctx, e) {
			return e
		}
		wait, ok := c.retryWait(attempt, e.RetryAfter)
		if !ok {
			return e
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < wait+max(c.retry.MinCallTime, time.Since(start)) {
			return e
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return e
		}
		c.metrics.retried(endpoint, e.Reason)
	}
}

// retryable reports whether a failed attempt may succeed when tried again.
func retryable(ctx context.Context, e *Error) bool {
	switch e.Reason {
	case ReasonRateLimited:
		return true
	case ReasonServerError:
		return e.StatusCode != http.StatusNotImplemented
	case ReasonTimeout:
		// A timeout of the call's own context ends it; a transport timeout
		// (dial, TLS handshake) with time left may be tried again.
		return ctx.Err() == nil
	case ReasonNetwork:
		return !permanentNetworkError(e.Err)
	}
	return false
}

// retryWait is the wait before retry number n (1 for the first): the
// exponential backoff with equal jitter, or Retry-After if that is longer.
// ok is false when Retry-After asks for more than the policy waits.
func (c *Client) retryWait(n int, retryAfter string) (time.Duration, bool) {
	d := c.retry.BaseDelay
	for i := 1; i < n && d < c.retry.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, c.retry.MaxDelay)
	wait := d/2 + rand.N(d/2+1)
	if ra, ok := parseRetryAfter(retryAfter, time.Now()); ok {
		if ra > c.retry.MaxRetryAfter {
			return 0, false
		}
		wait = max(wait, ra)
	}
	return wait, true
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// A date in the past means no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// attempt performs one GET while holding a request slot.
func (c *Client) attempt(ctx context.Context, endpoint string, ids []string, u *url.URL, out any) *Error {
	fail := func(code int, reason Reason, msg string, err error) *Error {
		if c.key != "" {
			// An answer that echoes the key (in an error body, or in a
			// malformed value a decode error quotes) must not carry it
			// into the log.
			msg = strings.ReplaceAll(msg, c.key, "<key>")
		}
		return &Error{Endpoint: endpoint, Target: routeTarget(endpoint, ids...), StatusCode: code, Reason: reason, Message: msg, Err: err}
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return fail(0, classifyTransport(ctx.Err()), "waiting for a free request slot: "+describeTransport(ctx.Err()), ctx.Err())
	}
	defer func() { <-c.sem }()

	req := c.template.WithContext(ctx)
	req.URL, req.Header = u, c.header
	c.metrics.sent()
	start := time.Now()
	resp, err := c.rt.RoundTrip(req)
	var record tls.RecordHeaderError
	switch {
	case err != nil:
		if resp != nil && resp.Body != nil {
			resp.Body.Close() // a round tripper that broke its contract
		}
		resp = nil
		if errors.As(err, &record) && string(record.RecordHeader[:]) == "HTTP/" {
			// What http.Client says of an https:// URL on a plain
			// HTTP port: clearer than the TLS error beneath.
			err = http.ErrSchemeMismatch
		}
	case resp == nil:
		err = errors.New("the transport returned neither an answer nor an error")
	}
	if resp == nil {
		c.metrics.answered(endpoint, 0, start)
		return fail(0, classifyTransport(err), describeTransport(err), err)
	}
	c.metrics.answered(endpoint, resp.StatusCode, start)
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	var body *bodyReader
	defer func() {
		// Drain a little so that the connection can be reused, unless
		// the answer was read to its end.
		if body == nil || !body.atEOF {
			_, _ = io.CopyN(io.Discard, resp.Body, 4096)
		}
		resp.Body.Close()
	}()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
		msg := http.StatusText(resp.StatusCode)
		if msg == "" {
			msg = "unknown status"
		}
		if c.key != "" {
			// Before errorMessage shortens the text, so that no part of
			// an echoed key survives a cut.
			body = bytes.ReplaceAll(body, []byte(c.key), []byte("<key>"))
		}
		if m := errorMessage(body, resp.Header.Get("Content-Type")); m != "" {
			msg += ": " + m
		}
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			msg += " (redirects are not followed)"
		}
		e := fail(resp.StatusCode, reasonForStatus(resp.StatusCode), msg, nil)
		e.RetryAfter = resp.Header.Get("Retry-After")
		return e
	}

	if resp.ContentLength > c.maxBody {
		// Announced too large: refused without reading it.
		return fail(resp.StatusCode, ReasonBadResponse, fmt.Sprintf("answer of %d bytes larger than %d bytes", resp.ContentLength, c.maxBody), nil)
	}
	body = &bodyReader{r: resp.Body, n: c.maxBody}
	if err := decodeJSON(body, out); err != nil {
		switch {
		case body.exceeded:
			return fail(resp.StatusCode, ReasonBadResponse, fmt.Sprintf("answer larger than %d bytes", c.maxBody), err)
		case ctx.Err() != nil:
			return fail(resp.StatusCode, classifyTransport(ctx.Err()), "reading answer: "+describeTransport(ctx.Err()), ctx.Err())
		case body.err != nil:
			// The connection broke (reset, or closed before the length
			// it announced): a network fault, whatever JSON came before.
			return fail(resp.StatusCode, classifyTransport(body.err), "answer cut off: "+describeTransport(body.err), body.err)
		default:
			// The answer arrived whole and is not what was asked for.
			return fail(resp.StatusCode, ReasonBadResponse, "decoding answer: "+redact(err.Error()), err)
		}
	}
	return nil
}

// streamReader returns out as its streaming reader, or nil for a type left
// to encoding/json.
func streamReader(out any) streamDecodable {
	switch v := out.(type) {
	case *CacheStatus:
		return v
	case *[]CacheStatus:
		return (*cacheStatusList)(v)
	case *Export:
		return v
	case *[]Export:
		return (*exportList)(v)
	case *[]Execution:
		return (*executionList)(v)
	case *CacheSettings:
		return v
	}
	return nil
}

// The lists of answers, with their streaming readers.
type (
	cacheStatusList []CacheStatus
	exportList      []Export
	executionList   []Execution
)

func (l *cacheStatusList) readJSON(d *decoder) { readSlice(d, (*[]CacheStatus)(l)) }
func (l *exportList) readJSON(d *decoder)      { readSlice(d, (*[]Export)(l)) }
func (l *executionList) readJSON(d *decoder)   { readSlice(d, (*[]Execution)(l)) }

// errTrailingData is a 2xx answer with more after its JSON value.
var errTrailingData = errors.New("data after the JSON value")

// decodeJSON decodes exactly one JSON value from r into out; anything but
// white space after it is an error. The answers of every scrape go through
// the streaming reader (stream.go, readers.go), the rare others through
// encoding/json.
func decodeJSON(r io.Reader, out any) error {
	// Every attempt starts from the zero value: the streaming reader fills
	// out as it reads, and a retry must not keep what a cut answer left.
	if v := reflect.ValueOf(out); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().SetZero()
	}
	if v := streamReader(out); v != nil {
		return decodeStream(r, v)
	}
	dec := json.NewDecoder(r)
	if err := dec.Decode(out); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return err
		}
		return errTrailingData
	}
	return nil
}

// bodyReader fails once more than n bytes have been read, so a huge answer
// is cut off instead of filling memory, and remembers the error of the
// connection (anything but a clean io.EOF), so that a broken connection can
// be told from a malformed answer.
type bodyReader struct {
	r        io.Reader
	n        int64
	exceeded bool
	atEOF    bool // the answer was read to its end
	err      error
}

var errTooLarge = errors.New("answer too large")

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		// An answer of exactly the limit is fine: look for its end.
		var one [1]byte
		k, err := b.r.Read(one[:])
		switch {
		case k > 0:
			b.exceeded = true
			return 0, errTooLarge
		case err == io.EOF:
			b.atEOF = true
			return 0, io.EOF
		case err != nil && b.err == nil:
			b.err = err
		}
		return 0, err
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	switch {
	case err == io.EOF:
		b.atEOF = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}
