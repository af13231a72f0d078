// Dedup by message id against the real loftd: a repeated id is confirmed with the original's
// offset and stored once, also after a SIGKILL and restart.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <thread>

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

TEST(Dedup, TheSameIdTwiceInOneBatchIsStoredOnce) {
  TestDaemon daemon;
  daemon.start();
  auto c = daemon.client();
  ASSERT_TRUE(c->create_topic("t"));
  const auto r = c->publish("t", {with_id("x", "1"), with_id("y", "2"), with_id("x", "1")});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_FALSE((*r)[0].duplicate);
  EXPECT_TRUE((*r)[2].duplicate);
  EXPECT_EQ((*r)[2].offset, (*r)[0].offset);
  EXPECT_EQ(c->describe_topic("t")->messages, 2u);
}

TEST(Dedup, TwoClientsRacingTheSameIdsStoreEachOnce) {
  TestDaemon daemon;
  daemon.start();
  ASSERT_TRUE(daemon.client()->create_topic("t"));
  constexpr int kIds = 500;
  std::vector<std::map<std::string, std::uint64_t>> seen(2);
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p) {
    threads.emplace_back([&, p] {
      auto c = daemon.client("racer" + std::to_string(p));
      std::vector<std::future<Result<std::vector<client::PublishResult>>>> replies;
      for (int b = 0; b < kIds / 10; ++b) {
        std::vector<Message> batch;
        for (int i = b * 10; i < b * 10 + 10; ++i) {
          batch.push_back(with_id("id-" + std::to_string(i), "v" + std::to_string(i)));
        }
        replies.push_back(c->publish_async("t", std::move(batch)));
      }
      for (int b = 0; b < kIds / 10; ++b) {
        auto r = replies[b].get();
        ASSERT_TRUE(r) << r.error().to_string();
        for (int i = 0; i < 10; ++i) seen[p]["id-" + std::to_string(b * 10 + i)] = (*r)[i].offset;
      }
    });
  }
  for (auto& t : threads) t.join();
  auto c = daemon.client();
  EXPECT_EQ(c->describe_topic("t")->messages, static_cast<std::uint64_t>(kIds));
  // Both racers were told the same offset for every id.
  EXPECT_EQ(seen[0], seen[1]);
}

TEST(Dedup, AfterTheWindowTheSameIdIsStoredAsNew) {
  TestDaemon daemon;
  daemon.start();
  auto c = daemon.client();
  ASSERT_TRUE(c->create_topic("t", 1000, protocol::DedupConflict::duplicate));
  // Taken before the publish: the broker stamps the message between this and the confirm, so
  // the window cannot have passed for the retry below until 1 s after this point.
  const auto published_at = std::chrono::steady_clock::now();
  const auto first = c->publish("t", with_id("once", "1"));
  ASSERT_TRUE(first);
  // Retried until the 1 s window has passed: every earlier retry is a duplicate.
  Result<client::PublishResult> later = fail(Errc::internal_error, "not tried");
  ASSERT_TRUE(eventually(
      [&] {
        later = c->publish("t", with_id("once", "1"));
        return later && !later->duplicate;
      },
      std::chrono::seconds(30)));
  EXPECT_GE(std::chrono::steady_clock::now() - published_at, std::chrono::milliseconds(1000));
  EXPECT_NE(later->offset, first->offset);
  EXPECT_EQ(c->describe_topic("t")->messages, 2u);
}

TEST(Dedup, ConflictModeErrorRefusesTheSameIdWithAnotherPayload) {
  TestDaemon daemon;
  daemon.start();
  auto c = daemon.client();
  ASSERT_TRUE(c->create_topic("strict", 0, protocol::DedupConflict::error));
  ASSERT_TRUE(c->create_topic("lenient"));
  for (const auto* topic : {"strict", "lenient"}) {
    ASSERT_TRUE(c->publish(topic, with_id("k", "original")));
  }
  const auto strict = c->publish("strict", with_id("k", "changed"));
  ASSERT_TRUE(strict) << strict.error().to_string();
  EXPECT_EQ(strict->code, Errc::dedup_conflict);
  const auto same = c->publish("strict", with_id("k", "original"));
  EXPECT_TRUE(same->duplicate);
  const auto lenient = c->publish("lenient", with_id("k", "changed"));
  EXPECT_EQ(lenient->code, Errc::ok);
  EXPECT_TRUE(lenient->duplicate);
  EXPECT_EQ(c->create_topic("bad", 10, protocol::DedupConflict::duplicate).error().code,
            Errc::invalid_request);
}

TEST(Dedup, CliReportsDuplicatesAndIdPrefixMakesImportsRepeatable) {
  TestDaemon daemon;
  daemon.start();
  const auto loft = [&](const std::vector<std::string>& args, const std::string& input = "") {
    return daemon.loft(args, input);
  };
  auto r = loft({"topic", "create", "t", "--dedup-window", "5m", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("\"dedup_window_ms\":300000"));
  EXPECT_EQ(loft({"pub", "t", "hello", "--id", "m1"}).out, "0\n");
  EXPECT_EQ(loft({"pub", "t", "hello", "--id", "m1"}).out, "0 duplicate\n");
  EXPECT_EQ(loft({"pub", "t", "hello", "--id", "m1", "--json"}).out,
            "{\"offset\":0,\"duplicate\":true}\n");
  const std::string input = "a\nb\nc\n";
  r = loft({"pub", "t", "--id-prefix", "import-7"}, input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n2\n3\n");
  r = loft({"pub", "t", "--id-prefix", "import-7"}, input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1 duplicate\n2 duplicate\n3 duplicate\n") << "re-running stores nothing";
  auto c = daemon.client();
  EXPECT_EQ(c->describe_topic("t")->messages, 4u);
  EXPECT_EQ(c->fetch("t", 2, 1)->messages.at(0).message.id, "import-7-2");
  EXPECT_EQ(loft({"topic", "create", "u", "--dedup-window", "forever"}).exit_code, 2);
}

}  // namespace
}  // namespace loft::testing
