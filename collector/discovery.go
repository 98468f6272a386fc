package collector

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peakacom/peaka_exporter/config"
	"github.com/peakacom/peaka_exporter/peaka"
)

const kindDiscovery = "discovery"

// discoveryRetry is how soon a failed discovery is tried again.
const discoveryRetry = time.Minute

// projectDiscovery finds the projects a Partner key reaches, walking
// organizations → workspaces → projects, and keeps the list for the
// configured period. A failed walk keeps the last good list.
type projectDiscovery struct {
	mu       sync.Mutex
	ids      []string
	success  time.Time // of the last successful walk
	next     time.Time // when to walk again
	inflight chan struct{}
	lastErr  error
	gen      int // bumped by reset: a walk begun before is not kept

	projects    prometheus.Gauge
	lastSuccess prometheus.Gauge
}

func newProjectDiscovery() *projectDiscovery {
	return &projectDiscovery{
		projects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "peaka_discovery_projects",
			Help: "Projects the Partner API key reaches, as last discovered (discover in the configuration).",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "peaka_discovery_last_success_timestamp_seconds",
			Help: "When project discovery last succeeded (Unix time); 0 before the first success.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (d *projectDiscovery) Describe(ch chan<- *prometheus.Desc) {
	d.projects.Describe(ch)
	d.lastSuccess.Describe(ch)
}

// Collect implements prometheus.Collector.
func (d *projectDiscovery) Collect(ch chan<- prometheus.Metric) {
	d.projects.Collect(ch)
	d.lastSuccess.Collect(ch)
}

// discoveryTimeout bounds one walk of the organization tree. The walk
// runs on its own deadline, not a request's, so that a caller that gives
// up does not cancel it for the others, and a slow tree still finishes.
const discoveryTimeout = 2 * time.Minute

// get returns the discovered project IDs, walking the tree when the kept
// list is older than refresh. Concurrent callers share one walk; each waits
// for it only as long as its own ctx allows.
func (d *projectDiscovery) get(ctx context.Context, now time.Time, refresh time.Duration, walk func(context.Context) ([]string, error)) ([]string, error) {
	d.mu.Lock()
	if d.inflight == nil && now.Before(d.next) {
		ids, err := d.ids, d.lastErr
		d.mu.Unlock()
		return ids, err
	}
	ch := d.inflight
	if ch == nil {
		ch = make(chan struct{})
		d.inflight = ch
		gen := d.gen
		go func() {
			walkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
			ids, err := walk(walkCtx)
			cancel()
			d.mu.Lock()
			defer d.mu.Unlock()
			d.inflight = nil
			close(ch)
			if gen != d.gen {
				return // the configuration changed meanwhile: keep nothing of it
			}
			d.lastErr = err
			if err != nil {
				d.next = now.Add(min(refresh, discoveryRetry))
				return
			}
			d.ids, d.success, d.next = ids, now, now.Add(refresh)
			d.projects.Set(float64(len(ids)))
			d.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
		}()
	}
	d.mu.Unlock()
	select {
	case <-ch:
		return d.current(nil)
	case <-ctx.Done():
		return d.current(ctx.Err())
	}
}

func (d *projectDiscovery) current(err error) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ids, cmp.Or(err, d.lastErr)
}

func (d *projectDiscovery) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	d.ids, d.success, d.next, d.lastErr = nil, time.Time{}, time.Time{}, nil
}

// walkProjects lists every project the client's key reaches.
func walkProjects(ctx context.Context, pc *peaka.Client) ([]string, error) {
	orgs, err := pc.Organizations(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, o := range orgs {
		wss, err := pc.Workspaces(ctx, o.ID)
		if err != nil {
			return nil, err
		}
		for _, ws := range wss {
			ps, err := pc.Projects(ctx, o.ID, ws.ID)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				if p.ID != "" {
					ids = append(ids, p.ID)
				}
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// errUnknownProject is returned for a probe of a project that is neither
// configured nor discovered.
var errUnknownProject = errors.New("unknown project")

// probeTargets returns the projects /probe and /discovery serve: the
// configured ones and, with discover, every discovered one (configured
// settings win). A failed discovery is returned along with what is known.
func (e *Exporter) probeTargets(ctx context.Context, cfg *config.Config) ([]*config.Project, error) {
	projects := make([]*config.Project, 0, len(cfg.Projects))
	configured := map[string]bool{}
	for i := range cfg.Projects {
		projects = append(projects, &cfg.Projects[i])
		configured[cfg.Projects[i].ID] = true
	}
	d := cfg.Discover
	if d == nil {
		return projects, nil
	}
	client, err := e.clientFor(cfg)
	if err != nil {
		return projects, err
	}
	pc := client.WithKey(cfg.Peaka.Key.Value())
	ids, err := e.discovery.get(ctx, e.now(), d.RefreshPeriod(), func(ctx context.Context) ([]string, error) {
		ids, err := walkProjects(ctx, pc)
		e.recordFailure(kindDiscovery, "", "", err)
		return ids, err
	})
	for _, id := range ids {
		if !configured[id] {
			p := d.Project(id, cfg.Peaka.Key)
			projects = append(projects, &p)
		}
	}
	return projects, err
}

// Probe scrapes one project, configured or discovered.
func (e *Exporter) Probe(ctx context.Context, cfg *config.Config, project string) (*Result, error) {
	projects, err := e.probeTargets(ctx, cfg)
	for _, p := range projects {
		if p.ID == project {
			return e.scrapeProjects(ctx, cfg, []*config.Project{p}), nil
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, errUnknownProject
}
