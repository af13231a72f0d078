// loft bench publish | consume | e2e | storage. The first three run here, against the broker;
// storage runs in loft-bench-storage, the binary installed beside loft, so that loft itself
// links no broker, storage or RocksDB code.

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <vector>

#include "bench_client.hpp"
#include "commands.hpp"

namespace loft::cli {
namespace {

constexpr const char* kStorageBinary = "loft-bench-storage";

// Replaces this process with loft-bench-storage from loft's own directory, given the same
// arguments; returns only by throwing.
[[noreturn]] void exec_storage_bench(const Common& c) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Failure{"cannot find loft's own path: " + ec.message(), 1};
  const auto path = (self.parent_path() / kStorageBinary).string();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (std::size_t i = 1; i < c.argv.size(); ++i)
    argv.push_back(const_cast<char*>(c.argv[i].c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  ::execv(path.c_str(), argv.data());
  const int err = errno;
  if (err == ENOENT) {
    throw Failure{"bench storage runs " + path + ", which is not installed (install " +
                      kStorageBinary + " beside loft)",
                  1};
  }
  throw Failure{"cannot run " + path + ": " + std::strerror(err), 1};
}

}  // namespace

int bench_command(Common& c) {
  const auto p = bench_params(c);
  if (p.mode == apps::bench::Mode::storage) exec_storage_bench(c);
  print_report(c, check(apps::bench::run(p, c.options)));
  return 0;
}

}  // namespace loft::cli
