// Work-queue retention over a broker with a memory store and its groups, the test thread as
// the io loop: a message is removed once every group of its topic has acked or dead-lettered
// it (the lowest durable ack floor), never before; a topic without groups keeps everything; a
// group added later starts at the oldest retained message; deleting a group lets the others'
// floors decide; the mode survives a restart.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
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
using testing::Loop;

const TimePoint kNow{};

class WorkQueue : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override { close(); }

  // Retention passes run only when the test calls run_retention_pass().
  void open() {
    Options o;
    o.now_ms = [] { return std::int64_t{1'700'000'000'000}; };
    o.retention_interval = std::chrono::milliseconds{0};
    auto opened = testing::open_with_groups(std::make_unique<testing::ForwardingStore>(*memory_),
                                            std::move(o), loop_, kNow);
    ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
    broker_ = std::move(opened->broker);
    groups_ = std::move(opened->groups);
  }

  void close() { testing::close_with_groups(broker_, groups_); }

  void create_topic(const std::string& name, RetentionMode mode) {
    TopicSettings settings;
    settings.retention_mode = mode;
    std::promise<Result<TopicInfo>> created;
    broker_->create_topic(name, settings,
                          [&](Result<TopicInfo> r) { created.set_value(std::move(r)); });
    const auto r = created.get_future().get();
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->retention_mode, mode);
  }

  void publish(const std::string& topic, int n) {
    std::vector<Message> batch(static_cast<std::size_t>(n));
    for (auto& m : batch) m.payload = "0123456789";
    std::promise<Result<Appended>> published;
    broker_->publish(topic, std::move(batch),
                     [&](Result<Appended> r) { published.set_value(std::move(r)); });
    ASSERT_TRUE(published.get_future().get());
    settle_loop();
  }

  // Work-queue topic "jobs" with `groups` (created from the start), then `n` messages.
  void jobs_with(const std::vector<std::string>& groups, int n) {
    create_topic("jobs", RetentionMode::work_queue);
    for (const auto& g : groups) ASSERT_TRUE(create_group("jobs", g));
    publish("jobs", n);
  }

  void settle_loop() {
    for (int pumps = 0; pumps < 100000; ++pumps) {
      loop_.run_ready();
      const auto next = groups_->next_deadline();
      if (!next || *next > kNow) return;
      groups_->on_timer(kNow);
    }
  }

  Result<GroupInfo> create_group(const std::string& topic, const std::string& group,
                                 StartPosition start = {}) {
    CreateGroupRequest req;
    req.topic = topic;
    req.group = group;
    req.start = start;
    std::optional<Result<GroupInfo>> done;
    groups_->create_group(std::move(req), kNow, [&](Result<GroupInfo> r) { done = std::move(r); });
    EXPECT_TRUE(loop_.run_until([&] { return done.has_value(); }));
    settle_loop();
    return done ? std::move(*done) : fail(Errc::internal_error, "no answer");
  }

  void delete_group(const std::string& topic, const std::string& group) {
    std::optional<Result<void>> done;
    groups_->delete_group(topic, group, kNow, [&](Result<void> r) { done = std::move(r); });
    ASSERT_TRUE(loop_.run_until([&] { return done.has_value(); }));
    ASSERT_TRUE(*done);
    settle_loop();
  }

  std::uint64_t subscribe(FakeSubscriber& who, const std::string& topic, const std::string& group,
                          std::uint32_t max_in_flight) {
    SubscribeRequest req{topic, group, {}, max_in_flight, {}};
    std::optional<Result<Subscribed>> ok;
    groups_->subscribe(std::move(req), &who, kNow,
                       [&](Result<Subscribed> r) { ok = std::move(r); });
    EXPECT_TRUE(loop_.run_until([&] { return ok.has_value(); }));
    settle_loop();
    EXPECT_TRUE(ok && *ok);
    return ok && *ok ? (*ok)->subscription : 0;
  }

  // Settles the first `n` messages delivered to `who` with `action`, confirmed (durable once
  // this returns); the offsets, in order.
  std::vector<std::uint64_t> settle(std::uint64_t sub, FakeSubscriber& who, std::size_t n,
                                    SettleAction action = SettleAction::ack) {
    std::vector<std::uint64_t> done_offsets;
    for (std::size_t i = 0; i < n; ++i) {
      settle_loop();
      if (who.received.empty()) break;
      const auto offset = who.received.front().offset;
      who.received.pop_front();
      SettleRequest req{sub, action, true, std::nullopt, {OffsetRun{offset, 1}}};
      std::optional<Result<Settled>> settled;
      groups_->settle(req, &who, kNow, [&](Result<Settled> r) { settled = std::move(r); });
      EXPECT_TRUE(loop_.run_until([&] { return settled.has_value(); }));
      EXPECT_TRUE(settled && *settled && (*settled)->applied == 1) << "offset " << offset;
      done_offsets.push_back(offset);
    }
    settle_loop();
    return done_offsets;
  }

  std::uint64_t pass() {
    const auto removed = broker_->run_retention_pass();
    settle_loop();
    return removed;
  }

  TopicInfo topic(const std::string& name) {
    auto t = broker_->describe_topic(name);
    EXPECT_TRUE(t);
    return t ? *t : TopicInfo{};
  }

  std::unique_ptr<storage::Store> memory_ = storage::make_memory_store();
  std::unique_ptr<Broker> broker_;
  Loop loop_;
  std::unique_ptr<Groups> groups_;
};

TEST_F(WorkQueue, ATopicWithoutGroupsKeepsItsMessages) {
  jobs_with({}, 10);
  EXPECT_EQ(pass(), 0u);
  EXPECT_EQ(topic("jobs").messages, 10u);
  EXPECT_EQ(topic("jobs").first_offset, Offset{0});
}

TEST_F(WorkQueue, OneGroupRemovesWhatItAckedAndNothingElse) {
  jobs_with({"workers"}, 10);
  FakeSubscriber who;
  const auto sub = subscribe(who, "jobs", "workers", 100);
  EXPECT_THAT(settle(sub, who, 4), ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(pass(), 4u);
  auto t = topic("jobs");
  EXPECT_EQ(t.first_offset, Offset{4});
  EXPECT_EQ(t.messages, 6u);
  EXPECT_EQ(t.bytes, 60u);
  EXPECT_EQ(pass(), 0u) << "nothing more is done";
  // The rest, in flight until now, goes once acked; the group skipped nothing.
  EXPECT_EQ(settle(sub, who, 6).size(), 6u);
  EXPECT_EQ(pass(), 6u);
  t = topic("jobs");
  EXPECT_EQ(t.first_offset, Offset{10});
  EXPECT_EQ(t.messages, 0u);
  EXPECT_EQ(t.bytes, 0u);
  EXPECT_EQ(groups_->describe_group("jobs", "workers")->skipped, 0u);
}

// An ack above the floor (a gap below it) removes nothing: only the floor counts.
TEST_F(WorkQueue, AnAckAboveAGapRemovesNothing) {
  jobs_with({"workers"}, 3);
  FakeSubscriber who;
  const auto sub = subscribe(who, "jobs", "workers", 100);
  ASSERT_EQ(who.received.size(), 3u);
  const auto first = std::move(who.received.front());
  who.received.pop_front();
  EXPECT_THAT(settle(sub, who, 2), ElementsAre(1, 2));
  EXPECT_EQ(pass(), 0u);
  EXPECT_EQ(topic("jobs").messages, 3u);
  who.received.push_front(first);
  EXPECT_THAT(settle(sub, who, 1), ElementsAre(0));
  EXPECT_EQ(pass(), 3u);
}

TEST_F(WorkQueue, TwoGroupsRemoveBelowTheLowerFloorAndDeadLettersCountAsDone) {
  jobs_with({"a", "b"}, 10);
  FakeSubscriber wa;
  FakeSubscriber wb;
  const auto sa = subscribe(wa, "jobs", "a", 100);
  const auto sb = subscribe(wb, "jobs", "b", 100);
  EXPECT_EQ(settle(sa, wa, 8).size(), 8u);
  EXPECT_EQ(settle(sb, wb, 3).size(), 3u);
  EXPECT_EQ(pass(), 3u);
  EXPECT_EQ(topic("jobs").first_offset, Offset{3});
  // b rejects 3..5: dead-lettered, so done for b as well.
  EXPECT_THAT(settle(sb, wb, 3, SettleAction::reject), ElementsAre(3, 4, 5));
  EXPECT_EQ(pass(), 3u);
  EXPECT_EQ(topic("jobs").first_offset, Offset{6});
  EXPECT_EQ(groups_->describe_group("jobs", "b")->dead_lettered, 3u);
  EXPECT_EQ(settle(sb, wb, 4).size(), 4u);
  EXPECT_EQ(pass(), 2u) << "a still holds 8 and 9";
  EXPECT_EQ(topic("jobs").first_offset, Offset{8});
  EXPECT_EQ(settle(sa, wa, 2).size(), 2u);
  EXPECT_EQ(pass(), 2u);
  EXPECT_EQ(topic("jobs").messages, 0u);
}

TEST_F(WorkQueue, AGroupAddedLaterStartsAtTheOldestRetainedMessage) {
  jobs_with({"a"}, 10);
  FakeSubscriber wa;
  const auto sa = subscribe(wa, "jobs", "a", 100);
  EXPECT_EQ(settle(sa, wa, 5).size(), 5u);
  EXPECT_EQ(pass(), 5u);
  // Asked for the end: it starts at offset 5 all the same, and holds 5..9 for itself.
  const auto b = create_group("jobs", "late", StartPosition{StartKind::latest, 0});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->ack_floor, 5u);
  EXPECT_EQ(settle(sa, wa, 5).size(), 5u);
  EXPECT_EQ(pass(), 0u) << "the late group has not settled anything";
  FakeSubscriber wb;
  const auto sb = subscribe(wb, "jobs", "late", 100);
  EXPECT_THAT(settle(sb, wb, 2), ElementsAre(5, 6));
  EXPECT_EQ(pass(), 2u);
  EXPECT_EQ(topic("jobs").first_offset, Offset{7});
}

TEST_F(WorkQueue, DeletingAGroupLetsTheOthersFloorsDecide) {
  jobs_with({"fast", "idle"}, 6);
  FakeSubscriber who;
  const auto sub = subscribe(who, "jobs", "fast", 100);
  EXPECT_EQ(settle(sub, who, 6).size(), 6u);
  EXPECT_EQ(pass(), 0u) << "idle has settled nothing";
  delete_group("jobs", "idle");
  EXPECT_EQ(pass(), 6u);
  EXPECT_EQ(topic("jobs").messages, 0u);
  // With every group gone, the topic keeps what comes.
  delete_group("jobs", "fast");
  publish("jobs", 2);
  EXPECT_EQ(pass(), 0u);
  EXPECT_EQ(topic("jobs").messages, 2u);
}

TEST_F(WorkQueue, ATopicWithLimitsKeepsWhatItsGroupsAcked) {
  create_topic("log", RetentionMode::limits);
  ASSERT_TRUE(create_group("log", "a"));
  publish("log", 4);
  FakeSubscriber who;
  const auto sub = subscribe(who, "log", "a", 100);
  EXPECT_EQ(settle(sub, who, 4).size(), 4u);
  EXPECT_EQ(pass(), 0u);
  EXPECT_EQ(topic("log").messages, 4u);
}

TEST_F(WorkQueue, TheModeAndTheFloorsSurviveARestart) {
  jobs_with({"a", "b"}, 4);
  FakeSubscriber wa;
  const auto sa = subscribe(wa, "jobs", "a", 100);
  EXPECT_EQ(settle(sa, wa, 4).size(), 4u);
  groups_->drop_subscriber(&wa, kNow);
  close();
  open();
  EXPECT_EQ(topic("jobs").retention_mode, RetentionMode::work_queue);
  EXPECT_EQ(pass(), 0u) << "b's floor, loaded from the store, still holds them";
  FakeSubscriber wb;
  const auto sb = subscribe(wb, "jobs", "b", 100);
  EXPECT_EQ(settle(sb, wb, 3).size(), 3u);
  EXPECT_EQ(pass(), 3u);
  EXPECT_EQ(topic("jobs").first_offset, Offset{3});
}

}  // namespace
}  // namespace loft::broker
