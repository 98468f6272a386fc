package main

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"time"

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
func demoConfig(apiURL string, info peakatest.DemoInfo) (*config.Config, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	doc := config.Config{Peaka: config.Peaka{
		URL:              config.URL{URL: u},
		Timeout:          config.Duration(config.DefaultTimeout),
		MaxConcurrency:   config.DefaultMaxConcurrency,
		SettingsRefresh:  config.Duration(config.DefaultSettingsRefresh),
		MaxResponseBytes: config.DefaultMaxResponseBytes,
	}}
	for _, p := range info.Projects {
		doc.Projects = append(doc.Projects, config.Project{
			ID:      p.ID,
			Caches:  config.Caches{IDs: p.CacheIDs, All: p.AllCaches},
			Exports: config.Exports{IDs: p.ExportIDs, Recent: config.Duration(p.RecentExports)},
		})
	}
	b, err := doc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	lookup := func(k string) (string, bool) {
		if k == config.APIKeyEnv {
			return info.APIKey, true
		}
		return "", false
	}
	return config.Parse(b, "demo configuration", lookup, "")
}
