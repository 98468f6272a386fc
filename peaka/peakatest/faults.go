package peakatest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net"
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
	Message       string        // the error body's message instead of the usual one for Status
	RetryAfter    string        // Retry-After header value, if any
	Delay         time.Duration // wait this long before answering; stops early if the client leaves
	Malformed     bool          // a 200 whose body is cut off, so invalid JSON
	WrongShape    bool          // a 200 whose body is valid JSON of the wrong shape
	HugeBytes     int           // a 200 whose valid JSON body is padded to at least this many bytes
	NoLength      bool          // a HugeBytes answer is streamed without Content-Length (chunked), as some proxies do
	NeverEnds     bool          // a 200 with headers and part of the body flushed, then nothing until the client leaves
	UnknownStatus string        // replace every status value in the answer with this undocumented one
	MissingFields bool          // optional fields left out and others explicitly null
	BigNumbers    bool          // record counters beyond int32, still valid int64
	HugeNumbers   bool          // record counters beyond int64: valid JSON no int64 can hold
	ResetMidBody  bool          // a 200 announcing its full length, cut halfway by a TCP reset
}

func (f Fault) reworks() bool {
	return f.WrongShape || f.HugeBytes > 0 || f.UnknownStatus != "" || f.MissingFields || f.BigNumbers || f.HugeNumbers
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
	var huge *paddedBody
	if f.reworks() {
		body, huge = rework(body, f, now)
	}
	if huge != nil {
		if !f.NeverEnds && !f.Malformed && !f.ResetMidBody {
			// Streamed, so that a 50 MB answer costs no 50 MB here.
			huge.writeTo(w, !f.NoLength)
			return
		}
		body = huge.bytes()
	}
	switch {
	case f.ResetMidBody:
		resetMidBody(w, body)
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

// resetMidBody announces the whole body, sends half of it and resets the
// connection (SO_LINGER 0), as a load balancer that drops a connection does.
func resetMidBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:len(body)/2])
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("peakatest: ResetMidBody needs an HTTP/1 server")
	}
	conn, buf, err := hj.Hijack() // flushes what was written
	if err != nil {
		return
	}
	_ = buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func writeRaw(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// rework applies the body-spoiling faults to a generic copy of the answer.
// A HugeBytes answer comes back as a paddedBody to stream instead.
func rework(body []byte, f Fault, now time.Time) ([]byte, *paddedBody) {
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
	if f.HugeNumbers {
		eachObject(v, hugeCounters)
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
		return nil, pad(v, f.HugeBytes, now)
	}
	return out, nil
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

// hugeCounters pushes counters past int64 (2^63 ≈ 9.2e18): valid JSON
// integers that a client can only refuse or round.
func hugeCounters(m map[string]any) {
	for _, k := range bigFields {
		if n, ok := m[k].(json.Number); ok {
			m[k] = json.Number("9223372036854775808" + strings.TrimPrefix(string(n), "-"))
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

// paddedBody is a valid answer grown to some size: prefix, count filler
// items, suffix. It is written without being held in memory whole.
type paddedBody struct {
	prefix, suffix []byte
	count          int
	item           func(i int) []byte // the i-th filler item, separators included
	size           int
}

func (p *paddedBody) writeTo(w http.ResponseWriter, withLength bool) {
	w.Header().Set("Content-Type", "application/json")
	if withLength {
		w.Header().Set("Content-Length", strconv.Itoa(p.size))
	}
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(p.prefix); err != nil {
		return
	}
	for i := range p.count {
		if _, err := bw.Write(p.item(i)); err != nil {
			return // the client left
		}
	}
	_, _ = bw.Write(p.suffix)
	_ = bw.Flush()
}

func (p *paddedBody) bytes() []byte {
	out := make([]byte, 0, p.size)
	out = append(out, p.prefix...)
	for i := range p.count {
		out = append(out, p.item(i)...)
	}
	return append(out, p.suffix...)
}

// padMark stands where the padding goes while the rest is encoded.
const padMark = "\x00peakatest-padding\x00"

// pad grows a valid answer to at least n bytes with content a real answer
// could carry: action logs where the answer has them, else a long message,
// else (an empty array) whitespace.
func pad(v any, n int, now time.Time) *paddedBody {
	target, _ := v.(map[string]any)
	if a, ok := v.([]any); ok && len(a) > 0 {
		target, _ = a[0].(map[string]any)
	}
	split := func() (prefix, suffix []byte) {
		out := encode(v)
		mark := encode(padMark)
		i := bytes.Index(out, mark)
		if i < 0 {
			panic("peakatest: padding mark lost")
		}
		return out[:i], out[i+len(mark):]
	}
	p := &paddedBody{}
	switch logs, ok := target["cacheActionLogs"].([]any); {
	case target != nil && ok:
		// Entries as encoding/json writes them: keys in sorted order.
		entry := func(i int) []byte {
			b := make([]byte, 0, 200)
			if i > 0 {
				b = append(b, ',')
			}
			return fmt.Appendf(b, `{"action":"CACHE_STARTED","cacheType":"INCREMENTAL","isScheduled":true,`+
				`"message":"Incremental cache started (padding entry %d)","timestamp":%q}`,
				i, formatTime(now.Add(-time.Duration(i)*time.Second)))
		}
		target["cacheActionLogs"] = append(logs, padMark)
		prefix, suffix := split()
		// The mark follows the existing entries' comma, if any; the
		// first padding entry takes its place without one.
		p.prefix, p.suffix, p.item = prefix, suffix, entry
		p.size = len(prefix) + len(suffix)
		// Entries differ only in the digits of their number (their
		// timestamps are whole seconds apart, so equally long): count
		// them by ranges of equal length instead of formatting each.
		if p.size < n {
			p.size += len(entry(0))
			p.count = 1
		}
		for lo, digits := 1, 1; p.size < n; lo, digits = lo*10, digits+1 {
			per := len(entry(1)) + digits - 1
			k := min(lo*10-lo, (n-p.size+per-1)/per)
			p.size += k * per
			p.count += k
		}
	case target != nil:
		const filler = "simulated oversized answer "
		target["message"] = padMark
		prefix, suffix := split()
		p.prefix, p.suffix = append(prefix, '"'), append([]byte{'"'}, suffix...)
		p.item = func(int) []byte { return []byte(filler) }
		p.size = len(p.prefix) + len(p.suffix)
		for p.size < n {
			p.size += len(filler)
			p.count++
		}
	default:
		p.prefix = encode(v)
		p.item = func(int) []byte { return []byte{' '} }
		p.size = len(p.prefix)
		for p.size < n {
			p.size++
			p.count++
		}
	}
	return p
}
