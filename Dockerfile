# fleetgate image: a static binary on distroless, running as non-root.
#
#   docker build -t fleetgate:dev --build-arg VERSION=$(git describe --always --dirty) .
#   docker run --rm -p 1883:1883 -p 8443:8443 -p 8080:8080 \
#     -e FLEETGATE_KAFKA_BROKERS=b1:9092,b2:9092 fleetgate:dev
#
# The configuration is /etc/fleetgate/config.yaml (deploy/config.yaml; mount
# your own over it); every key can be overridden by a FLEETGATE_* variable.
# Ports: 1883 MQTT, 8883 MQTT over TLS (when mqtt.tls_listen is set), 8443
# legacy HTTPS, 8080 admin (/metrics, /healthz, /readyz). See
# docs/operations.md.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change. mochi is
# our patched copy (go.mod replaces it with third_party/mochi): its go.mod is
# part of the module graph.
COPY go.mod go.sum ./
COPY third_party/mochi/go.mod third_party/mochi/go.sum ./third_party/mochi/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary that needs no libc in the final image. The time
# zone database is embedded (cmd/fleetgate imports time/tzdata), so CSA time
# stamps resolve Asia/Seoul even without /usr/share/zoneinfo.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/fleetgate ./cmd/fleetgate

# distroless/static: CA certificates (MSK over TLS), tzdata, /etc/passwd with
# the nonroot user (65532), no shell. The process is PID 1: fleetgate
# handles SIGTERM (drain) and a second SIGTERM (exit at once) itself.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fleetgate /usr/local/bin/fleetgate
COPY --chown=65532:65532 deploy/config.yaml /etc/fleetgate/config.yaml
# MQTT users and policy (mqtt.auth.users_file, mqtt.acl_file), relative to
# the configuration file; mount your own over them.
COPY --chown=65532:65532 deploy/users deploy/acl.yaml /etc/fleetgate/
USER 65532:65532
EXPOSE 1883 8883 8443 8080
ENTRYPOINT ["/usr/local/bin/fleetgate"]
CMD ["serve", "--config", "/etc/fleetgate/config.yaml"]
