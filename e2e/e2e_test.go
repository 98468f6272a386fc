package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// TestEndToEnd runs the chain the way users run it: the simulated Peaka API,
// the exporter binary, Prometheus with deploy/prometheus/ (target, intervals
// and "for:" shortened to 0s), and Alertmanager with deploy/alertmanager/ (its
// receivers turned into webhooks to this test), and checks through their
// HTTP APIs that the data, the rules, the alerts and the notifications are
// right, and that every PromQL expression of the dashboard and of README.md
// returns data.
func TestEndToEnd(t *testing.T) {
	promBin := needTool(t, "prometheus", "prometheus")
	amBin := needTool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }

	w := newWorld(t)
	dir := t.TempDir()
	hook := newWebhook(t)

	// Alertmanager with the shipped routing and inhibition, and every
	// receiver a webhook named after it.
	amDir := filepath.Join(dir, "alertmanager")
	mkdir(t, amDir)
	writeFile(t, filepath.Join(amDir, "alertmanager.yml"), alertmanagerConfig(t, hook.srv.URL))
	am := startProcess(t, "alertmanager", amBin,
		"--config.file="+filepath.Join(amDir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(amDir, "data"),
		"--web.listen-address=127.0.0.1:0",
		"--cluster.listen-address=")

	// The exporter.
	expDir := filepath.Join(dir, "exporter")
	mkdir(t, expDir)
	writeFile(t, filepath.Join(expDir, "api-key"), []byte(apiKey+"\n"))
	writeFile(t, filepath.Join(expDir, "peaka_exporter.yml"), []byte(w.exporterConfig()))
	exporter := startProcess(t, "exporter", exporterBinary(t),
		"--config.file="+filepath.Join(expDir, "peaka_exporter.yml"),
		"--web.listen-address=127.0.0.1:0",
		// Prometheus's timeout is 1s here: leave the API calls most of it,
		// and the answer time to be written on a loaded machine.
		"--scrape.timeout-offset=0.3s")

	// Prometheus with the shipped configuration and rules.
	promDir := filepath.Join(dir, "prometheus")
	mkdir(t, promDir)
	writeFile(t, filepath.Join(promDir, "prometheus.yml"), prometheusConfig(t, exporter.addr, am.addr))
	writeFile(t, filepath.Join(promDir, "alerts.yml"), shortenedAlerts(t))
	promProc := startProcess(t, "prometheus", promBin,
		"--config.file="+filepath.Join(promDir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address=127.0.0.1:0")
	prom := promAPI{base: "http://" + promProc.addr}
	phase("Alertmanager, exporter and Prometheus started")

	// The target is up.
	eventually(t, 60*time.Second, "Prometheus scrapes the exporter", func() error {
		var r struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				ScrapeURL string            `json:"scrapeUrl"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := prom.get("/api/v1/targets", nil, &r); err != nil {
			return err
		}
		for _, tg := range r.ActiveTargets {
			if tg.Labels["job"] == "peaka" && tg.ScrapeURL == "http://"+exporter.addr+"/metrics" && tg.Health == "up" {
				return nil
			}
		}
		return fmt.Errorf("targets: %+v", r.ActiveTargets)
	})
	eventually(t, 30*time.Second, "up is 1", func() error {
		return prom.expect(`up{job="peaka"}`, 1, 0)
	})
	phase("target up")

	// The series arrive with what the simulation was told.
	type want struct {
		expr      string
		value     float64
		tolerance float64
	}
	sel := func(metric, labels string) string { return metric + "{" + labels + "}" }
	a := func(cache string) string { return `project_id="proj-a", cache_id="` + cache + `"` }
	e := func(export string) string { return `project_id="proj-a", export_id="` + export + `"` }
	values := []want{
		{sel("peaka_exporter_build_info", `version="`+buildVersion+`", revision="`+buildRevision+`", branch="`+buildBranch+`"`), 1, 0},
		{sel("peaka_project_up", `project_id="proj-a"`), 1, 0},
		{sel("peaka_project_up", `project_id="proj-b"`), 1, 0},
		{sel("peaka_project_up", `project_id="proj-locked"`), 0, 0},
		{sel("peaka_cache_up", a(cacheOK)), 1, 0},
		{sel("peaka_cache_up", a(cacheGone)), 0, 0},
		{sel("peaka_cache_up", a(cacheThrottled)), 1, 0}, // its status comes from the project's list; its settings call is refused
		{`count(peaka_cache_up{project_id="proj-b"} == 1)`, 2, 0},
		{sel("peaka_cache_info", a(cacheOK)+`, catalog_id="367189801096446904", schema_name="public", table_name="ok"`), 1, 0},
		{sel("peaka_cache_status", a(cacheOK)+`, status="COMPLETED"`), 1, 0},
		{sel("peaka_cache_status", a(cacheBroken)+`, status="FAILED"`), 1, 0},
		{sel("peaka_cache_status", a(cacheHung)+`, status="RUNNING"`), 1, 0},
		{sel("peaka_cache_execution_records", a(cacheOK)+`, execution="incremental", kind="cached"`), float64(okIncremental.Cached), 0},
		{sel("peaka_cache_execution_records", a(cacheOK)+`, execution="incremental", kind="inserted"`), float64(okIncremental.Inserted), 0},
		{sel("peaka_cache_execution_records", a(cacheOK)+`, execution="incremental", kind="updated"`), float64(okIncremental.Updated), 0},
		{sel("peaka_cache_execution_records", a(cacheOK)+`, execution="full_refresh", kind="cached"`), float64(okFullRefresh.Cached), 0},
		{sel("peaka_cache_execution_finished_timestamp_seconds", a(cacheOK)+`, execution="incremental"`), w.okFinished, 1},
		{sel("peaka_cache_execution_duration_seconds", a(cacheOK)+`, execution="full_refresh"`), okFullRunFor.Seconds(), 1},
		{sel("peaka_cache_execution_error", a(cacheBroken)+`, execution="incremental"`), 1, 0},
		{sel("peaka_cache_execution_status", a(cacheHung)+`, execution="incremental", status="RUNNING"`), 1, 0},
		{sel("peaka_cache_schedule_interval_seconds", a(cacheStale)+`, execution="incremental"`), 300, 0},
		{sel("peaka_cache_schedule_interval_seconds", a(cacheHung)+`, execution="incremental"`), 300, 0},
		{sel("peaka_cache_schedule_interval_seconds", `project_id="proj-b", cache_id="live-orders", execution="full_refresh"`), 1800, 0},
		{`count(peaka_cache_schedule_interval_seconds{cache_id=~"cache-ok|cache-badsched"})`, 0, -1}, // absent: no schedule, or one not understood
		{sel("peaka_export_up", e(exportOK)), 1, 0},
		{sel("peaka_export_up", e(exportGone)), 0, 0},
		{sel("peaka_export_rows", e(exportOK)), float64(exportOKRows), 0},
		{sel("peaka_export_size_bytes", e(exportOK)), float64(exportOKBytes), 0},
		{sel("peaka_export_files", e(exportOK)), float64(exportOKFiles), 0},
		{sel("peaka_export_downloadable", e(exportOK)), 1, 0},
		{sel("peaka_export_info", e(exportOK)+`, format="CSV", compression="GZIP", source="peaka.query.\"charges_view\""`), 1, 0},
		{sel("peaka_export_status", e(exportOK)+`, status="SUCCEEDED"`), 1, 0},
		{sel("peaka_export_status", e(exportFailed)+`, status="FAILED"`), 1, 0},
		{sel("peaka_export_status", e(exportExpired)+`, status="EXPIRED"`), 1, 0},
		{sel("peaka_export_status", e(exportRunning)+`, status="RUNNING"`), 1, 0},
		{sel("peaka_export_status", e(exportPending)+`, status="PENDING"`), 1, 0},
		{sel("peaka_export_status", e(exportCancelled)+`, status="CANCELLED"`), 1, 0},
		{`count(peaka_export_up{project_id="proj-b"})`, 3, 0},
		{`sum(peaka_export_rows{project_id="proj-b"})`, 600, 0},
	}
	eventually(t, 30*time.Second, "the series have the simulation's values", func() error {
		var errs []string
		for _, v := range values {
			if err := prom.expect(v.expr, v.value, v.tolerance); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("\n  %s", strings.Join(errs, "\n  "))
		}
		return nil
	})
	phase("values checked")

	// The rule file loaded, and every rule evaluates without error.
	var shipped ruleFile
	readYAML(t, deployPath(t, "prometheus", "alerts.yml"), &shipped)
	eventually(t, 30*time.Second, "the rules load and evaluate", func() error { return prom.rulesHealthy(shipped) })
	phase("rules loaded")

	// The alerts the world calls for fire; the others do not.
	firing := []struct {
		alert  string
		labels map[string]string
	}{
		{"PeakaCacheFailed", map[string]string{"project_id": projA, "cache_id": cacheBroken, "severity": "critical", "table_name": "broken"}},
		{"PeakaCacheStale", map[string]string{"project_id": projA, "cache_id": cacheStale, "execution": "incremental"}},
		{"PeakaCacheStale", map[string]string{"project_id": projA, "cache_id": cacheAncient, "execution": ""}},
		{"PeakaCacheExecutionStuck", map[string]string{"project_id": projA, "cache_id": cacheHung, "execution": "incremental"}},
		{"PeakaProjectDown", map[string]string{"project_id": projLock}},
		{"PeakaAPIKeyRejected", map[string]string{"reason": "unauthorized"}},
		{"PeakaAPIRateLimited", map[string]string{"reason": "rate_limited"}},
		{"PeakaCacheUnreadable", map[string]string{"project_id": projA, "cache_id": cacheGone}},
		{"PeakaExportUnreadable", map[string]string{"project_id": projA, "export_id": exportGone}},
		{"PeakaExportFailed", map[string]string{"project_id": projA, "export_id": exportFailed, "source": `peaka.query."big_view"`}},
		{"PeakaCacheScheduleUnreadable", map[string]string{"project_id": projA, "cache_id": cacheBadSched}},
	}
	eventually(t, 60*time.Second, "the expected alerts fire", func() error {
		alerts, err := prom.alerts()
		if err != nil {
			return err
		}
		var missing []string
		for _, f := range firing {
			if findAlert(alerts, "firing", f.alert, f.labels) == nil {
				missing = append(missing, fmt.Sprintf("%s%v", f.alert, f.labels))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not firing: %v\nactive: %v", missing, alertNames(alerts))
		}
		return nil
	})
	phase("expected alerts firing")
	// The others stay quiet. A scrape abandoned on a loaded machine can make
	// some fire for a moment (every "for:" is 0s here), so what is checked
	// is that none of them stays active.
	quiet := []struct {
		alert  string
		labels map[string]string
	}{
		{"PeakaExporterDown", nil},
		{"PeakaExporterAbsent", nil},
		{"PeakaExporterConfigReloadFailed", nil},
		{"PeakaExporterScrapeNearTimeout", nil},
		{"PeakaCacheFailed", map[string]string{"cache_id": cacheOK}},
		{"PeakaCacheFailed", map[string]string{"cache_id": cacheFlaky}},
		{"PeakaCacheStale", map[string]string{"cache_id": cacheOK}},
		{"PeakaCacheStale", map[string]string{"cache_id": cacheBadSched}},
		{"PeakaCacheStale", map[string]string{"project_id": projB}},
		{"PeakaCacheExecutionStuck", map[string]string{"project_id": projB}},
		{"PeakaProjectDown", map[string]string{"project_id": projA}},
		{"PeakaExportFailed", map[string]string{"export_id": exportOK}},
		{"PeakaCacheUnreadable", map[string]string{"cache_id": "cache-locked"}}, // PeakaProjectDown covers it
	}
	eventually(t, 30*time.Second, "no other alert is active", func() error {
		alerts, err := prom.alerts()
		if err != nil {
			return err
		}
		var active []string
		for _, q := range quiet {
			if a := findAlert(alerts, "", q.alert, q.labels); a != nil {
				active = append(active, fmt.Sprintf("%s%v", q.alert, a.Labels))
			}
		}
		if len(active) > 0 {
			return fmt.Errorf("active and should not be: %v", active)
		}
		return nil
	})

	// A cache fails: the alert fires, and Alertmanager's critical route
	// notifies with the alert's labels and annotations.
	failedAt := time.Now()
	w.sim.RunExecution(projA, cacheFlaky, peakatest.Incremental, "FAILED", peakatest.Records{Cached: 20, Inserted: 2})
	flaky := map[string]string{"alertname": "PeakaCacheFailed", "project_id": projA, "cache_id": cacheFlaky}
	execFailed := map[string]string{"alertname": "PeakaCacheExecutionFailed", "project_id": projA, "cache_id": cacheFlaky, "execution": "incremental"}
	eventually(t, 60*time.Second, "PeakaCacheFailed fires for the cache made to fail", func() error {
		alerts, err := prom.alerts()
		if err != nil {
			return err
		}
		if findAlert(alerts, "firing", "PeakaCacheFailed", flaky) == nil {
			return fmt.Errorf("active: %v", alertNames(alerts))
		}
		if findAlert(alerts, "firing", "PeakaCacheExecutionFailed", execFailed) == nil {
			return fmt.Errorf("PeakaCacheExecutionFailed not firing for %s; active: %v", cacheFlaky, alertNames(alerts))
		}
		return nil
	})
	phase("PeakaCacheFailed firing in Prometheus")
	var fired webhookAlert
	eventually(t, 60*time.Second, "Alertmanager notifies the firing alert", func() error {
		n, al, ok := hook.find("firing", flaky)
		if !ok {
			return fmt.Errorf("notifications so far: %s", hook.summary())
		}
		if n.Receiver != "peaka-pager" || n.path != "/peaka-pager" {
			return fmt.Errorf("a critical alert went to receiver %q (%s), want peaka-pager, the critical route's", n.Receiver, n.path)
		}
		fired = al
		return nil
	})
	phase("firing notification received")
	wantLabels := map[string]string{
		"alertname": "PeakaCacheFailed", "severity": "critical", "job": "peaka", "instance": exporter.addr,
		"project_id": projA, "cache_id": cacheFlaky, "status": "FAILED", "schema_name": "public", "table_name": "flaky",
	}
	if !hasLabels(fired.Labels, wantLabels) {
		t.Errorf("notified labels %v, want %v", fired.Labels, wantLabels)
	}
	if s, want := fired.Annotations["summary"], "Peaka cache cache-flaky (public.flaky) in project proj-a has FAILED."; s != want {
		t.Errorf("notified summary %q, want %q", s, want)
	}
	if d := fired.Annotations["description"]; !strings.Contains(d, "cache cache-flaky (public.flaky) in project proj-a failed") {
		t.Errorf("notified description does not name the cache and project: %q", d)
	}
	if fired.StartsAt.Before(failedAt.Add(-time.Minute)) {
		t.Errorf("notified alert started at %s, before the cache failed at %s", fired.StartsAt, failedAt)
	}

	// The shipped inhibition: while the cache is FAILED, Alertmanager holds
	// back the warning about its failed execution.
	eventually(t, 30*time.Second, "Alertmanager inhibits PeakaCacheExecutionFailed", func() error {
		var alerts []struct {
			Labels map[string]string `json:"labels"`
			Status struct {
				State       string   `json:"state"`
				InhibitedBy []string `json:"inhibitedBy"`
			} `json:"status"`
		}
		code, body, err := httpGet("http://" + am.addr + "/api/v2/alerts?" + url.Values{"filter": {`alertname="PeakaCacheExecutionFailed"`}}.Encode())
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /api/v2/alerts: %d %v %s", code, err, body)
		}
		if err := json.Unmarshal(body, &alerts); err != nil {
			return err
		}
		for _, a := range alerts {
			if hasLabels(a.Labels, execFailed) {
				if a.Status.State != "suppressed" || len(a.Status.InhibitedBy) == 0 {
					return fmt.Errorf("state %q, inhibited by %v", a.Status.State, a.Status.InhibitedBy)
				}
				return nil
			}
		}
		return fmt.Errorf("not in Alertmanager yet")
	})
	phase("PeakaCacheExecutionFailed inhibited")

	// Every expression of the dashboard and of README.md parses and returns
	// data in this world.
	checkExpressions(t, prom)
	phase("dashboard and README expressions checked")

	// The cache completes again: the alert resolves, and Alertmanager says so.
	w.sim.RunExecution(projA, cacheFlaky, peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 22, Inserted: 2})
	eventually(t, 60*time.Second, "PeakaCacheFailed resolves", func() error {
		alerts, err := prom.alerts()
		if err != nil {
			return err
		}
		if a := findAlert(alerts, "", "PeakaCacheFailed", flaky); a != nil {
			return fmt.Errorf("still %s", a.State)
		}
		if findAlert(alerts, "firing", "PeakaCacheFailed", map[string]string{"cache_id": cacheBroken}) == nil {
			return fmt.Errorf("PeakaCacheFailed for %s stopped too", cacheBroken)
		}
		return nil
	})
	phase("PeakaCacheFailed resolved in Prometheus")
	eventually(t, 60*time.Second, "Alertmanager notifies the resolved alert", func() error {
		n, al, ok := hook.find("resolved", flaky)
		if !ok {
			return fmt.Errorf("notifications so far: %s", hook.summary())
		}
		if n.Receiver != "peaka-pager" {
			return fmt.Errorf("resolved notification went to %q", n.Receiver)
		}
		if !al.EndsAt.After(al.StartsAt) || al.Annotations["summary"] != fired.Annotations["summary"] {
			return fmt.Errorf("resolved alert %+v", al)
		}
		return nil
	})
	phase("resolved notification received")
	// The failed execution still counts for an hour: with the cache
	// recovered, its warning is no longer inhibited and goes to the default
	// (chat) receiver.
	eventually(t, 60*time.Second, "PeakaCacheExecutionFailed is notified once no longer inhibited", func() error {
		n, al, ok := hook.find("firing", execFailed)
		if !ok {
			return fmt.Errorf("notifications so far: %s", hook.summary())
		}
		if n.Receiver != "peaka-chat" || al.Labels["severity"] != "warning" {
			return fmt.Errorf("went to %q with severity %q, want peaka-chat and warning", n.Receiver, al.Labels["severity"])
		}
		return nil
	})
	phase("uninhibited warning received")

	if err := prom.rulesHealthy(shipped); err != nil {
		t.Errorf("rules at the end: %v", err)
	}
	for _, p := range []*process{exporter, promProc, am} {
		if strings.Contains(p.log(), "DATA RACE") {
			t.Errorf("%s reported a data race", p.name)
		}
	}
	for _, line := range strings.Split(exporter.log(), "\n") {
		if !strings.Contains(line, "level=error") {
			continue
		}
		// On a loaded machine Prometheus may give up a scrape at its 1s
		// timeout; the exporter then cannot finish writing the answer.
		if strings.Contains(line, `msg="writing metrics"`) &&
			(strings.Contains(line, "broken pipe") || strings.Contains(line, "connection reset by peer")) {
			t.Logf("a scrape was abandoned by Prometheus: %s", line)
			continue
		}
		t.Errorf("exporter logged an error: %s", line)
	}
}

// checkExpressions runs every PromQL expression of the dashboard (with its
// variables set to match everything) and of README.md, and wants each to
// parse and return at least one sample.
func checkExpressions(t *testing.T, prom promAPI) {
	t.Helper()
	type item struct{ where, expr string }
	var items []item
	d := loadDashboard(t)
	for _, p := range d.allPanels() {
		for _, q := range p.Targets {
			items = append(items, item{fmt.Sprintf("dashboard panel %q query %s", p.Title, q.RefID), grafanaVars.Replace(q.Expr)})
		}
	}
	readme := readmePromQL(t)
	if len(readme) == 0 {
		t.Errorf("README.md has no promql block")
	}
	for i, e := range readme {
		items = append(items, item{fmt.Sprintf("README.md promql expression %d", i+1), e})
	}
	deadline := time.Now().Add(45 * time.Second)
	for _, it := range items {
		for {
			n, err := prom.count(it.expr)
			if err != nil && strings.Contains(err.Error(), "bad_data") {
				t.Errorf("%s does not parse: %v\n%s", it.where, err, it.expr)
				break
			}
			if err == nil && n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s returns no data (%v):\n%s", it.where, err, it.expr)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// The dashboard's variables find values.
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		metric, label, ok := parseLabelValues(v.Definition)
		if !ok {
			t.Errorf("variable %s: cannot read %q as label_values(selector, label)", v.Name, v.Definition)
			continue
		}
		eventually(t, 20*time.Second, "variable "+v.Name+" has values", func() error {
			var vals []string
			if err := prom.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {grafanaVars.Replace(metric)}}, &vals); err != nil {
				return err
			}
			if len(vals) == 0 {
				return fmt.Errorf("no values of %s for %s", label, metric)
			}
			return nil
		})
	}
}

func parseLabelValues(def string) (selector, label string, ok bool) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(def), "label_values(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return "", "", false
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "", "", false
	}
	return strings.TrimSpace(inner[:i]), strings.TrimSpace(inner[i+1:]), true
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// hasLabels reports whether got has every label of want (an empty value
// wants the label absent).
func hasLabels(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// prometheusConfig is deploy/prometheus/prometheus.yml with the exporter's
// target and Alertmanager rewritten to the test's, and 1s intervals.
func prometheusConfig(t *testing.T, exporterAddr, amAddr string) []byte {
	t.Helper()
	var cfg map[string]any
	readYAML(t, deployPath(t, "prometheus", "prometheus.yml"), &cfg)
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		cfg["global"] = global
	}
	global["scrape_interval"], global["scrape_timeout"], global["evaluation_interval"] = "1s", "1s", "1s"
	if rf, _ := cfg["rule_files"].([]any); !slices.Contains(rf, any("alerts.yml")) {
		t.Fatalf("prometheus.yml's rule_files %v do not include alerts.yml", rf)
	}
	jobs := 0
	scs, _ := cfg["scrape_configs"].([]any)
	for _, sc := range scs {
		job, _ := sc.(map[string]any)
		if job["job_name"] != "peaka" {
			continue
		}
		jobs++
		job["scrape_interval"], job["scrape_timeout"] = "1s", "1s"
		static, _ := job["static_configs"].([]any)
		if len(static) != 1 {
			t.Fatalf("the peaka job has %d static_configs, want 1 to rewrite", len(static))
		}
		static[0].(map[string]any)["targets"] = []string{exporterAddr}
	}
	if jobs != 1 {
		t.Fatalf("prometheus.yml has %d jobs named peaka, want 1", jobs)
	}
	alerting, _ := cfg["alerting"].(map[string]any)
	ams, _ := alerting["alertmanagers"].([]any)
	if len(ams) != 1 {
		t.Fatalf("prometheus.yml has %d alertmanagers, want 1 to rewrite", len(ams))
	}
	ams[0].(map[string]any)["static_configs"] = []map[string]any{{"targets": []string{amAddr}}}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shortenedAlerts is deploy/prometheus/alerts.yml with every "for:" cut to
// 0s, so that the test need not wait minutes and alerts that become true
// together fire together (which the inhibition check relies on); the
// shipped file keeps the real durations. Expressions and thresholds are
// unchanged.
func shortenedAlerts(t *testing.T) []byte {
	t.Helper()
	var f map[string]any
	readYAML(t, deployPath(t, "prometheus", "alerts.yml"), &f)
	groups, _ := f["groups"].([]any)
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			rule := r.(map[string]any)
			if _, ok := rule["for"]; ok {
				rule["for"] = "0s"
			}
		}
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// alertmanagerConfig is deploy/alertmanager/alertmanager.yml with the same
// routes and inhibitions, 1s grouping, and every receiver replaced by a
// webhook to the test at /<receiver name>.
func alertmanagerConfig(t *testing.T, hookURL string) []byte {
	t.Helper()
	var cfg map[string]any
	readYAML(t, deployPath(t, "alertmanager", "alertmanager.yml"), &cfg)
	var shorten func(route map[string]any)
	shorten = func(route map[string]any) {
		for _, k := range []string{"group_wait", "group_interval"} {
			if _, ok := route[k]; ok {
				route[k] = "1s"
			}
		}
		children, _ := route["routes"].([]any)
		for _, c := range children {
			shorten(c.(map[string]any))
		}
	}
	route, _ := cfg["route"].(map[string]any)
	if route == nil {
		t.Fatal("alertmanager.yml has no route")
	}
	route["group_wait"], route["group_interval"] = "1s", "1s"
	shorten(route)
	receivers, _ := cfg["receivers"].([]any)
	for i, r := range receivers {
		name := r.(map[string]any)["name"].(string)
		receivers[i] = map[string]any{"name": name, "webhook_configs": []map[string]any{{"url": hookURL + "/" + name, "send_resolved": true}}}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// promAPI is a client of Prometheus's HTTP API.
type promAPI struct{ base string }

func (p promAPI) get(path string, q url.Values, data any) error {
	u := p.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	code, body, err := httpGet(u)
	if err != nil {
		return err
	}
	var r struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

type promSample struct {
	Metric map[string]string
	Value  float64
}

func (p promAPI) query(expr string) ([]promSample, error) {
	var r struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &r); err != nil {
		return nil, err
	}
	parse := func(pair []any) (float64, error) {
		if len(pair) != 2 {
			return 0, fmt.Errorf("bad sample %v", pair)
		}
		s, _ := pair[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	switch r.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		}
		if err := json.Unmarshal(r.Result, &v); err != nil {
			return nil, err
		}
		out := make([]promSample, 0, len(v))
		for _, s := range v {
			f, err := parse(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, promSample{Metric: s.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var pair []any
		if err := json.Unmarshal(r.Result, &pair); err != nil {
			return nil, err
		}
		f, err := parse(pair)
		return []promSample{{Value: f}}, err
	}
	return nil, fmt.Errorf("%s: result type %s", expr, r.ResultType)
}

func (p promAPI) count(expr string) (int, error) {
	s, err := p.query(expr)
	return len(s), err
}

// expect checks that expr has exactly one sample of value want (within
// tolerance); a negative tolerance wants no sample at all.
func (p promAPI) expect(expr string, want, tolerance float64) error {
	s, err := p.query(expr)
	if err != nil {
		return err
	}
	if tolerance < 0 {
		if len(s) != 0 {
			return fmt.Errorf("%s: want no sample, got %v", expr, s)
		}
		return nil
	}
	if len(s) != 1 {
		return fmt.Errorf("%s: want one sample of %g, got %v", expr, want, s)
	}
	if math.Abs(s[0].Value-want) > tolerance {
		return fmt.Errorf("%s = %g, want %g", expr, s[0].Value, want)
	}
	return nil
}

// rulesHealthy checks that Prometheus runs every group and rule of the
// shipped file, each evaluated at least once and without error.
func (p promAPI) rulesHealthy(shipped ruleFile) error {
	var r struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name           string    `json:"name"`
				Health         string    `json:"health"`
				LastError      string    `json:"lastError"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", nil, &r); err != nil {
		return err
	}
	got := map[string]map[string]bool{}
	var problems []string
	for _, g := range r.Groups {
		got[g.Name] = map[string]bool{}
		for _, rule := range g.Rules {
			got[g.Name][rule.Name] = true
			if rule.Health != "ok" || rule.LastError != "" || rule.LastEvaluation.Year() < 2000 {
				problems = append(problems, fmt.Sprintf("%s/%s: health %q, last evaluation %s, error %q", g.Name, rule.Name, rule.Health, rule.LastEvaluation, rule.LastError))
			}
		}
	}
	for _, g := range shipped.Groups {
		if got[g.Name] == nil {
			problems = append(problems, "group "+g.Name+" not loaded")
			continue
		}
		for _, rule := range g.Rules {
			if name := rule.Alert + rule.Record; !got[g.Name][name] {
				problems = append(problems, "rule "+g.Name+"/"+name+" not loaded")
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

func (p promAPI) alerts() ([]promAlert, error) {
	var r struct {
		Alerts []promAlert `json:"alerts"`
	}
	err := p.get("/api/v1/alerts", nil, &r)
	return r.Alerts, err
}

// findAlert returns the active alert of that name whose labels include
// labels (an empty value: the label is absent), in that state ("" any).
func findAlert(alerts []promAlert, state, name string, labels map[string]string) *promAlert {
	for i, a := range alerts {
		if a.Labels["alertname"] == name && (state == "" || a.State == state) && hasLabels(a.Labels, labels) {
			return &alerts[i]
		}
	}
	return nil
}

func alertNames(alerts []promAlert) []string {
	var out []string
	for _, a := range alerts {
		id := a.Labels["cache_id"] + a.Labels["export_id"]
		if id == "" {
			id = a.Labels["project_id"] + a.Labels["reason"]
		}
		out = append(out, fmt.Sprintf("%s{%s}:%s", a.Labels["alertname"], id, a.State))
	}
	sort.Strings(out)
	return out
}

// webhook records Alertmanager's notifications.
type webhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []webhookNotification
}

type webhookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

type webhookNotification struct {
	Receiver string         `json:"receiver"`
	Status   string         `json:"status"`
	Alerts   []webhookAlert `json:"alerts"`
	path     string
}

func newWebhook(t *testing.T) *webhook {
	h := &webhook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n webhookNotification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n.path = r.URL.Path
		h.mu.Lock()
		h.got = append(h.got, n)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// find returns the first notification with an alert in that status whose
// labels include labels.
func (h *webhook) find(status string, labels map[string]string) (webhookNotification, webhookAlert, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.got {
		for _, a := range n.Alerts {
			if a.Status == status && hasLabels(a.Labels, labels) {
				return n, a, true
			}
		}
	}
	return webhookNotification{}, webhookAlert{}, false
}

func (h *webhook) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var parts []string
	for _, n := range h.got {
		var as []string
		for _, a := range n.Alerts {
			as = append(as, a.Labels["alertname"]+"{"+a.Labels["cache_id"]+a.Labels["export_id"]+"}:"+a.Status)
		}
		parts = append(parts, fmt.Sprintf("%s %s %v", n.path, n.Status, as))
	}
	return fmt.Sprintf("%d notifications: %s", len(h.got), strings.Join(parts, "; "))
}
