#!/usr/bin/env bash
# Runs the NATS client scenarios listed in loft_scenarios.txt against a loftd started here,
# and compares each transcript with nats-server's (tests/nats/reference) through
# run_reference.sh: a failed check, or a difference not listed in loft_differences.json, fails.
# loftd gets loopback ports picked by the kernel (the NATS port included), a temp data dir, the
# default durability and one user (`loft`, allowed everything), whom every scenario connects
# as, so `auth` runs too; it is stopped on exit whatever happens, and a loftd that dies during
# the run or does not stop cleanly (ASan, a non-zero exit) fails it too.
#
#   run_loft.sh --loftd PATH [--c-dir DIR] [--out DIR]
#
#   --loftd PATH  the loftd to run (the ctest nats_loft: build/asan's)
#   --c-dir DIR   the cnats programs (as for run_reference.sh); needed by the c_* scenarios
#   --out DIR     keep each transcript as DIR/NAME.json, and loftd's log as DIR/loftd.log
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

loftd="" c_dir="" out_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --loftd) loftd=${2:?--loftd needs a path}; shift 2 ;;
    --c-dir) c_dir=${2:?--c-dir needs a directory}; shift 2 ;;
    --out) out_dir=${2:?--out needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_loft.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "run_loft.sh: $*" >&2; exit 1; }
[[ -n "$loftd" ]] || die "--loftd PATH is required"
[[ -x "$loftd" ]] || die "$loftd is not an executable (build the loftd target first)"

scenarios=()
while read -r line; do
  line=${line%%#*}
  line=${line//[[:space:]]/}
  if [[ -n "$line" ]]; then scenarios+=("$line"); fi
done <"$here/loft_scenarios.txt"
[[ ${#scenarios[@]} -gt 0 ]] || die "no scenario in $here/loft_scenarios.txt"

work=$(mktemp -d "${TMPDIR:-/tmp}/loft-nats-loft.XXXXXX")
if [[ -z "$out_dir" ]]; then out_dir="$work/transcripts"; fi
mkdir -p "$out_dir"
log="$out_dir/loftd.log"
loftd_pid=""
# Stops loftd (SIGTERM, then SIGKILL after 10 s) and sets loftd_status to its exit status.
loftd_status=""
stop_loftd() {
  [[ -n "$loftd_pid" ]] || return 0
  kill -TERM "$loftd_pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$loftd_pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$loftd_pid" 2>/dev/null; then
    echo "run_loft.sh: loftd did not stop within 10 s of SIGTERM: killed" >&2
    kill -KILL "$loftd_pid" 2>/dev/null || true
  fi
  loftd_status=0
  wait "$loftd_pid" 2>/dev/null || loftd_status=$?
  loftd_pid=""
}
cleanup() {
  stop_loftd
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The test user: the password run_reference.sh gives its reference nats-server, and its
# Argon2id hash (`printf '%s\n' PASSWORD | loft user hash-password`).
user=loft pass=loft-reference-secret
hash='$argon2id$v=19$m=65536,t=2,p=1$gV15vyoXXG+eizarHRT3Ug$DzealdE5jnP4+HljReMKSDQ+xS37lRnEP0/+mys9/eY'
printf '[[users]]\nname = "%s"\npassword_hash = "%s"\npublish = ["*"]\nsubscribe = ["*"]\nadmin = ["*"]\n' \
  "$user" "$hash" >"$work/users.toml"
printf 'users_file = "%s"\n' "$work/users.toml" >"$work/loftd.toml"

# --port-file is written last, once every listener is bound (the NATS port's file before it).
"$loftd" --config "$work/loftd.toml" --data-dir "$work/data" --listen 127.0.0.1:0 --http-listen off \
  --nats-listen 127.0.0.1:0 --nats-port-file "$work/nats.port" --port-file "$work/port" \
  >"$log" 2>&1 &
loftd_pid=$!
for _ in $(seq 1 600); do
  if [[ -s "$work/port" ]]; then break; fi
  kill -0 "$loftd_pid" 2>/dev/null || { cat "$log" >&2; die "loftd exited at start-up"; }
  sleep 0.05
done
[[ -s "$work/port" ]] || { cat "$log" >&2; die "loftd wrote no port file within 30 s"; }
target="nats://127.0.0.1:$(cat "$work/nats.port")"

only=()
for name in "${scenarios[@]}"; do only+=(--only "$name"); done
c_args=()
if [[ -n "$c_dir" ]]; then c_args=(--c-dir "$c_dir"); fi
rc=0
"$here/run_reference.sh" --target "$target" --user "$user" --pass "$pass" "${c_args[@]}" \
  --out "$out_dir" "${only[@]}" \
  --compare "$here/reference" --allow "$here/loft_differences.json" || rc=$?

if ! kill -0 "$loftd_pid" 2>/dev/null; then
  echo "run_loft.sh: loftd died during the run; its log:"; cat "$log"
  exit 1
fi
stop_loftd
if [[ "$loftd_status" != 0 ]]; then
  echo "run_loft.sh: loftd exited with status $loftd_status after SIGTERM; its log:"; cat "$log"
  exit 1
fi
exit "$rc"
