#pragma once
// PowerLossFs: a RocksDB FileSystem (public FileSystemWrapper API) for tests, over the real
// one, that remembers what a power cut would take away and can take it away, and that can
// fail writes and syncs on demand (a full disk, an I/O error).
//
// What it models, per file written through it:
//  - bytes appended since the file's last Sync/Fsync are lost (RangeSync and Close do not
//    make data durable);
//  - a file created (or renamed into place) since the last fsync of its directory is lost:
//    a new file disappears, a file renamed over an older one gets the older content back.
// What it does not model: deletions are durable at once (a deleted file never comes back), and
// a lost write never tears a page (truncation happens exactly at the last sync point). Files
// that existed before this object saw them count as durable.
//
// A power cut is three steps: freeze() (from then on every write, sync, create, rename and
// delete fails with an IOError and reaches nothing: "the power is off"), abandon the DB
// (destroy it: with the FS frozen its close writes nothing), then drop_unsynced() (applies the
// losses above to the real files). Reopen on a new PowerLossFs (or the real FS).
//
// Not wrapped (loft's options never use them): ReuseWritableFile (WAL recycling),
// NewRandomRWFile, LinkFile; they pass through untracked.
//
// Thread-safe: RocksDB calls it from its foreground and background threads; one mutex.

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace loft::testing {

class PowerLossFs final : public rocksdb::FileSystemWrapper {
 public:
  // Injected faults, applied to every file written through this FS until cleared.
  enum class Fault {
    none,
    no_space,        // Append fails with NoSpace (ENOSPC), as on a full disk
    write_io_error,  // Append fails with a plain IOError
    sync_io_error,   // Sync/Fsync fail with a plain IOError (the data may be in the page cache)
  };

  struct Dropped {
    std::uint64_t bytes = 0;  // unsynced bytes truncated away
    std::uint64_t files_truncated = 0;
    std::uint64_t files_deleted = 0;   // created, but their directory was never fsync'd
    std::uint64_t renames_undone = 0;  // renamed over an older file, directory not fsync'd
  };

  explicit PowerLossFs(
      const std::shared_ptr<rocksdb::FileSystem>& base = rocksdb::FileSystem::Default());

  static const char* kClassName() { return "loft.PowerLossFs"; }
  const char* Name() const override { return kClassName(); }

  void set_fault(Fault fault);
  void freeze();
  // The n-th Sync/Fsync from now (1 = the next) cuts the power instead of syncing: the FS
  // freezes and that sync fails, so what it would have made durable is unsynced.
  void freeze_at_sync(std::uint64_t n);
  bool frozen() const;
  // What the kernel's own writeback might do: makes a random prefix (picked with `random`, a
  // 32-bit value per file) of each file's unsynced bytes durable. Returns the bytes.
  template <class Random>
  std::uint64_t write_back(Random& random) {
    std::lock_guard lock(mutex_);
    std::uint64_t n = 0;
    for (auto& [_, f] : files_) {
      const auto unsynced = f.size - f.synced;
      if (unsynced == 0) continue;
      const auto take = static_cast<std::uint64_t>(random()) % (unsynced + 1);
      f.synced += take;
      n += take;
    }
    return n;
  }
  // REQUIRES: freeze() was called and nothing uses the files any more (the DB is destroyed).
  Dropped drop_unsynced();
  std::uint64_t unsynced_bytes() const;  // what drop_unsynced() would truncate now

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;

  // Called by the file and directory wrappers.
  rocksdb::IOStatus before_append(const std::string& fname);
  void appended(const std::string& fname, std::uint64_t bytes);
  rocksdb::IOStatus before_sync();
  void synced(const std::string& fname);
  void truncated(const std::string& fname, std::uint64_t size);
  rocksdb::IOStatus before_dir_sync();
  void dir_synced(const std::string& dir);

 private:
  struct FileState {
    std::uint64_t size = 0;
    std::uint64_t synced = 0;
  };
  // A name whose directory entry is not durable yet: on power loss it goes back to `previous`
  // (its content before a rename replaced it), or disappears if there was none.
  struct PendingEntry {
    std::optional<std::string> previous;
  };

  rocksdb::IOStatus off_or_ok() const;                                    // REQUIRES: mutex_ held
  void track_new(const std::string& fname, std::uint64_t existing_size);  // REQUIRES: mutex_

  mutable std::mutex mutex_;
  bool frozen_ = false;
  std::uint64_t syncs_ = 0;
  std::uint64_t freeze_at_sync_ = 0;  // 0 = never
  Fault fault_ = Fault::none;
  std::map<std::string, FileState> files_;
  std::map<std::string, PendingEntry> pending_;
};

}  // namespace loft::testing
