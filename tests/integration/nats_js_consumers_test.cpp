// JetStream consumers on the real loftd's NATS port, driven by the raw-socket NATS client: a
// consumer is a group of the stream's topic (created in its three subject forms and as a
// durable), info / names / list / delete, pull requests (batch, no_wait, expires), acks from
// the `$JS.ACK` reply subject (+ACK, -NAK with a delay, +WPI, +TERM, AckSync), max_deliver and
// the dead-letter topic, and a consumer that disconnects and gets its message back with
// attempt 2. Push consumers: messages pushed to a deliver subject only while someone subscribes,
// acked; a deliver group sharing them; idle heartbeats and flow control answered; a gone
// subscriber's message back for the next one. Messages are published with loft's own CLI, so
// they are read over NATS with the subject they were published on. Waits are pull requests' own
// expiries or the heartbeats of push consumers, never sleeps.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nats_client.hpp"
#include "test_daemon.hpp"
#include "test_password.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class JsConsumers : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<TestDaemon>("nats_listen = \"127.0.0.1:0\"\n");
    daemon_->start();
    ASSERT_EQ(daemon_->loft({"topic", "create", "ORDERS"}).exit_code, 0);
    nats_ = connect();
  }

  std::unique_ptr<NatsConnection> connect() {
    auto c = std::make_unique<NatsConnection>(daemon_->nats_port());
    EXPECT_TRUE(c->connected());
    EXPECT_TRUE(c->handshake());
    // Each connection its own inboxes, as NATS clients make them.
    const std::string prefix = "_INBOX.c" + std::to_string(++connections_) + ".";
    EXPECT_TRUE(c->sub(prefix + ">", "inbox"));
    inboxes_[c.get()] = prefix;
    return c;
  }

  void publish(const std::string& subject, const std::string& payload) {
    const auto r = daemon_->loft({"pub", "ORDERS", payload, "--subject", subject});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // A JetStream API request on `c`; the answer's JSON.
  json::object api(NatsConnection& c, const std::string& subject, const std::string& body = "") {
    const std::string reply = inbox(c, "api");
    EXPECT_TRUE(c.pub("$JS.API." + subject, body, reply));
    auto m = c.next_msg();
    EXPECT_TRUE(m) << subject << ": " << to_string(c.last().kind);
    if (!m) return {};
    EXPECT_EQ(m->subject, reply);
    return json::parse(m->payload).as_object();
  }
  json::object api(const std::string& subject, const std::string& body = "") {
    return api(*nats_, subject, body);
  }

  static std::int64_t err_code(const json::object& answer) {
    const auto* e = answer.if_contains("error");
    return e == nullptr ? 0 : e->as_object().at("err_code").to_number<std::int64_t>();
  }

  void create_durable(const std::string& name, const std::string& extra = "") {
    const auto a = api("CONSUMER.DURABLE.CREATE.ORDERS." + name,
                       R"({"stream_name":"ORDERS","config":{"durable_name":")" + name +
                           R"(","ack_policy":"explicit")" + extra + "}}");
    ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  }

  // A pull request on `c`; the events up to `count` messages or the first status message.
  struct Pulled {
    std::vector<NatsEvent> messages;
    std::string status;  // "404 No Messages", ... (empty: none came)
  };
  Pulled pull(NatsConnection& c, const std::string& consumer, const std::string& request,
              std::size_t count, std::chrono::milliseconds wait = 10s) {
    const std::string reply = inbox(c, "pull");
    EXPECT_TRUE(c.pub("$JS.API.CONSUMER.MSG.NEXT.ORDERS." + consumer, request, reply));
    Pulled out;
    while (out.messages.size() < count) {
      auto m = c.next_msg(wait);
      if (!m) break;
      if (m->hmsg && m->headers.starts_with("NATS/1.0 ")) {
        const auto line = m->headers.substr(9, m->headers.find('\r') - 9);
        if (!line.empty()) {
          EXPECT_EQ(m->subject, reply);
          out.status = line;
          break;
        }
      }
      out.messages.push_back(*m);
    }
    return out;
  }
  Pulled pull(const std::string& consumer, const std::string& request, std::size_t count,
              std::chrono::milliseconds wait = 10s) {
    return pull(*nats_, consumer, request, count, wait);
  }

  // The `$JS.ACK` reply subject's tokens.
  static std::vector<std::string> ack_tokens(const NatsEvent& m) {
    std::vector<std::string> t;
    std::string_view s = m.reply;
    for (;;) {
      const auto dot = s.find('.');
      t.emplace_back(s.substr(0, dot));
      if (dot == std::string_view::npos) return t;
      s.remove_prefix(dot + 1);
    }
  }
  static std::string attempt(const NatsEvent& m) { return ack_tokens(m).at(4); }
  static std::string stream_seq(const NatsEvent& m) { return ack_tokens(m).at(5); }

  // Publishes `verb` on the message's ack subject, as AckSync: true once the answer came.
  bool ack_sync(NatsConnection& c, const NatsEvent& m, const std::string& verb) {
    const std::string reply = inbox(c, "ack");
    EXPECT_TRUE(c.pub(m.reply, verb, reply));
    auto a = c.next_msg();
    return a && a->subject == reply && a->payload.empty();
  }

  std::uint64_t messages_in(const std::string& topic) {
    auto c = daemon_->client();
    auto t = c->describe_topic(topic);
    return t ? t->messages : 0;
  }

  std::string inbox(const NatsConnection& c, const std::string& what) {
    return inboxes_.at(&c) + what + "." + std::to_string(++requests_);
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<NatsConnection> nats_;
  int requests_ = 0;
  int connections_ = 0;
  std::map<const NatsConnection*, std::string> inboxes_;
};

TEST_F(JsConsumers, CreatedInEverySubjectFormInfoNamesListAndDelete) {
  auto a =
      api("CONSUMER.DURABLE.CREATE.ORDERS.dur",
          R"({"stream_name":"ORDERS","config":{"durable_name":"dur","ack_policy":"explicit"}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  EXPECT_EQ(a.at("type"), "io.nats.jetstream.api.v1.consumer_create_response");
  EXPECT_EQ(a.at("name"), "dur");
  EXPECT_EQ(a.at("stream_name"), "ORDERS");
  const auto& config = a.at("config").as_object();
  EXPECT_EQ(config.at("ack_wait"), 30'000'000'000);
  EXPECT_EQ(config.at("max_deliver"), -1);
  EXPECT_EQ(config.at("max_ack_pending"), 1000);
  EXPECT_EQ(config.at("deliver_policy"), "all");

  a = api("CONSUMER.CREATE.ORDERS.named",
          R"({"stream_name":"ORDERS","config":{"durable_name":"named","ack_policy":"explicit"}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  a = api("CONSUMER.CREATE.ORDERS.eu.orders.eu",
          R"({"stream_name":"ORDERS","config":{"durable_name":"eu","ack_policy":"explicit"}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  EXPECT_EQ(a.at("config").at("filter_subject"), "orders.eu");
  a = api("CONSUMER.CREATE.ORDERS",
          R"({"stream_name":"ORDERS","config":{"ack_policy":"explicit"}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  const std::string ephemeral(a.at("name").as_string());
  EXPECT_FALSE(ephemeral.empty());
  EXPECT_EQ(a.at("config").at("inactive_threshold"), 5'000'000'000);

  // The same config again is the same consumer; another updates it as nats-server 2.9 does,
  // and what it cannot update (or loft's group settings) is refused with err 10012.
  a = api("CONSUMER.DURABLE.CREATE.ORDERS.dur",
          R"({"stream_name":"ORDERS","config":{"durable_name":"dur","ack_policy":"explicit"}})");
  EXPECT_EQ(err_code(a), 0) << json::serialize(a);
  a = api("CONSUMER.DURABLE.CREATE.ORDERS.dur",
          R"({"stream_name":"ORDERS","config":{"durable_name":"dur","description":"new",)"
          R"("max_ack_pending":20}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  EXPECT_EQ(a.at("config").at("description"), "new");
  EXPECT_EQ(a.at("config").at("max_ack_pending"), 20);
  // A stream_name that is not a string fails the decoding, as in nats-server (10025); another
  // name is 10056.
  a = api("CONSUMER.DURABLE.CREATE.ORDERS.dur",
          R"({"stream_name":17,"config":{"durable_name":"dur","ack_policy":"explicit"}})");
  EXPECT_EQ(err_code(a), 10025) << json::serialize(a);
  a = api("CONSUMER.DURABLE.CREATE.ORDERS.dur",
          R"({"stream_name":"OTHER","config":{"durable_name":"dur","ack_policy":"explicit"}})");
  EXPECT_EQ(err_code(a), 10056) << json::serialize(a);
  a = api("CONSUMER.DURABLE.CREATE.ORDERS.dur",
          R"({"stream_name":"ORDERS","config":{"durable_name":"dur","max_deliver":3}})");
  EXPECT_EQ(err_code(a), 10012) << json::serialize(a);
  EXPECT_THAT(std::string(a.at("error").at("description").as_string()),
              StartsWith("max_deliver can not be updated in loft"));
  a = api("CONSUMER.DURABLE.CREATE.ORDERS.dur",
          R"({"stream_name":"ORDERS","config":{"durable_name":"dur","deliver_policy":"new"}})");
  EXPECT_EQ(err_code(a), 10012) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("description"), "deliver policy can not be updated");
  EXPECT_EQ(api("CONSUMER.INFO.ORDERS.dur").at("config").at("description"), "new");
  // Errors clients branch on.
  EXPECT_EQ(err_code(api("CONSUMER.DURABLE.CREATE.NOPE.d",
                         R"({"stream_name":"NOPE","config":{"durable_name":"d"}})")),
            10059);
  EXPECT_EQ(err_code(api("CONSUMER.CREATE.ORDERS",
                         R"({"stream_name":"ORDERS","config":{"durable_name":"x"}})")),
            10020);
  EXPECT_EQ(err_code(api("CONSUMER.CREATE.ORDERS.x",
                         R"({"stream_name":"ORDERS","config":{"ack_policy":"some"}})")),
            10094);
  EXPECT_EQ(err_code(api("CONSUMER.CREATE.ORDERS.x",
                         R"({"stream_name":"ORDERS","config":{"sample_freq":"50%"}})")),
            10012);
  // A group setting out of loft's range: the broker's refusal, naming the NATS field.
  a = api("CONSUMER.CREATE.ORDERS.x",
          R"({"stream_name":"ORDERS","config":{"name":"x","ack_wait":1000}})");
  EXPECT_EQ(err_code(a), 10012) << json::serialize(a);
  EXPECT_THAT(std::string(a.at("error").at("description").as_string()),
              StartsWith("ack_wait out of loft's range: ack_timeout_ms must be 100 to"));
  EXPECT_EQ(err_code(api("CONSUMER.INFO.ORDERS.missing")), 10014);

  a = api("CONSUMER.INFO.ORDERS.eu");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  EXPECT_EQ(a.at("type"), "io.nats.jetstream.api.v1.consumer_info_response");
  EXPECT_EQ(a.at("config").at("filter_subject"), "orders.eu");
  EXPECT_EQ(a.at("num_pending"), 0);

  a = api("CONSUMER.NAMES.ORDERS");
  EXPECT_EQ(a.at("total"), 4);
  std::vector<std::string> names;
  for (const auto& n : a.at("consumers").as_array()) names.emplace_back(n.as_string());
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("dur", "named", "eu", ephemeral));
  a = api("CONSUMER.LIST.ORDERS");
  EXPECT_EQ(a.at("consumers").as_array().size(), 4u);
  EXPECT_EQ(a.at("consumers").as_array()[0].at("stream_name"), "ORDERS");

  a = api("CONSUMER.DELETE.ORDERS.named");
  EXPECT_EQ(a.at("success"), true) << json::serialize(a);
  EXPECT_EQ(err_code(api("CONSUMER.INFO.ORDERS.named")), 10014);
  EXPECT_EQ(err_code(api("CONSUMER.DELETE.ORDERS.named")), 10014);
  EXPECT_EQ(api("CONSUMER.NAMES.ORDERS").at("total"), 3);
}

TEST_F(JsConsumers, FetchDeliversWithTheSubjectAndAnAckSubjectAndAcksSettle) {
  create_durable("w");
  publish("orders.eu", "one");
  publish("orders.us", "two");
  publish("orders.eu", "three");

  auto p = pull("w", R"({"batch":2,"expires":5000000000})", 2);
  ASSERT_EQ(p.messages.size(), 2u) << p.status;
  EXPECT_EQ(p.messages[0].subject, "orders.eu");
  EXPECT_EQ(p.messages[0].payload, "one");
  EXPECT_EQ(p.messages[1].subject, "orders.us");
  EXPECT_THAT(p.messages[0].reply, StartsWith("$JS.ACK.ORDERS.w.1.1.1."));
  EXPECT_THAT(p.messages[1].reply, StartsWith("$JS.ACK.ORDERS.w.1.2.2."));
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "+ACK"));
  EXPECT_TRUE(nats_->pub(p.messages[1].reply, "+ACK"));

  // The third, then nothing: a no_wait request ends with 408 after a partial batch...
  p = pull("w", R"({"batch":5,"no_wait":true})", 5);
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(p.messages[0].payload, "three");
  EXPECT_EQ(p.status, "408 Request Timeout");
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "+ACK"));
  // ... with 404 when nothing came, and an expiring one with 408.
  EXPECT_EQ(pull("w", R"({"batch":1,"no_wait":true})", 1).status, "404 No Messages");
  EXPECT_EQ(pull("w", R"({"batch":1,"expires":200000000})", 1).status, "408 Request Timeout");

  const auto info = api("CONSUMER.INFO.ORDERS.w");
  EXPECT_EQ(info.at("num_ack_pending"), 0);
  EXPECT_EQ(info.at("num_pending"), 0);
  EXPECT_EQ(info.at("delivered").at("stream_seq"), 3);
  EXPECT_EQ(info.at("ack_floor").at("stream_seq"), 3);

  // A waiting request is served when a message arrives.
  const std::string reply = inbox(*nats_, "waiting");
  ASSERT_TRUE(nats_->pub("$JS.API.CONSUMER.MSG.NEXT.ORDERS.w", R"({"batch":1})", reply));
  ASSERT_TRUE(nats_->flush());
  publish("orders.eu", "four");
  auto m = nats_->next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "four");
  EXPECT_EQ(stream_seq(*m), "4");
}

// ack_policy none (ordered consumers): done once sent, so nothing is pending and nothing comes
// back, whatever the client sends; the ack subject is there all the same.
TEST_F(JsConsumers, AckNoneIsDoneOnceSent) {
  auto a = api("CONSUMER.CREATE.ORDERS.none",
               R"({"stream_name":"ORDERS","config":{"name":"none","ack_policy":"none",)"
               R"("ack_wait":200000000,"max_deliver":1,"mem_storage":true}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  EXPECT_EQ(a.at("config").at("ack_policy"), "none");
  EXPECT_EQ(a.at("config").at("mem_storage"), true);
  EXPECT_FALSE(a.at("config").as_object().contains("max_ack_pending"));
  for (const char* body : {"a", "b", "c"}) publish("orders.eu", body);
  auto p = pull("none", R"({"batch":3})", 3);
  ASSERT_EQ(p.messages.size(), 3u) << p.status;
  EXPECT_THAT(p.messages[0].reply, StartsWith("$JS.ACK.ORDERS.none.1.1.1."));
  EXPECT_THAT(p.messages[2].reply, StartsWith("$JS.ACK.ORDERS.none.1.3.3."));
  // Answered, and nothing changes: no redelivery after a nak or after ack_wait.
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "-NAK"));
  EXPECT_TRUE(ack_sync(*nats_, p.messages[1], "+TERM"));
  ASSERT_TRUE(
      eventually([&] { return api("CONSUMER.INFO.ORDERS.none").at("num_ack_pending") == 0; }));
  EXPECT_EQ(pull("none", R"({"batch":1,"expires":600000000})", 1).status, "408 Request Timeout");
  const auto info = api("CONSUMER.INFO.ORDERS.none");
  EXPECT_EQ(info.at("ack_floor").at("stream_seq"), 3);
  EXPECT_EQ(info.at("delivered").at("consumer_seq"), 3);
  EXPECT_EQ(info.at("num_redelivered"), 0);
  EXPECT_EQ(messages_in("ORDERS.dlq"), 0u);  // the +TERM rejected nothing
}

// ack_policy all: an ack settles every pending message up to it.
TEST_F(JsConsumers, AckAllSettlesEverythingUpToTheAck) {
  auto a = api("CONSUMER.CREATE.ORDERS.all",
               R"({"stream_name":"ORDERS","config":{"name":"all","ack_policy":"all"}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  for (const char* body : {"a", "b", "c", "d"}) publish("orders.eu", body);
  auto p = pull("all", R"({"batch":4})", 4);
  ASSERT_EQ(p.messages.size(), 4u) << p.status;
  EXPECT_TRUE(ack_sync(*nats_, p.messages[2], "+ACK"));
  auto info = api("CONSUMER.INFO.ORDERS.all");
  EXPECT_EQ(info.at("num_ack_pending"), 1);
  EXPECT_EQ(info.at("ack_floor").at("stream_seq"), 3);
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "+ACK"));  // below the floor: nothing
  EXPECT_EQ(api("CONSUMER.INFO.ORDERS.all").at("num_ack_pending"), 1);
  EXPECT_TRUE(ack_sync(*nats_, p.messages[3], "+ACK"));
  info = api("CONSUMER.INFO.ORDERS.all");
  EXPECT_EQ(info.at("num_ack_pending"), 0);
  EXPECT_EQ(info.at("ack_floor").at("stream_seq"), 4);
}

TEST_F(JsConsumers, AFilteredConsumerGetsOnlyItsSubjects) {
  ASSERT_EQ(err_code(api("CONSUMER.CREATE.ORDERS.eu.orders.eu",
                         R"({"stream_name":"ORDERS","config":{"durable_name":"eu"}})")),
            0);
  publish("orders.us", "a");
  publish("orders.eu", "b");
  auto p = pull("eu", R"({"batch":5,"expires":2000000000})", 5);
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(p.messages[0].payload, "b");
  EXPECT_EQ(stream_seq(p.messages[0]), "2");
}

TEST_F(JsConsumers, NakWithADelayRedeliversAfterItNotBefore) {
  create_durable("n");
  publish("orders.eu", "x");
  auto p = pull("n", R"({"batch":1})", 1);
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(attempt(p.messages[0]), "1");
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], R"(-NAK {"delay":3000000000})"));
  // Not within the first 300 ms (a tenth of the delay)...
  EXPECT_EQ(pull("n", R"({"batch":1,"expires":300000000})", 1).status, "408 Request Timeout");
  // ... then it comes, as attempt 2.
  p = pull("n", R"({"batch":1,"expires":20000000000})", 1, 25s);
  ASSERT_EQ(p.messages.size(), 1u) << p.status;
  EXPECT_EQ(attempt(p.messages[0]), "2");
  EXPECT_EQ(p.messages[0].payload, "x");
  // A nak without a delay comes back at once.
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "-NAK"));
  p = pull("n", R"({"batch":1,"expires":5000000000})", 1);
  ASSERT_EQ(p.messages.size(), 1u) << p.status;
  EXPECT_EQ(attempt(p.messages[0]), "3");
}

TEST_F(JsConsumers, WorkingExtendsTheAckWait) {
  create_durable("wpi", R"(,"ack_wait":2000000000)");
  publish("orders.eu", "slow");
  auto p = pull("wpi", R"({"batch":1})", 1);
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(pull("wpi", R"({"batch":1,"expires":1200000000})", 1).status, "408 Request Timeout");
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "+WPI"));
  // 2.6 s after the delivery: without +WPI it would be back (ack_wait 2 s).
  EXPECT_EQ(pull("wpi", R"({"batch":1,"expires":1400000000})", 1).status, "408 Request Timeout");
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "+ACK"));
  EXPECT_EQ(api("CONSUMER.INFO.ORDERS.wpi").at("num_redelivered"), 0);
}

TEST_F(JsConsumers, TermAndMaxDeliverDeadLetter) {
  create_durable("t", R"(,"max_deliver":2)");
  publish("orders.eu", "poison");
  publish("orders.eu", "flaky");
  auto p = pull("t", R"({"batch":2})", 2);
  ASSERT_EQ(p.messages.size(), 2u);
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "+TERM"));
  EXPECT_TRUE(ack_sync(*nats_, p.messages[1], "-NAK"));
  p = pull("t", R"({"batch":1,"expires":5000000000})", 1);
  ASSERT_EQ(p.messages.size(), 1u) << p.status;
  EXPECT_EQ(p.messages[0].payload, "flaky");
  EXPECT_EQ(attempt(p.messages[0]), "2");
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "-NAK"));  // the last attempt
  EXPECT_EQ(pull("t", R"({"batch":1,"no_wait":true})", 1).status, "404 No Messages");
  EXPECT_EQ(messages_in("ORDERS.dlq"), 2u);
}

TEST_F(JsConsumers, ADisconnectedConsumersMessageComesBackWithAttemptTwo) {
  create_durable("d", R"(,"ack_wait":1000000000)");
  publish("orders.eu", "lost");
  {
    auto gone = connect();
    auto p = pull(*gone, "d", R"({"batch":1})", 1);
    ASSERT_EQ(p.messages.size(), 1u);
    EXPECT_EQ(attempt(p.messages[0]), "1");
  }  // closed without an ack
  auto p = pull("d", R"({"batch":1,"expires":20000000000})", 1, 25s);
  ASSERT_EQ(p.messages.size(), 1u) << p.status;
  EXPECT_EQ(p.messages[0].payload, "lost");
  EXPECT_THAT(p.messages[0].reply, StartsWith("$JS.ACK.ORDERS.d.2.1."));
  // Acked from another connection than the one it was delivered to: NATS's ack from anywhere.
  auto other = connect();
  EXPECT_TRUE(ack_sync(*other, p.messages[0], "+ACK"));
  EXPECT_EQ(api("CONSUMER.INFO.ORDERS.d").at("num_ack_pending"), 0);
}

TEST_F(JsConsumers, PullErrors) {
  create_durable("e", R"(,"max_batch":2)");
  // Unknown consumer: nobody answers (nats-server has no subscriber for it).
  EXPECT_EQ(pull("missing", R"({"batch":1})", 1).status, "503");
  EXPECT_EQ(pull("e", R"({"batch":5})", 1).status, "409 Exceeded MaxRequestBatch of 2");
  EXPECT_EQ(pull("e", "{bad", 1).status, "400 Bad Request");
  // A deleted consumer's waiting requests hear of it.
  const std::string reply = inbox(*nats_, "deleted");
  ASSERT_TRUE(nats_->pub("$JS.API.CONSUMER.MSG.NEXT.ORDERS.e", R"({"batch":1})", reply));
  ASSERT_TRUE(nats_->flush());
  auto other = connect();
  EXPECT_EQ(api(*other, "CONSUMER.DELETE.ORDERS.e").at("success"), true);
  auto m = nats_->next_msg();
  ASSERT_TRUE(m);
  EXPECT_THAT(m->headers, StartsWith("NATS/1.0 409 Consumer Deleted"));

  create_durable("f");
  // As nats-server 2.9.10 answers them: a negative expiry has passed on arrival (408 with what
  // the request still asked for); a heartbeat over half the expiry (or without one) is too
  // large; a negative heartbeat is none, and a short one is allowed.
  const auto expired = pull("f", R"({"batch":2,"expires":-1,"max_bytes":100})", 1);
  EXPECT_EQ(expired.status, "408 Request Timeout");
  EXPECT_EQ(pull("f", R"({"batch":1,"expires":-1,"no_wait":true})", 1).status,
            "408 Request Timeout");
  EXPECT_EQ(pull("f", R"({"batch":1,"idle_heartbeat":100})", 1).status,
            "400 Bad Request - heartbeat value too large");
  EXPECT_EQ(pull("f", R"({"batch":1,"expires":-1,"idle_heartbeat":100})", 1).status,
            "400 Bad Request - heartbeat value too large");
  EXPECT_EQ(pull("f", R"({"batch":1,"expires":400000000,"idle_heartbeat":300000000})", 1).status,
            "400 Bad Request - heartbeat value too large");
  EXPECT_EQ(pull("f", R"({"batch":1,"expires":300000000,"idle_heartbeat":-1})", 1).status,
            "408 Request Timeout");
  EXPECT_EQ(pull("f", R"({"batch":1,"expires":300000000,"idle_heartbeat":1000000})", 1).status,
            "100 Idle Heartbeat");
}

// ---- Push consumers ----------------------------------------------------------------------------

bool is_status(const NatsEvent& m, std::string_view status) {
  return m.hmsg && m.headers.starts_with("NATS/1.0 " + std::string(status));
}

TEST_F(JsConsumers, PushConsumerPushesOnlyWhileSubscribedAndAcksSettle) {
  create_durable("idle", R"(,"deliver_subject":"push.idle")");
  create_durable("pusher", R"(,"deliver_subject":"push.out")");
  auto watcher = connect();
  ASSERT_TRUE(watcher->sub("push.idle", "idle"));
  ASSERT_TRUE(watcher->flush());
  publish("orders.eu", "one");
  publish("orders.us", "two");

  // "idle" is bound: both come, with their own subjects and an ack subject.
  std::vector<NatsEvent> got;
  for (int i = 0; i < 2; ++i) {
    auto m = watcher->next_msg();
    ASSERT_TRUE(m) << to_string(watcher->last().kind);
    got.push_back(*m);
  }
  EXPECT_EQ(got[0].subject, "orders.eu");
  EXPECT_EQ(got[0].sid, "idle");
  EXPECT_EQ(got[0].payload, "one");
  EXPECT_THAT(got[0].reply, StartsWith("$JS.ACK.ORDERS.idle.1.1.1."));
  EXPECT_EQ(got[1].subject, "orders.us");
  EXPECT_TRUE(api("CONSUMER.INFO.ORDERS.idle").at("push_bound").as_bool());

  // Nobody subscribes to push.out: nothing was pushed for "pusher".
  auto info = api("CONSUMER.INFO.ORDERS.pusher");
  EXPECT_EQ(info.at("config").at("deliver_subject"), "push.out");
  EXPECT_FALSE(info.contains("push_bound"));
  EXPECT_FALSE(info.at("config").as_object().contains("max_waiting"));
  EXPECT_EQ(info.at("delivered").at("consumer_seq"), 0);
  EXPECT_EQ(info.at("num_pending"), 2);
  // Pull requests are not for push consumers.
  EXPECT_EQ(pull("pusher", R"({"batch":1})", 1).status, "409 Consumer is push based");

  // A subscriber comes: both are pushed, and acked.
  ASSERT_TRUE(nats_->sub("push.out", "out"));
  for (const auto* payload : {"one", "two"}) {
    auto m = nats_->next_msg();
    ASSERT_TRUE(m) << to_string(nats_->last().kind);
    EXPECT_EQ(m->sid, "out");
    EXPECT_EQ(m->payload, payload);
    EXPECT_EQ(attempt(*m), "1");
    EXPECT_TRUE(nats_->pub(m->reply, "+ACK"));
  }
  EXPECT_TRUE(
      eventually([&] { return api("CONSUMER.INFO.ORDERS.pusher").at("num_ack_pending") == 0; }));
  info = api("CONSUMER.INFO.ORDERS.pusher");
  EXPECT_TRUE(info.at("push_bound").as_bool());
  EXPECT_EQ(info.at("num_ack_pending"), 0);
  EXPECT_EQ(info.at("ack_floor").at("stream_seq"), 2);

  // Push-only settings are checked as nats-server does.
  const auto create = [&](const std::string& config) {
    return err_code(
        api("CONSUMER.DURABLE.CREATE.ORDERS.bad",
            R"({"stream_name":"ORDERS","config":{"durable_name":"bad",)" + config + "}}"));
  };
  EXPECT_EQ(create(R"("deliver_subject":"push.*")"), 10079);
  EXPECT_EQ(create(R"("deliver_subject":"push.x","max_waiting":4)"), 10080);
  EXPECT_EQ(create(R"("deliver_subject":"push.x","flow_control":true)"), 10108);
  EXPECT_EQ(create(R"("deliver_subject":"bad subject")"), 10112);
  EXPECT_EQ(create(R"("idle_heartbeat":1000000000)"), 10088);
  EXPECT_EQ(create(R"("deliver_subject":"push.x","idle_heartbeat":99000000)"), 10083);
  EXPECT_EQ(create(R"("rate_limit_bps":8000)"), 10086);
}

TEST_F(JsConsumers, ADeliverGroupSharesThePushedMessages) {
  create_durable("shared", R"(,"deliver_subject":"push.crew","deliver_group":"crew")");
  auto a = connect();
  auto b = connect();
  ASSERT_TRUE(a->sub("push.crew", "a", "crew"));
  ASSERT_TRUE(b->sub("push.crew", "b", "crew"));
  ASSERT_TRUE(a->flush());
  ASSERT_TRUE(b->flush());
  constexpr int kCount = 8;
  for (int i = 0; i < kCount; ++i) publish("orders.eu", std::to_string(i));
  // Each message to exactly one member (acked there, without waiting for an answer that a
  // pushed message could overtake).
  std::vector<std::string> seqs;
  std::map<std::string, int> per_member;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (static_cast<int>(seqs.size()) < kCount && std::chrono::steady_clock::now() < deadline) {
    for (auto* c : {a.get(), b.get()}) {
      auto m = c->next_msg(50ms);
      if (!m) continue;
      seqs.push_back(stream_seq(*m));
      ++per_member[m->sid];
      EXPECT_TRUE(c->pub(m->reply, "+ACK"));
    }
  }
  ASSERT_EQ(static_cast<int>(seqs.size()), kCount);
  std::sort(seqs.begin(), seqs.end());
  EXPECT_EQ(std::unique(seqs.begin(), seqs.end()), seqs.end()) << "a message came twice";
  EXPECT_GT(per_member["a"], 0);
  EXPECT_GT(per_member["b"], 0);
  EXPECT_TRUE(
      eventually([&] { return api("CONSUMER.INFO.ORDERS.shared").at("num_ack_pending") == 0; }));
  const auto info = api("CONSUMER.INFO.ORDERS.shared");
  EXPECT_EQ(info.at("num_ack_pending"), 0);
  EXPECT_EQ(info.at("ack_floor").at("stream_seq"), kCount);
}

TEST_F(JsConsumers, IdleHeartbeatsAndFlowControlAreAnswered) {
  // A stream whose subjects NATS publishes capture, and 100 KB messages: the flow-control
  // window starts at 2 MiB, with a request past its half.
  auto created =
      api("STREAM.CREATE.BIG", R"({"name":"BIG","subjects":["big.>"],"storage":"file"})");
  ASSERT_EQ(err_code(created), 0) << json::serialize(created);
  auto a = api("CONSUMER.DURABLE.CREATE.BIG.fc",
               R"({"stream_name":"BIG","config":{"durable_name":"fc","ack_policy":"explicit",)"
               R"("deliver_subject":"push.fc","flow_control":true,"idle_heartbeat":200000000}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  EXPECT_EQ(a.at("config").at("flow_control"), true);
  EXPECT_EQ(a.at("config").at("idle_heartbeat"), 200'000'000);

  auto c = connect();
  ASSERT_TRUE(c->sub("push.fc", "fc"));
  ASSERT_TRUE(c->flush());
  // Idle: a heartbeat naming the last sequences (none yet).
  auto hb = c->next_msg();
  ASSERT_TRUE(hb);
  ASSERT_TRUE(is_status(*hb, "100 Idle Heartbeat")) << hb->headers;
  EXPECT_THAT(hb->headers, HasSubstr("Nats-Last-Consumer: 0\r\n"));
  EXPECT_THAT(hb->headers, HasSubstr("Nats-Last-Stream: 0\r\n"));

  constexpr int kCount = 30;
  const std::string big(std::size_t{100} * 1000, 'x');
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(nats_->pub("big.m", big, inbox(*nats_, "puback")));
    auto ack = nats_->next_msg();
    ASSERT_TRUE(ack);
    ASSERT_THAT(ack->payload, HasSubstr(R"("stream":"BIG")"));
  }
  // Pushed until past the window: a flow-control request on the way, then a stalled heartbeat
  // (pushing paused) that names the request.
  int messages = 0;
  std::string request;
  std::string stalled;
  while (stalled.empty()) {
    auto m = c->next_msg();
    ASSERT_TRUE(m) << "after " << messages << " messages";
    if (is_status(*m, "100 FlowControl Request")) {
      EXPECT_THAT(m->reply, StartsWith("$JS.FC.BIG.fc."));
      request = m->reply;
    } else if (is_status(*m, "100 Idle Heartbeat")) {
      const auto at = m->headers.find("Nats-Consumer-Stalled: ");
      if (at != std::string::npos) {
        stalled = m->headers.substr(at + 23, m->headers.find('\r', at) - at - 23);
      }
    } else {
      ++messages;
    }
  }
  EXPECT_EQ(stalled, request);
  EXPECT_GT(messages, 10);
  EXPECT_LT(messages, kCount);  // paused
  // The answer resumes pushing: the rest come.
  ASSERT_TRUE(c->pub(request, ""));
  while (messages < kCount) {
    auto m = c->next_msg();
    ASSERT_TRUE(m) << "after " << messages << " messages";
    if (!m->hmsg) ++messages;
  }
}

TEST_F(JsConsumers, ARateLimitedPushConsumerPacesItsPushes) {
  auto created = api("STREAM.CREATE.RL", R"({"name":"RL","subjects":["rl.>"]})");
  ASSERT_EQ(err_code(created), 0) << json::serialize(created);
  // 160 kbit/s: 20,000 bytes a second, after a first burst of 1 MiB (nats-server's limiter
  // holds a maximum payload).
  auto a = api("CONSUMER.DURABLE.CREATE.RL.slow",
               R"({"stream_name":"RL","config":{"durable_name":"slow","ack_policy":"explicit",)"
               R"("deliver_subject":"push.slow","rate_limit_bps":160000}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  EXPECT_EQ(a.at("config").at("rate_limit_bps"), 160000);
  const std::string big(std::size_t{100} * 1000, 'x');
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(nats_->pub("rl.m", big, inbox(*nats_, "puback")));
    ASSERT_TRUE(nats_->next_msg());
  }
  auto c = connect();
  ASSERT_TRUE(c->sub("push.slow", "slow"));
  // The burst: 11 messages of 100 KB (the 11th takes the bucket about 51 KB into debt).
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(c->next_msg()) << i;
  // The 12th waits until the debt is paid back (about 2.5 s): not at once, but it comes.
  EXPECT_FALSE(c->next_msg(1s)) << "the 12th message was not paced";
  EXPECT_TRUE(c->next_msg(10s));
  EXPECT_EQ(api("CONSUMER.INFO.RL.slow").at("delivered").at("stream_seq"), 12);
}

TEST_F(JsConsumers, AGoneSubscribersMessageIsPushedToTheNextAfterAckWait) {
  create_durable("relay", R"(,"deliver_subject":"push.relay","ack_wait":1000000000)");
  publish("orders.eu", "lost");
  {
    auto gone = connect();
    ASSERT_TRUE(gone->sub("push.relay", "r"));
    auto m = gone->next_msg();
    ASSERT_TRUE(m);
    EXPECT_EQ(attempt(*m), "1");
  }  // closed without an ack
  // The next subscriber (a reconnected client) gets it as attempt 2, and new messages too.
  auto next = connect();
  ASSERT_TRUE(next->sub("push.relay", "r"));
  auto m = next->next_msg(15s);
  ASSERT_TRUE(m) << to_string(next->last().kind);
  EXPECT_EQ(m->payload, "lost");
  EXPECT_EQ(attempt(*m), "2");
  EXPECT_TRUE(ack_sync(*next, *m, "+ACK"));
  publish("orders.us", "later");
  m = next->next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "later");
  EXPECT_EQ(attempt(*m), "1");
  EXPECT_TRUE(ack_sync(*next, *m, "+ACK"));
  EXPECT_EQ(api("CONSUMER.INFO.ORDERS.relay").at("num_ack_pending"), 0);
}

// With users, the subscriber a flow-control request reached may answer on its reply subject
// without a publish permission on `$JS.FC.>` (as on a request's reply inbox); a `$JS.FC`
// subject it was not sent stays refused.
TEST(JsConsumersWithUsers, TheSubscriberAnswersFlowControlWithoutPublishOnJsFc) {
  TempDir dir;
  const auto users_path = dir.path() / "users.toml";
  const std::string password = "pu5her-secret-7f1";
  const auto hash = cheap_password_hash(password);
  ASSERT_FALSE(hash.empty());
  std::ofstream(users_path) << "[[users]]\nname = \"pusher\"\npassword_hash = \"" << hash
                            << "\"\nadmin = [\"BIG\"]\npublish = [\"big.*\"]\n"
                               "subscribe = [\"BIG\", \"push.fc\"]\n";
  TestDaemon d("nats_listen = \"127.0.0.1:0\"\nusers_file = \"" + users_path.string() + "\"\n");
  d.start();
  NatsConnection c(d.nats_port());
  ASSERT_TRUE(c.handshake(R"({"verbose":false,"headers":true,"no_responders":true,)"
                          R"("user":"pusher","pass":")" +
                          password + R"("})"));
  ASSERT_TRUE(c.sub("_INBOX.p1.>", "inbox"));
  const auto api = [&](const std::string& subject, const std::string& body) {
    EXPECT_TRUE(c.pub("$JS.API." + subject, body, "_INBOX.p1.api"));
    auto m = c.next_msg();
    EXPECT_TRUE(m) << subject << ": " << c.last().text;
    return m ? boost::json::parse(m->payload).as_object() : boost::json::object{};
  };
  auto a = api("STREAM.CREATE.BIG", R"({"name":"BIG","subjects":["big.>"]})");
  ASSERT_FALSE(a.contains("error")) << boost::json::serialize(a);
  a = api("CONSUMER.DURABLE.CREATE.BIG.fc",
          R"({"stream_name":"BIG","config":{"durable_name":"fc","ack_policy":"explicit",)"
          R"("deliver_subject":"push.fc","flow_control":true,"idle_heartbeat":200000000}})");
  ASSERT_FALSE(a.contains("error")) << boost::json::serialize(a);
  ASSERT_TRUE(c.sub("push.fc", "fc"));
  constexpr int kCount = 30;
  const std::string big(std::size_t{100} * 1000, 'x');
  for (int i = 0; i < kCount; ++i) ASSERT_TRUE(c.pub("big.m", big));
  // A subject of the flow-control form that this connection was never sent.
  ASSERT_TRUE(c.pub("$JS.FC.BIG.fc.forged", ""));
  std::string request;
  int messages = 0;
  bool refused = false;
  while (messages < kCount) {
    auto e = c.next();
    ASSERT_TRUE(e.kind != NatsEvent::Kind::timeout && e.kind != NatsEvent::Kind::closed)
        << "after " << messages << " messages: " << to_string(e.kind);
    if (e.kind == NatsEvent::Kind::err) {
      EXPECT_EQ(e.text, "Permissions Violation for Publish to \"$JS.FC.BIG.fc.forged\"");
      refused = true;
      continue;
    }
    if (e.kind != NatsEvent::Kind::msg) continue;
    if (e.headers.starts_with("NATS/1.0 100 FlowControl Request")) {
      request = e.reply;
      ASSERT_TRUE(c.pub(request, ""));  // answered: pushing goes on
    } else if (!e.headers.starts_with("NATS/1.0 100")) {
      ++messages;
    }
  }
  EXPECT_FALSE(request.empty()) << "no flow-control request came";
  EXPECT_TRUE(refused) << "the forged flow-control answer was not refused";
  ASSERT_TRUE(c.flush());
}

// A consumer is the same after a restart: its whole config (the NATS-only fields included, an
// update too) and its creation time come back with its group; it delivers where it left off.
TEST_F(JsConsumers, ARestartKeepsTheConsumersConfig) {
  publish("orders.eu", "one");
  publish("orders.eu", "two");
  publish("orders.eu", "three");
  create_durable("kept", R"(,"description":"before","deliver_policy":"by_start_sequence",)"
                         R"("opt_start_seq":2,"ack_wait":1500000001,"max_ack_pending":7,)"
                         R"("max_waiting":9,"max_batch":3,"max_expires":60000000000)");
  auto a = api("CONSUMER.DURABLE.CREATE.ORDERS.kept",
               R"({"stream_name":"ORDERS","config":{"durable_name":"kept",)"
               R"("description":"after","deliver_policy":"by_start_sequence",)"
               R"("opt_start_seq":2,"ack_wait":1500000001,"max_ack_pending":7,)"
               R"("max_waiting":9,"max_batch":3,"max_expires":60000000000}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  auto p = pull("kept", R"({"batch":1})", 1);
  ASSERT_EQ(p.messages.size(), 1u) << p.status;
  EXPECT_EQ(p.messages[0].payload, "two");
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "+ACK"));
  create_durable("pushed", R"(,"deliver_subject":"push.kept","idle_heartbeat":500000000)");
  // An ephemeral consumer nobody touches after the restart: removed once its
  // inactive_threshold (1 s) has run from the restart.
  auto eph =
      api("CONSUMER.CREATE.ORDERS", R"({"stream_name":"ORDERS","config":{"ack_policy":"explicit",)"
                                    R"("inactive_threshold":1000000000}})");
  ASSERT_EQ(err_code(eph), 0) << json::serialize(eph);
  const std::string ephemeral(eph.at("name").as_string());
  const auto before = api("CONSUMER.INFO.ORDERS.kept");
  ASSERT_EQ(err_code(before), 0) << json::serialize(before);
  EXPECT_EQ(before.at("config").at("description"), "after");

  nats_.reset();
  ASSERT_EQ(daemon_->stop(), 0);
  daemon_->start();
  nats_ = connect();
  auto watch = connect();
  ASSERT_TRUE(watch->sub("$JS.EVENT.ADVISORY.CONSUMER.DELETED.ORDERS.>", "gone"));
  ASSERT_TRUE(watch->flush());

  const auto after = api("CONSUMER.INFO.ORDERS.kept");
  ASSERT_EQ(err_code(after), 0) << json::serialize(after);
  // The consumer sequence continues: one delivery before the restart (kept with the ack's
  // progress write).
  EXPECT_EQ(after.at("delivered").at("consumer_seq"), 1);
  EXPECT_EQ(after.at("delivered").at("stream_seq"), 2);
  EXPECT_EQ(json::serialize(after.at("config")), json::serialize(before.at("config")));
  EXPECT_EQ(after.at("created"), before.at("created"));
  EXPECT_EQ(after.at("config").at("opt_start_seq"), 2);
  EXPECT_EQ(after.at("config").at("ack_wait"), 1500000001);
  // The restored config is the one re-creates compare with, and it governs pulls.
  a = api("CONSUMER.DURABLE.CREATE.ORDERS.kept",
          R"({"stream_name":"ORDERS","config":{"durable_name":"kept","deliver_policy":"all",)"
          R"("ack_wait":1500000001,"max_ack_pending":7,"max_waiting":9}})");
  EXPECT_EQ(err_code(a), 10012) << json::serialize(a);
  EXPECT_EQ(pull("kept", R"({"batch":5})", 1).status, "409 Exceeded MaxRequestBatch of 3");
  p = pull("kept", R"({"batch":3,"no_wait":true})", 2);
  ASSERT_EQ(p.messages.size(), 1u) << p.status;
  EXPECT_EQ(p.messages[0].payload, "three");
  EXPECT_EQ(ack_tokens(p.messages[0]).at(6), "2");  // the consumer sequence after 1

  // The ephemeral consumer, not touched since the restart, is removed after 1 s of it.
  auto gone = watch->next_msg(10s);
  ASSERT_TRUE(gone) << "the restored ephemeral consumer was not removed";
  EXPECT_EQ(gone->subject, "$JS.EVENT.ADVISORY.CONSUMER.DELETED.ORDERS." + ephemeral);

  // A push consumer pushes again after the restart, with nobody making it anew.
  auto sub = connect();
  ASSERT_TRUE(sub->sub("push.kept", "kept"));
  std::vector<std::string> pushed;
  while (pushed.size() < 3) {
    auto m = sub->next_msg();
    ASSERT_TRUE(m) << "after " << pushed.size() << " pushed: " << to_string(sub->last().kind);
    if (!m->hmsg || !m->headers.starts_with("NATS/1.0 100")) pushed.push_back(m->payload);
  }
  EXPECT_EQ(pushed, (std::vector<std::string>{"one", "two", "three"}));
}

TEST_F(JsConsumers, AnUpdatedMaxAckPendingAppliesToTheCurrentSubscription) {
  create_durable("tight", R"(,"max_ack_pending":1)");
  publish("orders.eu", "one");
  publish("orders.eu", "two");
  // One in flight at most: a pull of two gets one and waits for the other.
  const std::string reply = inbox(*nats_, "pull");
  ASSERT_TRUE(nats_->pub("$JS.API.CONSUMER.MSG.NEXT.ORDERS.tight", R"({"batch":2})", reply));
  auto first = nats_->next_msg();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->payload, "one");
  // Raised while that request waits (on another connection): the second comes to it at once,
  // with the first still unacked.
  auto admin = connect();
  auto a = api(*admin, "CONSUMER.DURABLE.CREATE.ORDERS.tight",
               R"({"stream_name":"ORDERS","config":{"durable_name":"tight",)"
               R"("ack_policy":"explicit","max_ack_pending":2}})");
  ASSERT_EQ(err_code(a), 0) << json::serialize(a);
  EXPECT_EQ(a.at("config").at("max_ack_pending"), 2);
  auto second = nats_->next_msg();
  ASSERT_TRUE(second) << "the raised max_ack_pending did not apply";
  EXPECT_EQ(second->subject, "orders.eu");
  EXPECT_EQ(second->payload, "two");
  EXPECT_EQ(api(*admin, "CONSUMER.INFO.ORDERS.tight").at("num_ack_pending"), 2);
}

// Advisories reach core subscribers: a consumer created and deleted, a +TERM, and a message
// that used up max_deliver.
TEST_F(JsConsumers, AdvisoriesReachCoreSubscribers) {
  auto watch = connect();
  ASSERT_TRUE(watch->sub("$JS.EVENT.ADVISORY.CONSUMER.>", "adv"));
  ASSERT_TRUE(watch->flush());
  const auto advisory = [&](const std::string& subject) {
    auto m = watch->next_msg();
    EXPECT_TRUE(m) << "no advisory on " << subject;
    if (!m) return json::object{};
    EXPECT_EQ(m->subject, subject);
    return json::parse(m->payload).as_object();
  };
  create_durable("adv", R"(,"max_deliver":1)");
  auto e = advisory("$JS.EVENT.ADVISORY.CONSUMER.CREATED.ORDERS.adv");
  EXPECT_EQ(e.at("type"), "io.nats.jetstream.advisory.v1.consumer_action");
  EXPECT_EQ(e.at("action"), "create");

  publish("orders.eu", "poison");
  publish("orders.eu", "flaky");
  auto p = pull("adv", R"({"batch":2})", 2);
  ASSERT_EQ(p.messages.size(), 2u);
  EXPECT_TRUE(ack_sync(*nats_, p.messages[0], "+TERM"));
  e = advisory("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.ORDERS.adv");
  EXPECT_EQ(e.at("type"), "io.nats.jetstream.advisory.v1.terminated");
  EXPECT_EQ(e.at("stream"), "ORDERS");
  EXPECT_EQ(e.at("consumer"), "adv");
  EXPECT_EQ(e.at("stream_seq"), 1);
  EXPECT_EQ(e.at("consumer_seq"), 1);
  EXPECT_EQ(e.at("deliveries"), 1);
  EXPECT_FALSE(e.at("id").as_string().empty());
  EXPECT_THAT(std::string(e.at("timestamp").as_string()), ::testing::EndsWith("Z"));

  EXPECT_TRUE(ack_sync(*nats_, p.messages[1], "-NAK"));  // its only delivery is used up
  e = advisory("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.adv");
  EXPECT_EQ(e.at("type"), "io.nats.jetstream.advisory.v1.max_deliver");
  EXPECT_EQ(e.at("stream_seq"), 2);
  EXPECT_EQ(e.at("deliveries"), 1);

  EXPECT_EQ(api("CONSUMER.DELETE.ORDERS.adv").at("success"), true);
  e = advisory("$JS.EVENT.ADVISORY.CONSUMER.DELETED.ORDERS.adv");
  EXPECT_EQ(e.at("action"), "delete");
}

// Stream advisories, as nats-server 2.9.10 publishes them: created (not for a create of the
// same config again), updated ("modify"), deleted.
TEST_F(JsConsumers, StreamAdvisoriesReachCoreSubscribers) {
  auto watch = connect();
  ASSERT_TRUE(watch->sub("$JS.EVENT.ADVISORY.STREAM.>", "adv"));
  ASSERT_TRUE(watch->flush());
  const auto advisory = [&](const std::string& subject, const std::string& action) {
    auto m = watch->next_msg();
    ASSERT_TRUE(m) << "no advisory on " << subject;
    EXPECT_EQ(m->subject, subject);
    const auto e = json::parse(m->payload).as_object();
    EXPECT_EQ(e.at("type"), "io.nats.jetstream.advisory.v1.stream_action");
    EXPECT_EQ(e.at("stream"), "ADV");
    EXPECT_EQ(std::string(e.at("action").as_string()), action);
    EXPECT_FALSE(e.at("id").as_string().empty());
    EXPECT_FALSE(e.contains("consumer"));
  };
  const std::string config = R"({"name":"ADV","subjects":["adv.>"]})";
  ASSERT_EQ(err_code(api("STREAM.CREATE.ADV", config)), 0);
  advisory("$JS.EVENT.ADVISORY.STREAM.CREATED.ADV", "create");
  ASSERT_EQ(err_code(api("STREAM.CREATE.ADV", config)), 0);  // the same again: no advisory
  ASSERT_EQ(err_code(api("STREAM.UPDATE.ADV", R"({"name":"ADV","subjects":["adv.>","adv2"]})")), 0);
  advisory("$JS.EVENT.ADVISORY.STREAM.UPDATED.ADV", "modify");
  ASSERT_EQ(api("STREAM.DELETE.ADV").at("success"), true);
  advisory("$JS.EVENT.ADVISORY.STREAM.DELETED.ADV", "delete");
}

}  // namespace
}  // namespace loft::testing
