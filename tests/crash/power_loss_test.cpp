// Power-loss rounds. Method: simulated power loss, in process. The real Broker runs on the
// RocksDB store opened on PowerLossFs (tests/support/power_loss_fs.hpp, a RocksDB
// FileSystemWrapper that remembers what was written but not yet synced). Producers publish
// with message ids and record every confirmed (offset, id, payload) in a ledger. At a random
// moment the power is cut: the FS is frozen (no later write reaches "disk"), the broker and
// the DB are abandoned (destroyed; with the FS frozen their close writes nothing), and the
// unsynced data is dropped. Then the store is reopened on what remains and checked:
//  - fsync: every confirmed message is there, byte for byte, at its offset;
//  - os: what survives is a prefix of the log: every confirmed message below the first lost
//    offset is there, byte for byte, and the loss is only a tail;
//  - both: offsets start at 0 and have no gaps, the topic's metadata agrees with its
//    messages, and every stored message with an id has the dedup entry pointing at it.
// Group progress (PowerLoss.ConfirmedAcksSurviveWhilePlainAcksAreWrittenUnsynced): a consumer
// acks everything, a few acks with confirm. Plain acks are written without a sync, confirmed
// ones with one. After each cut, every offset whose ack was confirmed is done in the group that
// the store loads.
// LOFT_POWER_LOSS_ROUNDS=N runs N rounds per durability mode (default 8), and N ack rounds.

#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "groups_harness.hpp"
#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "power_loss_fs.hpp"
#include "storage/rocksdb_testing.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using storage::Durability;

struct Confirmed {
  std::string id;
  std::string payload;
};

struct Ledger {
  std::mutex mutex;
  std::map<std::uint64_t, Confirmed> confirmed;  // offset -> what was confirmed there
};

broker::Options with_durability(Durability durability) {
  broker::Options o;
  o.durability = durability;
  return o;
}

// One broker on one PowerLossFs, from open to power cut.
struct Powered {
  std::shared_ptr<PowerLossFs> fs = std::make_shared<PowerLossFs>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  std::unique_ptr<broker::Broker> broker;
};

// Publishes batches of 5 messages with unique ids until `stop`, up to 4 batches in flight;
// records what is confirmed. Failed publishes (after the cut) are simply not confirmed. Now and
// then lets `fs` write back part of what is unsynced, as the kernel would on its own.
void produce(broker::Broker& b, PowerLossFs& fs, const std::string& prefix, std::atomic<bool>& stop,
             Ledger& ledger, std::atomic<int>& confirmed_batches) {
  std::mt19937 rng{static_cast<std::uint32_t>(std::hash<std::string>{}(prefix))};
  std::deque<std::pair<std::vector<Message>, std::future<Result<broker::Appended>>>> in_flight;
  auto settle_front = [&] {
    auto [sent, reply] = std::move(in_flight.front());
    in_flight.pop_front();
    auto r = reply.get();
    if (!r) return;  // not confirmed: may or may not be stored
    std::lock_guard lock(ledger.mutex);
    for (std::size_t i = 0; i < r->results.size(); ++i) {
      const auto& res = r->results[i];
      ASSERT_EQ(res.code, Errc::ok);
      ASSERT_FALSE(res.duplicate) << "ids are unique, yet " << sent[i].id << " is a duplicate";
      const auto [it, inserted] =
          ledger.confirmed.emplace(res.offset.value, Confirmed{sent[i].id, sent[i].payload});
      ASSERT_TRUE(inserted) << "two messages confirmed at offset " << res.offset.value;
    }
    confirmed_batches.fetch_add(1);
    if (rng() % 8 == 0) fs.write_back(rng);
  };
  for (int batch = 0; !stop.load() && batch < 100'000; ++batch) {
    std::vector<Message> messages;
    for (int i = 0; i < 5; ++i) {
      Message m;
      m.id = prefix + "-" + std::to_string(batch) + "-" + std::to_string(i);
      m.payload = "payload " + m.id + std::string(static_cast<std::size_t>(i * 13), '\0');
      messages.push_back(std::move(m));
    }
    auto promise = std::make_shared<std::promise<Result<broker::Appended>>>();
    auto future = promise->get_future();
    b.publish("ledger", messages,
              [promise](Result<broker::Appended> r) { promise->set_value(std::move(r)); });
    in_flight.emplace_back(std::move(messages), std::move(future));
    if (in_flight.size() >= 4) settle_front();
    if (::testing::Test::HasFatalFailure()) return;
  }
  while (!in_flight.empty()) settle_front();
}

// Opens the store on `p` and checks it against the ledger; returns the broker opened on it
// (for the next round). Under `os`, confirmed entries that were lost are removed from the
// ledger (their offsets will be handed out again) and counted in `lost`.
std::unique_ptr<broker::Broker> reopen_and_check(Powered& p, const std::filesystem::path& dir,
                                                 Durability durability, Ledger& ledger,
                                                 std::uint64_t& lost) {
  auto store = storage::testing::open_rocksdb_store_on({.dir = dir}, *p.env);
  EXPECT_TRUE(store) << "reopen after the power cut: " << store.error().to_string();
  if (!store) return nullptr;
  auto topics = (*store)->load_topics();
  EXPECT_TRUE(topics && topics->size() == 1) << "the topic survives (created with a sync)";
  if (!topics || topics->size() != 1) return nullptr;
  const auto meta = topics->front();
  std::vector<StoredMessage> stored;
  for (Offset from{0};;) {
    auto read = (*store)->read(meta.id, from, {.max_messages = 10'000, .max_bytes = 16 << 20});
    EXPECT_TRUE(read) << read.error().to_string();
    if (!read || read->empty()) break;
    from = Offset{read->back().offset.value + 1};
    for (auto& m : *read) stored.push_back(std::move(m));
  }
  EXPECT_EQ(meta.first_offset.value, 0u);
  EXPECT_EQ(meta.next_offset.value, stored.size()) << "metadata agrees with the messages";
  EXPECT_EQ(meta.messages, stored.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].offset.value, i) << "offsets have no gaps";
    if (stored[i].offset.value != i) return nullptr;
    auto entry = (*store)->find_dedup(meta.id, stored[i].message.id);
    EXPECT_TRUE(entry && *entry && (**entry).offset == stored[i].offset)
        << "dedup entry of " << stored[i].message.id << " points at its message";
  }
  std::lock_guard lock(ledger.mutex);
  for (auto it = ledger.confirmed.begin(); it != ledger.confirmed.end();) {
    const auto& [offset, want] = *it;
    if (offset >= stored.size()) {
      EXPECT_EQ(durability, Durability::os) << "confirmed offset " << offset << " is missing";
      // A lost id must be unknown to dedup too, or its retry would be answered "duplicate".
      auto entry = (*store)->find_dedup(meta.id, want.id);
      EXPECT_TRUE(entry && !*entry) << "lost message " << want.id << " still has a dedup entry";
      ++lost;
      it = ledger.confirmed.erase(it);
      continue;
    }
    EXPECT_EQ(stored[offset].message.id, want.id) << "at confirmed offset " << offset;
    EXPECT_EQ(stored[offset].message.payload, want.payload) << "at confirmed offset " << offset;
    ++it;
  }
  auto b = broker::Broker::open(std::move(*store), with_durability(durability));
  EXPECT_TRUE(b) << b.error().to_string();
  return b ? std::move(*b) : nullptr;
}

void run_rounds(Durability durability) {
  TempDir tmp;
  const auto dir = tmp.path() / "rocksdb";
  Ledger ledger;
  std::mt19937 rng{durability == Durability::fsync ? 2024u : 4202u};
  const int n = env_count("LOFT_POWER_LOSS_ROUNDS", 8);
  std::uint64_t lost = 0;
  std::uint64_t dropped_bytes = 0;

  auto p = std::make_unique<Powered>();
  {
    auto store = storage::testing::open_rocksdb_store_on({.dir = dir}, *p->env);
    ASSERT_TRUE(store) << store.error().to_string();
    auto b = broker::Broker::open(std::move(*store), with_durability(durability));
    ASSERT_TRUE(b) << b.error().to_string();
    p->broker = std::move(*b);
    std::promise<Result<TopicInfo>> created;
    p->broker->create_topic("ledger", [&](Result<TopicInfo> r) { created.set_value(r); });
    ASSERT_TRUE(created.get_future().get());
    // The topic must exist after any cut, also under `os`: flush it to synced SST files.
    p->broker->stop();
    p->broker.reset();
    p = std::make_unique<Powered>();
    std::uint64_t none = 0;
    p->broker = reopen_and_check(*p, dir, durability, ledger, none);
    ASSERT_TRUE(p->broker);
  }

  for (int round = 0; round < n; ++round) {
    std::atomic<bool> stop{false};
    std::atomic<int> batches{0};
    std::vector<std::thread> producers;
    for (int i = 0; i < 2; ++i) {
      const auto prefix = "r" + std::to_string(round) + "p" + std::to_string(i);
      producers.emplace_back(
          [&, prefix] { produce(*p->broker, *p->fs, prefix, stop, ledger, batches); });
    }
    if (durability == Durability::fsync && round % 2 == 1) {
      // Cut between a write and its sync: the write is in the file, not yet durable.
      p->fs->freeze_at_sync(std::uniform_int_distribution<std::uint64_t>(1, 100)(rng));
      ASSERT_TRUE(eventually([&] { return p->fs->frozen(); }, 120s));
    } else {
      // Cut after a random number of confirmed batches, wherever the writer then is.
      const int at = std::uniform_int_distribution<int>(1, 60)(rng);
      ASSERT_TRUE(eventually([&] { return batches.load() >= at; }, 120s));
      p->fs->freeze();  // the power is off: nothing from here on reaches the disk
    }
    stop = true;
    for (auto& t : producers) t.join();
    if (::testing::Test::HasFatalFailure()) return;
    p->broker.reset();  // abandoned: with the FS frozen, its stop and close write nothing
    dropped_bytes += p->fs->drop_unsynced().bytes;
    p = std::make_unique<Powered>();
    p->broker = reopen_and_check(*p, dir, durability, ledger, lost);
    ASSERT_TRUE(p->broker);
    if (::testing::Test::HasFailure()) return;
  }
  std::lock_guard lock(ledger.mutex);
  ::testing::Test::RecordProperty("rounds", n);
  ::testing::Test::RecordProperty("confirmed_kept", static_cast<int>(ledger.confirmed.size()));
  ::testing::Test::RecordProperty("confirmed_lost", static_cast<int>(lost));
  std::printf(
      "power loss rounds: %d durability=%s confirmed messages kept: %zu lost: %llu "
      "unsynced bytes dropped: %llu\n",
      n, durability == Durability::fsync ? "fsync" : "os", ledger.confirmed.size(),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(dropped_bytes));
  EXPECT_GT(dropped_bytes, 0u) << "the cuts dropped nothing: they tested nothing";
  if (durability == Durability::fsync) {
    EXPECT_EQ(lost, 0u);
  } else {
    // Writeback made some confirmed writes durable and the cuts lost others: the prefix rule
    // was exercised on both sides.
    EXPECT_GT(ledger.confirmed.size(), 0u);
    EXPECT_GT(lost, 0u);
  }
}

TEST(PowerLoss, FsyncLosesNoConfirmedMessage) { run_rounds(Durability::fsync); }

TEST(PowerLoss, OsLosesOnlyATailAndKeepsDedupConsistent) { run_rounds(Durability::os); }

// Publishes `n` messages to `topic` in batches of 100 and waits for them (synced).
void publish_synced(broker::Broker& b, const std::string& topic, int n) {
  for (int done = 0; done < n; done += 100) {
    std::promise<Result<broker::Appended>> published;
    Message m;
    m.payload = "to be acked";
    b.publish(topic, std::vector<Message>(100, m),
              [&](Result<broker::Appended> r) { published.set_value(std::move(r)); });
    ASSERT_TRUE(published.get_future().get());
  }
}

// Whether `offset` is done in a stored group record.
bool done_in(const storage::GroupRecord& g, std::uint64_t offset) {
  if (offset < g.ack_floor.value) return true;
  return std::any_of(g.done_ranges.begin(), g.done_ranges.end(), [&](const auto& run) {
    return run.first.value <= offset && offset < run.second.value;
  });
}

TEST(PowerLoss, ConfirmedAcksSurviveWhilePlainAcksAreWrittenUnsynced) {
  TempDir tmp;
  const auto dir = tmp.path() / "rocksdb";
  std::mt19937 rng{7331u};
  const int n = env_count("LOFT_POWER_LOSS_ROUNDS", 8);
  std::vector<std::uint64_t> confirmed;  // offsets whose ack was confirmed, all rounds
  std::uint64_t plain = 0;               // plain acks answered, all rounds
  std::uint64_t dropped_bytes = 0;
  // Declared before `p`, so they outlive its broker also when an assertion ends the test
  // early: the broker's writer calls into `groups`, which posts to `loop` (tasks it leaves
  // there run in a later round's loop and do nothing: their Groups is gone).
  Loop loop;
  std::unique_ptr<broker::Groups> groups;
  auto p = std::make_unique<Powered>();
  {
    auto store = storage::testing::open_rocksdb_store_on({.dir = dir}, *p->env);
    ASSERT_TRUE(store) << store.error().to_string();
    auto b = broker::Broker::open(std::move(*store), with_durability(Durability::fsync));
    ASSERT_TRUE(b) << b.error().to_string();
    p->broker = std::move(*b);
    std::promise<Result<TopicInfo>> created;
    p->broker->create_topic("acks", [&](Result<TopicInfo> r) { created.set_value(r); });
    ASSERT_TRUE(created.get_future().get());
  }
  for (int round = 0; round < n; ++round) {
    publish_synced(*p->broker, "acks", 1000);
    if (::testing::Test::HasFatalFailure()) return;
    groups =
        std::make_unique<broker::Groups>(*p->broker, broker::GroupDefaults{},
                                         [&](std::function<void()> f) { loop.post(std::move(f)); });
    groups->load();
    FakeSubscriber who;
    std::optional<Result<broker::Subscribed>> subscribed;
    groups->subscribe(broker::SubscribeRequest{"acks", "g", {}, 10, {}}, &who, {},
                      [&](Result<broker::Subscribed> r) { subscribed = std::move(r); });
    ASSERT_TRUE(loop.run_until([&] { return subscribed.has_value(); }));
    ASSERT_TRUE(*subscribed) << subscribed->error().to_string();
    const auto sub = (*subscribed)->subscription;
    // Acks in steps: what was delivered so far (at most 10), then one completion of the
    // broker (the group write in flight; the write it starts takes this step's acks). One ack in
    // 97 asks for a confirm, so most writes carry only plain acks. Cuts after a random number
    // of steps, while the next write may be under way.
    const int steps = std::uniform_int_distribution<int>(1, 80)(rng);
    for (int step_count = 0; step_count < steps && !who.received.empty(); ++step_count) {
      auto step = std::move(who.received);
      who.received.clear();
      auto send = [&](std::uint64_t offset, bool confirm) {
        broker::SettleRequest req{
            sub, SettleAction::ack, confirm, std::nullopt, {OffsetRun{offset, 1}}};
        groups->settle(req, &who, {}, [&, offset, confirm](Result<broker::Settled> r) {
          ASSERT_TRUE(r) << "before the cut: " << r.error().to_string();
          if (confirm) {
            confirmed.push_back(offset);
          } else {
            ++plain;
          }
        });
      };
      for (const auto& m : step) {
        send(m.offset, m.offset % 97 == 0);
        if (::testing::Test::HasFatalFailure()) return;
      }
      ASSERT_TRUE(loop.run_one()) << "no group write completed after " << confirmed.size()
                                  << " confirmed acks";
      if (rng() % 8 == 0) p->fs->write_back(rng);
    }
    p->fs->freeze();  // the power is off: nothing from here on reaches the disk
    // Abandoned: with the FS frozen, its stop and close write nothing. Its writer's last
    // completions call into `groups`, so the broker goes first.
    p->broker.reset();
    groups.reset();
    dropped_bytes += p->fs->drop_unsynced().bytes;
    p = std::make_unique<Powered>();
    auto store = storage::testing::open_rocksdb_store_on({.dir = dir}, *p->env);
    ASSERT_TRUE(store) << "reopen after the power cut: " << store.error().to_string();
    auto records = (*store)->load_groups();
    ASSERT_TRUE(records) << records.error().to_string();
    ASSERT_EQ(records->size(), 1u) << "the group survives (created with a sync)";
    for (const auto offset : confirmed) {
      ASSERT_TRUE(done_in(records->front(), offset))
          << "round " << round << ": the confirmed ack of offset " << offset << " is lost";
    }
    auto b = broker::Broker::open(std::move(*store), with_durability(Durability::fsync));
    ASSERT_TRUE(b) << b.error().to_string();
    p->broker = std::move(*b);
  }
  std::printf(
      "power loss ack rounds: %d confirmed acks kept: %zu plain acks answered: %llu unsynced "
      "bytes dropped: %llu\n",
      n, confirmed.size(), static_cast<unsigned long long>(plain),
      static_cast<unsigned long long>(dropped_bytes));
  ::testing::Test::RecordProperty("ack_rounds", n);
  ::testing::Test::RecordProperty("confirmed_acks_kept", static_cast<int>(confirmed.size()));
  EXPECT_GT(dropped_bytes, 0u) << "the cuts dropped nothing: they tested nothing";
  EXPECT_GT(confirmed.size(), 0u) << "no confirmed ack to check";
}

}  // namespace
}  // namespace loft::testing
