#!/usr/bin/env bash
# Installs the dependencies and runs every check loft has: clang-tidy and three test stages:
# 1. a Debug build with AddressSanitizer + UndefinedBehaviorSanitizer (build/asan): the whole
#    suite with ctest (unit, contract, integration, crash, fuzz corpora);
# 2. a ThreadSanitizer build (build/tsan): the concurrency-heavy suites (the broker's writer
#    and reclaimer threads, the client's reader thread, server and broker in one process in
#    the connection fuzz corpus, short crash rounds);
# 3. the libFuzzer targets built with clang, each run for LOFT_FUZZ_SECONDS (default 60).
# Stage "tidy" runs clang-tidy over src/ once (scripts/tidy.sh, 2 jobs) with the compile
# commands of stage 1's build/asan, after that build and before its ctest; any finding fails.
# Each gtest is a ctest test of its own, named Suite.Name and labelled with its kind and its
# executable (tests/CMakeLists.txt), so extra arguments, which go to the stage-1 ctest and skip
# stages 2 and 3, can pick a few, e.g.
#   scripts/test.sh -L unit                    only the unit tests (ASan)
#   scripts/test.sh -L '^groups_test$'         one test executable
#   scripts/test.sh -R '^Groups\.NackWithDelay'  tests by name (ctest -N lists them)
# LOFT_TEST_STAGES=1 (or "1 3", "tidy", ...) picks stages; the default is "tidy 1 2 3".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
stages=${LOFT_TEST_STAGES:-tidy 1 2 3}
if [[ $# -gt 0 ]]; then stages=1; fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [[ " $stages " == *" tidy "* || " $stages " == *" 1 "* ]]; then
  build=build/asan
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOFT_SANITIZE=ON >/dev/null
  # Built first even for tidy alone: code that does not compile fails here, with the compiler's
  # own message, not inside clang-tidy.
  cmake --build "$build"
  if [[ " $stages " == *" tidy "* ]]; then
    LOFT_TIDY_JOBS=2 ./scripts/tidy.sh "$build"
  fi
  if [[ " $stages " == *" 1 "* ]]; then
    ctest --test-dir "$build" --output-on-failure -j2 "$@"
  fi
fi

if [[ " $stages " == *" 2 "* ]]; then
  build=build/tsan
  tsan_tests=(broker_test group_reads_test groups_test dedup_test producer_test crash_test connection_fuzz_corpus
              tls_test)
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOFT_TSAN=ON >/dev/null
  cmake --build "$build" --target loftd loft "${tsan_tests[@]}"
  # Every test of these executables: each carries its executable's name as a label.
  regex="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
  tsan_options="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
  TSAN_OPTIONS=${TSAN_OPTIONS:-$tsan_options} LOFT_CRASH_ROUNDS=5 \
    ctest --test-dir "$build" --output-on-failure -j2 -L "$regex"
fi

if [[ " $stages " == *" 3 "* ]]; then
  ./scripts/fuzz.sh "${LOFT_FUZZ_SECONDS:-60}"
fi
