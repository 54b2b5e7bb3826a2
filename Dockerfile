# syntax=docker/dockerfile:1
# Both binaries in one small image: healthdns (the CoreDNS build) and
# healthdns-agent, static, on distroless, as the nonroot user (65532).
# DNS listens on 1053 in the container (no privileged port, no capability);
# the Helm chart's Service maps 53 to it.
#
#   make image                                  # both images, with version, commit and date
#   docker build -t healthdns .                 # the server image without them
#   docker build --target agent -t healthdns-agent .
#
# The build stage runs on the build machine and cross-compiles for the
# target platform, so a multi-platform build needs no emulation.
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS TARGETARCH
ARG VERSION="" COMMIT="" DATE=""
ENV CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOFLAGS=-trimpath
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN pkg=github.com/healthdns/healthdns/plugin/healthdns/version && \
    go build -buildvcs=false -o /out/ \
      -ldflags "-s -w -X $pkg.version=$VERSION -X $pkg.commit=$COMMIT -X $pkg.date=$DATE -X github.com/coredns/coredns/coremain.GitCommit=$COMMIT" \
      ./cmd/healthdns ./cmd/healthdns-agent && \
    mkdir -p /out/data

# The walk-through's test backend, for docker-compose.yml only
# (build target "backend"); it is not in the release image.
FROM build AS backend-build
RUN go build -o /out/backend ./test/backend

FROM gcr.io/distroless/static-debian12:nonroot AS backend
COPY --from=backend-build /out/backend /usr/local/bin/backend
ENTRYPOINT ["/usr/local/bin/backend"]

# The agent image (target "agent", pushed as healthdns-agent): the same
# files with healthdns-agent as the entrypoint, for charts that can set a
# container's args but not its command, as ExternalDNS's does for its
# webhook sidecar.
FROM gcr.io/distroless/static-debian12:nonroot AS agent
COPY --from=build /out/healthdns /out/healthdns-agent /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /var/lib/healthdns
USER 65532:65532
EXPOSE 7946/udp 7946/tcp 8054/tcp 8080/tcp
ENTRYPOINT ["/usr/local/bin/healthdns-agent"]

# The release image: the last stage, so the default target.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/healthdns /out/healthdns-agent /usr/local/bin/
COPY zones /etc/healthdns/zones
# The record store's directory (a volume in Kubernetes), owned by nonroot.
COPY --from=build --chown=65532:65532 /out/data /var/lib/healthdns
WORKDIR /etc/healthdns
USER 65532:65532
EXPOSE 1053/udp 1053/tcp 7946/udp 7946/tcp 8053/tcp 8080/tcp 8181/tcp 9153/tcp
ENTRYPOINT ["/usr/local/bin/healthdns"]
