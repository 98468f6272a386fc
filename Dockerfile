# syntax=docker/dockerfile:1
#
# Container image of peaka_exporter: a static binary on distroless, running
# as a non-root user. Build with version information:
#
#   docker build -t peaka_exporter \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD) .
#
# (or: make docker). Run with your configuration mounted over the default
# path:
#
#   docker run -p 10126:10126 \
#     -v $PWD/peaka_exporter.yml:/etc/peaka_exporter/peaka_exporter.yml:ro \
#     -e PEAKA_API_KEY peaka_exporter
#
# or try it without a Peaka account: docker run -p 10126:10126 peaka_exporter --demo

# The golang images build with GOTOOLCHAIN=local: the tag must provide at
# least the version go.mod's "go" line asks for.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so that they stay cached while the code changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_USER=docker
ARG BUILD_DATE=
RUN set -eu; \
    pkg=github.com/prometheus/common/version; \
    date="${BUILD_DATE:-$(date -u +%Y%m%d-%H:%M:%S)}"; \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w \
        -X ${pkg}.Version=${VERSION} \
        -X ${pkg}.Revision=${REVISION} \
        -X ${pkg}.Branch=${BRANCH} \
        -X ${pkg}.BuildUser=${BUILD_USER} \
        -X ${pkg}.BuildDate=${date}" \
      -o /out/peaka_exporter .

# distroless/static: CA certificates (for the HTTPS API), tzdata and
# /etc/passwd, nothing else; the nonroot user is 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/peaka_exporter /bin/peaka_exporter
USER 65532:65532
EXPOSE 10126
ENTRYPOINT ["/bin/peaka_exporter"]
CMD ["--config.file=/etc/peaka_exporter/peaka_exporter.yml"]
