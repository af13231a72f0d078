// js::Api with a Broker on the memory store and js::Consumers, without sockets: the requests
// of one connection are answered in arrival order (one that waits for the broker holds back
// the ones after it), a connection's queue is bounded, and answers are valid UTF-8.

#include "natsport/js_api.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "loft/broker/groups.hpp"
#include "loft/storage/store.hpp"
#include "natsport/js_consumers.hpp"
#include "natsport/router.hpp"

namespace loft::natsport::js {
namespace {

// Records the answers it gets as "subject payload".
class Inbox : public Subscriber {
 public:
  bool deliver(const Subscription& /*sub*/, const Outbound& m) override {
    got.push_back(std::string(m.subject) + " " + std::string(m.payload));
    return true;
  }
  void on_subscription_finished(const Subscription& /*sub*/) override {}
  std::vector<std::string> got;
};

class JsApi : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = broker::Broker::open(storage::make_memory_store(), broker::Options{});
    ASSERT_TRUE(b.has_value());
    broker_ = std::move(*b);
    groups_ = std::make_unique<broker::Groups>(
        *broker_, broker::GroupDefaults{},
        [this](std::function<void()> f) { boost::asio::post(io_, std::move(f)); });
    api_ = std::make_unique<Api>(router_, *broker_, io_.get_executor());
    consumers_ = std::make_unique<Consumers>(
        *api_, *groups_, [] {}, io_.get_executor(), "test");
    consumers_->attach();
    ASSERT_TRUE(router_.subscribe(inbox_, "1", "_INBOX.>", "").has_value());
  }
  void TearDown() override {
    consumers_->stop();
    broker_->stop();
    io_.poll();
  }

  Request request(std::string subject, std::string reply, std::string payload,
                  std::uint64_t client = 1) {
    Request r;
    r.subject = std::move(subject);
    r.reply = std::move(reply);
    r.payload = std::move(payload);
    r.client_id = client;
    return r;
  }

  // Runs the io context until `count` answers arrived (or 10 s went by).
  void answers(std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (inbox_.got.size() < count && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_for(std::chrono::milliseconds(50));
      if (io_.stopped()) io_.restart();
    }
  }

  boost::asio::io_context io_;
  std::unique_ptr<broker::Broker> broker_;
  std::unique_ptr<broker::Groups> groups_;
  Router router_;
  Inbox inbox_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<Consumers> consumers_;
};

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST_F(JsApi, PipelinedStreamAndConsumerCreateAnswerInOrder) {
  // Sent back to back, as a client that does not wait for the first answer.
  api_->handle(request("$JS.API.STREAM.CREATE.ORDERS", "_INBOX.a",
                       R"({"name":"ORDERS","subjects":["orders.>"]})"));
  api_->handle(
      request("$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.C", "_INBOX.b",
              R"({"stream_name":"ORDERS","config":{"durable_name":"C","ack_policy":"explicit"}})"));
  api_->handle(request("$JS.API.STREAM.INFO.ORDERS", "_INBOX.c", ""));
  answers(3);
  ASSERT_EQ(inbox_.got.size(), 3u);
  EXPECT_THAT(inbox_.got[0],
              StartsWith("_INBOX.a {\"type\":\"io.nats.jetstream.api.v1.stream_create"));
  EXPECT_THAT(inbox_.got[0], Not(HasSubstr("\"error\"")));
  EXPECT_THAT(inbox_.got[1],
              StartsWith("_INBOX.b {\"type\":\"io.nats.jetstream.api.v1.consumer_create"));
  EXPECT_THAT(inbox_.got[1], Not(HasSubstr("\"error\"")));
  EXPECT_THAT(inbox_.got[2], StartsWith("_INBOX.c "));
  EXPECT_THAT(inbox_.got[2], HasSubstr("\"consumer_count\":1"));
}

TEST_F(JsApi, ConnectionsAreOrderedEachOnItsOwn) {
  api_->handle(request("$JS.API.STREAM.CREATE.A", "_INBOX.a", R"({"name":"A"})", 1));
  // Another connection is not held back by connection 1's create: answered at once.
  api_->handle(request("$JS.API.INFO", "_INBOX.other", "", 2));
  ASSERT_EQ(inbox_.got.size(), 1u);
  EXPECT_THAT(inbox_.got[0], StartsWith("_INBOX.other "));
  // Connection 1's next request waits for its create.
  api_->handle(request("$JS.API.STREAM.INFO.A", "_INBOX.b", "", 1));
  EXPECT_EQ(inbox_.got.size(), 1u);
  answers(3);
  ASSERT_EQ(inbox_.got.size(), 3u);
  EXPECT_THAT(inbox_.got[1], StartsWith("_INBOX.a "));
  EXPECT_THAT(inbox_.got[2], StartsWith("_INBOX.b "));
  EXPECT_THAT(inbox_.got[2], Not(HasSubstr("\"error\"")));
}

TEST_F(JsApi, QueueOfAConnectionIsBounded) {
  api_->handle(request("$JS.API.STREAM.CREATE.A", "_INBOX.first", R"({"name":"A"})"));
  for (std::size_t i = 0; i < Api::kMaxQueued; ++i) {
    api_->handle(request("$JS.API.STREAM.INFO.A", "_INBOX.q", ""));
  }
  EXPECT_TRUE(inbox_.got.empty());
  api_->handle(request("$JS.API.STREAM.INFO.A", "_INBOX.over", ""));
  ASSERT_EQ(inbox_.got.size(), 1u);
  EXPECT_THAT(inbox_.got[0], StartsWith("_INBOX.over "));
  EXPECT_THAT(inbox_.got[0], HasSubstr("\"err_code\":10023"));
  answers(Api::kMaxQueued + 2);
  ASSERT_EQ(inbox_.got.size(), Api::kMaxQueued + 2);
  EXPECT_THAT(inbox_.got[1], StartsWith("_INBOX.first "));
  EXPECT_THAT(inbox_.got.back(), StartsWith("_INBOX.q "));
  EXPECT_THAT(inbox_.got.back(), Not(HasSubstr("\"error\"")));
}

TEST_F(JsApi, AnswerEchoingInvalidUtf8IsValidJson) {
  api_->handle(request("$JS.API.NOPE.\xff\xc3(\xed\xa0\x80.\xc3\xa9", "_INBOX.a", ""));
  ASSERT_EQ(inbox_.got.size(), 1u);
  const std::string payload = inbox_.got[0].substr(inbox_.got[0].find(' ') + 1);
  boost::system::error_code ec;
  const auto v = boost::json::parse(payload, ec);  // refuses invalid UTF-8
  ASSERT_FALSE(ec) << payload;
  EXPECT_EQ(v.at("error").at("err_code").as_int64(), 10003);
  EXPECT_EQ(std::string(v.at("error").at("description").as_string()),
            "unknown JetStream API: $JS.API.NOPE.\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD"
            "\xEF\xBF\xBD.\xc3\xa9");
}

TEST(ValidUtf8, KeepsUtf8AndReplacesEveryBadByte) {
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(valid_utf8("a\x80z"), "a\xEF\xBF\xBDz");              // lone continuation
  EXPECT_EQ(valid_utf8("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(valid_utf8("\xf4\x90\x80\x80").size(), 12u);          // above U+10FFFF
  EXPECT_EQ(valid_utf8("\xe2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
  EXPECT_EQ(valid_utf8(std::string_view("a\0b", 3)), std::string("a\0b", 3));
}

TEST_F(JsApi, WrongFieldTypesAreInvalidJson) {
  api_->handle(request("$JS.API.STREAM.CREATE.S", "_INBOX.a", R"({"name":17})"));
  api_->handle(request("$JS.API.STREAM.NAMES", "_INBOX.b", R"({"offset":"x"})"));
  ASSERT_EQ(inbox_.got.size(), 2u);
  EXPECT_THAT(inbox_.got[0], HasSubstr("\"err_code\":10025"));
  EXPECT_THAT(inbox_.got[0], HasSubstr("field name must be a string"));
  EXPECT_THAT(inbox_.got[1], HasSubstr("\"err_code\":10025"));
  EXPECT_THAT(inbox_.got[1], HasSubstr("field offset"));
  EXPECT_FALSE(broker_->describe_topic("S").has_value());
}

}  // namespace
}  // namespace loft::natsport::js
