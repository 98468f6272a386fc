package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite deploy/kubernetes/prometheusrule.yaml from deploy/prometheus/alerts.yml")

// runTool runs a command and fails the test with its output when it exits
// non-zero.
func runTool(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckConfig(t *testing.T) {
	promtool := needTool(t, "prometheus", "promtool")
	runTool(t, deployPath(t, "prometheus"), promtool, "check", "config", "prometheus.yml")
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := needTool(t, "prometheus", "promtool")
	out := runTool(t, deployPath(t, "prometheus"), promtool, "check", "rules", "alerts.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules: %s", out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := needTool(t, "prometheus", "promtool")
	runTool(t, deployPath(t, "prometheus"), promtool, "test", "rules", "alerts_test.yml")
}

func TestAmtoolCheckConfig(t *testing.T) {
	amtool := needTool(t, "prometheus-alertmanager", "amtool")
	runTool(t, deployPath(t, "alertmanager"), amtool, "check-config", "alertmanager.yml")
}

// ruleFile is the part of a Prometheus rule file the tests look at.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func (f ruleFile) alerts() []string {
	var names []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	return names
}

// TestAlertConventions checks what promtool does not: the monitoring-mixins
// conventions, and the alerts the issue asks for.
func TestAlertConventions(t *testing.T) {
	var f ruleFile
	readYAML(t, deployPath(t, "prometheus", "alerts.yml"), &f)
	nameRE := regexp.MustCompile(`^Peaka([A-Z][a-z0-9]*|API)+$`)
	seen := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				if !strings.HasPrefix(r.Record, "peaka:") {
					t.Errorf("recording rule %q: want a peaka: prefix", r.Record)
				}
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if !nameRE.MatchString(r.Alert) {
				t.Errorf("alert %s: want a CamelCase name with the Peaka prefix", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
			// An alert about a project, cache or export names it in both
			// annotations.
			var names []string
			switch {
			case strings.HasPrefix(r.Alert, "PeakaCache"):
				names = []string{"project_id", "cache_id"}
			case strings.HasPrefix(r.Alert, "PeakaExport") && !strings.HasPrefix(r.Alert, "PeakaExporter"):
				names = []string{"project_id", "export_id"}
			case strings.HasPrefix(r.Alert, "PeakaProject"):
				names = []string{"project_id"}
			}
			for _, l := range names {
				for _, a := range []string{"summary", "description"} {
					if !strings.Contains(r.Annotations[a], "$labels."+l) {
						t.Errorf("alert %s: its %s does not name the %s", r.Alert, a, l)
					}
				}
			}
		}
	}
	for _, want := range []string{
		"PeakaExporterDown", "PeakaProjectDown", "PeakaAPIKeyRejected", "PeakaCacheFailed",
		"PeakaCacheExecutionFailed", "PeakaCacheStale", "PeakaCacheExecutionStuck", "PeakaExportFailed",
		"PeakaAPIRateLimited", "PeakaExporterScrapeNearTimeout",
	} {
		if !seen[want] {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
}

// TestAlertTestsCoverEveryAlert checks that alerts_test.yml has, for every
// alert, a case where it fires and one where it must not.
func TestAlertTestsCoverEveryAlert(t *testing.T) {
	var rules ruleFile
	readYAML(t, deployPath(t, "prometheus", "alerts.yml"), &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, deployPath(t, "prometheus", "alerts_test.yml"), &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, a := range rules.alerts() {
		if !fires[a] {
			t.Errorf("alerts_test.yml never expects %s to fire", a)
		}
		if !quiet[a] {
			t.Errorf("alerts_test.yml never expects %s to stay quiet", a)
		}
	}
}

// TestPromtoolCheckMetrics runs promtool check metrics on what the real
// binary serves in demo mode.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := needTool(t, "prometheus", "promtool")
	p := startProcess(t, "exporter", exporterBinary(t), "--demo", "--web.listen-address=127.0.0.1:0")
	code, body, err := httpGet("http://" + p.addr + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	if !bytes.Contains(body, []byte("peaka_cache_up{")) || !bytes.Contains(body, []byte("peaka_export_up{")) {
		t.Fatalf("the demo's /metrics has no caches or exports:\n%s", body)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// prometheusRule renders deploy/kubernetes/prometheusrule.yaml from
// alerts.yml: its groups, comments included, under spec.
func prometheusRule(alerts []byte) ([]byte, error) {
	text := string(alerts)
	i := strings.Index(text, "\ngroups:\n")
	if i < 0 {
		return nil, fmt.Errorf("alerts.yml has no top-level groups: line")
	}
	var b strings.Builder
	b.WriteString(`# Generated from deploy/prometheus/alerts.yml by "make prometheusrule"; do not
# edit: change alerts.yml and run it again. A test fails when they differ.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: peaka-exporter
  labels:
    app.kubernetes.io/name: peaka-exporter
    app.kubernetes.io/component: exporter
spec:
`)
	for _, line := range strings.SplitAfter(text[i+1:], "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return []byte(b.String()), nil
}

// TestPrometheusRuleMatchesAlerts keeps the Prometheus Operator's rule
// identical to alerts.yml: the file must be what prometheusRule renders,
// and its groups must parse to the same rules. -update rewrites it.
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	alertsPath := deployPath(t, "prometheus", "alerts.yml")
	rulePath := deployPath(t, "kubernetes", "prometheusrule.yaml")
	want, err := prometheusRule(readFile(t, alertsPath))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		writeFile(t, rulePath, want)
	}
	got := readFile(t, rulePath)
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not up to date with %s: run make prometheusrule (go test ./e2e -run TestPrometheusRuleMatchesAlerts -update)", rulePath, alertsPath)
	}

	var alerts struct {
		Groups any `yaml:"groups"`
	}
	readYAML(t, alertsPath, &alerts)
	var rule struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Groups any `yaml:"groups"`
		} `yaml:"spec"`
	}
	readYAML(t, rulePath, &rule)
	if rule.APIVersion != "monitoring.coreos.com/v1" || rule.Kind != "PrometheusRule" {
		t.Errorf("prometheusrule.yaml: %s %s", rule.APIVersion, rule.Kind)
	}
	if alerts.Groups == nil || !reflect.DeepEqual(alerts.Groups, rule.Spec.Groups) {
		t.Errorf("the PrometheusRule's groups differ from alerts.yml's")
	}
}

// k8sObject is the part of a Kubernetes object the manifest test reads.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
	file       string
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type deploymentSpec struct {
	Replicas int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			SecurityContext struct {
				RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				RunAsUser    *int  `yaml:"runAsUser"`
			} `yaml:"securityContext"`
			Containers []struct {
				Name  string   `yaml:"name"`
				Image string   `yaml:"image"`
				Args  []string `yaml:"args"`
				Ports []struct {
					Name          string `yaml:"name"`
					ContainerPort int    `yaml:"containerPort"`
				} `yaml:"ports"`
				LivenessProbe  probe `yaml:"livenessProbe"`
				ReadinessProbe probe `yaml:"readinessProbe"`
				Resources      struct {
					Requests map[string]string `yaml:"requests"`
				} `yaml:"resources"`
				SecurityContext struct {
					ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
					AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
				} `yaml:"securityContext"`
				VolumeMounts []struct {
					Name      string `yaml:"name"`
					MountPath string `yaml:"mountPath"`
				} `yaml:"volumeMounts"`
			} `yaml:"containers"`
			Volumes []struct {
				Name      string `yaml:"name"`
				ConfigMap *struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
				Secret *struct {
					SecretName string `yaml:"secretName"`
				} `yaml:"secret"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort any    `yaml:"targetPort"`
	} `yaml:"ports"`
}

type serviceMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Endpoints []struct {
		Port          string `yaml:"port"`
		Path          string `yaml:"path"`
		Interval      string `yaml:"interval"`
		ScrapeTimeout string `yaml:"scrapeTimeout"`
		Relabelings   []struct {
			Action      string `yaml:"action"`
			TargetLabel string `yaml:"targetLabel"`
			Replacement string `yaml:"replacement"`
		} `yaml:"relabelings"`
	} `yaml:"endpoints"`
}

func decodeSpec(t *testing.T, o *k8sObject, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s: %s %s spec: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
}

// loadKustomization reads the kustomization and every object of the files
// it lists.
func loadKustomization(t *testing.T) (resources []string, images []map[string]string, objects []*k8sObject) {
	dir := deployPath(t, "kubernetes")
	var k struct {
		Resources []string            `yaml:"resources"`
		Images    []map[string]string `yaml:"images"`
	}
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	for _, r := range k.Resources {
		dec := yaml.NewDecoder(bytes.NewReader(readFile(t, filepath.Join(dir, r))))
		for {
			o := &k8sObject{file: r}
			err := dec.Decode(o)
			if err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", r, err)
			}
			if o.Kind == "" {
				continue
			}
			objects = append(objects, o)
		}
	}
	return k.Resources, k.Images, objects
}

// TestKubernetesManifests checks that the manifests parse and refer to one
// another consistently: ports by name, labels, probe paths the exporter
// serves, the ConfigMap and Secret and where they are mounted, and the
// configuration's key file.
func TestKubernetesManifests(t *testing.T) {
	dir := deployPath(t, "kubernetes")
	resources, images, objects := loadKustomization(t)

	// The kustomization applies every manifest in the directory.
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Clone(resources)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, want every manifest of the directory %v", got, want)
	}

	byKind := map[string][]*k8sObject{}
	for _, o := range objects {
		byKind[o.Kind] = append(byKind[o.Kind], o)
		if o.APIVersion == "" || o.Metadata.Name == "" {
			t.Errorf("%s: %s without apiVersion or name", o.file, o.Kind)
		}
	}
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "Secret", "ServiceMonitor", "PrometheusRule"} {
		if len(byKind[kind]) != 1 {
			t.Fatalf("want one %s, have %d", kind, len(byKind[kind]))
		}
	}
	one := func(kind string) *k8sObject { return byKind[kind][0] }

	var dep deploymentSpec
	decodeSpec(t, one("Deployment"), &dep)
	podLabels := dep.Template.Metadata.Labels
	if len(dep.Selector.MatchLabels) == 0 || !subset(dep.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", dep.Selector.MatchLabels, podLabels)
	}
	if dep.Replicas != 1 {
		t.Errorf("Deployment replicas %d: more would multiply the API calls", dep.Replicas)
	}
	pod := dep.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("pod must run as non-root with a numeric user")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("container needs readOnlyRootFilesystem: true")
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("container needs allowPrivilegeEscalation: false")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("container needs cpu and memory requests, has %v", c.Resources.Requests)
	}
	image := strings.SplitN(c.Image, ":", 2)[0]
	if len(images) != 1 || images[0]["name"] != image {
		t.Errorf("kustomization images %v do not name the container's image %s", images, image)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 10126 || c.Ports[0].Name == "" {
		t.Fatalf("container ports %v: want one named port 10126, the exporter's default", c.Ports)
	}
	portName := c.Ports[0].Name
	for name, pr := range map[string]probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		wantPath := map[string]string{"liveness": "/-/healthy", "readiness": "/-/ready"}[name]
		if pr.HTTPGet == nil || pr.HTTPGet.Path != wantPath || fmt.Sprint(pr.HTTPGet.Port) != portName {
			t.Errorf("%s probe %+v: want GET %s on port %s", name, pr.HTTPGet, wantPath, portName)
		}
	}

	// The configuration file: --config.file is the ConfigMap's key under
	// its mount, and its api_key_file is the Secret's key under its mount.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	var cfgMount, secretMount string
	cm, sec := one("ConfigMap"), one("Secret")
	for _, v := range pod.Volumes {
		switch {
		case v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name:
			cfgMount = mounts[v.Name]
		case v.Secret != nil && v.Secret.SecretName == sec.Metadata.Name:
			secretMount = mounts[v.Name]
		}
	}
	if cfgMount == "" || secretMount == "" {
		t.Fatalf("ConfigMap %s or Secret %s is not mounted (mounts %v)", cm.Metadata.Name, sec.Metadata.Name, mounts)
	}
	if strings.HasPrefix(secretMount+"/", cfgMount+"/") || strings.HasPrefix(cfgMount+"/", secretMount+"/") {
		t.Errorf("ConfigMap (%s) and Secret (%s) mounts are nested", cfgMount, secretMount)
	}
	var cfgFile string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			cfgFile = v
		}
	}
	cfgKey, ok := strings.CutPrefix(cfgFile, cfgMount+"/")
	if !ok || cm.Data[cfgKey] == "" {
		t.Fatalf("--config.file=%s is not a key of ConfigMap %s mounted at %s", cfgFile, cm.Metadata.Name, cfgMount)
	}
	var cfg struct {
		Peaka struct {
			APIKeyFile string `yaml:"api_key_file"`
		} `yaml:"peaka"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data[cfgKey]), &cfg); err != nil {
		t.Fatalf("ConfigMap %s: %v", cfgKey, err)
	}
	keyName, ok := strings.CutPrefix(cfg.Peaka.APIKeyFile, secretMount+"/")
	if !ok || sec.StringData[keyName] == "" && sec.Data[keyName] == "" {
		t.Errorf("api_key_file %q is not a key of Secret %s mounted at %s", cfg.Peaka.APIKeyFile, sec.Metadata.Name, secretMount)
	}

	// The configuration is valid: the exporter's own check, with the key
	// file where the Secret would put it.
	t.Run("config.check", func(t *testing.T) {
		tmp := t.TempDir()
		writeFile(t, filepath.Join(tmp, "api-key"), []byte("k8s-test-key"))
		text := strings.ReplaceAll(cm.Data[cfgKey], cfg.Peaka.APIKeyFile, filepath.Join(tmp, "api-key"))
		writeFile(t, filepath.Join(tmp, cfgKey), []byte(text))
		out, err := exec.Command(exporterBinary(t), "--config.file="+filepath.Join(tmp, cfgKey), "--config.check").CombinedOutput()
		if err != nil {
			t.Errorf("the ConfigMap's configuration is invalid: %v\n%s", err, out)
		}
	})

	var svc serviceSpec
	decodeSpec(t, one("Service"), &svc)
	if len(svc.Selector) == 0 || !subset(svc.Selector, podLabels) {
		t.Errorf("Service selector %v does not select the pod labels %v", svc.Selector, podLabels)
	}
	if len(svc.Ports) != 1 || fmt.Sprint(svc.Ports[0].TargetPort) != portName || svc.Ports[0].Name == "" {
		t.Fatalf("Service ports %+v: want one named port with targetPort %s", svc.Ports, portName)
	}

	var sm serviceMonitorSpec
	decodeSpec(t, one("ServiceMonitor"), &sm)
	if len(sm.Selector.MatchLabels) == 0 || !subset(sm.Selector.MatchLabels, one("Service").Metadata.Labels) {
		t.Errorf("ServiceMonitor selector %v does not select the Service's labels %v", sm.Selector.MatchLabels, one("Service").Metadata.Labels)
	}
	if len(sm.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints: %+v", sm.Endpoints)
	}
	ep := sm.Endpoints[0]
	if ep.Port != svc.Ports[0].Name || ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %s%s: want the Service's port %s and /metrics", ep.Port, ep.Path, svc.Ports[0].Name)
	}
	// The same scrape settings and job name as prometheus.yml, which the
	// alerts rely on.
	job := peakaJob(t)
	if ep.Interval != job.ScrapeInterval || ep.ScrapeTimeout != job.ScrapeTimeout {
		t.Errorf("ServiceMonitor interval/timeout %s/%s differ from prometheus.yml's %s/%s", ep.Interval, ep.ScrapeTimeout, job.ScrapeInterval, job.ScrapeTimeout)
	}
	jobOK := false
	for _, r := range ep.Relabelings {
		jobOK = jobOK || r.TargetLabel == "job" && r.Replacement == job.JobName && (r.Action == "" || r.Action == "replace")
	}
	if !jobOK {
		t.Errorf("ServiceMonitor does not set job=%q, which the alerts select", job.JobName)
	}

	for _, o := range objects {
		if !subset(map[string]string{"app.kubernetes.io/name": podLabels["app.kubernetes.io/name"]}, o.Metadata.Labels) {
			t.Errorf("%s %s lacks the label app.kubernetes.io/name=%s", o.Kind, o.Metadata.Name, podLabels["app.kubernetes.io/name"])
		}
	}
}

// TestKustomizeBuild renders the kustomization with kubectl or kustomize
// when one is installed (Debian's CI image has neither, so this one skips
// there even under CI=true).
func TestKustomizeBuild(t *testing.T) {
	var args []string
	if p, err := exec.LookPath("kustomize"); err == nil {
		args = []string{p, "build"}
	} else if p, err := exec.LookPath("kubectl"); err == nil {
		args = []string{p, "kustomize"}
	} else {
		t.Skip("neither kustomize nor kubectl on PATH")
	}
	out := runTool(t, repoRoot(t), args[0], append(args[1:], filepath.Join("deploy", "kubernetes"))...)
	for _, kind := range []string{"ConfigMap", "Secret", "Service", "Deployment", "ServiceMonitor", "PrometheusRule"} {
		if !strings.Contains(out, "\nkind: "+kind+"\n") {
			t.Errorf("kustomize output has no %s", kind)
		}
	}
}

func subset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

type scrapeJob struct {
	JobName        string `yaml:"job_name"`
	ScrapeInterval string `yaml:"scrape_interval"`
	ScrapeTimeout  string `yaml:"scrape_timeout"`
	StaticConfigs  []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
}

// peakaJob is the exporter's job in prometheus.yml.
func peakaJob(t *testing.T) scrapeJob {
	t.Helper()
	var cfg struct {
		ScrapeConfigs []scrapeJob `yaml:"scrape_configs"`
	}
	readYAML(t, deployPath(t, "prometheus", "prometheus.yml"), &cfg)
	for _, j := range cfg.ScrapeConfigs {
		if j.JobName == "peaka" {
			return j
		}
	}
	t.Fatal(`prometheus.yml has no job "peaka"`)
	return scrapeJob{}
}

// dashboard is the part of the Grafana dashboard the tests read.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	UID        string           `json:"uid"`
	Title      string           `json:"title"`
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(readFile(t, deployPath(t, "grafana", "peaka-exporter.json"))))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("peaka-exporter.json: %v", err)
	}
	return d
}

func (d dashboard) allPanels() []dashboardPanel {
	var out []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// TestDashboardIsImportReady checks the dashboard's shape: a datasource
// input and variable used by every query, the project and cache variables,
// unique panel ids, and the panels the issue asks for.
func TestDashboardIsImportReady(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a uid and a title")
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v: want one Prometheus datasource input", d.Inputs)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && !strings.Contains(string(v.Datasource), "${datasource}") {
			t.Errorf("variable %s does not query the datasource variable", v.Name)
		}
	}
	for name, typ := range map[string]string{"datasource": "datasource", "project": "query", "cache": "query"} {
		if vars[name] != typ {
			t.Errorf("want a %s variable %q, have %q", typ, name, vars[name])
		}
	}
	ids := map[int]bool{}
	types := map[string]bool{}
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		types[p.Type] = true
		if p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q has no size", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q does not use the datasource variable: %s", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" || !strings.Contains(string(q.Datasource), "${datasource}") {
				t.Errorf("panel %q: query %s is empty or not on the datasource variable", p.Title, q.RefID)
			}
		}
	}
	if !types["state-timeline"] {
		t.Errorf("the dashboard has no state timeline")
	}
	exprs := strings.Join(dashboardExprs(t, d), "\n")
	for _, m := range []string{
		"peaka_cache_status", "peaka_cache_executions_total", "peaka_cache_schedule_interval_seconds",
		"peaka_cache_records_total", "peaka_cache_execution_duration_seconds", "peaka_export_status",
		"peaka_export_rows", "peaka_export_size_bytes", "peaka_exporter_api_requests_total",
		"peaka_exporter_api_request_duration_seconds_bucket", "scrape_duration_seconds",
	} {
		if !strings.Contains(exprs, m) {
			t.Errorf("no panel charts %s", m)
		}
	}
}

func dashboardExprs(t *testing.T, d dashboard) []string {
	var out []string
	for _, p := range d.allPanels() {
		for _, q := range p.Targets {
			out = append(out, q.Expr)
		}
	}
	return out
}

// readmePromQL returns the expressions of README.md's promql blocks. An
// expression ends at a comment line, a blank line or the end of the block;
// it may span lines, whose continuations are indented (or close brackets
// still open), so a line starting in column 0 after a complete expression
// starts the next one.
func readmePromQL(t *testing.T) []string {
	t.Helper()
	return promQLBlocks(string(readFile(t, filepath.Join(repoRoot(t), "README.md"))))
}

func promQLBlocks(text string) []string {
	var out []string
	in := false
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(trimmed, "```promql"):
			in = true
		case in && strings.HasPrefix(trimmed, "```"):
			flush()
			in = false
		case in && (trimmed == "" || strings.HasPrefix(trimmed, "#")):
			flush()
		case in:
			if len(cur) > 0 && line == trimmed && bracketsClosed(strings.Join(cur, "\n")) {
				flush()
			}
			cur = append(cur, line)
		}
	}
	return out
}

// bracketsClosed reports whether every (, { and [ of a PromQL text outside
// quotes is closed.
func bracketsClosed(s string) bool {
	depth := 0
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case quote != 0 && r == '\\':
			escaped = true
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '{' || r == '[':
			depth++
		case r == ')' || r == '}' || r == ']':
			depth--
		}
	}
	return depth <= 0
}

// grafanaVars replaces the dashboard's variables with what "All" and
// Grafana's interval macros would give.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m",
	"${__rate_interval}", "1m",
	"$__interval", "15s",
	"${__interval}", "15s",
	"$__range", "1h",
	"${__range}", "1h",
	"${job}", ".*", "$job", ".*",
	"${project}", ".*", "$project", ".*",
	"${cache}", ".*", "$cache", ".*",
)

func TestPromQLBlocks(t *testing.T) {
	md := "text\n```promql\n# one\na == 1\nb == 1\n\n# two, on lines\nsum by (x) (\n  rate(c[5m])\n)\n  > 0\n" +
		"(d > 1)\n  unless on (x) e\n```\n\n```sh\nnot == promql\n```\n```promql\nf{g=\"(\"}\n```\n"
	got := promQLBlocks(md)
	want := []string{"a == 1", "b == 1", "sum by (x) (\n  rate(c[5m])\n)\n  > 0", "(d > 1)\n  unless on (x) e", `f{g="("}`}
	if !slices.Equal(got, want) {
		t.Errorf("promQLBlocks:\n got %q\nwant %q", got, want)
	}
}

func TestReadmePromQLFound(t *testing.T) {
	exprs := readmePromQL(t)
	if len(exprs) < 5 {
		t.Fatalf("found only %d expressions in README.md's promql blocks: %q", len(exprs), exprs)
	}
	for _, e := range exprs {
		if !bracketsClosed(e) {
			t.Errorf("unbalanced brackets in README PromQL: %s", e)
		}
	}
}
