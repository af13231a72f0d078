#pragma once
// Broker tests over both stores (test-only): `wait` for a broker callback, and the two
// backends a typed suite runs on, each reopened by restart() over the same data: the memory
// store (kept by the backend, lent to each broker) and a RocksDB store in a temp directory.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include "loft/broker/broker.hpp"
#include "support/forwarding_store.hpp"

namespace loft::testing {

// Runs `call` with a callback and returns what the callback got (blocking).
template <class T>
Result<T> wait(const std::function<void(broker::Callback<T>)>& call) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  call([promise](Result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

// A memory store a restart keeps: each broker borrows it.
struct MemoryBackend {
  static constexpr const char* kName = "Memory";
  std::unique_ptr<storage::Store> memory = storage::make_memory_store();
  std::unique_ptr<storage::Store> open() { return std::make_unique<ForwardingStore>(*memory); }
};

struct RocksDbBackend {
  static constexpr const char* kName = "RocksDb";
  std::filesystem::path dir;
  RocksDbBackend() {
    std::random_device rd;
    dir = std::filesystem::temp_directory_path() / ("loft-broker-test-" + std::to_string(rd()));
    std::filesystem::remove_all(dir);
  }
  ~RocksDbBackend() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  RocksDbBackend(const RocksDbBackend&) = delete;
  RocksDbBackend& operator=(const RocksDbBackend&) = delete;
  std::unique_ptr<storage::Store> open() {
    auto s = storage::open_rocksdb_store({dir});
    EXPECT_TRUE(s.has_value()) << s.error().to_string();
    return s ? std::move(*s) : nullptr;
  }
};

using BrokerBackends = ::testing::Types<MemoryBackend, RocksDbBackend>;
// Test names by backend: "Suite/Memory.Case", "Suite/RocksDb.Case".
struct BrokerBackendNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};

// Stops `broker` (if any) and opens a new one over `backend`'s data, with a fixed clock and
// retention passes left to run_retention_pass().
template <class Backend>
void reopen(std::unique_ptr<broker::Broker>& broker, Backend& backend) {
  if (broker) broker->stop();
  broker.reset();
  broker::Options o;
  o.now_ms = [] { return std::int64_t{1'700'000'000'000}; };
  o.retention_interval = std::chrono::milliseconds{0};
  auto b = broker::Broker::open(backend.open(), std::move(o));
  ASSERT_TRUE(b.has_value()) << b.error().to_string();
  broker = std::move(*b);
}

}  // namespace loft::testing
