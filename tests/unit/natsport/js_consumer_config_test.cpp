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
  EXPECT_EQ(err_code_of(R"({"ack_policy":"some"})"), 10094);            // policy
  EXPECT_EQ(err_code_of(R"({"replay_policy":"original"})"), 10094);
  EXPECT_EQ(err_code_of(R"({"deliver_policy":"last_per_subject"})"), 10094);
  EXPECT_EQ(err_code_of(R"({"deliver_policy":"by_start_sequence"})"), 10094);
  EXPECT_EQ(err_code_of(R"({"deliver_policy":"all","opt_start_seq":3})"), 10094);
  EXPECT_EQ(err_code_of(R"({"max_deliver":2,"backoff":[1000000,2000000]})"), 10116);
  EXPECT_EQ(err_code_of(R"({"max_waiting":-1})"), 10087);
  EXPECT_EQ(err_code_of(R"({"idle_heartbeat":1000000000})"), 10088);
  EXPECT_EQ(err_code_of(R"({"flow_control":true})"), 10089);
  EXPECT_EQ(err_code_of(R"({"rate_limit_bps":1000})"), 10086);  // a pull consumer's rate
  EXPECT_EQ(err_code_of(R"({"ack_wait":"30s"})"), 10025);       // wrong type
  EXPECT_EQ(err_code_of(R"({"max_ack_pending":100000000})"), 10121);
  EXPECT_EQ(err_code_of(R"({"num_replicas":3})"), 10074);
  EXPECT_EQ(err_code_of(R"({"description":")" + std::string(4097, 'd') + R"("})"), 10107);
  EXPECT_EQ(err_code_of(R"({"description":")" + std::string(4096, 'd') + R"("})"), 0);
}

// What loft does not do is refused by name, not ignored.
TEST(ConsumerConfig, RefusalsNameTheSetting) {
  for (const auto& [json, setting] :
       {std::pair{R"({"sample_freq":"100%"})", "sample_freq"},
        std::pair{R"({"ack_policy":"every"})", "ack policy 'every'"},
        std::pair{R"({"num_replicas":3})", "replicas"},
        std::pair{R"({"replay_policy":"original"})", "replay policy"}}) {
    auto c = parse(json);
    ASSERT_FALSE(c) << json;
    EXPECT_NE(c.error().description.find(setting), std::string::npos)
        << json << ": " << c.error().description;
  }
  EXPECT_TRUE(parse(R"({"mem_storage":false,"sample_freq":""})"));
}

// What nats.js and cnats send for an ordered consumer (ack none, max_deliver 1, mem_storage,
// a 22 h ack_wait for push) is taken and echoed as nats-server echoes it: max_ack_pending
// left out unless set.
TEST(ConsumerConfig, TakesOrderedConsumersConfigs) {
  auto pull = parse(R"({"name":"oc_1","deliver_policy":"by_start_sequence","opt_start_seq":1,)"
                    R"("ack_policy":"none","inactive_threshold":300000000000,"num_replicas":1,)"
                    R"("max_deliver":1,"mem_storage":true})");
  ASSERT_TRUE(pull) << pull.error().description;
  EXPECT_TRUE(pull->ack_none());
  EXPECT_EQ(pull->max_ack_pending, 0);
  const auto o = consumer_config_json(*pull);
  EXPECT_EQ(o.at("ack_policy"), "none");
  EXPECT_EQ(o.at("max_deliver"), 1);
  EXPECT_EQ(o.at("mem_storage"), true);
  EXPECT_EQ(o.at("num_replicas"), 1);
  EXPECT_FALSE(o.contains("max_ack_pending"));

  auto push = parse(R"({"deliver_subject":"_INBOX.x","ack_policy":"none","max_deliver":1,)"
                    R"("flow_control":true,"idle_heartbeat":5000000000,"ack_wait":79200000000000,)"
                    R"("mem_storage":true,"num_replicas":1,"filter_subject":"orders.>"})");
  ASSERT_TRUE(push) << push.error().description;
  EXPECT_EQ(consumer_config_json(*push).at("ack_wait"), 79'200'000'000'000);

  // A max_ack_pending that is set stays; other policies get the default.
  EXPECT_EQ(parse(R"({"ack_policy":"none","max_ack_pending":5})")->max_ack_pending, 5);
  EXPECT_EQ(parse(R"({"ack_policy":"all"})")->max_ack_pending, kDefaultMaxAckPending);
  EXPECT_TRUE(parse(R"({"ack_policy":"all"})")->ack_all());
}

// ack_policy none: the group never waits for an ack, so its ack_wait is clamped into loft's
// range (an ordered push consumer asks for 22 h) and nothing counts against max_deliver (a
// message goes back to the group only when no one could take it).
TEST(ConsumerConfig, AckNoneGroupsNeverWaitForAcks) {
  auto c = parse(R"({"deliver_subject":"_INBOX.x","ack_policy":"none","max_deliver":1,)"
                 R"("ack_wait":79200000000000})");
  ASSERT_TRUE(c);
  const auto s = group_settings(*c, 0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->config.ack_timeout_ms, broker::GroupLimits::kMaxAckTimeoutMs);
  EXPECT_EQ(s->config.max_deliveries, broker::GroupLimits::kMaxDeliveries);
  EXPECT_EQ(s->max_in_flight, static_cast<std::uint32_t>(kUnlimitedMaxAckPending));
  EXPECT_EQ(max_in_flight(*c), static_cast<std::uint32_t>(kUnlimitedMaxAckPending));
  // The same ack_wait with explicit acks is the broker's to refuse, as before.
  auto explicit_acks = parse(R"({"durable_name":"d","max_deliver":1,"ack_wait":79200000000000})");
  ASSERT_TRUE(explicit_acks);
  EXPECT_EQ(group_settings(*explicit_acks, 0)->config.ack_timeout_ms, 79'200'000u);
  EXPECT_EQ(group_settings(*explicit_acks, 0)->config.max_deliveries, 1u);
}

// The ranges of ack_wait, max_deliver and backoff are the broker's (effective_group_config):
// its refusal becomes err 10012 naming the NATS field.
TEST(ConsumerConfig, GroupRangesAreTheBrokersRefusal) {
  const auto refusal = [](std::string_view json) -> std::optional<ApiError> {
    auto c = parse(json);
    EXPECT_TRUE(c) << json;
    auto s = group_settings(*c, 0);
    EXPECT_TRUE(s) << json;
    auto checked = broker::effective_group_config("orders", s->config, broker::GroupDefaults{});
    if (checked) return std::nullopt;
    return group_refusal(checked.error());
  };
  for (const auto& [json, prefix] :
       {std::pair{R"({"ack_wait":1000})", "ack_wait out of loft's range: ack_timeout_ms must be"},
        std::pair{R"({"ack_wait":7200000000000})", "ack_wait out of loft's range"},
        std::pair{R"({"max_deliver":1001})", "max_deliver out of loft's range: max_deliveries"},
        std::pair{R"({"max_deliver":9999999999})", "max_deliver out of loft's range"},
        std::pair{R"({"backoff":[7200000000000]})", "backoff out of loft's range"}}) {
    const auto e = refusal(json);
    ASSERT_TRUE(e) << json;
    EXPECT_EQ(e->err_code, 10012) << json;
    EXPECT_TRUE(e->description.starts_with(prefix)) << json << ": " << e->description;
  }
  std::string many = R"({"backoff":[)";
  for (int i = 0; i < 65; ++i) many += i == 0 ? "1000000" : ",1000000";
  many += "]}";
  ASSERT_TRUE(refusal(many));
  EXPECT_TRUE(refusal(many)->description.starts_with("backoff out of loft's range"));
  EXPECT_FALSE(refusal(R"({"ack_wait":100000000,"max_deliver":1000})"));
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

// CONSUMER.CREATE of an existing consumer with another config: what nats-server 2.9 updates
// is allowed, what it does not is refused with its text, and loft's group settings too.
TEST(ConsumerConfig, UpdatesAsNatsServerAllowsAndKeepsTheGroupSettings) {
  const auto old = *parse(R"({"durable_name":"d","max_deliver":5})");
  const auto group = group_settings(old, 0)->config;
  const auto update = [&](std::string_view json, bool known = true) -> std::string {
    auto c = parse(json);
    EXPECT_TRUE(c) << json;
    auto ok = check_consumer_update(old, known, *c, group, *group_settings(*c, 0));
    if (ok) return "";
    EXPECT_EQ(ok.error().err_code, 10012) << json;
    return ok.error().description;
  };
  EXPECT_EQ(update(R"({"durable_name":"d","max_deliver":5})"), "");
  EXPECT_EQ(update(R"({"durable_name":"d","max_deliver":5,"description":"new",)"
                   R"("max_ack_pending":7,"max_batch":3,"max_expires":1000000000,)"
                   R"("headers_only":true})"),
            "");
  EXPECT_EQ(update(R"({"durable_name":"d","max_deliver":5,"deliver_policy":"new"})"),
            "deliver policy can not be updated");
  EXPECT_EQ(update(R"({"durable_name":"d","max_deliver":5,"deliver_policy":"by_start_sequence",)"
                   R"("opt_start_seq":4})"),
            "deliver policy can not be updated");
  EXPECT_EQ(update(R"({"durable_name":"d","max_deliver":5,"max_waiting":9})"),
            "max waiting can not be updated");
  EXPECT_EQ(update(R"({"durable_name":"d","max_deliver":6})"),
            "max_deliver can not be updated in loft (a setting of the consumer's group, fixed "
            "when it is made)");
  EXPECT_TRUE(update(R"({"durable_name":"d","max_deliver":5,"ack_wait":5000000000})")
                  .starts_with("ack_wait can not be updated in loft"));
  EXPECT_TRUE(update(R"({"durable_name":"d","max_deliver":5,"filter_subject":"x"})")
                  .starts_with("filter_subject can not be updated in loft"));
  EXPECT_TRUE(update(R"({"durable_name":"d","max_deliver":5,"backoff":[1000000000]})")
                  .starts_with("backoff can not be updated in loft"));
  // A group made by loft's tools has no NATS config to compare with: the request's is taken.
  EXPECT_EQ(update(R"({"durable_name":"d","max_deliver":5,"deliver_policy":"new"})", false), "");
  EXPECT_TRUE(update(R"({"durable_name":"d","max_deliver":6})", false).starts_with("max_deliver"));
  // Push and pull do not turn into each other.
  auto push = old;
  push.deliver_subject = "push.here";
  auto ok = check_consumer_update(old, true, push, group, *group_settings(push, 0));
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().description, "can not update pull consumer to push based");
  ok = check_consumer_update(push, true, old, group, *group_settings(old, 0));
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().description, "can not update push consumer to pull based");
}

// The annotation kept with the group brings back every field of the config, push fields
// included, and the creation time; anything else is not a consumer.
TEST(ConsumerConfig, TheAnnotationRestoresTheWholeConfig) {
  auto c = *parse(R"({"durable_name":"d","description":"kept","deliver_policy":"by_start_time",)"
                  R"("opt_start_time":"2023-11-14T22:13:20.5Z","ack_wait":1500000001,)"
                  R"("max_deliver":9,"backoff":[1000000,2000000],"filter_subject":"a.>",)"
                  R"("max_waiting":7,"max_ack_pending":11,"max_batch":5,"max_expires":3000000000,)"
                  R"("max_bytes":1024,"headers_only":true})");
  c.name = "d";  // CONSUMER.CREATE fills it in
  c.deliver_subject = "push.to";
  c.deliver_group = "workers";
  c.flow_control = true;
  c.idle_heartbeat_ns = 5'000'000'000;
  c.max_waiting = 0;  // as parsed for a push consumer (pull requests only; not echoed)
  const auto note = consumer_annotation(c, 1'700'000'000'123'456'789);
  ASSERT_TRUE(note);
  const auto back = restore_consumer(*note);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->config, c) << boost::json::serialize(consumer_config_json(back->config)) << "\n"
                             << boost::json::serialize(consumer_config_json(c));
  EXPECT_EQ(back->created_ns, 1'700'000'000'123'456'789);
  auto ephemeral = *parse(R"({"name":"e","deliver_policy":"new"})");
  EXPECT_EQ(restore_consumer(*consumer_annotation(ephemeral, 5))->config, ephemeral);
  // An ordered consumer's: ack none without max_ack_pending reads back without one.
  auto ordered = *parse(R"({"name":"o","ack_policy":"none","max_deliver":1,"mem_storage":true})");
  EXPECT_EQ(restore_consumer(*consumer_annotation(ordered, 5))->config, ordered);
  for (const char* other : {"", "x", "[]", R"({"created":1,"config":{}})",
                            R"({"nats_consumer":2,"created":1,"config":{}})",
                            R"({"nats_consumer":1,"created":1,"config":{"ack_wait":"x"}})"}) {
    EXPECT_FALSE(restore_consumer(other)) << other;
  }
  // Bounded, as the group's annotation is.
  c.description = std::string(3000, '\x01');  // escaped as \u0001: six bytes each
  const auto big = consumer_annotation(c, 0);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().err_code, 10012);
}

TEST(Advisories, HaveNatsServersSubjectsAndFields) {
  const AdvisoryHeader h{"ID", 1'700'000'000'000'000'000};
  auto a = max_deliveries_advisory(h, "S", "C", 7, 3);
  EXPECT_EQ(a.subject, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.C");
  EXPECT_EQ(a.body,
            R"({"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"ID",)"
            R"("timestamp":"2023-11-14T22:13:20Z","stream":"S","consumer":"C","stream_seq":7,)"
            R"("deliveries":3})");
  a = terminated_advisory(h, "S", "C", 4, 7, 2);
  EXPECT_EQ(a.subject, "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.C");
  EXPECT_EQ(a.body,
            R"({"type":"io.nats.jetstream.advisory.v1.terminated","id":"ID",)"
            R"("timestamp":"2023-11-14T22:13:20Z","stream":"S","consumer":"C","consumer_seq":4,)"
            R"("stream_seq":7,"deliveries":2})");
  a = consumer_action_advisory(h, "S", "C", ConsumerAction::created);
  EXPECT_EQ(a.subject, "$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.C");
  EXPECT_EQ(boost::json::parse(a.body).at("action"), "create");
  EXPECT_EQ(boost::json::parse(a.body).at("type"), "io.nats.jetstream.advisory.v1.consumer_action");
  a = consumer_action_advisory(h, "S", "C", ConsumerAction::deleted);
  EXPECT_EQ(a.subject, "$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.C");
  EXPECT_EQ(boost::json::parse(a.body).at("action"), "delete");
}

TEST(Advisories, ApiAuditHasNatsServersFieldsAndOmitsAnEmptyRequest) {
  const AdvisoryHeader h{"ID", 1'700'000'000'000'000'000};
  auto a =
      api_audit_advisory(h, "SRV", "$JS.API.STREAM.CREATE.S", R"({"name":"S"})", R"({"type":"t"})");
  EXPECT_EQ(a.subject, "$JS.EVENT.ADVISORY.API");
  EXPECT_EQ(a.body, R"({"type":"io.nats.jetstream.advisory.v1.api_audit","id":"ID",)"
                    R"("timestamp":"2023-11-14T22:13:20Z","server":"SRV",)"
                    R"("client":{"acc":"$G","server":"SRV"},"subject":"$JS.API.STREAM.CREATE.S",)"
                    R"("request":"{\"name\":\"S\"}","response":"{\"type\":\"t\"}"})");
  a = api_audit_advisory(h, "SRV", "$JS.API.INFO", "", "{}");
  EXPECT_FALSE(boost::json::parse(a.body).as_object().contains("request"));
  EXPECT_EQ(boost::json::parse(a.body).at("response"), "{}");
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
