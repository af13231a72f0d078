# Multi-stage: build with the full toolchain, run on a slim image with only the runtime
# libraries. Both stages install their packages with the project's own script.
#   docker build -t loft .
#   docker run -p 7450:7450 -p 7451:7451 -v loft-data:/var/lib/loft --stop-timeout 30 \
#     -v "$PWD/loft-conf:/etc/loft:ro" loft
#
# Ports: 7450 the loft protocol, 7451 HTTP (/metrics for Prometheus, /healthz, /readyz, /v1).
#
# Security: loftd listens on 0.0.0.0 in the container, so it refuses to start without users
# (users_file) unless allow_anonymous = true is set: mount a loftd.toml with users_file, and the
# users file and certificates beside it (docs/security.md, "Docker"). No secret is in the image.
# For a trusted private network only: docker run ... loft --set allow_anonymous=true
#
# Config: /etc/loft/loftd.toml is config/loftd.toml as shipped (every key at its default, so no
# users: loftd will ask for users_file or allow_anonymous). Mount your own over it:
#   docker run ... -v "$PWD/my.toml:/etc/loft/loftd.toml:ro" loft
# The ENTRYPOINT's flags win over the file for listen, http_listen and data_dir (they are part of
# the image: its ports and its volume); every other key comes from the file. To reload with
# SIGHUP (docker kill --signal=HUP CONTAINER), mount the directory instead
# (-v "$PWD/loft-conf:/etc/loft:ro"): an editor that saves by rename leaves a single-file mount
# showing the old file.
#
# Stop: docker stop sends SIGTERM (STOPSIGNAL), which loftd, PID 1 here, handles: it stops
# accepting, finishes in-flight requests for up to shutdown_timeout (10s by default), then
# flushes and closes its storage. Docker's own default stop timeout is also 10s, after which it
# sends SIGKILL, so give it more: --stop-timeout 30 (docker run), docker stop -t 30, or
# stop_grace_period: 30s (compose). A SIGKILL loses no confirmed message, but the next start
# recovers instead of opening cleanly.
#
# Health: HEALTHCHECK asks GET /healthz on 127.0.0.1:7451 (with curl, installed by
# install-deps.sh --runtime for this); it needs the HTTP endpoint on (http_listen not "off").

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN ./scripts/install-deps.sh --build
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOFT_BUILD_TESTS=OFF \
 && cmake --build build \
 && cmake --install build --prefix /out

FROM debian:bookworm-slim AS runtime
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --runtime \
 && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && useradd --system --uid 10001 --home-dir /var/lib/loft --shell /usr/sbin/nologin loft \
 && mkdir -p /var/lib/loft /etc/loft \
 && chown loft:loft /var/lib/loft
# loft-bench-storage sits beside loft: `loft bench storage` runs it from there.
COPY --from=build /out/bin/loftd /out/bin/loft /out/bin/loft-bench-storage /usr/local/bin/
COPY config/loftd.toml /etc/loft/loftd.toml
USER loft
VOLUME ["/var/lib/loft"]
EXPOSE 7450 7451
STOPSIGNAL SIGTERM
# Opening a large data directory can take a while: failures do not count for the first 60s.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["curl", "--fail", "--silent", "--show-error", "--max-time", "2", "--output", "/dev/null", "http://127.0.0.1:7451/healthz"]
# Inside a container loftd must listen on all interfaces for the published ports to reach it.
ENTRYPOINT ["loftd", "--config", "/etc/loft/loftd.toml", "--listen", "0.0.0.0:7450", "--http-listen", "0.0.0.0:7451", "--data-dir", "/var/lib/loft"]
