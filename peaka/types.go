package peaka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Documented values of CacheStatus.Status. The API may answer others; callers
// keep any value they get.
var CacheStatuses = []string{"RUNNING", "CANCELLED", "FAILED", "COMPLETED", "DELETED", "NOT_INITIALIZED"}

// Execution statuses, documented in prose only.
var ExecutionStatuses = []string{"RUNNING", "COMPLETED", "FAILED", "CANCELLED"}

// Documented values of Export.Status.
var ExportStatuses = []string{"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}

// CacheStatus is the answer of the cache status calls. Every field may be
// missing or null in a real answer, so pointers and zero values mean "absent".
type CacheStatus struct {
	ID                            string      `json:"id"`
	Status                        string      `json:"status"`
	CatalogID                     string      `json:"catalogId"`
	SchemaName                    string      `json:"schemaName"`
	TableName                     string      `json:"tableName"`
	ProjectID                     string      `json:"projectId"`
	LastIncrementalCacheExecution *Execution  `json:"lastIncrementalCacheExecution"`
	LastFullRefreshCacheExecution *Execution  `json:"lastFullRefreshCacheExecution"`
	CacheActionLogs               []ActionLog `json:"cacheActionLogs"`
}

// Execution is one incremental or full refresh run of a cache.
type Execution struct {
	ID            string          `json:"id"`
	ExecutionMode string          `json:"executionMode"`
	Status        string          `json:"status"`
	Error         json.RawMessage `json:"error"`
	Progress      *Progress       `json:"progress"`
	CreatedAt     Time            `json:"createdAt"`
	UpdatedAt     Time            `json:"updatedAt"`
	FinishedAt    Time            `json:"finishedAt"`
}

// HasError reports whether the execution's error object carries anything.
// The API sends {} (or null) when there is no error.
func (e *Execution) HasError() bool {
	b := bytes.TrimSpace(e.Error)
	switch string(b) {
	case "", "null", "{}", `""`, "[]", "false":
		return false
	}
	// An object with only white space inside is empty too.
	if len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}' && len(bytes.TrimSpace(b[1:len(b)-1])) == 0 {
		return false
	}
	return true
}

// Finished reports whether the execution has ended, whatever its outcome.
// A finishedAt timestamp is taken as proof even with an undocumented status.
func (e *Execution) Finished() bool {
	switch e.Status {
	case "COMPLETED", "FAILED", "CANCELLED":
		return true
	case "RUNNING", "":
		return false
	}
	return !e.FinishedAt.IsZero()
}

// Progress holds an execution's record counters. The spec declares them
// int32; they are read as int64 so that large tables do not fail decoding.
// Its cursor values (lastOffset, lastCacheTxId) are not read: they are
// never exposed, and two of them come with every execution of every cache.
type Progress struct {
	NumberOfCachedRecords   *int64 `json:"numberOfCachedRecords"`
	NumberOfInsertedRecords *int64 `json:"numberOfInsertedRecords"`
	NumberOfUpdatedRecords  *int64 `json:"numberOfUpdatedRecords"`
	NumberOfDeletedRecords  *int64 `json:"numberOfDeletedRecords"`
}

// ActionLog is one entry of a cache's action log. Its free-text message is
// not read: it is never exposed, and a cache list can carry thousands.
type ActionLog struct {
	Timestamp   Time   `json:"timestamp"`
	Action      string `json:"action"`
	CacheType   string `json:"cacheType"`
	IsScheduled *bool  `json:"isScheduled"`
}

// Export is an export job. What the exporter must never expose is not
// decoded at all: the initiator's user id and name (an e-mail address), and
// the files' names and presigned URLs pass through the read buffer only
// (cleared after each answer) and never become values of the exporter.
type Export struct {
	ID           string       `json:"id"`
	Status       string       `json:"status"`
	Format       string       `json:"format"`
	Compression  string       `json:"compression"`
	RowCount     *int64       `json:"rowCount"`
	Bytes        *int64       `json:"bytes"`
	DurationMs   *int64       `json:"durationMs"`
	Files        []ExportFile `json:"files"`
	ExpiresAt    Time         `json:"expiresAt"`
	Downloadable *bool        `json:"downloadable"`
	Error        string       `json:"error"`
	CreatedAt    Time         `json:"createdAt"`
	QueryID      string       `json:"queryId"`
	CatalogID    string       `json:"catalogId"`
	SchemaName   string       `json:"schemaName"`
	TableName    string       `json:"tableName"`
	Source       string       `json:"source"`
	APIKeyPrefix string       `json:"apiKeyPrefix"`
	ClientSource string       `json:"clientSource"`
}

// ExportFile is a downloadable artifact, known by its size only (its name
// and presigned URL are left unread).
type ExportFile struct {
	Bytes *int64 `json:"bytes"`
}

// CacheSettings is the answer of GET …/cache/{cacheId}.
type CacheSettings struct {
	ID                       string    `json:"id"`
	CatalogID                string    `json:"catalogId"`
	SchemaName               string    `json:"schemaName"`
	TableName                string    `json:"tableName"`
	ProjectID                string    `json:"projectId"`
	IncrementalCacheSchedule *Schedule `json:"incrementalCacheSchedule"`
	FullRefreshCacheSchedule *Schedule `json:"fullRefreshCacheSchedule"`
}

// Schedule is a cache refresh schedule: type BASIC with an ISO-8601
// duration expression, or NONE.
type Schedule struct {
	Type       string `json:"type"`
	Expression string `json:"expression"`
}

// Time is an API timestamp. The zero value means the field was missing,
// null or empty.
type Time struct{ time.Time }

// Layouts seen from the API: RFC 3339 with a zone, and (from its Java side)
// local date-times without one, which are UTC.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"}

// UnmarshalJSON accepts null, "" and ISO-8601 timestamps with or without zone.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		// The usual case, a plain string: no need for the JSON decoder.
		s = string(b[1 : n-1])
	} else if err := json.Unmarshal(b, &s); err != nil {
		return &timeError{fmt.Sprintf("timestamp: %v", err)}
	}
	v, err := parseTimestamp(s)
	t.Time = v
	return err
}

// parseTimestamp reads an API timestamp: "" is the zero time.
func parseTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, ok := parseUTCTimestamp(s); ok {
		return t, nil
	}
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			return v.UTC(), nil
		}
	}
	// The value itself is not quoted: a broken answer may put anything
	// there, and the message goes to the log.
	return time.Time{}, &timeError{fmt.Sprintf("a timestamp of %d characters is not ISO-8601", len(s))}
}

// parseUTCTimestamp reads the shape the API answers with, a dozen times
// per cache: "2006-01-02T15:04:05", a fraction of 1 to 9 digits or none,
// then "Z" or nothing, with every field in range. It says !ok for
// anything else, which time.Parse then reads (or refuses): on what it
// accepts it gives what time.Parse gives, at a fraction of the cost.
func parseUTCTimestamp(s string) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	digits := func(s string) (int, bool) {
		n := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	// The month's last day: the zero day of the next month.
	if day > 28 && day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	rest, nsec := s[19:], 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return time.Time{}, false
		}
		nsec, _ = digits(rest[1:n])
		for range 10 - n {
			nsec *= 10
		}
		rest = rest[n:]
	}
	if rest != "" && rest != "Z" {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// timeError marks a timestamp that could not be read as a malformed answer.
type timeError struct{ msg string }

func (e *timeError) Error() string { return e.msg }

// MarshalJSON writes the timestamp back in RFC 3339 (null when absent).
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// Unix returns the timestamp in seconds with sub-second precision.
func (t Time) Seconds() float64 {
	return float64(t.UnixNano()) / 1e9
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
