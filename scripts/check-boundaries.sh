#!/usr/bin/env bash
# The pure modules (common, protocol, config, delivery) use only the standard library and
# tl::expected: no Asio, no RocksDB, no spdlog, no clock reads. Fails naming the offending line.
set -u
cd "$(dirname "$0")/.."
bad=$(grep -rnE '#include <(boost/asio|rocksdb/|spdlog/)|system_clock::now|steady_clock::now' \
  src/common src/protocol src/config src/delivery \
  include/loft/common include/loft/protocol include/loft/config include/loft/delivery)
if [[ -n "$bad" ]]; then
  echo "a pure module reaches outside its boundary:"
  echo "$bad"
  exit 1
fi
bad=$(grep -rlE '#include <rocksdb/' src include | grep -v '^src/storage/rocksdb_')
if [[ -n "$bad" ]]; then
  echo "only src/storage/rocksdb_* may include RocksDB: $bad"
  exit 1
fi
echo "module boundaries ok"
