// A topic's stream subjects (set, overlap refused, index lookups, publishes held to them) and
// purges (before / keep / everything, groups moved up), over the memory store and the RocksDB
// store: what a callback confirmed is still there after a restart.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "support/broker_backends.hpp"
#include "support/groups_harness.hpp"

namespace loft::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::wait;

template <class Backend>
class TopicSubjects : public ::testing::Test {
 protected:
  void SetUp() override { restart(); }

  // Stops the broker (if any) and opens a new one over the same data.
  void restart() { testing::reopen(broker_, backend_); }

  Result<TopicInfo> create(const std::string& name, std::vector<std::string> subjects = {}) {
    TopicSettings settings;
    settings.subjects = std::move(subjects);
    return wait<TopicInfo>(
        [&](auto done) { broker_->create_topic(name, std::move(settings), std::move(done)); });
  }
  Result<TopicInfo> set(const std::string& name, std::vector<std::string> subjects) {
    return wait<TopicInfo>([&](auto done) {
      broker_->set_topic_subjects(name, std::move(subjects), std::move(done));
    });
  }
  Result<Appended> publish(const std::string& topic, const std::vector<std::string>& subjects) {
    std::vector<Message> batch;
    for (const auto& s : subjects) {
      Message m;
      m.subject = s;
      m.payload = "p" + std::to_string(batch.size());
      batch.push_back(std::move(m));
    }
    return wait<Appended>(
        [&](auto done) { broker_->publish(topic, std::move(batch), std::move(done)); });
  }
  // Publishes `n` messages of `size` payload bytes each, without subjects.
  void fill(const std::string& topic, std::size_t n, std::size_t size) {
    std::vector<Message> batch(n);
    for (auto& m : batch) m.payload.assign(size, 'x');
    ASSERT_TRUE(wait<Appended>(
        [&](auto done) { broker_->publish(topic, std::move(batch), std::move(done)); }));
  }
  Result<PurgeResult> purge(const std::string& topic, PurgeRequest req) {
    return wait<PurgeResult>([&](auto done) { broker_->purge_topic(topic, req, std::move(done)); });
  }
  std::vector<std::uint64_t> stored(const std::string& topic) {
    std::vector<std::uint64_t> out;
    const auto r = broker_->fetch(topic, Offset{0}, {100'000, std::size_t{1} << 30});
    EXPECT_TRUE(r);
    if (!r) return out;
    for (const auto& m : r->messages) out.push_back(m.offset.value);
    return out;
  }
  std::optional<std::string> topic_for(std::string_view subject) {
    return broker_->topic_for_subject(subject);
  }

  Backend backend_;
  std::unique_ptr<Broker> broker_;
};

TYPED_TEST_SUITE(TopicSubjects, testing::BrokerBackends, testing::BrokerBackendNames);

std::vector<std::string> subjects(std::initializer_list<const char*> list) {
  return {list.begin(), list.end()};
}

TYPED_TEST(TopicSubjects, SubjectsAreSetAtCreationOrLaterAndSurviveARestart) {
  const auto created = this->create("orders", subjects({"orders.*", "shipments.eu"}));
  ASSERT_TRUE(created) << created.error().to_string();
  EXPECT_EQ(created->subjects, subjects({"orders.*", "shipments.eu"}));
  ASSERT_TRUE(this->create("plain"));
  EXPECT_THAT(this->broker_->describe_topic("plain")->subjects, IsEmpty());
  const auto changed = this->set("plain", subjects({"plain.>"}));
  ASSERT_TRUE(changed) << changed.error().to_string();
  EXPECT_EQ(changed->subjects, subjects({"plain.>"}));

  this->restart();
  EXPECT_EQ(this->broker_->describe_topic("orders")->subjects,
            subjects({"orders.*", "shipments.eu"}));
  EXPECT_EQ(this->broker_->describe_topic("plain")->subjects, subjects({"plain.>"}));
  EXPECT_EQ(this->topic_for("orders.new"), "orders");
  EXPECT_EQ(this->topic_for("shipments.eu"), "orders");
  EXPECT_EQ(this->topic_for("plain.a.b"), "plain");
  EXPECT_EQ(this->topic_for("orders.new.late"), std::nullopt);

  // Cleared: no subjects, and nothing captured any more, after a restart too.
  ASSERT_TRUE(this->set("plain", {}));
  this->restart();
  EXPECT_THAT(this->broker_->describe_topic("plain")->subjects, IsEmpty());
  EXPECT_EQ(this->topic_for("plain.a.b"), std::nullopt);
}

TYPED_TEST(TopicSubjects, TopicForSubjectFollowsEveryChange) {
  ASSERT_TRUE(this->create("a", subjects({"x.literal", "x.*.wild"})));
  ASSERT_TRUE(this->create("b"));
  EXPECT_EQ(this->topic_for("x.literal"), "a");
  EXPECT_EQ(this->topic_for("x.1.wild"), "a");
  EXPECT_EQ(this->topic_for("x.other"), std::nullopt);
  EXPECT_EQ(this->topic_for("b"), std::nullopt) << "a topic's name is not a subject of it";
  // Moved from a to b: a's are released first, then b may take them.
  EXPECT_EQ(this->set("b", subjects({"x.literal"})).error().code, Errc::subjects_overlap);
  ASSERT_TRUE(this->set("a", subjects({"x.*.wild"})));
  ASSERT_TRUE(this->set("b", subjects({"x.literal"})));
  EXPECT_EQ(this->topic_for("x.literal"), "b");
  EXPECT_EQ(this->topic_for("x.2.wild"), "a");
  // A deleted topic captures nothing; its subjects are free again.
  ASSERT_TRUE(wait<void>([&](auto done) { this->broker_->delete_topic("a", std::move(done)); }));
  EXPECT_EQ(this->topic_for("x.2.wild"), std::nullopt);
  EXPECT_EQ(this->create("c", subjects({"x.>"})).error().code, Errc::subjects_overlap);
  ASSERT_TRUE(this->set("b", {}));
  ASSERT_TRUE(this->create("c", subjects({"x.>"})));
  EXPECT_EQ(this->topic_for("x.2.wild"), "c");
  EXPECT_EQ(this->topic_for("x.literal"), "c");
}

TYPED_TEST(TopicSubjects, OverlapIsRefusedNamingTheOtherTopicAndChangesNothing) {
  ASSERT_TRUE(this->create("orders", subjects({"orders.*"})));
  const auto clash = this->create("eu", subjects({"*.eu"}));
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, Errc::subjects_overlap);
  EXPECT_THAT(clash.error().detail, HasSubstr("topic 'orders'"));
  EXPECT_THAT(clash.error().detail, HasSubstr("'*.eu'"));
  EXPECT_FALSE(this->broker_->describe_topic("eu")) << "not created";
  ASSERT_TRUE(this->create("eu"));
  EXPECT_EQ(this->set("eu", subjects({"eu.x", "orders.>"})).error().code, Errc::subjects_overlap);
  EXPECT_THAT(this->broker_->describe_topic("eu")->subjects, IsEmpty());
  // A topic's own filters may overlap each other, and a set that keeps them is fine.
  ASSERT_TRUE(this->set("orders", subjects({"orders.*", "orders.eu", "orders.>"})));
  // Two requests in one commit: the second sees the first.
  auto first = std::make_shared<std::promise<Result<TopicInfo>>>();
  auto second = std::make_shared<std::promise<Result<TopicInfo>>>();
  TopicSettings s1;
  s1.subjects = subjects({"new.>"});
  TopicSettings s2;
  s2.subjects = subjects({"new.a"});
  this->broker_->create_topic("n1", s1, [first](auto r) { first->set_value(std::move(r)); });
  this->broker_->create_topic("n2", s2, [second](auto r) { second->set_value(std::move(r)); });
  EXPECT_TRUE(first->get_future().get());
  const auto r2 = second->get_future().get();
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, Errc::subjects_overlap);
  EXPECT_THAT(r2.error().detail, HasSubstr("topic 'n1'"));
}

TYPED_TEST(TopicSubjects, InvalidSubjectsAreRefusedBeforeTheWriter) {
  ASSERT_TRUE(this->create("t"));
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {""}, {"a..b"}, {"a.>.b"}, {"a b"}, {"ok", "ok"}, {std::string(1025, 'a')}}) {
    const auto r = this->set("t", bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::invalid_subject) << bad.front();
  }
  std::vector<std::string> many;
  for (std::size_t i = 0; i <= kMaxTopicSubjects; ++i) many.push_back("s" + std::to_string(i));
  EXPECT_EQ(this->set("t", many).error().code, Errc::invalid_subject);
  many.pop_back();
  EXPECT_TRUE(this->set("t", many));
  EXPECT_EQ(this->set("missing", subjects({"m"})).error().code, Errc::topic_not_found);
  EXPECT_EQ(this->create("bad", subjects({"x.>.y"})).error().code, Errc::invalid_subject);
}

TYPED_TEST(TopicSubjects, APublishOutsideTheTopicsSubjectsIsRefusedWhole) {
  ASSERT_TRUE(this->create("orders", subjects({"orders.*"})));
  const auto ok = this->publish("orders", {"orders.eu", "", "orders.us"});
  ASSERT_TRUE(ok) << ok.error().to_string();
  const auto refused = this->publish("orders", {"orders.eu", "orders.eu.late"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::invalid_subject);
  EXPECT_THAT(refused.error().detail, HasSubstr("message 1 subject 'orders.eu.late'"));
  EXPECT_THAT(this->stored("orders"), ElementsAre(0, 1, 2)) << "nothing of it stored";
  // Without subjects, a topic takes any.
  ASSERT_TRUE(this->create("any"));
  EXPECT_TRUE(this->publish("any", {"whatever.x"}));
}

TYPED_TEST(TopicSubjects, PurgeEverythingBeforeAndKeepAndSurviveARestart) {
  ASSERT_TRUE(this->create("t"));
  this->fill("t", 20, 10);
  // before: offsets below it.
  auto r = this->purge("t", PurgeRequest{Offset{5}, std::nullopt});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, (PurgeResult{5, Offset{5}}));
  auto t = this->broker_->describe_topic("t");
  EXPECT_EQ(t->first_offset, Offset{5});
  EXPECT_EQ(t->messages, 15u);
  EXPECT_EQ(t->bytes, 150u);
  // Below the first offset already: nothing.
  EXPECT_EQ(*this->purge("t", PurgeRequest{Offset{3}, std::nullopt}), (PurgeResult{0, Offset{5}}));
  // keep: the newest N.
  r = this->purge("t", PurgeRequest{std::nullopt, 4});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, (PurgeResult{11, Offset{16}}));
  EXPECT_EQ(this->broker_->describe_topic("t")->bytes, 40u);
  EXPECT_EQ(*this->purge("t", PurgeRequest{std::nullopt, 10}), (PurgeResult{0, Offset{16}}));
  this->restart();
  EXPECT_THAT(this->stored("t"), ElementsAre(16, 17, 18, 19));
  t = this->broker_->describe_topic("t");
  EXPECT_EQ(t->first_offset, Offset{16});
  EXPECT_EQ(t->messages, 4u);
  EXPECT_EQ(t->bytes, 40u);
  // Neither: everything; offsets go on from where they were.
  r = this->purge("t", PurgeRequest{});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, (PurgeResult{4, Offset{20}}));
  this->restart();
  EXPECT_THAT(this->stored("t"), IsEmpty());
  t = this->broker_->describe_topic("t");
  EXPECT_EQ(t->first_offset, Offset{20});
  EXPECT_EQ(t->next_offset, Offset{20});
  EXPECT_EQ(t->messages, 0u);
  EXPECT_EQ(t->bytes, 0u);
  this->fill("t", 1, 3);
  EXPECT_THAT(this->stored("t"), ElementsAre(20));
  // before past the end: everything; keep 0: everything.
  EXPECT_EQ(*this->purge("t", PurgeRequest{Offset{1000}, std::nullopt}),
            (PurgeResult{1, Offset{21}}));
  this->fill("t", 2, 3);
  EXPECT_EQ(*this->purge("t", PurgeRequest{std::nullopt, 0}), (PurgeResult{2, Offset{23}}));
}

TYPED_TEST(TopicSubjects, PurgeRefusesBadRequests) {
  EXPECT_EQ(this->purge("missing", {}).error().code, Errc::topic_not_found);
  EXPECT_EQ(this->purge("bad name", {}).error().code, Errc::invalid_name);
  ASSERT_TRUE(this->create("t"));
  EXPECT_EQ(this->purge("t", PurgeRequest{Offset{1}, 1}).error().code, Errc::invalid_request);
  EXPECT_EQ(*this->purge("t", {}), (PurgeResult{0, Offset{0}})) << "an empty topic";
}

// A partial purge of a big topic while others publish to it: the counts stay exact.
TYPED_TEST(TopicSubjects, APartialPurgeDuringPublishesKeepsTheCountsExact) {
  ASSERT_TRUE(this->create("t"));
  this->fill("t", 3000, 7);
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    while (!stop) this->fill("t", 10, 7);
  });
  const auto r = this->purge("t", PurgeRequest{Offset{2500}, std::nullopt});
  stop = true;
  producer.join();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, (PurgeResult{2500, Offset{2500}}));
  const auto t = this->broker_->describe_topic("t");
  EXPECT_EQ(t->messages, t->next_offset.value - 2500);
  EXPECT_EQ(t->bytes, 7 * t->messages);
  EXPECT_EQ(this->stored("t").size(), t->messages);
}

// A group below the purged range moves up to the new first offset, as after retention.
TEST(TopicPurge, AGroupBelowThePurgeMovesUp) {
  using testing::FakeSubscriber;
  using testing::Loop;
  const TimePoint now{};
  Loop loop;
  Options o;
  o.retention_interval = std::chrono::milliseconds{0};
  auto b = Broker::open(storage::make_memory_store(), std::move(o));
  ASSERT_TRUE(b);
  auto& broker = **b;
  Groups groups(broker, GroupDefaults{}, [&](std::function<void()> f) { loop.post(std::move(f)); });
  groups.load();
  broker.set_topic_listener([&](std::vector<TopicEvent> events) {
    loop.post([&, events = std::move(events)] { groups.on_topic_events(events, now); });
  });
  ASSERT_TRUE(wait<TopicInfo>([&](auto done) { broker.create_topic("t", std::move(done)); }));
  std::vector<Message> batch(10);
  for (auto& m : batch) m.payload = "x";
  ASSERT_TRUE(wait<Appended>([&](auto done) { broker.publish("t", batch, std::move(done)); }));
  CreateGroupRequest req;
  req.topic = "t";
  req.group = "g";
  std::optional<Result<GroupInfo>> created;
  groups.create_group(std::move(req), now, [&](Result<GroupInfo> r) { created = std::move(r); });
  ASSERT_TRUE(loop.run_until([&] { return created.has_value(); }));
  ASSERT_TRUE(*created);
  EXPECT_EQ(groups.describe_group("t", "g")->lag, 10u);

  ASSERT_TRUE(wait<PurgeResult>([&](auto done) {
    broker.purge_topic("t", PurgeRequest{Offset{7}, std::nullopt}, std::move(done));
  }));
  loop.run_ready();
  EXPECT_EQ(groups.describe_group("t", "g")->lag, 3u);
  FakeSubscriber who;
  std::optional<Result<Subscribed>> sub;
  groups.subscribe(SubscribeRequest{"t", "g", {}, 100, {}}, &who, now,
                   [&](Result<Subscribed> r) { sub = std::move(r); });
  ASSERT_TRUE(loop.run_until([&] { return sub.has_value() && !who.received.empty(); }));
  loop.run_ready();
  std::vector<std::uint64_t> got;
  for (const auto& m : who.received) got.push_back(m.offset);
  EXPECT_THAT(got, ElementsAre(7, 8, 9));
  groups.write_all_on_stop();
  broker.stop();
}

}  // namespace
}  // namespace loft::broker
