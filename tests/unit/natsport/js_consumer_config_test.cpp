// JetStream consumer configs: parsing with nats-server's defaults, the echo, the errors
// clients branch on, the mapping onto a loft group, and consumer infos. No sockets.

#include "natsport/js_consumer_config.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "loft/broker/groups.hpp"

namespace loft::natsport::js {
namespace {

tl::expected<ConsumerConfig, ApiError> parse(std::string_view json) {
  return parse_consumer_config(boost::json::parse(json));
}

std::uint16_t err_code_of(std::string_view json) {
  auto c = parse(json);
  return c ? 0 : c.error().err_code;
}

TEST(ConsumerConfig, FillsInNatsServersDefaults) {
  auto c = parse(R"({"durable_name":"d"})");
  ASSERT_TRUE(c) << c.error().description;
  EXPECT_EQ(boost::json::serialize(consumer_config_json(*c)),
            R"({"durable_name":"d","name":"d","deliver_policy":"all","ack_policy":"explicit",)"
            R"("ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant",)"
            R"("max_waiting":512,"max_ack_pending":1000,"num_replicas":0})");
}

TEST(ConsumerConfig, EphemeralsGetAnInactiveThreshold) {
  auto c = parse(R"({"ack_policy":"explicit"})");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->durable());
  EXPECT_EQ(c->inactive_threshold_ns, kDefaultInactiveThresholdNs);
}

TEST(ConsumerConfig, EchoesWhatWasSet) {
  auto c = parse(R"({"name":"n","filter_subject":"orders.*","ack_wait":2000000000,)"
                 R"("max_deliver":4,"backoff":[1000000000,2000000000],"max_ack_pending":10,)"
                 R"("deliver_policy":"by_start_sequence","opt_start_seq":7,"description":"x"})");
  ASSERT_TRUE(c) << c.error().description;
  const auto o = consumer_config_json(*c);
  EXPECT_EQ(o.at("name"), "n");
  EXPECT_FALSE(o.contains("durable_name"));
  EXPECT_EQ(o.at("filter_subject"), "orders.*");
  EXPECT_EQ(o.at("ack_wait"), 2000000000);
  EXPECT_EQ(o.at("max_deliver"), 4);
  EXPECT_EQ(o.at("backoff").as_array().size(), 2u);
  EXPECT_EQ(o.at("opt_start_seq"), 7);
  EXPECT_EQ(o.at("description"), "x");
}

TEST(ConsumerConfig, RefusesWithTheErrCodesClientsKnow) {
  EXPECT_EQ(err_code_of("[]"), 10078);                                  // config required
  EXPECT_EQ(err_code_of(R"({"durable_name":"a.b"})"), 10103);           // bad durable
  EXPECT_EQ(err_code_of(R"({"durable_name":"a/b"})"), 10127);           // path separator
  EXPECT_EQ(err_code_of(R"({"durable_name":"a","name":"b"})"), 10132);  // name mismatch
  EXPECT_EQ(err_code_of(R"({"ack_policy":"none"})"), 10094);            // policy
  EXPECT_EQ(err_code_of(R"({"ack_policy":"all"})"), 10094);
  EXPECT_EQ(err_code_of(R"({"replay_policy":"original"})"), 10094);
  EXPECT_EQ(err_code_of(R"({"deliver_policy":"last_per_subject"})"), 10094);
  EXPECT_EQ(err_code_of(R"({"deliver_policy":"by_start_sequence"})"), 10094);
  EXPECT_EQ(err_code_of(R"({"deliver_policy":"all","opt_start_seq":3})"), 10094);
  EXPECT_EQ(err_code_of(R"({"max_deliver":2,"backoff":[1000000,2000000]})"), 10116);
  EXPECT_EQ(err_code_of(R"({"max_waiting":-1})"), 10087);
  EXPECT_EQ(err_code_of(R"({"idle_heartbeat":1000000000})"), 10088);
  EXPECT_EQ(err_code_of(R"({"flow_control":true})"), 10089);
  EXPECT_EQ(err_code_of(R"({"rate_limit_bps":1000})"), 10086);
  EXPECT_EQ(err_code_of(R"({"ack_wait":"30s"})"), 10025);  // wrong type
  EXPECT_EQ(err_code_of(R"({"ack_wait":1000})"), 10012);   // 1 µs: below loft's 100 ms
  EXPECT_EQ(err_code_of(R"({"max_ack_pending":100000000})"), 10121);
}

TEST(ConsumerConfig, MapsOntoALoftGroup) {
  auto c = parse(R"({"durable_name":"d","filter_subject":"orders.eu","ack_wait":1500000001,)"
                 R"("max_deliver":3,"backoff":[1000000,2500000],"max_ack_pending":7})");
  ASSERT_TRUE(c) << c.error().description;
  auto s = group_settings(*c, 10);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->config.ack_timeout_ms, 1501u);  // rounded up: never shorter than asked
  EXPECT_EQ(s->config.max_deliveries, 3u);
  EXPECT_EQ(s->config.backoff_delays_ms, (std::vector<std::uint32_t>{1, 3}));
  EXPECT_EQ(s->config.filter, "orders.eu");
  EXPECT_EQ(s->max_in_flight, 7u);
  EXPECT_EQ(s->start, (StartPosition{StartKind::earliest, 0}));
}

TEST(ConsumerConfig, UnlimitedDeliveriesAreLoftsLargest) {
  auto c = parse(R"({"durable_name":"d"})");
  ASSERT_TRUE(c);
  auto s = group_settings(*c, 0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->config.max_deliveries, broker::GroupLimits::kMaxDeliveries);
  EXPECT_EQ(s->config.ack_timeout_ms, 30'000u);
  // No backoff: redelivered right after ack_wait, in order (no exponential backoff, no jitter).
  EXPECT_EQ(s->config.backoff_delays_ms, (std::vector<std::uint32_t>{kNoBackoffMs}));
  EXPECT_TRUE(config_of_group("d", s->config).backoff_ns.empty());
  // And back: a group of loft's largest max_deliveries reads as unlimited.
  EXPECT_EQ(config_of_group("d", s->config).max_deliver, -1);
  EXPECT_TRUE(same_group_settings(s->config, *s));
}

TEST(ConsumerConfig, DeliverPoliciesBecomeStartPositions) {
  const auto start = [](std::string_view json, std::uint64_t end) {
    auto c = parse(json);
    EXPECT_TRUE(c) << json;
    return group_settings(*c, end)->start;
  };
  EXPECT_EQ(start(R"({"deliver_policy":"all"})", 5), (StartPosition{StartKind::earliest, 0}));
  EXPECT_EQ(start(R"({"deliver_policy":"new"})", 5), (StartPosition{StartKind::latest, 0}));
  EXPECT_EQ(start(R"({"deliver_policy":"last"})", 5), (StartPosition{StartKind::offset, 4}));
  EXPECT_EQ(start(R"({"deliver_policy":"last"})", 0), (StartPosition{StartKind::latest, 0}));
  EXPECT_EQ(start(R"({"deliver_policy":"by_start_sequence","opt_start_seq":3})", 5),
            (StartPosition{StartKind::offset, 2}));
  EXPECT_EQ(
      start(R"({"deliver_policy":"by_start_time","opt_start_time":"2023-11-14T22:13:20.0005Z"})",
            5),
      (StartPosition{StartKind::timestamp, 1'700'000'000'001}));
}

TEST(ConsumerConfig, DifferentSettingsAreNotTheSameGroup) {
  auto a = group_settings(*parse(R"({"durable_name":"d"})"), 0);
  auto b = group_settings(*parse(R"({"durable_name":"d","filter_subject":"x"})"), 0);
  auto c = group_settings(*parse(R"({"durable_name":"d","max_deliver":5})"), 0);
  EXPECT_FALSE(same_group_settings(a->config, *b));
  EXPECT_FALSE(same_group_settings(a->config, *c));
  EXPECT_TRUE(same_group_settings(c->config, *c));
}

TEST(Rfc3339, ParsesAndFormatsAsNatsWritesIt) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2023-11-14T22:13:20Z"), 1'700'000'000'000'000'000);
  EXPECT_EQ(parse_rfc3339("2023-11-14T23:13:20.5+01:00"), 1'700'000'000'500'000'000);
  EXPECT_EQ(parse_rfc3339("2023-11-14T22:13:20.123456789Z"), 1'700'000'000'123'456'789);
  for (const char* bad : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-13-01T00:00:00Z",
                          "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zx"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(1'700'000'000'120'000'000), "2023-11-14T22:13:20.12Z");
  EXPECT_EQ(parse_rfc3339(format_rfc3339(1'234'567'890'123'456'789)), 1'234'567'890'123'456'789);
}

TEST(ConsumerInfo, NumbersComeFromTheGroup) {
  GroupInfo g;
  g.ack_floor = 3;  // offsets 0..2 done: stream seq 3 acked
  g.end = 10;
  g.lag = 7;
  g.in_flight = 2;
  g.scheduled = 1;
  g.redelivered = 4;
  const auto n = consumer_numbers(g, 8, 6, 1);
  EXPECT_EQ(n.ack_floor_stream_seq, 3u);
  EXPECT_EQ(n.delivered_stream_seq, 6u);
  EXPECT_EQ(n.delivered_consumer_seq, 8u);
  EXPECT_EQ(n.num_ack_pending, 3u);
  EXPECT_EQ(n.num_pending, 4u);
  EXPECT_EQ(n.num_redelivered, 4u);
  EXPECT_EQ(n.num_waiting, 1u);
  EXPECT_EQ(n.ack_floor_consumer_seq, 5u);
  // All acked: the floors meet what was delivered.
  GroupInfo done;
  done.ack_floor = 4;
  done.end = 4;
  const auto m = consumer_numbers(done, 6, 4, 0);
  EXPECT_EQ(m.ack_floor_consumer_seq, 6u);
  EXPECT_EQ(m.num_pending, 0u);
}

TEST(ConsumerInfo, HasTheFieldsClientsRead) {
  auto c = parse(R"({"durable_name":"d"})");
  const auto o = consumer_info_json("S", *c, 0, ConsumerNumbers{}, "loftd");
  for (const char* key : {"stream_name", "name", "created", "config", "delivered", "ack_floor",
                          "num_ack_pending", "num_redelivered", "num_waiting", "num_pending"}) {
    EXPECT_TRUE(o.contains(key)) << key;
  }
  EXPECT_EQ(o.at("stream_name"), "S");
  EXPECT_EQ(o.at("name"), "d");
  EXPECT_EQ(o.at("created"), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace loft::natsport::js
