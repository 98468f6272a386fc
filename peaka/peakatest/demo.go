package peakatest

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// DemoInfo tells a demo what NewDemo set up.
type DemoInfo struct {
	APIKey   string // a partner key
	Projects []DemoProject
}

// DemoProject is one demo project and what a configuration would watch in
// it: either CacheIDs or AllCaches, some ExportIDs, and the look-back window
// for recent exports.
type DemoProject struct {
	ID                  string
	CacheIDs, ExportIDs []string
	AllCaches           bool
	RecentExports       time.Duration
}

const (
	demoKey      = "peaka-demo-partner-key"
	demoUser     = "d3a0a5e7-0000-4000-8000-00000000d3a0"
	demoUserName = "demo@example.com"
	otherUser    = "a7a1e570-0000-4000-8000-0000000a7a17"
	demoBackfill = 6 * time.Hour
)

// NewDemo builds a lively simulator on the given clock (nil: time.Now): two
// projects with a dozen caches on 1m, 5m and 15m incremental and 1h full
// refresh schedules, one failing every third run, one hung, one never run,
// and exports in every status with a new one every few minutes. Schedules
// are anchored hours in the past, so the first scrape already finds history.
func NewDemo(now func() time.Time) (*Sim, DemoInfo) {
	if now == nil {
		now = time.Now
	}
	s := New(Options{Now: now, Seed: 20260101})
	s.AddPartnerKey(demoKey, demoUser)
	s.AddOrganization("6f1c2d3e-0000-4000-8000-00000000de01", "Demo Organization")
	s.AddWorkspace("6f1c2d3e-0000-4000-8000-00000000de01", "6f1c2d3e-0000-4000-8000-00000000de02", "Default Workspace")
	s.AddWorkspace("6f1c2d3e-0000-4000-8000-00000000de01", "6f1c2d3e-0000-4000-8000-00000000de03", "Analytics")

	s.mu.Lock()
	defer s.mu.Unlock()
	t0 := s.now()
	p1 := s.demoProject("DemoPay1", "Payments", "6f1c2d3e-0000-4000-8000-00000000de02")
	p2 := s.demoProject("DemoMkt2", "Marketing", "6f1c2d3e-0000-4000-8000-00000000de03")

	const stripe, pg, hubspot = "627249916703408649", "367189801096446904", "709922802836177297"
	cachesP1 := []Cache{
		{CatalogID: stripe, SchemaName: "payment", TableName: "charges", IncrementalEvery: time.Minute,
			IncrementalRunFor: 20 * time.Second, RecordsPerRun: 1200},
		{CatalogID: stripe, SchemaName: "payment", TableName: "customers", IncrementalEvery: time.Minute,
			IncrementalRunFor: 15 * time.Second, RecordsPerRun: 300},
		{CatalogID: stripe, SchemaName: "payment", TableName: "invoices", IncrementalEvery: 5 * time.Minute,
			FullRefreshEvery: time.Hour, IncrementalRunFor: 45 * time.Second, RecordsPerRun: 5000},
		{CatalogID: pg, SchemaName: "public", TableName: "orders", IncrementalEvery: 15 * time.Minute,
			FullRefreshEvery: time.Hour, IncrementalRunFor: time.Minute, FullRefreshRunFor: 3 * time.Minute, RecordsPerRun: 20000},
		{CatalogID: pg, SchemaName: "public", TableName: "refunds", IncrementalEvery: 5 * time.Minute,
			RecordsPerRun: 400, FailEvery: 3},
		{CatalogID: pg, SchemaName: "public", TableName: "events", IncrementalEvery: 5 * time.Minute,
			RecordsPerRun: 100000, Hang: true},
		{CatalogID: pg, SchemaName: "archive", TableName: "orders_2019"},
	}
	cachesP2 := []Cache{
		{CatalogID: hubspot, SchemaName: "crm", TableName: "contacts", IncrementalEvery: time.Minute, RecordsPerRun: 800},
		{CatalogID: hubspot, SchemaName: "crm", TableName: "deals", IncrementalEvery: 15 * time.Minute,
			FullRefreshEvery: time.Hour, RecordsPerRun: 2500},
		{CatalogID: hubspot, SchemaName: "marketing", TableName: "email_events", IncrementalEvery: 5 * time.Minute,
			IncrementalRunFor: 2 * time.Minute, RecordsPerRun: 2_000_000},
		{CatalogID: hubspot, SchemaName: "marketing", TableName: "campaigns", FullRefreshEvery: time.Hour, RecordsPerRun: 150},
	}
	info := DemoInfo{APIKey: demoKey}
	var ids1 []string
	// Staggered anchors and phases keep the caches, and a cache's two
	// kinds, from all ticking on the same second.
	for i, c := range cachesP1 {
		cs := s.addCache(p1.ID, c, t0.Add(-demoBackfill-time.Duration(i*7)*time.Second))
		cs.kinds[1].phase = 150 * time.Second
		ids1 = append(ids1, cs.cfg.ID)
	}
	for i, c := range cachesP2 {
		cs := s.addCache(p2.ID, c, t0.Add(-demoBackfill-time.Duration(i*11)*time.Second))
		cs.kinds[1].phase = 390 * time.Second
	}

	fixed := []struct {
		e      Export
		status string
	}{
		{e: Export{QueryID: "709922802836177297", Source: `peaka.query."charges_view"`, Rows: 993, Bytes: 3706920,
			CreatedAt: t0.Add(-2 * time.Hour), RunFor: 1055 * time.Millisecond}},
		{e: Export{CatalogID: stripe, SchemaName: "payment", TableName: "charges", Source: `peaka.payment."charges"`,
			Format: "CSV", Compression: "GZIP", Rows: 250000, Bytes: 48_000_000, Files: 3,
			CreatedAt: t0.Add(-3 * time.Hour), RunFor: 42 * time.Second, UserID: otherUser}},
		{e: Export{QueryID: "709922802836177298", Source: `peaka.query."big_view"`, CreatedAt: t0.Add(-90 * time.Minute),
			RunFor: 8 * time.Second, Fail: "Query exceeded the 1,000,000 row export limit"}},
		{e: Export{CatalogID: pg, SchemaName: "public", TableName: "orders", Source: `peaka.public."orders"`,
			Rows: 51000, Bytes: 9_800_000, CreatedAt: t0.Add(-5 * time.Hour), RunFor: 12 * time.Second, ExpireAfter: 4 * time.Hour}},
		{e: Export{CatalogID: pg, SchemaName: "public", TableName: "events", Source: `peaka.public."events"`,
			Format: "PARQUET", CreatedAt: t0.Add(-3 * time.Minute), RunFor: 12 * time.Hour, Rows: 9_000_000, Bytes: 2_100_000_000}},
		{e: Export{QueryID: "709922802836177299", Source: `peaka.query."stuck_view"`, CreatedAt: t0.Add(-time.Minute)}, status: "PENDING"},
		{e: Export{QueryID: "709922802836177300", Source: `peaka.query."cancelled_view"`, CreatedAt: t0.Add(-40 * time.Minute)}, status: "CANCELLED"},
	}
	var exports1 []string
	for _, f := range fixed {
		e := f.e
		if e.UserID == "" {
			e.UserID = demoUser
		}
		e.UserName, e.APIKeyPrefix, e.ClientSource = userName(e.UserID), "dEm0KeY1", "peaka-studio"
		x := s.addExport(p1.ID, e, t0, false)
		x.override = f.status
		exports1 = append(exports1, x.cfg.ID)
	}
	p1.gen = s.demoExports(p1.ID, 4*time.Minute, t0)
	p2.gen = s.demoExports(p2.ID, 7*time.Minute, t0)
	s.step(t0)

	info.Projects = []DemoProject{
		{ID: p1.ID, CacheIDs: ids1, ExportIDs: []string{exports1[0], exports1[2], exports1[3], exports1[4]}, RecentExports: time.Hour},
		{ID: p2.ID, AllCaches: true, RecentExports: 24 * time.Hour},
	}
	return s, info
}

func (s *Sim) demoProject(id, name, ws string) *project {
	p := s.ensureProject(id)
	p.Name, p.OrganizationID, p.WorkspaceID = name, "6f1c2d3e-0000-4000-8000-00000000de01", ws
	return p
}

func userName(id string) string {
	if id == demoUser {
		return demoUserName
	}
	return "analyst@example.com"
}

// demoExports makes a generator whose exports vary by a source seeded per
// export, so each one is the same whenever it is generated.
func (s *Sim) demoExports(projectID string, every time.Duration, t0 time.Time) *exportGen {
	formats := []string{"JSONL", "CSV", "PARQUET"}
	tables := []string{"charges", "customers", "orders", "contacts", "deals"}
	failures := []string{"Query exceeded the 1,000,000 row export limit", "Source catalog is unreachable",
		"Query timed out after 300 seconds"}
	return &exportGen{
		anchor: t0.Add(-26 * time.Hour),
		every:  every,
		next:   1,
		keep:   7 * 24 * time.Hour,
		make: func(k int64, at time.Time) Export {
			h := fnv.New64a()
			fmt.Fprintf(h, "%s/%d", projectID, k)
			r := rand.New(rand.NewPCG(uint64(s.seed), h.Sum64()))
			rows := 100 + r.Int64N(200_000)
			user := demoUser
			if r.IntN(3) == 0 {
				user = otherUser
			}
			e := Export{
				Format:       formats[r.IntN(len(formats))],
				Compression:  []string{"NONE", "GZIP"}[r.IntN(2)],
				Rows:         rows,
				Bytes:        rows * (200 + r.Int64N(1800)),
				Files:        1 + r.IntN(3),
				RunFor:       time.Duration(2+r.IntN(40)) * time.Second,
				UserID:       user,
				UserName:     userName(user),
				APIKeyPrefix: "dEm0KeY1",
				ClientSource: []string{"peaka-studio", "peaka-api"}[r.IntN(2)],
				// Fractional seconds, as the live createdAt values have, so
				// that a client's keyset cursor must keep them.
				CreatedAt: at.Add(time.Duration(r.IntN(1_000_000)) * time.Microsecond),
			}
			if r.IntN(2) == 0 {
				e.QueryID = fmt.Sprint(709922802836177000 + r.Int64N(1000))
				e.Source = fmt.Sprintf("peaka.query.%q", tables[r.IntN(len(tables))]+"_view")
			} else {
				t := tables[r.IntN(len(tables))]
				e.CatalogID, e.SchemaName, e.TableName = "627249916703408649", "payment", t
				e.Source = fmt.Sprintf("peaka.payment.%q", t)
			}
			if r.IntN(9) == 0 {
				e.Fail = failures[r.IntN(len(failures))]
			}
			return e
		},
	}
}
