#!/usr/bin/env bash
# What TLS and users cost: `loft bench publish` and `bench consume` against a fresh loftd per
# run, interleaved in one session (so the machine's drift falls on every variant alike):
#   plain  plaintext, no users (as today)
#   tls    the same over the TLS listener (TLS 1.3, a P-256 certificate)
#   user   plaintext with a users file, the bench authenticated as a user with a few patterns
# Prints each run's figure and, per variant, the median and its ratio to `plain`.
#   scripts/bench-security.sh [BIN_DIR] [ROUNDS] [MESSAGES]
# BIN_DIR holds loftd and loft (default build/release/src/apps); ROUNDS 3; MESSAGES 500000.
# Environment:
#   LOFT_BENCH_MODES     which runs, of (default "publish consume"):
#                          publish  bench publish --messages MESSAGES           msgs_per_sec
#                          consume  bench consume --messages MESSAGES (drain)   msgs_per_sec
#                          single   bench publish --batch 1 --window 1          p50_us
#                                   --messages LOFT_BENCH_SINGLE_MESSAGES (20000)
#                          e2e      bench e2e --rate LOFT_BENCH_E2E_RATE (1000)  p50_us
#                                   --duration LOFT_BENCH_E2E_DURATION (10s)
#   LOFT_BENCH_VARIANTS  which variants (default "plain tls user"; plain is the baseline)
set -euo pipefail
bin=${1:-build/release/src/apps}
rounds=${2:-3}
messages=${3:-500000}
read -ra modes <<<"${LOFT_BENCH_MODES:-publish consume}"
read -ra variants <<<"${LOFT_BENCH_VARIANTS:-plain tls user}"
single_messages=${LOFT_BENCH_SINGLE_MESSAGES:-20000}
e2e_rate=${LOFT_BENCH_E2E_RATE:-1000}
e2e_duration=${LOFT_BENCH_E2E_DURATION:-10s}
for m in "${modes[@]}"; do
  case $m in publish | consume | single | e2e) ;; *) echo "unknown mode '$m'" >&2; exit 2 ;; esac
done
for v in "${variants[@]}"; do
  case $v in plain | tls | user) ;; *) echo "unknown variant '$v'" >&2; exit 2 ;; esac
done

# The figure a mode reports: throughput, or the median latency of single requests.
metric() { case $1 in single | e2e) echo p50_us ;; *) echo msgs_per_sec ;; esac; }
work=$(mktemp -d /tmp/loft-bench-security.XXXX)
trap 'rm -rf "$work"' EXIT

# Certificates: a CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=loftd" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\n" >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null

# A user allowed everything the bench does, behind a few patterns that do not match.
export LOFT_PASSWORD="bench-$RANDOM-$RANDOM"
hash=$(printf '%s\n' "$LOFT_PASSWORD" | "$bin/loft" user hash-password)
cat >"$work/users.toml" <<EOF
[[users]]
name = "bench"
password_hash = "$hash"
publish = ["orders.*", "invoices", "*"]
subscribe = ["orders.*", "*"]
admin = ["*"]
deny = ["secret.*"]
EOF

run() {  # variant mode -> the mode's metric
  local variant=$1 mode=$2 d
  d=$(mktemp -d "$work/run.XXXX")
  local conf="$d/loftd.toml"
  {
    echo "tls_listen = \"127.0.0.1:0\""
    echo "tls_cert_file = \"$work/server.pem\""
    echo "tls_key_file = \"$work/server.key\""
    [[ $variant == user ]] && echo "users_file = \"$work/users.toml\""
  } >"$conf"
  "$bin/loftd" --config "$conf" --listen 127.0.0.1:0 --port-file "$d/port" \
    --tls-port-file "$d/tls-port" --http-listen off --data-dir "$d/data" --log-level warn \
    2>"$d/log" &
  local pid=$!
  for _ in $(seq 1 400); do [[ -s "$d/port" ]] && break; sleep 0.05; done
  local args=(--broker "127.0.0.1:$(cat "$d/port")")
  case $variant in
    tls) args=(--broker "127.0.0.1:$(cat "$d/tls-port")" --tls-ca "$work/ca.pem") ;;
    user) args+=(--user bench) ;;
  esac
  local bench
  case $mode in
    publish | consume) bench=("$mode" --messages "$messages") ;;
    single) bench=(publish --batch 1 --window 1 --messages "$single_messages") ;;
    e2e) bench=(e2e --rate "$e2e_rate" --duration "$e2e_duration") ;;
  esac
  local out
  out=$(timeout 300 "$bin/loft" "${args[@]}" --json bench "${bench[@]}" 2>"$d/err") ||
    { echo "FAIL $variant $mode: $(cat "$d/err")" >&2; out='{}'; }
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  python3 -c 'import json,sys; print(int(json.loads(sys.argv[1]).get(sys.argv[2], 0)))' "$out" \
    "$(metric "$mode")"
}

declare -A results
n=${#variants[@]}
for i in $(seq 1 "$rounds"); do
  # Rotate the order each round, so no variant always runs first.
  for j in $(seq 0 $((n - 1))); do
    v=${variants[$(((i + j) % n))]}
    for mode in "${modes[@]}"; do
      r=$(run "$v" "$mode")
      echo "round $i $v $mode $(metric "$mode")=$r"
      results[$v.$mode]+="$r "
    done
  done
done

echo
for mode in "${modes[@]}"; do
  base=""
  if [[ -n ${results[plain.$mode]:-} ]]; then
    base=$(python3 -c 'import statistics,sys; print(statistics.median(map(int,sys.argv[1].split())))' \
      "${results[plain.$mode]}")
  fi
  for v in "${variants[@]}"; do
    python3 - "$v" "$mode" "${results[$v.$mode]}" "$base" "$(metric "$mode")" <<'EOF'
import statistics, sys
v, mode, runs, base, unit = sys.argv[1], sys.argv[2], list(map(int, sys.argv[3].split())), sys.argv[4], sys.argv[5]
m = statistics.median(runs)
ratio = f"  ratio to plain {m / float(base):.2f}" if base and float(base) > 0 else ""
print(f"{mode:8} {v:6} median {m:>10,.0f} {unit}{ratio}  runs {runs}")
EOF
  done
done
