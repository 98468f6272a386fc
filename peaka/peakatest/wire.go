package peakatest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The wire types below are the simulator's own reading of the vendor's
// OpenAPI description (openapi-monitoring.json); field names are copied from
// there, never from the client package.

// jsonTime writes ISO-8601 UTC with Z and only the fractional digits the time
// has, as the live service does, and null for the zero time.
type jsonTime time.Time

const wireTimeFormat = "2006-01-02T15:04:05.999999Z07:00"

func (t jsonTime) IsZero() bool { return time.Time(t).IsZero() }

func (t jsonTime) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + formatTime(time.Time(t)) + `"`), nil
}

func formatTime(t time.Time) string { return t.UTC().Format(wireTimeFormat) }

type wireCacheStatus struct {
	ID                            string          `json:"id"`
	Status                        string          `json:"status"`
	CatalogID                     string          `json:"catalogId"`
	SchemaName                    string          `json:"schemaName"`
	TableName                     string          `json:"tableName"`
	LastIncrementalCacheExecution *wireExecution  `json:"lastIncrementalCacheExecution"`
	LastFullRefreshCacheExecution *wireExecution  `json:"lastFullRefreshCacheExecution"`
	CacheActionLogs               *[]wireLogEntry `json:"cacheActionLogs,omitempty"` // nil: excludeLogs
	ProjectID                     string          `json:"projectId"`
}

type wireExecution struct {
	ID            string        `json:"id"`
	ExecutionMode string        `json:"executionMode"`
	Status        string        `json:"status"`
	Error         wireExecError `json:"error"`
	Progress      *wireProgress `json:"progress"`
	CreatedAt     jsonTime      `json:"createdAt"`
	UpdatedAt     jsonTime      `json:"updatedAt"`
	FinishedAt    jsonTime      `json:"finishedAt"`
}

// wireExecError is "{}" when there is no error. The vendor types it only as
// "object"; code and message are a guess at a plausible content.
type wireExecError struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

type wireProgress struct {
	NumberOfCachedRecords   int64  `json:"numberOfCachedRecords"`
	NumberOfInsertedRecords int64  `json:"numberOfInsertedRecords"`
	NumberOfUpdatedRecords  int64  `json:"numberOfUpdatedRecords"`
	NumberOfDeletedRecords  int64  `json:"numberOfDeletedRecords"`
	LastOffset              string `json:"lastOffset"`
	LastCacheTxID           string `json:"lastCacheTxId"`
}

type wireLogEntry struct {
	Timestamp   jsonTime `json:"timestamp"`
	Action      string   `json:"action"`
	Message     string   `json:"message"`
	CacheType   string   `json:"cacheType"`
	IsScheduled bool     `json:"isScheduled"`
}

type wireCacheSettings struct {
	ID                       string       `json:"id"`
	CatalogID                string       `json:"catalogId"`
	SchemaName               string       `json:"schemaName"`
	TableName                string       `json:"tableName"`
	IncrementalCacheSchedule wireSchedule `json:"incrementalCacheSchedule"`
	FullRefreshCacheSchedule wireSchedule `json:"fullRefreshCacheSchedule"`
	ProjectID                string       `json:"projectId"`
}

type wireSchedule struct {
	Type       string `json:"type"`
	Expression string `json:"expression,omitempty"`
}

type wireExport struct {
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	Format       string            `json:"format"`
	Compression  string            `json:"compression"`
	RowCount     *int64            `json:"rowCount,omitempty"`
	Bytes        *int64            `json:"bytes,omitempty"`
	DurationMs   *int64            `json:"durationMs,omitempty"`
	Files        *[]wireExportFile `json:"files,omitempty"`
	ExpiresAt    jsonTime          `json:"expiresAt,omitzero"`
	Downloadable bool              `json:"downloadable"`
	Error        string            `json:"error,omitempty"`
	CreatedAt    jsonTime          `json:"createdAt"`
	QueryID      string            `json:"queryId,omitempty"`
	CatalogID    string            `json:"catalogId,omitempty"`
	SchemaName   string            `json:"schemaName,omitempty"`
	TableName    string            `json:"tableName,omitempty"`
	Source       string            `json:"source,omitempty"`
	UserID       string            `json:"userId,omitempty"`
	UserName     string            `json:"userName,omitempty"`
	APIKeyPrefix string            `json:"apiKeyPrefix,omitempty"`
	ClientSource string            `json:"clientSource,omitempty"`
}

type wireExportFile struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Bytes int64  `json:"bytes"`
}

type wireOrganization struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Owner       string   `json:"owner"`
	CreatedAt   jsonTime `json:"createdAt"`
	IconFileID  *string  `json:"iconFileId"`
	Description string   `json:"description"`
}

type wireWorkspace struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	CreatedBy        string   `json:"createdBy"`
	OrganizationID   string   `json:"organizationId"`
	Description      string   `json:"description"`
	CreatedAt        jsonTime `json:"createdAt"`
	DefaultWorkspace bool     `json:"defaultWorkspace"`
}

type wireProject struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Description    *string  `json:"description"`
	Domain         string   `json:"domain"`
	WebhookBaseURL string   `json:"webhookBaseUrl"`
	CreatedAt      jsonTime `json:"createdAt"`
	WorkspaceID    string   `json:"workspaceId"`
}

func (c *cacheState) wireStatus(now time.Time, withLogs bool) wireCacheStatus {
	w := wireCacheStatus{
		ID:                            c.cfg.ID,
		Status:                        c.topStatus(),
		CatalogID:                     c.cfg.CatalogID,
		SchemaName:                    c.cfg.SchemaName,
		TableName:                     c.cfg.TableName,
		LastIncrementalCacheExecution: c.kinds[0].last.wire(),
		LastFullRefreshCacheExecution: c.kinds[1].last.wire(),
		ProjectID:                     c.project,
	}
	if withLogs {
		// Newest first, like the execution history.
		logs := make([]wireLogEntry, 0, len(c.logs))
		for i := len(c.logs) - 1; i >= 0; i-- {
			l := c.logs[i]
			logs = append(logs, wireLogEntry{Timestamp: jsonTime(l.at), Action: l.action,
				Message: l.message, CacheType: l.cacheTyp, IsScheduled: l.scheduled})
		}
		w.CacheActionLogs = &logs
	}
	return w
}

func (e *execution) wire() *wireExecution {
	if e == nil {
		return nil
	}
	w := &wireExecution{
		ID:            e.id,
		ExecutionMode: modeNames[e.kind],
		Status:        e.status,
		CreatedAt:     jsonTime(e.created),
		UpdatedAt:     jsonTime(e.updated),
		FinishedAt:    jsonTime(e.finished),
	}
	if e.errMsg != "" {
		w.Error = wireExecError{Code: "CACHE_EXECUTION_FAILED", Message: e.errMsg}
	}
	if p := e.progress; p != nil {
		w.Progress = &wireProgress{
			NumberOfCachedRecords:   p.Cached,
			NumberOfInsertedRecords: p.Inserted,
			NumberOfUpdatedRecords:  p.Updated,
			NumberOfDeletedRecords:  p.Deleted,
			LastOffset:              fmt.Sprint(p.Cached),
			LastCacheTxID:           e.txID,
		}
	}
	return w
}

func (c *cacheState) wireSettings() wireCacheSettings {
	return wireCacheSettings{
		ID:                       c.cfg.ID,
		CatalogID:                c.cfg.CatalogID,
		SchemaName:               c.cfg.SchemaName,
		TableName:                c.cfg.TableName,
		IncrementalCacheSchedule: c.kinds[0].wireSchedule(),
		FullRefreshCacheSchedule: c.kinds[1].wireSchedule(),
		ProjectID:                c.project,
	}
}

func (ks *kindState) wireSchedule() wireSchedule {
	switch {
	case ks.override != nil:
		return wireSchedule{Type: ks.override.typ, Expression: ks.override.expression}
	case ks.every > 0:
		return wireSchedule{Type: "BASIC", Expression: isoDuration(ks.every)}
	}
	return wireSchedule{Type: "NONE"}
}

// isoDuration writes d the way the vendor documents schedules: "P2D" for
// whole days, otherwise hours, minutes and seconds ("PT1H30M").
func isoDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("P%dD", d/day)
	}
	var b strings.Builder
	b.WriteString("PT")
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	if h > 0 {
		fmt.Fprintf(&b, "%dH", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	if d > 0 || h == 0 && m == 0 {
		b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S")
	}
	return b.String()
}
