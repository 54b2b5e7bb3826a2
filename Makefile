# Builds, release archives, the image and the chart. `make release` needs
# only Go and git; `make image` needs Docker with buildx; `make chart` helm.
#
#   make build                  # bin/healthdns, bin/healthdns-agent for this machine
#   make release                # dist/: linux/amd64 and linux/arm64 archives, SHA256SUMS
#   make release VERSION=v0.1.0 # the same for a tag (default: git describe)
#   make image                  # $(IMAGE) and $(IMAGE)-agent :$(TAG), this machine's platform
#   make image PUSH=1           # both platforms, pushed
#   make chart                  # dist/healthdns-$(CHART_VERSION).tgz

VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
# The commit's time, not the build's: the same commit builds the same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DATE    ?= $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)

PLATFORMS ?= linux/amd64 linux/arm64
IMAGE     ?= ghcr.io/healthdns/healthdns
TAG       ?= $(VERSION:v%=%)
CHART_DIR := deploy/helm/healthdns

PKG     := github.com/healthdns/healthdns/plugin/healthdns/version
LDFLAGS := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).commit=$(COMMIT) -X $(PKG).date=$(DATE) \
	-X github.com/coredns/coredns/coremain.GitCommit=$(COMMIT)
# Static binaries that run on distroless and any Linux; no VCS stamp, the
# -ldflags say it all.
GOBUILD := CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)'

.PHONY: build release image chart test print-ldflags clean

build:
	$(GOBUILD) -o bin/ ./cmd/healthdns ./cmd/healthdns-agent

# One directory per platform with both binaries and the license, packed
# with fixed owners, order and times (so the checksums repeat), then one
# SHA256SUMS for all archives.
release:
	rm -rf dist && mkdir -p dist
	set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; name=healthdns_$(VERSION)_$${os}_$${arch}; \
		echo "== $$name"; \
		GOOS=$$os GOARCH=$$arch $(GOBUILD) -o dist/$$name/ ./cmd/healthdns ./cmd/healthdns-agent; \
		cp LICENSE README.md CHANGELOG.md dist/$$name/; \
		tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner --mode=a+rX,u+w,go-w \
			-C dist -cf - $$name | gzip -n -9 > dist/$$name.tar.gz; \
		rm -r dist/$$name; \
	done
	cd dist && sha256sum *.tar.gz > SHA256SUMS
	cat dist/SHA256SUMS

# Two images from the one Dockerfile: $(IMAGE) (entrypoint healthdns) and
# $(IMAGE)-agent (entrypoint healthdns-agent). Without PUSH, for this
# machine's platform only, loaded into the local Docker.
image:
	for target in release agent; do \
		docker buildx build $(if $(PUSH),--platform $(subst $(space),$(comma),$(PLATFORMS)) --push,--load) \
			--build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) \
			$$( [ $$target = agent ] && echo "--target agent -t $(IMAGE)-agent:$(TAG)" || echo "-t $(IMAGE):$(TAG)" ) . || exit 1; \
	done

chart:
	mkdir -p dist
	helm lint $(CHART_DIR)
	helm package $(CHART_DIR) -d dist --app-version $(TAG)

# The README's test command.
test:
	go test -count=1 ./... && (cd test/externaldns && go test -count=1 ./...) && (cd test/k8s && go test -count=1 ./...)

# For tests and scripts that build with the release's flags.
print-ldflags:
	@echo '$(LDFLAGS)'

clean:
	rm -rf bin dist

comma := ,
space := $(eval) $(eval)
