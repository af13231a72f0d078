// Test-only hooks into the RocksDB store (rocksdb_testing.hpp). Built into loft_storage_testing,
// which only tests link: loftd and loft_storage do not contain them.

#include "rocksdb_testing.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <system_error>
#include <tuple>

#include "encoding.hpp"
#include "rocksdb_store.hpp"

namespace loft::storage::testing {

namespace enc = encoding;

// What the hooks do inside an open store, with access to its DB and column families.
class StoreAccess {
 public:
  static Result<void> put_raw_group_value(RocksDbStore& store, TopicId topic, std::string_view name,
                                          std::string_view value) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return check(store.db_->Put(wo, store.groups_, enc::group_key(topic, name), value),
                 "write raw group value to " + store.dir_);
  }

  static Result<void> put_raw_message_record(RocksDbStore& store, TopicId topic, Offset first,
                                             std::string_view value) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return check(store.db_->Put(wo, store.messages_, enc::message_key(topic, first), value),
                 "write raw message record to " + store.dir_);
  }

  // Compacts the whole dedup column family (running the expiry filter) and counts what is left.
  static Result<std::size_t> compact_dedup_and_count(RocksDbStore& store) {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    if (auto r = check(store.db_->CompactRange(co, store.dedup_, nullptr, nullptr),
                       "compact dedup in " + store.dir_);
        !r) {
      return tl::unexpected(std::move(r.error()));
    }
    std::size_t n = 0;
    std::unique_ptr<rocksdb::Iterator> it{
        store.db_->NewIterator(rocksdb::ReadOptions{}, store.dedup_)};
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }

  static Result<void> put_format_version(RocksDbStore& store, std::uint32_t version) {
    return store.put_format_version(version);
  }
};

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
  return StoreAccess::put_raw_group_value(**store, topic, name, value);
}

Result<void> put_raw_message_record(const std::filesystem::path& dir, TopicId topic, Offset first,
                                    std::string_view value) {
  auto store = RocksDbStore::open(RocksDbOptions{.dir = dir});
  if (!store) return tl::unexpected(std::move(store.error()));
  return StoreAccess::put_raw_message_record(**store, topic, first, value);
}

Result<std::size_t> compact_dedup_and_count(const std::filesystem::path& dir) {
  auto store = RocksDbStore::open(RocksDbOptions{.dir = dir});
  if (!store) return tl::unexpected(std::move(store.error()));
  // As at startup: loading the topics tells the expiry filter each topic's window.
  if (auto topics = (*store)->load_topics(); !topics) return tl::unexpected(topics.error());
  return StoreAccess::compact_dedup_and_count(**store);
}

Result<void> overwrite_format_version(const std::filesystem::path& dir, std::uint32_t version) {
  auto store = RocksDbStore::open(RocksDbOptions{.dir = dir});
  if (!store) return tl::unexpected(std::move(store.error()));
  return StoreAccess::put_format_version(**store, version);
}

}  // namespace loft::storage::testing
