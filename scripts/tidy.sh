#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy) over every src/**/*.cpp, with the compile commands
# of a configured build directory, and fails on any finding: in CI every warning is an error.
#   scripts/tidy.sh [build-dir [file.cpp ...]]
# build-dir defaults to build/asan (scripts/test.sh configures it); files to every src/**/*.cpp.
# LOFT_TIDY_JOBS (default 2) files are checked at a time. Headers under include/loft and src are
# checked through the .cpp files that include them (HeaderFilterRegex); system headers never.
# A unity build (LOFT_UNITY, as scripts/test.sh configures build/asan) compiles src/ in batches
# (<target>.dir/Unity/unity_N_cxx.cxx, each #including several .cpp files): the whole run then
# checks the batches, and each file's findings are its own (HeaderFilterRegex takes src/ .cpp
# files too). Most of clang-tidy's time goes to the standard, Asio and Beast headers every file
# includes (matching, then discarding, tens of thousands of findings in them), so a batch costs
# little more than one of its files. Files named on the command line are checked one by one,
# each with its batch's compile command.
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
# The compile commands clang-tidy reads ($logs/db): the build's, plus one per file of each unity
# batch (the batch's command, on that file). units: what to check, a batch for all its files.
mkdir "$logs/db"
if ! units_text=$(python3 - "$build/compile_commands.json" "$logs/db/compile_commands.json" \
    "$PWD" "$#" "${files[@]}" <<'PY'
import json, os, re, sys
source, target, root = sys.argv[1:4]
named, files = sys.argv[4] != "0", sys.argv[5:]
entries = json.load(open(source))
batch_of = {}  # a src file's absolute path -> the unity batch that includes it
for e in list(entries):
    if not re.search(r"/Unity/unity_[0-9]+_cxx\.cxx$", e["file"]):
        continue
    for line in open(e["file"]):
        m = re.match(r'#include "(.+\.cpp)"', line)
        if m:
            batch_of[m.group(1)] = e["file"]
            entries.append(dict(e, file=m.group(1), command=e["command"].replace(e["file"], m.group(1))))
json.dump(entries, open(target, "w"), indent=1)
units = []
for f in files:
    path = os.path.normpath(os.path.join(root, f))
    if not named and path in batch_of:
        unit = os.path.relpath(batch_of[path], root)
        if unit not in units:
            units.append(unit)
    else:
        units.append(f)  # without a command of its own, clang-tidy infers one, as before
print("\n".join(units))
PY
); then
  exit 2
fi
mapfile -t units <<<"$units_text"

# One clang-tidy per file; its output goes to its own log so parallel runs do not interleave.
check_one() {
  local tidy=$1 build=$2 logs=$3 file=$4
  local log="$logs/${file//\//_}.log"
  # -Wno-unknown-warning-option: the commands are g++'s; clang does not know all its -W options
  # (a unity build's -Wno-subobject-linkage).
  if ! "$tidy" -p "$logs/db" --quiet --warnings-as-errors='*' --extra-arg=-Wno-unknown-warning-option \
    "$file" >"$log" 2>&1; then
    touch "$log.failed"
  fi
}
export -f check_one
start=$SECONDS
printf '%s\n' "${units[@]}" | xargs -P "$jobs" -I{} bash -c 'check_one "$@"' _ "$tidy" "$build" "$logs" {}

failed=0
for f in "${units[@]}"; do
  log="$logs/${f//\//_}.log"
  if [[ -e "$log.failed" ]]; then
    failed=$((failed + 1))
    grep -v -E '^[0-9]+ (warning|error)s? (and [0-9]+ (warning|error)s? )?generated\.$' "$log" || true
  fi
done
echo "tidy: ${#files[@]} files (${#units[@]} translation units) in $((SECONDS - start)) s with $jobs jobs;" \
  "$failed with findings"
[[ $failed -eq 0 ]]
