#include "power_loss_fs.hpp"

#include <filesystem>
#include <system_error>
#include <utility>

namespace loft::testing {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

std::string normal(const std::string& path) {
  auto out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string parent_of(const std::string& path) {
  return std::filesystem::path(path).parent_path().string();
}

// Reports every append, truncate and sync of one file to its PowerLossFs.
class TrackedFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> file, PowerLossFs& fs, std::string name)
      : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs), name_(std::move(name)) {}

  IOStatus Append(const rocksdb::Slice& data, const IOOptions& options,
                  IODebugContext* dbg) override {
    return append(data, [&] { return target()->Append(data, options, dbg); });
  }
  IOStatus Append(const rocksdb::Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    return append(data, [&] { return target()->Append(data, options, info, dbg); });
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, std::uint64_t offset,
                            const IOOptions& options, IODebugContext* dbg) override {
    return append(data, [&] { return target()->PositionedAppend(data, offset, options, dbg); });
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, std::uint64_t offset,
                            const IOOptions& options, const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    return append(data,
                  [&] { return target()->PositionedAppend(data, offset, options, info, dbg); });
  }
  IOStatus Truncate(std::uint64_t size, const IOOptions& options, IODebugContext* dbg) override {
    if (auto s = fs_.before_append(name_); !s.ok()) return s;
    auto s = target()->Truncate(size, options, dbg);
    if (s.ok()) fs_.truncated(name_, size);
    return s;
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    return sync([&] { return target()->Sync(options, dbg); });
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return sync([&] { return target()->Fsync(options, dbg); });
  }
  // sync_file_range starts writeback but promises nothing about a power loss.
  IOStatus RangeSync(std::uint64_t offset, std::uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    if (auto s = fs_.before_append(name_); !s.ok()) return s;
    return target()->RangeSync(offset, nbytes, options, dbg);
  }

 private:
  template <class F>
  IOStatus append(const rocksdb::Slice& data, F&& write) {
    if (auto s = fs_.before_append(name_); !s.ok()) return s;
    auto s = write();
    if (s.ok()) fs_.appended(name_, data.size());
    return s;
  }
  template <class F>
  IOStatus sync(F&& do_sync) {
    if (auto s = fs_.before_sync(); !s.ok()) return s;
    auto s = do_sync();
    if (s.ok()) fs_.synced(name_);
    return s;
  }

  PowerLossFs& fs_;
  std::string name_;
};

// Makes the entries of its directory durable when it is fsync'd.
class TrackedDir final : public rocksdb::FSDirectoryWrapper {
 public:
  TrackedDir(std::unique_ptr<rocksdb::FSDirectory> dir, PowerLossFs& fs, std::string name)
      : FSDirectoryWrapper(std::move(dir)), fs_(fs), name_(std::move(name)) {}

  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    if (auto s = fs_.before_dir_sync(); !s.ok()) return s;
    auto s = FSDirectoryWrapper::Fsync(options, dbg);
    if (s.ok()) fs_.dir_synced(name_);
    return s;
  }
  IOStatus FsyncWithDirOptions(const IOOptions& options, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& dir_options) override {
    if (auto s = fs_.before_dir_sync(); !s.ok()) return s;
    auto s = FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options);
    if (s.ok()) fs_.dir_synced(name_);
    return s;
  }

 private:
  PowerLossFs& fs_;
  std::string name_;
};

}  // namespace

PowerLossFs::PowerLossFs(const std::shared_ptr<rocksdb::FileSystem>& base)
    : FileSystemWrapper(base) {}

void PowerLossFs::set_fault(Fault fault) {
  std::lock_guard lock(mutex_);
  fault_ = fault;
}

void PowerLossFs::freeze() {
  std::lock_guard lock(mutex_);
  frozen_ = true;
}

void PowerLossFs::freeze_at_sync(std::uint64_t n) {
  std::lock_guard lock(mutex_);
  freeze_at_sync_ = syncs_ + n;
}

bool PowerLossFs::frozen() const {
  std::lock_guard lock(mutex_);
  return frozen_;
}

IOStatus PowerLossFs::off_or_ok() const {
  return frozen_ ? IOStatus::IOError("PowerLossFs: the power is off") : IOStatus::OK();
}

IOStatus PowerLossFs::before_append(const std::string& /*fname*/) {
  std::lock_guard lock(mutex_);
  if (frozen_) return off_or_ok();
  if (fault_ == Fault::no_space) {
    auto s = IOStatus::NoSpace("PowerLossFs: injected no space left on device");
    s.SetRetryable(true);  // as RocksDB's POSIX file system reports ENOSPC
    return s;
  }
  if (fault_ == Fault::write_io_error)
    return IOStatus::IOError("PowerLossFs: injected write error");
  return IOStatus::OK();
}

void PowerLossFs::appended(const std::string& fname, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  files_[normal(fname)].size += bytes;
}

IOStatus PowerLossFs::before_sync() {
  std::lock_guard lock(mutex_);
  if (++syncs_ == freeze_at_sync_) frozen_ = true;
  if (frozen_) return off_or_ok();
  if (fault_ == Fault::sync_io_error) return IOStatus::IOError("PowerLossFs: injected sync error");
  return IOStatus::OK();
}

void PowerLossFs::synced(const std::string& fname) {
  std::lock_guard lock(mutex_);
  auto& f = files_[normal(fname)];
  f.synced = f.size;
}

void PowerLossFs::truncated(const std::string& fname, std::uint64_t size) {
  std::lock_guard lock(mutex_);
  auto& f = files_[normal(fname)];
  f.size = size;
  f.synced = std::min(f.synced, size);
}

IOStatus PowerLossFs::before_dir_sync() {
  std::lock_guard lock(mutex_);
  return off_or_ok();
}

void PowerLossFs::dir_synced(const std::string& dir) {
  std::lock_guard lock(mutex_);
  const auto d = normal(dir);
  std::erase_if(pending_, [&](const auto& entry) { return parent_of(entry.first) == d; });
}

std::uint64_t PowerLossFs::unsynced_bytes() const {
  std::lock_guard lock(mutex_);
  std::uint64_t n = 0;
  for (const auto& [_, f] : files_) n += f.size - f.synced;
  return n;
}

void PowerLossFs::track_new(const std::string& fname, std::uint64_t existing_size) {
  // A file that existed keeps its directory entry; a new one needs a directory fsync.
  files_[fname] = FileState{existing_size, existing_size};
  if (existing_size == 0 && !pending_.contains(fname)) {
    std::error_code ec;
    if (!std::filesystem::exists(fname, ec)) pending_[fname] = PendingEntry{};
  }
}

IOStatus PowerLossFs::NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      IODebugContext* dbg) {
  const auto name = normal(fname);
  std::unique_lock lock(mutex_);
  if (auto s = off_or_ok(); !s.ok()) return s;
  track_new(name, 0);  // before the file exists: NewWritableFile creates or truncates it
  lock.unlock();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  auto s = target()->NewWritableFile(fname, options, &file, dbg);
  if (s.ok()) *result = std::make_unique<TrackedFile>(std::move(file), *this, name);
  return s;
}

IOStatus PowerLossFs::ReopenWritableFile(const std::string& fname,
                                         const rocksdb::FileOptions& options,
                                         std::unique_ptr<rocksdb::FSWritableFile>* result,
                                         IODebugContext* dbg) {
  const auto name = normal(fname);
  std::unique_lock lock(mutex_);
  if (auto s = off_or_ok(); !s.ok()) return s;
  if (!files_.contains(name)) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(name, ec);
    track_new(name, ec ? 0 : size);
  }
  lock.unlock();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  auto s = target()->ReopenWritableFile(fname, options, &file, dbg);
  if (s.ok()) *result = std::make_unique<TrackedFile>(std::move(file), *this, name);
  return s;
}

IOStatus PowerLossFs::NewDirectory(const std::string& name, const IOOptions& options,
                                   std::unique_ptr<rocksdb::FSDirectory>* result,
                                   IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  auto s = target()->NewDirectory(name, options, &dir, dbg);
  if (s.ok()) *result = std::make_unique<TrackedDir>(std::move(dir), *this, normal(name));
  return s;
}

IOStatus PowerLossFs::DeleteFile(const std::string& fname, const IOOptions& options,
                                 IODebugContext* dbg) {
  std::lock_guard lock(mutex_);
  if (auto s = off_or_ok(); !s.ok()) return s;
  auto s = target()->DeleteFile(fname, options, dbg);
  if (s.ok()) {
    files_.erase(normal(fname));
    pending_.erase(normal(fname));
  }
  return s;
}

IOStatus PowerLossFs::RenameFile(const std::string& src, const std::string& dst,
                                 const IOOptions& options, IODebugContext* dbg) {
  const auto from = normal(src);
  const auto to = normal(dst);
  std::lock_guard lock(mutex_);
  if (auto s = off_or_ok(); !s.ok()) return s;
  // What `dst` holds durably now, to give back if the rename's directory entry is lost.
  PendingEntry entry;
  if (const auto p = pending_.find(to); p != pending_.end()) {
    entry = p->second;
  } else if (std::error_code ec; std::filesystem::exists(to, ec)) {
    std::string content;
    if (auto s = rocksdb::ReadFileToString(target(), to, &content); !s.ok()) return s;
    if (const auto f = files_.find(to); f != files_.end()) content.resize(f->second.synced);
    entry.previous = std::move(content);
  }
  auto s = target()->RenameFile(src, dst, options, dbg);
  if (!s.ok()) return s;
  FileState state;
  if (const auto f = files_.find(from); f != files_.end()) {
    state = f->second;
    files_.erase(f);
  } else {
    std::error_code ec;
    const auto size = std::filesystem::file_size(to, ec);
    state = FileState{ec ? 0 : size, ec ? 0 : size};
  }
  files_[to] = state;
  pending_.erase(from);
  pending_[to] = std::move(entry);
  return s;
}

PowerLossFs::Dropped PowerLossFs::drop_unsynced() {
  std::lock_guard lock(mutex_);
  Dropped out;
  for (auto& [name, entry] : pending_) {
    files_.erase(name);
    if (entry.previous) {
      if (rocksdb::WriteStringToFile(target(), *entry.previous, name, /*should_sync=*/true).ok()) {
        out.renames_undone += 1;
      }
    } else if (std::error_code ec; std::filesystem::remove(name, ec)) {
      out.files_deleted += 1;
    }
  }
  pending_.clear();
  for (const auto& [name, f] : files_) {
    if (f.size <= f.synced) continue;
    std::error_code ec;
    std::filesystem::resize_file(name, f.synced, ec);
    if (ec) continue;  // already gone: nothing to lose
    out.bytes += f.size - f.synced;
    out.files_truncated += 1;
  }
  files_.clear();
  return out;
}

}  // namespace loft::testing
