# dockgate's image: one static binary and a CA bundle on scratch.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t dockgate .
#
# Without a registry to pull golang from, 'make image' assembles the same
# final stage from a binary built on the host (Dockerfile.local).

# Debian-based, so the stage also has the ca-certificates bundle to copy.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=unknown
# The release flags live in the Makefile (docs/REPRODUCIBLE.md).
RUN make build VERSION="${VERSION}" COMMIT="${COMMIT}"
# The image's filesystem, laid out as it lands: a scratch stage cannot
# create directories or set modes. /tmp is for 'doctor image'; the state
# directory (0700) belongs to the runtime user.
RUN mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs /rootfs/var/lib /rootfs/tmp /state/dockgate && \
    cp bin/dockgate /rootfs/usr/local/bin/dockgate && \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt && \
    chmod -R u=rwX,go=rX /rootfs && chmod 1777 /rootfs/tmp && chmod 0700 /state/dockgate

# Keep the lines below in step with Dockerfile.local.
FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /state/ /var/lib/
# Go reads /etc/ssl/certs/ca-certificates.crt without being told; the
# binary also embeds Mozilla's roots for when the bundle is missing.
ENV PATH=/usr/local/bin DOCKGATE_HOME=/var/lib/dockgate
# Not root. To reach the Docker socket, add its group when running:
#   docker run --group-add "$(stat -c %g /var/run/docker.sock)" ...
# Every container of this image is the gateway's own: no role but admin
# may reach it or its state volume (docs/POLICY.md, "Self-protection").
LABEL dockgate.self=true
USER 65532:65532
VOLUME ["/var/lib/dockgate"]
# 2376: the Docker API (mutual TLS); 2386: enrollment (docs/ONBOARDING.md).
EXPOSE 2376 2386
# A scratch image has no shell or curl: the binary probes its own /readyz.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 CMD ["dockgate", "healthcheck"]
ENTRYPOINT ["dockgate"]
CMD ["serve"]
