# Refract origin. Build: docker build -t refract .   Run: docker run -p 8080:8080 -v refract-data:/data refract
# Several nodes behind nginx: deploy/docker-compose.yml (deploy/README.md).
FROM rust:1-bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq cmake nasm >/dev/null
WORKDIR /src
COPY . .
RUN cargo build --release --bin refract

FROM debian:bookworm-slim
RUN useradd --system --home /data refract && mkdir -p /data && chown refract /data
COPY --from=build /src/target/release/refract /usr/local/bin/refract
USER refract
EXPOSE 8080
ENV REFRACT_LISTEN=0.0.0.0:8080 REFRACT_DATA_DIR=/data REFRACT_LOG_FORMAT=json
# `docker stop` sends SIGTERM: Refract stops accepting and lets requests in flight finish within
# shutdown_timeout_secs (give `docker stop -t` / compose's stop_grace_period more than that)
STOPSIGNAL SIGTERM
# GET http://127.0.0.1:8080/healthz from inside the container (no curl in the slim image); pass
# `--url` when REFRACT_LISTEN uses another port
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["refract", "healthcheck"]
ENTRYPOINT ["refract", "serve"]
