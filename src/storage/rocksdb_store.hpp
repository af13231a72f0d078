#pragma once
// The RocksDB Store: one RocksDB instance for all topics. Layout and reasoning: docs/storage.md.
// Module-private: only src/storage/rocksdb_*.cpp include it (other modules reach the store
// through open_rocksdb_store() and the Store interface). Its parts:
//   rocksdb_store.cpp        check() (Status to Error), open, close, the format version
//   rocksdb_options.cpp      DB and column family options, the dedup expiry filter
//   rocksdb_write.cpp        write(): one WriteBatch per Store::WriteBatch
//   rocksdb_read.cpp         loads at startup, reads of messages, dedup lookups
//   rocksdb_maintenance.cpp  reclaim, checkpoint, flush, recover, stats
// Test-only hooks (rocksdb_testing.hpp) are in rocksdb_testing.cpp, in the separate library
// loft_storage_testing, so loftd does not contain them.

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/ids.hpp"
#include "loft/storage/store.hpp"

namespace loft::storage {

// The one place a rocksdb::Status becomes a loft Error (rocksdb_store.cpp).
Result<void> check(const rocksdb::Status& status, std::string_view doing);

// Each topic's dedup window, for the dedup CF's compaction filter (which runs on RocksDB's
// background threads). Filled by load_topics() and write() (PutTopic, DropTopic); a topic not
// in it keeps its entries. Memory: one small entry per topic, none per message id.
class DedupWindows {
 public:
  void set(TopicId topic, std::uint64_t window_ms) {
    std::lock_guard lock{mutex_};
    windows_.insert_or_assign(topic.value, window_ms);
  }
  void erase(TopicId topic) {
    std::lock_guard lock{mutex_};
    windows_.erase(topic.value);
  }
  std::optional<std::uint64_t> get(TopicId topic) const {
    std::lock_guard lock{mutex_};
    const auto it = windows_.find(topic.value);
    if (it == windows_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::uint32_t, std::uint64_t> windows_;
};

// Drops dedup entries older than their topic's window when RocksDB compacts them, so the
// index's disk use follows the window, not the topic's age. The broker treats an expired
// entry as absent whether or not it was dropped yet (encoding::dedup_entry_expired decides
// both). Defined in rocksdb_options.cpp.
class DedupCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  explicit DedupCompactionFilter(std::shared_ptr<const DedupWindows> windows)
      : windows_(std::move(windows)) {}

  bool Filter(int level, const rocksdb::Slice& key, const rocksdb::Slice& existing_value,
              std::string* new_value, bool* value_changed) const override;
  const char* Name() const override { return "loft.DedupCompactionFilter"; }

 private:
  std::shared_ptr<const DedupWindows> windows_;
};

struct OpenOptions {
  rocksdb::DBOptions db;
  // default, topics, messages, groups, dedup, schedule, then any other family the directory
  // already has (see add_existing_families).
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
};

// `dedup_filter` (may be null: tests that build old directories) must outlive the DB; so must
// `env` (null: the default, real file system; tests pass one over a fault-injecting one).
OpenOptions make_open_options(const RocksDbOptions& options,
                              const rocksdb::CompactionFilter* dedup_filter = nullptr,
                              rocksdb::Env* env = nullptr);

// Adds to `open` every column family the directory `dir` has that `open` does not name.
void add_existing_families(OpenOptions& open, const std::string& dir);

namespace testing {
class StoreAccess;  // the test-only hooks' way in (rocksdb_testing.cpp)
}  // namespace testing

// Owns the DB and its column family handles from a successful Open until destruction, which
// destroys the handles and then closes the DB. Thread-safe as RocksDB is: write() from the
// broker's writer thread, read() and load_topics() from any thread.
class RocksDbStore final : public Store {
 public:
  // Opens (creating if missing) the store in options.dir; `env`, if not null, must outlive it.
  static Result<std::unique_ptr<RocksDbStore>> open(const RocksDbOptions& options,
                                                    rocksdb::Env* env = nullptr);
  ~RocksDbStore() override;

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  // rocksdb_read.cpp
  Result<std::vector<TopicInfo>> load_topics() override;
  Result<TopicId> load_next_topic_id() override;
  Result<std::vector<GroupRecord>> load_groups() override;
  Result<std::optional<DedupEntry>> find_dedup(TopicId topic, std::string_view id) const override;
  Result<std::vector<std::optional<DedupEntry>>> find_dedups(
      TopicId topic, std::span<const std::string_view> ids) const override;
  Result<std::vector<StoredMessage>> read(TopicId topic, Offset from,
                                          ReadLimits limits) const override;
  Result<std::shared_ptr<MessageBlock>> read_block(TopicId topic, Offset from,
                                                   ReadLimits limits) const override;
  Result<std::vector<ScheduledMessage>> read_schedule(std::int64_t from_due_ms,
                                                      std::int64_t up_to_due_ms,
                                                      ReadLimits limits) const override;

  // rocksdb_write.cpp
  Result<void> write(const WriteBatch& batch, Durability durability) override;

  // rocksdb_maintenance.cpp
  // REQUIRES: the DropTopic of `dropped` was written, and the id is never used again (the
  // broker never reuses ids), so every key in its range is garbage.
  Result<void> reclaim(TopicId dropped) override;
  // REQUIRES: a TrimTopic of `topic` up to at least `end` was written.
  Result<void> reclaim_trimmed(TopicId topic, Offset end) override;
  Result<void> checkpoint(const std::filesystem::path& dir) override;
  Result<void> flush() override;
  Result<void> recover() override;
  StoreStats stats() const override;

 private:
  friend class testing::StoreAccess;
  struct PendingWrite;  // a write()'s batch while it is built (rocksdb_write.cpp)
  // What a scan_messages visitor says after taking the message at the front of `rest`.
  enum class Scan { more, full, corrupt };

  RocksDbStore(std::string dir, rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
               std::shared_ptr<DedupWindows> windows,
               std::unique_ptr<DedupCompactionFilter> dedup_filter);

  Result<void> check_format_version();
  Result<void> put_format_version(std::uint32_t version);

  Result<void> add_op(PendingWrite& pending, const Op& op, std::span<const Op> earlier);
  Result<void> add_trim(PendingWrite& pending, const TrimTopic& trim);
  // The messages from `end` on of the record that holds `end`, when that record starts below
  // `end` (as a record value); nullopt when no record straddles `end`.
  Result<std::optional<std::string>> record_tail(TopicId topic, Offset end) const;

  Error corrupt_record(TopicId topic) const;
  // Calls visit(offset, rest) for each stored message of `topic` from offset `from` on, in
  // offset order, `rest` starting at that message's bytes inside its record; visit must take
  // the message off the front of `rest`. After the last visit of each record, end_of_record()
  // is called while the record's bytes are still valid (they are not after it returns: the
  // iterator moves on). Messages of a record below `from` are skipped undecoded. Stops when
  // visit says full, or at the topic's last message. Defined in rocksdb_read.cpp (its only user).
  template <class Visit, class EndOfRecord>
  Result<void> scan_messages(TopicId topic, Offset from, Visit&& visit,
                             EndOfRecord&& end_of_record) const;

  std::string dir_;
  // Declared before db_, so they are destroyed after it: RocksDB uses the filter until Close.
  std::shared_ptr<DedupWindows> windows_;
  std::unique_ptr<DedupCompactionFilter> dedup_filter_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* topics_ = nullptr;
  rocksdb::ColumnFamilyHandle* messages_ = nullptr;
  rocksdb::ColumnFamilyHandle* groups_ = nullptr;
  rocksdb::ColumnFamilyHandle* dedup_ = nullptr;
  rocksdb::ColumnFamilyHandle* schedule_ = nullptr;
};

}  // namespace loft::storage
