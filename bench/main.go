// Command bench measures the real exporter binary against the simulated
// Peaka API with a fixed per-request latency, at several sizes, and prints
// scrape wall time against the ideal, the exporter's CPU per target, its
// peak RSS, upstream requests and TCP connections per scrape.
//
//	go run ./bench                      # 100, 1000 and 10000 targets, 20ms latency
//	go run ./bench -targets 2000 -latency 20ms -concurrency 16
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

const (
	benchKey = "bench-partner-key"
	// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
	// 100 on every Linux architecture Go supports.
	clockTicks = 100
)

type options struct {
	sizes       []int
	latency     time.Duration
	concurrency int
	scrapes     int
	actionLogs  bool
	exporter    string
}

func main() {
	var (
		o       options
		targets = flag.String("targets", "100,1000,10000", "comma-separated target counts (half caches, half exports)")
	)
	flag.DurationVar(&o.latency, "latency", 20*time.Millisecond, "latency the simulated API adds to every request")
	flag.IntVar(&o.concurrency, "concurrency", 16, "peaka.max_concurrency")
	flag.IntVar(&o.scrapes, "scrapes", 3, "measured scrapes per size (after one warm-up scrape)")
	flag.BoolVar(&o.actionLogs, "action-logs", true, "caches.action_logs")
	flag.StringVar(&o.exporter, "exporter", "", "exporter binary (default: build it)")
	flag.Parse()
	for _, s := range strings.Split(*targets, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			fatalf("bad -targets %q", s)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.exporter == "" {
		dir, err := os.MkdirTemp("", "peaka-bench")
		if err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(dir)
		o.exporter = filepath.Join(dir, "peaka_exporter")
		build := exec.Command("go", "build", "-o", o.exporter, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fatalf("building the exporter: %v", err)
		}
	}

	fmt.Printf("latency %v, max_concurrency %d, action_logs %v, %d measured scrapes per size\n\n",
		o.latency, o.concurrency, o.actionLogs, o.scrapes)
	fmt.Println("| targets | requests/scrape | ideal | wall time | wall/ideal | floor/ideal | CPU/target | peak RSS | new TCP conns/scrape |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, n := range o.sizes {
		r, err := run(n, o)
		if err != nil {
			fatalf("%d targets: %v", n, err)
		}
		fmt.Printf("| %d | %.0f | %v | %v | %.2f | %.2f | %.1f µs | %.1f MiB | %.1f |\n",
			n, r.requests, r.ideal.Round(time.Millisecond), r.wall.Round(time.Millisecond), float64(r.wall)/float64(r.ideal),
			float64(r.floor)/float64(r.ideal), r.cpuPerTarget.Seconds()*1e6, float64(r.peakRSS)/(1<<20), r.conns)
	}
	fmt.Println("\nfloor: the same requests made by a client that only reads the answers (no decoding, no")
	fmt.Println("exposition), right after each scrape: what the host and the simulated API allow at that moment.")
}

type result struct {
	requests     float64 // upstream requests per scrape
	ideal, wall  time.Duration
	floor        time.Duration // wall time of the bare client (bareClient)
	cpuPerTarget time.Duration
	peakRSS      int64
	conns        float64
}

func run(n int, o options) (result, error) {
	sim := peakatest.New(peakatest.Options{Seed: 1})
	defer sim.Close()
	sim.AddPartnerKey(benchKey, "bench-user")
	sim.AddProject(peakatest.Project{ID: "bench"})
	caches, exports := n/2, n-n/2
	var cacheIDs, exportIDs []string
	for i := range caches {
		id := fmt.Sprintf("cache-%05d", i)
		cacheIDs = append(cacheIDs, id)
		sim.AddCache("bench", peakatest.Cache{ID: id, CatalogID: "367189801096446904", SchemaName: "public", TableName: "table_" + id})
		sim.RunExecution("bench", id, peakatest.FullRefresh, "COMPLETED", peakatest.Records{Cached: 100000, Inserted: 100000})
		sim.RunExecution("bench", id, peakatest.Incremental, "COMPLETED", peakatest.Records{Cached: 100100, Inserted: 100, Updated: 7})
	}
	for i := range exports {
		id := fmt.Sprintf("export-%05d", i)
		exportIDs = append(exportIDs, id)
		sim.AddExport("bench", peakatest.Export{ID: id, Format: "CSV", Rows: 1000, Bytes: 50000, Files: 1,
			UserID: "bench-user", CreatedAt: sim.Now().Add(-time.Hour), QueryID: "709922802836177297", Source: `peaka.query."v"`})
	}

	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(o.latency):
		case <-r.Context().Done():
			return
		}
		sim.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	dir, err := os.MkdirTemp("", "peaka-bench-run")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf("peaka:\n  url: %s\n  api_key: %s\n  timeout: 10m\n  max_concurrency: %d\nprojects:\n  - id: bench\n    caches:\n      action_logs: %v\n      ids: [%s]\n    exports:\n      ids: [%s]\n",
		srv.URL, benchKey, o.concurrency, o.actionLogs, strings.Join(cacheIDs, ", "), strings.Join(exportIDs, ", "))
	cfgPath := filepath.Join(dir, "bench.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return result{}, err
	}

	// Info level: the listen address is logged there.
	cmd := exec.Command(o.exporter, "--config.file="+cfgPath, "--web.listen-address=127.0.0.1:0", "--log.level=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr, err := listenAddress(stderr)
	if err != nil {
		return result{}, err
	}
	client := &http.Client{Timeout: 11 * time.Minute}
	scrape := func() error { return get(client, "http://"+addr+"/metrics", "") }
	// The warm-up scrape also reads every cache's settings and meets each
	// cache for the first time; steady state is what the rest measure.
	if err := scrape(); err != nil {
		return result{}, err
	}
	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	paths := []string{"/data/projects/bench/cache/status"}
	for _, id := range exportIDs {
		paths = append(paths, "/data/projects/bench/exports/"+id)
	}
	bare := newBareClient(srv.URL, paths, o.concurrency)
	defer bare.close()
	if _, err := bare.round(); err != nil { // warm-up: its connections
		return result{}, fmt.Errorf("bare client: %w", err)
	}
	// Each scrape is followed by a round of the bare client, so that the
	// two see the host in the same state; the bare client's requests are
	// left out of the exporter's counts by reading those first.
	var wall, floor time.Duration
	var requests, newConns int64
	for range o.scrapes {
		req0, conn0 := sim.TotalRequests(), conns.Load()
		start := time.Now()
		if err := scrape(); err != nil {
			return result{}, err
		}
		wall += time.Since(start)
		requests += int64(sim.TotalRequests() - req0)
		newConns += conns.Load() - conn0
		d, err := bare.round()
		if err != nil {
			return result{}, fmt.Errorf("bare client: %w", err)
		}
		floor += d
	}
	cpu1, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	rss, err := peakRSS(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	scrapes := float64(o.scrapes)
	r := result{
		requests:     float64(requests) / scrapes,
		wall:         time.Duration(float64(wall) / scrapes),
		floor:        time.Duration(float64(floor) / scrapes),
		cpuPerTarget: time.Duration(float64(cpu1-cpu0) / scrapes / float64(n)),
		peakRSS:      rss,
		conns:        float64(newConns) / scrapes,
	}
	r.ideal = time.Duration(math.Ceil(r.requests/float64(o.concurrency))) * o.latency
	return r, nil
}

// bareClient makes the requests of one scrape (the project's cache list
// and every export) with as many workers as the exporter's
// max_concurrency, reading each answer and nothing more: the least a
// scrape of these targets can take on this host, against this simulated
// API, at that moment.
type bareClient struct {
	base    string
	paths   []string
	workers int
	tr      *http.Transport
	client  *http.Client
}

func newBareClient(base string, paths []string, workers int) *bareClient {
	tr := &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers}
	return &bareClient{base: base, paths: paths, workers: workers, tr: tr, client: &http.Client{Transport: tr}}
}

func (b *bareClient) close() { b.tr.CloseIdleConnections() }

// round makes every request once and returns the wall time it took.
func (b *bareClient) round() (time.Duration, error) {
	start := time.Now()
	next := make(chan string)
	errs := make(chan error, b.workers)
	for range b.workers {
		go func() {
			var err error
			for p := range next {
				if err == nil {
					err = get(b.client, b.base+p, benchKey)
				}
			}
			errs <- err
		}()
	}
	for _, p := range b.paths {
		next <- p
	}
	close(next)
	var all []error
	for range b.workers {
		all = append(all, <-errs)
	}
	return time.Since(start), errors.Join(all...)
}

// get reads u's answer to its end, with key as bearer token if not empty,
// and fails unless it is a 200.
func get(client *http.Client, u, key string) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", u, resp.Status)
	}
	return nil
}

var listenRE = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

func listenAddress(stderr io.Reader) (string, error) {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case a := <-found:
		return a, nil
	case <-ctx.Done():
		return "", errors.New("the exporter did not log its listen address within 30s")
	}
}

// cpuTime is the user plus system CPU time of a process so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces; fields after it are
	// counted from its closing parenthesis.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// peakRSS is a process's high-water resident set size (VmHWM).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}
