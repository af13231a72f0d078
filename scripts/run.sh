#!/usr/bin/env bash
# Installs the dependencies, builds loftd and loft (Release) and starts loftd in the
# foreground on its defaults (127.0.0.1:7450, data in ./loft-data). Arguments go to loftd,
# e.g. scripts/run.sh --config config/loftd.toml
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
build=build/release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build"
echo "loft CLI: $build/src/apps/loft --help"
exec "$build/src/apps/loftd" "$@"
