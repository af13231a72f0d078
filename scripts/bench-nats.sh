#!/usr/bin/env bash
# loft's NATS port against nats-server 2.9.10, the same cnats client (tests/nats/c/c_bench.c)
# against both, interleaved in one session so the machine's drift falls on both alike:
#   publish  js_PublishAsync of MESSAGES 100-byte messages, at most 1,000 PubAcks in flight
#   consume  a durable pull consumer drains MESSAGES: fetch 100 at a time, an ack per message
# Each round: the disk's own fdatasync (2,000 appends of 100 bytes, p50 and p99), then a fresh
# loftd (Release, default settings: every PubAck fsync'd) and a fresh nats-server (-js, a store
# of its own in the same file system; it does not fsync each write) on 127.0.0.1, each running
# publish then consume; which server goes first alternates by round. With loft's CLI in
# BUILD_DIR, the same loftd then runs loft's own protocol too (`loft bench publish --batch 100
# --window 10`, 1,000 in flight; `loft bench consume`). Prints every figure, the medians and the
# ratio loft / nats-server per mode (docs/performance.md, "The NATS port").
#   scripts/bench-nats.sh [BUILD_DIR] [ROUNDS] [MESSAGES]
# BUILD_DIR is a Release build with the tests configured (default build/release):
#   cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release
#   cmake --build build/release -j2 --target loftd nats_c_bench [loft]
# ROUNDS 3 (at most 20), MESSAGES 100000 (at most 2,000,000); every run is bounded by a
# timeout (180 s), and a failed run stops the script.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
rounds=${2:-3}
messages=${3:-100000}
loftd="$build/src/apps/loftd"
bench="$build/tests/nats/c/nats_c_bench"
loft="$build/src/apps/loft"
die() { echo "bench-nats.sh: $*" >&2; exit 1; }
[[ -x "$loftd" ]] || die "$loftd not found: build the loftd target of a Release build"
[[ -x "$bench" ]] || die "$bench not found: build nats_c_bench (needs libnats-dev: scripts/install-deps.sh)"
command -v nats-server >/dev/null || die "nats-server not found: scripts/install-deps.sh"
[[ "$rounds" =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 20 ]] || die "ROUNDS must be 1 to 20"
[[ "$messages" =~ ^[0-9]+$ && $messages -ge 1 && $messages -le 2000000 ]] ||
  die "MESSAGES must be 1 to 2000000"

work=$(mktemp -d /tmp/loft-bench-nats.XXXX)
server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Waits up to 30 s for a non-empty file written by the server just started.
wait_file() {
  for _ in $(seq 1 600); do
    if [[ -s "$1" ]]; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "$2 exited at start-up"; }
    sleep 0.05
  done
  cat "$work/server.log" >&2
  die "$2 did not start within 30 s"
}

# Starts a fresh server of `kind` and sets `url`.
start_server() {
  rm -rf "$work/data" "$work/ports" "$work/port" "$work/nats.port"
  mkdir -p "$work/data" "$work/ports"
  if [[ $1 == loft ]]; then
    "$loftd" --data-dir "$work/data" --listen 127.0.0.1:0 --http-listen off \
      --nats-listen 127.0.0.1:0 --nats-port-file "$work/nats.port" --port-file "$work/port" \
      >"$work/server.log" 2>&1 &
    server_pid=$!
    wait_file "$work/port" loftd
    url="nats://127.0.0.1:$(cat "$work/nats.port")"
  else
    nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$work/ports" -js -sd "$work/data" \
      >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 600); do
      ports_file=$(compgen -G "$work/ports/*.ports" || true)
      if [[ -n "$ports_file" ]]; then break; fi
      kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "nats-server exited at start-up"; }
      sleep 0.05
    done
    [[ -n "$ports_file" ]] || die "nats-server announced no port within 30 s"
    url=$(sed -n 's/.*"nats":\["\([^"]*\)".*/\1/p' "$ports_file")
  fi
}

sync_probe() {
  python3 - "$work/sync.dat" <<'P'
import os, sys, time
fd, t = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), []
for _ in range(2000):
    s = time.perf_counter(); os.write(fd, b'x' * 100); os.fdatasync(fd)
    t.append(time.perf_counter() - s)
t.sort(); print('fdatasync p50 %.0f us, p99 %.0f us' % (t[1000] * 1e6, t[1980] * 1e6))
P
  rm -f "$work/sync.dat"
}

echo "bench-nats.sh: $rounds rounds of $messages messages; $(nats-server --version);" \
     "loftd $("$loftd" --version | awk '{print $2}') commit $(git rev-parse --short HEAD 2>/dev/null || echo '?');" \
     "$(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A figures
for round in $(seq 1 "$rounds"); do
  echo "round $round: $(sync_probe)"
  if [[ $((round % 2)) == 1 ]]; then order=(loft nats-server); else order=(nats-server loft); fi
  for kind in "${order[@]}"; do
    start_server "$kind"
    for mode in publish consume; do
      out=$(timeout -k 5 180 "$bench" "$url" "$mode" "$messages") ||
        { cat "$work/server.log" >&2; die "$kind $mode failed in round $round"; }
      rate=$(sed -n 's/.*"msgs_per_sec":\([0-9]*\).*/\1/p' <<<"$out")
      figures[$kind.$mode]+="$rate "
      printf '  %-11s %-7s %9s msg/s  %s\n' "$kind" "$mode" "$rate" "$out"
    done
    if [[ $kind == loft && -x "$loft" ]]; then
      native=(timeout -k 5 180 "$loft" --broker "127.0.0.1:$(cat "$work/port")" bench)
      for mode in publish consume; do
        if [[ $mode == publish ]]; then
          out=$("${native[@]}" publish --producers 1 --batch 100 --window 10 --messages "$messages" --json)
        else
          out=$("${native[@]}" consume --messages "$messages" --json)
        fi
        rate=$(sed -n 's/.*"msgs_per_sec": *\([0-9]*\).*/\1/p' <<<"$out")
        [[ -n "$rate" ]] || die "loft bench $mode printed no msgs_per_sec: $out"
        figures[native.$mode]+="$rate "
        printf '  %-11s %-7s %9s msg/s  (loft bench %s)\n' "loft-native" "$mode" "$rate" "$mode"
      done
    fi
    stop_server
  done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "medians (msg/s) and loft / nats-server:"
for mode in publish consume; do
  l=$(median "${figures[loft.$mode]}")
  n=$(median "${figures[nats-server.$mode]}")
  printf '  %-7s loft %9s (%s)  nats-server %9s (%s)  ratio %s\n' "$mode" "$l" \
    "$(echo ${figures[loft.$mode]} | sed 's/ /; /g')" "$n" \
    "$(echo ${figures[nats-server.$mode]} | sed 's/ /; /g')" \
    "$(awk -v a="$l" -v b="$n" 'BEGIN { printf "%.2f", a / b }')"
  if [[ -n "${figures[native.$mode]:-}" ]]; then
    printf '  %-7s loft native protocol %9s (%s)\n' "$mode" "$(median "${figures[native.$mode]}")" \
      "$(echo ${figures[native.$mode]} | sed 's/ /; /g')"
  fi
done
