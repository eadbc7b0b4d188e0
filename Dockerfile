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
ENV HTTP_HOST=0.0.0.0 HTTP_PORT=8080
EXPOSE 8080
# `serve` (API + worker) unless told otherwise: `api`, `worker` or `migrate`.
ENTRYPOINT ["orderflow"]
CMD ["serve"]
