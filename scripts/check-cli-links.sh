#!/usr/bin/env bash
# The `loft` CLI is a client: it must not carry the broker, the storage layer or RocksDB
# (`loft bench storage` runs them in loft-bench-storage). Checks the built binary: no RocksDB
# among its shared libraries (readelf -d), no broker or storage code linked in (nm), and the
# helper installed beside it. Usage: check-cli-links.sh PATH/TO/loft
set -u
loft=${1:?usage: $0 PATH/TO/loft}
status=0
needed=$(readelf -d "$loft" | grep NEEDED) || { echo "readelf failed on $loft"; exit 1; }
if grep -qi rocksdb <<<"$needed"; then
  echo "loft needs RocksDB:"
  grep -i rocksdb <<<"$needed"
  status=1
fi
server=$(nm -C --defined-only "$loft" | grep -E ' loft::(broker|storage)::' | head -5)
if [[ -n "$server" ]]; then
  echo "loft links broker or storage code, e.g.:"
  echo "$server"
  status=1
fi
if [[ ! -x "$(dirname "$loft")/loft-bench-storage" ]]; then
  echo "no loft-bench-storage beside $loft"
  status=1
fi
[[ $status == 0 ]] && echo "loft links no server code"
exit $status
