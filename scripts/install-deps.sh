#!/usr/bin/env bash
# Installs everything loft needs to build and test, from Debian 12 packages (and, for the NATS
# client scenarios, the npm packages pinned by tests/nats/js/package-lock.json).
# Idempotent: run it as often as you like. Needs root (or sudo).
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --build    only what building loft needs (the Dockerfile's build stage)
#   scripts/install-deps.sh --runtime  only the shared libraries loftd needs at run time
#   scripts/install-deps.sh --build-tests  what building loft and its tests needs (build + cnats)
#   scripts/install-deps.sh --checks   the rest: clang (tidy, fuzzing), nats-server, Node and the
#                                      npm packages; scripts/test.sh installs these while it
#                                      builds, since nothing before its first check needs them
set -euo pipefail

runtime_pkgs=(
  ca-certificates
  librocksdb7.8
  libspdlog1.10
  libfmt9
  libboost-program-options1.81.0
  libboost-json1.81.0
  libtomlplusplus3
  libxxhash0
  libsodium23  # password hashes (Argon2id, scrypt) of the users file: src/auth
  libssl3      # TLS on the binary and HTTP listeners (OpenSSL 3 through Asio)
  curl  # the Dockerfile's HEALTHCHECK: GET /healthz
)

build_pkgs=(
  build-essential g++ cmake ninja-build pkg-config git ccache python3
  mold  # a faster linker (CMakeLists.txt, LOFT_MOLD): the sanitizer builds link ~50 programs
  libboost1.81-dev libboost-program-options1.81-dev libboost-system1.81-dev libboost-json1.81-dev
  librocksdb-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libtomlplusplus-dev libexpected-dev libxxhash-dev
  libsodium-dev  # src/auth: password hashes, keyed BLAKE2b, random bytes
  libssl-dev     # TLS listeners and the client's TLS (Asio's SSL support on OpenSSL 3)
  openssl        # tests make their certificates with it; scripts/bench-security.sh too
)

# The NATS client scenarios (tests/nats), run with unmodified NATS clients against a reference
# server and against loft's NATS port: cnats is compiled with the tests, the rest runs them.
test_build_pkgs=(
  libnats-dev    # cnats, the C client (tests/nats/c)
)
check_pkgs=(
  clang-14 libclang-rt-14-dev clang-tidy-14  # scripts/tidy.sh and the libFuzzer targets
  nats-server    # the reference server
)

# Node.js >= 18 with npm runs the nats.js scenarios (tests/nats/js). A machine that already has
# one (e.g. a newer Node that ships its own npm) keeps it; otherwise Debian's nodejs and npm.
node_major() { node --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p'; }
usable_node() {
  local major
  major=$(node_major)
  [[ -n "$major" && "$major" -ge 18 ]] && npm --version >/dev/null 2>&1
}

with_tests=false
case "${1:-}" in
  --runtime) pkgs=("${runtime_pkgs[@]}") ;;
  --build) pkgs=("${build_pkgs[@]}") ;;
  --build-tests) pkgs=("${build_pkgs[@]}" "${test_build_pkgs[@]}") ;;
  --checks | "")
    with_tests=true
    pkgs=("${check_pkgs[@]}")
    if [[ -z "${1:-}" ]]; then pkgs+=("${build_pkgs[@]}" "${test_build_pkgs[@]}"); fi
    if ! usable_node; then pkgs+=(nodejs npm); fi
    ;;
  *) echo "usage: scripts/install-deps.sh [--build|--build-tests|--checks|--runtime]" >&2; exit 2 ;;
esac

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! $with_tests; then exit 0; fi

# The nats.js scenarios' npm packages, exactly as the lockfile pins them. npm ci starts from an
# empty node_modules, so it runs only when the lockfile differs from the one last installed.
usable_node || { echo "install-deps: no Node.js >= 18 with npm on PATH (node $(node --version 2>&1))" >&2; exit 1; }
js_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/nats/js"
stamp="$js_dir/node_modules/.loft-installed-lock.json"
if cmp -s "$js_dir/package-lock.json" "$stamp"; then
  echo "install-deps: tests/nats/js/node_modules is up to date with its lockfile"
else
  # Node trusts only its own CA list unless NODE_EXTRA_CA_CERTS names more; behind a proxy whose
  # CA is in the system bundle (not Node's list), npm fails with SELF_SIGNED_CERT_IN_CHAIN. So
  # npm gets the system bundle when nothing else is set, for this call only.
  npm_env=()
  system_bundle=/etc/ssl/certs/ca-certificates.crt
  if [[ -z "${NODE_EXTRA_CA_CERTS:-}" && -r "$system_bundle" ]]; then
    npm_env=("NODE_EXTRA_CA_CERTS=$system_bundle")
  fi
  echo "install-deps: npm ci in tests/nats/js (node $(node --version), npm $(npm --version)${npm_env[*]:+, ${npm_env[*]}})"
  (cd "$js_dir" && env "${npm_env[@]}" npm ci --no-audit --no-fund --loglevel=error)
  cp "$js_dir/package-lock.json" "$stamp"
fi
