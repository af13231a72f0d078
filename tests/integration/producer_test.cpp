// A producer that keeps publishing while loftd is killed and restarted ends with every
// message stored exactly once, in its publish order.

#include "loft/client/producer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;

TEST(Producer, KeepsPublishingThroughKillNineWithEveryMessageOnceAndInOrder) {
  TestDaemon d;
  d.start();
  ASSERT_TRUE(d.client()->create_topic("orders"));
  client::ProducerOptions options;
  options.connection.port = d.port();
  options.give_up_after = 60s;
  auto producer = client::Producer::connect(options);
  ASSERT_TRUE(producer) << producer.error().to_string();

  constexpr int kBatches = 300;
  constexpr int kPerBatch = 10;
  std::atomic<int> confirmed{0};
  std::thread killer([&] {
    // Kill twice, at moments chosen by progress, not by time.
    for (const int at : {kBatches / 4, kBatches / 2}) {
      eventually([&] { return confirmed.load() >= at; }, 60s);
      d.kill9();
      d.start(/*same_port=*/true);
    }
  });
  std::vector<std::future<Result<std::vector<client::PublishResult>>>> replies;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<Message> batch;
    for (int i = 0; i < kPerBatch; ++i) {
      Message m;
      m.payload = "p-" + std::to_string(b * kPerBatch + i);
      batch.push_back(std::move(m));
    }
    replies.push_back((*producer)->publish("orders", std::move(batch)));
    // Keep a window of 20 batches in flight.
    if (replies.size() >= 20) {
      auto r = replies[replies.size() - 20].get();
      ASSERT_TRUE(r) << r.error().to_string();
      confirmed.fetch_add(1);
    }
  }
  for (std::size_t i = replies.size() - std::min<std::size_t>(replies.size(), 19);
       i < replies.size(); ++i) {
    auto r = replies[i].get();
    ASSERT_TRUE(r) << r.error().to_string();
    confirmed.fetch_add(1);
  }
  killer.join();
  EXPECT_GE((*producer)->reconnects(), 1u);

  auto c = d.client();
  const auto stored = fetch_all(*c, "orders").value();
  ASSERT_EQ(stored.size(), static_cast<std::size_t>(kBatches * kPerBatch))
      << "each message exactly once";
  for (std::size_t i = 0; i < stored.size(); ++i) {
    ASSERT_EQ(stored[i].message.payload, "p-" + std::to_string(i)) << "in publish order";
    ASSERT_EQ(stored[i].offset.value, i);
  }
}

TEST(Producer, GeneratedIdsHaveTheDocumentedFormatAndFailFastWorks) {
  TestDaemon d;
  d.start();
  ASSERT_TRUE(d.client()->create_topic("t"));
  client::ProducerOptions options;
  options.connection.port = d.port();
  options.give_up_after = 0ms;  // fail fast
  auto producer = client::Producer::connect(options);
  ASSERT_TRUE(producer);
  ASSERT_TRUE((*producer)->publish("t", {Message{}, Message{}}).get());
  const auto stored = d.client()->fetch("t", 0, 10);
  ASSERT_EQ(stored->messages.size(), 2u);
  EXPECT_EQ(stored->messages[0].message.id, (*producer)->id_prefix() + "-1");
  EXPECT_EQ(stored->messages[1].message.id, (*producer)->id_prefix() + "-2");
  EXPECT_EQ((*producer)->id_prefix().size(), 16u);
  d.kill9();
  auto r = (*producer)->publish("t", {Message{}}).get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::connection_error);
}

}  // namespace
}  // namespace loft::testing
