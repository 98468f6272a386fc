package peaka_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/peakacom/peaka_exporter/peaka"
)

// The client tells an answer cut by the connection (network: the status
// line promised more than arrived) from an answer that arrived whole but is
// not valid JSON of the right shape (bad_response).
func TestCutAnswersAreClassified(t *testing.T) {
	full := `{"id":"c","status":"COMPLETED","tableName":"` + strings.Repeat("t", 100) + `"}`
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		reason  peaka.Reason
		ok      bool
	}{
		{"whole", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(full))
		}, "", true},
		{"whole with trailing white space", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(full + " \n\t"))
		}, "", true},
		{"well-formed message, cut JSON", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(full[:len(full)/2]))
		}, peaka.ReasonBadResponse, false},
		{"connection closed before the announced length", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(full)))
			_, _ = w.Write([]byte(full[:len(full)/2]))
		}, peaka.ReasonNetwork, false},
		{"whole JSON, connection closed before the announced length", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(full)+10))
			_, _ = w.Write([]byte(full))
		}, peaka.ReasonNetwork, false},
		{"chunked answer cut", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(full[:len(full)/2]))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drops the connection without the final chunk
		}, peaka.ReasonNetwork, false},
		{"second value after the first", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(full + full))
		}, peaka.ReasonBadResponse, false},
		{"garbage after the value", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(full + "<html>"))
		}, peaka.ReasonBadResponse, false},
		{"empty 200", func(http.ResponseWriter, *http.Request) {}, peaka.ReasonBadResponse, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			c := newClient(t, srv.URL, func(o *peaka.Options) { o.Retry = peaka.RetryPolicy{MaxAttempts: 1} })
			s, err := c.CacheStatus(context.Background(), "p", "c", false)
			if tc.ok {
				if err != nil || s.ID != "c" {
					t.Fatalf("%v %+v", err, s)
				}
				return
			}
			if got := peaka.ReasonOf(err); got != tc.reason {
				t.Errorf("reason %s, want %s (%v)", got, tc.reason, err)
			}
		})
	}
}

func TestAnswerOfExactlyTheLimitIsRead(t *testing.T) {
	const limit = 2000
	body := func(n int) string {
		prefix, suffix := `{"id":"c","tableName":"`, `"}`
		return prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix
	}
	type tc struct {
		n       int
		chunked bool // no Content-Length: the limit is found while reading
	}
	for c, ok := range map[tc]bool{
		{limit - 1, false}: true, {limit, false}: true, {limit + 1, false}: false,
		{limit - 1, true}: true, {limit, true}: true, {limit + 1, true}: false,
	} {
		n := c.n
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if c.chunked {
				w.(http.Flusher).Flush()
			} else {
				w.Header().Set("Content-Length", strconv.Itoa(n))
			}
			_, _ = w.Write([]byte(body(n)))
		}))
		c := newClient(t, srv.URL, func(o *peaka.Options) { o.MaxResponseBytes = limit })
		_, err := c.CacheStatus(context.Background(), "p", "c", false)
		srv.Close()
		switch {
		case ok && err != nil:
			t.Errorf("%+v with a limit of %d: %v", c, limit, err)
		case !ok && (peaka.ReasonOf(err) != peaka.ReasonBadResponse || !strings.Contains(err.Error(), "larger than 2000 bytes")):
			t.Errorf("%+v with a limit of %d: %v, want bad_response naming the limit", c, limit, err)
		}
	}
}

// Found by FuzzErrorAnswer: a signed URL without its scheme reached the
// error text (and so the log).
func TestErrorTextRedactsSignedURLsWithoutScheme(t *testing.T) {
	for _, msg := range []string{
		`bucket.s3.amazonaws.com/export/f.jsonl?X-Amz-Algorithm=AWS4&X-Amz-Signature=abcdef`,
		`X-Amz-Signature`,
		`see storage.googleapis.com/b/o?X-Goog-Signature=00ff`,
		`/download?token=s3cr3t`,
		`Bearer ` + key,
		`mail owner@example.com`,
		`https://storage.example.invalid/x?sig=1`,
		`the key ` + key + ` is not valid`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":` + strconv.Quote(msg) + `}`))
		}))
		c := newClient(t, srv.URL)
		_, err := c.CacheStatus(context.Background(), "p", "c", false)
		srv.Close()
		text := strings.ToLower(err.Error())
		for _, bad := range []string{"x-amz-", "x-goog-", "s3cr3t", strings.ToLower(key), "owner@example.com", "sig=1"} {
			if strings.Contains(text, bad) {
				t.Errorf("%q: error text %q carries %q", msg, err, bad)
			}
		}
	}
}

// A malformed value that echoes the key or an e-mail address does not
// bring it into the error text through the decoder's message.
func TestDecodeErrorTextIsRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"id":"c","lastIncrementalCacheExecution":{"createdAt":"` + key + ` owner@example.com"}}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	_, err := c.CacheStatus(context.Background(), "p", "c", false)
	if peaka.ReasonOf(err) != peaka.ReasonBadResponse {
		t.Fatalf("%v, want bad_response", err)
	}
	if strings.Contains(err.Error(), key[:12]) || strings.Contains(err.Error(), "owner@example.com") {
		t.Errorf("error text carries the key or the address: %v", err)
	}
}
