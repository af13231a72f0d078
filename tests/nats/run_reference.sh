#!/usr/bin/env bash
# Runs every NATS client scenario (nats.js in tests/nats/js, cnats in tests/nats/c) against a
# NATS server and fails if any scenario fails. By default the server is a reference
# nats-server with JetStream, started here on a free loopback port with its own store dir and
# users, and stopped on exit. With --target the same scenarios run against a server that is
# already running, e.g. loft's NATS port. tests/nats/README.md has the details.
#
#   run_reference.sh [--target URL [--user USER --pass PASSWORD]] [--c-dir DIR] [--out DIR]
#                    [--only NAME]... [--compare DIR [--allow FILE]]
#
#   --target URL  run against URL instead of starting nats-server
#   --user/--pass credentials for the target (the auth scenario is skipped without them)
#   --c-dir DIR   where CMake built the cnats programs (tests/nats/c in the build tree); without
#                 it the C scenarios are skipped, with it a missing program is a failure
#   --out DIR     keep each scenario's JSON transcript as DIR/NAME.json (default: a temp dir)
#   --only NAME   run only this scenario (repeatable); names as printed
#   --compare DIR compare each passing scenario's transcript with DIR/NAME.json step by step
#                 (compare_transcripts.mjs); a difference fails the scenario
#   --allow FILE  the intended differences for --compare (loft_differences.json)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

target="" user="" pass="" c_dir="" out_dir="" compare_dir="" allow_file="" only=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target) target=${2:?--target needs a URL}; shift 2 ;;
    --user) user=${2:?--user needs a value}; shift 2 ;;
    --pass) pass=${2:?--pass needs a value}; shift 2 ;;
    --c-dir) c_dir=${2:?--c-dir needs a directory}; shift 2 ;;
    --out) out_dir=${2:?--out needs a directory}; shift 2 ;;
    --only) only+=("${2:?--only needs a scenario name}"); shift 2 ;;
    --compare) compare_dir=${2:?--compare needs a directory}; shift 2 ;;
    --allow) allow_file=${2:?--allow needs a file}; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_reference.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "run_reference.sh: $*" >&2; exit 1; }

# Checked before anything starts: a missing tool is a failure with its remedy, never a pass.
command -v node >/dev/null || die "node not found on PATH: run scripts/install-deps.sh"
[[ -d "$here/js/node_modules/nats" ]] ||
  die "nats.js is not installed in tests/nats/js/node_modules: run scripts/install-deps.sh (it runs npm ci there)"
if [[ -z "$target" ]]; then
  command -v nats-server >/dev/null || die "nats-server not found on PATH: run scripts/install-deps.sh"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/loft-nats-ref.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ -z "$out_dir" ]]; then out_dir="$work/transcripts"; fi
mkdir -p "$out_dir"

if [[ -z "$target" ]]; then
  # The reference: nats-server with JetStream on a file store of its own, one user. -p -1 picks
  # a free port and --ports_file_dir tells which one, without a race on a port picked here.
  user=loft pass=loft-reference-secret
  mkdir -p "$work/store" "$work/ports"
  nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$work/ports" -js -sd "$work/store" \
    --user "$user" --pass "$pass" >"$work/nats-server.log" 2>&1 &
  server_pid=$!
  target=""
  for _ in $(seq 1 200); do
    ports_file=$(compgen -G "$work/ports/*.ports" || true)
    if [[ -n "$ports_file" ]]; then
      target=$(sed -n 's/.*"nats":\["\([^"]*\)".*/\1/p' "$ports_file")
      if [[ -n "$target" ]]; then break; fi
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/nats-server.log" >&2; die "nats-server exited at start-up"; }
    sleep 0.05
  done
  [[ -n "$target" ]] || { cat "$work/nats-server.log" >&2; die "nats-server announced no client URL in $work/ports within 10 s"; }
  echo "reference: $(nats-server --version) at $target (store $work/store)"
else
  echo "target: $target"
fi

creds=() c_creds=()
if [[ -n "$user" ]]; then creds=(--user "$user" --pass "$pass") c_creds=("$user" "$pass"); fi

# name|kind|program. kind js: a nats.js scenario; kind c: a cnats program in --c-dir.
scenarios=(
  "core|js|core.mjs"
  "js_manage|js|js_manage.mjs"
  "js_pull|js|js_pull.mjs"
  "js_redeliver|js|js_redeliver.mjs"
  "js_push|js|js_push.mjs"
  "js_ordered|js|js_ordered.mjs"
  "js_advisory|js|js_advisory.mjs"
  "js_holes|js|js_holes.mjs"
  "auth|js|auth.mjs"
  "c_core|c|nats_c_core"
  "c_js|c|nats_c_js"
  "c_ordered|c|nats_c_ordered"
)

# An --only name that is no scenario is an error, not a run of nothing.
for name in "${only[@]}"; do
  known=no
  for entry in "${scenarios[@]}"; do
    if [[ "${entry%%|*}" == "$name" ]]; then known=yes; fi
  done
  [[ $known == yes ]] || die "--only $name: no such scenario"
done

passed=0 failed=0 skipped=0 failures=()
start_all=$SECONDS
for entry in "${scenarios[@]}"; do
  IFS='|' read -r name kind program <<<"$entry"
  if [[ ${#only[@]} -gt 0 && " ${only[*]} " != *" $name "* ]]; then continue; fi
  if [[ "$name" == auth && ${#creds[@]} -eq 0 ]]; then
    echo "SKIP $name: no --user/--pass for the target"; skipped=$((skipped + 1)); continue
  fi
  if [[ "$kind" == js ]]; then
    cmd=(node "$here/js/$program" --server "$target" "${creds[@]}")
  else
    if [[ -z "$c_dir" ]]; then
      echo "SKIP $name: no --c-dir"; skipped=$((skipped + 1)); continue
    fi
    if [[ ! -x "$c_dir/$program" ]]; then
      echo "FAIL $name: $c_dir/$program is missing: libnats-dev was not found when CMake" \
           "configured (run scripts/install-deps.sh, then cmake again)"
      failed=$((failed + 1)); failures+=("$name"); continue
    fi
    cmd=("$c_dir/$program" "$target" "${c_creds[@]}")
  fi
  t0=$(date +%s.%N)
  rc=0
  # Each scenario bounds its own waits; the outer timeout is the backstop for a hung process.
  timeout -k 5 60 "${cmd[@]}" >"$out_dir/$name.json" 2>"$work/$name.err" || rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [[ $rc -eq 0 && -n "$compare_dir" ]]; then
    if [[ ! -f "$compare_dir/$name.json" ]]; then
      echo "FAIL $name: no reference transcript $compare_dir/$name.json (run_reference.sh --out" \
           "$compare_dir writes them from nats-server)"
      failed=$((failed + 1)); failures+=("$name"); continue
    fi
    allow=()
    if [[ -n "$allow_file" ]]; then allow=("$allow_file"); fi
    if ! node "$here/compare_transcripts.mjs" "$compare_dir/$name.json" "$out_dir/$name.json" "${allow[@]}"; then
      echo "FAIL $name (${secs} s): its checks held, but its transcript is not the reference's"
      failed=$((failed + 1)); failures+=("$name"); continue
    fi
  fi
  if [[ $rc -eq 0 ]]; then
    echo "PASS $name (${secs} s)"; passed=$((passed + 1))
  else
    echo "FAIL $name (exit $rc after ${secs} s); transcript and stderr:"
    cat "$out_dir/$name.json"; cat "$work/$name.err"
    failed=$((failed + 1)); failures+=("$name")
  fi
done

if [[ -n "$server_pid" ]] && ! kill -0 "$server_pid" 2>/dev/null; then
  echo "nats-server died during the run; its log:"; cat "$work/nats-server.log"
  failed=$((failed + 1)); failures+=("nats-server")
fi
if [[ "$out_dir" == "$work/"* ]]; then
  echo "$((SECONDS - start_all)) s in all (transcripts are removed on exit: --out DIR keeps them)"
else
  echo "$((SECONDS - start_all)) s in all; transcripts in $out_dir"
fi
echo "nats scenarios: $passed passed, $failed failed, $skipped skipped"
if [[ $failed -gt 0 ]]; then
  echo "failed: ${failures[*]}"
  exit 1
fi
if [[ $passed -eq 0 ]]; then
  die "no scenario ran"
fi
