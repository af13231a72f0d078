#!/usr/bin/env bash
# Installs everything loft needs to build and test, from Debian 12 packages only.
# Idempotent: run it as often as you like. Needs root (or sudo).
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --runtime  only the shared libraries loftd needs at run time
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
  libboost1.81-dev libboost-program-options1.81-dev libboost-system1.81-dev libboost-json1.81-dev
  librocksdb-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libtomlplusplus-dev libexpected-dev libxxhash-dev
  libsodium-dev  # src/auth: password hashes, keyed BLAKE2b, random bytes
  libssl-dev     # TLS listeners and the client's TLS (Asio's SSL support on OpenSSL 3)
  openssl        # tests make their certificates with it; scripts/bench-security.sh too
  clang-14 libclang-rt-14-dev clang-tidy-14
)

if [[ "${1:-}" == "--runtime" ]]; then
  pkgs=("${runtime_pkgs[@]}")
else
  pkgs=("${build_pkgs[@]}")
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
