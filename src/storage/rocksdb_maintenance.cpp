// The RocksDB Store's maintenance: giving back the space of dropped and trimmed messages,
// checkpoints (online backups), flush at shutdown, recovery after a write error, and the
// figures for monitoring.

#include <rocksdb/utilities/checkpoint.h>

#include <cstdlib>
#include <map>

#include "encoding.hpp"
#include "rocksdb_store.hpp"

namespace loft::storage {

namespace enc = encoding;

Result<void> RocksDbStore::reclaim(TopicId dropped) {
  const auto begin = enc::topic_begin_key(dropped);
  const auto end = enc::topic_end_key(dropped);
  const rocksdb::Slice b{begin};
  const rocksdb::Slice e{end};
  const auto what = " of dropped topic " + std::to_string(dropped.value) + " in " + dir_;
  // Only a compaction, no DeleteFilesInRange first: that could delete the file holding the
  // DeleteRange tombstone while keys it covers live on in files shared with a neighbouring
  // topic, which would bring them back.
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  return check(db_->CompactRange(co, messages_, &b, &e), "compact range" + what);
}

Result<void> RocksDbStore::reclaim_trimmed(TopicId topic, Offset end) {
  const auto begin = enc::topic_begin_key(topic);
  const auto stop = enc::message_key(topic, end);
  const rocksdb::Slice b{begin};
  const rocksdb::Slice e{stop};
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  return check(db_->CompactRange(co, messages_, &b, &e),
               "compact trimmed range of topic " + std::to_string(topic.value) + " in " + dir_);
}

Result<void> RocksDbStore::checkpoint(const std::filesystem::path& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  const auto what = "checkpoint of " + dir_ + " into " + dir.string();
  if (auto r = check(rocksdb::Checkpoint::Create(db_.get(), &raw), what); !r) return r;
  const std::unique_ptr<rocksdb::Checkpoint> cp{raw};
  // log_size_for_flush = 0: flush the memtables first, so the copy is SST files (hard
  // links where possible) plus a short WAL, and opens quickly.
  return check(cp->CreateCheckpoint(dir.string(), 0), what);
}

Result<void> RocksDbStore::flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return check(db_->Flush(fo, handles_), "flush " + dir_);
}

// After a write error RocksDB refuses every write (its "background error") until it is
// resumed. Resume() clears a recoverable error: it flushes the memtables to new SST files
// and starts a new WAL, so the WAL that took a torn write is never appended to again. It
// fails, and the store stays read-only, while the disk is still full. A no-op when there is
// no error. Why we call it ourselves rather than rely on RocksDB's own recovery:
// docs/storage.md, "Disk full and I/O errors".
Result<void> RocksDbStore::recover() { return check(db_->Resume(), "resume writes to " + dir_); }

StoreStats RocksDbStore::stats() const {
  StoreStats out;
  out.available = true;
  // Summed over every column family; a property RocksDB cannot give stays 0.
  auto sum = [&](const std::string& property) {
    std::uint64_t v = 0;
    return db_->GetAggregatedIntProperty(property, &v) ? v : 0;
  };
  out.live_data_bytes = sum(rocksdb::DB::Properties::kEstimateLiveDataSize);
  out.memtable_bytes = sum(rocksdb::DB::Properties::kCurSizeAllMemTables);
  out.pending_compaction_bytes = sum(rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
  // The write stall counts are only in the per-family statistics map ("io_stalls.*").
  for (auto* h : handles_) {
    std::map<std::string, std::string> cf;
    if (!db_->GetMapProperty(h, rocksdb::DB::Properties::kCFStats, &cf)) continue;
    auto count = [&](const char* key) -> std::uint64_t {
      const auto it = cf.find(key);
      if (it == cf.end()) return 0;
      // Values are decimal text; a malformed one counts as 0 rather than failing a scrape.
      return std::strtoull(it->second.c_str(), nullptr, 10);
    };
    out.write_stops += count("io_stalls.total_stop");
    out.write_slowdowns += count("io_stalls.total_slowdown");
  }
  return out;
}

}  // namespace loft::storage
