// Package peakatest is an in-memory imitation of the Peaka partner API, for
// tests, benchmarks and the exporter's demo mode, since the real service is
// out of reach there.
//
// The simulator writes its answers from its own wire types and never from the
// client package's, so that a field the client spells wrongly makes a test
// fail instead of agreeing with itself.
//
// The model is advanced lazily to the clock's time on every request and on
// Advance/SetTime: a real-time clock therefore needs no goroutine, and a
// manual clock with no schedules never changes by itself, which keeps tests
// deterministic.
package peakatest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// retention is how long the live service keeps an execution after it ends.
const retention = 14 * 24 * time.Hour

// simOwner stands in for the user id the vendor reports as creator of
// organizations and workspaces; nothing in the monitoring path reads it.
const simOwner = "5e1f0a2b-0c3d-4e5f-8a9b-0c1d2e3f4a5b"

// Options configures New.
type Options struct {
	// Now is the clock. Nil selects a manual clock that starts at Start and
	// moves only through Advance and SetTime.
	Now func() time.Time
	// Start is where the manual clock starts; zero means 2026-01-01T00:00:00Z.
	Start time.Time
	// Seed drives every pseudo-random choice, so equal seeds and equal calls
	// give byte-identical answers.
	Seed int64
}

// Sim is the simulated API. It implements http.Handler and is safe for
// concurrent use.
type Sim struct {
	mu sync.Mutex

	nowFn func() time.Time
	clock time.Time // the manual clock, when nowFn is nil
	model time.Time // how far the model has been stepped; never moves back

	seed int64
	rng  *rand.Rand // per-request randomness such as URL signatures
	seq  uint64     // source of every generated id

	keys     map[string]apiKey
	orgs     []*organization
	orgByID  map[string]*organization
	projects []*project
	projByID map[string]*project

	faults    map[string]Fault
	requests  map[string]int
	total     int
	errTurn   int // rotates the error body shapes the way the live service varies them
	lastPrune time.Time

	closeOnce sync.Once
	closed    chan struct{}
}

type apiKey struct {
	userID    string
	projectID string // "" for a partner key
}

type organization struct {
	id, name   string
	createdAt  time.Time
	workspaces []*workspace
}

type workspace struct {
	id, name  string
	createdAt time.Time
	isDefault bool
}

// Project is a project as registered with AddProject. OrganizationID and
// WorkspaceID may be empty; the project is then absent from the
// /organizations listings but its data calls still work.
type Project struct {
	ID, Name, OrganizationID, WorkspaceID string
}

type project struct {
	Project
	createdAt  time.Time
	caches     []*cacheState
	cacheByID  map[string]*cacheState
	exports    []*exportState
	exportByID map[string]*exportState
	gen        *exportGen
}

var defaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// New returns an empty simulator: no keys, so every request is answered 401
// until a key is added.
func New(opts Options) *Sim {
	start := opts.Start
	if start.IsZero() {
		start = defaultStart
	}
	s := &Sim{
		nowFn:    opts.Now,
		clock:    start.UTC().Truncate(time.Microsecond),
		seed:     opts.Seed,
		rng:      rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed_9ea4a)),
		keys:     map[string]apiKey{},
		orgByID:  map[string]*organization{},
		projByID: map[string]*project{},
		faults:   map[string]Fault{},
		requests: map[string]int{},
		closed:   make(chan struct{}),
	}
	s.model = s.now()
	s.lastPrune = s.model
	return s
}

// now reads the clock. Times are kept to microseconds because that is all the
// wire format shows, and a keyset cursor must round-trip exactly.
func (s *Sim) now() time.Time {
	if s.nowFn != nil {
		return s.nowFn().UTC().Truncate(time.Microsecond)
	}
	return s.clock
}

// Now returns the simulator's current time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// Advance moves the manual clock forward and steps the model. It panics when
// the simulator was built with Options.Now, whose time it cannot move.
func (s *Sim) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustBeManual("Advance")
	s.clock = s.clock.Add(d).Truncate(time.Microsecond)
	s.step(s.clock)
}

// SetTime sets the manual clock and steps the model. Setting it back is
// allowed, but the model does not un-happen: it keeps what it already
// simulated and carries on once the clock passes that point again.
func (s *Sim) SetTime(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustBeManual("SetTime")
	s.clock = t.UTC().Truncate(time.Microsecond)
	s.step(s.clock)
}

func (s *Sim) mustBeManual(what string) {
	if s.nowFn != nil {
		panic("peakatest: " + what + " needs the manual clock (Options.Now must be nil)")
	}
}

// Close releases handlers held open by Delay and NeverEnds faults, so that
// httptest.Server.Close, which waits for running handlers, can return. The
// simulator keeps answering other requests normally afterwards.
func (s *Sim) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// newID returns the next id. Ids come from a counter so that a run is
// reproducible, and are formatted as UUIDs because the live ids are.
func (s *Sim) newID() string {
	s.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", s.seq)
}

// AddPartnerKey registers a key that reaches every project and the
// /organizations calls.
func (s *Sim) AddPartnerKey(key, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = apiKey{userID: userID}
}

// AddProjectKey registers a key that reaches only projectID.
func (s *Sim) AddProjectKey(key, projectID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if projectID == "" {
		panic("peakatest: AddProjectKey needs a project id")
	}
	s.keys[key] = apiKey{userID: userID, projectID: projectID}
}

// RemoveKey revokes a key: requests with it are answered 401 from then on,
// as after a key rotation.
func (s *Sim) RemoveKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

// AddOrganization registers an organization, or renames an existing one.
func (s *Sim) AddOrganization(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureOrg(id).name = name
}

// AddWorkspace registers a workspace, or renames an existing one. An unknown
// organization is created with its id as name. The first workspace of an
// organization is its default one, as on the live service.
func (s *Sim) AddWorkspace(orgID, id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureWorkspace(orgID, id).name = name
}

func (s *Sim) ensureOrg(id string) *organization {
	if o, ok := s.orgByID[id]; ok {
		return o
	}
	o := &organization{id: id, name: id, createdAt: s.now()}
	s.orgs = append(s.orgs, o)
	s.orgByID[id] = o
	return o
}

func (s *Sim) ensureWorkspace(orgID, id string) *workspace {
	o := s.ensureOrg(orgID)
	for _, w := range o.workspaces {
		if w.id == id {
			return w
		}
	}
	w := &workspace{id: id, name: id, createdAt: s.now(), isDefault: len(o.workspaces) == 0}
	o.workspaces = append(o.workspaces, w)
	return w
}

// AddProject registers a project, or updates the name and placement of an
// existing one while keeping its caches and exports. An organization or
// workspace it names but that was not added is created.
func (s *Sim) AddProject(p Project) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ID == "" {
		panic("peakatest: AddProject needs a project id")
	}
	pr := s.ensureProject(p.ID)
	pr.Project = p
	if pr.Name == "" {
		pr.Name = p.ID
	}
	if p.OrganizationID != "" {
		s.ensureOrg(p.OrganizationID)
		if p.WorkspaceID != "" {
			s.ensureWorkspace(p.OrganizationID, p.WorkspaceID)
		}
	}
}

// ensureProject lets AddCache and AddExport create their project, which
// saves tests a line when the organization tree does not matter.
func (s *Sim) ensureProject(id string) *project {
	if p, ok := s.projByID[id]; ok {
		return p
	}
	p := &project{
		Project:    Project{ID: id, Name: id},
		createdAt:  s.now(),
		cacheByID:  map[string]*cacheState{},
		exportByID: map[string]*exportState{},
	}
	s.projects = append(s.projects, p)
	s.projByID[id] = p
	return p
}

// SetFault makes requests about id misbehave. id is a cache id (its status,
// settings and history calls), an export id (its read call) or a project id
// (that project's list calls: all cache statuses, catalog cache statuses and
// exports). The zero Fault clears it.
func (s *Sim) SetFault(id string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, id)
		return
	}
	s.faults[id] = f
}

// Requests counts the requests served for a route template such as
// RouteCacheStatus ("GET /data/projects/{projectId}/cache/{cacheId}/status"),
// whatever the answer was. A template without a method means GET.
func (s *Sim) Requests(route string) int {
	if !strings.Contains(route, " ") {
		route = "GET " + route
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

// TotalRequests counts every request, including those to unknown paths.
func (s *Sim) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// ResetRequests zeroes the request counters.
func (s *Sim) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.requests)
	s.total = 0
}

func (s *Sim) mustProject(id string) *project {
	p, ok := s.projByID[id]
	if !ok {
		panic(fmt.Sprintf("peakatest: unknown project %q", id))
	}
	return p
}
