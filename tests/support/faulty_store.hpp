#pragma once
// FaultyStore: a Store decorator for tests that makes chosen write() calls fail with
// storage_error, as a full disk or an IO error would. A failed write is not passed on, so it
// changes nothing (like a real failed atomic write). Reads, reclaim and flush pass through.
//
// Owns the wrapped store. Thread-safe as Store is: the fault settings are atomics, so a test
// thread may arm() while the broker's writer thread calls write().
//
//   auto faulty = std::make_unique<loft::testing::FaultyStore>(loft::storage::make_memory_store());
//   faulty->fail_nth_write(3);  // the third write() from now fails, the others succeed

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "forwarding_store.hpp"
#include "loft/storage/store.hpp"

namespace loft::testing {

class FaultyStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;

  // The n-th write() from now (1 = the next one) fails; the ones before and after succeed.
  void fail_nth_write(std::uint64_t n) { fail_at_.store(writes_.load() + n); }
  // Every write() fails until disarm().
  void arm() { armed_.store(true); }
  // Clears arm() and a pending fail_nth_write().
  void disarm() {
    armed_.store(false);
    fail_at_.store(0);
  }

  std::uint64_t writes() const { return writes_.load(); }         // write() calls seen
  std::uint64_t failed_writes() const { return failed_.load(); }  // of those, failed

  Result<void> write(const storage::WriteBatch& batch, storage::Durability durability) override {
    const auto n = ++writes_;
    if (armed_.load() || n == fail_at_.load()) {
      ++failed_;
      return fail(Errc::storage_error,
                  "injected fault (FaultyStore) on write #" + std::to_string(n));
    }
    return ForwardingStore::write(batch, durability);
  }

  // A fault that persists (arm()) fails recovery too, as a disk that is still full does.
  Result<void> recover() override {
    if (armed_.load()) return fail(Errc::storage_error, "injected fault (FaultyStore) on recover");
    return ForwardingStore::recover();
  }

 private:
  std::atomic<bool> armed_{false};
  std::atomic<std::uint64_t> fail_at_{0};  // 0 = none (write numbers start at 1)
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> failed_{0};
};

}  // namespace loft::testing
