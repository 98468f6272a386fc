// Command peaka_exporter exposes the state of Peaka caches and export jobs
// to Prometheus, reading the Peaka API on every scrape.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/peakacom/peaka_exporter/collector"
	"github.com/peakacom/peaka_exporter/config"
)

const exporterName = "peaka_exporter"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	app := kingpin.New(exporterName, "Prometheus exporter for Peaka caches and export jobs.")
	var (
		configFile    = app.Flag("config.file", "Peaka exporter configuration file.").Default("peaka_exporter.yml").String()
		configCheck   = app.Flag("config.check", "Validate the configuration file and exit (0: valid, 1: invalid) without calling the Peaka API.").Bool()
		metricsPath   = app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		timeoutOffset = app.Flag("scrape.timeout-offset", "Subtracted from Prometheus's scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) to leave time to write the answer.").Default("0.5s").Duration()
		logLevel      = app.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error]").Default("info").Enum("debug", "info", "warn", "error")
		logFormat     = app.Flag("log.format", "Output format of log messages. One of: [logfmt, json]").Default("logfmt").Enum("logfmt", "json")
		demo          = app.Flag("demo", "Run against a built-in simulation of the Peaka API (no account needed); --config.file is ignored.").Bool()
		toolkitFlags  = kingpinflag.AddFlags(app, ":10126")
	)
	if version.Version == "" {
		// Release builds set it with -ldflags; say plainly when they did not.
		version.Version = "dev"
	}
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", exporterName, err)
		return 1
	}
	logger := newLogger(stderr, *logLevel, *logFormat)
	if err := checkMetricsPath(*metricsPath); err != nil {
		level.Error(logger).Log("msg", "invalid flag", "err", err)
		return 1
	}

	if *configCheck {
		if _, err := config.Load(*configFile); err != nil {
			level.Error(logger).Log("msg", "invalid configuration", "err", err)
			return 1
		}
		level.Info(logger).Log("msg", "configuration is valid", "file", *configFile)
		return 0
	}

	level.Info(logger).Log("msg", "starting "+exporterName, "version", version.Info(), "build_context", version.BuildContext())
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector(exporterName),
	)
	sc := config.NewSafeConfig(reg)
	reload := func() error { return sc.Reload(*configFile) }
	var now func() time.Time
	if *demo {
		d, err := startDemo()
		if err != nil {
			level.Error(logger).Log("msg", "starting the demo", "err", err)
			return 1
		}
		defer d.Close()
		sc.Set(d.config)
		now = d.sim.Now
		reload = func() error {
			level.Info(logger).Log("msg", "demo mode: the configuration is built in, nothing to reload")
			return nil
		}
		level.Warn(logger).Log("msg", "DEMO MODE: the Peaka API is a simulation running in this process on "+d.url+"; no real data is read")
	} else if err := reload(); err != nil {
		level.Error(logger).Log("msg", "loading configuration", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "loaded configuration", "projects", len(sc.Get().Projects))

	exp, err := collector.New(reg, collector.Options{
		Logger:    logger,
		UserAgent: exporterName + "/" + version.Version,
		Now:       now,
	})
	if err != nil {
		level.Error(logger).Log("msg", "creating the collector", "err", err)
		return 1
	}

	// Shutting down cancels the scrapes under way, which then answer with
	// what they have instead of holding the shutdown up.
	baseCtx, stopRequests := context.WithCancel(context.Background())
	defer stopRequests()
	srv := &http.Server{
		BaseContext: func(net.Listener) context.Context { return baseCtx },
		Handler: harden(newMux(webOptions{
			metricsPath: *metricsPath,
			metrics:     exp.Handler(sc.Get, reg, *timeoutOffset),
			probe:       exp.ProbeHandler(sc.Get, *timeoutOffset),
			discovery:   exp.DiscoveryHandler(sc.Get),
			config:      sc.Get,
			// SafeConfig serialises reloads, from HTTP and SIGHUP alike.
			reload: func() error { return logReload(logger, reload()) },
			logger: logger,
		})),
		// Slow clients cannot hold a connection open: headers within 10s,
		// the whole request within 30s, an idle keep-alive for 2m.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long enough for the longest scrape a configuration allows to
		// finish writing; peaka.timeout is capped below it.
		WriteTimeout:   config.MaxTimeout + time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(srv, toolkitFlags, logger) }()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(signals)
	for {
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				level.Error(logger).Log("msg", "serving HTTP", "err", err)
				return 1
			}
			return 0
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_ = logReload(logger, reload())
				continue
			}
			level.Info(logger).Log("msg", "shutting down", "signal", sig)
			stopRequests()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				level.Error(logger).Log("msg", "shutting down", "err", err)
				return 1
			}
			return 0
		}
	}
}

func logReload(logger log.Logger, err error) error {
	if err != nil {
		level.Error(logger).Log("msg", "reloading configuration failed; the previous one stays in use", "err", err)
		return err
	}
	level.Info(logger).Log("msg", "reloaded configuration")
	return nil
}

func newLogger(w io.Writer, lvl, format string) log.Logger {
	var l log.Logger
	if format == "json" {
		l = log.NewJSONLogger(log.NewSyncWriter(w))
	} else {
		l = log.NewLogfmtLogger(log.NewSyncWriter(w))
	}
	l = level.NewFilter(l, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	return log.With(l, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)
}
