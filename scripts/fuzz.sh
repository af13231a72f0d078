#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (tests/fuzz) and runs each for a bounded time,
# starting from the committed corpus. New interesting inputs go to a scratch copy, not to the
# repository. A crash fails the run and leaves the input in build/fuzz/artifacts/: add it to
# tests/fuzz/corpus/ with the fix, so the corpus ctests replay it from then on.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 60
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build/fuzz
CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOFT_FUZZ=ON >/dev/null
cmake --build "$build" --target decoder_fuzz connection_fuzz auth_fuzz nats_parser_fuzz nats_session_fuzz
mkdir -p "$build/artifacts"
for target in decoder_fuzz connection_fuzz auth_fuzz nats_parser_fuzz nats_session_fuzz; do
  scratch=$(mktemp -d)
  cp tests/fuzz/corpus/* "$scratch/"
  if [[ -d "tests/fuzz/corpus-$target" ]]; then cp "tests/fuzz/corpus-$target"/* "$scratch/"; fi
  echo "fuzz: $target for ${seconds}s"
  log="$build/$target.log"
  status=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" "$scratch" >"$log" 2>&1 ||
    status=$?
  grep -Ev '^#[0-9]+\s+(NEW|REDUCE|pulse|INITED|RELOAD)' "$log" | tail -40
  rm -rf "$scratch"
  if [[ $status -ne 0 ]]; then
    echo "fuzz: $target failed (exit $status); inputs in $build/artifacts/" >&2
    exit 1
  fi
done
echo "fuzz: every target ran ${seconds}s without a failure"
