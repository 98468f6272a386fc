package config

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// SafeConfig holds the current config so it can be replaced on SIGHUP or
// /-/reload while scrapes keep reading it.
type SafeConfig struct {
	mu sync.RWMutex
	c  *Config

	// reloadMu serialises reloads so that the gauges always describe the
	// config that ended up installed, even if two reloads overlap.
	reloadMu sync.Mutex

	reloadSuccess prometheus.Gauge
	reloadSeconds prometheus.Gauge
}

// NewSafeConfig returns an empty SafeConfig and registers its reload gauges
// with reg (skipped when reg is nil, which keeps tests and tools simple).
func NewSafeConfig(reg prometheus.Registerer) *SafeConfig {
	sc := &SafeConfig{
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "peaka_exporter_config_last_reload_successful",
			Help: "Peaka exporter config loaded successfully.",
		}),
		reloadSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "peaka_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
	if reg != nil {
		reg.MustRegister(sc.reloadSuccess, sc.reloadSeconds)
	}
	return sc
}

// Reload loads path and installs it. On failure the previous config stays
// in place, so a bad edit does not stop a running exporter.
func (sc *SafeConfig) Reload(path string) error {
	sc.reloadMu.Lock()
	defer sc.reloadMu.Unlock()

	c, err := Load(path)
	if err != nil {
		sc.reloadSuccess.Set(0)
		return err
	}
	sc.install(c)
	return nil
}

// Set installs an already parsed config and records it as a successful
// reload.
func (sc *SafeConfig) Set(c *Config) {
	sc.reloadMu.Lock()
	defer sc.reloadMu.Unlock()
	sc.install(c)
}

func (sc *SafeConfig) install(c *Config) {
	sc.mu.Lock()
	sc.c = c
	sc.mu.Unlock()
	sc.reloadSuccess.Set(1)
	sc.reloadSeconds.SetToCurrentTime()
}

// Get returns the current config, nil before the first successful load. The
// config is shared: callers must not modify it.
func (sc *SafeConfig) Get() *Config {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.c
}
