// The pure parts of the HTTP endpoint: routes, publish bodies, confirms, errors, and the
// Prometheus page built from a snapshot.

#include "loft/http/api.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "loft/http/prometheus.hpp"

namespace loft::http {
namespace {

using ::testing::HasSubstr;

TEST(Route, KnowsEveryEndpointAndIgnoresTheQuery) {
  EXPECT_EQ(route("/metrics")->endpoint, Endpoint::metrics);
  EXPECT_EQ(route("/metrics?x=1")->endpoint, Endpoint::metrics);
  EXPECT_EQ(route("/healthz")->endpoint, Endpoint::healthz);
  EXPECT_EQ(route("/readyz")->endpoint, Endpoint::readyz);
  EXPECT_EQ(route("/v1/topics")->endpoint, Endpoint::topics);
  const auto t = route("/v1/topics/orders.eu");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->endpoint, Endpoint::topic);
  EXPECT_EQ(t->topic, "orders.eu");
  EXPECT_EQ(route("/v1/topics/o/groups")->endpoint, Endpoint::topic_groups);
  EXPECT_EQ(route("/v1/topics/o/messages")->endpoint, Endpoint::topic_messages);
  EXPECT_EQ(route("/v1/topics/o/messages")->topic, "o");
  EXPECT_EQ(allowed_method(Endpoint::topic_messages), "POST");
  EXPECT_EQ(allowed_method(Endpoint::metrics), "GET");
}

TEST(Route, UnknownPathsAreNotFound) {
  for (const auto* p : {"/", "", "/metric", "/v1", "/v1/topics/", "/v1/topics//groups",
                        "/v1/topics/o/other", "/v1/topics/o/groups/x", "/v2/topics"}) {
    EXPECT_FALSE(route(p)) << p;
  }
}

TEST(StatusOf, MapsErrorCodes) {
  EXPECT_EQ(status_of(Errc::invalid_request), 400u);
  EXPECT_EQ(status_of(Errc::invalid_name), 400u);
  EXPECT_EQ(status_of(Errc::topic_not_found), 404u);
  EXPECT_EQ(status_of(Errc::dedup_conflict), 409u);
  EXPECT_EQ(status_of(Errc::message_too_large), 413u);
  EXPECT_EQ(status_of(Errc::storage_error), 503u);
  EXPECT_EQ(status_of(Errc::shutting_down), 503u);
  EXPECT_EQ(status_of(Errc::internal_error), 500u);
}

TEST(ErrorJson, CarriesCodeTextAndMessage) {
  EXPECT_EQ(error_json(Error{Errc::topic_not_found, "topic 'x' does not exist"}),
            R"({"error":{"code":"topic not found","message":"topic 'x' does not exist"}})");
}

TEST(ParsePublishBody, OneMessageWithEveryField) {
  const auto b = parse_publish_body(
      R"({"id":"a-1","key":"k","headers":{"h1":"v1","h2":"v2"},"payload":"hello"})");
  ASSERT_TRUE(b) << b.error().detail;
  EXPECT_FALSE(b->array);
  ASSERT_EQ(b->messages.size(), 1u);
  const auto& m = b->messages[0];
  EXPECT_EQ(m.id, "a-1");
  EXPECT_EQ(m.key, "k");
  EXPECT_EQ(m.payload, "hello");
  ASSERT_EQ(m.headers.size(), 2u);
  EXPECT_EQ(m.headers[0], (Header{"h1", "v1"}));
  EXPECT_EQ(m.headers[1], (Header{"h2", "v2"}));
}

TEST(ParsePublishBody, AnArrayAndBase64Payloads) {
  const auto b =
      parse_publish_body(R"([{"payload":"a"},{"payload_base64":"AAH/"},{"payload_base64":""}])");
  ASSERT_TRUE(b) << b.error().detail;
  EXPECT_TRUE(b->array);
  ASSERT_EQ(b->messages.size(), 3u);
  EXPECT_EQ(b->messages[0].payload, "a");
  EXPECT_EQ(b->messages[1].payload, std::string("\x00\x01\xff", 3));
  EXPECT_EQ(b->messages[2].payload, "");
  const auto padded = parse_publish_body(R"({"payload_base64":"aGk="})");
  ASSERT_TRUE(padded);
  EXPECT_EQ(padded->messages[0].payload, "hi");
}

TEST(ParsePublishBody, RejectsBadBodiesNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"not json", "not valid JSON"},
      {"[]", "empty array"},
      {"42", "must be a JSON object"},
      {R"({"id":"x"})", "needs payload or payload_base64"},
      {R"({"payload":"a","payload_base64":"YQ=="})", "both payload and payload_base64"},
      {R"({"payload":1})", "payload must be a string"},
      {R"({"payload":"a","headers":["x"]})", "headers must be an object"},
      {R"({"payload":"a","headers":{"h":1}})", "header 'h' must be a string"},
      {R"({"payload":"a","partition":1})", "unknown field 'partition'"},
      {R"({"payload_base64":"a"})", "not valid base64"},
      {R"({"payload_base64":"a!=="})", "not valid base64"},
      {R"({"payload_base64":"a=bc"})", "not valid base64"},
      {R"([{"payload":"a"},{"key":1,"payload":"b"}])", "message 1 key must be a string"},
  };
  for (const auto& [body, expected] : cases) {
    const auto b = parse_publish_body(body);
    ASSERT_FALSE(b) << body;
    EXPECT_EQ(b.error().code, Errc::invalid_request) << body;
    EXPECT_THAT(b.error().detail, HasSubstr(expected)) << body;
  }
}

TEST(ConfirmsJson, SameShapeAsLoftPubJson) {
  const std::vector<broker::MessageResult> one{{Errc::ok, false, Offset{7}}};
  EXPECT_EQ(confirms_json(one, false), R"({"offset":7,"duplicate":false})");
  EXPECT_EQ(confirms_json(one, true), R"([{"offset":7,"duplicate":false}])");
  const std::vector<broker::MessageResult> mixed{{Errc::ok, true, Offset{3}},
                                                 {Errc::dedup_conflict, false, Offset{}}};
  const auto text = confirms_json(mixed, true);
  EXPECT_THAT(
      text, HasSubstr(R"([{"offset":3,"duplicate":true},{"error":{"code":"message id conflict")"));
}

TEST(Prometheus, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value(R"(a\b"c)"
                               "\n"),
            R"(a\\b\"c\n)");
  EXPECT_EQ(escape_help("a\\b\n\"c\""), "a\\\\b\\n\"c\"");
  EXPECT_EQ(format_value(0.0005), "0.0005");
  EXPECT_EQ(format_value(2.5), "2.5");
  EXPECT_EQ(format_value(10), "10");
}

TEST(Prometheus, ExpositionLines) {
  Exposition e;
  e.family("x_total", "counter", "Things.");
  e.sample("x_total", {{"topic", "a\"b"}, {"group", "g"}}, std::uint64_t{3});
  e.sample("x_total", {}, 0.5);
  EXPECT_EQ(e.text(),
            "# HELP x_total Things.\n# TYPE x_total counter\n"
            "x_total{topic=\"a\\\"b\",group=\"g\"} 3\nx_total 0.5\n");
}

TEST(RenderMetrics, CountersGroupsHistogramAndStore) {
  MetricsSnapshot s;
  s.topics = {"a", "idle"};
  s.broker.topics["a"] = broker::TopicCounters{10, 1000, 2};
  s.broker.publish_confirm.observe(0.0001);  // first bucket
  s.broker.publish_confirm.observe(0.003);   // le=0.005
  s.broker.publish_confirm.observe(100);     // above every bound: only +Inf
  broker::GroupMetrics g;
  g.topic = "a";
  g.group = "billing";
  g.counters = broker::GroupCounters{12, 2, 9, 1, 1};
  g.lag = 1;
  g.in_flight = 0;
  s.groups.push_back(g);
  s.net = NetFigures{3, 0};
  s.resident_bytes = 4096;
  const auto text = render_metrics(s);
  EXPECT_THAT(text, HasSubstr("loft_messages_published_total{topic=\"a\"} 10\n"));
  EXPECT_THAT(text, HasSubstr("loft_messages_published_total{topic=\"idle\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("loft_published_bytes_total{topic=\"a\"} 1000\n"));
  EXPECT_THAT(text, HasSubstr("loft_dedup_hits_total{topic=\"a\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("loft_publish_confirm_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("loft_publish_confirm_duration_seconds_bucket{le=\"0.0025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("loft_publish_confirm_duration_seconds_bucket{le=\"0.005\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("loft_publish_confirm_duration_seconds_bucket{le=\"10\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("loft_publish_confirm_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("loft_publish_confirm_duration_seconds_count 3\n"));
  EXPECT_THAT(text, HasSubstr("loft_messages_acked_total{topic=\"a\",group=\"billing\"} 9\n"));
  EXPECT_THAT(text, HasSubstr("loft_messages_delivered_total{topic=\"a\",group=\"billing\"} 12\n"));
  EXPECT_THAT(text,
              HasSubstr("loft_messages_redelivered_total{topic=\"a\",group=\"billing\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("loft_messages_nacked_total{topic=\"a\",group=\"billing\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("loft_messages_dead_lettered_total{topic=\"a\",group=\"billing\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("loft_group_lag_messages{topic=\"a\",group=\"billing\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("loft_connections_open 3\n"));
  EXPECT_THAT(text, HasSubstr("loft_connections_refused_total 0\n"));
  EXPECT_THAT(text, HasSubstr("loft_process_resident_memory_bytes 4096\n"));
  // The memory store has no RocksDB figures: no such lines rather than made-up zeros.
  EXPECT_THAT(text, ::testing::Not(HasSubstr("loft_rocksdb_")));
  s.store.available = true;
  s.store.write_stops = 4;
  EXPECT_THAT(render_metrics(s), HasSubstr("loft_rocksdb_write_stops_total 4\n"));
}

}  // namespace
}  // namespace loft::http
