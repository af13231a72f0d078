// The groups' wake times, kept in one ordered structure (Groups::wakes_) rather than found by
// asking every group: next_deadline is the earliest due time of any group, whether a group's
// time moved earlier (a nack with a short delay) or later (an extend, an ack), on_timer pumps
// only the groups that are due and never early, and a group or topic that is gone leaves
// nothing to wake for. Over a broker with a memory store and a fake clock.

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "support/groups_harness.hpp"

namespace loft::broker {
namespace {

using namespace std::chrono_literals;
using testing::FakeSubscriber;
using testing::Loop;

const TimePoint kT0{};

class GroupWakes : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.now_ms = [] { return std::int64_t{1'700'000'000'000}; };
    auto opened = testing::open_with_groups(storage::make_memory_store(), std::move(o), loop_, kT0);
    ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
    broker_ = std::move(opened->broker);
    groups_ = std::move(opened->groups);
  }
  void TearDown() override { testing::close_with_groups(broker_, groups_); }

  void create_topic(const std::string& name) {
    std::promise<Result<TopicInfo>> created;
    broker_->create_topic(name, [&](Result<TopicInfo> r) { created.set_value(std::move(r)); });
    ASSERT_TRUE(created.get_future().get());
  }

  void publish(const std::string& topic, const std::string& payload) {
    Message m;
    m.payload = payload;
    std::vector<Message> batch;
    batch.push_back(std::move(m));
    std::promise<Result<Appended>> published;
    broker_->publish(topic, std::move(batch),
                     [&](Result<Appended> r) { published.set_value(std::move(r)); });
    const auto r = published.get_future().get();
    ASSERT_TRUE(r) << r.error().to_string();
    loop_.run_ready();  // the topic event
  }

  // A subscription to a new group of `topic` with this ack timeout; a message that times out is
  // due again 1 ms later.
  std::uint64_t subscribe(FakeSubscriber& who, const std::string& topic, const std::string& group,
                          std::uint32_t ack_timeout_ms) {
    SubscribeRequest req{topic, group, {}, 10, {}};
    req.config.ack_timeout_ms = ack_timeout_ms;
    req.config.backoff_delays_ms = {1};
    std::optional<Result<Subscribed>> ok;
    groups_->subscribe(std::move(req), &who, kT0, [&](Result<Subscribed> r) { ok = std::move(r); });
    EXPECT_TRUE(loop_.run_until([&] { return ok.has_value(); }));
    loop_.run_ready();
    EXPECT_TRUE(ok && *ok);
    return ok && *ok ? (*ok)->subscription : 0;
  }

  void settle(std::uint64_t sub, const FakeSubscriber& who, SettleAction action,
              std::uint64_t offset, TimePoint now, std::optional<std::uint32_t> delay_ms = {}) {
    SettleRequest req{sub, action, false, delay_ms, {OffsetRun{offset, 1}}};
    bool done = false;
    groups_->settle(req, &who, now, [&](Result<Settled> r) {
      EXPECT_TRUE(r && r->applied == 1) << "offset " << offset;
      done = true;
    });
    EXPECT_TRUE(done);
    loop_.run_ready();
  }

  // Plays the group runner up to `until`: on_timer at each next deadline that is not later.
  void run_timers_to(TimePoint until) {
    for (int i = 0; i < 1000; ++i) {
      const auto next = groups_->next_deadline();
      if (!next || *next > until) return;
      groups_->on_timer(*next);
    }
    ADD_FAILURE() << "the timer does not settle";
  }

  // The attempts `who` received, oldest first, and forgets them.
  static std::vector<std::uint32_t> attempts(FakeSubscriber& who) {
    std::vector<std::uint32_t> out;
    for (const auto& r : who.received) out.push_back(r.attempt);
    who.received.clear();
    return out;
  }

  Loop loop_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Groups> groups_;
};

TEST_F(GroupWakes, TheTimerWakesEachGroupAtItsOwnTimeAndNoneEarly) {
  FakeSubscriber a, b, c;
  create_topic("a");
  create_topic("b");
  create_topic("c");
  const auto sa = subscribe(a, "a", "g", 3000);
  const auto sb = subscribe(b, "b", "g", 1000);
  const auto sc = subscribe(c, "c", "g", 2000);
  ASSERT_TRUE(sa && sb && sc);
  publish("a", "x");
  publish("b", "x");
  publish("c", "x");
  EXPECT_EQ(attempts(a), std::vector<std::uint32_t>{1});
  EXPECT_EQ(attempts(b), std::vector<std::uint32_t>{1});
  EXPECT_EQ(attempts(c), std::vector<std::uint32_t>{1});
  EXPECT_EQ(groups_->next_deadline(), kT0 + 1s) << "b's ack timeout is the earliest";

  run_timers_to(kT0 + 999ms);
  EXPECT_TRUE(b.received.empty()) << "not before its time";
  run_timers_to(kT0 + 1001ms);  // timed out at 1 s, due again 1 ms later
  EXPECT_EQ(attempts(b), std::vector<std::uint32_t>{2});
  EXPECT_TRUE(a.received.empty() && c.received.empty()) << "only the group that was due";
  EXPECT_EQ(groups_->next_deadline(), kT0 + 2s) << "c's timeout, before b's new one (2001 ms)";

  run_timers_to(kT0 + 2001ms);
  EXPECT_EQ(attempts(c), std::vector<std::uint32_t>{2});
  EXPECT_TRUE(a.received.empty() && b.received.empty()) << "b times out at 2001 ms, due at 2002";
  EXPECT_EQ(groups_->next_deadline(), kT0 + 2002ms);
  run_timers_to(kT0 + 3001ms);
  EXPECT_EQ(attempts(a), std::vector<std::uint32_t>{2});
  EXPECT_EQ(attempts(b), std::vector<std::uint32_t>{3});
}

TEST_F(GroupWakes, ADeadlineThatMovesEarlierIsTheNextOne) {
  FakeSubscriber who;
  create_topic("t");
  const auto sub = subscribe(who, "t", "g", 30'000);
  ASSERT_TRUE(sub);
  publish("t", "x");
  ASSERT_EQ(attempts(who), std::vector<std::uint32_t>{1});
  EXPECT_EQ(groups_->next_deadline(), kT0 + 30s);

  settle(sub, who, SettleAction::nack, 0, kT0 + 1s, 100);  // redeliver 100 ms from now
  EXPECT_EQ(groups_->next_deadline(), kT0 + 1100ms);
  groups_->on_timer(kT0 + 1100ms);
  EXPECT_EQ(attempts(who), std::vector<std::uint32_t>{2});
  EXPECT_EQ(groups_->next_deadline(), kT0 + 1100ms + 30s) << "the new ack timeout";

  settle(sub, who, SettleAction::ack, 0, kT0 + 2s);
  EXPECT_EQ(groups_->next_deadline(), std::nullopt) << "nothing in flight: nothing to wake for";
}

TEST_F(GroupWakes, ADeadlineThatMovesLaterIsNotWokenAtTheOldTime) {
  FakeSubscriber who;
  create_topic("t");
  const auto sub = subscribe(who, "t", "g", 1000);
  ASSERT_TRUE(sub);
  publish("t", "x");
  ASSERT_EQ(attempts(who), std::vector<std::uint32_t>{1});
  EXPECT_EQ(groups_->next_deadline(), kT0 + 1s);

  settle(sub, who, SettleAction::extend, 0, kT0 + 600ms);  // a new ack timeout from 600 ms
  EXPECT_EQ(groups_->next_deadline(), kT0 + 1600ms) << "the old time is not given any more";
  groups_->on_timer(kT0 + 1s);
  EXPECT_TRUE(who.received.empty()) << "extended: not redelivered at the old time";
  EXPECT_EQ(groups_->next_deadline(), kT0 + 1600ms);
  run_timers_to(kT0 + 1601ms);  // timed out at 1600 ms, due again 1 ms later
  EXPECT_EQ(attempts(who), std::vector<std::uint32_t>{2});
}

TEST_F(GroupWakes, AGroupOrTopicThatIsGoneLeavesNothingToWakeFor) {
  FakeSubscriber a, b;
  create_topic("a");
  create_topic("b");
  ASSERT_TRUE(subscribe(a, "a", "g", 1000));
  ASSERT_TRUE(subscribe(b, "b", "g", 5000));
  publish("a", "x");
  publish("b", "x");
  EXPECT_EQ(attempts(a), std::vector<std::uint32_t>{1});
  EXPECT_EQ(attempts(b), std::vector<std::uint32_t>{1});
  EXPECT_EQ(groups_->next_deadline(), kT0 + 1s);

  std::optional<Result<void>> deleted;
  groups_->delete_group("a", "g", kT0, [&](Result<void> r) { deleted = std::move(r); });
  ASSERT_TRUE(loop_.run_until([&] { return deleted.has_value(); }));
  ASSERT_TRUE(*deleted);
  EXPECT_EQ(groups_->next_deadline(), kT0 + 5s) << "only b's group is left";

  std::promise<Result<void>> dropped;
  broker_->delete_topic("b", [&](Result<void> r) { dropped.set_value(std::move(r)); });
  ASSERT_TRUE(dropped.get_future().get());
  loop_.run_ready();  // the topic event removes its group
  EXPECT_EQ(groups_->next_deadline(), std::nullopt);
  run_timers_to(kT0 + 10s);
  groups_->on_timer(kT0 + 10s);
  EXPECT_TRUE(a.received.empty() && b.received.empty());
}

}  // namespace
}  // namespace loft::broker
