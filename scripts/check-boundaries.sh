#!/usr/bin/env bash
# The pure modules (common, protocol, nats, config, delivery, auth) use only the standard library
# and tl::expected (auth also libsodium and toml++): no Asio, no RocksDB, no spdlog, no clock
# reads; nats no Boost at all (CONNECT's JSON is parsed by the front end).
# Fails naming the offending line.
set -u
cd "$(dirname "$0")/.."
bad=$(grep -rnE '#include <(boost/asio|rocksdb/|spdlog/)|system_clock::now|steady_clock::now' \
  src/common src/protocol src/nats src/config src/delivery src/auth \
  include/loft/common include/loft/protocol include/loft/nats include/loft/config \
  include/loft/delivery include/loft/auth)
if [[ -n "$bad" ]]; then
  echo "a pure module reaches outside its boundary:"
  echo "$bad"
  exit 1
fi
bad=$(grep -rnE '#include <boost/' src/nats include/loft/nats)
if [[ -n "$bad" ]]; then
  echo "the NATS protocol library is pure (std and tl::expected):"
  echo "$bad"
  exit 1
fi
bad=$(grep -rlE '#include <rocksdb/' src include | grep -v '^src/storage/rocksdb_')
if [[ -n "$bad" ]]; then
  echo "only src/storage/rocksdb_* may include RocksDB: $bad"
  exit 1
fi
# The broker core speaks loft's own types: no module below the front ends (and not http, which
# translates JSON to broker types) sees loft's wire format.
bad=$(grep -rnE '#include "loft/protocol/' src/broker src/delivery src/storage src/http \
  include/loft/broker include/loft/delivery include/loft/storage include/loft/http)
if [[ -n "$bad" ]]; then
  echo "only the codec's users (net, client, apps) may include loft/protocol:"
  echo "$bad"
  exit 1
fi
# Front ends reach storage only through the broker (its figures too: Broker::store_stats).
bad=$(grep -rnE '#include "loft/storage/' src/net src/http include/loft/net include/loft/http)
if [[ -n "$bad" ]]; then
  echo "net and http must not include loft/storage (ask the broker):"
  echo "$bad"
  exit 1
fi
# The NATS front end (natsport) is a front end of its own over the pure nats library: it never
# reaches into the other front ends, storage or loft's wire format, and only loftd wires it.
bad=$(grep -rnE '#include "loft/(net|http|storage|protocol|client)/' src/natsport \
  include/loft/natsport)
if [[ -n "$bad" ]]; then
  echo "natsport may use nats, auth, tls, broker, config and common, not another front end:"
  echo "$bad"
  exit 1
fi
bad=$(grep -rnE '#include "loft/natsport/' src include | grep -vE '^(src/apps|src/natsport|include/loft/natsport)/')
if [[ -n "$bad" ]]; then
  echo "only loftd's main (src/apps) uses the NATS front end:"
  echo "$bad"
  exit 1
fi
echo "module boundaries ok"
