// The RocksDB store's options: the DB's, each column family's, and the dedup expiry filter
// they install.

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>

#include <algorithm>
#include <chrono>

#include "encoding.hpp"
#include "rocksdb_store.hpp"

namespace loft::storage {
namespace {

namespace enc = encoding;

constexpr std::string_view kTopicsCf = "topics";
constexpr std::string_view kMessagesCf = "messages";
constexpr std::string_view kGroupsCf = "groups";  // since the groups were persisted; same format
constexpr std::string_view kDedupCf = "dedup";    // since dedup by message id; same format
constexpr std::string_view kScheduleCf = "schedule";  // since delayed delivery (format 4)

// Switches off RocksDB's own recovery from a background error, so that loft's writer, which
// calls DB::Resume() (Store::recover) every retry interval while writes fail, is the only one
// recovering. Why: after a WAL write fails with "no space left", RocksDB 7.8's own recovery
// waits until the disk has as much free space as its reserve (64 MiB here: the largest write
// buffer), and while it waits every DB::Resume() returns Busy; with less free space than that
// after a clean-up, writes never came back. Resume() succeeds as soon as its flush fits.
// docs/storage.md, "Disk full and I/O errors".
class ResumeOnlyByLoft final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status /*error*/,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

}  // namespace

bool DedupCompactionFilter::Filter(int /*level*/, const rocksdb::Slice& key,
                                   const rocksdb::Slice& existing_value, std::string* /*new_value*/,
                                   bool* /*value_changed*/) const {
  const auto topic = enc::topic_of_prefixed_key(key.ToStringView());
  const auto entry = enc::decode_dedup(existing_value.ToStringView());
  if (!topic || !entry) return false;  // not ours to judge: keep it
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return enc::dedup_entry_expired(entry->timestamp_ms, windows_->get(*topic), now);
}

OpenOptions make_open_options(const RocksDbOptions& options,
                              const rocksdb::CompactionFilter* dedup_filter, rocksdb::Env* env) {
  OpenOptions out;
  if (env != nullptr) out.db.env = env;
  out.db.create_if_missing = true;
  out.db.create_missing_column_families = true;
  out.db.max_background_jobs = 2;  // the target machine has 2 cores
  out.db.keep_log_file_num = 5;    // RocksDB's own info LOG files, not the WAL
  // Bounds WAL growth when the small topics CF rarely flushes: RocksDB then flushes it so the
  // old WAL files can go.
  out.db.max_total_wal_size = 256 << 20;
  out.db.listeners.push_back(std::make_shared<ResumeOnlyByLoft>());

  // One block cache for the whole instance, however many topics there are.
  // Few shards: a shard only caches blocks smaller than itself, and a full bloom filter of a
  // large dedup SST file is megabytes. With the default 64 shards of 1 MiB such a filter was
  // never cached and every id lookup read it from disk (docs/performance.md).
  const auto cache = rocksdb::NewLRUCache(options.block_cache_bytes, /*num_shard_bits=*/2);

  rocksdb::ColumnFamilyOptions small;
  small.write_buffer_size = 4 << 20;
  rocksdb::BlockBasedTableOptions small_table;
  small_table.block_cache = cache;
  small.table_factory.reset(rocksdb::NewBlockBasedTableFactory(small_table));

  rocksdb::ColumnFamilyOptions messages;
  messages.write_buffer_size = 64 << 20;
  messages.max_write_buffer_number = 3;
  messages.target_file_size_base = 64 << 20;
  // The 4-byte topic id is the prefix: the bloom filter then lets a catch-up read skip every
  // SST file that holds nothing of its topic, which is most of them with thousands of topics.
  messages.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(4));
  rocksdb::BlockBasedTableOptions messages_table;
  messages_table.block_cache = cache;
  messages_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  messages_table.whole_key_filtering = true;  // also answers point reads by offset
  messages.table_factory.reset(rocksdb::NewBlockBasedTableFactory(messages_table));

  out.families.emplace_back(rocksdb::kDefaultColumnFamilyName, small);
  out.families.emplace_back(std::string(kTopicsCf), small);
  out.families.emplace_back(std::string(kMessagesCf), messages);
  // dedup: point lookups by (topic, message id) on every publish with an id. A whole-key
  // bloom filter answers "never seen" (the common case) without reading a data block; index
  // and filter blocks live in the shared block cache, so memory stays bounded however many
  // ids the window holds (they are paged in and out like data blocks).
  rocksdb::ColumnFamilyOptions dedup;
  dedup.write_buffer_size = 16 << 20;
  dedup.compaction_filter = dedup_filter;
  // Almost every id looked up is new: a bloom filter over the memtable's keys answers "not
  // here" without searching its skip list, which was most of the lookup's CPU
  // (docs/performance.md). Costs 10 % of write_buffer_size.
  dedup.memtable_prefix_bloom_size_ratio = 0.1;
  dedup.memtable_whole_key_filtering = true;
  rocksdb::BlockBasedTableOptions dedup_table;
  dedup_table.block_cache = cache;
  dedup_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  dedup_table.whole_key_filtering = true;
  dedup_table.cache_index_and_filter_blocks = true;
  dedup_table.pin_l0_filter_and_index_blocks_in_cache = true;
  dedup.table_factory.reset(rocksdb::NewBlockBasedTableFactory(dedup_table));

  out.families.emplace_back(std::string(kGroupsCf), small);
  out.families.emplace_back(std::string(kDedupCf), dedup);
  // schedule: a queue by due time. Releases delete from its front, so a read from the front
  // would step over every deletion since the last compaction: files that are mostly deletions
  // are compacted early, and the broker starts its reads at the lowest due time it still holds
  // (Store::read_schedule). Values are whole messages, like the messages CF's.
  rocksdb::ColumnFamilyOptions schedule;
  schedule.write_buffer_size = 16 << 20;
  schedule.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(/*sliding_window_size=*/1024,
                                                    /*deletion_trigger=*/512));
  rocksdb::BlockBasedTableOptions schedule_table;
  schedule_table.block_cache = cache;
  schedule.table_factory.reset(rocksdb::NewBlockBasedTableFactory(schedule_table));
  out.families.emplace_back(std::string(kScheduleCf), schedule);
  return out;
}

// RocksDB refuses to open a directory unless every family in it is named. Ours that are missing
// (`groups` in a directory written before groups were persisted) are created by
// create_missing_column_families; others (none today) are opened with the small options so the
// format version check can speak instead of an "column families not opened" error.
void add_existing_families(OpenOptions& open, const std::string& dir) {
  std::vector<std::string> existing;
  // Fails for a new directory (no CURRENT yet); any real problem resurfaces in DB::Open.
  if (!rocksdb::DB::ListColumnFamilies(open.db, dir, &existing).ok()) return;
  const auto small = open.families.front().options;
  for (const auto& name : existing) {
    const bool known = std::any_of(open.families.begin(), open.families.end(),
                                   [&](const auto& f) { return f.name == name; });
    if (!known) open.families.emplace_back(name, small);
  }
}

}  // namespace loft::storage
