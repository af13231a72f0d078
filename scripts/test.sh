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
# With stage 1, the work that needs only CPU runs beside the suites at nice 19, one step after
# the other (2 jobs each): tidy, then stage 2's TSan build, then stage 3's fuzz build. The suites
# leave much of the 2 cores idle (daemons starting, fsync, timed waits) and the steps take what
# they leave; a stage whose build ran there finds it done, or waits for it.
# build/asan compiles src/ as unity batches (LOFT_UNITY: CMakeLists.txt), which tidy checks as
# they are; build/tsan and the fuzz build compile each file on its own, so that a file that
# misses an #include still fails CI.
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
# An early exit (a failed build) still lets apt finish rather than leave dpkg half done, and
# stops the side steps (below).
trap 'if [[ -n "$side_pid" ]]; then kill -TERM -- "-$side_pid" 2>/dev/null || true; fi; if [[ -n "$checks_pid" ]]; then wait "$checks_pid" || true; fi' EXIT
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

# The side steps (tidy, then the TSan and fuzz builds) run one after the other in one background
# chain at nice 19, a process group of its own (set -m), so that an early exit stops it with
# its children. Each step writes its exit status to build/side/<step>.status when it ends.
side_pid=""
side_dir=build/side
side_steps=""
side_step() {
  local name=$1 status=0
  shift
  "$@" >"$side_dir/$name.log" 2>&1 || status=$?
  echo "$status" >"$side_dir/$name.status"
}
side_has() { [[ " $side_steps " == *" $1 "* ]]; }
# Waits until step $1 has ended (or the chain, if it died first); returns the step's status.
side_wait() {
  while [[ ! -e "$side_dir/$1.status" ]] && kill -0 "$side_pid" 2>/dev/null; do sleep 1; done
  if [[ ! -e "$side_dir/$1.status" ]]; then return 1; fi
  return "$(cat "$side_dir/$1.status")"
}

tsan_tests=(broker_test group_reads_test groups_test dedup_test producer_test crash_test connection_fuzz_corpus
            tls_test)
build_tsan() {
  cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOFT_TSAN=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" >/dev/null &&
    cmake --build build/tsan --target loftd loft "${tsan_tests[@]}"
}

if [[ " $stages " == *" tidy "* || " $stages " == *" 1 "* ]]; then
  build=build/asan
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOFT_SANITIZE=ON -DLOFT_UNITY=ON >/dev/null
  # Built first even for tidy alone: code that does not compile fails here, with the compiler's
  # own message, not inside clang-tidy.
  cmake --build "$build"
  checks_ready
  if [[ " $stages " == *" 1 "* ]]; then
    # The side chain: clang-tidy and the later stages' builds beside the suite at the lowest CPU
    # priority; the tests still get a core whenever they are runnable. Tidy's findings are
    # printed, and fail the run, after the suite.
    rm -rf "$side_dir"
    mkdir -p "$side_dir"
    if [[ " $stages " == *" tidy "* ]]; then side_steps+=" tidy"; fi
    if [[ " $stages " == *" 2 "* ]]; then side_steps+=" tsan"; fi
    if [[ " $stages " == *" 3 "* ]]; then side_steps+=" fuzz"; fi
    tidy_start=$SECONDS
    if [[ -n "$side_steps" ]]; then
      set -m
      (
        renice -n 19 -p "$BASHPID" >/dev/null
        for step in $side_steps; do
          case $step in
            tidy) side_step tidy env LOFT_TIDY_JOBS=2 ./scripts/tidy.sh "$build" ;;
            tsan) side_step tsan build_tsan ;;
            fuzz) side_step fuzz ./scripts/fuzz.sh --build ;;
          esac
        done
      ) &
      side_pid=$!
      set +m
    fi
    start=$SECONDS
    # Without arguments the NATS run is left to its own stage.
    if [[ $# -eq 0 ]]; then set -- -LE '^nats$'; fi
    ctest_status=0
    ctest --test-dir "$build" --output-on-failure -j2 "$@" || ctest_status=$?
    stage_took 1 "$start"
    if [[ " $stages " == *" tidy "* ]]; then
      tidy_status=0
      side_wait tidy || tidy_status=$?
      cat "$side_dir/tidy.log" 2>/dev/null || true
      stage_took "tidy (beside stage 1)" "$tidy_start"
      if [[ $tidy_status -ne 0 ]]; then
        echo "test.sh: clang-tidy found problems (above)" >&2
        exit "$tidy_status"
      fi
    fi
    if [[ $ctest_status -ne 0 ]]; then exit "$ctest_status"; fi
  elif [[ " $stages " == *" tidy "* ]]; then
    tidy_start=$SECONDS
    LOFT_TIDY_JOBS=2 ./scripts/tidy.sh "$build"
    stage_took tidy "$tidy_start"
  fi
fi

checks_ready
if [[ " $stages " == *" nats "* ]]; then
  start=$SECONDS
  build=build/asan
  # Stage 1 built everything; alone, this stage builds only the cnats programs and loftd.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOFT_SANITIZE=ON -DLOFT_UNITY=ON >/dev/null
  cmake --build "$build" --target nats_c_core nats_c_js nats_c_ordered loftd
  ctest --test-dir "$build" --output-on-failure -L '^nats$'
  stage_took nats "$start"
fi

if [[ " $stages " == *" 2 "* ]]; then
  build=build/tsan
  start=$SECONDS
  # Built beside stage 1 when that ran (its log: build/side/tsan.log); a build that failed there
  # fails again here, with its errors.
  if side_has tsan; then side_wait tsan || true; fi
  build_tsan
  # Every test of these executables: each carries its executable's name as a label.
  regex="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
  tsan_options="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
  TSAN_OPTIONS=${TSAN_OPTIONS:-$tsan_options} LOFT_CRASH_ROUNDS=5 \
    ctest --test-dir "$build" --output-on-failure -j2 -L "$regex"
  stage_took 2 "$start"
fi

if [[ " $stages " == *" 3 "* ]]; then
  start=$SECONDS
  if side_has fuzz; then side_wait fuzz || true; fi
  ./scripts/fuzz.sh "${LOFT_FUZZ_SECONDS:-30}"
  stage_took 3 "$start"
fi
