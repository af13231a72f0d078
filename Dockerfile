# Multi-stage: build with the full toolchain, run on a slim image with only the runtime
# libraries. Both stages install their packages with the project's own script.
#   docker build -t loft .
#   docker run -p 7450:7450 -v loft-data:/var/lib/loft loft

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN ./scripts/install-deps.sh
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
COPY --from=build /out/bin/loftd /out/bin/loft /usr/local/bin/
COPY config/loftd.toml /etc/loft/loftd.toml
USER loft
VOLUME ["/var/lib/loft"]
EXPOSE 7450
# Inside a container loftd must listen on all interfaces for the published port to reach it.
ENTRYPOINT ["loftd", "--config", "/etc/loft/loftd.toml", "--listen", "0.0.0.0:7450", "--data-dir", "/var/lib/loft"]
