#pragma once
// The pure parts of loftd's HTTP endpoint: which path and method is which endpoint, the JSON
// bodies of POST /v1/topics/NAME/messages and PUT /v1/topics/NAME, the confirms and error
// bodies, and the Prometheus page built from a snapshot of the figures. No sockets and no clock, so
// the unit tests drive them with plain values.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/common/error.hpp"
#include "loft/common/message.hpp"

namespace loft::http {

// create_topic and delete_topic share the path of topic (/v1/topics/NAME): route() answers
// topic for it, endpoint_for() picks by method.
enum class Endpoint {
  metrics,
  healthz,
  readyz,
  topics,
  topic,
  topic_groups,
  topic_messages,
  create_topic,
  delete_topic
};

struct Route {
  Endpoint endpoint = Endpoint::healthz;
  std::string topic;  // for the /v1/topics/NAME... endpoints
};

// The endpoint of a request target ("/v1/topics/orders?x=1"; the query is ignored); nullopt
// when no endpoint has that path (404).
std::optional<Route> route(std::string_view target);
// The endpoint a method selects on a path route() found: GET, PUT and DELETE of
// /v1/topics/NAME are topic, create_topic and delete_topic; every other path answers one
// method. nullopt for a method the path does not answer (405).
std::optional<Endpoint> endpoint_for(Endpoint path, std::string_view method);
// The methods a path answers, for the Allow header of a 405: "GET", "POST" or
// "GET, PUT, DELETE".
std::string_view allowed_methods(Endpoint path);

// The HTTP status for an error code: 400 bad request, 401 unauthenticated or a failed login,
// 403 forbidden, 404 missing topic or group, 409 dedup conflict, 413 too large, 422 a delivery
// time past max_delivery_delay, 503 storage or shutting down, 500 otherwise.
unsigned status_of(Errc code);
// {"error":{"code":"<errc_text(code)>","message":"..."}}, e.g. "topic not found"
std::string error_json(const Error& error);

// One message object, or an array of them, with the fields id, key, headers (object of
// string to string), and payload (text) or payload_base64, and at most one of delay_ms (a
// delay counted from `now_ms`, loftd's clock as the request arrives) and deliver_at_ms (ms
// since the Unix epoch; a time in the past is now), each a whole number 0 or more. Unknown
// fields, wrong types, bad base64, an empty array or anything else fail with invalid_request
// naming the problem.
struct PublishBody {
  std::vector<Message> messages;
  bool array = false;  // the body was an array: the confirms are an array too
};
Result<PublishBody> parse_publish_body(std::string_view body, std::int64_t now_ms);

// Why a message of a publish was not stored (a MessageResult's code), as error bodies say it.
Error message_error(Errc code);

// The body of PUT /v1/topics/NAME: a JSON object of the settings CREATE_TOPIC takes, with the
// names of the topic JSON: retention ("limits" or "work_queue"), max_age_ms, max_bytes,
// max_messages, dedup_window_ms (0 = the default, 2 h), dedup_conflict ("duplicate" or
// "error"). Every field is optional; an empty body is {}. Unknown fields, wrong types or values
// fail with invalid_request naming the problem (and the known fields). Ranges are the broker's
// to check, as for CREATE_TOPIC.
struct TopicBody {
  broker::TopicSettings settings;
  // Which fields the body gave (the limits: settings.retention's optionals): a PUT of a topic
  // that exists compares these only (topic_matches).
  bool has_retention_mode = false;
  bool has_dedup_window = false;
  bool has_dedup_conflict = false;
};
Result<TopicBody> parse_topic_body(std::string_view body);
// Whether the existing topic has every setting the body gives (a repeated PUT: 200, not 409).
bool topic_matches(const TopicBody& body, const TopicInfo& topic);

// `loft pub --json`'s shape: {"offset":N,"duplicate":false} per message; an array when the
// body was one. A message that failed (dedup_conflict) has {"error":{...}} instead.
std::string confirms_json(const std::vector<broker::MessageResult>& results, bool array);

// The NATS port's figures (natsport::Figures), when nats_listen is on.
struct NatsFigures {
  std::uint64_t connections_open = 0;
  std::uint64_t subscriptions = 0;
  std::uint64_t messages_in = 0;
  std::uint64_t messages_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t slow_consumers = 0;
};

struct NetFigures {
  std::uint64_t connections_open = 0;
  std::uint64_t connections_refused = 0;
  // Logins of the binary protocol since start (AUTHENTICATE and client certificates).
  std::uint64_t auth_succeeded = 0;
  std::uint64_t auth_failed = 0;
  std::uint64_t connections_pending = 0;
  std::uint64_t connections_evicted = 0;
  std::optional<NatsFigures> nats{};  // with nats_listen
};

// Everything /metrics shows, gathered on the io thread.
struct MetricsSnapshot {
  std::vector<std::string> topics;  // the existing topics; each gets its counters, 0 if none
  broker::BrokerMetrics broker;
  std::vector<broker::GroupMetrics> groups;
  broker::StoreStats store;
  broker::StorageHealth storage_health;
  NetFigures net;
  std::optional<std::uint64_t> resident_bytes;
};
std::string render_metrics(const MetricsSnapshot& snapshot);
// Drops from `snapshot` the topics `visible` refuses: their per-topic series and the series of
// their groups. Broker-wide figures stay. (/metrics with metrics_auth = "users": a user sees
// the series of the topics GET /v1/topics lists for it.)
void keep_topics(MetricsSnapshot& snapshot,
                 const std::function<bool(const std::string& topic)>& visible);

}  // namespace loft::http
