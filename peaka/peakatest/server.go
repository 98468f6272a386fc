package peakatest

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Route templates, as counted by Requests.
const (
	RouteCacheStatus        = "GET /data/projects/{projectId}/cache/{cacheId}/status"
	RouteProjectCacheStatus = "GET /data/projects/{projectId}/cache/status"
	RouteCatalogCacheStatus = "GET /data/projects/{projectId}/catalog/{catalogId}/cache/status"
	RouteCacheSettings      = "GET /data/projects/{projectId}/cache/{cacheId}"
	RouteExecutionHistory   = "GET /data/projects/{projectId}/cache/{cacheId}/executionHistory"
	RouteExports            = "GET /data/projects/{projectId}/exports"
	RouteExport             = "GET /data/projects/{projectId}/exports/{exportId}"
	RouteOrganizations      = "GET /organizations"
	RouteWorkspaces         = "GET /organizations/{orgId}/workspaces"
	RouteProjects           = "GET /organizations/{orgId}/workspaces/{wsId}/projects"
)

type route struct {
	path    string // the template without its method
	segs    []string
	faultBy string // the path parameter whose value SetFault keys on
	serve   func(s *Sim, q *request) (any, *apiError)
}

type request struct {
	params map[string]string
	query  url.Values
	key    apiKey
	now    time.Time
}

type apiError struct {
	status int
	msg    string
}

func notFound(what, id string) *apiError {
	return &apiError{http.StatusNotFound, what + " not found: " + id}
}

func badRequest(msg string) *apiError { return &apiError{http.StatusBadRequest, msg} }

// routes is in matching order: the literal "cache/status" must win over
// "cache/{cacheId}".
var routes = func() []*route {
	rs := []*route{
		{path: RouteProjectCacheStatus, faultBy: "projectId", serve: (*Sim).serveProjectCaches},
		{path: RouteCacheStatus, faultBy: "cacheId", serve: (*Sim).serveCacheStatus},
		{path: RouteExecutionHistory, faultBy: "cacheId", serve: (*Sim).serveHistory},
		{path: RouteCacheSettings, faultBy: "cacheId", serve: (*Sim).serveSettings},
		{path: RouteCatalogCacheStatus, faultBy: "projectId", serve: (*Sim).serveCatalogCaches},
		{path: RouteExports, faultBy: "projectId", serve: (*Sim).serveExports},
		{path: RouteExport, faultBy: "exportId", serve: (*Sim).serveExport},
		{path: RouteOrganizations, serve: (*Sim).serveOrganizations},
		{path: RouteWorkspaces, serve: (*Sim).serveWorkspaces},
		{path: RouteProjects, serve: (*Sim).serveOrgProjects},
	}
	for _, r := range rs {
		r.path = strings.TrimPrefix(r.path, "GET ")
		r.segs = strings.Split(strings.TrimPrefix(r.path, "/"), "/")
	}
	return rs
}()

// match finds the route for a path. Whatever comes before the first "data"
// or "organizations" segment is ignored, so a client whose base URL carries
// the live service's "/api/v1" also works against the root-mounted server.
func match(path string) (*route, map[string]string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	i := slices.IndexFunc(segs, func(s string) bool { return s == "data" || s == "organizations" })
	if i < 0 {
		return nil, nil
	}
	segs = segs[i:]
next:
	for _, r := range routes {
		if len(r.segs) != len(segs) {
			continue
		}
		params := map[string]string{}
		for j, want := range r.segs {
			switch {
			case strings.HasPrefix(want, "{"):
				if segs[j] == "" {
					continue next
				}
				params[strings.Trim(want, "{}")] = segs[j]
			case want != segs[j]:
				continue next
			}
		}
		return r, params
	}
	return nil, nil
}

// ServeHTTP answers one API call. The checks run in the order a gateway
// would apply them: path, method, key, scope, then the simulated fault, then
// the answer itself.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, params := match(r.URL.Path)
	s.mu.Lock()
	s.total++
	if rt != nil {
		s.requests[r.Method+" "+rt.path]++
	}
	s.mu.Unlock()

	if rt == nil {
		s.writeError(w, http.StatusNotFound, "No endpoint "+r.Method+" "+r.URL.Path, false)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.writeError(w, http.StatusMethodNotAllowed, "Request method '"+r.Method+"' is not supported", false)
		return
	}
	key, ok := s.authenticate(r)
	if !ok {
		s.writeError(w, http.StatusUnauthorized, "Invalid or missing API key", false)
		return
	}
	if key.projectID != "" {
		pid, scoped := params["projectId"]
		if !scoped || pid != key.projectID {
			s.writeError(w, http.StatusForbidden, "The API key has no access to this resource", false)
			return
		}
	}

	var f Fault
	if rt.faultBy != "" {
		s.mu.Lock()
		f = s.faults[params[rt.faultBy]]
		s.mu.Unlock()
	}
	if f.Delay > 0 && !s.sleep(r, f.Delay) {
		return
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Status != 0 && f.Status != http.StatusOK {
		msg := faultMessage(f.Status)
		if f.Message != "" {
			msg = f.Message
		}
		s.writeError(w, f.Status, msg, f.HTML)
		return
	}

	s.mu.Lock()
	now := s.now()
	s.step(now)
	v, aerr := rt.serve(s, &request{params: params, query: r.URL.Query(), key: key, now: now})
	s.mu.Unlock()
	if aerr != nil {
		s.writeError(w, aerr.status, aerr.msg, false)
		return
	}
	s.writeAnswer(w, r, v, f, now)
}

func (s *Sim) authenticate(r *http.Request) (apiKey, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return apiKey{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[strings.TrimSpace(token)]
	return k, ok
}

// sleep waits d, or less if the client leaves or the simulator is closed;
// it reports whether the answer should still be written.
func (s *Sim) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

func (s *Sim) project(q *request) (*project, *apiError) {
	id := q.params["projectId"]
	p, ok := s.projByID[id]
	if !ok {
		return nil, notFound("Project", id)
	}
	return p, nil
}

func (s *Sim) cache(q *request) (*cacheState, *apiError) {
	p, err := s.project(q)
	if err != nil {
		return nil, err
	}
	id := q.params["cacheId"]
	c, ok := p.cacheByID[id]
	if !ok {
		return nil, notFound("Cache", id)
	}
	return c, nil
}

func (s *Sim) serveCacheStatus(q *request) (any, *apiError) {
	exclude := false
	if v := q.query.Get("excludeLogs"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest("Invalid value for excludeLogs: " + v)
		}
		exclude = b
	}
	c, err := s.cache(q)
	if err != nil {
		return nil, err
	}
	return c.wireStatus(q.now, !exclude), nil
}

func (s *Sim) serveProjectCaches(q *request) (any, *apiError) {
	p, err := s.project(q)
	if err != nil {
		return nil, err
	}
	out := make([]wireCacheStatus, 0, len(p.caches))
	for _, c := range p.caches {
		out = append(out, c.wireStatus(q.now, true))
	}
	return out, nil
}

func (s *Sim) serveCatalogCaches(q *request) (any, *apiError) {
	p, err := s.project(q)
	if err != nil {
		return nil, err
	}
	out := make([]wireCacheStatus, 0)
	for _, c := range p.caches {
		if c.cfg.CatalogID == q.params["catalogId"] {
			out = append(out, c.wireStatus(q.now, true))
		}
	}
	return out, nil
}

func (s *Sim) serveSettings(q *request) (any, *apiError) {
	c, err := s.cache(q)
	if err != nil {
		return nil, err
	}
	return c.wireSettings(), nil
}

func intParam(q url.Values, name string, def, least int) (int, *apiError) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		return 0, badRequest("Invalid value for " + name + ": " + v)
	}
	return n, nil
}

func (s *Sim) serveHistory(q *request) (any, *apiError) {
	limit, err := intParam(q.query, "limit", 10, 1)
	if err != nil {
		return nil, err
	}
	offset, err := intParam(q.query, "offset", 0, 0)
	if err != nil {
		return nil, err
	}
	c, err := s.cache(q)
	if err != nil {
		return nil, err
	}
	cutoff := q.now.Add(-retention)
	kept := make([]*execution, 0, len(c.execs))
	for _, e := range c.execs {
		if !e.expired(cutoff) {
			kept = append(kept, e)
		}
	}
	slices.SortFunc(kept, newestFirst)
	out := make([]*wireExecution, 0, limit)
	for i := offset; i < len(kept) && len(out) < limit; i++ {
		out = append(out, kept[i].wire())
	}
	return out, nil
}

func (s *Sim) serveExports(q *request) (any, *apiError) {
	limit := 50
	if v := q.query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, badRequest("Invalid value for limit: " + v)
		}
		limit = min(max(n, 1), 200)
	}
	var before time.Time
	if v := q.query.Get("createdBefore"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, badRequest("Invalid value for createdBefore: " + v)
		}
		before = t
	}
	var want []string
	for st := range strings.SplitSeq(q.query.Get("status"), ",") {
		if st = strings.TrimSpace(st); st != "" {
			want = append(want, strings.ToUpper(st))
		}
	}
	p, err := s.project(q)
	if err != nil {
		return nil, err
	}
	var picked []*exportState
	for _, x := range p.exports {
		if !x.visible(q.now) || !before.IsZero() && !x.cfg.CreatedAt.Before(before) {
			continue
		}
		if len(want) > 0 && !slices.Contains(want, x.status(q.now)) {
			continue
		}
		picked = append(picked, x)
	}
	slices.SortFunc(picked, func(a, b *exportState) int {
		if c := b.cfg.CreatedAt.Compare(a.cfg.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.cfg.ID, a.cfg.ID)
	})
	out := make([]wireExport, 0, min(limit, len(picked)))
	for _, x := range picked[:min(limit, len(picked))] {
		out = append(out, s.exportWire(x, q.now, q.key, false))
	}
	return out, nil
}

func (s *Sim) serveExport(q *request) (any, *apiError) {
	p, err := s.project(q)
	if err != nil {
		return nil, err
	}
	id := q.params["exportId"]
	x, ok := p.exportByID[id]
	if !ok || !x.visible(q.now) {
		return nil, notFound("Export job", id)
	}
	return s.exportWire(x, q.now, q.key, true), nil
}

func (s *Sim) serveOrganizations(*request) (any, *apiError) {
	out := make([]wireOrganization, 0, len(s.orgs))
	for _, o := range s.orgs {
		out = append(out, wireOrganization{ID: o.id, Name: o.name, Owner: simOwner,
			CreatedAt: jsonTime(o.createdAt), Description: o.name})
	}
	return out, nil
}

func (s *Sim) org(q *request) (*organization, *apiError) {
	id := q.params["orgId"]
	o, ok := s.orgByID[id]
	if !ok {
		return nil, notFound("Organization", id)
	}
	return o, nil
}

func (s *Sim) serveWorkspaces(q *request) (any, *apiError) {
	o, err := s.org(q)
	if err != nil {
		return nil, err
	}
	out := make([]wireWorkspace, 0, len(o.workspaces))
	for _, w := range o.workspaces {
		out = append(out, wireWorkspace{ID: w.id, Name: w.name, CreatedBy: simOwner, OrganizationID: o.id,
			Description: w.name, CreatedAt: jsonTime(w.createdAt), DefaultWorkspace: w.isDefault})
	}
	return out, nil
}

func (s *Sim) serveOrgProjects(q *request) (any, *apiError) {
	o, err := s.org(q)
	if err != nil {
		return nil, err
	}
	wsID := q.params["wsId"]
	if !slices.ContainsFunc(o.workspaces, func(w *workspace) bool { return w.id == wsID }) {
		return nil, notFound("Workspace", wsID)
	}
	out := make([]wireProject, 0)
	for _, p := range s.projects {
		if p.OrganizationID != o.id || p.WorkspaceID != wsID {
			continue
		}
		domain := strings.ToLower(p.ID)
		out = append(out, wireProject{ID: p.ID, Name: p.Name, Domain: domain,
			WebhookBaseURL: "https://" + domain + ".api.peaka.invalid",
			CreatedAt:      jsonTime(p.createdAt), WorkspaceID: wsID})
	}
	return out, nil
}
