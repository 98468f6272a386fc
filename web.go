package main

import (
	"html/template"
	"net/http"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/peakacom/peaka_exporter/config"
)

type webOptions struct {
	metricsPath string
	metrics     http.Handler
	config      func() *config.Config
	// reload asks the main loop to reload, so that HTTP and SIGHUP reloads
	// are serialised; the loop answers on the channel it is handed.
	reload chan chan error
	logger log.Logger
}

func newMux(o webOptions) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(o.metricsPath, o.metrics)
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
		done := make(chan error, 1)
		select {
		case o.reload <- done:
		case <-r.Context().Done():
			return
		}
		if err := <-done; err != nil {
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
