// Deleting single messages (Broker::delete_messages) and the purge by subject built on it,
// over the memory store and a fake clock: holes that reads skip, exact message and byte
// counts, the first offset moving up, retention and purges counting messages across holes,
// and groups that never deliver a deleted message (docs/semantics.md, "Deleted messages").

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "support/broker_backends.hpp"
#include "support/groups_harness.hpp"

namespace loft::broker {
namespace {

using ::testing::ElementsAre;
using testing::FakeSubscriber;
using testing::Loop;
using testing::wait;

const TimePoint kNow{};

Options options() {
  Options o;
  o.now_ms = [] { return std::int64_t{1'700'000'000'000}; };
  o.retention_interval = std::chrono::milliseconds{0};
  o.auto_create_topics = true;  // the tests publish into topics they name
  return o;
}

std::unique_ptr<Broker> open_broker() {
  auto b = Broker::open(storage::make_memory_store(), options());
  EXPECT_TRUE(b.has_value());
  return std::move(*b);
}

// Publishes one message per subject, each with a 4-byte payload.
void publish(Broker& b, const std::string& topic, const std::vector<std::string>& subjects) {
  std::vector<Message> batch;
  for (const auto& s : subjects) {
    Message m;
    m.subject = s;
    m.payload = "pppp";
    batch.push_back(std::move(m));
  }
  auto r = wait<Appended>([&](auto done) { b.publish(topic, std::move(batch), std::move(done)); });
  ASSERT_TRUE(r) << r.error().to_string();
}

Result<DeleteResult> erase(Broker& b, const std::string& topic, std::vector<std::uint64_t> at) {
  std::vector<Offset> offsets;
  for (const auto o : at) offsets.push_back(Offset{o});
  return wait<DeleteResult>(
      [&](auto done) { b.delete_messages(topic, std::move(offsets), std::move(done)); });
}

Result<PurgeResult> purge_subject(Broker& b, const std::string& topic, SubjectPurgeRequest req) {
  return wait<PurgeResult>(
      [&](auto done) { b.purge_subject(topic, std::move(req), std::move(done)); });
}

std::vector<std::uint64_t> stored_offsets(Broker& b, const std::string& topic) {
  std::vector<std::uint64_t> out;
  const auto r = b.fetch(topic, Offset{0}, {100'000, std::size_t{1} << 30});
  if (!r) return out;
  for (const auto& m : r->messages) out.push_back(m.offset.value);
  return out;
}

TEST(BrokerDelete, LeavesHolesThatReadsSkipAndKeepsTheCountsExact) {
  auto b = open_broker();
  publish(*b, "t", std::vector<std::string>(10, "s"));  // 10 messages of 5 bytes
  // Offsets out of order, repeated, one past the end: the two stored ones go.
  auto r = erase(*b, "t", {5, 2, 5, 20});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, (DeleteResult{2, Offset{0}}));
  auto t = b->describe_topic("t");
  EXPECT_EQ(t->messages, 8u);
  EXPECT_EQ(t->bytes, 40u);
  EXPECT_EQ(t->first_offset, Offset{0});
  EXPECT_EQ(t->next_offset, Offset{10});
  EXPECT_THAT(stored_offsets(*b, "t"), ElementsAre(0, 1, 3, 4, 6, 7, 8, 9));
  // Deleting a hole again removes nothing; the first messages going moves the first offset
  // past them and the hole after them.
  EXPECT_EQ(*erase(*b, "t", {2}), (DeleteResult{0, Offset{0}}));
  EXPECT_EQ(*erase(*b, "t", {0, 1}), (DeleteResult{2, Offset{3}}));
  t = b->describe_topic("t");
  EXPECT_EQ(t->messages, 6u);
  EXPECT_EQ(t->first_offset, Offset{3});
  // Deleting everything leaves the topic empty at its end, as a purge does.
  EXPECT_EQ(*erase(*b, "t", {3, 4, 6, 7, 8, 9}), (DeleteResult{6, Offset{10}}));
  t = b->describe_topic("t");
  EXPECT_EQ(t->messages, 0u);
  EXPECT_EQ(t->bytes, 0u);
  EXPECT_EQ(t->first_offset, Offset{10});
  publish(*b, "t", {"s"});
  EXPECT_THAT(stored_offsets(*b, "t"), ElementsAre(10));
  // Bad requests.
  EXPECT_EQ(erase(*b, "t", {}).error().code, Errc::invalid_request);
  EXPECT_EQ(erase(*b, "t", std::vector<std::uint64_t>(kMaxDeleteOffsets + 1, 1)).error().code,
            Errc::invalid_request);
  EXPECT_EQ(erase(*b, "nope", {1}).error().code, Errc::topic_not_found);
}

TEST(BrokerDelete, RetentionAndPurgeKeepCountMessagesNotOffsets) {
  auto b = open_broker();
  publish(*b, "t", std::vector<std::string>(10, "s"));
  ASSERT_TRUE(erase(*b, "t", {1, 2}));  // 8 messages in offsets 0..9
  RetentionChange limit;
  limit.max_messages = 5;
  ASSERT_TRUE(wait<TopicInfo>([&](auto done) { b->alter_topic("t", limit, std::move(done)); }));
  EXPECT_EQ(b->run_retention_pass(), 3u) << "0, 3 and 4 go; 5 messages stay";
  EXPECT_THAT(stored_offsets(*b, "t"), ElementsAre(5, 6, 7, 8, 9));
  EXPECT_EQ(b->describe_topic("t")->messages, 5u);
  EXPECT_EQ(b->run_retention_pass(), 0u);

  publish(*b, "u", std::vector<std::string>(10, "s"));
  ASSERT_TRUE(erase(*b, "u", {7, 8}));
  PurgeRequest keep;
  keep.keep = 3;
  auto p = wait<PurgeResult>([&](auto done) { b->purge_topic("u", keep, std::move(done)); });
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->purged, 5u);
  EXPECT_THAT(stored_offsets(*b, "u"), ElementsAre(5, 6, 9));
  EXPECT_EQ(b->describe_topic("u")->messages, 3u);
  PurgeRequest before;
  before.before = Offset{9};
  p = wait<PurgeResult>([&](auto done) { b->purge_topic("u", before, std::move(done)); });
  EXPECT_EQ(p->purged, 2u);
  EXPECT_EQ(b->describe_topic("u")->messages, 1u);
  EXPECT_EQ(b->describe_topic("u")->bytes, 5u);
}

TEST(BrokerDelete, PurgeSubjectRemovesMatchesWithKeepAndBefore) {
  auto b = open_broker();
  // a at even offsets, b at odd ones; offset 4 deleted first.
  std::vector<std::string> subjects;
  for (int i = 0; i < 10; ++i) subjects.push_back(i % 2 == 0 ? "x.a" : "x.b");
  publish(*b, "t", subjects);
  ASSERT_TRUE(erase(*b, "t", {4}));
  SubjectPurgeRequest keep_one{"x.a", std::nullopt, 1};
  auto r = purge_subject(*b, "t", keep_one);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->purged, 3u) << "0, 2 and 6 of a; 8 is kept";
  EXPECT_THAT(stored_offsets(*b, "t"), ElementsAre(1, 3, 5, 7, 8, 9));
  EXPECT_EQ(b->describe_topic("t")->first_offset, Offset{1});
  SubjectPurgeRequest below{"x.*", Offset{7}, std::nullopt};
  r = purge_subject(*b, "t", below);
  EXPECT_EQ(r->purged, 3u);
  EXPECT_EQ(r->first, Offset{7});
  EXPECT_THAT(stored_offsets(*b, "t"), ElementsAre(7, 8, 9));
  r = purge_subject(*b, "t", SubjectPurgeRequest{"x.b", std::nullopt, std::nullopt});
  EXPECT_EQ(r->purged, 2u);
  EXPECT_THAT(stored_offsets(*b, "t"), ElementsAre(8));
  const auto t = b->describe_topic("t");
  EXPECT_EQ(t->messages, 1u);
  EXPECT_EQ(t->first_offset, Offset{8});
  EXPECT_EQ(purge_subject(*b, "t", {"x.a", Offset{1}, 1}).error().code, Errc::invalid_request);
  EXPECT_EQ(purge_subject(*b, "t", {"x..a", std::nullopt, std::nullopt}).error().code,
            Errc::invalid_subject);
  EXPECT_EQ(purge_subject(*b, "nope", {"x", std::nullopt, std::nullopt}).error().code,
            Errc::topic_not_found);
}

// A purge by subject larger than one chunk: every chunk is its own write.
TEST(BrokerDelete, PurgeSubjectGoesInChunks) {
  auto b = open_broker();
  const std::size_t n = 2 * kMaxDeleteOffsets + 10;
  std::vector<std::string> subjects;
  for (std::size_t i = 0; i < n; ++i) {
    subjects.push_back(i % 3 == 0 ? "keep" : "go");
    if (subjects.size() == 1000 || i + 1 == n) {
      publish(*b, "t", subjects);
      subjects.clear();
    }
  }
  const auto before = b->stats().commits;
  auto r = purge_subject(*b, "t", SubjectPurgeRequest{"go", std::nullopt, std::nullopt});
  ASSERT_TRUE(r) << r.error().to_string();
  const std::uint64_t gone = n - (n + 2) / 3;
  EXPECT_EQ(r->purged, gone);
  EXPECT_EQ(b->describe_topic("t")->messages, n - gone);
  EXPECT_GE(b->stats().commits - before, gone / kMaxDeleteOffsets);
}

class GroupsAndDeletes : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = testing::open_with_groups(storage::make_memory_store(), options(), loop_, kNow);
    ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
    broker_ = std::move(opened->broker);
    groups_ = std::move(opened->groups);
  }
  void TearDown() override { testing::close_with_groups(broker_, groups_); }

  void settle_loop() {
    for (std::size_t pumps = 0; pumps < 100000; ++pumps) {
      loop_.run_ready();
      const auto next = groups_->next_deadline();
      if (!next || *next > kNow) return;
      groups_->on_timer(kNow);
    }
  }

  Result<Subscribed> subscribe(FakeSubscriber& who, const std::string& topic,
                               const std::string& filter) {
    SubscribeRequest req{topic, "g", {}, 100, {}};
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

  // Lets `who` take one message at a time, acking each; the offsets, in order.
  std::vector<std::uint64_t> drain(std::uint64_t sub, FakeSubscriber& who) {
    std::vector<std::uint64_t> got;
    for (;;) {
      who.wants = 1;
      groups_->on_ready(&who, kNow);
      settle_loop();
      if (who.received.empty()) return got;
      const auto m = std::move(who.received.front());
      who.received.pop_front();
      got.push_back(m.offset);
      ack(sub, who, m.offset);
    }
  }

  Loop loop_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Groups> groups_;
};

// With and without a filter (which reads ahead of deliveries): a message deleted before the
// group delivers it never comes, not even from what the group read ahead, and the ack of one
// deleted while in flight is taken.
TEST_F(GroupsAndDeletes, ADeletedMessageIsNeverDeliveredAndOneInFlightAcks) {
  for (const std::string filter : {"", "x.>"}) {
    SCOPED_TRACE("filter '" + filter + "'");
    const std::string topic = filter.empty() ? "plain" : "filtered";
    std::vector<std::string> subjects(8, "x.a");
    publish(*broker_, topic, subjects);
    FakeSubscriber who;
    who.wants = 2;
    const auto sub = subscribe(who, topic, filter);
    ASSERT_TRUE(sub);
    ASSERT_EQ(who.received.size(), 2u);
    who.received.clear();
    // One in flight (1), the next ones (read ahead by now), and the last.
    ASSERT_TRUE(erase(*broker_, topic, {1, 2, 3, 7}));
    settle_loop();
    ack(sub->subscription, who, 1);
    ack(sub->subscription, who, 0);
    EXPECT_THAT(drain(sub->subscription, who), ElementsAre(4, 5, 6));
    const auto g = groups_->describe_group(topic, "g");
    ASSERT_TRUE(g);
    EXPECT_EQ(g->ack_floor, 8u);
    EXPECT_EQ(g->lag, 0u);
  }
}

// The first messages deleted while in flight: the group skips past them as it does past a
// trim, and their late acks are answered (not applied), not failed.
TEST_F(GroupsAndDeletes, AnInFlightMessageDeletedAtTheFrontIsSkipped) {
  publish(*broker_, "t", std::vector<std::string>(4, "x.a"));
  FakeSubscriber who;
  who.wants = 1;
  const auto sub = subscribe(who, "t", "");
  ASSERT_TRUE(sub);
  ASSERT_EQ(who.received.size(), 1u);
  who.received.clear();
  ASSERT_TRUE(erase(*broker_, "t", {0, 1}));
  settle_loop();
  SettleRequest req{sub->subscription, SettleAction::ack, false, std::nullopt, {OffsetRun{0, 1}}};
  std::optional<Result<Settled>> settled;
  groups_->settle(req, &who, kNow, [&](Result<Settled> r) { settled = std::move(r); });
  ASSERT_TRUE(loop_.run_until([&] { return settled.has_value(); }));
  EXPECT_TRUE(settled->has_value()) << settled->error().to_string();
  EXPECT_THAT(drain(sub->subscription, who), ElementsAre(2, 3));
  EXPECT_EQ(groups_->describe_group("t", "g")->ack_floor, 4u);
}

}  // namespace
}  // namespace loft::broker
