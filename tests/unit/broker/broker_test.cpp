// The broker against the memory store: offsets, topics, group commit, failed writes.

#include "loft/broker/broker.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "support/faulty_store.hpp"
#include "support/forwarding_store.hpp"

namespace loft::broker {
namespace {

using ::testing::ElementsAre;

constexpr std::int64_t kNow = 1'700'000'000'000;

Options test_options(bool auto_create = false) {
  Options o;
  o.auto_create_topics = auto_create;
  o.now_ms = [] { return kNow; };
  return o;
}

Message msg(std::string payload) {
  Message m;
  m.payload = std::move(payload);
  return m;
}

// Waits for a callback's result (the broker completes on its writer thread).
template <class T>
struct Waiter {
  std::promise<Result<T>> promise;
  std::future<Result<T>> future = promise.get_future();
  Callback<T> callback() {
    return [this](Result<T> r) { promise.set_value(std::move(r)); };
  }
  Result<T> get() { return future.get(); }
};

std::unique_ptr<Broker> open_broker(std::unique_ptr<storage::Store> store, Options o) {
  auto b = Broker::open(std::move(store), std::move(o));
  EXPECT_TRUE(b.has_value());
  return std::move(*b);
}

Result<TopicInfo> create(Broker& b, std::string name) {
  Waiter<TopicInfo> w;
  b.create_topic(std::move(name), w.callback());
  return w.get();
}

Result<Appended> publish(Broker& b, std::string topic, std::vector<Message> msgs) {
  Waiter<Appended> w;
  b.publish(std::move(topic), std::move(msgs), w.callback());
  return w.get();
}

TEST(Broker, AssignsGaplessOffsetsPerTopic) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  ASSERT_TRUE(create(*b, "a"));
  ASSERT_TRUE(create(*b, "b"));
  EXPECT_EQ(publish(*b, "a", {msg("1"), msg("2")})->results.front().offset, Offset{0});
  EXPECT_EQ(publish(*b, "b", {msg("x")})->results.front().offset, Offset{0});
  const auto third = publish(*b, "a", {msg("3")});
  EXPECT_EQ(third->results.front().offset, Offset{2});
  EXPECT_EQ(third->results.size(), 1u);
  const auto meta = b->describe_topic("a");
  EXPECT_EQ(meta->next_offset, Offset{3});
  EXPECT_EQ(meta->messages, 3u);
  EXPECT_EQ(meta->bytes, 3u);
  const auto read = b->fetch("a", Offset{1}, {});
  ASSERT_TRUE(read);
  ASSERT_EQ(read->messages.size(), 2u);
  EXPECT_EQ(read->messages[0].message.payload, "2");
  EXPECT_EQ(read->messages[0].timestamp_ms, kNow);
  EXPECT_EQ(read->next_offset, Offset{3});
}

TEST(Broker, TopicErrors) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  EXPECT_EQ(publish(*b, "missing", {msg("x")}).error().code, Errc::topic_not_found);
  ASSERT_TRUE(create(*b, "t"));
  EXPECT_EQ(create(*b, "t").error().code, Errc::topic_exists);
  EXPECT_EQ(create(*b, "bad name").error().code, Errc::invalid_name);
  EXPECT_EQ(create(*b, "..").error().code, Errc::invalid_name);
  EXPECT_EQ(create(*b, std::string(250, 'a')).error().code, Errc::invalid_name);
  EXPECT_TRUE(create(*b, std::string(249, 'a')));
  EXPECT_EQ(b->fetch("missing", Offset{0}, {}).error().code, Errc::topic_not_found);
  Waiter<void> del;
  b->delete_topic("missing", del.callback());
  EXPECT_EQ(del.get().error().code, Errc::topic_not_found);
}

TEST(Broker, AutoCreateMakesTheTopicOnFirstPublish) {
  auto b = open_broker(storage::make_memory_store(), test_options(true));
  const auto r = publish(*b, "new", {msg("x")});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->created_topic);
  EXPECT_EQ(b->describe_topic("new")->created_at_ms, kNow);
}

TEST(Broker, DeletedTopicIsGoneAndARecreatedOneStartsAtZero) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  const auto first = create(*b, "t");
  ASSERT_TRUE(publish(*b, "t", {msg("old"), msg("old")}));
  Waiter<void> del;
  b->delete_topic("t", del.callback());
  ASSERT_TRUE(del.get());
  EXPECT_TRUE(b->list_topics().empty());
  const auto second = create(*b, "t");
  EXPECT_NE(second->id, first->id);
  EXPECT_EQ(publish(*b, "t", {msg("new")})->results.front().offset, Offset{0});
  const auto read = b->fetch("t", Offset{0}, {});
  ASSERT_EQ(read->messages.size(), 1u);
  EXPECT_EQ(read->messages[0].message.payload, "new");
}

TEST(Broker, StateIsReloadedFromTheStoreAndTopicIdsAreNeverReused) {
  auto store = storage::make_memory_store();
  TopicId dropped;
  {
    auto b = open_broker(std::make_unique<testing::ForwardingStore>(*store), test_options());
    ASSERT_TRUE(create(*b, "t"));
    ASSERT_TRUE(publish(*b, "t", {msg("a"), msg("b")}));
    dropped = create(*b, "gone")->id;
    Waiter<void> del;
    b->delete_topic("gone", del.callback());
    ASSERT_TRUE(del.get());
  }
  // A restart: a new broker over the same stored state.
  auto b = open_broker(std::make_unique<testing::ForwardingStore>(*store), test_options());
  const auto t = b->describe_topic("t");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->next_offset, Offset{2});
  EXPECT_EQ(t->messages, 2u);
  EXPECT_EQ(b->describe_topic("gone").error().code, Errc::topic_not_found);
  EXPECT_EQ(publish(*b, "t", {msg("c")})->results.front().offset, Offset{2});
  // The highest id was dropped; a new topic still gets a fresh one.
  EXPECT_GT(create(*b, "new")->id, dropped);
}

// A store whose write() blocks until the test lets it go: shows what one commit contains.
class GateStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<void> write(const storage::WriteBatch& batch, storage::Durability d) override {
    std::unique_lock lock(mutex_);
    std::size_t appends = 0;
    for (const auto& op : batch.ops) appends += std::holds_alternative<storage::Append>(op);
    appends_per_write_.push_back(appends);
    durabilities_.push_back(d);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return permits_ > 0; });
    --permits_;
    return ForwardingStore::write(batch, d);
  }

  void wait_entered(std::size_t n) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }
  void release(std::size_t n) {
    std::lock_guard lock(mutex_);
    permits_ += n;
    cv_.notify_all();
  }
  std::vector<std::size_t> appends_per_write() {
    std::lock_guard lock(mutex_);
    return appends_per_write_;
  }
  std::vector<storage::Durability> durabilities() {
    std::lock_guard lock(mutex_);
    return durabilities_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t entered_ = 0;
  std::size_t permits_ = 0;
  std::vector<std::size_t> appends_per_write_;
  std::vector<storage::Durability> durabilities_;
};

TEST(Broker, ConcurrentPublishesShareOneWrite) {
  auto gate = std::make_unique<GateStore>(storage::make_memory_store());
  auto* g = gate.get();
  auto b = open_broker(std::move(gate), test_options());
  Waiter<TopicInfo> created;
  b->create_topic("t", created.callback());
  g->wait_entered(1);
  // While the create's write is in progress, three producers publish.
  Waiter<Appended> p1, p2, p3;
  b->publish("t", {msg("a")}, p1.callback());
  b->publish("t", {msg("b"), msg("c")}, p2.callback());
  b->publish("t", {msg("d")}, p3.callback());
  g->release(2);
  ASSERT_TRUE(created.get());
  // All three went into the second write, in queue order.
  EXPECT_EQ(p1.get()->results.front().offset, Offset{0});
  EXPECT_EQ(p2.get()->results.front().offset, Offset{1});
  EXPECT_EQ(p3.get()->results.front().offset, Offset{3});
  EXPECT_THAT(g->appends_per_write(), ElementsAre(0u, 4u));
  EXPECT_EQ(b->stats().commits, 2u);
}

// Group progress of topic `t` that asks for `durability`.
GroupWrite progress(const TopicInfo& t, storage::Durability durability) {
  GroupWrite w;
  storage::GroupRecord r;
  r.topic = t.id;
  r.name = "g";
  w.puts.push_back({t.name, std::move(r)});
  w.durability = durability;
  return w;
}

// A broker configured with `durability` over a GateStore, with topic "t" created (the first
// write).
struct Gated {
  explicit Gated(storage::Durability durability) {
    auto store = std::make_unique<GateStore>(storage::make_memory_store());
    gate = store.get();
    auto o = test_options();
    o.durability = durability;
    broker = open_broker(std::move(store), std::move(o));
    Waiter<TopicInfo> created;
    broker->create_topic("t", created.callback());
    gate->release(1);
    auto r = created.get();
    EXPECT_TRUE(r);
    if (r) topic = std::move(*r);
  }
  GateStore* gate = nullptr;
  std::unique_ptr<Broker> broker;
  TopicInfo topic;
};

TEST(Broker, ACommitIsSyncedUnlessAllOfItIsProgressThatAskedForNoSync) {
  using storage::Durability;
  Gated gated(Durability::fsync);
  auto* g = gated.gate;
  auto& b = gated.broker;
  const auto* t = &gated.topic;
  // Alone, in a commit of its own.
  Waiter<void> alone;
  b->write_groups(progress(*t, Durability::os), alone.callback());
  g->release(1);
  ASSERT_TRUE(alone.get());
  // Held behind a commit in progress, so the next commit takes the three together.
  Waiter<Appended> held;
  b->publish("t", {msg("a")}, held.callback());
  g->wait_entered(3);
  Waiter<void> first, second;
  Waiter<Appended> with_publish;
  b->write_groups(progress(*t, Durability::os), first.callback());
  b->write_groups(progress(*t, Durability::os), second.callback());
  b->publish("t", {msg("b")}, with_publish.callback());
  g->release(2);
  ASSERT_TRUE(held.get());
  ASSERT_TRUE(with_publish.get());
  ASSERT_TRUE(first.get());
  ASSERT_TRUE(second.get());
  // Progress that asks for a sync (a confirmed ack) gets one, with or without others.
  Waiter<void> synced;
  b->write_groups(progress(*t, Durability::fsync), synced.callback());
  g->release(1);
  ASSERT_TRUE(synced.get());
  EXPECT_THAT(g->durabilities(), ElementsAre(Durability::fsync, Durability::os, Durability::fsync,
                                             Durability::fsync, Durability::fsync));
  EXPECT_THAT(g->appends_per_write(), ElementsAre(0u, 0u, 1u, 1u, 0u));
}

TEST(Broker, ProgressThatAsksForASyncGetsOnlyTheConfiguredDurability) {
  using storage::Durability;
  Gated gated(Durability::os);
  Waiter<void> w;
  gated.broker->write_groups(progress(gated.topic, Durability::fsync), w.callback());
  gated.gate->release(1);
  ASSERT_TRUE(w.get());
  EXPECT_THAT(gated.gate->durabilities(), ElementsAre(Durability::os, Durability::os));
}

TEST(Broker, AFailedWriteFailsItsRequestsAndLeavesNoGap) {
  auto faulty = std::make_unique<testing::FaultyStore>(storage::make_memory_store());
  auto* f = faulty.get();
  auto b = open_broker(std::move(faulty), test_options());
  ASSERT_TRUE(create(*b, "t"));
  ASSERT_TRUE(publish(*b, "t", {msg("0")}));
  f->arm();
  const auto failed = publish(*b, "t", {msg("lost"), msg("lost")});
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Errc::storage_error);
  EXPECT_EQ(create(*b, "u").error().code, Errc::storage_error);
  f->disarm();
  // The next publish gets the offset right after the last stored one.
  EXPECT_EQ(publish(*b, "t", {msg("1")})->results.front().offset, Offset{1});
  EXPECT_EQ(b->describe_topic("t")->messages, 2u);
  EXPECT_EQ(b->describe_topic("u").error().code, Errc::topic_not_found);
  const auto read = b->fetch("t", Offset{0}, {});
  ASSERT_EQ(read->messages.size(), 2u);
  EXPECT_EQ(read->messages[1].message.payload, "1");
  EXPECT_EQ(b->stats().failed_commits, 2u);
}

TEST(Broker, StorageHealthChangesOncePerEpisodeAndRecoversWithoutTraffic) {
  auto faulty = std::make_unique<testing::FaultyStore>(storage::make_memory_store());
  auto* f = faulty.get();
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<StorageHealth> changes;
  auto o = test_options();
  o.storage_retry_interval = std::chrono::milliseconds(10);
  o.on_storage_health = [&](const StorageHealth& h) {
    std::lock_guard lock(mutex);
    changes.push_back(h);
    changed.notify_all();
  };
  auto b = open_broker(std::move(faulty), std::move(o));
  ASSERT_TRUE(create(*b, "t"));
  EXPECT_EQ(b->storage_health(), StorageHealth{});
  f->arm();
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(publish(*b, "t", {msg("lost")}));
  const auto down = b->storage_health();
  EXPECT_FALSE(down.writable);
  EXPECT_EQ(down.failed_writes, 3u);
  EXPECT_EQ(down.episodes, 1u);
  EXPECT_NE(down.last_error.find("injected fault"), std::string::npos) << down.last_error;
  f->disarm();
  // No publish: the writer's own retry (Store::recover) finds the store writable again.
  std::unique_lock lock(mutex);
  ASSERT_TRUE(
      changed.wait_for(lock, std::chrono::seconds(60), [&] { return changes.size() == 2; }));
  EXPECT_FALSE(changes[0].writable);
  EXPECT_TRUE(changes[1].writable);
  EXPECT_EQ(changes[1].failed_writes, 3u);
  lock.unlock();
  EXPECT_TRUE(b->storage_health().writable);
  EXPECT_EQ(b->storage_health().last_error, down.last_error) << "the last error is kept";
  EXPECT_EQ(publish(*b, "t", {msg("0")})->results.front().offset, Offset{0});
}

TEST(Broker, StopFinishesTheCommitInProgressFailsQueuedPublishesAndStillWritesGroups) {
  auto gate = std::make_unique<GateStore>(storage::make_memory_store());
  auto* g = gate.get();
  auto b = open_broker(std::move(gate), test_options(true));
  Waiter<Appended> first, queued;
  b->publish("t", {msg("a")}, first.callback());
  g->wait_entered(1);
  b->publish("t", {msg("b")}, queued.callback());
  Waiter<void> group_write;
  b->write_groups(GroupWrite{}, group_write.callback());
  b->begin_stop();
  Waiter<Appended> late;
  b->publish("t", {msg("c")}, late.callback());
  EXPECT_EQ(late.get().error().code, Errc::shutting_down) << "refused at once";
  g->release(2);
  b->stop();
  EXPECT_TRUE(first.get()) << "the commit in progress completes";
  EXPECT_EQ(queued.get().error().code, Errc::shutting_down);
  EXPECT_TRUE(group_write.get()) << "group progress is still written";
  EXPECT_EQ(b->describe_topic("t")->messages, 1u);
}

TEST(Broker, CreateAndDeleteInOneCommitAreAppliedInOrder) {
  auto gate = std::make_unique<GateStore>(storage::make_memory_store());
  auto* g = gate.get();
  auto b = open_broker(std::move(gate), test_options());
  Waiter<TopicInfo> blocker;
  b->create_topic("other", blocker.callback());
  g->wait_entered(1);
  Waiter<TopicInfo> c1, c2;
  Waiter<Appended> p1, p2;
  Waiter<void> d1;
  b->create_topic("t", c1.callback());
  b->publish("t", {msg("gone")}, p1.callback());
  b->delete_topic("t", d1.callback());
  b->create_topic("t", c2.callback());
  b->publish("t", {msg("kept")}, p2.callback());
  g->release(2);
  ASSERT_TRUE(c1.get());
  ASSERT_TRUE(d1.get());
  EXPECT_EQ(p1.get()->results.front().offset, Offset{0});
  EXPECT_EQ(p2.get()->results.front().offset, Offset{0});
  EXPECT_EQ(g->appends_per_write(), (std::vector<std::size_t>{0, 2}));
  const auto read = b->fetch("t", Offset{0}, {});
  ASSERT_EQ(read->messages.size(), 1u);
  EXPECT_EQ(read->messages[0].message.payload, "kept");
  EXPECT_EQ(b->describe_topic("t")->id, c2.get()->id);
}

// ---- Dedup by message id ----------------------------------------------------------------

Message with_id(std::string id, std::string payload) {
  Message m = msg(std::move(payload));
  m.id = std::move(id);
  return m;
}

// A clock the test moves; read on the writer thread.
struct TestClock {
  std::shared_ptr<std::atomic<std::int64_t>> now =
      std::make_shared<std::atomic<std::int64_t>>(kNow);
  Options options() const {
    Options o = test_options();
    o.now_ms = [n = now] { return n->load(); };
    return o;
  }
};

Result<TopicInfo> create(Broker& b, std::string name, TopicSettings settings) {
  Waiter<TopicInfo> w;
  b.create_topic(std::move(name), settings, w.callback());
  return w.get();
}

MessageResult appended_at(std::uint64_t offset) { return {Errc::ok, false, Offset{offset}}; }
MessageResult duplicate_of(std::uint64_t offset) { return {Errc::ok, true, Offset{offset}}; }

TEST(BrokerDedup, SameIdTwiceGetsTheOriginalOffset) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  ASSERT_TRUE(create(*b, "t"));
  EXPECT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(appended_at(0)));
  EXPECT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(duplicate_of(0)));
  EXPECT_THAT(publish(*b, "t", {with_id("b", "y")})->results, ElementsAre(appended_at(1)));
  const auto t = b->describe_topic("t");
  EXPECT_EQ(t->next_offset, Offset{2});
  EXPECT_EQ(t->messages, 2u);
  EXPECT_EQ(b->fetch("t", Offset{0}, {})->messages.size(), 2u);
}

TEST(BrokerDedup, DuplicatesInsideOneBatchKeepOffsetsGapless) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  ASSERT_TRUE(create(*b, "t"));
  EXPECT_THAT(publish(*b, "t", {with_id("a", "1"), with_id("a", "1"), msg("2"), with_id("b", "3")})
                  ->results,
              ElementsAre(appended_at(0), duplicate_of(0), appended_at(1), appended_at(2)));
  EXPECT_EQ(b->describe_topic("t")->next_offset, Offset{3});
}

TEST(BrokerDedup, TwoPublishesInTheSameCommitStoreTheIdOnce) {
  auto gate = std::make_unique<GateStore>(storage::make_memory_store());
  auto* g = gate.get();
  auto b = open_broker(std::move(gate), test_options());
  Waiter<TopicInfo> created;
  b->create_topic("t", created.callback());
  g->wait_entered(1);
  // Two connections publish the same id while the create is being written: one commit.
  Waiter<Appended> p1, p2;
  b->publish("t", {with_id("same", "x")}, p1.callback());
  b->publish("t", {with_id("same", "x"), with_id("other", "y")}, p2.callback());
  g->release(2);
  ASSERT_TRUE(created.get());
  EXPECT_THAT(p1.get()->results, ElementsAre(appended_at(0)));
  EXPECT_THAT(p2.get()->results, ElementsAre(duplicate_of(0), appended_at(1)));
  EXPECT_THAT(g->appends_per_write(), ElementsAre(0u, 2u));
}

TEST(BrokerDedup, AnIdExpiresOneMillisecondAfterItsWindow) {
  TestClock clock;
  auto b = open_broker(storage::make_memory_store(), clock.options());
  ASSERT_TRUE(create(*b, "t", {.dedup_window_ms = 10'000}));
  ASSERT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(appended_at(0)));
  *clock.now = kNow + 10'000;  // exactly the window: still known
  EXPECT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(duplicate_of(0)));
  *clock.now = kNow + 10'001;  // one ms later: expired, stored as new
  EXPECT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(appended_at(1)));
  // The new message starts a new window.
  *clock.now = kNow + 20'001;
  EXPECT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(duplicate_of(1)));
}

// Repeats inside one publish of an id the store knows (live) and of one whose entry expired:
// the commit answers each repeat from its first answer.
TEST(BrokerDedup, RepeatsOfAStoredAndOfAnExpiredIdInOnePublish) {
  TestClock clock;
  auto b = open_broker(storage::make_memory_store(), clock.options());
  ASSERT_TRUE(create(*b, "t", {.dedup_window_ms = 10'000}));
  ASSERT_THAT(publish(*b, "t", {with_id("old", "x")})->results, ElementsAre(appended_at(0)));
  *clock.now = kNow + 5'000;
  ASSERT_THAT(publish(*b, "t", {with_id("live", "y")})->results, ElementsAre(appended_at(1)));
  *clock.now = kNow + 10'001;  // "old" expired, "live" not
  EXPECT_THAT(publish(*b, "t",
                      {with_id("old", "x"), with_id("live", "y"), with_id("old", "x"),
                       with_id("live", "y"), with_id("new", "z")})
                  ->results,
              ElementsAre(appended_at(2), duplicate_of(1), duplicate_of(2), duplicate_of(1),
                          appended_at(3)));
  EXPECT_EQ(b->describe_topic("t")->next_offset, Offset{4});
  // The re-stored "old" reached the store; the repeats did not extend "live"'s window.
  EXPECT_THAT(publish(*b, "t", {with_id("old", "x")})->results, ElementsAre(duplicate_of(2)));
  *clock.now = kNow + 15'001;
  EXPECT_THAT(publish(*b, "t", {with_id("live", "y")})->results, ElementsAre(appended_at(4)));
}

// With dedup_conflict = error, every copy is compared with the original's payload: the stored
// one, even when the first copy in the commit differs from it.
TEST(BrokerDedup, ConflictsInOnePublishAreJudgedAgainstTheStoredOriginal) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  ASSERT_TRUE(create(*b, "strict", {.dedup_conflict = storage::DedupConflict::error}));
  ASSERT_TRUE(publish(*b, "strict", {with_id("a", "x")}));
  const MessageResult conflict{Errc::dedup_conflict, false, Offset{}};
  EXPECT_THAT(publish(*b, "strict",
                      {with_id("a", "DIFFERENT"), with_id("a", "x"), with_id("a", "DIFFERENT")})
                  ->results,
              ElementsAre(conflict, duplicate_of(0), conflict));
}

TEST(BrokerDedup, TheDefaultWindowIsTwoHours) {
  TestClock clock;
  auto b = open_broker(storage::make_memory_store(), clock.options());
  const auto t = create(*b, "t");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->dedup_window_ms, 7'200'000u);
  EXPECT_EQ(t->dedup_conflict, storage::DedupConflict::duplicate);
  ASSERT_TRUE(publish(*b, "t", {with_id("a", "x")}));
  *clock.now = kNow + 7'200'000;
  EXPECT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(duplicate_of(0)));
  *clock.now = kNow + 7'200'001;
  EXPECT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(appended_at(1)));
}

TEST(BrokerDedup, ConflictModeErrorRejectsADifferentPayload) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  ASSERT_TRUE(create(*b, "strict", {.dedup_conflict = storage::DedupConflict::error}));
  ASSERT_TRUE(create(*b, "lenient"));
  for (const auto* topic : {"strict", "lenient"}) {
    ASSERT_TRUE(publish(*b, topic, {with_id("a", "x")}));
  }
  EXPECT_THAT(
      publish(*b, "strict", {with_id("a", "x"), with_id("a", "DIFFERENT"), msg("z")})->results,
      ElementsAre(duplicate_of(0), MessageResult{Errc::dedup_conflict, false, Offset{}},
                  appended_at(1)));
  // Inside one batch too.
  EXPECT_THAT(publish(*b, "strict", {with_id("n", "1"), with_id("n", "2")})->results,
              ElementsAre(appended_at(2), MessageResult{Errc::dedup_conflict, false, Offset{}}));
  // The default mode: still a duplicate.
  EXPECT_THAT(publish(*b, "lenient", {with_id("a", "DIFFERENT")})->results,
              ElementsAre(duplicate_of(0)));
}

TEST(BrokerDedup, MessagesWithoutAnIdAreNeverDeduplicated) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  ASSERT_TRUE(create(*b, "t"));
  EXPECT_THAT(publish(*b, "t", {msg("x"), msg("x")})->results,
              ElementsAre(appended_at(0), appended_at(1)));
  EXPECT_THAT(publish(*b, "t", {msg("x")})->results, ElementsAre(appended_at(2)));
}

TEST(BrokerDedup, IdsAreKnownAfterTheBrokerReopens) {
  auto store = storage::make_memory_store();
  {
    auto b = open_broker(std::make_unique<testing::ForwardingStore>(*store), test_options());
    ASSERT_TRUE(create(*b, "t", {.dedup_window_ms = 60'000}));
    ASSERT_TRUE(publish(*b, "t", {with_id("a", "x"), with_id("b", "y")}));
  }
  auto b = open_broker(std::make_unique<testing::ForwardingStore>(*store), test_options());
  EXPECT_EQ(b->describe_topic("t")->dedup_window_ms, 60'000u);
  EXPECT_THAT(publish(*b, "t", {with_id("b", "y"), with_id("c", "z")})->results,
              ElementsAre(duplicate_of(1), appended_at(2)));
}

// Records every batched dedup lookup, and fails them while armed.
class LookupStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<std::vector<std::optional<storage::DedupEntry>>> find_dedups(
      TopicId topic, std::span<const std::string_view> ids) const override {
    std::lock_guard lock(mutex_);
    asked_.emplace_back(ids.begin(), ids.end());
    if (fail_) return fail(Errc::storage_error, "injected lookup failure");
    return ForwardingStore::find_dedups(topic, ids);
  }
  void set_failing(bool on) {
    std::lock_guard lock(mutex_);
    fail_ = on;
  }
  std::vector<std::vector<std::string>> asked() const {
    std::lock_guard lock(mutex_);
    return asked_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::vector<std::vector<std::string>> asked_;
  bool fail_ = false;
};

TEST(BrokerDedup, OnePublishAsksTheStoreOnceAndAFailedLookupFailsOnlyThatPublish) {
  auto lookups = std::make_unique<LookupStore>(storage::make_memory_store());
  auto* l = lookups.get();
  auto b = open_broker(std::move(lookups), test_options());
  ASSERT_TRUE(create(*b, "t"));
  ASSERT_TRUE(publish(*b, "t", {with_id("a", "x"), with_id("b", "y")}));
  // Every id of the request in one call, in request order, repeats included; none for the
  // message without an id.
  EXPECT_THAT(publish(*b, "t",
                      {with_id("b", "y"), with_id("c", "z"), with_id("c", "z"), msg("-"),
                       with_id("a", "x")})
                  ->results,
              ElementsAre(duplicate_of(1), appended_at(2), duplicate_of(2), appended_at(3),
                          duplicate_of(0)));
  using Ids = std::vector<std::string>;
  EXPECT_THAT(l->asked(), ElementsAre(Ids{"a", "b"}, Ids{"b", "c", "c", "a"}));
  EXPECT_EQ(publish(*b, "t", {msg("no id, no lookup")})->results.front(), appended_at(4));
  EXPECT_EQ(l->asked().size(), 2u);

  l->set_failing(true);
  const auto failed = publish(*b, "t", {msg("lost"), with_id("d", "w")});
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Errc::storage_error);
  EXPECT_EQ(b->describe_topic("t")->next_offset, Offset{5}) << "nothing of it was appended";
  l->set_failing(false);
  EXPECT_THAT(publish(*b, "t", {with_id("d", "w")})->results, ElementsAre(appended_at(5)));
}

TEST(BrokerDedup, IdsArePerTopicAndForgottenWithTheTopic) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  ASSERT_TRUE(create(*b, "t"));
  ASSERT_TRUE(create(*b, "u"));
  ASSERT_TRUE(publish(*b, "t", {with_id("a", "x")}));
  EXPECT_THAT(publish(*b, "u", {with_id("a", "x")})->results, ElementsAre(appended_at(0)));
  Waiter<void> dropped;
  b->delete_topic("t", dropped.callback());
  ASSERT_TRUE(dropped.get());
  ASSERT_TRUE(create(*b, "t"));
  EXPECT_THAT(publish(*b, "t", {with_id("a", "x")})->results, ElementsAre(appended_at(0)));
}

TEST(BrokerDedup, RejectsAWindowOutsideOneSecondToThirtyDays) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  EXPECT_EQ(create(*b, "t", {.dedup_window_ms = 999}).error().code, Errc::invalid_request);
  EXPECT_EQ(create(*b, "t", {.dedup_window_ms = 30ULL * 24 * 3600 * 1000 + 1}).error().code,
            Errc::invalid_request);
  EXPECT_EQ(create(*b, "t", {.dedup_window_ms = 1000})->dedup_window_ms, 1000u);
  EXPECT_EQ(create(*b, "u", {.dedup_window_ms = 30ULL * 24 * 3600 * 1000})->dedup_window_ms,
            30ULL * 24 * 3600 * 1000);
}

TEST(BrokerDedup, AutoCreatedTopicsGetTheDefaults) {
  auto b = open_broker(storage::make_memory_store(), test_options(/*auto_create=*/true));
  EXPECT_THAT(publish(*b, "new", {with_id("a", "x"), with_id("a", "x")})->results,
              ElementsAre(appended_at(0), duplicate_of(0)));
  EXPECT_EQ(b->describe_topic("new")->dedup_window_ms, storage::kDefaultDedupWindowMs);
}

TEST(BrokerMetrics, CountPublishesDuplicatesBytesAndConfirmsPerTopic) {
  auto b = open_broker(storage::make_memory_store(), test_options());
  ASSERT_TRUE(create(*b, "a"));
  ASSERT_TRUE(create(*b, "gone"));
  ASSERT_TRUE(publish(*b, "a", {with_id("1", "xx"), with_id("2", "yyy"), msg("z")}));
  ASSERT_TRUE(publish(*b, "a", {with_id("1", "xx")}));  // a duplicate: counted as a hit only
  ASSERT_TRUE(publish(*b, "gone", {msg("q")}));
  EXPECT_FALSE(publish(*b, "missing", {msg("q")}));  // failed: not a confirm
  auto m = b->metrics();
  ASSERT_TRUE(m.topics.contains("a"));
  EXPECT_EQ(m.topics["a"].messages_published, 3u);
  EXPECT_EQ(m.topics["a"].bytes_published, (1 + 2) + (1 + 3) + 1u);  // ids + payloads
  EXPECT_EQ(m.topics["a"].dedup_hits, 1u);
  EXPECT_EQ(m.publish_confirm.count, 3u);
  std::uint64_t in_buckets = 0;
  for (const auto n : m.publish_confirm.buckets) in_buckets += n;
  EXPECT_LE(in_buckets, m.publish_confirm.count);
  // A deleted topic's counters go with it.
  Waiter<void> del;
  b->delete_topic("gone", del.callback());
  ASSERT_TRUE(del.get());
  EXPECT_FALSE(b->metrics().topics.contains("gone"));
  EXPECT_TRUE(b->accepting_requests());
  b->stop();
  EXPECT_FALSE(b->accepting_requests());
}

TEST(LatencyHistogram, BucketsAreUpperBoundsInclusive) {
  LatencyHistogram h;
  h.observe(0.001);  // exactly a bound: in that bucket
  h.observe(0.0011);
  h.observe(11);  // above every bound: only in count
  EXPECT_EQ(h.buckets[1], 1u);
  EXPECT_EQ(h.buckets[2], 1u);
  EXPECT_EQ(h.count, 3u);
  EXPECT_DOUBLE_EQ(h.sum_seconds, 0.001 + 0.0011 + 11);
}

}  // namespace
}  // namespace loft::broker
