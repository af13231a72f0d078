// `loft dlq redrive` against the real loftd: dead letters made by real groups go back to
// their original topic once, byte for byte, without the headers loftd added.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

Message text(std::string payload) {
  Message m;
  m.payload = std::move(payload);
  return m;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class Dlq : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_.start();
    client_ = daemon_.client();
  }

  // Receives all `n` messages of `topic` as group `group`, rejects those in `dead` (they go
  // to the group's dead-letter topic) and acks the others.
  void settle(const std::string& topic, const std::string& group, std::size_t n,
              const std::vector<std::uint64_t>& dead) {
    client::SubscribeOptions o;
    o.topic = topic;
    o.group = group;
    auto s = client_->subscribe(o);
    ASSERT_TRUE(s) << s.error().to_string();
    std::vector<client::DeliveredMessage> got;
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (got.size() < n && std::chrono::steady_clock::now() < until) {
      auto batch = (*s)->receive(100ms, n - got.size());
      ASSERT_TRUE(batch) << batch.error().to_string();
      for (auto& m : *batch) got.push_back(std::move(m));
    }
    ASSERT_EQ(got.size(), n);
    for (const auto& m : got) {
      if (std::find(dead.begin(), dead.end(), m.offset) != dead.end()) {
        ASSERT_TRUE((*s)->reject(m.offset));
      } else {
        ASSERT_TRUE((*s)->ack_confirmed({m.offset}));
      }
    }
    ASSERT_TRUE((*s)->unsubscribe());
  }

  std::vector<StoredMessage> all(const std::string& topic) {
    auto got = client_->fetch(topic, 0, 1000);
    EXPECT_TRUE(got) << got.error().to_string();
    return got ? got->messages : std::vector<StoredMessage>{};
  }

  void wait_for_messages(const std::string& topic, std::uint64_t n) {
    ASSERT_TRUE(eventually([&] {
      auto t = client_->describe_topic(topic);
      return t && t->messages == n;
    })) << topic
        << " never reached " << n << " messages";
  }

  // orders: 3 messages (the first with id, key and headers); billing dead-letters 0 and 1,
  // audit dead-letters 2.
  void make_dead_letters() {
    ASSERT_TRUE(client_->create_topic("orders"));
    Message first = text("order-0");
    first.id = "id-0";
    first.key = "customer-7";
    first.headers = {{"trace", "abc"}, {"bin", std::string("\x00\xff", 2)}};
    ASSERT_TRUE(client_->publish("orders", {first, text("order-1"), text("order-2")}));
    settle("orders", "billing", 3, {0, 1});
    settle("orders", "audit", 3, {2});
    wait_for_messages("orders.dlq", 3);
  }

  TestDaemon daemon_;
  std::unique_ptr<client::Client> client_;
};

Message without_id(Message m) {
  m.id.clear();
  return m;
}

TEST_F(Dlq, RedrivesOneGroupsLettersOnceByteForByte) {
  make_dead_letters();
  auto r = daemon_.loft({"dlq", "redrive", "orders.dlq", "--group", "billing"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "redriven 2, skipped 1\n");
  EXPECT_EQ(r.err, "");

  const auto orders = all("orders");
  ASSERT_EQ(orders.size(), 5u);
  EXPECT_EQ(without_id(orders[3].message), without_id(orders[0].message))
      << "key, headers and payload unchanged";
  EXPECT_EQ(without_id(orders[4].message), without_id(orders[1].message));
  // A new id naming the dead letter (the original's is still known to the topic's dedup).
  EXPECT_TRUE(orders[3].message.id.starts_with("redrive:")) << orders[3].message.id;
  EXPECT_TRUE(orders[3].message.id.ends_with(":id-0")) << orders[3].message.id;
  EXPECT_NE(orders[3].message.id, orders[4].message.id);

  // The redrive group remembers its progress: nothing is redriven twice.
  r = daemon_.loft({"dlq", "redrive", "orders.dlq", "--group", "billing", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"redriven\":0,\"skipped\":0}\n");
  EXPECT_EQ(all("orders").size(), 5u);
  const auto g = client_->describe_group("orders.dlq", "loft-redrive.billing");
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->ack_floor, 3u);

  // Each filter has its own progress, so a run without --group (group loft-redrive) goes
  // through all three letters; billing's two carry the same redrive ids as before, so the
  // topic's dedup answers them as duplicates: only audit's letter is stored.
  r = daemon_.loft({"dlq", "redrive", "orders.dlq", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"redriven\":3,\"skipped\":0}\n");
  const auto after = all("orders");
  ASSERT_EQ(after.size(), 6u);
  EXPECT_EQ(without_id(after[5].message), without_id(orders[2].message));
  r = daemon_.loft({"dlq", "redrive", "orders.dlq"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "redriven 0, skipped 0\n");

  // The help text says so.
  r = daemon_.loft({"--help"});
  EXPECT_THAT(r.out, HasSubstr("dlq redrive DLQ_TOPIC [--group G]"));
  EXPECT_THAT(r.out, HasSubstr("is a duplicate, not a second copy"));
}

TEST_F(Dlq, RedrivesToEachLettersOwnTopic) {
  ASSERT_TRUE(client_->create_topic("a"));
  ASSERT_TRUE(client_->create_topic("b"));
  ASSERT_TRUE(client_->create_topic("shared.dlq"));
  // Hand-made dead letters (as loftd writes them) for two topics, interleaved.
  auto letter = [](std::string topic, std::string payload) {
    Message m = text(std::move(payload));
    m.headers = {{"loft-dlq-topic", std::move(topic)},
                 {"loft-dlq-offset", "0"},
                 {"loft-dlq-group", "g"},
                 {"loft-dlq-attempts", "1"},
                 {"loft-dlq-reason", "rejected"}};
    return m;
  };
  ASSERT_TRUE(client_->publish(
      "shared.dlq", {letter("a", "a1"), letter("a", "a2"), letter("b", "b1"), letter("a", "a3")}));
  const auto r = daemon_.loft({"dlq", "redrive", "shared.dlq", "--group", "g"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "redriven 4, skipped 0\n");
  std::vector<std::string> a;
  for (const auto& m : all("a")) {
    EXPECT_TRUE(m.message.headers.empty());
    a.push_back(m.message.payload);
  }
  EXPECT_EQ(a, (std::vector<std::string>{"a1", "a2", "a3"}));
  ASSERT_EQ(all("b").size(), 1u);
  EXPECT_EQ(without_id(all("b")[0].message), text("b1"));
}

TEST_F(Dlq, ALetterDeadLetteredTwiceGoesBackOneStep) {
  make_dead_letters();
  // A group on the DLQ itself gives up on billing's first letter: orders.dlq.dlq holds it with
  // two sets of loft-dlq-* headers. Redriving it restores it to orders.dlq as it was there.
  settle("orders.dlq", "fixer", 3, {0});
  wait_for_messages("orders.dlq.dlq", 1);
  auto r = daemon_.loft({"dlq", "redrive", "orders.dlq.dlq", "--group", "fixer"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "redriven 1, skipped 0\n");
  const auto dlq = all("orders.dlq");
  ASSERT_EQ(dlq.size(), 4u);
  EXPECT_EQ(without_id(dlq[3].message), without_id(dlq[0].message));
}

TEST_F(Dlq, StopsAtALetterWithoutOriginTopicAfterSettlingTheOnesBefore) {
  ASSERT_TRUE(client_->create_topic("x"));
  ASSERT_TRUE(client_->create_topic("x.dlq"));
  Message good = text("good");
  good.headers = {{"loft-dlq-topic", "x"}, {"loft-dlq-group", "g"}};
  ASSERT_TRUE(client_->publish("x.dlq", {good, text("no origin")}));
  for (int run = 0; run < 2; ++run) {
    const auto r = daemon_.loft({"dlq", "redrive", "x.dlq"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
    EXPECT_THAT(r.err, HasSubstr("offset 1 of 'x.dlq' has no loft-dlq-topic header"));
    ASSERT_EQ(all("x").size(), 1u) << "the good letter is redriven once, on the first run";
  }
}

TEST_F(Dlq, ErrorsAreOneLine) {
  auto r = daemon_.loft({"dlq", "redrive", "nope.dlq"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_THAT(r.err, HasSubstr("topic 'nope.dlq' does not exist"));
  EXPECT_EQ(r.out, "");

  r = daemon_.loft({"dlq", "redrive"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  r = daemon_.loft({"dlq", "replay", "x.dlq"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown dlq command"));
  r = daemon_.loft({"topic", "list", "--group", "g"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--group only applies"));
  r = daemon_.loft({"dlq", "redrive", "x.dlq", "--count", "1"});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace loft::testing
