package main

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/peakacom/peaka_exporter/config"
)

type webOptions struct {
	metricsPath string
	metrics     http.Handler
	probe       http.Handler // /probe?project=ID
	discovery   http.Handler // /discovery, Prometheus HTTP SD
	config      func() *config.Config
	reload      func() error // loads the configuration file again
	logger      log.Logger
}

// maxRequestBodyBytes bounds what a client may send: no endpoint reads a
// body, so anything larger is refused (413) and what is sent is never read
// past this.
const maxRequestBodyBytes = 64 << 10

// reservedPaths are served by the exporter itself; the metrics path must be
// none of them.
var reservedPaths = []string{"/", "/config", "/probe", "/discovery", "/-/healthy", "/-/ready", "/-/reload"}

// checkMetricsPath refuses a --web.telemetry-path that the mux would read
// as a pattern (wildcards, a method or host) or that shadows another
// endpoint.
func checkMetricsPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("--web.telemetry-path %q must start with /", p)
	case strings.ContainsAny(p, "{} \t\r\n"):
		return fmt.Errorf("--web.telemetry-path %q must not contain braces or white space", p)
	case slices.Contains(reservedPaths, p):
		return fmt.Errorf("--web.telemetry-path %q is taken by another endpoint", p)
	}
	return nil
}

// harden wraps the exporter's handler: request bodies are limited. (The
// scrape handlers check the scrape timeout header themselves.)
func harden(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxRequestBodyBytes {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func newMux(o webOptions) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(o.metricsPath, o.metrics)
	mux.Handle("/probe", o.probe)
	mux.Handle("/discovery", o.discovery)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Healthy\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Ready\n"))
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		if err := o.reload(); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("Reloaded\n"))
	})
	mux.HandleFunc("/config", func(w http.ResponseWriter, _ *http.Request) {
		b, err := o.config().Marshal()
		if err != nil {
			level.Error(o.logger).Log("msg", "marshalling configuration", "err", err)
			http.Error(w, "failed to marshal config", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		err := landingPage.Execute(w, landingData{
			Version:     version.Info(),
			MetricsPath: o.metricsPath,
			Projects:    o.config().Projects,
		})
		if err != nil {
			level.Error(o.logger).Log("msg", "rendering landing page", "err", err)
		}
	})
	return mux
}

type landingData struct {
	Version     string
	MetricsPath string
	Projects    []config.Project
}

var landingPage = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Peaka Exporter</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style>
</head>
<body>
<h1>Peaka Exporter</h1>
<p>Prometheus exporter for Peaka caches and export jobs. Version: {{.Version}}</p>
<ul>
<li><a href="{{.MetricsPath}}">Metrics</a> (reads the Peaka API on every request)</li>
<li><a href="config">Configuration</a> (secrets hidden)</li>
<li><a href="discovery">Discovery</a>: one <code>/probe?project=ID</code> target per project, for Prometheus HTTP service discovery</li>
<li><a href="-/healthy">Health</a>, <a href="-/ready">Readiness</a></li>
</ul>
<h2>Configured projects</h2>
<table>
<tr><th>Project</th><th>Named caches</th><th>All caches</th><th>Named exports</th><th>Recent exports</th></tr>
{{range .Projects}}<tr><td>{{.ID}}</td><td>{{len .Caches.IDs}}</td><td>{{.Caches.All}}</td><td>{{len .Exports.IDs}}</td><td>{{if .Exports.Recent}}{{.Exports.Recent}}{{else}}off{{end}}</td></tr>
{{end}}</table>
</body>
</html>
`))
