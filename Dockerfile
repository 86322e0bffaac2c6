# The images of the order service, one target each, from one build of the workspace:
#   docker build --target ingestor  -t orders-ingestor .
#   docker build --target api       -t orders-api .
#   docker build --target publisher -t orders-publisher .
# docker-compose.yml builds them this way.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cargo's registry and the target folder are BuildKit cache mounts: they outlive the build, so a
# code change recompiles the workspace's own crates, not the dependencies. They are not part of
# the image, which is why the binaries are copied out in the same step. The migrations are compiled
# into the ingestor.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ingestor --bin api --bin publisher \
    && cp target/release/ingestor target/release/api target/release/publisher /usr/local/bin/

FROM debian:bookworm-slim AS runtime
# ca-certificates: the system trust store. wget runs the api's health check (GET /readyz, see
# docker-compose.yml): the api has no probe command of its own, and wget adds about a megabyte.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates wget \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 orders \
    && useradd --system --uid 10001 --gid orders --no-create-home --shell /usr/sbin/nologin orders
# Not root: a numeric user, so that "run as non-root" policies can check it.
USER 10001:10001

# Consumes the orders channel and stores what it reads in Postgres. It listens on no port.
FROM runtime AS ingestor
COPY --from=build /usr/local/bin/ingestor /usr/local/bin/ingestor
ENTRYPOINT ["/usr/local/bin/ingestor"]

# Serves stored orders over HTTP.
FROM runtime AS api
COPY --from=build /usr/local/bin/api /usr/local/bin/api
ENV API_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/api"]

# A one-shot tool that publishes orders to the channel (`publisher --help`). The files to publish
# are mounted in its working folder (docker-compose.yml mounts model.json).
FROM runtime AS publisher
COPY --from=build /usr/local/bin/publisher /usr/local/bin/publisher
WORKDIR /publish
ENTRYPOINT ["/usr/local/bin/publisher"]
