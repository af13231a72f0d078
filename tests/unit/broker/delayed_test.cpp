// Delayed delivery at the broker, with a fake clock and the test thread as the io loop: a
// message with a delivery time is stored and confirmed at once but delivered to no group before
// it is due; when due, a release pass appends it again (a new offset, deliverable) and groups
// deliver that copy once. A time in the past is now, one past max_delivery_delay is refused;
// a restart (or a crash: a consistent copy of the store) releases what is due and keeps the
// rest; a group created after the publish gets it; a deleted topic's entries are dropped; a
// scheduled message does not hold back its key. Over the memory and the RocksDB store.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "support/broker_backends.hpp"
#include "support/groups_harness.hpp"

namespace loft::broker {
namespace {

using ::testing::ElementsAre;
using testing::FakeSubscriber;
using ::testing::IsEmpty;
using testing::Loop;

const TimePoint kNow{};
constexpr std::int64_t kT0 = 1'700'000'000'000;

Message delayed(std::string payload, std::int64_t deliver_at_ms, std::string id = {},
                std::string key = {}) {
  Message m;
  m.id = std::move(id);
  m.key = std::move(key);
  m.payload = std::move(payload);
  m.deliver_at_ms = deliver_at_ms;
  return m;
}

std::vector<std::uint64_t> offsets(const std::deque<testing::Received>& received) {
  std::vector<std::uint64_t> out;
  for (const auto& r : received) out.push_back(r.offset);
  return out;
}

template <class Backend>
class Delayed : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override { close(); }

  // Retention runs when the test calls it; releases when the test calls run_release_pass(),
  // and on the release thread, which reads the same fake clock (it releases nothing that is not
  // due either, and whatever it releases is committed before a pass of the test returns).
  void open(Options o = {}) {
    o.now_ms = [this] { return now_.load(); };
    o.retention_interval = std::chrono::milliseconds{0};
    o.max_delivery_delay_ms = 60'000;
    auto opened = testing::open_with_groups(backend_.open(), std::move(o), loop_, kNow);
    ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
    broker_ = std::move(opened->broker);
    groups_ = std::move(opened->groups);
  }
  void close() { testing::close_with_groups(broker_, groups_); }

  void settle_loop() {
    for (int pumps = 0; pumps < 100000; ++pumps) {
      loop_.run_ready();
      const auto next = groups_->next_deadline();
      if (!next || *next > kNow) return;
      groups_->on_timer(kNow);
    }
  }

  void create_topic(const std::string& name) {
    const auto r =
        testing::wait<TopicInfo>([&](auto done) { broker_->create_topic(name, std::move(done)); });
    ASSERT_TRUE(r) << r.error().to_string();
  }

  Appended publish(const std::string& topic, std::vector<Message> messages) {
    const auto r = testing::wait<Appended>(
        [&](auto done) { broker_->publish(topic, std::move(messages), std::move(done)); });
    EXPECT_TRUE(r) << r.error().to_string();
    settle_loop();
    return r ? *r : Appended{};
  }

  void create_group(const std::string& topic, const std::string& group, StartPosition start = {},
                    GroupConfig config = {}) {
    CreateGroupRequest req{topic, group, start, std::move(config)};
    std::optional<Result<GroupInfo>> done;
    groups_->create_group(std::move(req), kNow, [&](Result<GroupInfo> r) { done = std::move(r); });
    ASSERT_TRUE(loop_.run_until([&] { return done.has_value(); }));
    ASSERT_TRUE(*done) << done->error().to_string();
    settle_loop();
  }

  void subscribe(FakeSubscriber& who, const std::string& topic, const std::string& group) {
    SubscribeRequest req{topic, group, {}, 1000, {}};
    std::optional<Result<Subscribed>> ok;
    groups_->subscribe(std::move(req), &who, kNow,
                       [&](Result<Subscribed> r) { ok = std::move(r); });
    ASSERT_TRUE(loop_.run_until([&] { return ok.has_value(); }));
    ASSERT_TRUE(*ok);
    settle_loop();
  }

  // Returns what this pass released; the release thread (same fake clock) may have released
  // some of it first, so tests check what is delivered and scheduled, not this count, unless
  // nothing is due.
  std::uint64_t release() {
    const auto n = broker_->run_release_pass();
    settle_loop();
    return n;
  }

  TopicInfo topic(const std::string& name) {
    auto t = broker_->describe_topic(name);
    EXPECT_TRUE(t);
    return t ? *t : TopicInfo{};
  }

  std::atomic<std::int64_t> now_{kT0};
  Backend backend_;
  Loop loop_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Groups> groups_;
};

TYPED_TEST_SUITE(Delayed, testing::BrokerBackends, testing::BrokerBackendNames);

TYPED_TEST(Delayed, StoredAtOnceDeliveredOnlyWhenDueAsACopyAtANewOffset) {
  this->create_topic("t");
  this->create_group("t", "g");
  FakeSubscriber who;
  this->subscribe(who, "t", "g");
  const auto a =
      this->publish("t", {delayed("later", kT0 + 5'000, "id-1", "k"), delayed("now", 0, "", "k")});
  ASSERT_THAT(a.results, ElementsAre(MessageResult{Errc::ok, false, Offset{0}},
                                     MessageResult{Errc::ok, false, Offset{1}}));
  EXPECT_THAT(offsets(who.received), ElementsAre(1)) << "only the ordinary message";
  EXPECT_EQ(this->topic("t").scheduled, 1u);
  EXPECT_EQ(this->broker_->next_due_ms(), kT0 + 5'000);
  // fetch shows the stored copy with its delivery time.
  const auto f = this->broker_->fetch("t", Offset{0}, {10, 1 << 20});
  ASSERT_TRUE(f);
  ASSERT_EQ(f->messages.size(), 2u);
  EXPECT_EQ(f->messages[0].message.deliver_at_ms, kT0 + 5'000);
  EXPECT_EQ(f->messages[1].message.deliver_at_ms, 0);

  this->now_ = kT0 + 4'999;  // never early
  EXPECT_EQ(this->release(), 0u);
  EXPECT_THAT(offsets(who.received), ElementsAre(1));
  this->now_ = kT0 + 5'000;
  this->release();
  ASSERT_THAT(offsets(who.received), ElementsAre(1, 2));
  const auto& copy = who.received.back();
  EXPECT_EQ(copy.message.id, "id-1");
  EXPECT_EQ(copy.message.key, "k");
  EXPECT_EQ(copy.message.payload, "later");
  EXPECT_EQ(copy.message.deliver_at_ms, 0);
  EXPECT_EQ(copy.timestamp_ms, kT0 + 5'000) << "appended when due";
  const auto t = this->topic("t");
  EXPECT_EQ(t.scheduled, 0u);
  EXPECT_EQ(t.next_offset, Offset{3});
  EXPECT_EQ(this->broker_->next_due_ms(), std::nullopt);
  EXPECT_EQ(this->release(), 0u) << "released once";
  // The id still maps to the publish's offset: a retry is a duplicate, even after release.
  const auto retry = this->publish("t", {delayed("later", kT0 + 9'000, "id-1")});
  EXPECT_THAT(retry.results, ElementsAre(MessageResult{Errc::ok, true, Offset{0}}));
  EXPECT_EQ(this->topic("t").scheduled, 0u);
}

TYPED_TEST(Delayed, APastTimeIsNowAndOnePastTheMaximumIsRefusedAlone) {
  this->create_topic("t");
  const auto a = this->publish(
      "t", {delayed("past", kT0 - 1), delayed("at now", kT0),
            delayed("too far", kT0 + 60'001, "id-far"), delayed("max", kT0 + 60'000)});
  EXPECT_THAT(a.results, ElementsAre(MessageResult{Errc::ok, false, Offset{0}},
                                     MessageResult{Errc::ok, false, Offset{1}},
                                     MessageResult{Errc::delay_too_long, false, Offset{}},
                                     MessageResult{Errc::ok, false, Offset{2}}));
  const auto f = this->broker_->fetch("t", Offset{0}, {10, 1 << 20});
  ASSERT_TRUE(f);
  ASSERT_EQ(f->messages.size(), 3u);
  EXPECT_EQ(f->messages[0].message.deliver_at_ms, 0);
  EXPECT_EQ(f->messages[1].message.deliver_at_ms, 0);
  EXPECT_EQ(f->messages[2].message.deliver_at_ms, kT0 + 60'000);
  EXPECT_EQ(this->topic("t").scheduled, 1u);
  // Nothing of the refused message was stored: not even its id.
  const auto again = this->publish("t", {delayed("again", 0, "id-far")});
  EXPECT_THAT(again.results, ElementsAre(MessageResult{Errc::ok, false, Offset{3}}));
}

TYPED_TEST(Delayed, AGroupCreatedAfterThePublishGetsTheReleasedCopy) {
  this->create_topic("t");
  this->publish("t", {delayed("x", kT0 + 1'000)});
  this->create_group("t", "late", StartPosition{StartKind::latest, 0});
  FakeSubscriber who;
  this->subscribe(who, "t", "late");
  EXPECT_THAT(who.received, IsEmpty());
  this->now_ = kT0 + 1'000;
  this->release();
  EXPECT_THAT(offsets(who.received), ElementsAre(1));
  EXPECT_EQ(this->topic("t").next_offset, Offset{2});
}

TYPED_TEST(Delayed, ADeletedTopicsEntriesAreDroppedWhenDue) {
  this->create_topic("t");
  this->publish("t", {delayed("x", kT0 + 1'000), delayed("y", kT0 + 2'000)});
  const auto deleted =
      testing::wait<void>([&](auto done) { this->broker_->delete_topic("t", std::move(done)); });
  ASSERT_TRUE(deleted);
  this->create_topic("t");  // same name, new id: not the deleted topic's messages
  this->now_ = kT0 + 2'000;
  EXPECT_EQ(this->release(), 0u);
  EXPECT_EQ(this->topic("t").next_offset, Offset{0});
  EXPECT_EQ(this->broker_->next_due_ms(), std::nullopt) << "the entries are gone";
}

// A restart releases at once what became due while loftd was down, and the rest at its time.
TYPED_TEST(Delayed, ARestartReleasesWhatIsDueAndKeepsTheRest) {
  this->create_topic("t");
  this->create_group("t", "g");
  this->publish("t",
                {delayed("1", kT0 + 1'000), delayed("2", kT0 + 2'000), delayed("3", kT0 + 3'000)});
  this->close();
  this->now_ = kT0 + 2'000;
  this->open();
  FakeSubscriber who;
  this->subscribe(who, "t", "g");
  this->release();
  EXPECT_THAT(offsets(who.received), ElementsAre(3, 4));
  EXPECT_EQ(this->topic("t").scheduled, 1u);
  EXPECT_EQ(this->broker_->next_due_ms(), kT0 + 3'000);
  this->now_ = kT0 + 3'000;
  this->release();
  EXPECT_THAT(offsets(who.received), ElementsAre(3, 4, 5));
  EXPECT_EQ(who.received.back().message.payload, "3");
  EXPECT_EQ(this->topic("t").scheduled, 0u);
}

// A scheduled message does not hold back its key: a later message with the same key is
// delivered at once to a key-ordered group, and the released copy takes its place in the
// key's order when it is appended.
TYPED_TEST(Delayed, AScheduledMessageDoesNotHoldBackItsKey) {
  this->create_topic("t");
  GroupConfig ordered;
  ordered.ordering = Ordering::key;
  this->create_group("t", "g", {}, ordered);
  FakeSubscriber who;
  this->subscribe(who, "t", "g");
  this->publish("t", {delayed("first", kT0 + 1'000, "", "k"), delayed("second", 0, "", "k")});
  EXPECT_THAT(offsets(who.received), ElementsAre(1));
  this->now_ = kT0 + 1'000;
  this->release();
  EXPECT_EQ(this->topic("t").next_offset, Offset{3});
  // Offset 1 is still in flight: the released copy (offset 2) waits for it, as any later
  // message of the key does.
  EXPECT_THAT(offsets(who.received), ElementsAre(1));
}

// Many stored copies in a row are passed over a bounded number per pump, and the message after
// them is still delivered (a later pump takes the rest).
TYPED_TEST(Delayed, ManyScheduledInARowDoNotStopTheMessagesAfterThem) {
  this->create_topic("t");
  this->create_group("t", "g");
  std::vector<Message> batch(5'000, delayed("x", kT0 + 50'000));
  batch.push_back(delayed("after", 0));
  this->publish("t", std::move(batch));
  FakeSubscriber who;
  this->subscribe(who, "t", "g");
  EXPECT_THAT(offsets(who.received), ElementsAre(5'000));
  EXPECT_EQ(this->topic("t").scheduled, 5'000u);
}

// A kill -9 at any moment leaves the store as its last completed write left it: a consistent
// copy (backup) taken while scheduled messages wait is that state. Opened with a clock past
// some of them, every message is released exactly once and none before its time.
TEST(DelayedCrash, ACrashCopyReleasesEveryScheduledMessageOnceAndNoneEarly) {
  testing::RocksDbBackend original;
  std::atomic<std::int64_t> now{kT0};
  Options o;
  o.now_ms = [&] { return now.load(); };
  o.retention_interval = std::chrono::milliseconds{0};
  auto b = Broker::open(original.open(), o);
  ASSERT_TRUE(b);
  auto& broker = **b;
  ASSERT_TRUE(testing::wait<TopicInfo>([&](auto done) { broker.create_topic("t", done); }));
  std::vector<Message> batch;
  for (int i = 0; i < 100; ++i) {
    batch.push_back(delayed(std::to_string(i), kT0 + 1'000 + 10 * i, "id-" + std::to_string(i)));
  }
  ASSERT_TRUE(testing::wait<Appended>([&](auto done) { broker.publish("t", batch, done); }));
  now = kT0 + 1'500;  // the first 51 are due (1'000 + 10 * 50)
  broker.run_release_pass();
  EXPECT_EQ(broker.describe_topic("t")->scheduled, 49u);
  testing::RocksDbBackend copy;  // the crash: only what was written survives
  ASSERT_TRUE(testing::wait<void>([&](auto done) { broker.backup(copy.dir, done); }));

  auto after = Broker::open(copy.open(), o);
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)->describe_topic("t")->scheduled, 49u);
  EXPECT_EQ((*after)->describe_topic("t")->next_offset, Offset{151});
  now = kT0 + 1'700;
  (*after)->run_release_pass();
  EXPECT_EQ((*after)->describe_topic("t")->scheduled, 29u);
  now = kT0 + 10'000;
  (*after)->run_release_pass();
  EXPECT_EQ((*after)->run_release_pass(), 0u);
  const auto f = (*after)->fetch("t", Offset{100}, {1000, 1 << 20});
  ASSERT_TRUE(f);
  ASSERT_EQ(f->messages.size(), 100u) << "each released once";
  for (std::size_t i = 0; i < 100; ++i) {
    const auto& m = f->messages[i];
    EXPECT_EQ(m.message.payload, std::to_string(i)) << "in due order";
    EXPECT_EQ(m.message.deliver_at_ms, 0);
    EXPECT_GE(m.timestamp_ms, kT0 + 1'000 + 10 * static_cast<std::int64_t>(i)) << "never early";
  }
  EXPECT_EQ((*after)->describe_topic("t")->scheduled, 0u);
}

// The process's resident set now and at its peak, in KiB (/proc/self/status).
std::pair<std::uint64_t, std::uint64_t> rss_kib() {
  std::ifstream in("/proc/self/status");
  std::uint64_t rss = 0;
  std::uint64_t hwm = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) rss = std::stoull(line.substr(6));
    if (line.starts_with("VmHWM:")) hwm = std::stoull(line.substr(6));
  }
  return {rss, hwm};
}

// Scale: N delayed messages (LOFT_DELAYED_MESSAGES, default 2,000 so that ctest stays quick;
// docs/performance.md has 10 million in a release build) scheduled at the broker over RocksDB
// in publishes of 1,000 (100-byte payloads, due times spread over 100 s in a scrambled order),
// a restart, then everything released at once. Checks that nothing of the schedule is held in
// memory per message (the resident set grows by far less than the schedule's bytes), that a
// restart does not scan it, and that every message is released once; prints the figures.
TEST(DelayedScale, ScheduledMessagesStayOnDiskAndAreAllReleasedOnce) {
  std::uint64_t n = 2'000;
  if (const char* env = std::getenv("LOFT_DELAYED_MESSAGES")) n = std::stoull(env);
  using Clock = std::chrono::steady_clock;
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  testing::RocksDbBackend dir;
  std::atomic<std::int64_t> now{kT0};
  Options o;
  o.now_ms = [&] { return now.load(); };
  o.retention_interval = std::chrono::milliseconds{0};
  auto b = Broker::open(dir.open(), o);
  ASSERT_TRUE(b);
  ASSERT_TRUE(testing::wait<TopicInfo>([&](auto done) { (*b)->create_topic("t", done); }));
  const auto [rss_before, hwm_before] = rss_kib();
  constexpr std::uint64_t kBatch = 1'000;
  constexpr std::size_t kWindow = 8;  // publishes in flight, so commits can take several
  const auto t0 = Clock::now();
  std::deque<std::future<Result<Appended>>> in_flight;
  const auto wait_one = [&] {
    const auto r = in_flight.front().get();
    in_flight.pop_front();
    ASSERT_TRUE(r) << r.error().to_string();
  };
  for (std::uint64_t first = 0; first < n; first += kBatch) {
    std::vector<Message> batch;
    for (std::uint64_t i = first; i < std::min(n, first + kBatch); ++i) {
      // A scrambled order of due times (7919 is prime): entries are not put in key order.
      const auto due = kT0 + 1'000 + static_cast<std::int64_t>((i * 7919) % 100'000);
      batch.push_back(delayed(std::string(100, 'x'), due));
    }
    auto promise = std::make_shared<std::promise<Result<Appended>>>();
    in_flight.push_back(promise->get_future());
    (*b)->publish("t", std::move(batch),
                  [promise](Result<Appended> r) { promise->set_value(std::move(r)); });
    if (in_flight.size() >= kWindow) wait_one();
  }
  while (!in_flight.empty()) wait_one();
  const auto scheduled_s = seconds(Clock::now() - t0);
  const auto [rss_scheduled, hwm_scheduled] = rss_kib();
  ASSERT_EQ((*b)->describe_topic("t")->scheduled, n);
  (*b)->stop();
  b->reset();

  const auto t1 = Clock::now();
  auto after = Broker::open(dir.open(), o);
  ASSERT_TRUE(after);
  const auto open_s = seconds(Clock::now() - t1);
  EXPECT_EQ((*after)->describe_topic("t")->scheduled, n);
  EXPECT_EQ((*after)->next_due_ms(), kT0 + 1'000);

  now = kT0 + 200'000;  // everything is due
  const auto t2 = Clock::now();
  for (int pass = 0; pass < 1'000'000 && (*after)->describe_topic("t")->scheduled > 0; ++pass) {
    (*after)->run_release_pass();
  }
  const auto released_s = seconds(Clock::now() - t2);
  const auto [rss_released, hwm_released] = rss_kib();
  const auto t = (*after)->describe_topic("t");
  EXPECT_EQ(t->scheduled, 0u);
  EXPECT_EQ(t->next_offset, Offset{2 * n}) << "each released once";
  EXPECT_EQ((*after)->next_due_ms(), std::nullopt);
#if !defined(__SANITIZE_ADDRESS__)
  // The schedule holds n * (100-byte payload + record overhead) bytes: memory must not follow
  // (RocksDB's memtables and block cache are bounded). Not under ASan: its quarantine keeps up
  // to 256 MiB of freed memory resident.
  EXPECT_LT(hwm_released - hwm_before, 256 * 1024) << "KiB";
#endif
  std::printf(
      "delayed scale: n=%llu scheduled in %.2f s (%.0f msg/s); restart %.3f s; released in "
      "%.2f s (%.0f msg/s); RSS KiB before %llu, scheduled %llu, released %llu; peak %llu -> "
      "%llu\n",
      static_cast<unsigned long long>(n), scheduled_s, static_cast<double>(n) / scheduled_s, open_s,
      released_s, static_cast<double>(n) / released_s, static_cast<unsigned long long>(rss_before),
      static_cast<unsigned long long>(rss_scheduled), static_cast<unsigned long long>(rss_released),
      static_cast<unsigned long long>(hwm_before), static_cast<unsigned long long>(hwm_released));
  std::ignore = hwm_scheduled;
}

}  // namespace
}  // namespace loft::broker
