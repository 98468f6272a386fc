package peakatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fault makes the answers about one id misbehave the ways a client must
// survive. Fields combine: Delay first, then either an error Status or a 200
// whose body the remaining fields spoil.
type Fault struct {
	Status        int           // answer this HTTP status instead, with a fitting error body
	HTML          bool          // the error body is an HTML page (Content-Type text/html)
	RetryAfter    string        // Retry-After header value, if any
	Delay         time.Duration // wait this long before answering; stops early if the client leaves
	Malformed     bool          // a 200 whose body is cut off, so invalid JSON
	WrongShape    bool          // a 200 whose body is valid JSON of the wrong shape
	HugeBytes     int           // a 200 whose valid JSON body is padded to at least this many bytes
	NeverEnds     bool          // a 200 with headers and part of the body flushed, then nothing until the client leaves
	UnknownStatus string        // replace every status value in the answer with this undocumented one
	MissingFields bool          // optional fields left out and others explicitly null
	BigNumbers    bool          // record counters beyond int32, still valid int64
}

func (f Fault) reworks() bool {
	return f.WrongShape || f.HugeBytes > 0 || f.UnknownStatus != "" || f.MissingFields || f.BigNumbers
}

func faultMessage(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "Invalid or expired API key"
	case http.StatusForbidden:
		return "The API key has no access to this resource"
	case http.StatusNotFound:
		return "Resource not found"
	case http.StatusTooManyRequests:
		return "Too many requests, slow down"
	case http.StatusServiceUnavailable:
		return "Service temporarily unavailable"
	}
	if status >= 500 {
		return "An unexpected error occurred"
	}
	return http.StatusText(status)
}

// writeError rotates among the body shapes seen on the live service, so that
// a client which understands only one of them fails a test. HTML is one of
// the shapes only for server errors, where it was seen.
func (s *Sim) writeError(w http.ResponseWriter, status int, msg string, forceHTML bool) {
	s.mu.Lock()
	turn := s.errTurn
	s.errTurn++
	s.mu.Unlock()
	shapes := 2
	if status >= 500 {
		shapes = 3
	}
	switch shape := turn % shapes; {
	case forceHTML || shape == 2:
		text := fmt.Sprintf("%d %s", status, http.StatusText(status))
		body := "<!DOCTYPE html>\n<html><head><title>" + html.EscapeString(text) + "</title></head>\n" +
			"<body><center><h1>" + html.EscapeString(text) + "</h1></center><hr><center>nginx</center></body></html>\n"
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	case shape == 0:
		writeJSON(w, status, map[string]any{"error": http.StatusText(status), "message": msg, "errorCode": nil})
	default:
		writeJSON(w, status, map[string]any{"errorCode": 100, "message": msg})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body := encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// encode leaves '&' and '<' unescaped, as a Java service writes them, so
// that presigned URLs read as they would on the wire.
func encode(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("peakatest: encoding an answer: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func (s *Sim) writeAnswer(w http.ResponseWriter, r *http.Request, v any, f Fault, now time.Time) {
	body := encode(v)
	if f.reworks() {
		body = rework(body, f, now)
	}
	switch {
	case f.NeverEnds:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
	case f.Malformed:
		writeRaw(w, body[:len(body)/2])
	default:
		writeRaw(w, body)
	}
}

func writeRaw(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// rework applies the body-spoiling faults to a generic copy of the answer.
func rework(body []byte, f Fault, now time.Time) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic("peakatest: decoding own answer: " + err.Error())
	}
	if f.MissingFields {
		eachObject(v, dropOptional)
	}
	if f.BigNumbers {
		eachObject(v, bigCounters)
	}
	if f.UnknownStatus != "" {
		eachObject(v, func(m map[string]any) {
			if _, ok := m["status"].(string); ok {
				m["status"] = f.UnknownStatus
			}
		})
	}
	if f.WrongShape {
		v = wrongShape(v)
	}
	out := encode(v)
	if f.HugeBytes > len(out) {
		out = pad(v, f.HugeBytes, now)
	}
	return out
}

// eachObject calls fn on every JSON object in v, outermost first.
func eachObject(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, c := range x {
			eachObject(c, fn)
		}
	case []any:
		for _, c := range x {
			eachObject(c, fn)
		}
	}
}

// Which fields MissingFields leaves out and which it nulls: the vendor says
// any field may be missing or null, and these are the ones a client is most
// tempted to rely on.
var (
	optionalFields = []string{"catalogId", "schemaName", "tableName", "executionMode", "lastOffset",
		"lastCacheTxId", "expression", "format", "compression", "source", "queryId", "userId", "userName",
		"apiKeyPrefix", "clientSource", "description", "owner", "domain", "webhookBaseUrl"}
	nullableFields = []string{"progress", "error", "createdAt", "updatedAt", "finishedAt", "timestamp",
		"expiresAt", "rowCount", "bytes", "durationMs", "isScheduled", "cacheType", "fullRefreshCacheSchedule",
		"defaultWorkspace", "iconFileId"}
)

func dropOptional(m map[string]any) {
	for k := range m {
		switch {
		case slices.Contains(optionalFields, k):
			delete(m, k)
		case slices.Contains(nullableFields, k):
			m[k] = nil
		}
	}
}

var bigFields = []string{"numberOfCachedRecords", "numberOfInsertedRecords", "numberOfUpdatedRecords", "rowCount", "bytes"}

// bigCounters pushes counters past int32 to catch clients that took the
// spec's int32 at its word. Deletes stay 0, as the live service reports.
func bigCounters(m map[string]any) {
	for _, k := range bigFields {
		if n, ok := m[k].(json.Number); ok {
			i, _ := n.Int64()
			m[k] = json.Number(strconv.FormatInt(3_000_000_000+i, 10))
		}
	}
}

// wrongShape turns an array answer into a Spring-style page object, and an
// object answer's numbers and booleans into strings; an object with neither
// is wrapped into an array so that the shape is always wrong.
func wrongShape(v any) any {
	if a, ok := v.([]any); ok {
		return map[string]any{"content": a, "totalElements": len(a), "last": true}
	}
	changed := false
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			changed = true
			return string(x)
		case bool:
			changed = true
			return strconv.FormatBool(x)
		case map[string]any:
			for k, c := range x {
				x[k] = walk(c)
			}
		case []any:
			for i, c := range x {
				x[i] = walk(c)
			}
		}
		return v
	}
	v = walk(v)
	if !changed {
		return []any{v}
	}
	return v
}

// pad grows a valid answer to at least n bytes with content a real answer
// could carry: action logs where the answer has them, else a long message,
// else (an empty array) whitespace.
func pad(v any, n int, now time.Time) []byte {
	target, _ := v.(map[string]any)
	if a, ok := v.([]any); ok && len(a) > 0 {
		target, _ = a[0].(map[string]any)
	}
	if target != nil {
		if logs, ok := target["cacheActionLogs"].([]any); ok {
			entry := func(i int) map[string]any {
				return map[string]any{
					"timestamp":   formatTime(now.Add(-time.Duration(i) * time.Second)),
					"action":      "CACHE_STARTED",
					"message":     fmt.Sprintf("Incremental cache started (padding entry %d)", i),
					"cacheType":   "INCREMENTAL",
					"isScheduled": true,
				}
			}
			size := len(encode(v))
			per := len(encode(entry(1_000_000))) + 1
			for i := 0; size < n; i++ {
				logs = append(logs, entry(i))
				size += per
			}
			target["cacheActionLogs"] = logs
		} else {
			size := len(encode(v))
			target["message"] = strings.Repeat("simulated oversized answer ", (n-size)/27+1)
		}
	}
	out := encode(v)
	if len(out) < n {
		out = append(out, bytes.Repeat([]byte(" "), n-len(out))...)
	}
	return out
}
