// Delayed delivery through the front ends, against the real loftd: `loft pub --delay / --at`,
// the HTTP body's delay_ms, and the C++ client's PublishOptions. A delayed message reaches a
// group no earlier than its deliver_at_ms (compared with this machine's wall clock at
// receipt, which is loftd's clock too: same host), a time in the past is delivered at once,
// one too far ahead is refused, and a schedule survives kill -9 and restart.
// docs/semantics.md, "Delayed delivery"; docs/protocol.md, section 19.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace json = boost::json;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Message text(std::string payload, std::int64_t deliver_at_ms = 0) {
  Message m;
  m.payload = std::move(payload);
  m.deliver_at_ms = deliver_at_ms;
  return m;
}

client::SubscribeOptions sub_options(std::string topic, std::string group) {
  client::SubscribeOptions o;
  o.topic = std::move(topic);
  o.group = std::move(group);
  return o;
}

// A message a consumer got, with this machine's wall clock when receive() handed it over.
struct Received {
  std::uint64_t offset = 0;
  std::string payload;
  std::int64_t at_ms = 0;
};

// Receives until `count` distinct payloads arrived (acking each) or `deadline` passed; the
// first receipt of each payload. By payload, not offset: where a due message is delivered
// from (the stored message or a copy the broker appends when it is due) is the broker's
// business.
std::map<std::string, Received> receive_distinct(client::Subscription& s, std::size_t count,
                                                 std::chrono::milliseconds deadline = 60s) {
  std::map<std::string, Received> got;
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (got.size() < count && std::chrono::steady_clock::now() < end) {
    auto batch = s.receive(500ms);
    if (!batch) break;
    const auto now = wall_ms();
    for (const auto& m : *batch) {
      got.emplace(m.message.payload, Received{m.offset, m.message.payload, now});
      s.ack(m.offset);
    }
  }
  std::ignore = s.flush();  // acks are a courtesy here; what was received is what counts
  return got;
}

// The deliver_at_ms FETCH shows for each payload's first stored message, the one published
// (0 for one without a delay).
std::map<std::string, std::int64_t> scheduled_times(client::Client& c, const std::string& t) {
  std::map<std::string, std::int64_t> out;
  auto all = fetch_all(c, t);
  EXPECT_TRUE(all) << all.error().to_string();
  if (!all) return out;
  for (const auto& m : *all) out.emplace(m.message.payload, m.message.deliver_at_ms);
  return out;
}

// A daemon with topic "t".
class Delay : public ::testing::Test {
 protected:
  void SetUp() override {
    d.start();
    c = d.client();
    ASSERT_TRUE(c->create_topic("t"));
  }

  TestDaemon d;
  std::unique_ptr<client::Client> c;
};

// And a consumer of its group "g", subscribed before anything is published.
class Scheduled : public Delay {
 protected:
  void SetUp() override {
    Delay::SetUp();
    auto sub = c->subscribe(sub_options("t", "g"));
    ASSERT_TRUE(sub) << sub.error().to_string();
    s = std::move(*sub);
  }

  std::unique_ptr<client::Subscription> s;
};

// `loft pub --delay 2s`: stored and confirmed at once (FETCH shows it with its time), given to
// the group no earlier than that time.
TEST_F(Scheduled, CliPubDelayIsDeliveredNotBeforeItsTime) {
  const auto before = wall_ms();
  const auto pub = d.loft({"pub", "t", "later", "--delay", "2s"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_EQ(pub.out, "0\n");
  const auto times = scheduled_times(*c, "t");
  ASSERT_EQ(times.size(), 1u);
  const auto due = times.at("later");
  EXPECT_GE(due, before + 2'000) << "the delay counts from when loftd received the publish";
  const auto fetched = d.loft({"fetch", "t", "--max", "1", "--json"});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  EXPECT_EQ(json::parse(fetched.out).at("deliver_at_ms").as_int64(), due);

  const auto got = receive_distinct(*s, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_GE(got.at("later").at_ms, due) << "delivered early";
}

// HTTP: a message's delay_ms, resolved by loftd's clock; the other message of the array is
// delivered at once.
TEST_F(Scheduled, HttpDelayMsIsDeliveredNotBeforeItsTime) {
  HttpClient http(d.http_port());
  const auto r = http.post("/v1/topics/t/messages",
                           R"([{"payload":"later","delay_ms":2000},{"payload":"now"}])");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"([{"offset":0,"duplicate":false},{"offset":1,"duplicate":false}])");
  const auto times = scheduled_times(*c, "t");
  ASSERT_EQ(times.size(), 2u);
  EXPECT_GT(times.at("later"), 0);
  EXPECT_EQ(times.at("now"), 0);

  const auto got = receive_distinct(*s, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_GE(got.at("later").at_ms, times.at("later")) << "delivered early";
  EXPECT_LE(got.at("now").at_ms, got.at("later").at_ms)
      << "the undelayed message waited for the other";
}

// `--at` with a time in the past is now: the message is delivered, it waits for no time.
TEST_F(Scheduled, AtInThePastIsDeliveredAtOnce) {
  const auto pub = d.loft({"pub", "t", "past", "--at", "@1000"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  const auto got = receive_distinct(*s, 1, 30s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got.count("past"), 1u);
}

// Further ahead than max_delivery_delay (default 30 days): refused per message with
// delay_too_long, nothing stored, at every front end.
TEST_F(Delay, TooFarAheadIsRefusedAtEveryFrontEnd) {
  const auto pub = d.loft({"pub", "t", "x", "--delay", "31d"});
  EXPECT_NE(pub.exit_code, 0);
  EXPECT_THAT(pub.err, HasSubstr("delay too long"));
  EXPECT_EQ(pub.out, "");

  const auto r = c->publish("t", text("x"), {.delay = 24h * 31});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->code, Errc::delay_too_long);
  const auto at = c->publish("t", text("x", wall_ms() + 3'000'000'000));
  ASSERT_TRUE(at) << at.error().to_string();
  EXPECT_EQ(at->code, Errc::delay_too_long);

  HttpClient http(d.http_port());
  const auto one = http.post("/v1/topics/t/messages", R"({"payload":"x","delay_ms":2678400000})");
  EXPECT_EQ(one.status, 422u) << one.body;
  EXPECT_THAT(one.body, HasSubstr(R"("code":"delay too long")"));
  const auto arr = http.post("/v1/topics/t/messages",
                             R"([{"payload":"ok"},{"payload":"x","delay_ms":2678400000}])");
  ASSERT_EQ(arr.status, 200u) << arr.body;
  EXPECT_THAT(arr.body, HasSubstr(R"({"error":{"code":"delay too long")"));
  EXPECT_EQ(c->describe_topic("t")->messages, 1u) << "only the undelayed message is stored";
}

// A message scheduled an hour ahead is stored at once and counted as scheduled wherever a
// topic is shown: the client's TopicInfo, `loft topic describe` (text and JSON), HTTP.
TEST_F(Delay, TheScheduledCountShowsInTopicDescribe) {
  const auto pub = d.loft({"pub", "t", "later", "--delay", "1h"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  const auto t = c->describe_topic("t");
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->scheduled, 1u);
  EXPECT_EQ(t->messages, 1u);
  const auto text = d.loft({"topic", "describe", "t"});
  EXPECT_THAT(text.out, HasSubstr("scheduled:     1\n"));
  const auto as_json = d.loft({"topic", "describe", "t", "--json"});
  EXPECT_EQ(json::parse(as_json.out).at("scheduled").as_int64(), 1) << as_json.out;
  HttpClient http(d.http_port());
  const auto r = http.get("/v1/topics/t");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json::parse(r.body).at("scheduled").as_int64(), 1) << r.body;
  const auto fetched = d.loft({"fetch", "t"});
  EXPECT_THAT(fetched.out, ::testing::MatchesRegex("0\tlater\tdeliver_at=@[0-9]+\n"));
}

// Bad delays never reach the broker: a negative or overflowing delay is invalid_request from
// the session, a bad flag a usage error, a bad HTTP field a 400; nothing is stored.
TEST_F(Delay, BadDelaysAreClearErrors) {
  EXPECT_EQ(c->server().version, 4u);
  auto r = c->publish("t", text("x"), {.delay = -1ms});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_THAT(r.error().detail, HasSubstr("delay_ms -1 is negative"));
  r = c->publish("t", text("x"),
                 {.delay = std::chrono::milliseconds(std::numeric_limits<std::int64_t>::max())});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("overflows"));
  r = c->publish("t", text("x", 5), {.delay = 1s});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("may not also give a message deliver_at_ms"));
  EXPECT_TRUE(c->ping()) << "the connection stays open";

  for (const auto& args :
       std::vector<std::vector<std::string>>{{"pub", "t", "x", "--delay", "10s", "--at", "@1"},
                                             {"pub", "t", "x", "--delay", "soon"},
                                             {"pub", "t", "x", "--delay", "-5s"},
                                             {"pub", "t", "x", "--at", "1800000000000"},
                                             {"pub", "t", "x", "--at", "@tomorrow"},
                                             {"fetch", "t", "--delay", "1s"}}) {
    const auto p = d.loft(args);
    EXPECT_EQ(p.exit_code, 2) << args[3] << " " << p.err;
    EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << p.err;
  }
  HttpClient http(d.http_port());
  for (const auto* body : {R"({"payload":"x","delay_ms":-1})", R"({"payload":"x","delay_ms":0.5})",
                           R"({"payload":"x","delay_ms":1,"deliver_at_ms":1})"}) {
    const auto h = http.post("/v1/topics/t/messages", body);
    EXPECT_EQ(h.status, 400u) << body;
    EXPECT_THAT(h.body, HasSubstr("delay")) << body;
  }
  EXPECT_EQ(c->describe_topic("t")->messages, 0u);
}

// kill -9 with messages scheduled: after the restart every one is delivered (at least once,
// none lost) and none before its time.
TEST_F(Delay, ScheduleSurvivesKill9AndRestart) {
  constexpr std::size_t kMessages = 20;
  ASSERT_TRUE(c->create_group("t", "g"));
  std::vector<Message> batch;
  for (std::size_t i = 0; i < kMessages; ++i) batch.push_back(text("m" + std::to_string(i)));
  const auto r = c->publish("t", std::move(batch), {.delay = 3s});
  ASSERT_TRUE(r) << r.error().to_string();
  for (const auto& one : *r) ASSERT_EQ(one.code, Errc::ok);
  const auto due = scheduled_times(*c, "t");
  ASSERT_EQ(due.size(), kMessages);
  c.reset();
  d.kill9();
  d.start();
  c = d.client();
  EXPECT_EQ(scheduled_times(*c, "t"), due) << "the times are kept with the messages";
  auto s = c->subscribe(sub_options("t", "g"));
  ASSERT_TRUE(s) << s.error().to_string();
  const auto got = receive_distinct(**s, kMessages);
  ASSERT_EQ(got.size(), kMessages) << "a scheduled message was lost";
  for (const auto& [payload, m] : got) {
    EXPECT_GE(m.at_ms, due.at(payload)) << payload << " delivered early";
  }
}

}  // namespace
}  // namespace loft::testing
