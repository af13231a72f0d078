#include "loft/http/api.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <limits>
#include <optional>
#include <utility>

#include "loft/http/prometheus.hpp"

namespace loft::http {
namespace {

namespace json = boost::json;

constexpr std::string_view kTopicsPrefix = "/v1/topics/";

Error bad_body(std::string detail) { return Error{Errc::invalid_request, std::move(detail)}; }

bool is_base64_digit(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Standard base64 with padding. Beast's decoder stops quietly at the first character it does
// not know, so the text is checked here first: a typo must not publish a truncated payload.
Result<std::string> decode_base64(std::string_view text, const std::string& where) {
  const auto invalid = [&] {
    return tl::unexpected(bad_body(where + "payload_base64 is not valid base64"));
  };
  if (text.size() % 4 != 0) return invalid();
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  for (std::size_t i = 0; i + padding < text.size(); ++i) {
    if (!is_base64_digit(text[i])) return invalid();
  }
  std::string out(boost::beast::detail::base64::decoded_size(text.size()), '\0');
  const auto [written, read] =
      boost::beast::detail::base64::decode(out.data(), text.data(), text.size());
  (void)read;  // every character was checked above
  out.resize(written);
  return out;
}

Result<std::string> text_field(const json::value& v, std::string_view name,
                               const std::string& where) {
  if (!v.is_string()) {
    return fail(Errc::invalid_request, where + std::string(name) + " must be a string");
  }
  return std::string(v.get_string());
}

// A whole number of milliseconds, 0 or more, that fits an i64 (JSON numbers may be u64 or
// doubles; 1.5 or 1e3 is refused rather than rounded).
Result<std::int64_t> millis_field(const json::value& v, std::string_view name,
                                  const std::string& where) {
  const auto bad = [&](std::string_view why) {
    return fail(Errc::invalid_request, where + std::string(name) + std::string(why));
  };
  if (v.is_int64()) {
    if (v.get_int64() < 0) return bad(" must be 0 or more, got " + std::to_string(v.get_int64()));
    return v.get_int64();
  }
  if (v.is_uint64()) return bad(" is too large, got " + std::to_string(v.get_uint64()));
  return bad(" must be a whole number of milliseconds");
}

// The delivery time a message's delay_ms or deliver_at_ms gives (0 = at once). A delay counts
// from `now_ms`, loftd's clock as the request arrives, so a client's clock does not matter.
Result<std::int64_t> deliver_at(std::optional<std::int64_t> delay_ms,
                                std::optional<std::int64_t> deliver_at_ms, std::int64_t now_ms,
                                const std::string& where) {
  if (delay_ms && deliver_at_ms) {
    return fail(Errc::invalid_request, where + "has both delay_ms and deliver_at_ms: give one");
  }
  if (deliver_at_ms) return *deliver_at_ms;
  if (!delay_ms || *delay_ms == 0) return std::int64_t{0};
  if (now_ms > 0 && *delay_ms > std::numeric_limits<std::int64_t>::max() - now_ms) {
    return fail(Errc::invalid_request, where + "delay_ms " + std::to_string(*delay_ms) +
                                           " is too large: the time it gives overflows");
  }
  return now_ms + *delay_ms;
}

Result<Message> parse_message(const json::value& v, const std::string& where, std::int64_t now_ms) {
  if (!v.is_object()) return fail(Errc::invalid_request, where + "must be a JSON object");
  Message m;
  bool has_payload = false;
  std::optional<std::int64_t> delay_ms;
  std::optional<std::int64_t> deliver_at_ms;
  for (const auto& [key, value] : v.get_object()) {
    if (key == "id" || key == "key" || key == "subject" || key == "payload") {
      auto text = text_field(value, key, where);
      if (!text) return tl::unexpected(text.error());
      if (key == "id") m.id = std::move(*text);
      if (key == "key") m.key = std::move(*text);
      if (key == "subject") m.subject = std::move(*text);
      if (key == "payload") {
        if (has_payload) {
          return fail(Errc::invalid_request, where + "has both payload and payload_base64");
        }
        m.payload = std::move(*text);
        has_payload = true;
      }
    } else if (key == "payload_base64") {
      if (has_payload) {
        return fail(Errc::invalid_request, where + "has both payload and payload_base64");
      }
      auto text = text_field(value, key, where);
      if (!text) return tl::unexpected(text.error());
      auto bytes = decode_base64(*text, where);
      if (!bytes) return tl::unexpected(bytes.error());
      m.payload = std::move(*bytes);
      has_payload = true;
    } else if (key == "delay_ms" || key == "deliver_at_ms") {
      auto ms = millis_field(value, key, where);
      if (!ms) return tl::unexpected(ms.error());
      (key == "delay_ms" ? delay_ms : deliver_at_ms) = *ms;
    } else if (key == "headers") {
      if (!value.is_object()) {
        return fail(Errc::invalid_request, where + "headers must be an object of strings");
      }
      for (const auto& [name, header] : value.get_object()) {
        if (!header.is_string()) {
          return fail(Errc::invalid_request,
                      where + "header '" + std::string(name) + "' must be a string");
        }
        m.headers.push_back({std::string(name), std::string(header.get_string())});
      }
    } else {
      return fail(Errc::invalid_request,
                  where + "has unknown field '" + std::string(key) +
                      "' (known: id, key, subject, headers, payload, payload_base64, "
                      "delay_ms, deliver_at_ms)");
    }
  }
  if (!has_payload) return fail(Errc::invalid_request, where + "needs payload or payload_base64");
  auto at = deliver_at(delay_ms, deliver_at_ms, now_ms, where);
  if (!at) return tl::unexpected(at.error());
  m.deliver_at_ms = *at;
  return m;
}

json::object error_object(const Error& e) {
  return json::object{{"code", errc_text(e.code)}, {"message", e.detail}};
}

}  // namespace

std::optional<Route> route(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics") return Route{Endpoint::metrics, {}};
  if (path == "/healthz") return Route{Endpoint::healthz, {}};
  if (path == "/readyz") return Route{Endpoint::readyz, {}};
  if (path == "/v1/topics") return Route{Endpoint::topics, {}};
  if (!path.starts_with(kTopicsPrefix)) return std::nullopt;
  const std::string_view rest = path.substr(kTopicsPrefix.size());
  const auto slash = rest.find('/');
  const std::string_view name = rest.substr(0, slash);
  if (name.empty()) return std::nullopt;
  if (slash == std::string_view::npos) return Route{Endpoint::topic, std::string(name)};
  const std::string_view tail = rest.substr(slash);
  if (tail == "/groups") return Route{Endpoint::topic_groups, std::string(name)};
  if (tail == "/messages") return Route{Endpoint::topic_messages, std::string(name)};
  return std::nullopt;
}

std::optional<Endpoint> endpoint_for(Endpoint path, std::string_view method) {
  if (path == Endpoint::topic) {
    if (method == "GET") return Endpoint::topic;
    if (method == "PUT") return Endpoint::create_topic;
    if (method == "DELETE") return Endpoint::delete_topic;
    return std::nullopt;
  }
  if (method == allowed_methods(path)) return path;
  return std::nullopt;
}

std::string_view allowed_methods(Endpoint path) {
  switch (path) {
    case Endpoint::topic_messages:
      return "POST";
    case Endpoint::topic:
    case Endpoint::create_topic:
    case Endpoint::delete_topic:
      return "GET, PUT, DELETE";
    default:
      return "GET";
  }
}

unsigned status_of(Errc code) {
  switch (code) {
    case Errc::ok:
      return 200;
    case Errc::invalid_request:
    case Errc::invalid_name:
    case Errc::invalid_subject:
    case Errc::malformed_frame:
      return 400;
    case Errc::topic_not_found:
    case Errc::group_not_found:
      return 404;
    case Errc::unauthenticated:
    case Errc::authentication_failed:
      return 401;
    case Errc::forbidden:
      return 403;
    case Errc::dedup_conflict:
    case Errc::topic_exists:
    case Errc::subjects_overlap:
    case Errc::expectation_failed:
      return 409;
    // The body is fine; this broker's max_delivery_delay refuses the time (another setting
    // would take it), unlike a body no broker takes (400).
    case Errc::delay_too_long:
      return 422;
    case Errc::frame_too_large:
    case Errc::message_too_large:
    case Errc::id_too_large:
    case Errc::key_too_large:
    case Errc::headers_too_large:
      return 413;
    case Errc::storage_error:
    case Errc::shutting_down:
      return 503;
    default:
      return 500;
  }
}

std::string error_json(const Error& error) {
  return json::serialize(json::object{{"error", error_object(error)}});
}

Result<PublishBody> parse_publish_body(std::string_view body, std::int64_t now_ms) {
  boost::system::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (ec) return fail(Errc::invalid_request, "the body is not valid JSON: " + ec.message());
  PublishBody out;
  if (doc.is_array()) {
    const auto& arr = doc.get_array();
    if (arr.empty()) return fail(Errc::invalid_request, "the body is an empty array");
    out.array = true;
    out.messages.reserve(arr.size());
    for (std::size_t i = 0; i < arr.size(); ++i) {
      auto m = parse_message(arr[i], "message " + std::to_string(i) + " ", now_ms);
      if (!m) return tl::unexpected(m.error());
      out.messages.push_back(std::move(*m));
    }
    return out;
  }
  auto m = parse_message(doc, "the message ", now_ms);
  if (!m) return tl::unexpected(m.error());
  out.messages.push_back(std::move(*m));
  return out;
}

Error message_error(Errc code) {
  switch (code) {
    case Errc::dedup_conflict:
      return {code,
              "the message was not stored: its id is already stored with a different payload"};
    case Errc::delay_too_long:
      return {code,
              "the message was not stored: its delivery time is further ahead than the broker's "
              "max_delivery_delay"};
    default:
      return {code, "the message was not stored: " + std::string(errc_text(code))};
  }
}

Result<TopicBody> parse_topic_body(std::string_view body) {
  TopicBody out;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;  // {}
  boost::system::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (ec) return fail(Errc::invalid_request, "the body is not valid JSON: " + ec.message());
  if (!doc.is_object()) return fail(Errc::invalid_request, "the body must be a JSON object");
  auto& s = out.settings;
  for (const auto& field : doc.get_object()) {
    // Not a structured binding: lambdas below use the value (clang 14 cannot capture those).
    const json::value& value = field.value();
    const std::string name(field.key());
    const auto number = [&]() -> Result<std::uint64_t> {
      if (const auto* u = value.if_uint64()) return *u;
      if (const auto* i = value.if_int64(); i != nullptr && *i >= 0) {
        return static_cast<std::uint64_t>(*i);
      }
      return fail(Errc::invalid_request, name + " must be a whole number, 0 or more");
    };
    const auto text = [&](std::string_view a, std::string_view b) -> Result<bool> {
      const auto* t = value.if_string();
      if (t == nullptr || (*t != a && *t != b)) {
        std::string detail = name;
        detail += " must be \"";
        detail += a;
        detail += "\" or \"";
        detail += b;
        detail += '"';
        return fail(Errc::invalid_request, std::move(detail));
      }
      return *t == a;
    };
    if (name == "retention") {
      auto limits = text("limits", "work_queue");
      if (!limits) return tl::unexpected(limits.error());
      s.retention_mode = *limits ? RetentionMode::limits : RetentionMode::work_queue;
      out.has_retention_mode = true;
    } else if (name == "dedup_conflict") {
      auto duplicate = text("duplicate", "error");
      if (!duplicate) return tl::unexpected(duplicate.error());
      s.dedup_conflict = *duplicate ? DedupConflict::duplicate : DedupConflict::error;
      out.has_dedup_conflict = true;
    } else if (name == "dedup_window_ms" || name == "max_age_ms" || name == "max_bytes" ||
               name == "max_messages") {
      auto n = number();
      if (!n) return tl::unexpected(n.error());
      if (name == "dedup_window_ms") {
        s.dedup_window_ms = *n;
        out.has_dedup_window = true;
      }
      if (name == "max_age_ms") s.retention.max_age_ms = *n;
      if (name == "max_bytes") s.retention.max_bytes = *n;
      if (name == "max_messages") s.retention.max_messages = *n;
    } else {
      return fail(Errc::invalid_request,
                  "the body has unknown field '" + name +
                      "' (known: retention, max_age_ms, max_bytes, max_messages, "
                      "dedup_window_ms, dedup_conflict)");
    }
  }
  return out;
}

bool topic_matches(const TopicBody& body, const TopicInfo& topic) {
  const auto& s = body.settings;
  const auto& r = s.retention;
  const std::uint64_t window = s.dedup_window_ms == 0 ? kDefaultDedupWindowMs : s.dedup_window_ms;
  return (!body.has_retention_mode || s.retention_mode == topic.retention_mode) &&
         (!body.has_dedup_window || window == topic.dedup_window_ms) &&
         (!body.has_dedup_conflict || s.dedup_conflict == topic.dedup_conflict) &&
         (!r.max_age_ms || *r.max_age_ms == topic.max_age_ms) &&
         (!r.max_bytes || *r.max_bytes == topic.max_bytes) &&
         (!r.max_messages || *r.max_messages == topic.max_messages);
}

std::string confirms_json(const std::vector<broker::MessageResult>& results, bool array) {
  const auto one = [](const broker::MessageResult& r) {
    if (r.code != Errc::ok) return json::object{{"error", error_object(message_error(r.code))}};
    return json::object{{"offset", r.offset.value}, {"duplicate", r.duplicate}};
  };
  if (!array && results.size() == 1) return json::serialize(one(results.front()));
  json::array out;
  out.reserve(results.size());
  for (const auto& r : results) out.push_back(one(r));
  return json::serialize(out);
}

namespace {

// Per-topic publish counters and the confirm latency histogram.
void render_broker(Exposition& e, const MetricsSnapshot& s) {
  const auto topic_counter = [&](std::string_view name, std::string_view help,
                                 std::uint64_t broker::TopicCounters::*field) {
    e.family(name, "counter", help);
    for (const auto& topic : s.topics) {
      const auto it = s.broker.topics.find(topic);
      const std::uint64_t v = it == s.broker.topics.end() ? 0 : it->second.*field;
      e.sample(name, {{"topic", topic}}, v);
    }
  };
  topic_counter("loft_messages_published_total",
                "Messages appended to the topic by publishes since loftd started (duplicates "
                "excluded).",
                &broker::TopicCounters::messages_published);
  topic_counter("loft_published_bytes_total",
                "Bytes (id, key, headers and payload) of the messages counted in "
                "loft_messages_published_total.",
                &broker::TopicCounters::bytes_published);
  topic_counter("loft_dedup_hits_total",
                "Published messages whose id the topic already stored: answered with the "
                "original offset, not stored again.",
                &broker::TopicCounters::dedup_hits);

  const auto& h = s.broker.publish_confirm;
  constexpr std::string_view kLatency = "loft_publish_confirm_duration_seconds";
  e.family(kLatency, "histogram",
           "Time from a publish entering the write queue to its durable confirm.");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    e.sample("loft_publish_confirm_duration_seconds_bucket",
             {{"le", format_value(broker::LatencyHistogram::kBoundsSeconds[i])}}, cumulative);
  }
  e.sample("loft_publish_confirm_duration_seconds_bucket", {{"le", "+Inf"}}, h.count);
  e.sample("loft_publish_confirm_duration_seconds_sum", {}, h.sum_seconds);
  e.sample("loft_publish_confirm_duration_seconds_count", {}, h.count);
}

// Per-group delivery counters and gauges.
void render_groups(Exposition& e, const MetricsSnapshot& s) {
  const auto group_family = [&](std::string_view name, std::string_view type, std::string_view help,
                                auto value) {
    e.family(name, type, help);
    for (const auto& g : s.groups)
      e.sample(name, {{"topic", g.topic}, {"group", g.group}}, value(g));
  };
  using G = broker::GroupMetrics;
  group_family("loft_messages_delivered_total", "counter",
               "Messages sent to the group's consumers, redeliveries included.",
               [](const G& g) { return g.counters.delivered; });
  group_family("loft_messages_redelivered_total", "counter",
               "Deliveries after the first attempt (ack timeout, nack, consumer gone).",
               [](const G& g) { return g.counters.redelivered; });
  group_family("loft_messages_acked_total", "counter",
               "Acks that settled a message in flight to the group.",
               [](const G& g) { return g.counters.acked; });
  group_family("loft_messages_nacked_total", "counter",
               "Nacks and rejects that settled a message in flight to the group.",
               [](const G& g) { return g.counters.nacked; });
  group_family("loft_messages_dead_lettered_total", "counter",
               "Messages of the group moved to its dead-letter topic (durably).",
               [](const G& g) { return g.counters.dead_lettered; });
  group_family("loft_messages_skipped_total", "counter",
               "Messages retention removed before the group finished them: the group moved "
               "past them. Kept with the group, so it counts since the group was created.",
               [](const G& g) { return g.skipped; });
  group_family("loft_group_lag_messages", "gauge",
               "Messages of the topic the group has not finished (from its ack floor to the "
               "end of the log).",
               [](const G& g) { return g.lag; });
  group_family("loft_group_in_flight_messages", "gauge",
               "Messages delivered to the group's consumers and not yet settled.",
               [](const G& g) { return g.in_flight; });
}

void render_net(Exposition& e, const NetFigures& net) {
  e.single("loft_connections_open", "gauge", "Client connections (binary protocol) open now.",
           net.connections_open);
  e.single("loft_connections_refused_total", "counter",
           "Client connections turned away by the connection limit since loftd started.",
           net.connections_refused);
  e.single("loft_auth_succeeded_total", "counter",
           "Successful logins (a password or a client certificate) since loftd started.",
           net.auth_succeeded);
  e.single("loft_auth_failed_total", "counter",
           "Failed logins (wrong user or password, bad request) since loftd started.",
           net.auth_failed);
  e.single("loft_connections_pending", "gauge",
           "Client connections (binary protocol) open and not yet admitted (handshake not "
           "complete); included in loft_connections_open.",
           net.connections_pending);
  e.single("loft_connections_evicted_total", "counter",
           "Pending client connections closed to make room for a new connection "
           "(max_pending_connections, or max_connections reached) since loftd started.",
           net.connections_evicted);
  if (!net.nats) return;
  const auto& n = *net.nats;
  e.single("loft_nats_connections_open", "gauge", "Connections to the NATS port open now.",
           n.connections_open);
  e.single("loft_nats_subscriptions", "gauge", "Subscriptions of NATS connections now.",
           n.subscriptions);
  e.single("loft_nats_messages_in_total", "counter",
           "Messages published on the NATS port (PUB, HPUB) since loftd started.", n.messages_in);
  e.single("loft_nats_messages_out_total", "counter",
           "Messages delivered to NATS subscriptions (MSG, HMSG) since loftd started.",
           n.messages_out);
  e.single("loft_nats_bytes_in_total", "counter",
           "Payload and header bytes of the messages published on the NATS port since loftd "
           "started.",
           n.bytes_in);
  e.single("loft_nats_bytes_out_total", "counter",
           "Payload and header bytes of the messages delivered to NATS subscriptions since loftd "
           "started.",
           n.bytes_out);
  e.single("loft_nats_slow_consumers_total", "counter",
           "NATS connections closed because their unsent messages exceeded max_send_queue, since "
           "loftd started.",
           n.slow_consumers);
}

// The writer's view of the storage, then RocksDB's own figures when the store has them (the
// memory store has none: no lines rather than made-up zeros).
void render_storage(Exposition& e, const broker::StorageHealth& health,
                    const storage::StoreStats& store) {
  e.single("loft_storage_writable", "gauge",
           "1 while storage takes writes; 0 from a failed write (disk full, I/O error) until "
           "a write or a recovery succeeds.",
           health.writable ? 1 : 0);
  e.single("loft_storage_failed_writes_total", "counter",
           "Storage writes that failed since loftd started.", health.failed_writes);
  e.single("loft_storage_unwritable_episodes_total", "counter",
           "Times storage stopped taking writes since loftd started.", health.episodes);
  if (!store.available) return;
  e.single("loft_rocksdb_live_data_bytes", "gauge",
           "RocksDB's estimate of the live data on disk (rocksdb.estimate-live-data-size).",
           store.live_data_bytes);
  e.single("loft_rocksdb_memtable_bytes", "gauge",
           "Bytes in RocksDB's memtables, active and unflushed "
           "(rocksdb.cur-size-all-mem-tables).",
           store.memtable_bytes);
  e.single("loft_rocksdb_pending_compaction_bytes", "gauge",
           "RocksDB's estimate of the bytes compaction still has to rewrite "
           "(rocksdb.estimate-pending-compaction-bytes).",
           store.pending_compaction_bytes);
  e.single("loft_rocksdb_write_stops_total", "counter",
           "Times RocksDB stopped writes since the store was opened (io_stalls.total_stop).",
           store.write_stops);
  e.single("loft_rocksdb_write_slowdowns_total", "counter",
           "Times RocksDB delayed writes since the store was opened "
           "(io_stalls.total_slowdown).",
           store.write_slowdowns);
}

void render_process(Exposition& e, const std::optional<std::uint64_t>& resident_bytes) {
  if (!resident_bytes) return;
  e.single("loft_process_resident_memory_bytes", "gauge",
           "Resident memory of the loftd process (/proc/self/statm).", *resident_bytes);
}

}  // namespace

void keep_topics(MetricsSnapshot& s, const std::function<bool(const std::string& topic)>& visible) {
  std::erase_if(s.topics, [&](const std::string& t) { return !visible(t); });
  std::erase_if(s.broker.topics, [&](const auto& entry) { return !visible(entry.first); });
  std::erase_if(s.groups, [&](const broker::GroupMetrics& g) { return !visible(g.topic); });
}

std::string render_metrics(const MetricsSnapshot& s) {
  Exposition e;
  render_broker(e, s);
  render_groups(e, s);
  render_net(e, s.net);
  render_storage(e, s.storage_health, s.store);
  render_process(e, s.resident_bytes);
  return e.text();
}

}  // namespace loft::http
