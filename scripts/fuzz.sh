#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (tests/fuzz) and runs each for a bounded time,
# starting from the committed corpus, two targets at a time (libFuzzer uses one core each; this
# machine has two). New interesting inputs go to a scratch copy, not to the repository. A crash
# fails the run and leaves the input in build/fuzz/artifacts/: add it to tests/fuzz/corpus/ with
# the fix, so the corpus ctests replay it from then on.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 60
#   scripts/fuzz.sh --build                   only builds them (scripts/test.sh, beside stage 1)
# LOFT_FUZZ_JOBS sets how many targets run at once (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=false
if [[ "${1:-}" == --build ]]; then
  build_only=true
  shift
fi
seconds=${1:-60}
jobs=${LOFT_FUZZ_JOBS:-2}
build=build/fuzz
targets=(decoder_fuzz connection_fuzz auth_fuzz nats_parser_fuzz nats_session_fuzz)
CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOFT_FUZZ=ON >/dev/null
cmake --build "$build" --target "${targets[@]}"
if $build_only; then exit 0; fi
mkdir -p "$build/artifacts"

# Runs one target; its output goes to $build/<target>.log, its exit status is the target's.
run_target() {
  local target=$1 scratch status=0
  scratch=$(mktemp -d)
  cp tests/fuzz/corpus/* "$scratch/"
  if [[ -d "tests/fuzz/corpus-$target" ]]; then cp "tests/fuzz/corpus-$target"/* "$scratch/"; fi
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" "$scratch" \
    >"$build/$target.log" 2>&1 || status=$?
  rm -rf "$scratch"
  return "$status"
}

# Prints a finished target's log (without libFuzzer's progress lines) and records a failure.
failed=()
report() {
  local target=$1 status=$2
  echo "fuzz: $target ran ${seconds}s (exit $status)"
  grep -Ev '^#[0-9]+\s+(NEW|REDUCE|pulse|INITED|RELOAD)' "$build/$target.log" | tail -40
  if [[ $status -ne 0 ]]; then failed+=("$target"); fi
}

declare -A running=()  # pid -> target
for target in "${targets[@]}"; do
  while [[ ${#running[@]} -ge $jobs ]]; do
    status=0
    wait -n -p done_pid "${!running[@]}" || status=$?
    report "${running[$done_pid]}" "$status"
    unset "running[$done_pid]"
  done
  echo "fuzz: $target for ${seconds}s"
  run_target "$target" &
  running[$!]=$target
done
while [[ ${#running[@]} -gt 0 ]]; do
  status=0
  wait -n -p done_pid "${!running[@]}" || status=$?
  report "${running[$done_pid]}" "$status"
  unset "running[$done_pid]"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: failed: ${failed[*]}; inputs in $build/artifacts/" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a failure"
