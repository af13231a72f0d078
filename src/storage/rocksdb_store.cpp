// The RocksDB Store: one RocksDB instance for all topics. Layout and reasoning: docs/storage.md.

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <span>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include "encoding.hpp"
#include "loft/storage/store.hpp"
#include "read_budget.hpp"
#include "rocksdb_info_log.hpp"
#include "rocksdb_testing.hpp"

namespace loft::storage {
namespace {

namespace enc = encoding;

// The one place a rocksdb::Status becomes a loft Error. A full disk gets its own code, so a
// client can tell "retry later" from a broken store, and the text says it in plain words.
Result<void> check(const rocksdb::Status& status, std::string_view doing) {
  if (status.ok()) return {};
  if (status.IsNoSpace()) {
    return fail(Errc::storage_full, "disk full: " + std::string(doing) + ": " + status.ToString());
  }
  return fail(Errc::storage_error, std::string(doing) + ": " + status.ToString());
}

constexpr std::string_view kTopicsCf = "topics";
constexpr std::string_view kMessagesCf = "messages";
constexpr std::string_view kGroupsCf = "groups";  // since the groups were persisted; same format
constexpr std::string_view kDedupCf = "dedup";    // since dedup by message id; same format
// A messages record takes consecutive appends until it holds this many bytes: big enough that
// a publish batch is one record, small enough that reading one offset decodes little.
constexpr std::size_t kMaxRecordBytes = 256 << 10;

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
// entry as absent whether or not it was dropped yet (enc::dedup_entry_expired decides both).
class DedupCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  explicit DedupCompactionFilter(std::shared_ptr<const DedupWindows> windows)
      : windows_(std::move(windows)) {}

  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& existing_value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    const auto topic = enc::topic_of_prefixed_key(key.ToStringView());
    const auto entry = enc::decode_dedup(existing_value.ToStringView());
    if (!topic || !entry) return false;  // not ours to judge: keep it
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return enc::dedup_entry_expired(entry->timestamp_ms, windows_->get(*topic), now);
  }

  const char* Name() const override { return "loft.DedupCompactionFilter"; }

 private:
  std::shared_ptr<const DedupWindows> windows_;
};

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

// RocksDB's LOG is started anew past this size (keep_log_file_num files are kept): a loftd
// that runs for months under load logs every flush and compaction.
constexpr std::uint64_t kMaxInfoLogBytes = 16 << 20;

struct OpenOptions {
  rocksdb::DBOptions db;
  // default, topics, messages, groups, dedup, then any other family the directory
  // already has (see add_existing_families).
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
};

// `dedup_filter` (may be null: tests that build old directories) must outlive the DB; so must
// `env` (null: the default, real file system; tests pass one over a fault-injecting one).
OpenOptions make_open_options(const RocksDbOptions& options,
                              const rocksdb::CompactionFilter* dedup_filter = nullptr,
                              rocksdb::Env* env = nullptr) {
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

// Owns the DB and its column family handles from a successful Open until destruction, which
// destroys the handles and then closes the DB. Thread-safe as RocksDB is: write() from the
// broker's writer thread, read() and load_topics() from any thread.
class RocksDbStore final : public Store {
 public:
  static Result<std::unique_ptr<RocksDbStore>> open(const RocksDbOptions& options,
                                                    rocksdb::Env* env = nullptr) {
    const auto dir = options.dir.string();
    std::error_code ec;
    std::filesystem::create_directories(options.dir, ec);
    if (ec) {
      return fail(Errc::storage_error,
                  "open store: cannot create directory " + dir + ": " + ec.message());
    }
    auto windows = std::make_shared<DedupWindows>();
    auto filter = std::make_unique<DedupCompactionFilter>(windows);
    auto open = make_open_options(options, filter.get(), env);
    // Our own writer of RocksDB's LOG: the default one aborts loftd when the disk is full.
    open.db.info_log = open_info_log(options.dir, open.db.keep_log_file_num, kMaxInfoLogBytes);
    add_existing_families(open, dir);
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    if (auto r = check(rocksdb::DB::Open(open.db, dir, open.families, &handles, &raw),
                       "open store in " + dir);
        !r) {
      return tl::unexpected(std::move(r.error()));
    }
    // From here the destructor closes the DB, whichever way open() returns.
    auto store = std::unique_ptr<RocksDbStore>(
        new RocksDbStore(dir, raw, handles, std::move(windows), std::move(filter)));
    if (auto r = store->check_format_version(); !r) return tl::unexpected(std::move(r.error()));
    return store;
  }

  ~RocksDbStore() override {
    for (auto* h : handles_) std::ignore = db_->DestroyColumnFamilyHandle(h);  // cannot fail
    // Close() flushes nothing we rely on (the WAL holds every acknowledged write); a failure
    // here has no one left to tell.
    std::ignore = db_->Close();
  }

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  Result<std::vector<TopicInfo>> load_topics() override {
    std::vector<TopicInfo> out;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, topics_)};
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto meta = enc::decode_topic_meta(it->key().ToStringView(), it->value().ToStringView());
      if (!meta) {
        return fail(Errc::storage_error, "load topics from " + dir_ +
                                             ": corrupt metadata of topic '" +
                                             it->key().ToString() + "'");
      }
      windows_->set(meta->id, meta->dedup_window_ms);
      out.push_back(std::move(*meta));
    }
    if (auto r = check(it->status(), "load topics from " + dir_); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    return out;
  }

  Result<TopicId> load_next_topic_id() override {
    std::string value;
    const auto s =
        db_->Get(rocksdb::ReadOptions{}, db_->DefaultColumnFamily(), enc::kNextTopicIdKey, &value);
    if (s.IsNotFound()) return TopicId{1};
    if (auto r = check(s, "load next topic id from " + dir_); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    const auto next = enc::decode_u32(value);
    if (!next) return fail(Errc::storage_error, "corrupt next topic id in " + dir_);
    return TopicId{*next};
  }

  Result<std::vector<GroupRecord>> load_groups() override {
    std::vector<GroupRecord> out;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, groups_)};
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto key = enc::parse_group_key(it->key().ToStringView());
      if (!key) {
        return fail(Errc::storage_error, "load groups from " + dir_ + ": corrupt group key of " +
                                             std::to_string(it->key().size()) + " bytes");
      }
      auto group = enc::decode_group(key->first, key->second, it->value().ToStringView());
      if (!group) {
        return fail(Errc::storage_error, "load groups from " + dir_ + ": cannot decode group '" +
                                             key->second + "' of topic " +
                                             std::to_string(key->first.value) +
                                             " (corrupt, or written by a newer loftd)");
      }
      out.push_back(std::move(*group));
    }
    if (auto r = check(it->status(), "load groups from " + dir_); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    return out;
  }

  Result<void> write(const WriteBatch& batch, Durability durability) override {
    if (batch.empty()) return {};
    rocksdb::WriteBatch wb;
    // Appends at consecutive offsets of one topic become one messages record (key: the first
    // offset), up to kMaxRecordBytes: one memtable insert per record instead of per message,
    // which was half of the writer's CPU (docs/performance.md, docs/storage.md). The records
    // are put after every other op; a drop or trim later in the batch applies to them here
    // first, so the batch has the effect of its ops in order.
    std::vector<Run> runs;
    std::map<std::uint32_t, Offset> trimmed;  // topic -> highest trim end in this batch
    std::string dedup_key;
    std::string dedup_value;
    for (std::size_t i = 0; i < batch.ops.size(); ++i) {
      const auto& op = batch.ops[i];
      rocksdb::Status s;
      if (const auto* put = std::get_if<PutTopic>(&op)) {
        // Known to the compaction filter before its entries can reach a compaction.
        windows_->set(put->meta.id, put->meta.dedup_window_ms);
        s = wb.Put(topics_, put->meta.name, enc::encode_topic_meta(put->meta));
      } else if (const auto* append = std::get_if<Append>(&op)) {
        if (append->message == nullptr) {
          return fail(Errc::internal_error, "write: Append without a message");
        }
        if (runs.empty() || runs.back().topic != append->topic ||
            runs.back().next != append->offset || runs.back().value.size() >= kMaxRecordBytes) {
          runs.push_back(Run{append->topic, append->offset, append->offset, {}});
        }
        auto& run = runs.back();
        enc::encode_message(append->timestamp_ms, *append->message, run.value);
        run.next = Offset{append->offset.value + 1};
      } else if (const auto* next = std::get_if<SetNextTopicId>(&op)) {
        s = wb.Put(db_->DefaultColumnFamily(), enc::kNextTopicIdKey,
                   enc::encode_u32(next->next.value));
      } else if (const auto* drop = std::get_if<DropTopic>(&op)) {
        std::erase_if(runs, [&](const Run& r) { return r.topic == drop->id; });
        s = wb.Delete(topics_, drop->name);
        if (s.ok()) {
          s = wb.DeleteRange(messages_, enc::topic_begin_key(drop->id),
                             enc::topic_end_key(drop->id));
        }
        if (s.ok()) s = drop_groups(wb, drop->id, {batch.ops.data(), i});
        if (s.ok()) s = drop_dedup(wb, drop->id, {batch.ops.data(), i});
      } else if (const auto* dedup = std::get_if<PutDedup>(&op)) {
        // Put copies both: one key and one value buffer serve every id of the batch.
        enc::dedup_key_into(dedup->topic, dedup->id, dedup_key);
        enc::encode_dedup_into({dedup->offset, dedup->timestamp_ms, dedup->payload_hash},
                               dedup_value);
        s = wb.Put(dedup_, dedup_key, dedup_value);
      } else if (const auto* put_group = std::get_if<PutGroup>(&op)) {
        s = wb.Put(groups_, enc::group_key(put_group->group.topic, put_group->group.name),
                   enc::encode_group(put_group->group));
      } else if (const auto* drop_group = std::get_if<DropGroup>(&op)) {
        s = wb.Delete(groups_, enc::group_key(drop_group->topic, drop_group->name));
      } else if (const auto* trim = std::get_if<TrimTopic>(&op)) {
        // One range tombstone however many messages go, like a drop. A record that holds
        // offsets on both sides of `end` is cut: the tombstone removes it, and its messages
        // from `end` on are put back as a record at `end` (a suffix of its value is one).
        // A trim below one made earlier in this batch has nothing left to remove.
        auto& end = trimmed[trim->topic.value];
        if (trim->end <= end) continue;
        end = trim->end;
        if (auto r = trim_runs(runs, trim->topic, end); !r) return r;
        auto tail = record_tail(trim->topic, end);
        if (!tail) return tl::unexpected(std::move(tail.error()));
        s = wb.DeleteRange(messages_, enc::topic_begin_key(trim->topic),
                           enc::message_key(trim->topic, end));
        if (s.ok() && *tail) s = wb.Put(messages_, enc::message_key(trim->topic, end), **tail);
      }
      if (auto r = check(s, "build write batch for " + dir_); !r) return r;
    }
    for (const auto& run : runs) {
      const auto s = wb.Put(messages_, enc::message_key(run.topic, run.first), run.value);
      if (auto r = check(s, "build write batch for " + dir_); !r) return r;
    }
    rocksdb::WriteOptions wo;
    wo.sync = durability == Durability::fsync;
    auto written = check(db_->Write(wo, &wb),
                         "write batch of " + std::to_string(batch.ops.size()) + " ops to " + dir_);
    if (written) {
      // Ids are never reused, so a dropped id's window is never needed again; a later PutTopic
      // in the same batch has a new id.
      for (const auto& op : batch.ops) {
        if (const auto* drop = std::get_if<DropTopic>(&op)) windows_->erase(drop->id);
      }
    }
    return written;
  }

  Result<std::optional<DedupEntry>> find_dedup(TopicId topic, std::string_view id) const override {
    std::string value;
    const auto s = db_->Get(rocksdb::ReadOptions{}, dedup_, enc::dedup_key(topic, id), &value);
    if (s.IsNotFound()) return std::optional<DedupEntry>{};
    const auto what = "find dedup entry of topic " + std::to_string(topic.value) + " in " + dir_;
    if (auto r = check(s, what); !r) return tl::unexpected(std::move(r.error()));
    auto entry = enc::decode_dedup(value);
    if (!entry) return fail(Errc::storage_error, what + ": corrupt dedup entry");
    return std::optional<DedupEntry>{*entry};
  }

  Result<std::vector<std::optional<DedupEntry>>> find_dedups(
      TopicId topic, std::span<const std::string_view> ids) const override {
    // Every key in one buffer (one allocation, not one per id), then a view of each.
    const auto prefix = enc::dedup_key(topic, {});  // every key is this, then the id
    std::size_t total = 0;
    for (const auto id : ids) total += prefix.size() + id.size();
    std::string buffer;
    buffer.reserve(total);
    for (const auto id : ids) buffer.append(prefix).append(id);
    std::vector<std::string_view> keys;  // `buffer` no longer grows
    keys.reserve(ids.size());
    for (std::size_t at = 0; const auto id : ids) {
      keys.emplace_back(buffer.data() + at, prefix.size() + id.size());
      at += prefix.size() + id.size();
    }
    // MultiGet walks the memtables and each SST file once for keys given in comparator order
    // (bytewise here, as std::string_view compares); sorting the slices ourselves lets it skip
    // its own copy and sort. Equal keys are fine: each gets its own result.
    std::vector<rocksdb::Slice> sorted(keys.size());
    std::vector<std::size_t> order(keys.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
    for (std::size_t i = 0; i < order.size(); ++i) {
      sorted[i] = rocksdb::Slice{keys[order[i]].data(), keys[order[i]].size()};
    }
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db_->MultiGet(rocksdb::ReadOptions{}, dedup_, sorted.size(), sorted.data(), values.data(),
                  statuses.data(), /*sorted_input=*/true);
    std::vector<std::optional<DedupEntry>> out(ids.size());
    // Only built on a failure: a found id is the common case of a retried publish.
    const auto what = [&] {
      return "find dedup entries of topic " + std::to_string(topic.value) + " in " + dir_;
    };
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok()) return tl::unexpected(check(statuses[i], what()).error());
      auto entry = enc::decode_dedup(values[i].ToStringView());
      if (!entry) return fail(Errc::storage_error, what() + ": corrupt dedup entry");
      out[order[i]] = *entry;
    }
    return out;
  }

  Result<std::vector<StoredMessage>> read(TopicId topic, Offset from,
                                          ReadLimits limits) const override {
    std::vector<StoredMessage> out;
    ReadBudget budget{limits};
    const auto visit = [&](Offset offset, std::string_view& rest) {
      auto message = enc::decode_next_message(offset, rest);
      if (!message) return Scan::corrupt;
      out.push_back(std::move(*message));
      return budget.take(out.back().message) ? Scan::more : Scan::full;
    };
    auto scanned = scan_messages(topic, from, visit, [] {});
    if (!scanned) return tl::unexpected(std::move(scanned.error()));
    return out;
  }

  // As read(), but each record's run of taken messages is copied once into a buffer of the
  // block's own (exact size, so it never moves) while the iterator still holds the record, and
  // the views made in the record are moved over to the copy.
  Result<std::shared_ptr<MessageBlock>> read_block(TopicId topic, Offset from,
                                                   ReadLimits limits) const override {
    auto block = std::make_shared<MessageBlock>();
    auto& messages = block->messages;
    auto& headers = block->headers;
    ReadBudget budget{limits};
    std::vector<std::size_t> first_header;  // per message: its first entry in `headers`
    const char* run_begin = nullptr;        // the current record's taken bytes so far
    const char* run_end = nullptr;
    std::size_t run_first = 0;  // the current record's first taken message
    const auto visit = [&](Offset offset, std::string_view& rest) {
      if (run_begin == nullptr) {
        run_begin = rest.data();
        run_first = messages.size();
      }
      StoredMessageView m;
      first_header.push_back(headers.size());
      if (!enc::decode_next_view(rest, m, headers)) return Scan::corrupt;
      m.offset = offset;
      run_end = rest.data();
      std::uint64_t size = m.id.size() + m.key.size() + m.payload.size();
      for (std::size_t h = first_header.back(); h < headers.size(); ++h) {
        size += headers[h].name.size() + headers[h].value.size();
      }
      messages.push_back(m);
      return budget.take(size) ? Scan::more : Scan::full;
    };
    const auto end_of_record = [&] {
      if (run_begin == nullptr) return;
      const auto n = static_cast<std::size_t>(run_end - run_begin);
      std::unique_ptr<char[]> copy{new char[n]};
      std::memcpy(copy.get(), run_begin, n);
      const auto moved = [&](std::string_view v) {
        return std::string_view{copy.get() + (v.data() - run_begin), v.size()};
      };
      for (std::size_t i = run_first; i < messages.size(); ++i) {
        messages[i].id = moved(messages[i].id);
        messages[i].key = moved(messages[i].key);
        messages[i].payload = moved(messages[i].payload);
      }
      for (std::size_t h = first_header[run_first]; h < headers.size(); ++h) {
        headers[h].name = moved(headers[h].name);
        headers[h].value = moved(headers[h].value);
      }
      block->buffers.push_back(std::move(copy));
      block->buffer_bytes += n;
      run_begin = run_end = nullptr;
    };
    auto scanned = scan_messages(topic, from, visit, end_of_record);
    if (!scanned) return tl::unexpected(std::move(scanned.error()));
    // `headers` has stopped growing: the spans into it stay valid from here on.
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const std::size_t end = i + 1 < messages.size() ? first_header[i + 1] : headers.size();
      messages[i].headers =
          std::span<const HeaderView>{headers.data() + first_header[i], end - first_header[i]};
    }
    return block;
  }

  // REQUIRES: the DropTopic of `dropped` was written, and the id is never used again (the
  // broker never reuses ids), so every key in its range is garbage.
  Result<void> reclaim(TopicId dropped) override {
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

  // REQUIRES: a TrimTopic of `topic` up to at least `end` was written.
  Result<void> reclaim_trimmed(TopicId topic, Offset end) override {
    const auto begin = enc::topic_begin_key(topic);
    const auto stop = enc::message_key(topic, end);
    const rocksdb::Slice b{begin};
    const rocksdb::Slice e{stop};
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
    return check(db_->CompactRange(co, messages_, &b, &e),
                 "compact trimmed range of topic " + std::to_string(topic.value) + " in " + dir_);
  }

  Result<void> checkpoint(const std::filesystem::path& dir) override {
    rocksdb::Checkpoint* raw = nullptr;
    const auto what = "checkpoint of " + dir_ + " into " + dir.string();
    if (auto r = check(rocksdb::Checkpoint::Create(db_.get(), &raw), what); !r) return r;
    const std::unique_ptr<rocksdb::Checkpoint> cp{raw};
    // log_size_for_flush = 0: flush the memtables first, so the copy is SST files (hard
    // links where possible) plus a short WAL, and opens quickly.
    return check(cp->CreateCheckpoint(dir.string(), 0), what);
  }

  Result<void> flush() override {
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
  Result<void> recover() override { return check(db_->Resume(), "resume writes to " + dir_); }

  StoreStats stats() const override {
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

  Result<void> put_raw_group_value(TopicId topic, std::string_view name, std::string_view value) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return check(db_->Put(wo, groups_, enc::group_key(topic, name), value),
                 "write raw group value to " + dir_);
  }

  Result<void> put_raw_message_record(TopicId topic, Offset first, std::string_view value) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return check(db_->Put(wo, messages_, enc::message_key(topic, first), value),
                 "write raw message record to " + dir_);
  }

  // Compacts the whole dedup column family (running the expiry filter) and counts what is left.
  Result<std::size_t> compact_dedup_and_count() {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    if (auto r = check(db_->CompactRange(co, dedup_, nullptr, nullptr), "compact dedup in " + dir_);
        !r) {
      return tl::unexpected(std::move(r.error()));
    }
    std::size_t n = 0;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, dedup_)};
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }

  Result<void> put_format_version(std::uint32_t version) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return check(
        db_->Put(wo, db_->DefaultColumnFamily(), enc::kFormatVersionKey, enc::encode_u32(version)),
        "write format version to " + dir_);
  }

 private:
  // What a scan_messages visitor says after taking the message at the front of `rest`.
  enum class Scan { more, full, corrupt };

  Error corrupt_record(TopicId topic) const {
    return Error{Errc::storage_error, "read topic " + std::to_string(topic.value) + " in " + dir_ +
                                          ": corrupt message record"};
  }

  // Calls visit(offset, rest) for each stored message of `topic` from offset `from` on, in
  // offset order, `rest` starting at that message's bytes inside its record; visit must take
  // the message off the front of `rest`. After the last visit of each record, end_of_record()
  // is called while the record's bytes are still valid (they are not after it returns: the
  // iterator moves on). Messages of a record below `from` are skipped undecoded. Stops when
  // visit says full, or at the topic's last message.
  template <class Visit, class EndOfRecord>
  Result<void> scan_messages(TopicId topic, Offset from, Visit&& visit,
                             EndOfRecord&& end_of_record) const {
    const auto upper = enc::topic_end_key(topic);
    const rocksdb::Slice upper_slice{upper};
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;  // never step into the next topic's keys
    ro.prefix_same_as_start = true;         // lets the prefix bloom filter skip files
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, messages_)};
    // The record holding `from` starts at or before it.
    const auto from_key = enc::message_key(topic, from);
    it->SeekForPrev(from_key);
    if (!it->Valid()) it->Seek(from_key);
    bool full = false;
    for (; it->Valid(); it->Next()) {
      const auto first = enc::offset_of_message_key(it->key().ToStringView());
      if (!first) return tl::unexpected(corrupt_record(topic));
      std::string_view rest = it->value().ToStringView();
      if (rest.empty()) return tl::unexpected(corrupt_record(topic));
      for (Offset offset = *first; !rest.empty(); offset = Offset{offset.value + 1}) {
        if (offset < from) {
          if (!enc::skip_message(rest)) return tl::unexpected(corrupt_record(topic));
          continue;
        }
        const Scan next = visit(offset, rest);
        if (next == Scan::corrupt) return tl::unexpected(corrupt_record(topic));
        if (next == Scan::full) {
          full = true;
          break;
        }
      }
      end_of_record();
      if (full) break;  // before Next(): it would load the next record for nothing
    }
    return check(it->status(), "read topic " + std::to_string(topic.value) + " in " + dir_);
  }

  RocksDbStore(std::string dir, rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
               std::shared_ptr<DedupWindows> windows,
               std::unique_ptr<DedupCompactionFilter> dedup_filter)
      : dir_(std::move(dir)),
        windows_(std::move(windows)),
        dedup_filter_(std::move(dedup_filter)),
        db_(db),
        handles_(std::move(handles)) {
    // Open returns the handles in the order of the descriptors: default, topics, messages,
    // groups, dedup, then any families only the directory knows.
    topics_ = handles_.at(1);
    messages_ = handles_.at(2);
    groups_ = handles_.at(3);
    dedup_ = handles_.at(4);
  }

  // Adds to `wb` the deletion of every dedup entry of `topic`, as a DropTopic does; like
  // drop_groups, one DeleteRange, or point deletes for the largest id.
  rocksdb::Status drop_dedup(rocksdb::WriteBatch& wb, TopicId topic, std::span<const Op> earlier) {
    if (topic.value != std::numeric_limits<std::uint32_t>::max()) {
      return wb.DeleteRange(dedup_, enc::dedup_begin_key(topic), enc::dedup_end_key(topic));
    }
    const auto prefix = enc::dedup_begin_key(topic);
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, dedup_)};
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (auto s = wb.Delete(dedup_, it->key()); !s.ok()) return s;
    }
    if (!it->status().ok()) return it->status();
    for (const auto& op : earlier) {
      const auto* put = std::get_if<PutDedup>(&op);
      if (put == nullptr || put->topic != topic) continue;
      if (auto s = wb.Delete(dedup_, enc::dedup_key(topic, put->id)); !s.ok()) return s;
    }
    return rocksdb::Status::OK();
  }

  // Adds to `wb` the deletion of every group of `topic`, as a DropTopic does. `earlier` are
  // the ops before the DropTopic in the same batch (not yet in the DB).
  rocksdb::Status drop_groups(rocksdb::WriteBatch& wb, TopicId topic, std::span<const Op> earlier) {
    if (topic.value != std::numeric_limits<std::uint32_t>::max()) {
      return wb.DeleteRange(groups_, enc::group_begin_key(topic), enc::group_end_key(topic));
    }
    // The largest id has no finite range end (names are unbounded), so delete its groups one
    // by one: those in the DB (write() runs on one thread, so nothing else is adding any) and
    // those put earlier in this batch.
    const auto prefix = enc::group_begin_key(topic);
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, groups_)};
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (auto s = wb.Delete(groups_, it->key()); !s.ok()) return s;
    }
    if (!it->status().ok()) return it->status();
    for (const auto& op : earlier) {
      const auto* put = std::get_if<PutGroup>(&op);
      if (put == nullptr || put->group.topic != topic) continue;
      if (auto s = wb.Delete(groups_, enc::group_key(topic, put->group.name)); !s.ok()) return s;
    }
    return rocksdb::Status::OK();
  }

  // Messages appended at consecutive offsets of one topic within a write: one record.
  struct Run {
    TopicId topic;
    Offset first;
    Offset next;
    std::string value;
  };

  // Removes from `runs` the messages of `topic` below `end`: a run wholly below goes, a run
  // across `end` keeps its suffix (itself a record) from `end` on.
  Result<void> trim_runs(std::vector<Run>& runs, TopicId topic, Offset end) const {
    for (auto it = runs.begin(); it != runs.end();) {
      if (it->topic != topic || it->first >= end) {
        ++it;
      } else if (it->next <= end) {
        it = runs.erase(it);
      } else {
        std::string_view rest = it->value;
        for (auto o = it->first.value; o < end.value; ++o) {
          if (!enc::skip_message(rest)) {
            return fail(Errc::internal_error, "write: cannot cut a record it encoded");
          }
        }
        it->value = std::string(rest);
        it->first = end;
        ++it;
      }
    }
    return {};
  }

  // The messages from `end` on of the record that holds `end`, when that record starts below
  // `end` (as a record value); nullopt when no record straddles `end`.
  Result<std::optional<std::string>> record_tail(TopicId topic, Offset end) const {
    const auto upper = enc::topic_end_key(topic);
    const rocksdb::Slice upper_slice{upper};
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    ro.prefix_same_as_start = true;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, messages_)};
    it->SeekForPrev(enc::message_key(topic, end));
    const auto what = "find the record holding offset " + std::to_string(end.value) + " of topic " +
                      std::to_string(topic.value) + " in " + dir_;
    if (!it->Valid()) {
      if (auto r = check(it->status(), what); !r) return tl::unexpected(std::move(r.error()));
      return std::nullopt;
    }
    const auto first = enc::offset_of_message_key(it->key().ToStringView());
    if (!first) return fail(Errc::storage_error, what + ": corrupt message key");
    if (*first == end) return std::nullopt;
    std::string_view rest = it->value().ToStringView();
    for (auto offset = first->value; offset < end.value; ++offset) {
      if (rest.empty()) return std::nullopt;  // the record ends below `end`
      if (!enc::skip_message(rest)) return fail(Errc::storage_error, what + ": corrupt record");
    }
    if (rest.empty()) return std::nullopt;
    return std::string(rest);
  }

  // A new store gets this build's format version; an existing one must not be newer. An older
  // one is marked with this version before anything is written in the new layout, so an older
  // loftd then refuses it instead of misreading it.
  Result<void> check_format_version() {
    std::string value;
    const auto s = db_->Get(rocksdb::ReadOptions{}, db_->DefaultColumnFamily(),
                            enc::kFormatVersionKey, &value);
    if (s.IsNotFound()) return put_format_version(enc::kFormatVersion);
    if (auto r = check(s, "read format version from " + dir_); !r) return r;
    const auto version = enc::decode_u32(value);
    if (!version) {
      return fail(Errc::storage_error, "open store in " + dir_ + ": corrupt format version record");
    }
    if (*version > enc::kFormatVersion) {
      return fail(Errc::storage_error,
                  "open store in " + dir_ + ": storage format version " + std::to_string(*version) +
                      " is newer than this loftd supports (" + std::to_string(enc::kFormatVersion) +
                      "); run a newer loftd");
    }
    if (*version < enc::kFormatVersion) return put_format_version(enc::kFormatVersion);
    return {};
  }

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
};

}  // namespace

Result<std::unique_ptr<Store>> open_rocksdb_store(const RocksDbOptions& options) {
  auto store = RocksDbStore::open(options);
  if (!store) return tl::unexpected(std::move(store.error()));
  return std::unique_ptr<Store>(std::move(*store));
}

namespace testing {

Result<std::unique_ptr<Store>> open_rocksdb_store_on(const RocksDbOptions& options,
                                                     rocksdb::Env& env) {
  auto store = RocksDbStore::open(options, &env);
  if (!store) return tl::unexpected(std::move(store.error()));
  return std::unique_ptr<Store>(std::move(*store));
}

Result<std::uint32_t> read_format_version(const std::filesystem::path& dir) {
  auto open = make_open_options(RocksDbOptions{.dir = dir});
  add_existing_families(open, dir.string());
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  if (auto r =
          check(rocksdb::DB::OpenForReadOnly(open.db, dir.string(), open.families, &handles, &raw),
                "open store read-only in " + dir.string());
      !r) {
    return tl::unexpected(std::move(r.error()));
  }
  const std::unique_ptr<rocksdb::DB> db{raw};
  std::string value;
  const auto s =
      db->Get(rocksdb::ReadOptions{}, db->DefaultColumnFamily(), enc::kFormatVersionKey, &value);
  for (auto* h : handles) std::ignore = db->DestroyColumnFamilyHandle(h);  // cannot fail
  if (auto r = check(s, "read format version in " + dir.string()); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  const auto version = enc::decode_u32(value);
  if (!version) return fail(Errc::storage_error, "corrupt format version record");
  return *version;
}

Result<void> create_store_without_groups(const std::filesystem::path& dir, const TopicInfo& topic,
                                         const std::vector<StoredMessage>& messages) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(Errc::storage_error, "create " + dir.string() + ": " + ec.message());
  // What the loftd before groups opened: the same options without the groups (and dedup)
  // families, and topic records in the pre-dedup layout.
  auto open = make_open_options(RocksDbOptions{.dir = dir});
  open.families.resize(3);
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  if (auto r = check(rocksdb::DB::Open(open.db, dir.string(), open.families, &handles, &raw),
                     "open pre-groups store in " + dir.string());
      !r) {
    return r;
  }
  const std::unique_ptr<rocksdb::DB> db{raw};
  rocksdb::WriteBatch wb;
  auto s = wb.Put(db->DefaultColumnFamily(), enc::kFormatVersionKey, enc::encode_u32(1));
  if (s.ok()) s = wb.Put(handles[1], topic.name, enc::encode_topic_meta_v0(topic));
  std::string value;
  for (const auto& m : messages) {
    value.clear();
    enc::encode_message(m.timestamp_ms, m.message, value);
    if (s.ok()) s = wb.Put(handles[2], enc::message_key(topic.id, m.offset), value);
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (s.ok()) s = db->Write(wo, &wb);
  for (auto* h : handles) std::ignore = db->DestroyColumnFamilyHandle(h);  // cannot fail
  if (auto r = check(s, "write pre-groups store in " + dir.string()); !r) return r;
  return check(db->Close(), "close pre-groups store in " + dir.string());
}

Result<void> add_column_family(const std::filesystem::path& dir, const std::string& name) {
  auto open = make_open_options(RocksDbOptions{.dir = dir});
  add_existing_families(open, dir.string());
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  if (auto r = check(rocksdb::DB::Open(open.db, dir.string(), open.families, &handles, &raw),
                     "open store in " + dir.string());
      !r) {
    return r;
  }
  const std::unique_ptr<rocksdb::DB> db{raw};
  rocksdb::ColumnFamilyHandle* added = nullptr;
  const auto s = db->CreateColumnFamily(rocksdb::ColumnFamilyOptions{}, name, &added);
  if (added != nullptr) handles.push_back(added);
  for (auto* h : handles) std::ignore = db->DestroyColumnFamilyHandle(h);  // cannot fail
  if (auto r = check(s, "create column family " + name + " in " + dir.string()); !r) return r;
  return check(db->Close(), "close " + dir.string());
}

Result<std::vector<std::string>> list_column_families(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  if (auto r = check(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions{}, dir.string(), &names),
                     "list column families in " + dir.string());
      !r) {
    return tl::unexpected(std::move(r.error()));
  }
  return names;
}

Result<void> put_raw_group_value(const std::filesystem::path& dir, TopicId topic,
                                 std::string_view name, std::string_view value) {
  auto store = RocksDbStore::open(RocksDbOptions{.dir = dir});
  if (!store) return tl::unexpected(std::move(store.error()));
  return (*store)->put_raw_group_value(topic, name, value);
}

Result<void> put_raw_message_record(const std::filesystem::path& dir, TopicId topic, Offset first,
                                    std::string_view value) {
  auto store = RocksDbStore::open(RocksDbOptions{.dir = dir});
  if (!store) return tl::unexpected(std::move(store.error()));
  return (*store)->put_raw_message_record(topic, first, value);
}

Result<std::size_t> compact_dedup_and_count(const std::filesystem::path& dir) {
  auto store = RocksDbStore::open(RocksDbOptions{.dir = dir});
  if (!store) return tl::unexpected(std::move(store.error()));
  // As at startup: loading the topics tells the expiry filter each topic's window.
  if (auto topics = (*store)->load_topics(); !topics) return tl::unexpected(topics.error());
  return (*store)->compact_dedup_and_count();
}

Result<void> overwrite_format_version(const std::filesystem::path& dir, std::uint32_t version) {
  auto store = RocksDbStore::open(RocksDbOptions{.dir = dir});
  if (!store) return tl::unexpected(std::move(store.error()));
  return (*store)->put_format_version(version);
}

}  // namespace testing
}  // namespace loft::storage
