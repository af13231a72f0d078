#!/usr/bin/env bash
# Per-key ordered delivery against unordered (issue 20): `loft bench consume --keys K` with and
# without `--ordering key`, each run against a fresh loftd (127.0.0.1 port 0, a temp dir), in
# interleaved rounds, so the machine's drift falls on both alike. Prints every run, then per
# variant the median msg/s and the ratio of the medians, and the median of the per-round
# ratios ordered / unordered. Builds nothing.
#   scripts/bench-keys.sh [BUILD_DIR] [ROUNDS] [KEYS] [MESSAGES]
# BUILD_DIR is a (release) build directory with src/apps/loftd and src/apps/loft, or the
# directory that holds them (default build/release); ROUNDS 5 (1..50); KEYS 1000; MESSAGES
# 200000.
# Environment:
#   LOFT_BENCH_BASELINE=DIR  also runs both drains with the loftd and loft of DIR (another
#                            build, e.g. of main), in the same rounds: "base-ordered" and
#                            "base-unordered", and the ratios of this build to it.
#   LOFT_BENCH_ONE_KEY=N     also runs an ordered drain of N messages with one key (one message
#                            in flight at a time, so N small: 20000), per round.
#   LOFT_BENCH_TIMEOUT=S     the bound of each bench run in seconds (default 300).
set -euo pipefail

apps() {  # a build dir or an apps dir -> the dir holding loftd and loft
  if [[ -x $1/src/apps/loftd ]]; then echo "$1/src/apps"; elif [[ -x $1/loftd ]]; then echo "$1"; else
    echo "no loftd in $1 or $1/src/apps" >&2
    return 1
  fi
}
bin=$(apps "${1:-build/release}")
rounds=${2:-5}
keys=${3:-1000}
messages=${4:-200000}
one_key=${LOFT_BENCH_ONE_KEY:-0}
timeout_s=${LOFT_BENCH_TIMEOUT:-300}
base=""
[[ -n ${LOFT_BENCH_BASELINE:-} ]] && base=$(apps "$LOFT_BENCH_BASELINE")
for n in "$rounds" "$keys" "$messages" "$one_key" "$timeout_s"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "not a number: '$n'" >&2; exit 2; }
done
((rounds >= 1 && rounds <= 50)) || { echo "ROUNDS must be 1 to 50" >&2; exit 2; }
((keys >= 1)) || { echo "KEYS must be 1 or more" >&2; exit 2; }

work=$(mktemp -d /tmp/loft-bench-keys.XXXX)
pid=""
cleanup() {
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run() {  # apps-dir bench-args... -> msgs_per_sec of one drain against a fresh loftd
  local dir=$1 d out
  shift
  d=$(mktemp -d "$work/run.XXXX")
  "$dir/loftd" --listen 127.0.0.1:0 --port-file "$d/port" --http-listen off \
    --data-dir "$d/data" --log-level warn 2>"$d/log" &
  pid=$!
  for _ in $(seq 1 400); do [[ -s "$d/port" ]] && break; sleep 0.05; done
  if [[ ! -s "$d/port" ]]; then
    echo "loftd did not start: $(cat "$d/log")" >&2
    exit 1
  fi
  out=$(timeout "$timeout_s" "$dir/loft" --broker "127.0.0.1:$(cat "$d/port")" \
    bench consume "$@" --json 2>"$d/err") || { echo "FAIL $*: $(cat "$d/err")" >&2; out='{}'; }
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  rm -rf "$d"
  python3 -c 'import json,sys; print(int(json.loads(sys.argv[1]).get("msgs_per_sec", 0)))' "$out"
}

variants=(ordered unordered)
[[ -n $base ]] && variants+=(base-ordered base-unordered)
((one_key > 0)) && variants+=(one-key)
declare -A results
n=${#variants[@]}
echo "bench consume, $keys keys, $messages messages, $rounds rounds; $bin${base:+ against $base}"
for i in $(seq 1 "$rounds"); do
  # Rotate the order each round, so no variant always runs first.
  for j in $(seq 0 $((n - 1))); do
    v=${variants[$(((i + j) % n))]}
    dir=$bin
    [[ $v == base-* ]] && dir=$base
    case $v in
      *unordered) args=(--messages "$messages" --keys "$keys") ;;
      *ordered) args=(--messages "$messages" --keys "$keys" --ordering key) ;;
      one-key) args=(--messages "$one_key" --keys 1 --ordering key) ;;
    esac
    r=$(run "$dir" "${args[@]}")
    echo "round $i $v msgs_per_sec=$r"
    results[$v]+="$r "
  done
done

echo
args=()
for v in "${variants[@]}"; do args+=("$v=${results[$v]}"); done
python3 - "${args[@]}" <<'EOF'
import statistics, sys
runs = {a.split("=")[0]: list(map(int, a.split("=")[1].split())) for a in sys.argv[1:]}
med = {v: statistics.median(r) for v, r in runs.items()}
for v, r in runs.items():
    print(f"{v:15} median {med[v]:>12,.0f} msg/s  runs {r}")
def ratio(a, b, what):
    if a not in runs or b not in runs:
        return
    per_round = [x / y for x, y in zip(runs[a], runs[b]) if y > 0]
    m = med[a] / med[b] if med[b] > 0 else 0
    rounds = statistics.median(per_round) if per_round else 0
    print(f"{what:34} {m:.2f} (ratio of medians); per round {rounds:.2f} median, "
          f"{' '.join(f'{x:.2f}' for x in per_round)}")
ratio("ordered", "unordered", "ordered / unordered")
ratio("base-ordered", "base-unordered", "ordered / unordered, baseline")
ratio("ordered", "base-ordered", "ordered, this build / baseline")
ratio("unordered", "base-unordered", "unordered, this build / baseline")
EOF
