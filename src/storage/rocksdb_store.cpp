// The RocksDB Store's lifecycle: open (options, the info log, the format version check),
// close, and check(), where every rocksdb::Status becomes a loft Error. The class and its other
// parts: rocksdb_store.hpp.

#include "rocksdb_store.hpp"

#include <system_error>
#include <tuple>

#include "encoding.hpp"
#include "rocksdb_info_log.hpp"

namespace loft::storage {
namespace {

namespace enc = encoding;

// RocksDB's LOG is started anew past this size (keep_log_file_num files are kept): a loftd
// that runs for months under load logs every flush and compaction.
constexpr std::uint64_t kMaxInfoLogBytes = 16 << 20;

}  // namespace

// The one place a rocksdb::Status becomes a loft Error. A full disk gets its own code, so a
// client can tell "retry later" from a broken store, and the text says it in plain words.
Result<void> check(const rocksdb::Status& status, std::string_view doing) {
  if (status.ok()) return {};
  if (status.IsNoSpace()) {
    return fail(Errc::storage_full, "disk full: " + std::string(doing) + ": " + status.ToString());
  }
  return fail(Errc::storage_error, std::string(doing) + ": " + status.ToString());
}

Result<std::unique_ptr<RocksDbStore>> RocksDbStore::open(const RocksDbOptions& options,
                                                         rocksdb::Env* env) {
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

RocksDbStore::RocksDbStore(std::string dir, rocksdb::DB* db,
                           std::vector<rocksdb::ColumnFamilyHandle*> handles,
                           std::shared_ptr<DedupWindows> windows,
                           std::unique_ptr<DedupCompactionFilter> dedup_filter)
    : dir_(std::move(dir)),
      windows_(std::move(windows)),
      dedup_filter_(std::move(dedup_filter)),
      db_(db),
      handles_(std::move(handles)) {
  // Open returns the handles in the order of the descriptors: default, topics, messages,
  // groups, dedup, schedule, then any families only the directory knows.
  topics_ = handles_.at(1);
  messages_ = handles_.at(2);
  groups_ = handles_.at(3);
  dedup_ = handles_.at(4);
  schedule_ = handles_.at(5);
}

RocksDbStore::~RocksDbStore() {
  for (auto* h : handles_) std::ignore = db_->DestroyColumnFamilyHandle(h);  // cannot fail
  // Close() flushes nothing we rely on (the WAL holds every acknowledged write); a failure
  // here has no one left to tell.
  std::ignore = db_->Close();
}

// A new store gets this build's format version; an existing one must not be newer. An older
// one is marked with this version before anything is written in the new layout, so an older
// loftd then refuses it instead of misreading it.
Result<void> RocksDbStore::check_format_version() {
  std::string value;
  const auto s =
      db_->Get(rocksdb::ReadOptions{}, db_->DefaultColumnFamily(), enc::kFormatVersionKey, &value);
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

Result<void> RocksDbStore::put_format_version(std::uint32_t version) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return check(
      db_->Put(wo, db_->DefaultColumnFamily(), enc::kFormatVersionKey, enc::encode_u32(version)),
      "write format version to " + dir_);
}

Result<std::unique_ptr<Store>> open_rocksdb_store(const RocksDbOptions& options) {
  auto store = RocksDbStore::open(options);
  if (!store) return tl::unexpected(std::move(store.error()));
  return std::unique_ptr<Store>(std::move(*store));
}

}  // namespace loft::storage
