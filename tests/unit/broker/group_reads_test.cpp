// Groups over a broker with a memory store: what a group reads from the store while it drains
// a backlog, that every delivery carries its own message whichever way it was read, and how
// durable the writes of its progress are (GroupProgress).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "support/forwarding_store.hpp"
#include "support/groups_harness.hpp"

namespace loft::broker {
namespace {

using namespace std::chrono_literals;
using testing::FakeSubscriber;
using testing::Loop;

constexpr std::uint64_t kBacklog = 3000;
const TimePoint kT0{};

// Counts read() calls, and records the durability of every write; fails reads or writes when
// told to.
class CountingStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<void> write(const storage::WriteBatch& batch, storage::Durability d) override {
    auto r = fail_writes ? fail(Errc::storage_error, "injected write failure")
                         : ForwardingStore::write(batch, d);
    std::lock_guard lock(writes_mutex_);
    writes_.push_back(d);
    return r;
  }
  // The durability of each write so far, in order.
  std::vector<storage::Durability> writes() const {
    std::lock_guard lock(writes_mutex_);
    return writes_;
  }
  Result<std::vector<StoredMessage>> read(TopicId topic, Offset from,
                                          storage::ReadLimits limits) const override {
    ++reads_;
    last_max_messages_ = limits.max_messages;
    if (fail_reads) return fail(Errc::storage_error, "injected read failure");
    return ForwardingStore::read(topic, from, limits);
  }
  std::atomic<bool> fail_reads{false};
  std::atomic<bool> fail_writes{false};
  std::uint64_t reads() const { return reads_.load(); }
  std::size_t last_max_messages() const { return last_max_messages_.load(); }

 private:
  mutable std::atomic<std::uint64_t> reads_{0};
  mutable std::atomic<std::size_t> last_max_messages_{0};
  mutable std::mutex writes_mutex_;
  std::vector<storage::Durability> writes_;
};

// The payload of the message at `offset`: "message-<offset>", padded to `size` bytes if given.
std::string payload_of(std::uint64_t offset, std::size_t size = 0) {
  auto p = "message-" + std::to_string(offset);
  if (p.size() < size) p.resize(size, '.');
  return p;
}

class GroupReads : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = std::make_unique<CountingStore>(storage::make_memory_store());
    store_ = store.get();
    Options o;
    o.now_ms = [] { return std::int64_t{1'700'000'000'000}; };
    auto b = Broker::open(std::move(store), std::move(o));
    ASSERT_TRUE(b.has_value());
    broker_ = std::move(*b);
    std::promise<Result<TopicInfo>> created;
    broker_->create_topic("t", [&](Result<TopicInfo> r) { created.set_value(std::move(r)); });
    ASSERT_TRUE(created.get_future().get());
    for (std::uint64_t first = 0; first < kBacklog; first += 100) publish(first, 100);
    groups_ = std::make_unique<Groups>(
        *broker_, GroupDefaults{}, [this](std::function<void()> f) { loop_.post(std::move(f)); });
  }

  void TearDown() override {
    // The broker first: its writer's completions call into groups_.
    if (broker_) broker_->stop();
    groups_.reset();
  }

  // Publishes `n` messages at offsets from `first` (the next ones), each `size` bytes or, by
  // default, payload_of(offset).
  void publish(std::uint64_t first, std::uint64_t n, std::size_t size = 0) {
    std::vector<Message> batch(n);
    for (std::uint64_t i = 0; i < n; ++i) batch[i].payload = payload_of(first + i, size);
    std::promise<Result<Appended>> published;
    broker_->publish("t", std::move(batch),
                     [&](Result<Appended> r) { published.set_value(std::move(r)); });
    ASSERT_TRUE(published.get_future().get());
  }

  std::uint64_t subscribe(FakeSubscriber& who, std::uint32_t max_in_flight) {
    std::optional<Result<broker::Subscribed>> ok;
    broker::SubscribeRequest req{"t", "g", {}, max_in_flight, {}};
    groups_->subscribe(std::move(req), &who, kT0,
                       [&](Result<broker::Subscribed> r) { ok = std::move(r); });
    EXPECT_TRUE(loop_.run_until([&] { return ok.has_value(); }));
    EXPECT_TRUE(ok && *ok);
    return ok && *ok ? (*ok)->subscription : 0;
  }

  void settle(std::uint64_t sub, const FakeSubscriber& who, SettleAction action,
              std::uint64_t offset) {
    broker::SettleRequest req{sub, action, false, 0, {OffsetRun{offset, 1}}};
    bool done = false;
    groups_->settle(req, &who, kT0, [&](Result<broker::Settled> r) {
      EXPECT_TRUE(r);
      done = true;
    });
    EXPECT_TRUE(loop_.run_until([&] { return done; }));
  }

  // Acks `offset` with confirm; `done` is set once the broker answers.
  void ack_confirmed(std::uint64_t sub, const FakeSubscriber& who, std::uint64_t offset,
                     std::optional<Result<broker::Settled>>& done) {
    broker::SettleRequest req{sub, SettleAction::ack, true, 0, {OffsetRun{offset, 1}}};
    groups_->settle(req, &who, kT0, [&](Result<broker::Settled> r) { done = std::move(r); });
  }

  // Acks `offset` with confirm, checks it is not answered before a write completes (the loop
  // runs only here), then runs the loop until the answer, which must be a success.
  broker::Settled ack_confirmed_after_a_write(std::uint64_t sub, const FakeSubscriber& who,
                                              std::uint64_t offset) {
    std::optional<Result<broker::Settled>> confirmed;
    ack_confirmed(sub, who, offset, confirmed);
    EXPECT_FALSE(confirmed.has_value()) << "answered before a write completed";
    EXPECT_TRUE(loop_.run_until([&] { return confirmed.has_value(); }));
    EXPECT_TRUE(confirmed && *confirmed);
    return confirmed && *confirmed ? **confirmed : broker::Settled{};
  }

  CountingStore* store_ = nullptr;
  std::unique_ptr<Broker> broker_;
  Loop loop_;
  std::unique_ptr<Groups> groups_;
};

// Acks each delivery as it comes, as a consumer does: credit frees one offset at a time.
TEST_F(GroupReads, ADrainReadsEachStretchOfTheBacklogOnceNotOncePerRunOfDeliveries) {
  FakeSubscriber who;
  const auto sub = subscribe(who, 10);
  const auto reads_before = store_->reads();
  std::vector<std::uint64_t> offsets;
  while (offsets.size() < kBacklog) {
    ASSERT_FALSE(who.received.empty()) << "no delivery after offset " << offsets.size();
    auto m = std::move(who.received.front());
    who.received.pop_front();
    ASSERT_EQ(m.message.payload, payload_of(m.offset));
    ASSERT_EQ(m.attempt, 1u);
    offsets.push_back(m.offset);
    settle(sub, who, SettleAction::ack, m.offset);
  }
  for (std::uint64_t i = 0; i < kBacklog; ++i) ASSERT_EQ(offsets[i], i);
  // Runs of one delivery each: 3000 store reads without the read-ahead, 3 with it (1024
  // messages a read) and one more for the first 10.
  EXPECT_LE(store_->reads() - reads_before, 6u);
}

// An ordered group over 10 keys whose consumer acks its deliveries in a random order: a key's
// next message (10 offsets on) is held back until the key's message in flight is acked, while
// the messages of other keys go out past it, so it is delivered later, below the read-ahead.
// It is served from the blocks the group examined (Groups' key blocks), not read from the
// store again.
TEST_F(GroupReads, AnOrderedDrainReadsEachStretchOnceThoughKeysComeFreeOutOfOrder) {
  constexpr std::uint64_t kKeys = 10;
  std::promise<Result<TopicInfo>> created;
  broker_->create_topic("keyed", [&](Result<TopicInfo> r) { created.set_value(std::move(r)); });
  ASSERT_TRUE(created.get_future().get());
  for (std::uint64_t first = 0; first < kBacklog; first += 100) {
    std::vector<Message> batch(100);
    for (std::uint64_t i = 0; i < 100; ++i) {
      batch[i].payload = payload_of(first + i);
      batch[i].key = "k" + std::to_string((first + i) % kKeys);
    }
    std::promise<Result<Appended>> published;
    broker_->publish("keyed", std::move(batch),
                     [&](Result<Appended> r) { published.set_value(std::move(r)); });
    ASSERT_TRUE(published.get_future().get());
  }
  FakeSubscriber who;
  std::optional<Result<broker::Subscribed>> ok;
  broker::SubscribeRequest req{"keyed", "g", {}, 50, {}};
  req.config.ordering = Ordering::key;
  groups_->subscribe(std::move(req), &who, kT0,
                     [&](Result<broker::Subscribed> r) { ok = std::move(r); });
  ASSERT_TRUE(loop_.run_until([&] { return ok.has_value(); }));
  ASSERT_TRUE(ok && *ok);
  const auto sub = (*ok)->subscription;
  const auto reads_before = store_->reads();
  std::map<std::uint64_t, std::uint64_t> last_of_key;  // key -> the last offset delivered
  std::vector<std::uint64_t> unacked;
  std::mt19937 rng{7};
  std::uint64_t delivered = 0;
  while (delivered < kBacklog || !unacked.empty()) {
    while (!who.received.empty()) {
      auto m = std::move(who.received.front());
      who.received.pop_front();
      ASSERT_EQ(m.message.payload, payload_of(m.offset));
      const auto key = m.offset % kKeys;
      if (last_of_key.contains(key)) {
        ASSERT_EQ(m.offset, last_of_key[key] + kKeys) << "key " << key;
      }
      last_of_key[key] = m.offset;
      unacked.push_back(m.offset);
      ++delivered;
    }
    ASSERT_FALSE(unacked.empty()) << "no delivery after " << delivered;
    const auto at = std::uniform_int_distribution<std::size_t>(0, unacked.size() - 1)(rng);
    const auto offset = unacked[at];
    unacked.erase(unacked.begin() + static_cast<std::ptrdiff_t>(at));
    broker::SettleRequest ack{sub, SettleAction::ack, false, 0, {OffsetRun{offset, 1}}};
    bool done = false;
    groups_->settle(ack, &who, kT0, [&](Result<broker::Settled> r) {
      EXPECT_TRUE(r);
      done = true;
    });
    ASSERT_TRUE(loop_.run_until([&] { return done; }));
  }
  EXPECT_EQ(delivered, kBacklog);
  // 3 examining reads of 1024 messages, and a few for runs at the edge of a block; a read per
  // held-back message delivered below the read-ahead (hundreds) without the key blocks.
  EXPECT_LE(store_->reads() - reads_before, 12u);
}

TEST_F(GroupReads, ARedeliveryBelowTheReadAheadCarriesItsOwnMessage) {
  FakeSubscriber who;
  const auto sub = subscribe(who, 10);
  std::map<std::uint64_t, std::vector<std::uint32_t>> attempts;  // offset -> attempts seen
  std::uint64_t acked = 0;
  bool nacked = false;
  while (acked < kBacklog) {
    ASSERT_FALSE(who.received.empty()) << "no delivery after " << acked << " acks";
    auto m = std::move(who.received.front());
    who.received.pop_front();
    ASSERT_EQ(m.message.payload, payload_of(m.offset)) << "attempt " << m.attempt;
    attempts[m.offset].push_back(m.attempt);
    if (m.offset == 5 && !nacked) {
      // Back at once (no delay), while the group has read far past it.
      nacked = true;
      settle(sub, who, SettleAction::nack, m.offset);
      continue;
    }
    settle(sub, who, SettleAction::ack, m.offset);
    ++acked;
  }
  ASSERT_EQ(attempts.size(), kBacklog);
  EXPECT_THAT(attempts[5], ::testing::ElementsAre(1u, 2u));
  for (const auto& [offset, seen] : attempts) {
    if (offset != 5) {
      EXPECT_THAT(seen, ::testing::ElementsAre(1u)) << "offset " << offset;
    }
  }
}

// Both get credit in the same round (their connections become ready together), so they get
// alternate offsets: each stretch is still read once, not once per consumer or per offset.
TEST_F(GroupReads, TwoConsumersWithCreditAtOnceShareOneReadOfEachStretch) {
  FakeSubscriber a;
  FakeSubscriber b;
  a.is_ready = false;
  b.is_ready = false;
  const auto sub_a = subscribe(a, 7);
  const auto sub_b = subscribe(b, 13);
  ASSERT_TRUE(a.received.empty());
  const auto reads_before = store_->reads();
  a.is_ready = true;
  b.is_ready = true;
  groups_->on_ready(&a, kT0);  // as a session does when its queue drains (b's is ready too)
  ASSERT_EQ(a.received.size(), 7u);
  ASSERT_EQ(b.received.size(), 13u);
  EXPECT_EQ(a.received[1].offset, 2u) << "not alternate offsets: the test needs them";
  std::vector<int> seen(kBacklog, 0);
  std::uint64_t total = 0;
  while (total < kBacklog) {
    auto* from = !a.received.empty() ? &a : &b;
    ASSERT_FALSE(from->received.empty()) << "no delivery after " << total;
    auto m = std::move(from->received.front());
    from->received.pop_front();
    ASSERT_LT(m.offset, kBacklog);
    ASSERT_EQ(m.message.payload, payload_of(m.offset));
    ++seen[m.offset];
    ++total;
    settle(from == &a ? sub_a : sub_b, *from, SettleAction::ack, m.offset);
  }
  for (std::uint64_t i = 0; i < kBacklog; ++i) EXPECT_EQ(seen[i], 1) << "offset " << i;
  EXPECT_LE(store_->reads() - reads_before, 6u);
}

// A consumer that has caught up has nothing read ahead: a redelivery then reads just itself.
TEST_F(GroupReads, ARedeliveryAtTheTailReadsOnlyItself) {
  FakeSubscriber who;
  const auto sub = subscribe(who, 10);
  std::uint64_t acked = 0;
  while (acked + 1 < kBacklog) {
    ASSERT_FALSE(who.received.empty());
    const auto m = std::move(who.received.front());
    who.received.pop_front();
    if (m.offset == 100) continue;  // kept in flight, nacked at the end
    settle(sub, who, SettleAction::ack, m.offset);
    ++acked;
  }
  ASSERT_TRUE(who.received.empty());
  const auto reads_before = store_->reads();
  settle(sub, who, SettleAction::nack, 100);
  ASSERT_EQ(who.received.size(), 1u);
  EXPECT_EQ(who.received.front().offset, 100u);
  EXPECT_EQ(who.received.front().attempt, 2u);
  EXPECT_EQ(who.received.front().message.payload, payload_of(100));
  EXPECT_EQ(store_->reads() - reads_before, 1u);
  EXPECT_EQ(store_->last_max_messages(), 1u) << "read ahead for a redelivery";
}

// A read the store fails is not a message gone: the run stays in flight and comes back at its
// ack deadline, read again, instead of being counted as done and never delivered.
TEST_F(GroupReads, AFailedStoreReadLeavesTheRunInFlightForRedelivery) {
  FakeSubscriber who;
  who.is_ready = false;
  const auto sub = subscribe(who, 5);
  store_->fail_reads = true;
  who.is_ready = true;
  groups_->on_ready(&who, kT0);
  EXPECT_TRUE(who.received.empty());
  store_->fail_reads = false;
  const auto metrics = groups_->metrics();
  ASSERT_EQ(metrics.size(), 1u);
  EXPECT_EQ(metrics[0].lag, kBacklog) << "offsets never sent were counted as done";
  EXPECT_EQ(metrics[0].in_flight, 5u);
  // Past the ack deadline (30 s by default) and the redelivery backoff they are delivered
  // again, whole; meanwhile the freed credit took new offsets, acked here to make room.
  std::map<std::uint64_t, std::uint32_t> attempts;
  for (const auto at : {std::chrono::seconds(31), std::chrono::seconds(120)}) {
    groups_->on_timer(kT0 + at);
    while (!who.received.empty()) {
      const auto m = std::move(who.received.front());
      who.received.pop_front();
      EXPECT_EQ(m.message.payload, payload_of(m.offset));
      attempts[m.offset] = m.attempt;
      settle(sub, who, SettleAction::ack, m.offset);
    }
  }
  for (std::uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(attempts.contains(i)) << "offset " << i << " never delivered";
    EXPECT_EQ(attempts[i], 2u) << "offset " << i;
  }
}

// Messages larger than the read-ahead's byte bound: each run is read as it is, whole.
TEST_F(GroupReads, LargeMessagesAreDeliveredWholeAndInOrder) {
  constexpr std::size_t kLarge = 300 << 10;
  publish(kBacklog, 12, kLarge);
  FakeSubscriber who;
  const auto sub = subscribe(who, 4);
  std::uint64_t next = 0;
  while (next < kBacklog + 12) {
    ASSERT_FALSE(who.received.empty()) << "no delivery after offset " << next;
    auto m = std::move(who.received.front());
    who.received.pop_front();
    ASSERT_EQ(m.offset, next);
    ASSERT_EQ(m.message.payload, payload_of(m.offset, m.offset >= kBacklog ? kLarge : 0));
    settle(sub, who, SettleAction::ack, m.offset);
    ++next;
  }
}

using GroupProgress = GroupReads;

// Plain acks are written without a sync; a confirmed ack gets one before its answer.
TEST_F(GroupProgress, OnlyConfirmedAcksWaitForASyncedWrite) {
  FakeSubscriber who;
  const auto sub = subscribe(who, 10);
  const auto before = store_->writes();
  ASSERT_EQ(before.back(), storage::Durability::fsync) << "the group's creation is synced";
  settle(sub, who, SettleAction::ack, 0);
  ASSERT_TRUE(loop_.run_until([&] { return store_->writes().size() > before.size(); }));
  EXPECT_EQ(ack_confirmed_after_a_write(sub, who, 1).applied, 1u);
  const auto after = store_->writes();
  ASSERT_EQ(after.size(), before.size() + 2);
  EXPECT_EQ(after[before.size()], storage::Durability::os) << "the plain ack";
  EXPECT_EQ(after.back(), storage::Durability::fsync) << "the confirmed ack";
}

// A confirm that asks for nothing new (the offset is acked already) while that ack's unsynced
// write is in flight: it is answered after a synced write, not by the unsynced one.
TEST_F(GroupProgress, AConfirmDuringAnUnsyncedWriteOfTheSameProgressWaitsForASync) {
  FakeSubscriber who;
  const auto sub = subscribe(who, 10);
  const auto before = store_->writes().size();
  // The test thread is the loop: the plain ack's write completes only when the loop runs.
  settle(sub, who, SettleAction::ack, 0);
  EXPECT_EQ(ack_confirmed_after_a_write(sub, who, 0).ignored, 1u);
  const auto after = store_->writes();
  ASSERT_EQ(after.size(), before + 2);
  EXPECT_EQ(after[before], storage::Durability::os);
  EXPECT_EQ(after.back(), storage::Durability::fsync);
}

// A group deleted while its synced write is in flight, and made again under the same name
// before that write completes: the completion must not count for the new group.
TEST_F(GroupProgress, AWriteOfADeletedGroupDoesNotCountForTheGroupMadeAgainUnderItsName) {
  FakeSubscriber old_who;
  const auto old_sub = subscribe(old_who, 10);
  std::optional<Result<broker::Settled>> old_confirm;
  ack_confirmed(old_sub, old_who, 0, old_confirm);  // its synced write is now in flight
  std::optional<Result<void>> deleted;
  groups_->delete_group("t", "g", kT0, [&](Result<void> r) { deleted = std::move(r); });
  FakeSubscriber who;
  const auto sub = subscribe(who, 10);  // runs the old write's completion too
  ASSERT_TRUE(loop_.run_until([&] { return deleted.has_value(); }));
  ASSERT_TRUE(*deleted);
  ASSERT_TRUE(old_confirm.has_value());
  ASSERT_FALSE(*old_confirm);
  EXPECT_EQ(old_confirm->error().code, Errc::group_not_found);
  ASSERT_FALSE(who.received.empty());
  ASSERT_EQ(who.received.front().offset, 0u) << "the new group starts again at the beginning";
  const auto writes = store_->writes().size();
  EXPECT_EQ(ack_confirmed_after_a_write(sub, who, 0).applied, 1u);
  ASSERT_GT(store_->writes().size(), writes);
  EXPECT_EQ(store_->writes().back(), storage::Durability::fsync);
}

// The topic goes while its group's creating write is in flight, and a group of the same name
// is made on it again (as after a delete and re-create of the topic). The subscribe waiting for
// the first group is answered at once, and the first write's completion (here a failure) does
// not touch the second group.
TEST_F(GroupProgress, AGroupMadeAgainIsNotTouchedByTheCreatingWriteOfTheOneBefore) {
  FakeSubscriber first_who;
  std::optional<Result<broker::Subscribed>> first;
  const auto before = store_->writes().size();
  store_->fail_writes = true;
  groups_->subscribe(broker::SubscribeRequest{"t", "g", {}, 10, {}}, &first_who, kT0,
                     [&](Result<broker::Subscribed> r) { first = std::move(r); });
  ASSERT_FALSE(first.has_value()) << "answered before its group was written";
  // The creating write fails on the writer thread; its completion waits in the loop, which
  // runs only when the test runs it.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (store_->writes().size() == before) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the creating write never came";
    std::this_thread::yield();
  }
  store_->fail_writes = false;
  const auto topic = broker_->describe_topic("t");
  ASSERT_TRUE(topic);
  groups_->on_topic_events({TopicEvent{"t", topic->id, topic->next_offset, true, {}}}, kT0);
  ASSERT_TRUE(first.has_value()) << "not answered when its group went with the topic";
  ASSERT_FALSE(*first);
  EXPECT_EQ(first->error().code, Errc::group_not_found);
  FakeSubscriber who;
  const auto sub = subscribe(who, 10);  // runs the first write's completion too
  EXPECT_NE(sub, 0u);
  EXPECT_FALSE(who.received.empty()) << "the second group delivers";
}

}  // namespace
}  // namespace loft::broker
