package collector

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/peakacom/peaka_exporter/config"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	partnerKey = "pk-partner-0123456789abcdef" // a key the tests assert never leaks
	ownerID    = "user-owner"
)

var simStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is an exporter wired to a simulated Peaka API over real HTTP.
type env struct {
	t   testing.TB
	sim *peakatest.Sim
	srv *httptest.Server
	reg *prometheus.Registry
	exp *Exporter
	cfg *config.Config

	intercept atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
}

func newEnv(t testing.TB) *env {
	t.Helper()
	sim := peakatest.New(peakatest.Options{Start: simStart, Seed: 1})
	sim.AddPartnerKey(partnerKey, ownerID)
	e := &env{t: t, sim: sim}
	// intercept lets a test answer some requests itself (a fault on one
	// route only); everything else goes to the simulation.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := e.intercept.Load(); f != nil && (*f)(w, r) {
			return
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close) // runs first: releases requests held by Delay faults
	reg := prometheus.NewPedanticRegistry()
	// Most tests are about per-cache calls and their faults; the choice of
	// the project list has tests of its own.
	exp, err := New(reg, Options{Logger: log.NewNopLogger(), Now: sim.Now, PerCacheCalls: true})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.reg, e.exp = srv, reg, exp
	return e
}

// withOptions replaces the exporter with one built with o (its clock is
// always the simulation's).
func (e *env) withOptions(o Options) {
	e.t.Helper()
	o.Now = e.sim.Now
	o.PerCacheCalls = true
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
	reg := prometheus.NewPedanticRegistry()
	exp, err := New(reg, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.reg, e.exp = reg, exp
}

// configure parses a config whose projects part is given; the URL and the
// key are filled in.
func (e *env) configure(projects string, peakaExtra ...string) *config.Config {
	e.t.Helper()
	doc := "peaka:\n  url: " + e.srv.URL + "\n"
	for _, l := range peakaExtra {
		doc += "  " + l + "\n"
	}
	doc += "projects:\n" + projects
	cfg, err := config.Parse([]byte(doc), "test.yml", func(k string) (string, bool) {
		if k == "PEAKA_API_KEY" {
			return partnerKey, true
		}
		return "", false
	}, e.t.TempDir())
	if err != nil {
		e.t.Fatalf("config: %v\n%s", err, doc)
	}
	e.cfg = cfg
	return cfg
}

// scrape runs one scrape and returns its result and the exposition of the
// result plus the exporter's long-lived metrics.
func (e *env) scrape(ctx context.Context) (*Result, string) {
	e.t.Helper()
	res := e.exp.Scrape(ctx, e.cfg)
	return res, e.expose(res)
}

func (e *env) expose(res *Result) string {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.exp.WriteExposition(&buf, res, e.reg); err != nil {
		e.t.Fatalf("writing the exposition: %v", err)
	}
	return buf.String()
}

// parse reads an exposition back into metric families, failing on
// anything the text format does not allow.
func parse(t *testing.T, text string) []*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	mfs := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		mfs = append(mfs, mf)
	}
	sort.Slice(mfs, func(i, j int) bool { return mfs[i].GetName() < mfs[j].GetName() })
	return mfs
}

// deterministic drops the series whose values are wall-clock timings.
func deterministic(exposition string) string {
	var out []string
	for _, l := range strings.Split(exposition, "\n") {
		if strings.Contains(l, "peaka_scrape_duration_seconds") || strings.Contains(l, "peaka_exporter_api_request_duration_seconds") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// value returns the value of the series whose text line starts with
// series (name and labels as exposed), or fails.
func value(t *testing.T, exposition, series string) string {
	t.Helper()
	for _, l := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(l, series+" ") {
			return strings.TrimPrefix(l, series+" ")
		}
	}
	t.Fatalf("series %s not in exposition:\n%s", series, exposition)
	return ""
}

func absent(t *testing.T, exposition, prefix string) {
	t.Helper()
	for _, l := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(l, prefix) {
			t.Errorf("unexpected series %q", l)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./collector -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("exposition differs from %s (go test ./collector -update rewrites it):\n%s", path, diff(string(want), got))
	}
}

// diff lists the lines only in want (-) and only in got (+).
func diff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+l)
		case n < 0:
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func familyNames(mfs []*dto.MetricFamily) []string {
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	return names
}
