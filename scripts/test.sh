#!/usr/bin/env bash
# Installs the dependencies, builds loft with AddressSanitizer + UndefinedBehaviorSanitizer
# (Debug) and runs the whole test suite with ctest. Extra arguments go to ctest, e.g.
#   scripts/test.sh -L unit        only the unit tests
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
build=build/asan
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOFT_SANITIZE=ON >/dev/null
cmake --build "$build"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" --output-on-failure -j2 "$@"
