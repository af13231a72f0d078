#pragma once
// Test-only hooks into the RocksDB store, for states a correct loftd never writes. Declared
// here (module-private, no RocksDB types) so tests need not include RocksDB headers.

#include <cstdint>
#include <filesystem>

#include "loft/common/error.hpp"

namespace loft::storage::testing {

// Opens the store in `dir` and overwrites its format version record with `version`.
Result<void> overwrite_format_version(const std::filesystem::path& dir, std::uint32_t version);

}  // namespace loft::storage::testing
