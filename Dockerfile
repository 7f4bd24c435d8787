# Refract origin. Build: docker build -t refract .   Run: docker run -p 8080:8080 -v refract-data:/data refract
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
ENTRYPOINT ["refract", "serve"]
