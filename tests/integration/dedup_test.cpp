// Dedup by message id against the real loftd: a repeated id is confirmed with the original's
// offset and stored once, also after a SIGKILL and restart.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_daemon.hpp"

namespace loft::testing {
namespace {

Message with_id(std::string id, std::string payload) {
  Message m;
  m.id = std::move(id);
  m.payload = std::move(payload);
  return m;
}

TEST(Dedup, SameIdTwiceIsStoredOnceAndConfirmedAsDuplicate) {
  TestDaemon daemon;
  daemon.start();
  auto c = daemon.client();
  ASSERT_TRUE(c->create_topic("orders"));
  const auto first = c->publish("orders", with_id("order-1", "{\"n\":1}"));
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_FALSE(first->duplicate);
  const auto again = c->publish("orders", with_id("order-1", "{\"n\":1}"));
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->code, Errc::ok);
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->offset, first->offset);

  const auto topic = c->describe_topic("orders");
  ASSERT_TRUE(topic);
  EXPECT_EQ(topic->messages, 1u);
  EXPECT_EQ(topic->dedup_window_ms, 7'200'000u);
  const auto fetched = c->fetch("orders", 0);
  ASSERT_TRUE(fetched);
  ASSERT_EQ(fetched->messages.size(), 1u);
  EXPECT_EQ(fetched->messages[0].message.id, "order-1");
}

TEST(Dedup, IdsAreStillKnownAfterSigkillAndRestart) {
  TestDaemon daemon;
  daemon.start();
  std::uint64_t original = 0;
  {
    auto c = daemon.client();
    ASSERT_TRUE(c->create_topic("orders"));
    const auto r = c->publish("orders", {with_id("a", "1"), with_id("b", "2")});
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_EQ(r->size(), 2u);
    original = (*r)[1].offset;
  }
  daemon.kill9();
  daemon.start();
  auto c = daemon.client();
  const auto r = c->publish("orders", {with_id("b", "2"), with_id("c", "3")});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE((*r)[0].duplicate);
  EXPECT_EQ((*r)[0].offset, original);
  EXPECT_FALSE((*r)[1].duplicate);
  EXPECT_EQ((*r)[1].offset, original + 1);
  EXPECT_EQ(c->describe_topic("orders")->messages, 3u);
}

}  // namespace
}  // namespace loft::testing
