// The pure parts of the HTTP endpoint: routes, publish bodies, confirms, errors, and the
// Prometheus page built from a snapshot.

#include "loft/http/api.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "loft/http/json.hpp"
#include "loft/http/prometheus.hpp"

namespace loft::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::int64_t kNow = 1'700'000'000'000;  // loftd's clock as the request arrives

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
  EXPECT_EQ(allowed_methods(Endpoint::topic_messages), "POST");
  EXPECT_EQ(allowed_methods(Endpoint::metrics), "GET");
  EXPECT_EQ(allowed_methods(Endpoint::topic), "GET, PUT, DELETE");
}

TEST(Route, TheMethodPicksTheEndpointOfATopic) {
  EXPECT_EQ(endpoint_for(Endpoint::topic, "GET"), Endpoint::topic);
  EXPECT_EQ(endpoint_for(Endpoint::topic, "PUT"), Endpoint::create_topic);
  EXPECT_EQ(endpoint_for(Endpoint::topic, "DELETE"), Endpoint::delete_topic);
  EXPECT_FALSE(endpoint_for(Endpoint::topic, "POST"));
  EXPECT_FALSE(endpoint_for(Endpoint::topic, "put"));  // methods are case-sensitive
  EXPECT_EQ(endpoint_for(Endpoint::topic_messages, "POST"), Endpoint::topic_messages);
  EXPECT_FALSE(endpoint_for(Endpoint::topic_messages, "PUT"));
  EXPECT_EQ(endpoint_for(Endpoint::topics, "GET"), Endpoint::topics);
  EXPECT_FALSE(endpoint_for(Endpoint::topics, "PUT"));
  EXPECT_FALSE(endpoint_for(Endpoint::topic_groups, "DELETE"));
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
  EXPECT_EQ(status_of(Errc::invalid_subject), 400u);
  EXPECT_EQ(status_of(Errc::subjects_overlap), 409u);
  EXPECT_EQ(status_of(Errc::topic_not_found), 404u);
  EXPECT_EQ(status_of(Errc::unauthenticated), 401u);
  EXPECT_EQ(status_of(Errc::authentication_failed), 401u);
  EXPECT_EQ(status_of(Errc::forbidden), 403u);
  EXPECT_EQ(status_of(Errc::dedup_conflict), 409u);
  EXPECT_EQ(status_of(Errc::topic_exists), 409u);
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
      R"({"id":"a-1","key":"k","subject":"orders.eu","headers":{"h1":"v1","h2":"v2"},)"
      R"("payload":"hello"})",
      kNow);
  ASSERT_TRUE(b) << b.error().detail;
  EXPECT_FALSE(b->array);
  ASSERT_EQ(b->messages.size(), 1u);
  const auto& m = b->messages[0];
  EXPECT_EQ(m.id, "a-1");
  EXPECT_EQ(m.key, "k");
  EXPECT_EQ(m.subject, "orders.eu");
  EXPECT_EQ(m.payload, "hello");
  ASSERT_EQ(m.headers.size(), 2u);
  EXPECT_EQ(m.headers[0], (Header{"h1", "v1"}));
  EXPECT_EQ(m.headers[1], (Header{"h2", "v2"}));
}

TEST(ParsePublishBody, AnArrayAndBase64Payloads) {
  const auto b = parse_publish_body(
      R"([{"payload":"a"},{"payload_base64":"AAH/"},{"payload_base64":""}])", kNow);
  ASSERT_TRUE(b) << b.error().detail;
  EXPECT_TRUE(b->array);
  ASSERT_EQ(b->messages.size(), 3u);
  EXPECT_EQ(b->messages[0].payload, "a");
  EXPECT_EQ(b->messages[1].payload, std::string("\x00\x01\xff", 3));
  EXPECT_EQ(b->messages[2].payload, "");
  const auto padded = parse_publish_body(R"({"payload_base64":"aGk="})", kNow);
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
      {R"({"payload":"a","subject":["x"]})", "subject must be a string"},
  };
  for (const auto& [body, expected] : cases) {
    const auto b = parse_publish_body(body, kNow);
    ASSERT_FALSE(b) << body;
    EXPECT_EQ(b.error().code, Errc::invalid_request) << body;
    EXPECT_THAT(b.error().detail, HasSubstr(expected)) << body;
  }
}

// delay_ms counts from the clock reading it is given (loftd's, as the request arrives);
// deliver_at_ms is taken as it is, a time in the past too (the broker takes it as now).
TEST(ParsePublishBody, DelayAndDeliveryTimePerMessage) {
  const auto b = parse_publish_body(
      R"([{"payload":"a","delay_ms":10000},{"payload":"b","deliver_at_ms":1800000000000},)"
      R"({"payload":"c"},{"payload":"d","delay_ms":0},{"payload":"e","deliver_at_ms":5}])",
      kNow);
  ASSERT_TRUE(b) << b.error().detail;
  ASSERT_EQ(b->messages.size(), 5u);
  EXPECT_EQ(b->messages[0].deliver_at_ms, kNow + 10'000);
  EXPECT_EQ(b->messages[1].deliver_at_ms, 1'800'000'000'000);
  EXPECT_EQ(b->messages[2].deliver_at_ms, 0);
  EXPECT_EQ(b->messages[3].deliver_at_ms, 0);
  EXPECT_EQ(b->messages[4].deliver_at_ms, 5);
}

TEST(ParsePublishBody, RejectsBadDelaysNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"({"payload":"a","delay_ms":-1})", "delay_ms must be 0 or more, got -1"},
      {R"({"payload":"a","deliver_at_ms":-5})", "deliver_at_ms must be 0 or more"},
      {R"({"payload":"a","delay_ms":1.5})", "delay_ms must be a whole number of milliseconds"},
      {R"({"payload":"a","delay_ms":"10s"})", "delay_ms must be a whole number"},
      {R"({"payload":"a","delay_ms":18446744073709551615})", "delay_ms is too large"},
      {R"({"payload":"a","delay_ms":9223372036854775807})", "overflows"},
      {R"({"payload":"a","delay_ms":5,"deliver_at_ms":5})", "both delay_ms and deliver_at_ms"},
      {R"([{"payload":"a"},{"payload":"b","delay_ms":null}])", "message 1 delay_ms must be"},
  };
  for (const auto& [body, expected] : cases) {
    const auto b = parse_publish_body(body, kNow);
    ASSERT_FALSE(b) << body;
    EXPECT_EQ(b.error().code, Errc::invalid_request) << body;
    EXPECT_THAT(b.error().detail, HasSubstr(expected)) << body;
  }
}

// A message refused for its delivery time says so, in the confirms and as a status of its own.
TEST(ConfirmsJson, ADelayTooLongSaysWhy) {
  EXPECT_EQ(status_of(Errc::delay_too_long), 422u);
  const std::vector<broker::MessageResult> mixed{{Errc::ok, false, Offset{3}},
                                                 {Errc::delay_too_long, false, Offset{}}};
  EXPECT_THAT(confirms_json(mixed, true),
              HasSubstr(R"({"error":{"code":"delay too long","message":"the message was not )"
                        R"(stored: its delivery time is further ahead than the broker's )"
                        R"(max_delivery_delay"}})"));
  EXPECT_THAT(message_error(Errc::dedup_conflict).detail, HasSubstr("different payload"));
}

TEST(ParseTopicBody, EverySettingAndWhichWereGiven) {
  const auto b = parse_topic_body(
      R"({"retention":"work_queue","max_age_ms":60000,"max_bytes":1048576,"max_messages":10,)"
      R"("dedup_window_ms":5000,"dedup_conflict":"error"})");
  ASSERT_TRUE(b) << b.error().detail;
  EXPECT_EQ(b->settings.retention_mode, RetentionMode::work_queue);
  EXPECT_EQ(b->settings.retention.max_age_ms, 60000u);
  EXPECT_EQ(b->settings.retention.max_bytes, 1048576u);
  EXPECT_EQ(b->settings.retention.max_messages, 10u);
  EXPECT_EQ(b->settings.dedup_window_ms, 5000u);
  EXPECT_EQ(b->settings.dedup_conflict, DedupConflict::error);
  EXPECT_TRUE(b->has_retention_mode && b->has_dedup_window && b->has_dedup_conflict);

  for (const auto* empty : {"", " \r\n", "{}"}) {
    const auto d = parse_topic_body(empty);
    ASSERT_TRUE(d) << empty;
    EXPECT_EQ(d->settings.retention_mode, RetentionMode::limits);
    EXPECT_TRUE(d->settings.retention.empty());
    EXPECT_EQ(d->settings.dedup_window_ms, 0u);  // the broker's default
    EXPECT_FALSE(d->has_retention_mode || d->has_dedup_window || d->has_dedup_conflict);
  }
  const auto limits = parse_topic_body(R"({"retention":"limits","max_age_ms":0})");
  ASSERT_TRUE(limits);
  EXPECT_EQ(limits->settings.retention_mode, RetentionMode::limits);
  EXPECT_TRUE(limits->has_retention_mode);
  EXPECT_EQ(limits->settings.retention.max_age_ms, 0u);  // given: 0 is unlimited
  EXPECT_FALSE(limits->settings.retention.max_bytes);
}

TEST(ParseTopicBody, RejectsBadBodiesNamingTheProblem) {
  const auto rejected = [](std::string_view body) {
    auto r = parse_topic_body(body);
    EXPECT_FALSE(r) << body;
    if (r) return std::string();
    EXPECT_EQ(r.error().code, Errc::invalid_request) << body;
    return r.error().detail;
  };
  EXPECT_THAT(rejected("{"), HasSubstr("not valid JSON"));
  EXPECT_THAT(rejected("[]"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(rejected(R"("work_queue")"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(rejected(R"({"retention":"fifo"})"),
              HasSubstr(R"(retention must be "limits" or "work_queue")"));
  EXPECT_THAT(rejected(R"({"retention":1})"), HasSubstr("retention must be"));
  EXPECT_THAT(rejected(R"({"dedup_conflict":"reject"})"),
              HasSubstr(R"(dedup_conflict must be "duplicate" or "error")"));
  EXPECT_THAT(rejected(R"({"max_age_ms":-1})"), HasSubstr("max_age_ms must be a whole number"));
  EXPECT_THAT(rejected(R"({"max_bytes":1.5})"), HasSubstr("max_bytes must be a whole number"));
  EXPECT_THAT(rejected(R"({"max_messages":"10"})"), HasSubstr("max_messages must be"));
  const auto unknown = rejected(R"({"max_age":"1h"})");
  EXPECT_THAT(unknown, HasSubstr("unknown field 'max_age'"));
  EXPECT_THAT(unknown, HasSubstr("known: retention, max_age_ms, max_bytes, max_messages, "
                                 "dedup_window_ms, dedup_conflict"));
}

TEST(TopicMatches, ComparesTheGivenSettingsOnly) {
  TopicInfo t;
  t.retention_mode = RetentionMode::work_queue;
  t.max_age_ms = 60000;
  t.dedup_window_ms = kDefaultDedupWindowMs;
  const auto matches = [&](std::string_view body) {
    auto b = parse_topic_body(body);
    EXPECT_TRUE(b) << body;
    return b && topic_matches(*b, t);
  };
  EXPECT_TRUE(matches("{}"));
  EXPECT_TRUE(matches(R"({"retention":"work_queue","max_age_ms":60000})"));
  EXPECT_TRUE(matches(R"({"dedup_window_ms":0})"));  // 0 is the default window
  EXPECT_TRUE(matches(R"({"dedup_conflict":"duplicate","max_bytes":0})"));
  EXPECT_FALSE(matches(R"({"retention":"limits"})"));
  EXPECT_FALSE(matches(R"({"max_age_ms":1000})"));
  EXPECT_FALSE(matches(R"({"max_messages":5})"));
  EXPECT_FALSE(matches(R"({"dedup_window_ms":5000})"));
  EXPECT_FALSE(matches(R"({"dedup_conflict":"error"})"));
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

// Every line of the page, in order: the split of render_metrics by family must not move a
// byte. Each figure differs from the others, so a sample reading the wrong field shows.
MetricsSnapshot full_snapshot() {
  MetricsSnapshot s;
  s.topics = {"a", "idle"};
  s.broker.topics["a"] = broker::TopicCounters{10, 1000, 2};
  s.broker.publish_confirm.observe(0.0001);
  s.broker.publish_confirm.observe(0.003);
  s.broker.publish_confirm.observe(100);
  broker::GroupMetrics g;
  g.topic = "a";
  g.group = "billing";
  g.counters = broker::GroupCounters{12, 2, 9, 1, 3};
  g.lag = 4;
  g.in_flight = 5;
  g.skipped = 6;
  s.groups.push_back(g);
  g.group = "audit";
  g.counters = broker::GroupCounters{21, 22, 23, 24, 25};
  g.lag = 26;
  g.in_flight = 27;
  g.skipped = 28;
  s.groups.push_back(g);
  s.net = NetFigures{3, 7, 11, 12, 2, 13};
  s.storage_health.writable = false;
  s.storage_health.failed_writes = 8;
  s.storage_health.episodes = 9;
  s.store = storage::StoreStats{true, 101, 102, 103, 104, 105};
  s.resident_bytes = 4096;
  return s;
}

TEST(RenderMetrics, NatsFiguresOnlyWithTheNatsPort) {
  auto s = full_snapshot();
  EXPECT_THAT(render_metrics(s), Not(HasSubstr("loft_nats_")));
  s.net.nats = NatsFigures{4, 5, 6, 7, 8, 9, 1};
  const auto text = render_metrics(s);
  EXPECT_THAT(text, HasSubstr("\nloft_nats_connections_open 4\n"));
  EXPECT_THAT(text, HasSubstr("\nloft_nats_subscriptions 5\n"));
  EXPECT_THAT(text, HasSubstr("\nloft_nats_messages_in_total 6\n"));
  EXPECT_THAT(text, HasSubstr("\nloft_nats_messages_out_total 7\n"));
  EXPECT_THAT(text, HasSubstr("\nloft_nats_bytes_in_total 8\n"));
  EXPECT_THAT(text, HasSubstr("\nloft_nats_bytes_out_total 9\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE loft_nats_slow_consumers_total counter\n"
                              "loft_nats_slow_consumers_total 1\n"));
}

TEST(RenderMetrics, WholePage) {
  EXPECT_EQ(
      render_metrics(full_snapshot()),
      "# HELP loft_messages_published_total Messages appended to the topic by publishes since "
      "loftd started (duplicates excluded).\n"
      "# TYPE loft_messages_published_total counter\n"
      "loft_messages_published_total{topic=\"a\"} 10\n"
      "loft_messages_published_total{topic=\"idle\"} 0\n"
      "# HELP loft_published_bytes_total Bytes (id, key, headers and payload) of the messages "
      "counted in loft_messages_published_total.\n"
      "# TYPE loft_published_bytes_total counter\n"
      "loft_published_bytes_total{topic=\"a\"} 1000\n"
      "loft_published_bytes_total{topic=\"idle\"} 0\n"
      "# HELP loft_dedup_hits_total Published messages whose id the topic already stored: answered "
      "with the original offset, not stored again.\n"
      "# TYPE loft_dedup_hits_total counter\n"
      "loft_dedup_hits_total{topic=\"a\"} 2\n"
      "loft_dedup_hits_total{topic=\"idle\"} 0\n"
      "# HELP loft_publish_confirm_duration_seconds Time from a publish entering the write queue "
      "to its durable confirm.\n"
      "# TYPE loft_publish_confirm_duration_seconds histogram\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.0005\"} 1\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.001\"} 1\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.0025\"} 1\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.005\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.01\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.025\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.05\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.1\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.25\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"0.5\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"1\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"2.5\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"5\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"10\"} 2\n"
      "loft_publish_confirm_duration_seconds_bucket{le=\"+Inf\"} 3\n"
      "loft_publish_confirm_duration_seconds_sum 100.0031\n"
      "loft_publish_confirm_duration_seconds_count 3\n"
      "# HELP loft_messages_delivered_total Messages sent to the group's consumers, redeliveries "
      "included.\n"
      "# TYPE loft_messages_delivered_total counter\n"
      "loft_messages_delivered_total{topic=\"a\",group=\"billing\"} 12\n"
      "loft_messages_delivered_total{topic=\"a\",group=\"audit\"} 21\n"
      "# HELP loft_messages_redelivered_total Deliveries after the first attempt (ack timeout, "
      "nack, consumer gone).\n"
      "# TYPE loft_messages_redelivered_total counter\n"
      "loft_messages_redelivered_total{topic=\"a\",group=\"billing\"} 2\n"
      "loft_messages_redelivered_total{topic=\"a\",group=\"audit\"} 22\n"
      "# HELP loft_messages_acked_total Acks that settled a message in flight to the group.\n"
      "# TYPE loft_messages_acked_total counter\n"
      "loft_messages_acked_total{topic=\"a\",group=\"billing\"} 9\n"
      "loft_messages_acked_total{topic=\"a\",group=\"audit\"} 23\n"
      "# HELP loft_messages_nacked_total Nacks and rejects that settled a message in flight to the "
      "group.\n"
      "# TYPE loft_messages_nacked_total counter\n"
      "loft_messages_nacked_total{topic=\"a\",group=\"billing\"} 1\n"
      "loft_messages_nacked_total{topic=\"a\",group=\"audit\"} 24\n"
      "# HELP loft_messages_dead_lettered_total Messages of the group moved to its dead-letter "
      "topic (durably).\n"
      "# TYPE loft_messages_dead_lettered_total counter\n"
      "loft_messages_dead_lettered_total{topic=\"a\",group=\"billing\"} 3\n"
      "loft_messages_dead_lettered_total{topic=\"a\",group=\"audit\"} 25\n"
      "# HELP loft_messages_skipped_total Messages retention removed before the group finished "
      "them: the group moved past them. Kept with the group, so it counts since the group was "
      "created.\n"
      "# TYPE loft_messages_skipped_total counter\n"
      "loft_messages_skipped_total{topic=\"a\",group=\"billing\"} 6\n"
      "loft_messages_skipped_total{topic=\"a\",group=\"audit\"} 28\n"
      "# HELP loft_group_lag_messages Messages of the topic the group has not finished (from its "
      "ack floor to the end of the log).\n"
      "# TYPE loft_group_lag_messages gauge\n"
      "loft_group_lag_messages{topic=\"a\",group=\"billing\"} 4\n"
      "loft_group_lag_messages{topic=\"a\",group=\"audit\"} 26\n"
      "# HELP loft_group_in_flight_messages Messages delivered to the group's consumers and not "
      "yet settled.\n"
      "# TYPE loft_group_in_flight_messages gauge\n"
      "loft_group_in_flight_messages{topic=\"a\",group=\"billing\"} 5\n"
      "loft_group_in_flight_messages{topic=\"a\",group=\"audit\"} 27\n"
      "# HELP loft_connections_open Client connections (binary protocol) open now.\n"
      "# TYPE loft_connections_open gauge\n"
      "loft_connections_open 3\n"
      "# HELP loft_connections_refused_total Client connections turned away by the connection "
      "limit since loftd started.\n"
      "# TYPE loft_connections_refused_total counter\n"
      "loft_connections_refused_total 7\n"
      "# HELP loft_auth_succeeded_total Successful logins (a password or a client certificate) "
      "since loftd started.\n"
      "# TYPE loft_auth_succeeded_total counter\n"
      "loft_auth_succeeded_total 11\n"
      "# HELP loft_auth_failed_total Failed logins (wrong user or password, bad request) since "
      "loftd started.\n"
      "# TYPE loft_auth_failed_total counter\n"
      "loft_auth_failed_total 12\n"
      "# HELP loft_connections_pending Client connections (binary protocol) open and not yet "
      "admitted (handshake not complete); included in loft_connections_open.\n"
      "# TYPE loft_connections_pending gauge\n"
      "loft_connections_pending 2\n"
      "# HELP loft_connections_evicted_total Pending client connections closed to make room for "
      "a new connection (max_pending_connections, or max_connections reached) since loftd "
      "started.\n"
      "# TYPE loft_connections_evicted_total counter\n"
      "loft_connections_evicted_total 13\n"
      "# HELP loft_storage_writable 1 while storage takes writes; 0 from a failed write (disk "
      "full, I/O error) until a write or a recovery succeeds.\n"
      "# TYPE loft_storage_writable gauge\n"
      "loft_storage_writable 0\n"
      "# HELP loft_storage_failed_writes_total Storage writes that failed since loftd started.\n"
      "# TYPE loft_storage_failed_writes_total counter\n"
      "loft_storage_failed_writes_total 8\n"
      "# HELP loft_storage_unwritable_episodes_total Times storage stopped taking writes since "
      "loftd started.\n"
      "# TYPE loft_storage_unwritable_episodes_total counter\n"
      "loft_storage_unwritable_episodes_total 9\n"
      "# HELP loft_rocksdb_live_data_bytes RocksDB's estimate of the live data on disk "
      "(rocksdb.estimate-live-data-size).\n"
      "# TYPE loft_rocksdb_live_data_bytes gauge\n"
      "loft_rocksdb_live_data_bytes 101\n"
      "# HELP loft_rocksdb_memtable_bytes Bytes in RocksDB's memtables, active and unflushed "
      "(rocksdb.cur-size-all-mem-tables).\n"
      "# TYPE loft_rocksdb_memtable_bytes gauge\n"
      "loft_rocksdb_memtable_bytes 102\n"
      "# HELP loft_rocksdb_pending_compaction_bytes RocksDB's estimate of the bytes compaction "
      "still has to rewrite (rocksdb.estimate-pending-compaction-bytes).\n"
      "# TYPE loft_rocksdb_pending_compaction_bytes gauge\n"
      "loft_rocksdb_pending_compaction_bytes 103\n"
      "# HELP loft_rocksdb_write_stops_total Times RocksDB stopped writes since the store was "
      "opened (io_stalls.total_stop).\n"
      "# TYPE loft_rocksdb_write_stops_total counter\n"
      "loft_rocksdb_write_stops_total 104\n"
      "# HELP loft_rocksdb_write_slowdowns_total Times RocksDB delayed writes since the store was "
      "opened (io_stalls.total_slowdown).\n"
      "# TYPE loft_rocksdb_write_slowdowns_total counter\n"
      "loft_rocksdb_write_slowdowns_total 105\n"
      "# HELP loft_process_resident_memory_bytes Resident memory of the loftd process "
      "(/proc/self/statm).\n"
      "# TYPE loft_process_resident_memory_bytes gauge\n"
      "loft_process_resident_memory_bytes 4096\n");
}

// A topic's JSON names its subjects only when it has some.
TEST(TopicJson, SubjectsOnlyWhenSet) {
  TopicInfo t;
  t.name = "orders";
  EXPECT_FALSE(topic_json(t).contains("subjects"));
  t.subjects = {"orders.*", "returns.>"};
  EXPECT_EQ(boost::json::serialize(topic_json(t).at("subjects")), R"(["orders.*","returns.>"])");
}

// Every topic's JSON names its retention mode.
TEST(TopicJson, RetentionNamesTheMode) {
  TopicInfo t;
  t.name = "jobs";
  EXPECT_EQ(topic_json(t).at("retention").as_string(), "limits");
  t.retention_mode = RetentionMode::work_queue;
  EXPECT_EQ(topic_json(t).at("retention").as_string(), "work_queue");
}

}  // namespace
}  // namespace loft::http
