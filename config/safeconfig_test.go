package config

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

const (
	successGauge   = "peaka_exporter_config_last_reload_successful"
	timestampGauge = "peaka_exporter_config_last_reload_success_timestamp_seconds"
)

func TestSafeConfigReload(t *testing.T) {
	t.Setenv(APIKeyEnv, "reload-key")
	reg := prometheus.NewRegistry()
	sc := NewSafeConfig(reg)
	if sc.Get() != nil {
		t.Fatal("config before first load")
	}

	before := float64(time.Now().Unix())
	if err := sc.Reload("testdata/good/minimal.yml"); err != nil {
		t.Fatal(err)
	}
	good := sc.Get()
	if good == nil || good.Projects[0].ID != "mtKDhe1U" {
		t.Fatalf("unexpected config %+v", good)
	}
	if v := gauge(t, reg, successGauge); v != 1 {
		t.Errorf("%s = %v after good reload", successGauge, v)
	}
	ts := gauge(t, reg, timestampGauge)
	if ts < before || ts > float64(time.Now().Unix())+1 {
		t.Errorf("%s = %v, want about now", timestampGauge, ts)
	}

	err := sc.Reload("testdata/bad/wrong-type.yml")
	if err == nil {
		t.Fatal("bad config accepted")
	}
	if _, ok := err.(*Error); !ok {
		t.Errorf("Reload error is %T, want *Error", err)
	}
	if sc.Get() != good {
		t.Error("bad reload replaced the config")
	}
	if v := gauge(t, reg, successGauge); v != 0 {
		t.Errorf("%s = %v after bad reload", successGauge, v)
	}
	if v := gauge(t, reg, timestampGauge); v != ts {
		t.Errorf("bad reload moved %s from %v to %v", timestampGauge, ts, v)
	}

	// Set counts as a successful load, e.g. for demo mode.
	demo := &Config{Projects: []Project{{ID: "demo"}}}
	sc.Set(demo)
	if sc.Get() != demo || gauge(t, reg, successGauge) != 1 {
		t.Error("Set did not install the config as a success")
	}
}

func TestSafeConfigNilRegisterer(t *testing.T) {
	sc := NewSafeConfig(nil)
	sc.Set(&Config{})
	if sc.Get() == nil {
		t.Error("Set ignored without a registerer")
	}
}

// TestSafeConfigConcurrent is meant for -race: readers and reloaders run at
// once, including reloads of a file that is being rewritten.
func TestSafeConfigConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yml")
	good, err := os.ReadFile("testdata/good/per-project-keys.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"billing.key", "marketing.key"} {
		data, err := os.ReadFile(filepath.Join("testdata/good/keys", k))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keys", k), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}

	sc := NewSafeConfig(prometheus.NewRegistry())
	if err := sc.Reload(path); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				_ = sc.Reload(path)
				_ = sc.Reload("testdata/bad/syntax-error.yml")
			}
		})
	}
	for range 8 {
		wg.Go(func() {
			for range 500 {
				c := sc.Get()
				if c == nil || len(c.Projects) != 2 {
					t.Error("reader saw a missing or partial config")
					return
				}
				_ = c.Projects[1].Key.Value()
			}
		})
	}
	wg.Wait()
}
