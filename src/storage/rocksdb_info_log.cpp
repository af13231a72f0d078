#include "rocksdb_info_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

namespace loft::storage {
namespace {

namespace fs = std::filesystem;

// Keeps the newest `keep` of the LOG.old.* files in `dir`.
void prune_old_logs(const fs::path& dir, std::size_t keep) {
  std::vector<fs::path> old;
  std::error_code ec;
  // increment(ec), not a range-for: this runs inside RocksDB's logging, where a
  // filesystem_error must not escape.
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with("LOG.old.")) old.push_back(it->path());
  }
  if (old.size() <= keep) return;
  // Same-length microsecond stamps: name order is age order.
  std::sort(old.begin(), old.end());
  for (std::size_t i = 0; i + keep < old.size(); ++i) fs::remove(old[i], ec);
}

// Renames an existing `dir`/LOG to LOG.old.<microseconds since the epoch>, then keeps the
// newest `keep_files - 1` old files. Errors are ignored: at worst the old LOG is appended to.
void retire_log(const fs::path& dir, std::size_t keep_files) {
  const auto path = dir / "LOG";
  std::error_code ec;
  if (fs::exists(path, ec)) {
    auto stamp = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    // Two rotations within a microsecond must not overwrite one old file with the other.
    fs::path old;
    do {
      old = dir / ("LOG.old." + std::to_string(stamp++));
    } while (fs::exists(old, ec));
    fs::rename(path, old, ec);
  }
  if (keep_files > 0) prune_old_logs(dir, keep_files - 1);
}

int open_log(const fs::path& dir) {
  return ::open((dir / "LOG").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

class InfoLog final : public rocksdb::Logger {
 public:
  InfoLog(int fd, fs::path dir, std::size_t keep_files, std::uint64_t max_file_bytes)
      : fd_(fd), dir_(std::move(dir)), keep_files_(keep_files), max_file_bytes_(max_file_bytes) {}
  ~InfoLog() override { std::ignore = Close(); }  // closing a file descriptor cannot fail usefully

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Line line;
    const auto len = line.format(format, ap);
    std::lock_guard lock(mutex_);
    emit(line.text.data(), len);
  }

  // RocksDB's header lines (its version and the whole Options dump, at open) are kept and
  // written again at the top of every new file, as RocksDB's own logger does.
  void LogHeader(const char* format, va_list ap) override {
    Line line;
    const auto len = line.format(format, ap);
    std::lock_guard lock(mutex_);
    if (header_bytes_ + len <= kMaxHeaderBytes) {
      headers_.emplace_back(line.text.data(), len);
      header_bytes_ += len;
    }
    emit(line.text.data(), len);
  }

 protected:
  rocksdb::Status CloseImpl() override {
    std::lock_guard lock(mutex_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return rocksdb::Status::OK();
  }

 private:
  static constexpr std::size_t kMaxHeaderBytes = 1 << 20;

  // One formatted line: local time to the microsecond, the message, a newline.
  struct Line {
    std::array<char, 1024> text;
    std::size_t format(const char* format, va_list ap) {
      const auto now = std::chrono::system_clock::now();
      const auto t = std::chrono::system_clock::to_time_t(now);
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
          1'000'000;
      std::tm tm{};
      ::localtime_r(&t, &tm);
      int n = std::snprintf(text.data(), text.size(), "%04d/%02d/%02d-%02d:%02d:%02d.%06lld ",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, static_cast<long long>(us));
      n = std::max(n, 0);
      const int m =
          std::vsnprintf(text.data() + n, text.size() - static_cast<std::size_t>(n), format, ap);
      std::size_t len = std::min(text.size() - 1, static_cast<std::size_t>(n + std::max(m, 0)));
      text[len++] = '\n';
      return len;
    }
  };

  // REQUIRES: mutex_ held.
  void emit(const char* data, std::size_t len) {
    if (fd_ < 0) return;
    write_out(data, len);
    if (max_file_bytes_ > 0 && written_ >= max_file_bytes_) rotate();
  }

  // REQUIRES: mutex_ held. A full disk (or any error) loses the line; that is the point of
  // this logger. Only what reached the file counts towards the rotation, so a full disk does
  // not rotate (and prune) the files that still hold the history.
  void write_out(const char* data, std::size_t len) {
    const auto n = ::write(fd_, data, len);
    if (n > 0) written_ += static_cast<std::uint64_t>(n);
  }

  // REQUIRES: mutex_ held. If the new LOG cannot be opened, lines go on to the renamed file,
  // and the next try is another max_file_bytes_ later.
  void rotate() {
    written_ = 0;
    retire_log(dir_, keep_files_);
    const int fd = open_log(dir_);
    if (fd < 0) return;
    ::close(fd_);
    fd_ = fd;
    for (const auto& h : headers_) write_out(h.data(), h.size());
    written_ = 0;  // the headers do not count: they alone could otherwise exceed the size
  }

  std::mutex mutex_;  // guards every field below but the const ones
  std::vector<std::string> headers_;
  std::size_t header_bytes_ = 0;
  int fd_;
  std::uint64_t written_ = 0;  // bytes this logger wrote to the current file
  const fs::path dir_;
  const std::size_t keep_files_;
  const std::uint64_t max_file_bytes_;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> open_info_log(const fs::path& dir, std::size_t keep_files,
                                               std::uint64_t max_file_bytes) {
  retire_log(dir, keep_files);
  const int fd = open_log(dir);
  if (fd < 0) return nullptr;
  return std::make_shared<InfoLog>(fd, dir, keep_files, max_file_bytes);
}

}  // namespace loft::storage
