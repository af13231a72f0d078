// Crash rounds: producers publish with message ids and record every confirmed offset in a
// ledger; loftd is killed with SIGKILL at a random moment and restarted; after every round the
// topic must hold every confirmed message exactly once, byte for byte, at its confirmed
// offset, with no gaps. LOFT_CRASH_ROUNDS=N runs N rounds (default 20).

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "loft/client/producer.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;

struct Ledger {
  std::mutex mutex;
  std::map<std::uint64_t, std::string> confirmed;  // offset -> payload
};

// Publishes until `stop`, with up to 8 batches in flight; records confirms in `ledger`.
void produce(TestDaemon& d, int producer, std::atomic<bool>& stop, Ledger& ledger,
             std::atomic<int>& confirms) {
  client::ProducerOptions options;
  options.connection.port = d.port();
  options.connection.request_timeout = 60s;
  options.give_up_after = 60s;
  auto p = client::Producer::connect(options);
  ASSERT_TRUE(p) << p.error().to_string();
  std::deque<
      std::pair<std::vector<std::string>, std::future<Result<std::vector<client::PublishResult>>>>>
      in_flight;
  auto settle_front = [&] {
    auto [payloads, reply] = std::move(in_flight.front());
    in_flight.pop_front();
    auto r = reply.get();
    ASSERT_TRUE(r) << r.error().to_string();
    std::lock_guard lock(ledger.mutex);
    for (std::size_t i = 0; i < r->size(); ++i) {
      const auto [it, inserted] = ledger.confirmed.emplace((*r)[i].offset, payloads[i]);
      // A retried message is confirmed again with its original offset: same payload.
      ASSERT_EQ(it->second, payloads[i]) << "two messages confirmed at offset " << it->first;
      (void)inserted;
    }
    confirms.fetch_add(1);
  };
  for (int batch = 0; !stop.load(); ++batch) {
    std::vector<Message> messages;
    std::vector<std::string> payloads;
    for (int i = 0; i < 5; ++i) {
      Message m;
      m.payload = "p" + std::to_string(producer) + "-" + std::to_string(batch) + "-" +
                  std::to_string(i) + std::string(static_cast<std::size_t>(i * 7), '\0');
      payloads.push_back(m.payload);
      messages.push_back(std::move(m));
    }
    in_flight.emplace_back(std::move(payloads), (*p)->publish("ledger", std::move(messages)));
    if (in_flight.size() >= 8) settle_front();
  }
  while (!in_flight.empty()) settle_front();
}

void check_ledger(TestDaemon& d, Ledger& ledger) {
  auto c = d.client("checker");
  auto read = fetch_all(*c, "ledger");
  ASSERT_TRUE(read) << read.error().to_string();
  const auto& stored = *read;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    ASSERT_EQ(stored[i].offset.value, i) << "offsets have no gaps";
  }
  std::lock_guard lock(ledger.mutex);
  std::set<std::string> payloads;
  for (const auto& m : stored) {
    ASSERT_TRUE(payloads.insert(m.message.payload).second) << "stored twice: " << m.message.payload;
  }
  for (const auto& [offset, payload] : ledger.confirmed) {
    ASSERT_LT(offset, stored.size()) << "confirmed offset " << offset << " is missing";
    ASSERT_EQ(stored[offset].message.payload, payload) << "at confirmed offset " << offset;
  }
}

TEST(Crash, ConfirmedMessagesSurviveKillNineRoundsExactlyOnce) {
  TestDaemon d;  // durability = fsync, the default
  d.start();
  ASSERT_TRUE(d.client()->create_topic("ledger"));
  Ledger ledger;
  std::mt19937 rng{12345};
  const int n = env_count("LOFT_CRASH_ROUNDS", 20);
  for (int round = 0; round < n; ++round) {
    std::atomic<bool> stop{false};
    std::atomic<int> confirms{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < 3; ++p) {
      producers.emplace_back([&, p] { produce(d, round * 10 + p, stop, ledger, confirms); });
    }
    // Kill at a random moment: after a random number of confirmed batches.
    const int at = std::uniform_int_distribution<int>(1, 40)(rng);
    ASSERT_TRUE(eventually([&] { return confirms.load() >= at; }, 60s));
    d.kill9();
    d.start(/*same_port=*/true);
    // The producers reconnect, resend what was not confirmed, and finish.
    stop = true;
    for (auto& t : producers) t.join();
    check_ledger(d, ledger);
    if (HasFatalFailure()) return;
  }
  // Graceful stop at the end: nothing confirmed may be lost either.
  ASSERT_EQ(d.stop(), 0) << d.log();
  d.start();
  check_ledger(d, ledger);
  RecordProperty("rounds", n);
  RecordProperty("confirmed_messages", static_cast<int>(ledger.confirmed.size()));
  std::printf("crash rounds: %d, confirmed messages checked: %zu\n", n, ledger.confirmed.size());
}

}  // namespace
}  // namespace loft::testing
