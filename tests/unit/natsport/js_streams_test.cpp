// The JetStream mapping of streams onto topics, without sockets or a broker: stream configs
// read (defaults, refusals with nats-server's err_codes), a topic shown as a stream, error
// responses, PubAck-side message mapping, and the small encoders.

#include "natsport/js_streams.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "natsport/js_errors.hpp"
#include "natsport/js_message.hpp"

namespace loft::natsport::js {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(StreamConfig, DefaultsAsNatsServerFillsThemIn) {
  const auto c = parse_stream_config("ORDERS", R"({"name":"ORDERS"})");
  ASSERT_TRUE(c.has_value()) << c.error().description;
  EXPECT_THAT(c->subjects, ElementsAre("ORDERS"));
  EXPECT_EQ(c->duplicate_window_ms, kDefaultDuplicateWindowMs);
  EXPECT_FALSE(c->duplicate_window_given);
  EXPECT_EQ(c->max_messages, 0u);
  EXPECT_EQ(c->max_bytes, 0u);
  EXPECT_EQ(c->max_age_ms, 0u);
}

TEST(StreamConfig, ReadsLimitsInLoftUnits) {
  const auto c = parse_stream_config(
      "ORDERS",
      R"({"name":"ORDERS","subjects":["orders.>","invoices.*"],"max_msgs":1000,"max_bytes":-1,
          "max_age":3600000000000,"duplicate_window":60000000000,"num_replicas":1,
          "storage":"file","retention":"limits","discard":"old","max_msg_size":-1})");
  ASSERT_TRUE(c.has_value()) << c.error().description;
  EXPECT_THAT(c->subjects, ElementsAre("orders.>", "invoices.*"));
  EXPECT_EQ(c->max_messages, 1000u);
  EXPECT_EQ(c->max_bytes, 0u);
  EXPECT_EQ(c->max_age_ms, 3'600'000u);
  EXPECT_EQ(c->duplicate_window_ms, 60'000u);
  EXPECT_TRUE(c->duplicate_window_given);
}

TEST(StreamConfig, DefaultWindowIsCappedByMaxAge) {
  const auto c = parse_stream_config("S", R"({"max_age":5000000000})");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->duplicate_window_ms, 5'000u);
}

TEST(StreamConfig, RefusesWhatLoftCannotHonourWithNatsErrCodes) {
  struct Case {
    const char* json;
    std::uint16_t err_code;
    const char* text;
  };
  for (const auto& [json, err_code, text] : {
           Case{R"({"name":"OTHER"})", 10056, "does not match"},
           Case{R"({"retention":"workqueue"})", 10052, "workqueue"},
           Case{R"({"retention":"interest"})", 10052, "interest"},
           Case{R"({"storage":"memory"})", 10052, "memory"},
           Case{R"({"discard":"new"})", 10052, "discard"},
           Case{R"({"num_replicas":3})", 10074, "replicas"},
           Case{R"({"mirror":{"name":"X"}})", 10052, "mirrors"},
           Case{R"({"sources":[{"name":"X"}]})", 10052, "sources"},
           Case{R"({"max_msgs_per_subject":5})", 10052, "max_msgs_per_subject"},
           Case{R"({"max_age":500000000})", 10052, "max_age"},
           Case{R"({"subjects":["a..b"]})", 10052, "invalid subject"},
           Case{R"({"subjects":["$JS.API.>"]})", 10052, "jetstream api"},
           Case{R"({"max_age":2000000000,"duplicate_window":60000000000})", 10052, "max age"},
           Case{"not json", 10025, "invalid JSON"},
       }) {
    const auto c = parse_stream_config("S", json);
    ASSERT_FALSE(c.has_value()) << json;
    EXPECT_EQ(c.error().err_code, err_code) << json;
    EXPECT_THAT(c.error().description, HasSubstr(text)) << json;
  }
}

TEST(StreamConfig, StreamNamesAreTopicNamesWithoutDots) {
  EXPECT_TRUE(is_valid_stream_name("ORDERS_2-x"));
  for (const char* bad : {"", "a.b", "a*", "a>", "a b", "a/b", "a\\b"}) {
    EXPECT_FALSE(is_valid_stream_name(bad)) << bad;
  }
  EXPECT_FALSE(is_valid_stream_name(std::string(250, 'a')));
}

TopicInfo topic() {
  TopicInfo t;
  t.name = "ORDERS";
  t.subjects = {"orders.>"};
  t.first_offset = Offset{2};
  t.next_offset = Offset{6};
  t.messages = 4;
  t.bytes = 40;
  t.dedup_window_ms = 60'000;
  t.max_messages = 1000;
  t.created_at_ms = 1'700'000'000'123;
  return t;
}

TEST(StreamInfo, ConfigIsEchoedWithNatsServerDefaults) {
  const auto c = config_json(topic());
  EXPECT_EQ(boost::json::serialize(c.at("subjects")), R"(["orders.>"])");
  EXPECT_EQ(c.at("max_msgs").as_int64(), 1000);
  EXPECT_EQ(c.at("max_bytes").as_int64(), -1);
  EXPECT_EQ(c.at("max_age").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(c.at("duplicate_window").to_number<std::uint64_t>(), 60'000'000'000u);
  EXPECT_EQ(c.at("retention").as_string(), "limits");
  EXPECT_EQ(c.at("storage").as_string(), "file");
  EXPECT_EQ(c.at("discard").as_string(), "old");
  EXPECT_EQ(c.at("num_replicas").as_int64(), 1);
  EXPECT_EQ(c.at("max_msg_size").as_int64(), -1);
  EXPECT_EQ(c.at("max_consumers").as_int64(), -1);
}

TEST(StreamInfo, SequencesAreOffsetsPlusOne) {
  const auto s = state_json(topic(), 1'700'000'000'000, 1'700'000'001'500, 2);
  EXPECT_EQ(s.at("messages").to_number<std::uint64_t>(), 4u);
  EXPECT_EQ(s.at("first_seq").to_number<std::uint64_t>(), 3u);
  EXPECT_EQ(s.at("last_seq").to_number<std::uint64_t>(), 6u);
  EXPECT_EQ(s.at("first_ts").as_string(), "2023-11-14T22:13:20.000000000Z");
  EXPECT_EQ(s.at("last_ts").as_string(), "2023-11-14T22:13:21.500000000Z");
  EXPECT_EQ(s.at("consumer_count").to_number<std::uint64_t>(), 2u);

  TopicInfo empty;
  empty.name = "E";
  const auto e = state_json(empty, std::nullopt, std::nullopt, 0);
  EXPECT_EQ(e.at("first_seq").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(e.at("last_seq").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(e.at("first_ts").as_string(), "0001-01-01T00:00:00Z");

  TopicInfo purged = topic();  // all 6 purged: first_seq is the next one, as in nats-server
  purged.first_offset = Offset{6};
  purged.messages = 0;
  const auto p = state_json(purged, std::nullopt, std::nullopt, 0);
  EXPECT_EQ(p.at("first_seq").to_number<std::uint64_t>(), 7u);
  EXPECT_EQ(p.at("last_seq").to_number<std::uint64_t>(), 6u);
}

TEST(StreamInfo, SameConfigComparesSubjectsLimitsAndWindow) {
  auto c = *parse_stream_config("ORDERS", R"({"subjects":["orders.>"],"max_msgs":1000,
                                              "duplicate_window":60000000000})");
  EXPECT_TRUE(same_config(c, topic()));
  c.max_messages = 10;
  EXPECT_FALSE(same_config(c, topic()));
  TopicInfo native;
  native.name = "plain";
  EXPECT_TRUE(stream_subjects(native).empty());
}

TEST(Errors, ResponseCarriesTypeCodeErrCodeAndDescription) {
  const auto json = error_response("stream_info", api_error(err::kStreamNotFound));
  EXPECT_EQ(json, R"({"type":"io.nats.jetstream.api.v1.stream_info_response","error":{"code":404,)"
                  R"("err_code":10059,"description":"stream not found"}})");
  EXPECT_EQ(err::kConsumerNotFound.err_code, 10014);
  EXPECT_EQ(err::kBadRequest.err_code, 10003);
  EXPECT_EQ(err::kStreamNameExist.err_code, 10058);
  EXPECT_EQ(err::kNoMessageFound.err_code, 10037);
  EXPECT_EQ(err::kStreamWrongLastSequence.err_code, 10071);
}

TEST(Message, NatsHeadersBecomeLoftFieldsAndChecks) {
  const std::string block =
      "NATS/1.0\r\nNats-Msg-Id: order-1\r\nNats-Expected-Stream: ORDERS\r\n"
      "Nats-Expected-Last-Sequence: 5\r\nX-Trace: a\r\nX-Trace: b\r\n\r\n";
  const auto in = incoming_message("orders.eu", block, "body");
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->message.subject, "orders.eu");
  EXPECT_EQ(in->message.id, "order-1");
  EXPECT_EQ(in->message.payload, "body");
  EXPECT_THAT(in->message.headers, ElementsAre(Header{"X-Trace", "a"}, Header{"X-Trace", "b"}));
  EXPECT_EQ(in->expect.stream, "ORDERS");
  EXPECT_EQ(in->expect.last_sequence, 5u);
  EXPECT_FALSE(in->expect.last_msg_id.has_value());

  EXPECT_FALSE(
      incoming_message("s", "NATS/1.0\r\nNats-Expected-Last-Sequence: x\r\n\r\n", "").has_value());
  const auto plain = incoming_message("s", "", "p");
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->expect.any());
}

TEST(Message, ExpectedHeadersBecomeBrokerConditionsInOffsets) {
  const auto in = incoming_message(
      "orders.eu",
      "NATS/1.0\r\nNats-Expected-Last-Sequence: 5\r\nNats-Expected-Last-Msg-Id: m-4\r\n"
      "Nats-Expected-Last-Subject-Sequence: 0\r\n\r\n",
      "");
  ASSERT_TRUE(in.has_value());
  const auto c = publish_conditions(in->expect, in->message.subject);
  ASSERT_TRUE(c.last_offset.has_value());
  EXPECT_EQ(*c.last_offset, Offset{4});  // sequence 5 is offset 4
  EXPECT_EQ(c.last_id, "m-4");
  ASSERT_TRUE(c.last_subject_offset.has_value());
  EXPECT_EQ(c.last_subject_offset->subject, "orders.eu");
  EXPECT_EQ(c.last_subject_offset->offset, std::nullopt);  // sequence 0: none
  Expectations zero;
  zero.last_sequence = 0;
  const auto none = publish_conditions(zero, "s");
  ASSERT_TRUE(none.last_offset.has_value());
  EXPECT_EQ(*none.last_offset, std::nullopt);
  EXPECT_FALSE(none.last_id || none.last_subject_offset);
  EXPECT_FALSE(publish_conditions(Expectations{}, "s").any());
}

TEST(Message, RefusedConditionsAnswerAsNatsServer) {
  using What = broker::ConditionFailure::What;
  auto e = condition_error({What::last_offset, Offset{5}, true, {}, "detail"});
  EXPECT_EQ(e.code, 400);
  EXPECT_EQ(e.err_code, 10071);
  EXPECT_EQ(e.description, "wrong last sequence: 6");
  e = condition_error({What::last_offset, std::nullopt, true, {}, "detail"});
  EXPECT_EQ(e.description, "wrong last sequence: 0");
  e = condition_error({What::last_id, std::nullopt, true, "m-7", "detail"});
  EXPECT_EQ(e.err_code, 10070);
  EXPECT_EQ(e.description, "wrong last msg ID: m-7");
  e = condition_error({What::last_subject_offset, Offset{0}, true, {}, "detail"});
  EXPECT_EQ(e.err_code, 10071);
  EXPECT_EQ(e.description, "wrong last sequence: 1");
  e = condition_error({What::last_subject_offset,
                       std::nullopt,
                       false,
                       {},
                       "its last offset is "
                       "unknown"});
  EXPECT_EQ(e.err_code, 10071);
  EXPECT_EQ(e.description, "wrong last sequence: its last offset is unknown");
}

TEST(Message, StoredMessageGetsItsIdBackAsNatsMsgId) {
  const std::vector<Header> headers{{"X-Trace", "a"}};
  EXPECT_EQ(nats_header_block("order-1", headers),
            "NATS/1.0\r\nNats-Msg-Id: order-1\r\nX-Trace: a\r\n\r\n");
  EXPECT_EQ(nats_header_block("", std::vector<Header>{}), "");
}

TEST(Encoders, Base64AndSubjectsCollide) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64(std::string("\xff\x00\x01", 3)), "/wAB");
  EXPECT_TRUE(subjects_collide("other.*", "other.x"));
  EXPECT_TRUE(subjects_collide("orders.>", "orders.eu.1"));
  EXPECT_TRUE(subjects_collide("a.*.c", "a.b.*"));
  EXPECT_FALSE(subjects_collide("orders.>", "orders"));
  EXPECT_FALSE(subjects_collide("a.b", "a.b.c"));
  EXPECT_FALSE(subjects_collide("a.*", "b.*"));
}

TEST(Encoders, StoredMessageAsMsgGetAnswer) {
  StoredMessage m{Offset{1}, 1'700'000'000'000,
                  Message{"id-1", "", {{"K", "v"}}, "o2", "manage.us"}};
  const auto o = stored_message_json("ORDERS", m);
  EXPECT_EQ(o.at("subject").as_string(), "manage.us");
  EXPECT_EQ(o.at("seq").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(o.at("data").as_string(), base64("o2"));
  EXPECT_EQ(o.at("hdrs").as_string(), base64("NATS/1.0\r\nNats-Msg-Id: id-1\r\nK: v\r\n\r\n"));
  m.message.subject.clear();
  EXPECT_EQ(stored_message_json("ORDERS", m).at("subject").as_string(), "ORDERS");
}

}  // namespace
}  // namespace loft::natsport::js
