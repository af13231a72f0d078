// Groups with a subject filter, over a broker with a memory store and a fake clock: only
// matching messages are delivered, the others count as done (the floor passes them, they are
// not in the lag), what the group reads past filtered messages is bounded per pump, and the
// filter survives a restart.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "support/forwarding_store.hpp"
#include "support/groups_harness.hpp"

namespace loft::broker {
namespace {

using ::testing::ElementsAre;
using testing::FakeSubscriber;
using ::testing::HasSubstr;
using testing::Loop;

const TimePoint kNow{};

// Counts read() calls (every read of messages, read_block included, goes through it), and
// fails them while fail_reads(true).
class CountingStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<std::vector<StoredMessage>> read(TopicId topic, Offset from,
                                          storage::ReadLimits limits) const override {
    ++reads_;
    if (fail_reads_.load()) return fail(Errc::storage_error, "injected read fault");
    if (limits.max_messages > most_asked_) most_asked_ = limits.max_messages;
    return ForwardingStore::read(topic, from, limits);
  }
  std::uint64_t reads() const { return reads_.load(); }
  // The largest max_messages of any read so far.
  std::size_t most_asked() const { return most_asked_.load(); }
  void fail_reads(bool on) { fail_reads_.store(on); }

 private:
  std::atomic<bool> fail_reads_{false};
  mutable std::atomic<std::uint64_t> reads_{0};
  mutable std::atomic<std::size_t> most_asked_{0};
};

struct Published {
  std::string subject;  // "" = none
  std::string payload;
};

class GroupFilter : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override { close(); }

  // A broker and its groups over memory_, as loftd starts: the groups the store holds are
  // loaded, and topic events reach the groups on the loop (the test thread).
  void open() {
    auto store = std::make_unique<CountingStore>(*memory_);
    store_ = store.get();
    Options o;
    o.now_ms = [] { return std::int64_t{1'700'000'000'000}; };
    auto opened = testing::open_with_groups(std::move(store), std::move(o), loop_, kNow);
    ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
    broker_ = std::move(opened->broker);
    groups_ = std::move(opened->groups);
  }

  // A graceful stop: every group's progress written, then the broker closed.
  void close() { testing::close_with_groups(broker_, groups_); }

  void create_topic(const std::string& name) {
    std::promise<Result<TopicInfo>> created;
    broker_->create_topic(name, [&](Result<TopicInfo> r) { created.set_value(std::move(r)); });
    ASSERT_TRUE(created.get_future().get());
  }

  void publish(const std::string& topic, const std::vector<Published>& messages) {
    std::vector<Message> batch;
    for (const auto& p : messages) {
      Message m;
      m.subject = p.subject;
      m.payload = p.payload;
      batch.push_back(std::move(m));
    }
    std::promise<Result<Appended>> published;
    broker_->publish(topic, std::move(batch),
                     [&](Result<Appended> r) { published.set_value(std::move(r)); });
    const auto r = published.get_future().get();
    ASSERT_TRUE(r) << r.error().to_string();
    settle_loop();
  }

  // Runs what the broker posted (topic events, write completions), then plays the group
  // runner's timer: while a deadline is due, on_timer. Returns the number of timer pumps.
  std::size_t settle_loop(std::size_t max_pumps = 100000) {
    std::size_t pumps = 0;
    for (;;) {
      run_posted();
      const auto next = groups_->next_deadline();
      if (!next || *next > kNow || pumps >= max_pumps) return pumps;
      groups_->on_timer(kNow);
      ++pumps;
    }
  }

  // Runs every task posted so far (topic events, write completions), and those they post.
  void run_posted() { loop_.run_ready(); }

  Result<GroupInfo> create_group(const std::string& topic, const std::string& group,
                                 const std::string& filter, StartPosition start = {}) {
    CreateGroupRequest req;
    req.topic = topic;
    req.group = group;
    req.start = start;
    req.config.filter = filter;
    std::optional<Result<GroupInfo>> done;
    groups_->create_group(std::move(req), kNow, [&](Result<GroupInfo> r) { done = std::move(r); });
    EXPECT_TRUE(loop_.run_until([&] { return done.has_value(); }));
    settle_loop();
    return done ? std::move(*done) : fail(Errc::internal_error, "no answer");
  }

  Result<Subscribed> subscribe(FakeSubscriber& who, const std::string& topic,
                               const std::string& group, std::uint32_t max_in_flight,
                               const std::string& filter = {}) {
    SubscribeRequest req{topic, group, {}, max_in_flight, {}};
    req.config.filter = filter;
    std::optional<Result<Subscribed>> ok;
    groups_->subscribe(std::move(req), &who, kNow,
                       [&](Result<Subscribed> r) { ok = std::move(r); });
    EXPECT_TRUE(loop_.run_until([&] { return ok.has_value(); }));
    settle_loop();
    return ok ? std::move(*ok) : fail(Errc::internal_error, "no answer");
  }

  void ack(std::uint64_t sub, const FakeSubscriber& who, std::uint64_t offset) {
    SettleRequest req{sub, SettleAction::ack, false, std::nullopt, {OffsetRun{offset, 1}}};
    bool done = false;
    groups_->settle(req, &who, kNow, [&](Result<Settled> r) {
      EXPECT_TRUE(r && r->applied == 1) << "offset " << offset;
      done = true;
    });
    EXPECT_TRUE(done);
  }

  // Acks everything delivered to `who` until nothing more comes; the offsets, in order.
  std::vector<std::uint64_t> drain(std::uint64_t sub, FakeSubscriber& who) {
    std::vector<std::uint64_t> got;
    for (;;) {
      settle_loop();
      if (who.received.empty()) return got;
      const auto m = std::move(who.received.front());
      who.received.pop_front();
      got.push_back(m.offset);
      ack(sub, who, m.offset);
    }
  }

  GroupInfo describe(const std::string& topic, const std::string& group) {
    auto g = groups_->describe_group(topic, group);
    EXPECT_TRUE(g) << g.error().to_string();
    return g ? *g : GroupInfo{};
  }

  std::unique_ptr<storage::Store> memory_ = storage::make_memory_store();
  CountingStore* store_ = nullptr;
  std::unique_ptr<Broker> broker_;
  Loop loop_;
  std::unique_ptr<Groups> groups_;
};

TEST_F(GroupFilter, DeliversOnlyMatchingSubjectsAndCountsTheOthersAsDone) {
  create_topic("orders");
  ASSERT_TRUE(create_group("orders", "eu", "orders.eu.*"));
  publish("orders", {{"orders.eu.new", "0"},
                     {"orders.us.new", "1"},
                     {"", "2"},  // no subject: "orders", which the filter does not match
                     {"orders.eu.paid", "3"},
                     {"orders.eu.new.late", "4"},  // one token too many for '*'
                     {"orders.eu.new", "5"}});
  FakeSubscriber who;
  const auto sub = subscribe(who, "orders", "eu", 100);
  ASSERT_TRUE(sub);
  ASSERT_EQ(who.received.size(), 3u);
  EXPECT_EQ(who.received[0].message.subject, "orders.eu.new");
  EXPECT_EQ(who.received[1].message.subject, "orders.eu.paid");
  EXPECT_EQ(who.received[2].message.payload, "5");
  EXPECT_EQ(describe("orders", "eu").lag, 3u) << "the three in flight; the rest are done";
  EXPECT_THAT(drain(sub->subscription, who), ElementsAre(0, 3, 5));
  const auto info = describe("orders", "eu");
  EXPECT_EQ(info.lag, 0u);
  EXPECT_EQ(info.ack_floor, 6u);
  EXPECT_EQ(info.config.filter, "orders.eu.*");
  // New messages are filtered as they come.
  publish("orders", {{"orders.us.x", "6"}, {"orders.eu.x", "7"}});
  EXPECT_THAT(drain(sub->subscription, who), ElementsAre(7));
  EXPECT_EQ(describe("orders", "eu").ack_floor, 8u);
}

TEST_F(GroupFilter, AMessageWithoutASubjectMatchesByItsTopicsName) {
  create_topic("orders.eu");
  ASSERT_TRUE(create_group("orders.eu", "all-eu", "orders.*"));
  ASSERT_TRUE(create_group("orders.eu", "other", "billing.>"));
  ASSERT_TRUE(create_group("orders.eu", "every", ""));
  publish("orders.eu", {{"", "a"}, {"billing.x", "b"}, {"orders.de", "c"}});
  FakeSubscriber who;
  auto sub = subscribe(who, "orders.eu", "all-eu", 100);
  ASSERT_TRUE(sub);
  EXPECT_THAT(drain(sub->subscription, who), ElementsAre(0, 2));
  FakeSubscriber other;
  sub = subscribe(other, "orders.eu", "other", 100);
  ASSERT_TRUE(sub);
  EXPECT_THAT(drain(sub->subscription, other), ElementsAre(1));
  FakeSubscriber every;
  sub = subscribe(every, "orders.eu", "every", 100);
  ASSERT_TRUE(sub);
  EXPECT_THAT(drain(sub->subscription, every), ElementsAre(0, 1, 2));
}

// Filtered messages are done even while nobody consumes: the lag counts only matching ones.
TEST_F(GroupFilter, TheLagCountsOnlyMatchingMessagesWithoutAnyConsumer) {
  create_topic("t");
  ASSERT_TRUE(create_group("t", "rare", "rare"));
  std::vector<Published> batch;
  for (int i = 0; i < 5000; ++i) batch.push_back({i % 500 == 7 ? "rare" : "common", "x"});
  publish("t", batch);
  const auto info = describe("t", "rare");
  EXPECT_EQ(info.end, 5000u);
  EXPECT_EQ(info.lag, 10u);
  EXPECT_EQ(info.ack_floor, 7u);
  EXPECT_FALSE(groups_->next_deadline().has_value()) << "nothing left to do, no spinning";
}

// A topic where 1 message in 1000 matches: the group reads past the others in bounded steps
// (one store read per pump), never stalls, and its lag reaches 0.
TEST_F(GroupFilter, AMostlyFilteredTopicIsReadInBoundedStepsAndNeverStalls) {
  create_topic("t");
  ASSERT_TRUE(create_group("t", "g", "wanted.>"));
  FakeSubscriber who;
  const auto sub = subscribe(who, "t", "g", 1);
  ASSERT_TRUE(sub);
  constexpr int kMessages = 20'000;
  for (int first = 0; first < kMessages; first += 2000) {
    std::vector<Published> batch;
    for (int i = first; i < first + 2000; ++i) {
      batch.push_back({i % 1000 == 999 ? "wanted.x" : "noise.y", std::to_string(i)});
    }
    // Published without running the loop: the group has a backlog to work through.
    std::vector<Message> messages;
    for (auto& p : batch) {
      Message m;
      m.subject = p.subject;
      m.payload = p.payload;
      messages.push_back(std::move(m));
    }
    std::promise<Result<Appended>> published;
    broker_->publish("t", std::move(messages),
                     [&](Result<Appended> r) { published.set_value(std::move(r)); });
    ASSERT_TRUE(published.get_future().get());
  }
  run_posted();
  std::vector<std::uint64_t> got;
  std::size_t pumps = 0;
  while (got.size() < kMessages / 1000) {
    // One pump at a time, as the runner's timer gives them: each reads the store at most twice
    // (past filtered messages, and the delivery itself), whatever the backlog.
    run_posted();
    if (!who.received.empty()) {
      const auto m = std::move(who.received.front());
      who.received.pop_front();
      EXPECT_EQ(m.message.subject, "wanted.x");
      got.push_back(m.offset);
      ack(sub->subscription, who, m.offset);
      continue;
    }
    const auto next = groups_->next_deadline();
    ASSERT_TRUE(next && *next <= kNow) << "stalled after " << got.size() << " messages";
    const auto reads = store_->reads();
    groups_->on_timer(kNow);
    EXPECT_LE(store_->reads() - reads, 2u) << "pump " << pumps;
    ASSERT_LT(++pumps, 1000u) << "no progress";
  }
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i * 1000 + 999);
  // No read asked for more than a read-ahead's worth of messages.
  EXPECT_LE(store_->most_asked(), 1024u);
  settle_loop();
  const auto info = describe("t", "g");
  EXPECT_EQ(info.lag, 0u);
  EXPECT_EQ(info.ack_floor, std::uint64_t{kMessages});
  EXPECT_FALSE(groups_->next_deadline().has_value()) << "nothing left to do, no spinning";
}

// A read that fails while the group looks for matches is tried again a little later, on the
// timer alone: an idle topic sends no other event that would retry it.
TEST_F(GroupFilter, AFailedReadIsTriedAgainLaterWithoutAnotherEvent) {
  create_topic("t");
  ASSERT_TRUE(create_group("t", "g", "keep"));
  FakeSubscriber who;
  const auto sub = subscribe(who, "t", "g", 10);
  ASSERT_TRUE(sub);
  store_->fail_reads(true);
  publish("t", {{"drop", "0"}, {"keep", "1"}});
  EXPECT_TRUE(who.received.empty());
  const auto next = groups_->next_deadline();
  ASSERT_TRUE(next.has_value()) << "no retry: the matching message would wait forever";
  EXPECT_GT(*next, kNow) << "retried later, not in a tight loop";
  store_->fail_reads(false);
  groups_->on_timer(*next);
  run_posted();
  ASSERT_EQ(who.received.size(), 1u);
  EXPECT_EQ(who.received.front().offset, 1u);
  EXPECT_EQ(who.received.front().message.subject, "keep");
}

// When most messages match and nobody consumes, the group reads ahead only so far: memory and
// the stored progress stay bounded by what waits, not by the backlog.
TEST_F(GroupFilter, ReadsAheadOnlySoFarWhenMatchingMessagesWait) {
  create_topic("t");
  ASSERT_TRUE(create_group("t", "g", "t"));
  std::vector<Published> batch(5000, Published{"", "x"});  // all match (the topic's name)
  publish("t", batch);
  const auto reads = store_->reads();
  EXPECT_EQ(settle_loop(), 0u) << "nothing due: the group waits for a consumer";
  EXPECT_EQ(store_->reads(), reads);
  EXPECT_EQ(describe("t", "g").lag, 5000u);
  FakeSubscriber who;
  const auto sub = subscribe(who, "t", "g", 1000);
  ASSERT_TRUE(sub);
  EXPECT_EQ(drain(sub->subscription, who).size(), 5000u);
  EXPECT_EQ(describe("t", "g").lag, 0u);
}

// The filter is a setting: it survives a restart, and what was filtered out stays done.
TEST_F(GroupFilter, TheFilterAndWhatItFilteredOutSurviveARestart) {
  create_topic("t");
  ASSERT_TRUE(create_group("t", "g", "keep.*"));
  publish("t", {{"keep.a", "0"}, {"drop.a", "1"}, {"keep.b", "2"}, {"drop.b", "3"}});
  FakeSubscriber who;
  auto sub = subscribe(who, "t", "g", 1);
  ASSERT_TRUE(sub);
  ASSERT_EQ(who.received.size(), 1u);
  ack(sub->subscription, who, 0);
  settle_loop();
  close();
  open();
  publish("t", {{"drop.c", "4"}, {"keep.c", "5"}});
  auto info = describe("t", "g");
  EXPECT_EQ(info.config.filter, "keep.*");
  EXPECT_EQ(info.lag, 2u) << "2 and 5 match and are not done";
  FakeSubscriber again;
  sub = subscribe(again, "t", "g", 100);
  ASSERT_TRUE(sub);
  EXPECT_THAT(drain(sub->subscription, again), ElementsAre(2, 5));
  EXPECT_EQ(describe("t", "g").lag, 0u);
  EXPECT_EQ(describe("t", "g").ack_floor, 6u);
}

// As the other settings: SUBSCRIBE creates the group with its filter, and one that joins an
// existing group keeps that group's filter (an invalid one is refused all the same).
TEST_F(GroupFilter, TheFilterIsSetWhenTheGroupIsCreatedOnly) {
  create_topic("t");
  FakeSubscriber first;
  const auto created = subscribe(first, "t", "g", 10, "a.*");
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->created);
  EXPECT_EQ(describe("t", "g").config.filter, "a.*");
  FakeSubscriber second;
  const auto joined = subscribe(second, "t", "g", 10, "b.*");
  ASSERT_TRUE(joined);
  EXPECT_FALSE(joined->created);
  EXPECT_EQ(describe("t", "g").config.filter, "a.*");
  FakeSubscriber third;
  const auto refused = subscribe(third, "t", "g", 10, "a..b");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::invalid_subject);
  const auto bad = create_group("t", "h", "a.>.b");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid_subject);
  EXPECT_THAT(bad.error().detail, HasSubstr("'a.>.b' is not a valid subject filter"));
  EXPECT_EQ(create_group("t", "g", "c").error().code, Errc::group_exists);
}

// A reset looks at the messages again from where it moves the group.
TEST_F(GroupFilter, AResetFiltersAgainFromItsNewPosition) {
  create_topic("t");
  ASSERT_TRUE(create_group("t", "g", "yes"));
  publish("t", {{"yes", "0"}, {"no", "1"}, {"yes", "2"}});
  FakeSubscriber who;
  const auto sub = subscribe(who, "t", "g", 10);
  ASSERT_TRUE(sub);
  EXPECT_THAT(drain(sub->subscription, who), ElementsAre(0, 2));
  std::optional<Result<GroupInfo>> reset;
  groups_->reset_group("t", "g", {StartKind::offset, 1}, kNow,
                       [&](Result<GroupInfo> r) { reset = std::move(r); });
  EXPECT_TRUE(loop_.run_until([&] { return reset.has_value(); }));
  EXPECT_THAT(drain(sub->subscription, who), ElementsAre(2));
  EXPECT_EQ(describe("t", "g").lag, 0u);
}

// Not about filters: the fixture serves a subscriber that asks for messages (Subscriber::
// credit, what a NATS pull consumer's waiting requests add up to). It gets what it asked for
// and no more, also when acks free room under max_in_flight, and on_ready brings the rest.
TEST_F(GroupFilter, ASubscribersCreditBoundsItsDeliveries) {
  create_topic("jobs");
  publish("jobs", {{"", "0"}, {"", "1"}, {"", "2"}, {"", "3"}, {"", "4"}});
  FakeSubscriber who;
  who.wants = 0;
  const auto sub = subscribe(who, "jobs", "workers", 100);
  ASSERT_TRUE(sub);
  EXPECT_TRUE(who.received.empty());
  who.wants = 2;
  groups_->on_ready(&who, kNow);
  settle_loop();
  ASSERT_EQ(who.received.size(), 2u);
  ack(sub->subscription, who, 0);
  ack(sub->subscription, who, 1);
  settle_loop();
  EXPECT_EQ(who.received.size(), 2u) << "acks gave room, but no credit was asked for";
  who.received.clear();
  who.wants = 10;
  groups_->on_ready(&who, kNow);
  settle_loop();
  ASSERT_EQ(who.received.size(), 3u);
  EXPECT_EQ(who.received.front().offset, 2u);
  EXPECT_EQ(*who.wants, 7u);
}

// Not about filters either: a front end's annotation (GroupConfig::annotation) is set at
// creation, replaced by annotate() once durable, written with the group's progress without
// being lost, and read back after a restart; the other settings stay as they were.
TEST_F(GroupFilter, AnAnnotationIsKeptWithTheGroupAndSurvivesARestart) {
  create_topic("t");
  CreateGroupRequest req;
  req.topic = "t";
  req.group = "g";
  req.config.annotation = "first";
  req.config.max_deliveries = 3;
  std::optional<Result<GroupInfo>> created;
  groups_->create_group(std::move(req), kNow, [&](Result<GroupInfo> r) { created = std::move(r); });
  ASSERT_TRUE(loop_.run_until([&] { return created.has_value(); }));
  ASSERT_TRUE(*created);
  EXPECT_EQ((*created)->config.annotation, "first");

  std::optional<Result<GroupInfo>> annotated;
  groups_->annotate("t", "g", "second", kNow,
                    [&](Result<GroupInfo> r) { annotated = std::move(r); });
  ASSERT_TRUE(loop_.run_until([&] { return annotated.has_value(); }));
  ASSERT_TRUE(*annotated) << annotated->error().to_string();
  EXPECT_EQ((*annotated)->config.annotation, "second");
  EXPECT_EQ((*annotated)->config.max_deliveries, 3u);

  // Progress writes carry it along.
  publish("t", {{"", "0"}, {"", "1"}});
  FakeSubscriber who;
  auto sub = subscribe(who, "t", "g", 10);
  ASSERT_TRUE(sub);
  EXPECT_THAT(drain(sub->subscription, who), ElementsAre(0, 1));
  settle_loop();
  close();
  open();
  auto info = describe("t", "g");
  EXPECT_EQ(info.config.annotation, "second");
  EXPECT_EQ(info.config.max_deliveries, 3u);
  EXPECT_EQ(info.ack_floor, 2u);

  std::optional<Result<GroupInfo>> refused;
  groups_->annotate("t", "g", std::string(GroupLimits::kMaxAnnotationBytes + 1, 'a'), kNow,
                    [&](Result<GroupInfo> r) { refused = std::move(r); });
  ASSERT_TRUE(refused.has_value());
  ASSERT_FALSE(*refused);
  EXPECT_EQ(refused->error().code, Errc::invalid_request);
  groups_->annotate("t", "nope", "x", kNow, [&](Result<GroupInfo> r) { refused = std::move(r); });
  EXPECT_EQ(refused->error().code, Errc::group_not_found);
  EXPECT_EQ(describe("t", "g").config.annotation, "second");
}

// keep_annotation() replaces the annotation in memory with no write of its own: it reaches the
// disk with the next progress write, and is lost without one.
TEST_F(GroupFilter, AKeptAnnotationRidesOnTheNextProgressWrite) {
  create_topic("t");
  publish("t", {{"", "0"}, {"", "1"}});
  FakeSubscriber who;
  auto sub = subscribe(who, "t", "g", 10);
  ASSERT_TRUE(sub);
  EXPECT_FALSE(groups_->keep_annotation("t", "nope", "x"));
  EXPECT_FALSE(
      groups_->keep_annotation("t", "g", std::string(GroupLimits::kMaxAnnotationBytes + 1, 'a')));
  ASSERT_TRUE(groups_->keep_annotation("t", "g", "unwritten"));
  EXPECT_EQ(describe("t", "g").config.annotation, "unwritten");
  settle_loop();
  close();
  open();
  EXPECT_EQ(describe("t", "g").config.annotation, "") << "written without a progress write";

  FakeSubscriber again;
  sub = subscribe(again, "t", "g", 10);
  ASSERT_TRUE(sub);
  ASSERT_TRUE(groups_->keep_annotation("t", "g", "kept"));
  EXPECT_THAT(drain(sub->subscription, again), ElementsAre(0, 1));  // the acks write it
  close();
  open();
  EXPECT_EQ(describe("t", "g").config.annotation, "kept");
}

// set_max_in_flight() applies to a subscription at once: a raise delivers more.
TEST_F(GroupFilter, ARaisedMaxInFlightDeliversMoreAtOnce) {
  create_topic("t");
  publish("t", {{"", "0"}, {"", "1"}, {"", "2"}});
  FakeSubscriber who;
  auto sub = subscribe(who, "t", "g", 1);
  ASSERT_TRUE(sub);
  settle_loop();
  EXPECT_EQ(who.received.size(), 1u);
  EXPECT_FALSE(groups_->set_max_in_flight(sub->subscription + 100, 3, kNow));
  ASSERT_TRUE(groups_->set_max_in_flight(sub->subscription, 3, kNow));
  settle_loop();
  EXPECT_EQ(who.received.size(), 3u);
}

// The dead-letter listener hears of each dead letter once its copy is durable, with its reason
// and attempt count: a reject, and a message that used up its deliveries.
TEST_F(GroupFilter, TheDeadLetterListenerHearsOfEachDeadLetter) {
  std::vector<std::tuple<std::string, std::string, std::uint64_t, std::uint32_t,
                         delivery::DeadLetterReason>>
      heard;
  groups_->on_dead_lettered([&](const DeadLettered& d) {
    heard.emplace_back(std::string(d.topic), std::string(d.group), d.offset.value, d.attempts,
                       d.reason);
  });
  create_topic("t");
  publish("t", {{"", "0"}, {"", "1"}});
  CreateGroupRequest req;
  req.topic = "t";
  req.group = "g";
  req.config.max_deliveries = 1;
  std::optional<Result<GroupInfo>> created;
  groups_->create_group(std::move(req), kNow, [&](Result<GroupInfo> r) { created = std::move(r); });
  ASSERT_TRUE(loop_.run_until([&] { return created.has_value(); }));
  FakeSubscriber who;
  auto sub = subscribe(who, "t", "g", 10);
  ASSERT_TRUE(sub);
  ASSERT_EQ(who.received.size(), 2u);
  const auto settle = [&](SettleAction action, std::uint64_t offset) {
    SettleRequest s{sub->subscription, action, false, std::uint32_t{0}, {OffsetRun{offset, 1}}};
    groups_->settle(s, &who, kNow, [](const Result<Settled>&) {});
    settle_loop();
  };
  // The dead letter's write completes on the broker's writer thread: wait for its completion.
  settle(SettleAction::reject, 0);
  ASSERT_TRUE(loop_.run_until([&] { return !heard.empty(); }));
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0], std::tuple(std::string("t"), std::string("g"), std::uint64_t{0},
                                 std::uint32_t{1}, delivery::DeadLetterReason::rejected));
  settle(SettleAction::nack, 1);  // its only delivery is used up
  ASSERT_TRUE(loop_.run_until([&] { return heard.size() >= 2; }));
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[1], std::tuple(std::string("t"), std::string("g"), std::uint64_t{1},
                                 std::uint32_t{1}, delivery::DeadLetterReason::max_deliveries));
}

}  // namespace
}  // namespace loft::broker
