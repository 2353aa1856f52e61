# cdcflow, built from this repository: the same `cargo build --release` as the README's, then
# only the binary and the shipped views in a small runtime image, run as a non-root user.
# Used by docker-compose.yml; checked offline by tests/it/stack.rs.

FROM rust:1-bookworm AS build
# rdkafka's bundled librdkafka links the system OpenSSL (the README's build packages).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY tests tests
COPY dataflows dataflows
RUN cargo build --release --locked

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/cdcflow --shell /usr/sbin/nologin cdcflow \
    && mkdir -p /var/lib/cdcflow \
    && chown cdcflow:cdcflow /var/lib/cdcflow
COPY --from=build /src/target/release/cdcflow /usr/local/bin/cdcflow
WORKDIR /opt/cdcflow
# `--views` defaults to `dataflows`, relative to this directory.
COPY dataflows dataflows
USER cdcflow
EXPOSE 8080
ENTRYPOINT ["cdcflow"]
CMD ["--help"]
