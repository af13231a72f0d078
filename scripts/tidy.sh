#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy) over every src/**/*.cpp, with the compile commands
# of a configured build directory, and fails on any finding: in CI every warning is an error.
#   scripts/tidy.sh [build-dir [file.cpp ...]]
# build-dir defaults to build/asan (scripts/test.sh configures it); files to every src/**/*.cpp.
# LOFT_TIDY_JOBS (default 2) files are checked at a time. Headers under include/loft and src are
# checked through the .cpp files that include them (HeaderFilterRegex); system headers never.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/asan}
shift || true
jobs=${LOFT_TIDY_JOBS:-2}
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [[ -z "$tidy" ]]; then
  echo "tidy: clang-tidy not found (scripts/install-deps.sh installs clang-tidy-14)" >&2
  exit 2
fi
if [[ ! -f "$build/compile_commands.json" ]]; then
  echo "tidy: no $build/compile_commands.json; configure that build first" >&2
  exit 2
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
if [[ $# -gt 0 ]]; then
  files=("$@")
else
  mapfile -t files < <(find src -name '*.cpp' | sort)
fi

# One clang-tidy per file; its output goes to its own log so parallel runs do not interleave.
check_one() {
  local tidy=$1 build=$2 logs=$3 file=$4
  local log="$logs/${file//\//_}.log"
  if ! "$tidy" -p "$build" --quiet --warnings-as-errors='*' "$file" >"$log" 2>&1; then
    touch "$log.failed"
  fi
}
export -f check_one
start=$SECONDS
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -I{} bash -c 'check_one "$@"' _ "$tidy" "$build" "$logs" {}

failed=0
for f in "${files[@]}"; do
  log="$logs/${f//\//_}.log"
  if [[ -e "$log.failed" ]]; then
    failed=$((failed + 1))
    grep -v -E '^[0-9]+ (warning|error)s? (and [0-9]+ (warning|error)s? )?generated\.$' "$log" || true
  fi
done
echo "tidy: ${#files[@]} files in $((SECONDS - start)) s with $jobs jobs; $failed with findings"
[[ $failed -eq 0 ]]
