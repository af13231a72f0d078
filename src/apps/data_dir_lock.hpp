#pragma once
// An exclusive lock on a data dir, so two loftd processes never share one. flock(2) on
// <dir>/loftd.lock: the kernel drops it when the process dies, even by SIGKILL, so a crash
// never leaves a stale lock behind. The file holds the owner's pid, for the error message.

#include <filesystem>
#include <string>

namespace loft::apps {

class DataDirLock {
 public:
  // Creates the dir if needed and takes the lock. Throws std::runtime_error with a message
  // for the operator (e.g. "data dir ./loft-data is in use by another loftd (pid 1234)").
  explicit DataDirLock(const std::filesystem::path& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  int fd_ = -1;
};

// Writes `content` to `path` atomically: a temporary file in the same dir, then rename.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

}  // namespace loft::apps
