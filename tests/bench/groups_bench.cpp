// What a publish and a group creation cost the groups as the broker holds more of them: one
// publish to one of N topics, each with a group, and the creation of a group beside N others.
// The cost should not grow with N (issue: "cost flat in the number of groups"): compare the
// N=10 and N=10000 lines of one run. Not a test: run it and read the numbers.
//
//   build/release/tests/bench/groups_bench --benchmark_min_time=1
//
// Memory store, no network: what is timed is the broker's writer hand-off, the topic event on
// the groups (the test thread plays loftd's io thread) and next_deadline, as the group runner
// asks for it after every event.

#include <benchmark/benchmark.h>

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/storage/store.hpp"

namespace {

using namespace loft;

// The bench thread as the io thread: what the broker posts is queued and run here.
class Loop {
 public:
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mutex_);
      tasks_.push_back(std::move(f));
    }
    cv_.notify_one();
  }
  // Runs queued tasks until `done` holds (waiting for more as needed).
  void run_until(const std::function<bool()>& done) {
    while (!done()) {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return !tasks_.empty(); });
      auto f = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      f();
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
};

struct Fixture {
  Loop loop;
  std::unique_ptr<broker::Broker> broker;
  std::unique_ptr<broker::Groups> groups;
  const broker::TimePoint now{};

  // `topics` topics named t0, t1, ..., each with one group "g" (nobody subscribed).
  explicit Fixture(std::size_t topics) {
    auto opened = broker::Broker::open(storage::make_memory_store(), broker::Options{});
    if (!opened) std::abort();
    broker = std::move(*opened);
    groups = std::make_unique<broker::Groups>(
        *broker, broker::GroupDefaults{},
        [this](std::function<void()> f) { loop.post(std::move(f)); });
    groups->load();
    broker->set_topic_listener([this](std::vector<broker::TopicEvent> events) {
      loop.post([this, events = std::move(events)] { groups->on_topic_events(events, now); });
    });
    for (std::size_t i = 0; i < topics; ++i) add("t" + std::to_string(i));
  }
  ~Fixture() {
    broker->stop();
    groups.reset();
    broker.reset();
  }

  void add(const std::string& topic) {
    bool created = false;
    broker->create_topic(topic, [&](Result<TopicInfo> r) {
      if (!r) std::abort();
      loop.post([&] { created = true; });
    });
    loop.run_until([&] { return created; });
    create_group(topic);
  }

  void create_group(const std::string& topic) {
    bool done = false;
    groups->create_group(broker::CreateGroupRequest{topic, "g", {}, {}}, now,
                         [&](Result<GroupInfo> r) {
                           if (!r) std::abort();
                           done = true;
                         });
    loop.run_until([&] { return done; });
    benchmark::DoNotOptimize(groups->next_deadline());
  }
};

// One publish of one message to one topic of N (round robin), its confirm, its topic event on
// the groups, and the next deadline.
void BM_PublishAmongGroups(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Fixture f(n);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string topic = "t" + std::to_string(i++ % n);
    Message m;
    m.payload = std::string(100, 'x');
    std::vector<Message> batch;
    batch.push_back(std::move(m));
    bool confirmed = false;
    f.broker->publish(topic, std::move(batch), [&](Result<broker::Appended> r) {
      if (!r) std::abort();
      f.loop.post([&] { confirmed = true; });
    });
    // The writer posts the topic event, then the confirm: both have run here after this.
    f.loop.run_until([&] { return confirmed; });
    benchmark::DoNotOptimize(f.groups->next_deadline());
  }
}
BENCHMARK(BM_PublishAmongGroups)->Arg(10)->Arg(10000)->Unit(benchmark::kMicrosecond);

// The creation of one more group, on a topic of its own, beside N others.
void BM_CreateGroupAmongGroups(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Fixture f(n);
  std::size_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string topic = "new" + std::to_string(i++);
    bool created = false;
    f.broker->create_topic(topic, [&](Result<TopicInfo> r) {
      if (!r) std::abort();
      f.loop.post([&] { created = true; });
    });
    f.loop.run_until([&] { return created; });
    state.ResumeTiming();
    f.create_group(topic);
  }
}
BENCHMARK(BM_CreateGroupAmongGroups)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
