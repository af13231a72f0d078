// JetStream streams on the real loftd through its NATS port (a raw-socket NATS client,
// tests/support/nats_client.hpp): the STREAM.* API (create, info, update, delete, names, list,
// purge, msg get) and its errors with nats-server's err_codes; publish with a PubAck once the
// write is confirmed; Nats-Msg-Id dedup, also across loft's own protocol; the Nats-Expected-*
// headers; streams, subjects and messages after a restart.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nats_client.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace json = boost::json;

// A NATS connection that makes requests as NATS clients do: one wildcard inbox subscription,
// a reply subject per request.
class Requester {
 public:
  explicit Requester(std::uint16_t port) : c_(port) {
    EXPECT_TRUE(c_.handshake());
    EXPECT_TRUE(c_.sub("_INBOX.test.*", "1"));
  }
  NatsConnection& connection() { return c_; }

  // The JSON answer to `payload` on `subject` (with the header block `headers`, if any); a
  // null value when none came.
  json::value request(std::string_view subject, std::string_view payload = "",
                      std::string_view headers = "") {
    const std::string reply = "_INBOX.test." + std::to_string(++n_);
    EXPECT_TRUE(headers.empty() ? c_.pub(subject, payload, reply)
                                : c_.hpub(subject, headers, payload, reply));
    for (;;) {
      auto m = c_.next_msg(10s);
      if (!m) {
        ADD_FAILURE() << "no answer on " << subject << ": " << to_string(c_.last().kind) << " "
                      << c_.last().text;
        return nullptr;
      }
      if (m->subject != reply) continue;  // an earlier request's late answer
      boost::system::error_code ec;
      auto v = json::parse(m->payload, ec);
      EXPECT_FALSE(ec) << m->payload;
      return v;
    }
  }
  json::object api(std::string_view subject, std::string_view payload = "") {
    auto v = request(subject, payload);
    return v.is_object() ? v.get_object() : json::object{};
  }

 private:
  NatsConnection c_;
  int n_ = 0;
};

std::int64_t err_code(const json::object& answer) {
  const auto* e = answer.if_contains("error");
  return e != nullptr ? e->at("err_code").to_number<std::int64_t>() : 0;
}
std::int64_t code(const json::object& answer) {
  const auto* e = answer.if_contains("error");
  return e != nullptr ? e->at("code").to_number<std::int64_t>() : 0;
}
std::uint64_t num(const json::value& v) { return v.to_number<std::uint64_t>(); }

class NatsJs : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<TestDaemon>("nats_listen = \"127.0.0.1:0\"\n");
    daemon_->start();
    r_ = std::make_unique<Requester>(daemon_->nats_port());
  }
  json::object create(std::string_view name, std::string_view config) {
    return r_->api("$JS.API.STREAM.CREATE." + std::string(name), config);
  }
  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<Requester> r_;
};

TEST_F(NatsJs, AccountInfoCountsStreams) {
  auto info = r_->api("$JS.API.INFO");
  EXPECT_EQ(info.at("type").as_string(), "io.nats.jetstream.api.v1.account_info_response");
  EXPECT_EQ(num(info.at("streams")), 0u);
  ASSERT_EQ(err_code(create("ORDERS", R"({"subjects":["orders.>"]})")), 0);
  info = r_->api("$JS.API.INFO");
  EXPECT_EQ(num(info.at("streams")), 1u);
  EXPECT_EQ(info.at("limits").at("max_streams").as_int64(), -1);
}

TEST_F(NatsJs, CreateInfoUpdateDelete) {
  auto created = create("ORDERS", R"({"name":"ORDERS","subjects":["orders.>"],"max_msgs":100,
                                      "duplicate_window":60000000000})");
  ASSERT_EQ(err_code(created), 0) << json::serialize(created);
  EXPECT_EQ(created.at("type").as_string(), "io.nats.jetstream.api.v1.stream_create_response");
  const auto& config = created.at("config").as_object();
  EXPECT_EQ(json::serialize(config.at("subjects")), R"(["orders.>"])");
  EXPECT_EQ(config.at("max_msgs").as_int64(), 100);
  EXPECT_EQ(config.at("max_bytes").as_int64(), -1);
  EXPECT_EQ(num(config.at("duplicate_window")), 60'000'000'000u);
  EXPECT_EQ(config.at("storage").as_string(), "file");
  EXPECT_EQ(config.at("retention").as_string(), "limits");
  EXPECT_EQ(num(created.at("state").at("messages")), 0u);

  // The same config again is no error (as nats-server); a different one is 10058.
  EXPECT_EQ(err_code(create("ORDERS", R"({"subjects":["orders.>"],"max_msgs":100,
                                          "duplicate_window":60000000000})")),
            0);
  EXPECT_EQ(err_code(create("ORDERS", R"({"subjects":["other.>"]})")), 10058);
  // Overlapping subjects: 10065.
  EXPECT_EQ(err_code(create("OTHER", R"({"subjects":["orders.eu"]})")), 10065);

  auto updated = r_->api("$JS.API.STREAM.UPDATE.ORDERS",
                         R"({"name":"ORDERS","subjects":["orders.>","invoices.*"],"max_msgs":5,
                             "max_age":3600000000000,"duplicate_window":60000000000})");
  ASSERT_EQ(err_code(updated), 0) << json::serialize(updated);
  EXPECT_EQ(json::serialize(updated.at("config").at("subjects")), R"(["orders.>","invoices.*"])");
  EXPECT_EQ(updated.at("config").at("max_msgs").as_int64(), 5);
  EXPECT_EQ(num(updated.at("config").at("max_age")), 3'600'000'000'000u);
  // The dedup window is fixed at creation.
  const auto window = r_->api("$JS.API.STREAM.UPDATE.ORDERS",
                              R"({"subjects":["orders.>"],"duplicate_window":5000000000})");
  EXPECT_EQ(err_code(window), 10052);
  EXPECT_THAT(std::string(window.at("error").at("description").as_string()),
              HasSubstr("duplicate_window"));

  auto info = r_->api("$JS.API.STREAM.INFO.ORDERS");
  EXPECT_EQ(info.at("type").as_string(), "io.nats.jetstream.api.v1.stream_info_response");
  EXPECT_EQ(json::serialize(info.at("config").at("subjects")), R"(["orders.>","invoices.*"])");

  const auto deleted = r_->api("$JS.API.STREAM.DELETE.ORDERS");
  EXPECT_TRUE(deleted.at("success").as_bool());
  const auto gone = r_->api("$JS.API.STREAM.INFO.ORDERS");
  EXPECT_EQ(err_code(gone), 10059);
  EXPECT_EQ(code(gone), 404);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.DELETE.ORDERS")), 10059);
  // After the delete its subjects are free again, and no longer stored.
  EXPECT_EQ(err_code(create("OTHER", R"({"subjects":["orders.eu"]})")), 0);
}

TEST_F(NatsJs, ErrorsCarryNatsServerErrCodes) {
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.INFO.NOPE")), 10059);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.UPDATE.NOPE", "{}")), 10059);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.PURGE.NOPE")), 10059);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.GET.NOPE", R"({"seq":1})")), 10059);
  EXPECT_EQ(err_code(create("S", R"({"name":"T"})")), 10056);
  EXPECT_EQ(err_code(create("S", "{not json")), 10025);
  EXPECT_EQ(err_code(create("S", R"({"retention":"workqueue"})")), 10052);
  EXPECT_EQ(err_code(create("S", R"({"num_replicas":3})")), 10074);
  EXPECT_EQ(err_code(create("bad.name", "{}")), 10052);
  const auto unknown = r_->api("$JS.API.KV.NOPE");
  EXPECT_EQ(err_code(unknown), 10003);
  EXPECT_EQ(code(unknown), 400);
}

TEST_F(NatsJs, NamesAndListPageAndFilterBySubject) {
  ASSERT_EQ(err_code(create("A", R"({"subjects":["a.*"]})")), 0);
  ASSERT_EQ(err_code(create("B", R"({"subjects":["b.>"]})")), 0);
  auto names = r_->api("$JS.API.STREAM.NAMES");
  EXPECT_EQ(json::serialize(names.at("streams")), R"(["A","B"])");
  EXPECT_EQ(num(names.at("total")), 2u);
  names = r_->api("$JS.API.STREAM.NAMES", R"({"subject":"b.x.y"})");
  EXPECT_EQ(json::serialize(names.at("streams")), R"(["B"])");
  names = r_->api("$JS.API.STREAM.NAMES", R"({"offset":1})");
  EXPECT_EQ(json::serialize(names.at("streams")), R"(["B"])");
  EXPECT_EQ(num(names.at("offset")), 1u);
  const auto list = r_->api("$JS.API.STREAM.LIST");
  ASSERT_EQ(list.at("streams").as_array().size(), 2u);
  EXPECT_EQ(list.at("streams").as_array()[0].at("config").at("name").as_string(), "A");
  EXPECT_TRUE(list.at("streams").as_array()[1].as_object().contains("state"));
}

TEST_F(NatsJs, PubAckAfterTheWriteWithSequenceAndDuplicate) {
  ASSERT_EQ(err_code(create("ORDERS", R"({"subjects":["orders.>"]})")), 0);
  // A core subscriber gets captured messages too.
  NatsConnection watcher(daemon_->nats_port());
  ASSERT_TRUE(watcher.handshake());
  ASSERT_TRUE(watcher.sub("orders.>", "9"));
  ASSERT_TRUE(watcher.flush());

  auto ack = r_->request("orders.eu", "one").as_object();
  EXPECT_EQ(ack.at("stream").as_string(), "ORDERS");
  EXPECT_EQ(num(ack.at("seq")), 1u);
  EXPECT_FALSE(ack.contains("duplicate"));
  const std::string id_block = "NATS/1.0\r\nNats-Msg-Id: m-1\r\nX-Tag: blue\r\n\r\n";
  ack = r_->request("orders.us", "two", id_block).as_object();
  EXPECT_EQ(num(ack.at("seq")), 2u);
  ack = r_->request("orders.us", "two again", id_block).as_object();
  EXPECT_EQ(num(ack.at("seq")), 2u);
  EXPECT_TRUE(ack.at("duplicate").as_bool());

  auto m = watcher.next_msg();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->subject, "orders.eu");

  // Read back with its subject, id and headers.
  auto got = r_->api("$JS.API.STREAM.MSG.GET.ORDERS", R"({"seq":2})");
  ASSERT_EQ(err_code(got), 0) << json::serialize(got);
  const auto& msg = got.at("message").as_object();
  EXPECT_EQ(msg.at("subject").as_string(), "orders.us");
  EXPECT_EQ(num(msg.at("seq")), 2u);
  EXPECT_EQ(msg.at("data").as_string(), "dHdv");  // "two"
  // base64 of "NATS/1.0\r\nNats-Msg-Id: m-1\r\nX-Tag: blue\r\n\r\n"
  EXPECT_EQ(msg.at("hdrs").as_string(),
            "TkFUUy8xLjANCk5hdHMtTXNnLUlkOiBtLTENClgtVGFnOiBibHVlDQoNCg==");
  got = r_->api("$JS.API.STREAM.MSG.GET.ORDERS", R"({"last_by_subj":"orders.eu"})");
  EXPECT_EQ(num(got.at("message").at("seq")), 1u);
  got = r_->api("$JS.API.STREAM.MSG.GET.ORDERS", R"({"seq":99})");
  EXPECT_EQ(err_code(got), 10037);
  EXPECT_EQ(code(got), 404);

  const auto info = r_->api("$JS.API.STREAM.INFO.ORDERS");
  EXPECT_EQ(num(info.at("state").at("messages")), 2u);
  EXPECT_EQ(num(info.at("state").at("first_seq")), 1u);
  EXPECT_EQ(num(info.at("state").at("last_seq")), 2u);
  EXPECT_NE(info.at("state").at("last_ts").as_string(), "0001-01-01T00:00:00Z");
}

TEST_F(NatsJs, ManyPublishesOfOneReadAllGetTheirPubAcks) {
  ASSERT_EQ(err_code(create("BULK", R"({"subjects":["bulk.*"]})")), 0);
  auto& c = r_->connection();
  std::string burst;
  constexpr int kCount = 500;
  for (int i = 0; i < kCount; ++i) {
    burst += "PUB bulk.x _INBOX.test.b" + std::to_string(i) + " 1\r\nx\r\n";
  }
  ASSERT_TRUE(c.send(burst));
  std::set<std::uint64_t> seqs;
  for (int i = 0; i < kCount; ++i) {
    auto m = c.next_msg(10s);
    ASSERT_TRUE(m.has_value()) << "PubAck " << i;
    seqs.insert(num(json::parse(m->payload).at("seq")));
  }
  EXPECT_EQ(seqs.size(), static_cast<std::size_t>(kCount));
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), static_cast<std::uint64_t>(kCount));
}

TEST_F(NatsJs, PipelinedRequestsOfOneWriteAreAnsweredInOrder) {
  // STREAM.CREATE completes on the broker's writer; the consumer create and the info behind it
  // in the same write wait for it, as nats-server runs a connection's API requests in order.
  std::string burst;
  const auto pub = [&](std::string_view subject, std::string_view reply, std::string_view body) {
    burst += "PUB ";
    burst += subject;
    burst += " ";
    burst += reply;
    burst += " " + std::to_string(body.size()) + "\r\n";
    burst += body;
    burst += "\r\n";
  };
  pub("$JS.API.STREAM.CREATE.ORDERS", "_INBOX.test.s", R"({"subjects":["orders.>"]})");
  pub("$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.C", "_INBOX.test.c",
      R"({"stream_name":"ORDERS","config":{"durable_name":"C","ack_policy":"explicit"}})");
  pub("$JS.API.STREAM.INFO.ORDERS", "_INBOX.test.i", "");
  auto& c = r_->connection();
  ASSERT_TRUE(c.send(burst));
  for (const auto* reply : {"_INBOX.test.s", "_INBOX.test.c", "_INBOX.test.i"}) {
    auto m = c.next_msg(10s);
    ASSERT_TRUE(m.has_value()) << "no answer for " << reply;
    EXPECT_EQ(m->subject, reply);
    const auto answer = json::parse(m->payload).as_object();
    EXPECT_EQ(err_code(answer), 0) << m->payload;
    if (std::string_view(reply) == "_INBOX.test.i") {
      EXPECT_EQ(num(answer.at("state").at("consumer_count")), 1u);
    }
  }
}

TEST_F(NatsJs, AnswersAreValidUtf8AndWrongTypesAreInvalidJson) {
  // The subject's bytes come back in the error, replaced where they are not UTF-8 (the
  // Requester's parse refuses invalid UTF-8).
  auto unknown = r_->api("$JS.API.NOPE.\xff\xfe");
  EXPECT_EQ(err_code(unknown), 10003);
  EXPECT_THAT(std::string(unknown.at("error").at("description").as_string()),
              HasSubstr("NOPE.\xEF\xBF\xBD\xEF\xBF\xBD"));
  auto typed = create("ORDERS", R"({"name":17})");
  EXPECT_EQ(err_code(typed), 10025);
  EXPECT_THAT(std::string(typed.at("error").at("description").as_string()), HasSubstr("name"));
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.INFO.ORDERS")), 10059);
}

TEST_F(NatsJs, DedupHoldsAcrossLoftsProtocolAndNats) {
  ASSERT_EQ(err_code(create("ORDERS", R"({"subjects":["orders.>"]})")), 0);
  auto r = daemon_->loft({"pub", "ORDERS", "native", "--id", "shared-1", "--subject", "orders.eu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ack =
      r_->request("orders.eu", "from nats", "NATS/1.0\r\nNats-Msg-Id: shared-1\r\n\r\n")
          .as_object();
  EXPECT_EQ(num(ack.at("seq")), 1u);
  EXPECT_TRUE(ack.at("duplicate").as_bool());
  // The native message, read by MSG.GET with its subject.
  const auto got = r_->api("$JS.API.STREAM.MSG.GET.ORDERS", R"({"seq":1})");
  EXPECT_EQ(got.at("message").at("subject").as_string(), "orders.eu");
  EXPECT_EQ(got.at("message").at("data").as_string(), "bmF0aXZl");  // "native"
}

TEST_F(NatsJs, ExpectedHeadersAreHonouredOrRefused) {
  ASSERT_EQ(err_code(create("ORDERS", R"({"subjects":["orders.>"]})")), 0);
  auto ack =
      r_->request("orders.eu", "x", "NATS/1.0\r\nNats-Expected-Stream: ORDERS\r\n\r\n").as_object();
  EXPECT_EQ(num(ack.at("seq")), 1u);
  ack =
      r_->request("orders.eu", "x", "NATS/1.0\r\nNats-Expected-Stream: OTHER\r\n\r\n").as_object();
  EXPECT_EQ(err_code(ack), 10060);
  const auto with = [](std::string_view header) {
    std::string block = "NATS/1.0\r\n";
    block += header;
    block += "\r\n\r\n";
    return block;
  };
  // Last sequence: the stream's is 1.
  ack = r_->request("orders.eu", "x", with("Nats-Expected-Last-Sequence: 1")).as_object();
  EXPECT_EQ(num(ack.at("seq")), 2u) << json::serialize(ack);
  ack = r_->request("orders.eu", "x", with("Nats-Expected-Last-Sequence: 1")).as_object();
  EXPECT_EQ(err_code(ack), 10071);
  EXPECT_EQ(code(ack), 400);
  EXPECT_EQ(ack.at("error").at("description").as_string(), "wrong last sequence: 2");
  // Last msg id: the newest message with an id.
  ack = r_->request("orders.us", "x", "NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n").as_object();
  EXPECT_EQ(num(ack.at("seq")), 3u);
  ack = r_->request("orders.us", "x", with("Nats-Expected-Last-Msg-Id: a")).as_object();
  EXPECT_EQ(num(ack.at("seq")), 4u) << json::serialize(ack);
  ack = r_->request("orders.us", "x", with("Nats-Expected-Last-Msg-Id: b")).as_object();
  EXPECT_EQ(err_code(ack), 10070);
  EXPECT_EQ(ack.at("error").at("description").as_string(), "wrong last msg ID: a");
  // Last subject sequence: orders.eu's is 2, orders.jp has none (0).
  ack = r_->request("orders.eu", "x", with("Nats-Expected-Last-Subject-Sequence: 2")).as_object();
  EXPECT_EQ(num(ack.at("seq")), 5u) << json::serialize(ack);
  ack = r_->request("orders.eu", "x", with("Nats-Expected-Last-Subject-Sequence: 2")).as_object();
  EXPECT_EQ(err_code(ack), 10071);
  EXPECT_EQ(ack.at("error").at("description").as_string(), "wrong last sequence: 5");
  ack = r_->request("orders.jp", "x", with("Nats-Expected-Last-Subject-Sequence: 0")).as_object();
  EXPECT_EQ(num(ack.at("seq")), 6u) << json::serialize(ack);
  // Refusals stored nothing; after a restart the checks answer the same.
  auto info = r_->api("$JS.API.STREAM.INFO.ORDERS");
  EXPECT_EQ(num(info.at("state").at("messages")), 6u);
  r_.reset();
  daemon_->stop();
  daemon_->start();
  r_ = std::make_unique<Requester>(daemon_->nats_port());
  ack = r_->request("orders.us", "x", with("Nats-Expected-Last-Msg-Id: b")).as_object();
  EXPECT_EQ(ack.at("error").at("description").as_string(), "wrong last msg ID: a");
  ack = r_->request("orders.eu", "x", with("Nats-Expected-Last-Subject-Sequence: 2")).as_object();
  EXPECT_EQ(ack.at("error").at("description").as_string(), "wrong last sequence: 5");
  ack = r_->request("orders.eu", "x", with("Nats-Expected-Last-Subject-Sequence: 5")).as_object();
  EXPECT_EQ(num(ack.at("seq")), 7u) << json::serialize(ack);
}

TEST_F(NatsJs, RacingExpectedLastSequencePublishesOnlyOnePasses) {
  ASSERT_EQ(err_code(create("RACE", R"({"subjects":["race"]})")), 0);
  constexpr int kRacers = 8;
  std::vector<std::unique_ptr<NatsConnection>> racers;
  for (int i = 0; i < kRacers; ++i) {
    racers.push_back(std::make_unique<NatsConnection>(daemon_->nats_port()));
    ASSERT_TRUE(racers.back()->handshake());
    ASSERT_TRUE(racers.back()->sub("_INBOX.race." + std::to_string(i), "1"));
    ASSERT_TRUE(racers.back()->flush());
  }
  for (int i = 0; i < kRacers; ++i) {
    ASSERT_TRUE(racers[i]->hpub("race", "NATS/1.0\r\nNats-Expected-Last-Sequence: 0\r\n\r\n", "x",
                                "_INBOX.race." + std::to_string(i)));
  }
  int passed = 0;
  int refused = 0;
  for (auto& c : racers) {
    auto m = c->next_msg(10s);
    ASSERT_TRUE(m.has_value());
    const auto ack = json::parse(m->payload).as_object();
    if (err_code(ack) == 10071) {
      refused += 1;
    } else {
      EXPECT_EQ(num(ack.at("seq")), 1u) << m->payload;
      passed += 1;
    }
  }
  EXPECT_EQ(passed, 1);
  EXPECT_EQ(refused, kRacers - 1);
}

TEST_F(NatsJs, MsgGetNextBySubjectAndItsBounds) {
  ASSERT_EQ(err_code(create("N", R"({"subjects":["n.*"]})")), 0);
  for (const char* s : {"n.a", "n.b", "n.a", "n.b"}) r_->request(s, s);
  auto got = r_->api("$JS.API.STREAM.MSG.GET.N", R"({"next_by_subj":"n.b"})");
  EXPECT_EQ(num(got.at("message").at("seq")), 2u) << json::serialize(got);
  got = r_->api("$JS.API.STREAM.MSG.GET.N", R"({"seq":3,"next_by_subj":"n.b"})");
  EXPECT_EQ(num(got.at("message").at("seq")), 4u) << json::serialize(got);
  got = r_->api("$JS.API.STREAM.MSG.GET.N", R"({"seq":2,"next_by_subj":"n.*"})");
  EXPECT_EQ(num(got.at("message").at("seq")), 2u) << json::serialize(got);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.GET.N", R"({"seq":5,"next_by_subj":"n.a"})")),
            10037);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.GET.N", R"({"last_by_subj":"n.c"})")), 10037);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.GET.N", R"({"next_by_subj":"n..x"})")), 10003);
  // Past the scan bound: a clear 10003, not a "no message".
  auto& c = r_->connection();
  std::string burst;
  for (int i = 0; i < 10'000; ++i) burst += "PUB n.z 1\r\nz\r\n";
  ASSERT_TRUE(c.send(burst));
  ASSERT_TRUE(eventually(
      [&] { return num(r_->api("$JS.API.STREAM.INFO.N").at("state").at("messages")) == 10'004u; }));
  got = r_->api("$JS.API.STREAM.MSG.GET.N", R"({"last_by_subj":"n.a"})");
  EXPECT_EQ(err_code(got), 10003);
  EXPECT_THAT(std::string(got.at("error").at("description").as_string()), HasSubstr("10000"));
  // From sequence 1 the bound ends 4 messages short of the end; from 5 it reaches it.
  got = r_->api("$JS.API.STREAM.MSG.GET.N", R"({"seq":1,"next_by_subj":"n.q"})");
  EXPECT_EQ(err_code(got), 10003);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.GET.N", R"({"seq":5,"next_by_subj":"n.a"})")),
            10037);
  got = r_->api("$JS.API.STREAM.MSG.GET.N", R"({"last_by_subj":"n.z"})");
  EXPECT_EQ(num(got.at("message").at("seq")), 10'004u);
}

TEST_F(NatsJs, MsgDeleteLeavesAHoleThatSurvivesARestart) {
  ASSERT_EQ(err_code(create("D", R"({"subjects":["d"]})")), 0);
  for (int i = 0; i < 3; ++i) r_->request("d", "m");
  auto answer = r_->api("$JS.API.STREAM.MSG.DELETE.D", R"({"seq":2,"no_erase":true})");
  EXPECT_EQ(err_code(answer), 0);
  EXPECT_EQ(json::serialize(answer),
            R"({"type":"io.nats.jetstream.api.v1.stream_msg_delete_response","success":true})");
  const auto check = [&] {
    const auto info = r_->api("$JS.API.STREAM.INFO.D");
    EXPECT_EQ(num(info.at("state").at("messages")), 2u);
    EXPECT_EQ(num(info.at("state").at("num_deleted")), 1u);
    EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.GET.D", R"({"seq":2})")), 10037);
    EXPECT_EQ(num(r_->api("$JS.API.STREAM.MSG.GET.D", R"({"seq":3})").at("message").at("seq")), 3u);
  };
  check();
  r_.reset();
  ASSERT_EQ(daemon_->stop(), 0);
  daemon_->start();
  r_ = std::make_unique<Requester>(daemon_->nats_port());
  check();
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.DELETE.D", R"({"seq":2})")), 10043);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.DELETE.D", R"({"seq":9})")), 10057);
  EXPECT_EQ(err_code(r_->api("$JS.API.STREAM.MSG.DELETE.D", R"({"seq":1})")), 0);
  EXPECT_EQ(num(r_->api("$JS.API.STREAM.INFO.D").at("state").at("first_seq")), 3u);
}

TEST_F(NatsJs, PurgeAllKeepAndSeq) {
  ASSERT_EQ(err_code(create("P", R"({"subjects":["p.*"]})")), 0);
  for (int i = 0; i < 10; ++i) r_->request("p.a", "m");
  auto purged = r_->api("$JS.API.STREAM.PURGE.P", R"({"seq":3})");
  EXPECT_EQ(num(purged.at("purged")), 2u);
  purged = r_->api("$JS.API.STREAM.PURGE.P", R"({"keep":4})");
  EXPECT_EQ(num(purged.at("purged")), 4u);
  auto info = r_->api("$JS.API.STREAM.INFO.P");
  EXPECT_EQ(num(info.at("state").at("first_seq")), 7u);
  // A filter that does not cover the stream deletes from the middle: all but the newest.
  purged = r_->api("$JS.API.STREAM.PURGE.P", R"({"filter":"p.a","keep":1})");
  EXPECT_EQ(num(purged.at("purged")), 3u);
  info = r_->api("$JS.API.STREAM.INFO.P");
  EXPECT_EQ(num(info.at("state").at("first_seq")), 10u);
  purged = r_->api("$JS.API.STREAM.PURGE.P", R"({"filter":"p.*"})");
  EXPECT_EQ(num(purged.at("purged")), 1u);
  info = r_->api("$JS.API.STREAM.INFO.P");
  EXPECT_EQ(num(info.at("state").at("messages")), 0u);
  EXPECT_EQ(num(info.at("state").at("first_seq")), 11u);
  EXPECT_EQ(num(info.at("state").at("last_seq")), 10u);
  // Sequences go on after a purge.
  EXPECT_EQ(num(r_->request("p.a", "m").at("seq")), 11u);
}

TEST_F(NatsJs, RestartKeepsStreamsSubjectsAndMessages) {
  ASSERT_EQ(
      err_code(create("ORDERS", R"({"subjects":["orders.>"],"duplicate_window":60000000000})")), 0);
  ASSERT_EQ(num(r_->request("orders.eu", "kept").at("seq")), 1u);
  r_.reset();
  ASSERT_EQ(daemon_->stop(), 0);
  daemon_->start();
  r_ = std::make_unique<Requester>(daemon_->nats_port());
  const auto info = r_->api("$JS.API.STREAM.INFO.ORDERS");
  ASSERT_EQ(err_code(info), 0);
  EXPECT_EQ(json::serialize(info.at("config").at("subjects")), R"(["orders.>"])");
  EXPECT_EQ(num(info.at("config").at("duplicate_window")), 60'000'000'000u);
  EXPECT_EQ(num(info.at("state").at("messages")), 1u);
  // Still captured.
  EXPECT_EQ(num(r_->request("orders.us", "after").at("seq")), 2u);
  const auto got = r_->api("$JS.API.STREAM.MSG.GET.ORDERS", R"({"seq":1})");
  EXPECT_EQ(got.at("message").at("subject").as_string(), "orders.eu");
}

}  // namespace
}  // namespace loft::testing
