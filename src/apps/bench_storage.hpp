#pragma once
// `loft bench storage`: the same appends as `bench publish`, through loft's storage and its
// group-commit writer, with no network. Links the broker, the storage layer and RocksDB, so it
// lives in its own binary, loft-bench-storage, which `loft` runs (see bench_storage_main.cpp).

#include <boost/json/object.hpp>

#include "bench.hpp"

namespace loft::apps::bench {

// Runs a storage benchmark in params.data_dir, or in a temporary dir.
Result<boost::json::object> run_storage(const Params& params);

}  // namespace loft::apps::bench
