package peaka_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/peakacom/peaka_exporter/peaka"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// slack is what a loaded CI machine may add to a bound that a call must
// keep; only upper bounds use it.
const slack = 2 * time.Second

// retriesOf reads peaka_exporter_api_retries_total for one endpoint and
// reason.
// answersOf returns how many answers with the given status code the
// metrics gathered from reg have counted.
func answersOf(t *testing.T, reg *prometheus.Registry, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "peaka_exporter_api_requests_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func retriesOf(t *testing.T, m *peaka.Metrics, endpoint string, reason peaka.Reason) int {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "peaka_exporter_api_retries_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["reason"] == string(reason) {
				return int(s.GetCounter().GetValue())
			}
		}
	}
	return 0
}

// A failure that stays a failure keeps its reason after the retries, and
// only the retryable ones are retried.
func TestRetriesKeepTheReason(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    peakatest.Fault
		reason   peaka.Reason
		attempts int
	}{
		{"429", peakatest.Fault{Status: 429}, peaka.ReasonRateLimited, 3},
		{"429 with a short Retry-After", peakatest.Fault{Status: 429, RetryAfter: "0"}, peaka.ReasonRateLimited, 3},
		{"429 with a Retry-After past the policy", peakatest.Fault{Status: 429, RetryAfter: "3600"}, peaka.ReasonRateLimited, 1},
		{"500 HTML", peakatest.Fault{Status: 500, HTML: true}, peaka.ReasonServerError, 3},
		{"501", peakatest.Fault{Status: 501}, peaka.ReasonServerError, 1},
		{"502", peakatest.Fault{Status: 502}, peaka.ReasonServerError, 3},
		{"503", peakatest.Fault{Status: 503}, peaka.ReasonServerError, 3},
		{"503 with an HTTP date in the past", peakatest.Fault{Status: 503, RetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"}, peaka.ReasonServerError, 3},
		{"reset mid-body", peakatest.Fault{ResetMidBody: true}, peaka.ReasonNetwork, 3},
		{"400", peakatest.Fault{Status: 400}, peaka.ReasonBadResponse, 1},
		{"401", peakatest.Fault{Status: 401}, peaka.ReasonUnauthorized, 1},
		{"403", peakatest.Fault{Status: 403}, peaka.ReasonForbidden, 1},
		{"404", peakatest.Fault{Status: 404}, peaka.ReasonNotFound, 1},
		{"cut JSON", peakatest.Fault{Malformed: true}, peaka.ReasonBadResponse, 1},
		{"wrong shape", peakatest.Fault{WrongShape: true}, peaka.ReasonBadResponse, 1},
		{"beyond int64", peakatest.Fault{HugeNumbers: true}, peaka.ReasonBadResponse, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := peaka.NewMetrics()
			sim, c := setup(t, func(o *peaka.Options) { o.Metrics = m })
			sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
			sim.RunExecution("p", "c", peakatest.FullRefresh, "COMPLETED", peakatest.Records{Cached: 5, Inserted: 5})
			sim.SetFault("c", tc.fault)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.CacheStatus(ctx, "p", "c", false)
			if got := peaka.ReasonOf(err); got != tc.reason {
				t.Errorf("reason %s, want %s (%v)", got, tc.reason, err)
			}
			if n := sim.Requests(peakatest.RouteCacheStatus); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
			if n := retriesOf(t, m, peaka.EndpointCacheStatus, tc.reason); n != tc.attempts-1 {
				t.Errorf("retries_total{reason=%q} = %d, want %d", tc.reason, n, tc.attempts-1)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

// flaky answers with the given statuses in turn, then 200 with a cache.
func flaky(t *testing.T, statuses []int, header http.Header) (*httptest.Server, *atomic.Int32, chan time.Time) {
	t.Helper()
	var n atomic.Int32
	seen := make(chan time.Time, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		select {
		case seen <- time.Now():
		default:
		}
		if i < len(statuses) {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(statuses[i])
			_, _ = w.Write([]byte(`{"message":"try later"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"c","status":"COMPLETED"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n, seen
}

func newClient(t *testing.T, base string, mod ...func(*peaka.Options)) *peaka.Client {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	o := peaka.Options{BaseURL: u, Retry: fastRetry}
	for _, f := range mod {
		f(&o)
	}
	c, err := peaka.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c.WithKey(key)
}

func TestRetryRecovers(t *testing.T) {
	m := peaka.NewMetrics()
	srv, n, _ := flaky(t, []int{503, 429}, nil)
	c := newClient(t, srv.URL, func(o *peaka.Options) { o.Metrics = m })
	s, err := c.CacheStatus(context.Background(), "p", "c", false)
	if err != nil || s.ID != "c" {
		t.Fatalf("%v %+v", err, s)
	}
	if n.Load() != 3 {
		t.Errorf("%d attempts, want 3", n.Load())
	}
	if a, b := retriesOf(t, m, peaka.EndpointCacheStatus, peaka.ReasonServerError), retriesOf(t, m, peaka.EndpointCacheStatus, peaka.ReasonRateLimited); a != 1 || b != 1 {
		t.Errorf("retries: server_error %d rate_limited %d, want 1 and 1", a, b)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// Retry-After is waited for, in both of its forms.
func TestRetryAfterIsHonoured(t *testing.T) {
	for name, value := range map[string]string{
		"seconds": "1",
		// An HTTP date has whole seconds: two seconds ahead is at least one.
		"date": time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat),
	} {
		t.Run(name, func(t *testing.T) {
			srv, n, seen := flaky(t, []int{429}, http.Header{"Retry-After": {value}})
			c := newClient(t, srv.URL, func(o *peaka.Options) { o.Retry.MaxRetryAfter = time.Minute })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := c.CacheStatus(ctx, "p", "c", false); err != nil {
				t.Fatal(err)
			}
			first, second := <-seen, <-seen
			// Timers never fire early, so this lower bound is safe. The
			// date form loses up to a second to rounding: no bound.
			if gap := second.Sub(first); name == "seconds" && gap < time.Second {
				t.Errorf("retried %v after a Retry-After of 1s", gap)
			}
			if n.Load() != 2 {
				t.Errorf("%d attempts, want 2", n.Load())
			}
		})
	}
}

// A retry that cannot finish before the deadline is not started: the call
// returns the last error at once instead of running into a timeout.
func TestRetryIsNotStartedPastTheDeadline(t *testing.T) {
	for name, tc := range map[string]struct {
		header http.Header
		policy peaka.RetryPolicy
	}{
		"Retry-After beyond the deadline": {http.Header{"Retry-After": {"30"}}, peaka.RetryPolicy{MaxRetryAfter: time.Minute}},
		"backoff beyond the deadline":     {nil, peaka.RetryPolicy{BaseDelay: 20 * time.Second, MaxDelay: 20 * time.Second}},
	} {
		t.Run(name, func(t *testing.T) {
			srv, n, _ := flaky(t, []int{429, 429, 429}, tc.header)
			c := newClient(t, srv.URL, func(o *peaka.Options) { o.Retry = tc.policy })
			const deadline = 3 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			_, err := c.CacheStatus(ctx, "p", "c", false)
			if peaka.ReasonOf(err) != peaka.ReasonRateLimited {
				t.Errorf("%v, want rate_limited", err)
			}
			if d := time.Since(start); d > deadline+slack {
				t.Errorf("took %v with a deadline of %v", d, deadline)
			}
			if ctx.Err() != nil {
				t.Errorf("the call ran into its deadline instead of returning the 429")
			}
			if n.Load() != 1 {
				t.Errorf("%d attempts, want 1", n.Load())
			}
		})
	}
}

// A call that waits to retry holds no request slot: with one slot, another
// call goes through while the first waits.
func TestRetryWaitHoldsNoSlot(t *testing.T) {
	var aAttempts atomic.Int32
	aSeen := make(chan struct{}, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("/data/projects/p/cache/a/status", func(w http.ResponseWriter, _ *http.Request) {
		aAttempts.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		aSeen <- struct{}{}
	})
	mux.HandleFunc("/data/projects/p/cache/b/status", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"id":"b"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, func(o *peaka.Options) {
		o.MaxConcurrency = 1
		o.Retry = peaka.RetryPolicy{MaxRetryAfter: time.Minute}
	})

	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	errA := make(chan error, 1)
	go func() {
		_, err := c.CacheStatus(ctxA, "p", "a", false)
		errA <- err
	}()
	<-aSeen // a got its 429 and is about to wait 30s

	ctxB, cancelB := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelB()
	if _, err := c.CacheStatus(ctxB, "p", "b", false); err != nil {
		t.Errorf("second call while the first waits to retry: %v", err)
	}
	cancelA()
	select {
	case err := <-errA:
		if peaka.ReasonOf(err) != peaka.ReasonRateLimited {
			t.Errorf("cancelled while waiting: %v, want the last error (rate_limited)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the context did not end the wait")
	}
	if aAttempts.Load() != 1 {
		t.Errorf("a: %d attempts, want 1", aAttempts.Load())
	}
}

// Errors that trying again does not heal are returned at once.
func TestPermanentNetworkErrorsAreNotRetried(t *testing.T) {
	m := peaka.NewMetrics()
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are the point
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	for name, tc := range map[string]struct{ base, says string }{
		"DNS":                          {"http://peaka-api.invalid/api/v1", "no such host"},
		"untrusted TLS":                {tlsSrv.URL, "certificate"},
		"HTTPS to a plain HTTP server": {strings.Replace(plain.URL, "http:", "https:", 1), "server gave HTTP response to HTTPS client"},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, tc.base, func(o *peaka.Options) { o.Metrics = m })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.Export(ctx, "p", "x")
			if peaka.ReasonOf(err) != peaka.ReasonNetwork {
				t.Errorf("%v, want network", err)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%q does not say %q", err, tc.says)
			}
		})
	}
	if n := retriesOf(t, m, peaka.EndpointExport, peaka.ReasonNetwork); n != 0 {
		t.Errorf("%d retries of permanent errors", n)
	}
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	m := peaka.NewMetrics()
	c := newClient(t, "http://"+addr, func(o *peaka.Options) { o.Metrics = m })
	_, err = c.Export(context.Background(), "p", "x")
	if peaka.ReasonOf(err) != peaka.ReasonNetwork {
		t.Errorf("%v, want network", err)
	}
	if n := retriesOf(t, m, peaka.EndpointExport, peaka.ReasonNetwork); n != 2 {
		t.Errorf("%d retries, want 2", n)
	}
	if err != nil && strings.Contains(err.Error(), key) {
		t.Errorf("error leaks the key: %v", err)
	}
}

// Retries share the caller's deadline: a scrape of slow failures still ends
// in time, with the reason of the failure rather than "timeout" when a
// retry was cut short.
func TestRetriesEndWithinTheDeadline(t *testing.T) {
	sim, c := setup(t, func(o *peaka.Options) { o.Retry = peaka.RetryPolicy{} })
	sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	sim.SetFault("c", peakatest.Fault{Status: 503, Delay: 400 * time.Millisecond})
	const deadline = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := c.CacheStatus(ctx, "p", "c", false)
	if d := time.Since(start); d > deadline+slack {
		t.Errorf("took %v with a deadline of %v", d, deadline)
	}
	if peaka.ReasonOf(err) != peaka.ReasonServerError {
		t.Errorf("%v, want server_error", err)
	}
}

// Concurrent callers retrying at once stay within the concurrency limit.
func TestRetriesRespectTheConcurrencyLimit(t *testing.T) {
	var inFlight, peak atomic.Int32
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		mu.Lock()
		if n > peak.Load() {
			peak.Store(n)
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // a little work, so that calls overlap
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, func(o *peaka.Options) { o.MaxConcurrency = 2 })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := c.Export(context.Background(), "p", "x")
			if peaka.ReasonOf(err) != peaka.ReasonServerError {
				t.Errorf("%v", err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 2 {
		t.Errorf("%d requests in flight, limit 2", p)
	}
}

func TestErrorOfACancelledWaitIsTheLastOne(t *testing.T) {
	srv, _, _ := flaky(t, []int{503, 503, 503}, http.Header{"Retry-After": {"20"}})
	m := peaka.NewMetrics()
	c := newClient(t, srv.URL, func(o *peaka.Options) {
		o.Retry = peaka.RetryPolicy{MaxRetryAfter: time.Minute}
		o.Metrics = m
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Export(ctx, "p", "x")
		errc <- err
	}()
	// Once the first answer is in (counted by the instrumentation when its
	// headers arrive), the client waits 20s for the retry.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	for deadline := time.Now().Add(10 * time.Second); answersOf(t, reg, "503") == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no answer within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	err := <-errc
	var e *peaka.Error
	if !errors.As(err, &e) || e.StatusCode != 503 || e.Reason != peaka.ReasonServerError {
		t.Errorf("%v, want the 503", err)
	}
	// The wait was cut short: no retry happened, and none is counted.
	if n := retriesOf(t, m, peaka.EndpointExport, peaka.ReasonServerError); n != 0 {
		t.Errorf("%v retries counted for a wait that was cancelled", n)
	}
}

// An answer cut by the connection is retried, and the retry's answer is
// read on its own: nothing of what the cut answer had delivered stays.
func TestRetryAfterCutAnswerStartsAfresh(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cut, full string
		call      func(c *peaka.Client) (any, error)
		want      func([]byte) (any, error)
	}{
		{"cache status",
			`{"id":"c","status":"FAILED","lastIncrementalCacheExecution":{"id":"e1","status":"FAILED","error":{"m":"boom"},"finishedAt":"2026-01-01T00:00:00Z"},"cacheActionLogs":[{"act`,
			`{"id":"c","status":"RUNNING","cacheActionLogs":[]}`,
			func(c *peaka.Client) (any, error) { return c.CacheStatus(context.Background(), "p", "c", false) },
			func(b []byte) (any, error) { var v peaka.CacheStatus; err := json.Unmarshal(b, &v); return &v, err }},
		{"export",
			`{"id":"x","status":"FAILED","error":"boom","rowCount":5,"files":[{"bytes":1}],"downloadable":true,"sour`,
			`{"id":"x","status":"RUNNING"}`,
			func(c *peaka.Client) (any, error) { return c.Export(context.Background(), "p", "x") },
			func(b []byte) (any, error) { var v peaka.Export; err := json.Unmarshal(b, &v); return &v, err }},
		{"cache settings",
			`{"id":"c","incrementalCacheSchedule":{"type":"BASIC","expression":"PT15M"},"fullRefreshCache`,
			`{"id":"c"}`,
			func(c *peaka.Client) (any, error) { return c.CacheSettings(context.Background(), "p", "c") },
			func(b []byte) (any, error) { var v peaka.CacheSettings; err := json.Unmarshal(b, &v); return &v, err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if n.Add(1) == 1 {
					// Promises more than it sends, then drops the connection.
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.cut)+100))
					_, _ = w.Write([]byte(tc.cut))
					return
				}
				_, _ = w.Write([]byte(tc.full))
			}))
			defer srv.Close()
			got, err := tc.call(newClient(t, srv.URL))
			if err != nil {
				t.Fatalf("after a retry: %v", err)
			}
			if n.Load() != 2 {
				t.Fatalf("%d attempts, want 2", n.Load())
			}
			want, err := tc.want([]byte(tc.full))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded %+v\nwant the second answer alone: %+v", got, want)
			}
		})
	}
}
