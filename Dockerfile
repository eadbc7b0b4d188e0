# OrderFlow: a small runtime image with the one `orderflow` binary, running as a non-root user.
# The build command is the one `make build` runs (and CI compiles the same workspace).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin orderflow

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home orderflow
COPY --from=build /src/target/release/orderflow /usr/local/bin/orderflow
USER orderflow
# Production default: bearer tokens required (docs/security.md); give it
# JWT_HS256_SECRET or JWT_JWKS_URL. AUTH_MODE=off is for local development only.
ENV HTTP_HOST=0.0.0.0 HTTP_PORT=8080 AUTH_MODE=jwt
EXPOSE 8080
# Liveness: /live asks no dependency, so a PostgreSQL or Temporal outage never marks a healthy
# process unhealthy (for an orchestrator that restarts unhealthy containers); /ready is for
# routing traffic (docker-compose.yaml's api). A `worker` has no HTTP API: it answers /live on
# METRICS_PORT, which the check uses when set.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5m --retries=3 \
  CMD curl -fsS "http://localhost:${METRICS_PORT:-$HTTP_PORT}/live" || exit 1
# `serve` (API + worker) unless told otherwise: `api`, `worker` or `migrate`.
ENTRYPOINT ["orderflow"]
CMD ["serve"]
