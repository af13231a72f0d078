// Consumer groups against the real loftd: sharing, fan-out, redelivery, dead letters,
// restarts, flow control.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "loft/protocol/codec.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

Message text(std::string payload) {
  Message m;
  m.payload = std::move(payload);
  return m;
}

void publish_n(client::Client& c, const std::string& topic, int n, int from = 0) {
  std::vector<Message> batch;
  for (int i = from; i < from + n; ++i) batch.push_back(text("m" + std::to_string(i)));
  auto r = c.publish(topic, std::move(batch));
  ASSERT_TRUE(r) << r.error().to_string();
}

client::SubscribeOptions sub_options(std::string topic, std::string group) {
  client::SubscribeOptions o;
  o.topic = std::move(topic);
  o.group = std::move(group);
  return o;
}

// A plain TCP connection that speaks just enough of the protocol to subscribe, then never
// reads its socket again.
class StuckConsumer {
 public:
  StuckConsumer(std::uint16_t port, protocol::Subscribe subscribe) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string out;
    protocol::encode(protocol::Frame{1, protocol::Hello{1, 1, "stuck"}}, out);
    protocol::encode(protocol::Frame{2, std::move(subscribe)}, out, 1);  // as HELLO agreed
    EXPECT_EQ(::send(fd_, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  }
  ~StuckConsumer() { ::close(fd_); }

 private:
  int fd_ = -1;
};

// Receives until `n` messages arrived or `deadline` passed; acks each if `ack`.
std::vector<client::DeliveredMessage> receive_n(client::Subscription& s, std::size_t n,
                                                bool ack = true,
                                                std::chrono::milliseconds deadline = 30s) {
  std::vector<client::DeliveredMessage> out;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (out.size() < n && std::chrono::steady_clock::now() < until) {
    auto got = s.receive(100ms, n - out.size());
    if (!got) {
      ADD_FAILURE() << got.error().to_string();
      break;
    }
    for (auto& m : *got) {
      if (ack) s.ack(m.offset);
      out.push_back(std::move(m));
    }
  }
  if (ack) {
    EXPECT_TRUE(s.flush());
  }
  return out;
}

TEST(Groups, TwoConsumersInOneGroupSplitTheStreamWithNoOverlapAndNoGap) {
  TestDaemon d;
  d.start();
  auto producer = d.client("producer");
  ASSERT_TRUE(producer->create_topic("jobs"));
  auto c1 = d.client("c1");
  auto c2 = d.client("c2");
  auto o = sub_options("jobs", "workers");
  o.max_in_flight = 10;
  auto s1 = c1->subscribe(o);
  ASSERT_TRUE(s1) << s1.error().to_string();
  EXPECT_TRUE((*s1)->created_group());
  auto s2 = c2->subscribe(o);
  ASSERT_TRUE(s2);
  EXPECT_FALSE((*s2)->created_group());

  constexpr int kMessages = 400;
  for (int b = 0; b < 4; ++b) publish_n(*producer, "jobs", kMessages / 4, b * kMessages / 4);

  std::map<std::uint64_t, int> seen;  // offset -> how many times
  std::size_t got1 = 0, got2 = 0;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (seen.size() < kMessages && std::chrono::steady_clock::now() < until) {
    for (auto* s : {s1->get(), s2->get()}) {
      auto batch = s->receive(20ms, 5);
      ASSERT_TRUE(batch);
      for (const auto& m : *batch) {
        ++seen[m.offset];
        EXPECT_EQ(m.attempt, 1u);
        EXPECT_EQ(m.message.payload, "m" + std::to_string(m.offset));
        s->ack(m.offset);
        (s == s1->get() ? got1 : got2) += 1;
      }
      ASSERT_TRUE(s->flush());
    }
  }
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kMessages));
  for (const auto& [offset, count] : seen) EXPECT_EQ(count, 1) << "offset " << offset;
  EXPECT_EQ(seen.rbegin()->first, kMessages - 1u);
  EXPECT_GT(got1, 0u) << "both consumers took part";
  EXPECT_GT(got2, 0u) << "both consumers took part";
  EXPECT_TRUE(eventually([&] { return producer->describe_group("jobs", "workers")->lag == 0; }));
}

TEST(Groups, EveryGroupGetsEveryMessage) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("events"));
  publish_n(*c, "events", 50);
  auto billing = c->subscribe(sub_options("events", "billing"));
  auto audit_client = d.client("audit");
  auto audit = audit_client->subscribe(sub_options("events", "audit"));
  ASSERT_TRUE(billing && audit);
  const auto a = receive_n(**billing, 50);
  const auto b = receive_n(**audit, 50);
  ASSERT_EQ(a.size(), 50u);
  ASSERT_EQ(b.size(), 50u);
  for (std::size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(a[i].offset, i) << "first deliveries go out in offset order";
    EXPECT_EQ(b[i].offset, i);
  }
  const auto groups = c->list_groups("events");
  ASSERT_TRUE(groups);
  ASSERT_EQ(groups->size(), 2u);
  EXPECT_EQ((*groups)[0].group, "audit");
  EXPECT_EQ((*groups)[1].group, "billing");
}

TEST(Groups, NewMessagesArePushedWithoutPolling) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  auto consumer = d.client("consumer");
  auto s = consumer->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(s);
  // Subscribed first, published after: the delivery follows the publish.
  publish_n(*c, "t", 1);
  const auto got = receive_n(**s, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message.payload, "m0");
}

TEST(Groups, MessagesInFlightToAConsumerThatDiesGoToAnotherWithAttemptTwo) {
  TestDaemon d;
  d.start();
  auto producer = d.client("producer");
  ASSERT_TRUE(producer->create_topic("t"));
  publish_n(*producer, "t", 5);
  auto doomed_client = d.client("doomed");
  auto doomed = doomed_client->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(doomed);
  const auto taken = receive_n(**doomed, 5, /*ack=*/false);
  ASSERT_EQ(taken.size(), 5u);
  auto survivor_client = d.client("survivor");
  auto survivor = survivor_client->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(survivor);
  // Everything is in flight to `doomed`: the survivor gets nothing until it goes.
  auto none = (*survivor)->receive(200ms);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  doomed->reset();
  doomed_client->close();
  const auto again = receive_n(**survivor, 5);
  ASSERT_EQ(again.size(), 5u);
  for (std::size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].offset, i);
    EXPECT_EQ(again[i].attempt, 2u);
  }
  EXPECT_TRUE(eventually([&] { return producer->describe_group("t", "g")->redelivered == 5; }));
}

TEST(Groups, MessagesInFlightToAKilledConsumerGoToAnotherWithAttemptTwo) {
  TestDaemon d;
  d.start();
  auto producer = d.client("producer");
  ASSERT_TRUE(producer->create_topic("t"));
  publish_n(*producer, "t", 5);
  {
    protocol::Subscribe sub;
    sub.topic = "t";
    sub.group = "g";
    StuckConsumer killed(d.port(), sub);
    ASSERT_TRUE(eventually([&] {
      auto g = producer->describe_group("t", "g");
      return g && g->in_flight == 5;
    }));
  }  // its socket closes with no goodbye and unread data, as when its process is killed
  auto survivor_client = d.client("survivor");
  auto survivor = survivor_client->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(survivor);
  const auto again = receive_n(**survivor, 5);
  ASSERT_EQ(again.size(), 5u);
  for (std::size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].offset, i);
    EXPECT_EQ(again[i].attempt, 2u);
  }
}

TEST(Groups, AGroupCanStartAtATimestamp) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  publish_n(*c, "t", 3);
  const auto first = c->fetch("t", 0, 3);
  ASSERT_TRUE(first);
  const std::int64_t t0 = first->messages.back().timestamp_ms;
  // The next publish gets a later publish time: wait for the wall clock to pass t0.
  ASSERT_TRUE(eventually([&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() > t0;
  }));
  publish_n(*c, "t", 2, 3);
  const auto later = c->create_group(
      "t", "later", {protocol::StartKind::timestamp, static_cast<std::uint64_t>(t0 + 1)});
  ASSERT_TRUE(later) << later.error().to_string();
  EXPECT_EQ(later->ack_floor, 3u);
  const auto all = c->create_group("t", "all", {protocol::StartKind::timestamp, 0});
  EXPECT_EQ(all->ack_floor, 0u);
  const auto future = c->create_group(
      "t", "future", {protocol::StartKind::timestamp, static_cast<std::uint64_t>(t0 + 86'400'000)});
  EXPECT_EQ(future->ack_floor, 5u);
}

TEST(Groups, NackWithDelayRedeliversAfterTheDelayNotBefore) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  publish_n(*c, "t", 1);
  auto s = c->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(s);
  const auto first = receive_n(**s, 1, false);
  ASSERT_EQ(first.size(), 1u);
  const auto nacked_at = std::chrono::steady_clock::now();
  auto r = (*s)->nack(0, 1500ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->applied, 1u);
  const auto again = receive_n(**s, 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - nacked_at, 1500ms);
  EXPECT_EQ(again[0].attempt, 2u);
}

TEST(Groups, ExtendPostponesTheAckTimeoutAndAnUnackedMessageIsThenRedelivered) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  publish_n(*c, "t", 1);
  auto o = sub_options("t", "g");
  o.config.ack_timeout_ms = 2000;
  o.config.backoff_delays_ms = {100};
  auto s = c->subscribe(o);
  ASSERT_TRUE(s);
  ASSERT_EQ(receive_n(**s, 1, false).size(), 1u);
  const auto delivered_at = std::chrono::steady_clock::now();
  // Still working: keep extending for longer than the ack timeout; nothing comes back.
  while (std::chrono::steady_clock::now() - delivered_at < 2500ms) {
    auto none = (*s)->receive(400ms);
    ASSERT_TRUE(none);
    ASSERT_TRUE(none->empty()) << "redelivered although extended";
    ASSERT_EQ((*s)->extend(0)->applied, 1u);
  }
  const auto last_extend = std::chrono::steady_clock::now();
  // Then stop: after the timeout it comes back, attempt 2.
  const auto again = receive_n(**s, 1, false);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt, 2u);
  EXPECT_GE(std::chrono::steady_clock::now() - last_extend, 2000ms) << "not before the timeout";
  ASSERT_EQ((*s)->ack_confirmed({0})->applied, 1u);
  EXPECT_EQ(c->describe_group("t", "g")->ack_floor, 1u);
}

TEST(Groups, TheAckTimeoutRunsForAGroupCreatedBySubscribeWithNothingElseHappening) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  publish_n(*c, "t", 1);
  auto o = sub_options("t", "fresh");
  o.config.ack_timeout_ms = 300;
  o.config.backoff_delays_ms = {10};
  auto s = c->subscribe(o);
  ASSERT_TRUE(s);
  ASSERT_EQ(receive_n(**s, 1, false).size(), 1u);
  const auto again = receive_n(**s, 1, false);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt, 2u);
}

TEST(Groups, PlainAcksAreOnDiskAfterAGracefulStop) {
  TestDaemon d;
  d.start();
  constexpr std::size_t kMessages = 300;
  {
    auto c = d.client();
    ASSERT_TRUE(c->create_topic("t"));
    publish_n(*c, "t", kMessages);
    auto o = sub_options("t", "g");
    o.ack_batch = 1;  // one SETTLE per ack: many group writes queue up behind each other
    auto s = c->subscribe(o);
    ASSERT_TRUE(s);
    ASSERT_EQ(receive_n(**s, kMessages).size(), kMessages);
  }
  ASSERT_EQ(d.stop(), 0) << d.log();
  d.start();
  const auto info = d.client()->describe_group("t", "g");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->ack_floor, kMessages);
}

TEST(Groups, SettlesOfUnknownOrForeignOffsetsAreIgnoredNotApplied) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  publish_n(*c, "t", 2);
  auto s1 = c->subscribe([] {
    auto o = sub_options("t", "g");
    o.max_in_flight = 1;
    return o;
  }());
  auto other = d.client("other");
  auto s2 = other->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(s1 && s2);
  const auto mine = receive_n(**s1, 1, false);
  ASSERT_EQ(mine.size(), 1u);
  const auto theirs = receive_n(**s2, 1, false);
  ASSERT_EQ(theirs.size(), 1u);
  auto foreign = (*s1)->ack_confirmed({theirs[0].offset, 999});
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->applied, 0u);
  EXPECT_EQ(foreign->ignored, 2u);
  auto ok = (*s1)->ack_confirmed({mine[0].offset});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->applied, 1u);
  auto twice = (*s1)->ack_confirmed({mine[0].offset});
  EXPECT_EQ(twice->ignored, 1u);
  // A subscription id of another connection is refused.
  auto foreign_sub = c->subscribe(sub_options("t", "g2"));
  ASSERT_TRUE(foreign_sub);
  EXPECT_EQ((*s2)->extend(theirs[0].offset)->applied, 1u);
}

TEST(Groups, MaxDeliveriesMovesTheMessageToTheDeadLetterTopicWithHeaders) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("orders"));
  Message poison = text("poison");
  poison.key = "k1";
  poison.headers = {{"trace", "abc"}};
  ASSERT_TRUE(c->publish("orders", poison));
  auto o = sub_options("orders", "billing");
  o.config.max_deliveries = 2;
  o.config.backoff_delays_ms = {50};
  auto s = c->subscribe(o);
  ASSERT_TRUE(s);
  for (std::uint32_t attempt = 1; attempt <= 2; ++attempt) {
    const auto got = receive_n(**s, 1, false);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].attempt, attempt);
    ASSERT_TRUE((*s)->nack(got[0].offset));
  }
  ASSERT_TRUE(eventually([&] {
    auto dlq = c->describe_topic("orders.dlq");
    return dlq && dlq->messages == 1;
  }));
  const auto dead = c->fetch("orders.dlq", 0, 10);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->messages.size(), 1u);
  const auto& m = dead->messages[0].message;
  EXPECT_EQ(m.payload, "poison");
  EXPECT_EQ(m.key, "k1");
  std::map<std::string, std::string> h;
  for (const auto& x : m.headers) h[x.name] = x.value;
  EXPECT_EQ(h["trace"], "abc");
  EXPECT_EQ(h["loft-dlq-topic"], "orders");
  EXPECT_EQ(h["loft-dlq-offset"], "0");
  EXPECT_EQ(h["loft-dlq-group"], "billing");
  EXPECT_EQ(h["loft-dlq-attempts"], "2");
  EXPECT_EQ(h["loft-dlq-reason"], "max_deliveries");
  const auto info = c->describe_group("orders", "billing");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->dead_lettered, 1u);
  EXPECT_EQ(info->ack_floor, 1u) << "a dead letter counts as done";
  EXPECT_EQ(info->lag, 0u);
  auto nothing = (*s)->receive(300ms);
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->empty());
}

TEST(Groups, RejectDeadLettersAtOnce) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  publish_n(*c, "t", 2);
  auto s = c->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(s);
  const auto got = receive_n(**s, 2, false);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE((*s)->reject(0));
  ASSERT_TRUE((*s)->ack_confirmed({1}));
  ASSERT_TRUE(eventually([&] {
    auto dlq = c->describe_topic("t.dlq");
    return dlq && dlq->messages == 1;
  }));
  const auto dead = c->fetch("t.dlq", 0, 1);
  std::map<std::string, std::string> h;
  for (const auto& x : dead->messages.at(0).message.headers) h[x.name] = x.value;
  EXPECT_EQ(h["loft-dlq-reason"], "rejected");
  EXPECT_EQ(h["loft-dlq-attempts"], "1");
}

TEST(Groups, AfterARestartAckedMessagesAreNotDeliveredAgainAndUnackedOnesAre) {
  TestDaemon d;
  d.start();
  {
    auto c = d.client();
    ASSERT_TRUE(c->create_topic("t"));
    publish_n(*c, "t", 10);
    auto s = c->subscribe(sub_options("t", "g"));
    ASSERT_TRUE(s);
    const auto got = receive_n(**s, 10, false);
    ASSERT_EQ(got.size(), 10u);
    // 0..3 and 6 acked durably; 4, 5, 7, 8, 9 never.
    ASSERT_EQ((*s)->ack_confirmed({0, 1, 2, 3, 6})->applied, 5u);
  }
  d.kill9();
  d.start();
  auto c = d.client();
  const auto info = c->describe_group("t", "g");
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->ack_floor, 4u);
  auto s = c->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(s);
  const auto again = receive_n(**s, 5);
  std::vector<std::uint64_t> offsets;
  for (const auto& m : again) offsets.push_back(m.offset);
  EXPECT_EQ(offsets, (std::vector<std::uint64_t>{4, 5, 7, 8, 9}));
  auto more = (*s)->receive(300ms);
  ASSERT_TRUE(more);
  EXPECT_TRUE(more->empty()) << "acked offsets are not delivered again";
}

TEST(Groups, AConsumerThatStopsReadingDoesNotStallAnotherGroupOrTheBroker) {
  TestDaemon d("max_send_queue = \"64KiB\"\n");
  d.start();
  auto producer = d.client("producer");
  ASSERT_TRUE(producer->create_topic("t"));
  protocol::Subscribe slow;
  slow.topic = "t";
  slow.group = "slow";
  slow.max_in_flight = 100000;  // credit is not what stops it: its socket is
  StuckConsumer stuck(d.port(), slow);
  ASSERT_TRUE(eventually([&] {
    auto g = producer->describe_group("t", "slow");
    return g && g->consumers.size() == 1;
  }));
  auto healthy_client = d.client("healthy");
  auto healthy = healthy_client->subscribe(sub_options("t", "fast"));
  ASSERT_TRUE(healthy);
  constexpr int kMessages = 200;
  for (int b = 0; b < kMessages / 10; ++b) {
    std::vector<Message> batch(10, text(std::string(64 * 1024, 'x')));
    ASSERT_TRUE(producer->publish("t", std::move(batch)));
  }
  const auto got = receive_n(**healthy, kMessages);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kMessages));
  // The stuck consumer holds what its socket and its bounded send queue took, no more.
  ASSERT_TRUE(eventually([&] {
    auto g = producer->describe_group("t", "slow");
    return g && g->consumers.size() == 1 &&
           g->consumers[0].stalled == protocol::StallReason::slow_socket;
  }));
  const auto slow_info = producer->describe_group("t", "slow");
  EXPECT_LT(slow_info->in_flight, static_cast<std::uint64_t>(kMessages));
  EXPECT_GT(slow_info->lag, 0u);
  EXPECT_TRUE(producer->ping());
  // Memory stays bounded while a consumer does not read: the bound of docs/protocol.md §9
  // (the one tests/integration/hostile_test.cpp asserts), under ASan.
  const auto peak_kib = d.peak_rss_kib();
  ASSERT_GT(peak_kib, 0u);
  EXPECT_LE(peak_kib, 640u * 1024) << "loftd peak RSS (VmHWM) in KiB";
}

TEST(Groups, LargeAndEmptyPayloadsRoundTrip) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  Message big;
  big.payload.resize(1 << 20);
  for (std::size_t i = 0; i < big.payload.size(); ++i) big.payload[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(c->publish("t", big));
  ASSERT_TRUE(c->publish("t", Message{}));
  auto s = c->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(s);
  const auto got = receive_n(**s, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].message, big);
  EXPECT_EQ(got[1].message, Message{});
}

TEST(Groups, AdminCommandsCreateDescribeResetDelete) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  publish_n(*c, "t", 10);
  auto created = c->create_group("t", "late", {protocol::StartKind::latest, 0});
  ASSERT_TRUE(created) << created.error().to_string();
  EXPECT_EQ(created->ack_floor, 10u);
  EXPECT_EQ(created->config.dead_letter_topic, "t.dlq");
  EXPECT_EQ(created->config.ack_timeout_ms, 30000u);
  EXPECT_EQ(c->create_group("t", "late").error().code, Errc::group_exists);
  EXPECT_EQ(c->describe_group("t", "nope").error().code, Errc::group_not_found);
  EXPECT_EQ(c->describe_group("nope", "late").error().code, Errc::topic_not_found);
  EXPECT_EQ(c->create_group("t", "bad name").error().code, Errc::invalid_name);
  auto from3 = c->create_group("t", "from3", {protocol::StartKind::offset, 3});
  ASSERT_TRUE(from3);
  EXPECT_EQ(from3->lag, 7u);
  auto reset = c->reset_group("t", "late", {protocol::StartKind::earliest, 0});
  ASSERT_TRUE(reset) << reset.error().to_string();
  EXPECT_EQ(reset->ack_floor, 0u);
  EXPECT_EQ(reset->lag, 10u);
  ASSERT_TRUE(c->delete_group("t", "late"));
  EXPECT_EQ(c->describe_group("t", "late").error().code, Errc::group_not_found);
  // Group state survives a restart.
  ASSERT_EQ(d.stop(), 0);
  d.start();
  auto c2 = d.client();
  const auto groups = c2->list_groups("t");
  ASSERT_TRUE(groups);
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].group, "from3");
  EXPECT_EQ((*groups)[0].ack_floor, 3u);
}

// Settings outside their ranges (docs/protocol.md, GroupConfig) are refused naming the field,
// for SUBSCRIBE and CREATE_GROUP alike, and no group is made.
TEST(Groups, SettingsOutOfRangeAreRefusedNamingTheField) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  protocol::GroupConfig bad;
  bad.ack_timeout_ms = 1;
  auto created = c->create_group("t", "g", {}, bad);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Errc::invalid_request);
  EXPECT_THAT(created.error().detail, HasSubstr("ack_timeout_ms"));
  auto o = sub_options("t", "g");
  o.config.dead_letter_topic = "t";
  auto s = c->subscribe(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::invalid_request);
  EXPECT_THAT(s.error().detail, HasSubstr("dead_letter_topic"));
  const auto groups = c->list_groups("t");
  ASSERT_TRUE(groups);
  EXPECT_TRUE(groups->empty());
}

// A 249-byte topic cannot have '<topic>.dlq': SUBSCRIBE with the defaults still works, and the
// group's dead-letter topic is the documented derived name.
TEST(Groups, ALongTopicGetsADerivedDeadLetterTopic) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  const std::string topic(249, 't');
  ASSERT_TRUE(c->create_topic(topic));
  auto s = c->subscribe(sub_options(topic, "g"));
  ASSERT_TRUE(s) << s.error().to_string();
  const auto info = c->describe_group(topic, "g");
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->config.dead_letter_topic.size(), 249u);
  EXPECT_EQ(info->config.dead_letter_topic.substr(0, 229), topic.substr(0, 228) + ".");
  EXPECT_TRUE(info->config.dead_letter_topic.ends_with(".dlq"));
}

}  // namespace
}  // namespace loft::testing
