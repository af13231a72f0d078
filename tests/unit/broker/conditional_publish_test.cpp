// Conditional publishes (Broker::publish_if: JetStream's Nats-Expected-Last-*), over the memory
// store and the RocksDB store: each condition honoured and refused with what the topic holds,
// racing publishes that expect the same state (at most one passes), duplicates answered without
// the check, and the same answers after a restart (the writer's tails rebuilt from the store).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loft/broker/broker.hpp"
#include "support/broker_backends.hpp"

namespace loft::broker {
namespace {

using ::testing::HasSubstr;
using testing::wait;
using What = ConditionFailure::What;

Message msg(std::string subject, std::string id = {}) {
  Message m;
  m.subject = std::move(subject);
  m.id = std::move(id);
  m.payload = "p";
  return m;
}

PublishConditions last_offset(std::optional<std::uint64_t> o) {
  PublishConditions c;
  c.last_offset = o ? std::optional<Offset>{Offset{*o}} : std::nullopt;
  return c;
}
PublishConditions last_id(std::string id) {
  PublishConditions c;
  c.last_id = std::move(id);
  return c;
}
PublishConditions last_of(std::string subject, std::optional<std::uint64_t> o) {
  PublishConditions c;
  c.last_subject_offset = PublishConditions::SubjectOffset{
      std::move(subject), o ? std::optional<Offset>{Offset{*o}} : std::nullopt};
  return c;
}

template <class Backend>
class ConditionalPublish : public ::testing::Test {
 protected:
  void SetUp() override {
    restart();
    TopicSettings settings;
    settings.subjects = {"orders.>"};
    ASSERT_TRUE(wait<TopicInfo>(
        [&](auto done) { broker_->create_topic("orders", std::move(settings), std::move(done)); }));
  }

  void restart() { testing::reopen(broker_, backend_); }

  Result<Appended> publish(std::vector<Message> batch) {
    return wait<Appended>(
        [&](auto done) { broker_->publish("orders", std::move(batch), std::move(done)); });
  }
  Result<Appended> publish_if(Message m, PublishConditions c) {
    std::vector<Message> batch;
    batch.push_back(std::move(m));
    return wait<Appended>([&](auto done) {
      broker_->publish_if("orders", std::move(batch), std::move(c), std::move(done));
    });
  }
  // The offset a conditional publish got (it must have passed).
  std::uint64_t passed(const Result<Appended>& r) {
    EXPECT_TRUE(r) << r.error().to_string();
    if (!r) return ~std::uint64_t{0};
    EXPECT_FALSE(r->refused) << r->refused->detail;
    EXPECT_EQ(r->results.size(), 1u);
    EXPECT_EQ(r->results.front().code, Errc::ok);
    return r->results.front().offset.value;
  }
  // Why it was refused (it must have been), checking that nothing was stored.
  ConditionFailure refused(const Result<Appended>& r) {
    EXPECT_TRUE(r) << r.error().to_string();
    if (!r || !r->refused) {
      ADD_FAILURE() << "the publish was not refused";
      return {};
    }
    for (const auto& m : r->results) EXPECT_EQ(m.code, Errc::expectation_failed);
    return *r->refused;
  }
  std::uint64_t next_offset() { return broker_->describe_topic("orders")->next_offset.value; }

  Backend backend_;
  std::unique_ptr<Broker> broker_;
};

TYPED_TEST_SUITE(ConditionalPublish, testing::BrokerBackends, testing::BrokerBackendNames);

TYPED_TEST(ConditionalPublish, LastOffsetIsHonouredAndARefusalStoresNothing) {
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu"), last_offset(std::nullopt))), 0u);
  const auto wrong = this->refused(this->publish_if(msg("orders.eu"), last_offset(std::nullopt)));
  EXPECT_EQ(wrong.what, What::last_offset);
  EXPECT_EQ(wrong.offset, Offset{0});
  EXPECT_EQ(wrong.detail, "expected last offset none, the topic's last offset is 0");
  EXPECT_EQ(this->next_offset(), 1u);
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu"), last_offset(0))), 1u);
  EXPECT_EQ(this->refused(this->publish_if(msg("orders.eu"), last_offset(7))).detail,
            "expected last offset 7, the topic's last offset is 1");
  // A purge of everything keeps the last offset (as a stream's last sequence).
  ASSERT_TRUE(wait<PurgeResult>(
      [&](auto done) { this->broker_->purge_topic("orders", {}, std::move(done)); }));
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu"), last_offset(1))), 2u);
}

TYPED_TEST(ConditionalPublish, OfRacingPublishesExpectingTheSameLastOffsetOnlyOnePasses) {
  ASSERT_TRUE(this->publish({msg("orders.eu")}));
  constexpr int kRacers = 16;
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t last = this->next_offset() - 1;
    std::vector<std::future<Result<Appended>>> results;
    std::vector<std::thread> racers;
    for (int i = 0; i < kRacers; ++i) {
      auto promise = std::make_shared<std::promise<Result<Appended>>>();
      results.push_back(promise->get_future());
      racers.emplace_back([&, promise] {
        std::vector<Message> one{msg("orders.eu")};
        this->broker_->publish_if("orders", std::move(one), last_offset(last),
                                  [promise](Result<Appended> r) { promise->set_value(r); });
      });
    }
    for (auto& t : racers) t.join();
    int ok = 0;
    for (auto& f : results) {
      const auto r = f.get();
      ASSERT_TRUE(r) << r.error().to_string();
      if (!r->refused) {
        ok += 1;
        EXPECT_EQ(r->results.front().offset.value, last + 1);
      }
    }
    EXPECT_EQ(ok, 1) << "round " << round;
    EXPECT_EQ(this->next_offset(), last + 2);
  }
}

TYPED_TEST(ConditionalPublish, LastIdIsTheNewestMessageWithAnId) {
  ASSERT_TRUE(this->publish({msg("orders.eu", "a"), msg("orders.us")}));
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu", "b"), last_id("a"))), 2u);
  const auto wrong = this->refused(this->publish_if(msg("orders.eu"), last_id("a")));
  EXPECT_EQ(wrong.what, What::last_id);
  EXPECT_EQ(wrong.id, "b");
  EXPECT_EQ(wrong.detail, "expected last id 'a', the topic's last id is 'b'");
  this->restart();  // rebuilt from the store
  EXPECT_EQ(this->refused(this->publish_if(msg("orders.eu"), last_id("a"))).id, "b");
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu"), last_id("b"))), 3u);
}

TYPED_TEST(ConditionalPublish, LastSubjectOffsetSeesEverySubjectAndSurvivesARestart) {
  ASSERT_TRUE(this->publish({msg("orders.eu"), msg("orders.us"), msg("orders.eu")}));
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu"), last_of("orders.eu", 2))), 3u);
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.us"), last_of("orders.us", 1))), 4u);
  const auto wrong = this->refused(this->publish_if(msg("orders.eu"), last_of("orders.eu", 2)));
  EXPECT_EQ(wrong.what, What::last_subject_offset);
  EXPECT_EQ(wrong.offset, Offset{3});
  EXPECT_TRUE(wrong.known);
  EXPECT_EQ(wrong.detail, "expected last offset 2 of subject 'orders.eu', its last offset is 3");
  // A subject never published: none.
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.jp"), last_of("orders.jp", std::nullopt))),
            5u);
  this->restart();
  EXPECT_EQ(this->refused(this->publish_if(msg("orders.eu"), last_of("orders.eu", 2))).offset,
            Offset{3});
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu"), last_of("orders.eu", 3))), 6u);
  // Purged messages are gone: their subject has no last offset any more.
  ASSERT_TRUE(wait<PurgeResult>(
      [&](auto done) { this->broker_->purge_topic("orders", {}, std::move(done)); }));
  EXPECT_EQ(this->refused(this->publish_if(msg("orders.eu"), last_of("orders.eu", 6))).offset,
            std::nullopt);
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu"), last_of("orders.eu", std::nullopt))),
            7u);
}

TYPED_TEST(ConditionalPublish, ARetryOfAStoredConditionalPublishIsADuplicate) {
  EXPECT_EQ(this->passed(this->publish_if(msg("orders.eu", "x"), last_offset(std::nullopt))), 0u);
  const auto again = this->publish_if(msg("orders.eu", "x"), last_offset(std::nullopt));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->refused);
  EXPECT_TRUE(again->results.front().duplicate);
  EXPECT_EQ(again->results.front().offset, Offset{0});
}

TYPED_TEST(ConditionalPublish, ConditionsAreCheckedInOrderWithPublishesOfTheSameCommit) {
  // Queued back to back without waiting: most land in one commit, and each sees the ones
  // before it.
  std::vector<std::future<Result<Appended>>> results;
  for (std::uint64_t i = 0; i < 50; ++i) {
    auto promise = std::make_shared<std::promise<Result<Appended>>>();
    results.push_back(promise->get_future());
    std::vector<Message> one{msg(i % 2 == 0 ? "orders.eu" : "orders.us")};
    PublishConditions c = i == 0 ? last_offset(std::nullopt) : last_offset(i - 1);
    if (i >= 2) c.last_subject_offset = last_of(one.front().subject, i - 2).last_subject_offset;
    this->broker_->publish_if("orders", std::move(one), std::move(c),
                              [promise](Result<Appended> r) { promise->set_value(r); });
  }
  for (std::uint64_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(this->passed(results[i].get()), i);
  }
}

TYPED_TEST(ConditionalPublish, ASubjectOlderThanTheScanCannotBeCheckedAfterARestart) {
  ASSERT_TRUE(this->publish({msg("orders.old")}));
  std::vector<Message> many(kConditionScan, msg("orders.new"));
  ASSERT_TRUE(this->publish(std::move(many)));
  // Nothing asked before the restart either: the writer learns the topic from its newest
  // kConditionScan messages, which do not hold orders.old.
  this->restart();
  const auto unknown = this->refused(this->publish_if(msg("orders.old"), last_of("orders.old", 0)));
  EXPECT_FALSE(unknown.known);
  EXPECT_THAT(unknown.detail, HasSubstr("unknown"));
  EXPECT_EQ(
      this->passed(this->publish_if(msg("orders.new"), last_of("orders.new", kConditionScan))),
      kConditionScan + 1);
}

TYPED_TEST(ConditionalPublish, AnInvalidExpectedSubjectFailsAtOnce) {
  const auto r = this->publish_if(msg("orders.eu"), last_of("orders.*", 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_subject);
}

}  // namespace
}  // namespace loft::broker
