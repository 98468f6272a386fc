package peakatest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Export configures a simulated export job. Its status follows from the
// clock: PENDING for a second after CreatedAt, RUNNING for RunFor, then
// SUCCEEDED (or FAILED when Fail is set), and SUCCEEDED turns EXPIRED
// ExpireAfter later, when the live service's lifecycle rule removes the files.
type Export struct {
	ID, Format, Compression                      string // defaults: a generated id, JSONL, NONE
	QueryID, CatalogID, SchemaName, TableName    string
	Source                                       string
	UserID, UserName, APIKeyPrefix, ClientSource string // UserName is an e-mail address
	Rows, Bytes                                  int64
	Files                                        int           // files of a SUCCEEDED export (default 1)
	CreatedAt                                    time.Time     // zero: now; a future time hides the export until then
	RunFor                                       time.Duration // default 5s
	Fail                                         string        // non-empty: ends FAILED with this error message
	ExpireAfter                                  time.Duration // default 24h
}

const (
	pendingFor         = time.Second
	defaultExportRun   = 5 * time.Second
	defaultExpireAfter = 24 * time.Hour
	presignedFor       = time.Hour
)

type exportState struct {
	cfg       Export
	project   string
	override  string
	generated bool
}

// AddExport adds an export job to a project, creating the project if need be.
func (s *Sim) AddExport(projectID string, e Export) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.step(now)
	s.addExport(projectID, e, now, false)
}

func (s *Sim) addExport(projectID string, e Export, now time.Time, generated bool) *exportState {
	p := s.ensureProject(projectID)
	if e.ID == "" {
		e.ID = s.newID()
	}
	if _, dup := p.exportByID[e.ID]; dup {
		panic(fmt.Sprintf("peakatest: export %q already exists in project %q", e.ID, projectID))
	}
	if e.Format == "" {
		e.Format = "JSONL"
	}
	if e.Compression == "" {
		e.Compression = "NONE"
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Microsecond)
	if e.RunFor <= 0 {
		e.RunFor = defaultExportRun
	}
	if e.ExpireAfter <= 0 {
		e.ExpireAfter = defaultExpireAfter
	}
	if e.Files <= 0 {
		e.Files = 1
	}
	x := &exportState{cfg: e, project: projectID, generated: generated}
	p.exports = append(p.exports, x)
	p.exportByID[e.ID] = x
	return x
}

// SetExportStatus forces an export's status to any string; "" returns to
// the status its timeline gives.
func (s *Sim) SetExportStatus(projectID, exportID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.mustProject(projectID).exportByID[exportID]
	if !ok {
		panic(fmt.Sprintf("peakatest: unknown export %q in project %q", exportID, projectID))
	}
	x.override = status
}

func (x *exportState) visible(now time.Time) bool { return !x.cfg.CreatedAt.After(now) }

func (x *exportState) ends() time.Time { return x.cfg.CreatedAt.Add(pendingFor + x.cfg.RunFor) }

func (x *exportState) status(now time.Time) string {
	if x.override != "" {
		return x.override
	}
	switch end := x.ends(); {
	case now.Before(x.cfg.CreatedAt.Add(pendingFor)):
		return "PENDING"
	case now.Before(end):
		return "RUNNING"
	case x.cfg.Fail != "":
		return "FAILED"
	case now.Before(end.Add(x.cfg.ExpireAfter)):
		return "SUCCEEDED"
	}
	return "EXPIRED"
}

// wire renders an export for a caller. Counters appear once the job has
// run, as in the vendor's examples; files only in the single-export answer,
// for the owner of a SUCCEEDED job, with freshly signed URLs.
func (s *Sim) exportWire(x *exportState, now time.Time, caller apiKey, withFiles bool) wireExport {
	e := x.cfg
	st := x.status(now)
	owner := caller.userID != "" && caller.userID == e.UserID
	w := wireExport{
		ID: e.ID, Status: st, Format: e.Format, Compression: e.Compression,
		Downloadable: owner && st == "SUCCEEDED",
		CreatedAt:    jsonTime(e.CreatedAt),
		QueryID:      e.QueryID, CatalogID: e.CatalogID, SchemaName: e.SchemaName, TableName: e.TableName,
		Source: e.Source, UserID: e.UserID, UserName: e.UserName,
		APIKeyPrefix: e.APIKeyPrefix, ClientSource: e.ClientSource,
	}
	if st == "SUCCEEDED" || st == "EXPIRED" {
		rows, bytes, ms := e.Rows, e.Bytes, e.RunFor.Milliseconds()
		w.RowCount, w.Bytes, w.DurationMs = &rows, &bytes, &ms
	}
	if st == "FAILED" {
		w.Error = e.Fail
		if w.Error == "" {
			w.Error = "Export failed (simulated)"
		}
	}
	if withFiles && w.Downloadable {
		files := make([]wireExportFile, e.Files)
		for i := range files {
			size := e.Bytes / int64(e.Files)
			if i == len(files)-1 {
				size = e.Bytes - size*int64(e.Files-1)
			}
			name := exportFileName(e, i)
			files[i] = wireExportFile{Name: name, URL: s.presign(x.project, e.ID, name, now), Bytes: size}
		}
		w.Files = &files
		w.ExpiresAt = jsonTime(now.Add(presignedFor))
	}
	return w
}

func exportFileName(e Export, i int) string {
	base := "export_" + e.ID
	switch {
	case e.QueryID != "":
		base = "query_" + e.QueryID
	case e.TableName != "":
		base = e.SchemaName + "_" + e.TableName
	}
	name := fmt.Sprintf("%s_part%04d.%s", base, i, strings.ToLower(e.Format))
	if e.Compression == "GZIP" {
		name += ".gz"
	}
	return name
}

// presign imitates an S3 presigned URL. The signature is fresh on every read,
// as the live service mints new links per call; a client must never log it.
func (s *Sim) presign(projectID, exportID, name string, now time.Time) string {
	var sig strings.Builder
	for range 4 {
		fmt.Fprintf(&sig, "%016x", s.rng.Uint64())
	}
	return fmt.Sprintf("https://storage.example.invalid/export/%s/%s/%s"+
		"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SIMULATED%%2F%s%%2Fus-east-1%%2Fs3%%2Faws4_request"+
		"&X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-SignedHeaders=host&X-Amz-Signature=%s",
		projectID, exportID, name, now.Format("20060102"), now.Format("20060102T150405Z"),
		int(presignedFor.Seconds()), sig.String())
}

// exportGen creates an export every interval, which is how the demo keeps
// its export list moving with a real clock and no goroutine.
type exportGen struct {
	anchor time.Time
	every  time.Duration
	next   int64
	keep   time.Duration
	make   func(k int64, at time.Time) Export
}

func (s *Sim) generateExport(p *project, at, to time.Time) {
	g := p.gen
	k := g.next
	g.next++
	if at.Before(to.Add(-g.keep)) {
		// Would be pruned at once: skip to the first one worth keeping.
		g.next = max(g.next, ceilDiv(to.Add(-g.keep).Sub(g.anchor), g.every))
		return
	}
	e := g.make(k, at)
	if e.CreatedAt.IsZero() {
		e.CreatedAt = at
	}
	s.addExport(p.ID, e, at, true)
}

func (p *project) pruneGenerated(to time.Time) {
	if p.gen == nil {
		return
	}
	cutoff := to.Add(-p.gen.keep)
	p.exports = slices.DeleteFunc(p.exports, func(x *exportState) bool {
		if x.generated && x.cfg.CreatedAt.Before(cutoff) {
			delete(p.exportByID, x.cfg.ID)
			return true
		}
		return false
	})
}
