#include "rocksdb_info_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

namespace loft::storage {
namespace {

namespace fs = std::filesystem;

class InfoLog final : public rocksdb::Logger {
 public:
  explicit InfoLog(int fd) : fd_(fd) {}
  ~InfoLog() override { std::ignore = Close(); }  // closing a file descriptor cannot fail usefully

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
        1'000'000;
    std::tm tm{};
    ::localtime_r(&t, &tm);
    int n = std::snprintf(line, sizeof line, "%04d/%02d/%02d-%02d:%02d:%02d.%06lld ",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec, static_cast<long long>(us));
    n = std::max(n, 0);
    const int m = std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n), format, ap);
    std::size_t len = std::min(sizeof line - 1, static_cast<std::size_t>(n + std::max(m, 0)));
    line[len++] = '\n';
    // A full disk (or any error) loses this line; that is the point of this logger.
    std::ignore = ::write(fd_, line, len);
  }

 protected:
  rocksdb::Status CloseImpl() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return rocksdb::Status::OK();
  }

 private:
  int fd_;
};

// Keeps the newest `keep` of the LOG.old.* files in `dir`.
void prune_old_logs(const fs::path& dir, std::size_t keep) {
  std::vector<fs::path> old;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().starts_with("LOG.old.")) old.push_back(entry.path());
  }
  if (old.size() <= keep) return;
  // Same-length microsecond stamps: name order is age order.
  std::sort(old.begin(), old.end());
  for (std::size_t i = 0; i + keep < old.size(); ++i) fs::remove(old[i], ec);
}

}  // namespace

std::shared_ptr<rocksdb::Logger> open_info_log(const fs::path& dir, std::size_t keep_files) {
  const auto path = dir / "LOG";
  std::error_code ec;
  if (fs::exists(path, ec)) {
    const auto stamp = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    fs::rename(path, dir / ("LOG.old." + std::to_string(stamp)), ec);
  }
  if (keep_files > 0) prune_old_logs(dir, keep_files - 1);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  return std::make_shared<InfoLog>(fd);
}

}  // namespace loft::storage
