// Crash rounds against the real loftd, checked against ledgers.
//
// Producers publish with message ids and record every confirmed offset; consumers in two
// groups receive and ack (one consumer of each group waits for durable confirms of its acks)
// and record every delivery. loftd is stopped at a random moment (SIGKILL, or SIGTERM for the
// graceful variant) and restarted on the same data dir and port; after every round:
// - the topic holds every confirmed message exactly once, byte for byte, at its confirmed
//   offset, with no gaps;
// - no delivery of an offset whose ack was confirmed reached a subscription of that group
//   made after the confirm;
// and at the end every message was delivered, byte for byte, to both groups, which have
// acked everything. Redeliveries are counted and reported.
// LOFT_CRASH_ROUNDS=N runs N rounds of each variant (default 20 for SIGKILL, 10 for SIGTERM).

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

const std::vector<std::string> kGroups = {"g1", "g2"};

// What producers and consumers saw, shared by their threads.
struct Ledger {
  std::mutex mutex;
  std::map<std::uint64_t, std::string> confirmed;  // offset -> payload
  // Per group: every delivery (offset -> payloads seen, one per delivery).
  std::map<std::string, std::map<std::uint64_t, std::vector<std::string>>> delivered;
  // Per group: offset -> sequence number at which its ack was confirmed durable.
  std::map<std::string, std::map<std::uint64_t, std::uint64_t>> ack_confirmed;
  std::uint64_t sequence = 0;  // orders subscribes and confirms
  std::vector<std::string> violations;

  std::uint64_t next_sequence() {
    std::lock_guard lock(mutex);
    return ++sequence;
  }
};

// Publishes until `stop`, with up to 8 batches in flight; records confirms in `ledger`.
void produce(std::uint16_t port, int producer, std::atomic<bool>& stop, Ledger& ledger,
             std::atomic<int>& confirms) {
  client::ProducerOptions options;
  options.connection.port = port;
  options.connection.request_timeout = 60s;
  options.give_up_after = 180s;  // longer than a restart may take (TestDaemon: 120 s)
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

// Receives and acks until `stop`, reconnecting whenever the broker goes away. With
// `confirm_acks`, every ack waits until it is durable and is recorded with a sequence number.
void consume(std::uint16_t port, const std::string& group, bool confirm_acks,
             std::atomic<bool>& stop, Ledger& ledger) {
  while (!stop.load()) {
    client::Options options;
    options.port = port;
    options.client_name = "consumer-" + group;
    options.request_timeout = 60s;
    options.connect_timeout = 2s;
    auto c = client::Client::connect(options);
    if (!c) {
      std::this_thread::sleep_for(20ms);  // retry pacing while loftd restarts, not a sync
      continue;
    }
    client::SubscribeOptions so;
    so.topic = "ledger";
    so.group = group;
    so.max_in_flight = 200;
    auto sub = (*c)->subscribe(so);
    if (!sub) continue;
    // Everything confirmed before this point must never be delivered on this subscription.
    const std::uint64_t subscribed_at = ledger.next_sequence();
    while (!stop.load()) {
      auto batch = (*sub)->receive(100ms, 64);
      if (!batch) break;
      std::vector<std::uint64_t> offsets;
      {
        std::lock_guard lock(ledger.mutex);
        for (const auto& m : *batch) {
          ledger.delivered[group][m.offset].push_back(m.message.payload);
          const auto& acked = ledger.ack_confirmed[group];
          if (auto it = acked.find(m.offset); it != acked.end() && it->second < subscribed_at) {
            ledger.violations.push_back("group " + group + " got offset " +
                                        std::to_string(m.offset) + " again after its ack was " +
                                        "confirmed (attempt " + std::to_string(m.attempt) + ")");
          }
          offsets.push_back(m.offset);
        }
      }
      if (offsets.empty()) continue;
      if (!confirm_acks) {
        for (auto o : offsets) (*sub)->ack(o);
        continue;
      }
      auto ok = (*sub)->ack_confirmed(offsets);
      if (!ok) break;  // the broker went away: the acks may or may not be durable
      const auto at = ledger.next_sequence();
      std::lock_guard lock(ledger.mutex);
      for (auto o : offsets) ledger.ack_confirmed[group].emplace(o, at);
    }
    std::ignore = (*sub)->flush();  // best effort: the broker may be gone
  }
}

void check_log(TestDaemon& d, Ledger& ledger, std::vector<StoredMessage>* out = nullptr) {
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
  ASSERT_TRUE(ledger.violations.empty()) << ledger.violations.front();
  if (out) *out = stored;
}

enum class Stop { kill9, sigterm };

void run_rounds(Stop how, int n) {
  TestDaemon d;  // durability = fsync, the default
  d.start();
  const std::uint16_t port = d.port();  // restarts listen on the same port
  {
    auto c = d.client();
    ASSERT_TRUE(c->create_topic("ledger"));
    GroupConfig config;
    config.ack_timeout_ms = 300'000;  // redelivery only when a consumer is gone
    for (const auto& g : kGroups) ASSERT_TRUE(c->create_group("ledger", g, {}, config));
  }
  Ledger ledger;
  std::atomic<bool> consumers_stop{false};
  std::vector<std::thread> consumers;
  for (const auto& g : kGroups) {
    for (bool confirm : {true, false}) {
      consumers.emplace_back(
          [&, g, confirm] { consume(port, g, confirm, consumers_stop, ledger); });
    }
  }
  std::mt19937 rng{how == Stop::kill9 ? 12345u : 54321u};
  for (int round = 0; round < n; ++round) {
    std::atomic<bool> stop{false};
    std::atomic<int> confirms{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < 3; ++p) {
      producers.emplace_back([&, p] { produce(port, round * 10 + p, stop, ledger, confirms); });
    }
    // Stop loftd at a random moment: after a random number of confirmed batches.
    const int at = std::uniform_int_distribution<int>(1, 40)(rng);
    ASSERT_TRUE(eventually([&] { return confirms.load() >= at; }, 60s));
    if (how == Stop::kill9) {
      d.kill9();
    } else {
      ASSERT_EQ(d.stop(), 0) << d.log();
    }
    d.start(/*same_port=*/true);  // nothing in the data dir needs repair to start
    // The producers reconnect, resend what was not confirmed, and finish.
    stop = true;
    for (auto& t : producers) t.join();
    check_log(d, ledger);
    if (::testing::Test::HasFatalFailure()) break;
  }
  // Every message reaches both groups and is acked, byte for byte.
  auto c = d.client("checker");
  const bool drained = eventually(
      [&] {
        for (const auto& g : kGroups) {
          auto info = c->describe_group("ledger", g);
          if (!info || info->lag != 0 || info->in_flight != 0) return false;
        }
        return true;
      },
      120s);
  consumers_stop = true;
  for (auto& t : consumers) t.join();
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(drained) << "the groups did not ack everything";
  std::vector<StoredMessage> stored;
  check_log(d, ledger, &stored);
  std::lock_guard lock(ledger.mutex);
  for (const auto& g : kGroups) {
    const auto& delivered = ledger.delivered[g];
    std::size_t deliveries = 0;
    for (const auto& m : stored) {
      auto it = delivered.find(m.offset.value);
      ASSERT_NE(it, delivered.end()) << "offset " << m.offset.value << " never reached " << g;
      for (const auto& payload : it->second) ASSERT_EQ(payload, m.message.payload);
      deliveries += it->second.size();
    }
    ASSERT_EQ(delivered.size(), stored.size()) << "deliveries of offsets not in the log";
    std::printf(
        "%s: group %s: %zu messages, %zu deliveries, %zu redeliveries, %zu acks confirmed\n",
        how == Stop::kill9 ? "kill -9" : "SIGTERM", g.c_str(), stored.size(), deliveries,
        deliveries - stored.size(), ledger.ack_confirmed[g].size());
  }
  std::printf("%s rounds: %d, confirmed messages checked: %zu\n",
              how == Stop::kill9 ? "kill -9" : "SIGTERM", n, ledger.confirmed.size());
  ::testing::Test::RecordProperty("rounds", n);
  ::testing::Test::RecordProperty("confirmed_messages", static_cast<int>(ledger.confirmed.size()));
}

TEST(Crash, KillNineRoundsKeepConfirmedMessagesAndAcks) {
  run_rounds(Stop::kill9, env_count("LOFT_CRASH_ROUNDS", 20));
}

TEST(Crash, SigtermRoundsKeepConfirmedMessagesAndAcks) {
  run_rounds(Stop::sigterm, env_count("LOFT_CRASH_ROUNDS", 10));
}

}  // namespace
}  // namespace loft::testing
