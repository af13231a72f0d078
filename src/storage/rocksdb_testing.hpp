#pragma once
// Test-only hooks into the RocksDB store, for states a correct loftd never writes. Declared
// here (module-private, no RocksDB types) so tests need not include RocksDB headers. Defined in
// rocksdb_testing.cpp, in the library loft_storage_testing: only tests link it, not loftd.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/ids.hpp"
#include "loft/common/message.hpp"
#include "loft/storage/store.hpp"

namespace rocksdb {
class Env;  // only declared: tests that pass one include RocksDB themselves
}  // namespace rocksdb

namespace loft::storage::testing {

// Opens the store as open_rocksdb_store() does, but doing all file IO through `env` (e.g. a
// composite Env over a fault-injecting rocksdb::FileSystem). `env` must outlive the store.
Result<std::unique_ptr<Store>> open_rocksdb_store_on(const RocksDbOptions& options,
                                                     rocksdb::Env& env);

// Opens the store in `dir`, compacts its dedup column family (so the expiry filter runs over
// every entry) and returns how many entries are left.
Result<std::size_t> compact_dedup_and_count(const std::filesystem::path& dir);

// The format version record of the store in `dir`, read without opening it as a store (which
// would mark an older store with this build's version).
Result<std::uint32_t> read_format_version(const std::filesystem::path& dir);

// Opens the store in `dir` and overwrites its format version record with `version`.
Result<void> overwrite_format_version(const std::filesystem::path& dir, std::uint32_t version);

// Creates in `dir` what a loftd from before groups were persisted wrote: format version 1 and
// only the default, topics and messages column families, holding `topic` (in the 44-byte
// topic record written before dedup) and `messages`.
Result<void> create_store_without_groups(const std::filesystem::path& dir, const TopicInfo& topic,
                                         const std::vector<StoredMessage>& messages);

// Adds an empty column family `name` to the RocksDB directory `dir`, as a newer loftd might.
Result<void> add_column_family(const std::filesystem::path& dir, const std::string& name);

// The column family names of the RocksDB directory `dir` (which must exist).
Result<std::vector<std::string>> list_column_families(const std::filesystem::path& dir);

// Opens the store in `dir` and writes `value` as the raw groups CF value of (topic, name).
Result<void> put_raw_group_value(const std::filesystem::path& dir, TopicId topic,
                                 std::string_view name, std::string_view value);

// Opens the store in `dir` and writes `value` as the raw messages CF record of `topic` whose
// first message has offset `first`.
Result<void> put_raw_message_record(const std::filesystem::path& dir, TopicId topic, Offset first,
                                    std::string_view value);
}  // namespace loft::storage::testing
