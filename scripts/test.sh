#!/usr/bin/env bash
# Installs the dependencies and runs every check loft has: clang-tidy and four test stages:
# 1. a Debug build with AddressSanitizer + UndefinedBehaviorSanitizer (build/asan): the whole
#    suite with ctest (unit, contract, integration, crash, fuzz corpora), except the NATS run;
# nats. the NATS client scenarios (tests/nats: nats.js and cnats, unmodified) against a private
#    reference nats-server and against build/asan's loftd: the ctests nats_reference and
#    nats_loft (label nats) of build/asan, run on their own after stage 1, so that its timed waits do not share the 2 cores with the ASan suite;
# 2. a ThreadSanitizer build (build/tsan): the concurrency-heavy suites (the broker's writer
#    and reclaimer threads, the client's reader thread, server and broker in one process in
#    the connection fuzz corpus, short crash rounds);
# 3. the libFuzzer targets built with clang, each run for LOFT_FUZZ_SECONDS (default 30).
# Stage "tidy" runs clang-tidy over src/ once (scripts/tidy.sh, 2 jobs) with the compile
# commands of stage 1's build/asan, after that build: beside stage 1's ctest at nice 19 when both
# run, alone otherwise; any finding fails.
# Each gtest is a ctest test of its own, named Suite.Name and labelled with its kind and its
# executable (tests/CMakeLists.txt), so extra arguments, which go to the stage-1 ctest (NATS run
# included) and skip the other stages, can pick a few, e.g.
#   scripts/test.sh -L unit                    only the unit tests (ASan)
#   scripts/test.sh -L '^groups_test$'         one test executable
#   scripts/test.sh -R '^Groups\.NackWithDelay'  tests by name (ctest -N lists them)
#   scripts/test.sh -L '^nats$'               the NATS scenarios against nats-server
# LOFT_TEST_STAGES=1 (or "1 3", "nats", ...) picks stages; the default is "tidy 1 nats 2 3".
# Each stage prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
# What building needs first; the rest (clang for tidy and fuzzing, nats-server, Node and the npm
# packages) installs in the background while stage 1 builds, and every stage after that build
# waits for it (checks_ready). Its output is printed when it is waited for.
./scripts/install-deps.sh --build-tests
mkdir -p build
checks_log=build/install-checks.log
./scripts/install-deps.sh --checks >"$checks_log" 2>&1 &
checks_pid=$!
# An early exit (a failed build) still lets apt finish rather than leave dpkg half done.
trap 'if [[ -n "$checks_pid" ]]; then wait "$checks_pid" || true; fi' EXIT
checks_ready() {
  if [[ -z "$checks_pid" ]]; then return 0; fi
  local status=0
  wait "$checks_pid" || status=$?
  checks_pid=""
  cat "$checks_log"
  if [[ $status -ne 0 ]]; then
    echo "test.sh: installing the check dependencies failed (above)" >&2
    exit "$status"
  fi
}
stages=${LOFT_TEST_STAGES:-tidy 1 nats 2 3}
if [[ $# -gt 0 ]]; then stages=1; fi
stage_took() { echo "test.sh: stage $1 took $((SECONDS - $2)) s"; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [[ " $stages " == *" tidy "* || " $stages " == *" 1 "* ]]; then
  build=build/asan
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOFT_SANITIZE=ON >/dev/null
  # Built first even for tidy alone: code that does not compile fails here, with the compiler's
  # own message, not inside clang-tidy.
  cmake --build "$build"
  checks_ready
  # With stage 1, clang-tidy runs beside its ctest at the lowest CPU priority: the suite spends
  # much of its time waiting (daemons starting, fsync, timed waits) and tidy takes what it
  # leaves, while the tests still get a core whenever they are runnable. Its findings are
  # printed, and fail the run, after the suite.
  tidy_pid=""
  tidy_log="$build/tidy.log"
  if [[ " $stages " == *" tidy "* ]]; then
    tidy_start=$SECONDS
    if [[ " $stages " == *" 1 "* ]]; then
      LOFT_TIDY_JOBS=2 nice -n 19 ./scripts/tidy.sh "$build" >"$tidy_log" 2>&1 &
      tidy_pid=$!
    else
      LOFT_TIDY_JOBS=2 ./scripts/tidy.sh "$build"
      stage_took tidy "$tidy_start"
    fi
  fi
  if [[ " $stages " == *" 1 "* ]]; then
    start=$SECONDS
    # Without arguments the NATS run is left to its own stage.
    if [[ $# -eq 0 ]]; then set -- -LE '^nats$'; fi
    ctest_status=0
    ctest --test-dir "$build" --output-on-failure -j2 "$@" || ctest_status=$?
    stage_took 1 "$start"
    if [[ -n "$tidy_pid" ]]; then
      tidy_status=0
      wait "$tidy_pid" || tidy_status=$?
      cat "$tidy_log"
      stage_took "tidy (beside stage 1)" "$tidy_start"
      if [[ $tidy_status -ne 0 ]]; then
        echo "test.sh: clang-tidy found problems (above)" >&2
        exit "$tidy_status"
      fi
    fi
    if [[ $ctest_status -ne 0 ]]; then exit "$ctest_status"; fi
  fi
fi

checks_ready
if [[ " $stages " == *" nats "* ]]; then
  start=$SECONDS
  build=build/asan
  # Stage 1 built everything; alone, this stage builds only the cnats programs and loftd.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOFT_SANITIZE=ON >/dev/null
  cmake --build "$build" --target nats_c_core nats_c_js nats_c_ordered loftd
  ctest --test-dir "$build" --output-on-failure -L '^nats$'
  stage_took nats "$start"
fi

if [[ " $stages " == *" 2 "* ]]; then
  build=build/tsan
  tsan_tests=(broker_test group_reads_test groups_test dedup_test producer_test crash_test connection_fuzz_corpus
              tls_test)
  start=$SECONDS
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOFT_TSAN=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" >/dev/null
  cmake --build "$build" --target loftd loft "${tsan_tests[@]}"
  # Every test of these executables: each carries its executable's name as a label.
  regex="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
  tsan_options="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
  TSAN_OPTIONS=${TSAN_OPTIONS:-$tsan_options} LOFT_CRASH_ROUNDS=5 \
    ctest --test-dir "$build" --output-on-failure -j2 -L "$regex"
  stage_took 2 "$start"
fi

if [[ " $stages " == *" 3 "* ]]; then
  start=$SECONDS
  ./scripts/fuzz.sh "${LOFT_FUZZ_SECONDS:-30}"
  stage_took 3 "$start"
fi
