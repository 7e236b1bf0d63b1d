# dockgate's release build: a static, reproducible binary and a FROM scratch
# image (docs/REPRODUCIBLE.md).
#
#   make build   bin/dockgate with the release flags, version and commit stamped
#   make image   the dockgate:dev image: bin/dockgate and this host's CA bundle
#                on scratch (Dockerfile.local); nothing is pulled
#   make repro   build twice from copies of the tree at two paths and compare
#                the bytes (scripts/repro-check)
#   make mutate  mutation testing of the security packages with gremlins
#                (scripts/mutate, docs/TESTING.md); slow
#   make clean   remove bin/

MODULE    := github.com/dockgate/dockgate
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BIN       ?= bin/dockgate
IMAGE     ?= dockgate:dev
# The bundle the image ships: Debian's ca-certificates package.
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
# dockerd 20.10 may lack BuildKit; the classic builder is enough for a
# Dockerfile with one scratch stage.
DOCKER_BUILDKIT ?= 0

# The release flags. No cgo: one static binary that runs on scratch. No
# build paths (-trimpath), symbol tables (-s -w), build ID (-buildid=) or VCS
# stamp (-buildvcs=false): all of them differ between two checkouts of the
# same commit. The commit is stamped with -X instead. GOFLAGS is cleared so
# the environment cannot add flags.
RELEASE_ENV     := CGO_ENABLED=0 GOFLAGS=
RELEASE_FLAGS   := -trimpath -buildvcs=false
RELEASE_LDFLAGS := -s -w -buildid= \
	-X $(MODULE)/internal/version.Version=$(VERSION) \
	-X $(MODULE)/internal/version.Commit=$(COMMIT)

.PHONY: build image repro mutate clean

build:
	$(RELEASE_ENV) go build $(RELEASE_FLAGS) -ldflags "$(RELEASE_LDFLAGS)" -o $(BIN) ./cmd/dockgate

# The build context holds only what the image ships, laid out as it lands:
# rootfs/ (root-owned: the binary, the CA bundle, /tmp with mode 1777 for
# 'doctor image') and state/ (the state volume, 0700, for the runtime user).
# A scratch stage cannot create directories or set modes itself.
image: build
	@set -e; ctx=$$(mktemp -d); trap 'rm -rf "$$ctx"' EXIT; \
	install -D -m 0755 $(BIN) "$$ctx/rootfs/usr/local/bin/dockgate"; \
	install -D -m 0644 $(CA_BUNDLE) "$$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"; \
	install -d -m 0755 "$$ctx/rootfs/var/lib"; \
	install -d -m 1777 "$$ctx/rootfs/tmp"; \
	install -d -m 0700 "$$ctx/state/dockgate"; \
	chmod -R go+rX,go-w "$$ctx/rootfs/usr" "$$ctx/rootfs/etc" "$$ctx/rootfs/var"; \
	DOCKER_BUILDKIT=$(DOCKER_BUILDKIT) docker build -q -f Dockerfile.local -t $(IMAGE) "$$ctx"
	@docker image inspect --format '$(IMAGE): {{.Size}} bytes' $(IMAGE)

repro:
	VERSION=$(VERSION) COMMIT=$(COMMIT) ./scripts/repro-check

mutate:
	./scripts/mutate

clean:
	rm -rf bin/
