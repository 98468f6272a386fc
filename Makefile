# Usual targets for peaka_exporter. Only `go` is needed for build and test;
# check-deploy and e2e also use Debian's prometheus and
# prometheus-alertmanager packages (promtool, amtool).

GO          ?= go
BINARY      ?= peaka_exporter
IMAGE       ?= ghcr.io/peakacom/peaka_exporter
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH      ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_USER  ?= $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILD_DATE  ?= $(shell date -u +%Y%m%d-%H:%M:%S)

VERSION_PKG := github.com/prometheus/common/version
LDFLAGS     := -s -w \
	-X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(BUILD_USER) \
	-X $(VERSION_PKG).BuildDate=$(BUILD_DATE)

.PHONY: all build test e2e lint check-deploy prometheusrule docker demo bench clean

all: lint test build

## build: a static binary with version information (./peaka_exporter --version)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) .

## test: every test, the end-to-end one included, with the race detector
test:
	$(GO) test -race ./...

## e2e: only the tests of deploy/ (exporter, Prometheus, Alertmanager), verbosely
e2e:
	$(GO) test -race -count=1 -v ./e2e/

## lint: gofmt, go vet, staticcheck
lint:
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

## check-deploy: promtool and amtool checks of deploy/
check-deploy:
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && promtool test rules alerts_test.yml
	amtool check-config deploy/alertmanager/alertmanager.yml

## prometheusrule: regenerate deploy/kubernetes/prometheusrule.yaml from deploy/prometheus/alerts.yml
prometheusrule:
	$(GO) test ./e2e/ -run '^TestPrometheusRuleMatchesAlerts$$' -update

## docker: the container image, with the same version information
docker:
	docker build -t $(IMAGE):$(VERSION) \
		--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		--build-arg BRANCH=$(BRANCH) --build-arg BUILD_USER=$(BUILD_USER) \
		--build-arg BUILD_DATE=$(BUILD_DATE) .

## demo: run against the built-in simulated Peaka API on :10126
demo: build
	./$(BINARY) --demo

# Scale figures of the real binary against the simulated API (see README,
# Performance), and the collector's Go benchmarks.
bench:
	go run ./bench -targets 100,1000,2000,10000
	go test ./collector -run '^$$' -bench 'ExporterWork|Scrape' -benchmem
	go test ./peaka -run '^$$' -bench DecodeCacheStatus -benchmem

clean:
	rm -f $(BINARY)
