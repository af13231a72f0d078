// Publish throughput through loft's broker and RocksDB store (no network), with and without
// message ids, so the cost of dedup is visible. Not a test: run it and read the numbers.
//
//   build/release/tests/bench/publish_bench --benchmark_min_time=2
//
// Each iteration publishes one batch of `batch` messages of 100 bytes and waits for the
// confirm, with `window` batches kept in flight (so group commit is exercised). durability
// os, so the disk's fsync latency does not hide the index's CPU cost.

#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "loft/broker/broker.hpp"
#include "loft/storage/store.hpp"

namespace {

using namespace loft;

struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<broker::Broker> broker;

  explicit Fixture(storage::Durability durability) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "loft-bench-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    storage::RocksDbOptions o;
    o.dir = dir / "rocksdb";
    auto store = storage::open_rocksdb_store(o);
    if (!store) std::abort();
    broker::Options bo;
    bo.durability = durability;
    broker = std::move(*broker::Broker::open(std::move(*store), bo));
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    broker->create_topic("bench", [&](Result<TopicInfo>) {
      std::lock_guard lock(m);
      done = true;
      cv.notify_one();
    });
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done; });
  }
  ~Fixture() {
    broker.reset();
    std::filesystem::remove_all(dir);
  }
};

void publish(benchmark::State& state, bool with_ids, storage::Durability durability) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  const auto window = static_cast<std::size_t>(state.range(1));
  Fixture f(durability);
  std::mutex m;
  std::condition_variable cv;
  std::size_t in_flight = 0;
  std::atomic<bool> failed{false};
  std::uint64_t next_id = 0;
  const std::string payload(100, 'x');
  for (auto _ : state) {
    std::vector<Message> messages(batch);
    for (auto& msg : messages) {
      msg.payload = payload;
      if (with_ids) msg.id = "producer-0123456789abcdef-" + std::to_string(next_id++);
    }
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    f.broker->publish("bench", std::move(messages), [&](Result<broker::Appended> r) {
      if (!r) failed = true;
      std::lock_guard lock(m);
      --in_flight;
      cv.notify_one();
    });
  }
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return in_flight == 0; });
  if (failed) state.SkipWithError("a publish failed");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * 100));
}

void BM_PublishNoIds(benchmark::State& s) { publish(s, false, storage::Durability::os); }
void BM_PublishWithIds(benchmark::State& s) { publish(s, true, storage::Durability::os); }
void BM_PublishNoIdsFsync(benchmark::State& s) { publish(s, false, storage::Durability::fsync); }
void BM_PublishWithIdsFsync(benchmark::State& s) { publish(s, true, storage::Durability::fsync); }

BENCHMARK(BM_PublishNoIds)->Args({100, 16})->UseRealTime();
BENCHMARK(BM_PublishWithIds)->Args({100, 16})->UseRealTime();
BENCHMARK(BM_PublishNoIdsFsync)->Args({100, 16})->UseRealTime();
BENCHMARK(BM_PublishWithIdsFsync)->Args({100, 16})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
