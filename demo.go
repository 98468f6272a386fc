package main

import (
	"fmt"
	"net/http/httptest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/peakacom/peaka_exporter/config"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// demo is the simulated Peaka API that --demo runs in-process on loopback.
type demo struct {
	sim    *peakatest.Sim
	srv    *httptest.Server
	url    string
	config *config.Config
}

func startDemo() (*demo, error) {
	sim, info := peakatest.NewDemo(time.Now)
	srv := httptest.NewServer(sim)
	cfg, err := demoConfig(srv.URL, info)
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &demo{sim: sim, srv: srv, url: srv.URL, config: cfg}, nil
}

func (d *demo) Close() { d.srv.Close() }

// demoConfig builds the configuration a user would write for the
// simulated projects and runs it through the same validation.
func demoConfig(url string, info peakatest.DemoInfo) (*config.Config, error) {
	type caches struct {
		IDs []string `yaml:"ids,omitempty"`
		All bool     `yaml:"all,omitempty"`
	}
	type exports struct {
		IDs    []string `yaml:"ids,omitempty"`
		Recent string   `yaml:"recent,omitempty"`
	}
	type project struct {
		ID      string  `yaml:"id"`
		Caches  caches  `yaml:"caches"`
		Exports exports `yaml:"exports"`
	}
	doc := struct {
		Peaka    map[string]any `yaml:"peaka"`
		Projects []project      `yaml:"projects"`
	}{Peaka: map[string]any{"url": url, "timeout": "10s"}}
	for _, p := range info.Projects {
		pr := project{ID: p.ID, Caches: caches{IDs: p.CacheIDs, All: p.AllCaches}, Exports: exports{IDs: p.ExportIDs}}
		if p.RecentExports > 0 {
			pr.Exports.Recent = p.RecentExports.String()
		}
		doc.Projects = append(doc.Projects, pr)
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	lookup := func(k string) (string, bool) {
		if k == "PEAKA_API_KEY" {
			return info.APIKey, true
		}
		return "", false
	}
	return config.Parse(b, "demo configuration", lookup, "")
}
