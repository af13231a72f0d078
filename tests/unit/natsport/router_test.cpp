// natsport::Router without sockets: which subscriptions a published message reaches (plain,
// wildcards, one member per queue group), echo, UNSUB max, and a subscriber that does not take
// a message; interest in a subject and the hook that reports its changes.

#include "natsport/router.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace loft::natsport {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// Records what it gets, as "sid:subject:payload"; refuses everything while `refusing`.
class FakeSubscriber : public Subscriber {
 public:
  bool deliver(const Subscription& sub, const Outbound& m) override {
    if (refusing) return false;
    got.push_back(sub.sid + ":" + std::string(m.subject) + ":" + std::string(m.payload));
    return true;
  }
  void on_subscription_finished(const Subscription& sub) override { finished.push_back(sub.sid); }

  std::vector<std::string> got;
  std::vector<std::string> finished;
  bool refusing = false;
};

Outbound message(std::string_view subject, std::string_view payload = "p") {
  return Outbound{subject, {}, {}, payload};
}

TEST(Router, DeliversToEveryMatchingSubscriptionOnce) {
  Router r;
  FakeSubscriber a;
  FakeSubscriber b;
  ASSERT_TRUE(r.subscribe(a, "1", "orders.eu", "").has_value());
  ASSERT_TRUE(r.subscribe(a, "2", "orders.*", "").has_value());
  ASSERT_TRUE(r.subscribe(b, "3", "orders.>", "").has_value());
  ASSERT_TRUE(r.subscribe(b, "4", "other", "").has_value());
  EXPECT_EQ(r.publish(nullptr, true, message("orders.eu")), 3u);
  EXPECT_EQ(r.publish(nullptr, true, message("orders.eu.x")), 1u);
  EXPECT_EQ(r.publish(nullptr, true, message("nobody")), 0u);
  EXPECT_THAT(a.got, UnorderedElementsAre("1:orders.eu:p", "2:orders.eu:p"));
  EXPECT_THAT(b.got, ElementsAre("3:orders.eu:p", "3:orders.eu.x:p"));
  EXPECT_EQ(r.size(), 4u);
  EXPECT_FALSE(r.subscribe(a, "5", "bad..subject", "").has_value());
  EXPECT_FALSE(r.subscribe(a, "5", "ok", "bad queue").has_value());
  EXPECT_EQ(r.size(), 4u);
}

TEST(Router, PublishToMatchesOneSubjectAndDeliversAnother) {
  Router r;
  FakeSubscriber inbox;
  FakeSubscriber stream_watcher;
  ASSERT_TRUE(r.subscribe(inbox, "1", "_INBOX.abc.*", "").has_value());
  ASSERT_TRUE(r.subscribe(stream_watcher, "2", "orders.>", "").has_value());
  EXPECT_EQ(r.publish_to("_INBOX.abc.1", message("orders.eu")), 1u);
  EXPECT_THAT(inbox.got, ElementsAre("1:orders.eu:p"));
  EXPECT_TRUE(stream_watcher.got.empty());
  EXPECT_EQ(r.publish_to("_INBOX.other", message("orders.eu")), 0u);
}

TEST(Router, AQueueGroupGetsEachMessageOnceSpreadOverItsMembers) {
  Router r;
  std::vector<FakeSubscriber> members(3);
  for (auto& m : members) ASSERT_TRUE(r.subscribe(m, "q", "work.*", "workers").has_value());
  // A second subscription of one member in the same group: still one delivery per message.
  ASSERT_TRUE(r.subscribe(members[0], "q2", "work.>", "workers").has_value());
  FakeSubscriber other_group;
  ASSERT_TRUE(r.subscribe(other_group, "o", "work.x", "auditors").has_value());
  constexpr int kMessages = 3000;
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(r.publish(nullptr, true, message("work.x")), 2u);
  std::size_t total = 0;
  for (const auto& m : members) {
    total += m.got.size();
    // A random subscription of the group: member 0 holds two of the four that match, so it
    // gets about half, the others a quarter each (750, give or take 24): 600 is 6 sigma off.
    EXPECT_GT(m.got.size(), 600u);
  }
  EXPECT_EQ(total, static_cast<std::size_t>(kMessages));
  EXPECT_EQ(other_group.got.size(), static_cast<std::size_t>(kMessages));
}

TEST(Router, AMemberThatDoesNotTakeAMessagePassesItOn) {
  Router r;
  FakeSubscriber closing;
  FakeSubscriber working;
  closing.refusing = true;
  ASSERT_TRUE(r.subscribe(closing, "1", "jobs", "q").has_value());
  ASSERT_TRUE(r.subscribe(working, "1", "jobs", "q").has_value());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(r.publish(nullptr, true, message("jobs")), 1u);
  EXPECT_EQ(working.got.size(), 50u);
  working.refusing = true;
  EXPECT_EQ(r.publish(nullptr, true, message("jobs")), 0u);
}

TEST(Router, EchoFalseSkipsThePublishersOwnSubscriptions) {
  Router r;
  FakeSubscriber self;
  FakeSubscriber other;
  ASSERT_TRUE(r.subscribe(self, "1", "e", "").has_value());
  ASSERT_TRUE(r.subscribe(self, "2", "e", "q").has_value());
  ASSERT_TRUE(r.subscribe(other, "1", "e", "").has_value());
  EXPECT_EQ(r.publish(&self, false, message("e")), 1u);
  EXPECT_TRUE(self.got.empty());
  EXPECT_EQ(r.publish(&self, true, message("e")), 3u);
  EXPECT_EQ(self.got.size(), 2u);
  // The queue group's only member is the publisher: nobody gets it.
  FakeSubscriber lonely;
  ASSERT_TRUE(r.subscribe(lonely, "1", "solo", "q").has_value());
  EXPECT_EQ(r.publish(&lonely, false, message("solo")), 0u);
}

TEST(Router, ASubscriptionEndsAtItsMax) {
  Router r;
  FakeSubscriber s;
  const auto handle = r.subscribe(s, "7", "m", "");
  ASSERT_TRUE(handle.has_value());
  r.find(*handle)->max = 2;
  for (int i = 0; i < 5; ++i) r.publish(nullptr, true, message("m", std::to_string(i)));
  EXPECT_THAT(s.got, ElementsAre("7:m:0", "7:m:1"));
  EXPECT_THAT(s.finished, ElementsAre("7"));
  EXPECT_EQ(r.find(*handle), nullptr);
  EXPECT_EQ(r.size(), 0u);
  // send_to counts towards the max too.
  const auto one = r.subscribe(s, "8", "reply", "");
  ASSERT_TRUE(one.has_value());
  r.find(*one)->max = 1;
  EXPECT_TRUE(r.send_to(*one, message("reply", "503")));
  EXPECT_EQ(r.find(*one), nullptr);
  EXPECT_FALSE(r.send_to(*one, message("reply")));
}

TEST(Router, UnsubscribeRemovesOnlyThatSubscription) {
  Router r;
  FakeSubscriber s;
  const auto a = r.subscribe(s, "1", "x", "");
  const auto b = r.subscribe(s, "2", "x", "");
  ASSERT_TRUE(a && b);
  r.unsubscribe(*a);
  r.unsubscribe(*a);  // twice: nothing
  EXPECT_EQ(r.publish(nullptr, true, message("x")), 1u);
  EXPECT_THAT(s.got, ElementsAre("2:x:p"));
}

TEST(Router, ReportsInterestAndItsChanges) {
  Router r;
  FakeSubscriber a;
  std::vector<std::string> changes;
  r.on_interest_change = [&](std::string_view subject) { changes.emplace_back(subject); };
  EXPECT_FALSE(r.has_interest("push.out"));
  auto plain = r.subscribe(a, "1", "push.*", "");
  ASSERT_TRUE(plain.has_value());
  EXPECT_TRUE(r.has_interest("push.out"));
  EXPECT_FALSE(r.has_interest("push.out.more"));
  EXPECT_FALSE(r.has_interest("push.*"));  // not a subject one publishes to
  auto queued = r.subscribe(a, "2", "crew.out", "crew");
  ASSERT_TRUE(queued.has_value());
  EXPECT_TRUE(r.has_interest("crew.out"));
  r.unsubscribe(*plain);
  EXPECT_FALSE(r.has_interest("push.out"));
  // UNSUB with a max: removed after its last message, and reported.
  r.find(*queued)->max = 1;
  EXPECT_EQ(r.publish_to("crew.out", message("crew.out")), 1u);
  EXPECT_FALSE(r.has_interest("crew.out"));
  EXPECT_THAT(changes, ElementsAre("push.*", "crew.out", "push.*", "crew.out"));
}

}  // namespace
}  // namespace loft::natsport
