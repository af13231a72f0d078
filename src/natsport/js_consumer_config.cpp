#include "js_consumer_config.hpp"

#include <algorithm>
#include <array>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>

#include "loft/broker/groups.hpp"
#include "loft/nats/subject.hpp"

namespace loft::natsport::js {

namespace {

constexpr std::int64_t kNsPerMs = 1'000'000;

tl::unexpected<ApiError> error(const ErrorKind& kind, std::string description = {}) {
  return tl::unexpected(description.empty() ? api_error(kind)
                                            : api_error(kind, std::move(description)));
}

// Milliseconds for loft, rounded up so a wait is never shorter than asked.
std::uint32_t to_ms(std::int64_t ns) {
  const std::int64_t ms = ns / kNsPerMs + (ns % kNsPerMs > 0 ? 1 : 0);
  return static_cast<std::uint32_t>(
      std::clamp<std::int64_t>(ms, 0, std::numeric_limits<std::uint32_t>::max()));
}

// Reading a JSON object field by field: a wrong type is a bad request, as in nats-server
// (its JSON decoder refuses the whole request).
struct Reader {
  const boost::json::object& o;
  std::string bad;  // the first field of a wrong type

  void str(const char* key, std::string& out) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_string()) return note(key);
    out = std::string(v->get_string());
  }
  void i64(const char* key, std::int64_t& out) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return;
    if (v->is_int64()) {
      out = v->get_int64();
    } else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(
                                                        std::numeric_limits<std::int64_t>::max())) {
      out = static_cast<std::int64_t>(v->get_uint64());
    } else {
      note(key);
    }
  }
  void u64(const char* key, std::uint64_t& out) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return;
    if (v->is_uint64()) {
      out = v->get_uint64();
    } else if (v->is_int64() && v->get_int64() >= 0) {
      out = static_cast<std::uint64_t>(v->get_int64());
    } else {
      note(key);
    }
  }
  void boolean(const char* key, bool& out) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_bool()) return note(key);
    out = v->get_bool();
  }
  void note(const char* key) {
    if (bad.empty()) bad = key;
  }
};

bool has_path_separator(std::string_view s) {
  return s.find_first_of("/\\") != std::string_view::npos;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2 ? 1 : 0;
}

std::optional<unsigned> digits(std::string_view s, std::size_t at, std::size_t n) {
  if (at + n > s.size()) return std::nullopt;
  unsigned v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return v;
}

}  // namespace

tl::expected<void, ApiError> check_consumer_name(std::string_view name) {
  if (name.find_first_of(".*>") != std::string_view::npos) {
    return error(err::kConsumerBadDurableName);
  }
  if (has_path_separator(name)) return error(err::kConsumerNameContainsPathSeparators);
  const bool charset_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (name.empty() || name.size() > 249 || !charset_ok) {
    return error(err::kConsumerCreate,
                 "consumer name must be 1 to 249 letters, digits, '_' and '-' (loft's group "
                 "names)");
  }
  return {};
}

bool valid_ack_policy(std::string_view name) {
  return name == "explicit" || name == "none" || name == "all";
}

std::uint32_t max_in_flight(const ConsumerConfig& c) {
  return static_cast<std::uint32_t>(c.max_ack_pending > 0 ? c.max_ack_pending
                                                          : kUnlimitedMaxAckPending);
}

namespace {

// The fields read only to check them.
struct PushFields {
  bool max_waiting_set = false;  // push consumers may not set it
};

// The fields of `o` into `c` and `push`; a field of the wrong type is an error.
tl::expected<void, ApiError> read_consumer_fields(const boost::json::object& o, ConsumerConfig& c,
                                                  PushFields& push) {
  Reader r{o, {}};
  r.str("durable_name", c.durable_name);
  r.str("name", c.name);
  r.str("description", c.description);
  r.str("deliver_policy", c.deliver_policy);
  r.u64("opt_start_seq", c.opt_start_seq);
  r.str("opt_start_time", c.opt_start_time);
  r.str("ack_policy", c.ack_policy);
  r.i64("ack_wait", c.ack_wait_ns);
  r.i64("max_deliver", c.max_deliver);
  r.str("filter_subject", c.filter_subject);
  r.str("replay_policy", c.replay_policy);
  r.i64("max_waiting", c.max_waiting);
  r.i64("max_ack_pending", c.max_ack_pending);
  r.i64("max_batch", c.max_batch);
  r.i64("max_expires", c.max_expires_ns);
  r.i64("max_bytes", c.max_bytes);
  r.i64("inactive_threshold", c.inactive_threshold_ns);
  r.i64("num_replicas", c.num_replicas);
  r.boolean("mem_storage", c.mem_storage);
  r.boolean("headers_only", c.headers_only);
  r.str("sample_freq", c.sample_freq);
  r.str("deliver_subject", c.deliver_subject);
  r.str("deliver_group", c.deliver_group);
  r.boolean("flow_control", c.flow_control);
  r.i64("idle_heartbeat", c.idle_heartbeat_ns);
  r.u64("rate_limit_bps", c.rate_limit_bps);
  if (const auto* w = o.if_contains("max_waiting"); w != nullptr && !w->is_null()) {
    push.max_waiting_set = !w->is_number() || w->to_number<double>() != 0;
  }
  if (const auto* b = o.if_contains("backoff"); b != nullptr && !b->is_null()) {
    if (!b->is_array()) {
      r.note("backoff");
    } else {
      for (const auto& d : b->get_array()) {
        if (!d.is_int64() && !d.is_uint64()) {
          r.note("backoff");
          break;
        }
        c.backoff_ns.push_back(d.is_int64() ? d.get_int64()
                                            : static_cast<std::int64_t>(d.get_uint64()));
      }
    }
  }
  if (!r.bad.empty()) {
    return error(err::kInvalidJson, "invalid JSON: field " + r.bad + " has the wrong type");
  }
  return {};
}

// ack_policy none without a max_ack_pending has none (0: not echoed), as in nats-server.
void unset_max_ack_pending(const boost::json::object& o, ConsumerConfig& c) {
  const auto* v = o.if_contains("max_ack_pending");
  if (c.ack_none() && (v == nullptr || v->is_null())) c.max_ack_pending = 0;
}

// The names, and the push fields (a deliver subject, or none of the push-only settings).
tl::expected<void, ApiError> check_names_and_push(const ConsumerConfig& c, const PushFields& push) {
  // Names.
  if (!c.durable_name.empty() && !c.name.empty() && c.durable_name != c.name) {
    return error(err::kConsumerCreateDurableAndNameMismatch);
  }
  for (const auto* n : {&c.durable_name, &c.name}) {
    if (n->empty()) continue;
    if (auto ok = check_consumer_name(*n); !ok) return tl::unexpected(ok.error());
  }

  if (!c.push()) {
    if (c.idle_heartbeat_ns != 0) return error(err::kConsumerHbRequiresPush);
    if (c.flow_control) return error(err::kConsumerFcRequiresPush);
    if (c.rate_limit_bps != 0) return error(err::kConsumerPullWithRateLimit);
    return {};
  }
  // A push consumer, checked as nats-server does, in its order.
  if (!nats::is_valid_subscription_subject(c.deliver_subject)) {
    return error(err::kConsumerInvalidDeliverSubject);
  }
  if (!nats::is_valid_publish_subject(c.deliver_subject)) {
    return error(err::kConsumerDeliverToWildcards);
  }
  if (!c.deliver_group.empty() && !nats::is_valid_queue_group(c.deliver_group)) {
    return error(err::kConsumerCreate, "deliver_group is not a valid queue group name");
  }
  if (push.max_waiting_set) return error(err::kConsumerPushMaxWaiting);
  if (c.flow_control && c.idle_heartbeat_ns == 0) {
    return error(err::kConsumerWithFlowControlNeedsHeartbeats);
  }
  // As nats-server: under 100 ms refused; a negative one is kept (and sends no heartbeats).
  if (c.idle_heartbeat_ns > 0 && c.idle_heartbeat_ns < kMinIdleHeartbeatNs) {
    return error(err::kConsumerSmallHeartbeat);
  }
  return {};
}

// The ack, replay and deliver policies loft carries out.
tl::expected<void, ApiError> check_policies(const ConsumerConfig& c) {
  // Policies loft carries out.
  if (!valid_ack_policy(c.ack_policy)) {
    return error(err::kConsumerInvalidPolicy,
                 "ack policy '" + c.ack_policy + "' is not one of explicit, none, all");
  }
  if (c.replay_policy != "instant") {
    return error(err::kConsumerInvalidPolicy,
                 "replay policy '" + c.replay_policy + "' is not supported by loft (instant)");
  }
  const auto& dp = c.deliver_policy;
  if (dp == "by_start_sequence") {
    if (c.opt_start_seq == 0 || !c.opt_start_time.empty()) {
      return error(err::kConsumerInvalidPolicy,
                   "consumer delivery policy is deliver by start sequence, but optional start "
                   "sequence is not set");
    }
  } else if (dp == "by_start_time") {
    if (c.opt_start_time.empty() || c.opt_start_seq != 0) {
      return error(err::kConsumerInvalidPolicy,
                   "consumer delivery policy is deliver by start time, but optional start time "
                   "is not set");
    }
    if (!parse_rfc3339(c.opt_start_time)) {
      return error(err::kInvalidJson, "invalid JSON: opt_start_time is not an RFC 3339 time");
    }
  } else if (dp == "all" || dp == "new" || dp == "last") {
    if (c.opt_start_seq != 0 || !c.opt_start_time.empty()) {
      return error(err::kConsumerInvalidPolicy,
                   "consumer delivery policy is deliver " + dp +
                       ", but optional start sequence or time is also set");
    }
  } else {
    return error(err::kConsumerInvalidPolicy,
                 "deliver policy '" + dp + "' is not supported by loft");
  }
  // What loft does not do, by name rather than silently. mem_storage is taken and echoed: the
  // consumer's group is stored on disk all the same (docs/nats.md, "Ordered consumers").
  if (!c.sample_freq.empty()) {
    return error(err::kConsumerCreate,
                 "sample_freq is not supported by loft (no ack sampling advisories)");
  }
  if (c.description.size() > kMaxDescriptionBytes) {
    return error(err::kConsumerDescriptionTooLong,
                 "consumer description is too long, maximum allowed is " +
                     std::to_string(kMaxDescriptionBytes));
  }
  return {};
}

// The numbers, with nats-server's defaults for 0. The ranges of the group settings (ack_wait,
// max_deliver, backoff) are the broker's: it refuses the group (group_refusal).
tl::expected<void, ApiError> fill_numbers(ConsumerConfig& c) {
  if (c.ack_wait_ns <= 0) c.ack_wait_ns = kDefaultAckWaitNs;
  if (c.max_deliver == 0) c.max_deliver = -1;
  if (c.max_deliver < -1) {
    return error(err::kConsumerCreate, "max_deliver must be -1 (unlimited) or positive");
  }
  if (!c.backoff_ns.empty()) {
    if (c.max_deliver != -1 && c.max_deliver <= static_cast<std::int64_t>(c.backoff_ns.size())) {
      return error(err::kConsumerMaxDeliverBackoff);
    }
    if (std::any_of(c.backoff_ns.begin(), c.backoff_ns.end(), [](auto d) { return d <= 0; })) {
      return error(err::kConsumerCreate, "each backoff delay must be positive");
    }
  }
  if (c.push()) c.max_waiting = 0;  // pull requests only
  if (c.max_waiting == 0 && !c.push()) c.max_waiting = kDefaultMaxWaiting;
  if (c.max_waiting < 0) return error(err::kConsumerMaxWaitingNegative);
  // Without acks nothing is pending: nats-server leaves max_ack_pending out for ack none.
  if (c.max_ack_pending == 0 && !c.ack_none()) c.max_ack_pending = kDefaultMaxAckPending;
  if (c.max_ack_pending < -1) {
    return error(err::kConsumerCreate, "max_ack_pending must be -1 or positive");
  }
  if (c.max_ack_pending > kUnlimitedMaxAckPending) {
    return error(err::kConsumerMaxPendingAckExcess,
                 "consumer max ack pending exceeds system limit of " +
                     std::to_string(kUnlimitedMaxAckPending));
  }
  if (c.max_batch < 0) return error(err::kConsumerMaxRequestBatchNegative);
  if (c.num_replicas > 1) return error(err::kStreamReplicasNotSupported);
  if (c.inactive_threshold_ns < 0) {
    return error(err::kConsumerCreate, "inactive_threshold must not be negative");
  }
  if (!c.durable() && c.inactive_threshold_ns == 0) {
    c.inactive_threshold_ns = kDefaultInactiveThresholdNs;
  }
  return {};
}

}  // namespace

tl::expected<ConsumerConfig, ApiError> parse_consumer_config(const boost::json::value& value) {
  if (!value.is_object()) return error(err::kConsumerConfigRequired);
  ConsumerConfig c;
  PushFields push;
  if (auto ok = read_consumer_fields(value.get_object(), c, push); !ok) {
    return tl::unexpected(ok.error());
  }
  unset_max_ack_pending(value.get_object(), c);
  if (auto ok = check_names_and_push(c, push); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_policies(c); !ok) return tl::unexpected(ok.error());
  if (auto ok = fill_numbers(c); !ok) return tl::unexpected(ok.error());
  return c;
}

boost::json::object consumer_config_json(const ConsumerConfig& c) {
  boost::json::object o;
  if (!c.durable_name.empty()) o["durable_name"] = c.durable_name;
  if (!c.consumer_name().empty()) o["name"] = c.consumer_name();
  if (!c.description.empty()) o["description"] = c.description;
  o["deliver_policy"] = c.deliver_policy;
  if (c.opt_start_seq != 0) o["opt_start_seq"] = c.opt_start_seq;
  if (!c.opt_start_time.empty()) o["opt_start_time"] = c.opt_start_time;
  o["ack_policy"] = c.ack_policy;
  o["ack_wait"] = c.ack_wait_ns;
  o["max_deliver"] = c.max_deliver;
  if (!c.backoff_ns.empty()) {
    boost::json::array b;
    for (const auto d : c.backoff_ns) b.emplace_back(d);
    o["backoff"] = std::move(b);
  }
  if (!c.filter_subject.empty()) o["filter_subject"] = c.filter_subject;
  o["replay_policy"] = c.replay_policy;
  if (!c.push()) o["max_waiting"] = c.max_waiting;
  if (c.max_ack_pending != 0) o["max_ack_pending"] = c.max_ack_pending;
  if (c.headers_only) o["headers_only"] = true;
  if (c.max_batch != 0) o["max_batch"] = c.max_batch;
  if (c.max_expires_ns != 0) o["max_expires"] = c.max_expires_ns;
  if (c.max_bytes != 0) o["max_bytes"] = c.max_bytes;
  if (c.inactive_threshold_ns != 0) o["inactive_threshold"] = c.inactive_threshold_ns;
  o["num_replicas"] = c.num_replicas;
  if (c.mem_storage) o["mem_storage"] = true;
  if (!c.sample_freq.empty()) o["sample_freq"] = c.sample_freq;
  if (!c.deliver_subject.empty()) o["deliver_subject"] = c.deliver_subject;
  if (!c.deliver_group.empty()) o["deliver_group"] = c.deliver_group;
  if (c.flow_control) o["flow_control"] = true;
  if (c.idle_heartbeat_ns != 0) o["idle_heartbeat"] = c.idle_heartbeat_ns;
  if (c.rate_limit_bps != 0) o["rate_limit_bps"] = c.rate_limit_bps;
  return o;
}

ApiError group_refusal(const Error& refusal) {
  // loft's group settings and the NATS fields they come from (group_settings).
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kFields{{
      {"ack_timeout_ms", "ack_wait"},
      {"max_deliveries", "max_deliver"},
      {"backoff_delays_ms", "backoff"},
      {"filter", "filter_subject"},
  }};
  for (const auto& [loft_name, nats_name] : kFields) {
    if (refusal.detail.starts_with(loft_name)) {
      std::string text(nats_name);
      text += " out of loft's range: ";
      text += refusal.detail;
      return api_error(err::kConsumerCreate, std::move(text));
    }
  }
  return api_error(err::kConsumerCreate, refusal.detail);
}

tl::expected<GroupSettings, ApiError> group_settings(const ConsumerConfig& c,
                                                     std::uint64_t topic_end) {
  GroupSettings s;
  s.config.ack_timeout_ms = to_ms(c.ack_wait_ns);
  // Beyond the u32 range is beyond loft's range too: the broker refuses it (group_refusal).
  s.config.max_deliveries = c.max_deliver > 0
                                ? static_cast<std::uint32_t>(std::min<std::int64_t>(
                                      c.max_deliver, std::numeric_limits<std::uint32_t>::max()))
                                : broker::GroupLimits::kMaxDeliveries;
  if (c.ack_none()) {
    // A delivery is settled as it is sent, so the group never waits for an ack: ack_wait only
    // bounds a settle lost to a crash (clamped into loft's range: ordered consumers ask for
    // 22 h), and a message goes back to the group only when no one could take it, which is
    // no delivery to count against max_deliver.
    s.config.ack_timeout_ms =
        std::clamp(s.config.ack_timeout_ms, broker::GroupLimits::kMinAckTimeoutMs,
                   broker::GroupLimits::kMaxAckTimeoutMs);
    s.config.max_deliveries = broker::GroupLimits::kMaxDeliveries;
  }
  for (const auto d : c.backoff_ns) s.config.backoff_delays_ms.push_back(to_ms(d));
  // Without a backoff NATS redelivers as soon as ack_wait passes, in sequence order: loft's
  // shortest explicit delay (no jitter) instead of its default exponential backoff.
  if (s.config.backoff_delays_ms.empty()) s.config.backoff_delays_ms = {kNoBackoffMs};
  s.config.filter = c.filter_subject;
  s.max_in_flight = max_in_flight(c);
  if (c.deliver_policy == "new") {
    s.start = {StartKind::latest, 0};
  } else if (c.deliver_policy == "last") {
    s.start = topic_end == 0 ? StartPosition{StartKind::latest, 0}
                             : StartPosition{StartKind::offset, topic_end - 1};
  } else if (c.deliver_policy == "by_start_sequence") {
    s.start = {StartKind::offset, c.opt_start_seq - 1};
  } else if (c.deliver_policy == "by_start_time") {
    const auto ns = parse_rfc3339(c.opt_start_time);
    if (!ns) return error(err::kInvalidJson, "invalid JSON: opt_start_time is not RFC 3339");
    // loft's timestamps are milliseconds: the first message at or after the start, rounded up.
    const std::int64_t ms = *ns <= 0 ? 0 : (*ns + kNsPerMs - 1) / kNsPerMs;
    s.start = {StartKind::timestamp, static_cast<std::uint64_t>(ms)};
  } else {
    s.start = {StartKind::earliest, 0};
  }
  return s;
}

ConsumerConfig config_of_group(std::string_view name, const GroupConfig& g) {
  ConsumerConfig c;
  c.durable_name = std::string(name);
  c.ack_wait_ns = static_cast<std::int64_t>(g.ack_timeout_ms) * kNsPerMs;
  c.max_deliver = g.max_deliveries >= broker::GroupLimits::kMaxDeliveries
                      ? -1
                      : static_cast<std::int64_t>(g.max_deliveries);
  if (g.backoff_delays_ms != std::vector<std::uint32_t>{kNoBackoffMs}) {
    for (const auto ms : g.backoff_delays_ms) {
      c.backoff_ns.push_back(static_cast<std::int64_t>(ms) * kNsPerMs);
    }
  }
  c.filter_subject = g.filter;
  return c;
}

namespace {

// nats-server 2.9's texts (its checkNewConsumerConfig).
tl::expected<void, ApiError> check_nats_update(const ConsumerConfig& old, const ConsumerConfig& c) {
  const auto refuse = [](std::string text) { return error(err::kConsumerCreate, std::move(text)); };
  if (old.deliver_policy != c.deliver_policy) return refuse("deliver policy can not be updated");
  if (old.opt_start_seq != c.opt_start_seq) return refuse("start sequence can not be updated");
  if (old.opt_start_time != c.opt_start_time) return refuse("start time can not be updated");
  if (old.ack_policy != c.ack_policy) return refuse("ack policy can not be updated");
  if (old.replay_policy != c.replay_policy) return refuse("replay policy can not be updated");
  if (old.idle_heartbeat_ns != c.idle_heartbeat_ns) return refuse("heart beats can not be updated");
  if (old.flow_control != c.flow_control) return refuse("flow control can not be updated");
  if (old.max_waiting != c.max_waiting) return refuse("max waiting can not be updated");
  if (old.deliver_subject.empty() != c.deliver_subject.empty()) {
    return refuse(old.deliver_subject.empty() ? "can not update pull consumer to push based"
                                              : "can not update push consumer to pull based");
  }
  return {};
}

}  // namespace

tl::expected<void, ApiError> check_consumer_update(const ConsumerConfig& old, bool old_known,
                                                   const ConsumerConfig& requested,
                                                   const GroupConfig& existing,
                                                   const GroupSettings& wanted) {
  // Without a known config (a group made by loft's tools) there is nothing to compare the
  // NATS-only fields with: the request's are taken.
  if (old_known) {
    if (auto ok = check_nats_update(old, requested); !ok) return ok;
  }
  const auto& w = wanted.config;
  const auto fixed = [](std::string_view field) {
    std::string text(field);
    text +=
        " can not be updated in loft (a setting of the consumer's group, fixed when it is made)";
    return error(err::kConsumerCreate, std::move(text));
  };
  if (existing.ack_timeout_ms != w.ack_timeout_ms) return fixed("ack_wait");
  if (existing.max_deliveries != w.max_deliveries) return fixed("max_deliver");
  if (existing.backoff_delays_ms != w.backoff_delays_ms) return fixed("backoff");
  if (existing.filter != w.filter) return fixed("filter_subject");
  return {};
}

tl::expected<std::string, ApiError> consumer_annotation(const ConsumerConfig& config,
                                                        std::int64_t created_ns,
                                                        std::uint64_t consumer_seq) {
  boost::json::object o;
  o["nats_consumer"] = 1;  // what wrote it, and its format's version
  o["created"] = created_ns;
  if (consumer_seq != 0) o["consumer_seq"] = consumer_seq;
  o["config"] = consumer_config_json(config);
  auto text = boost::json::serialize(o);
  if (text.size() > broker::GroupLimits::kMaxAnnotationBytes) {
    return error(err::kConsumerCreate,
                 "consumer config too large for loft to keep with its group: " +
                     std::to_string(text.size()) + " bytes of JSON, at most " +
                     std::to_string(broker::GroupLimits::kMaxAnnotationBytes));
  }
  return text;
}

std::optional<RestoredConsumer> restore_consumer(std::string_view annotation) {
  if (annotation.empty()) return std::nullopt;
  boost::system::error_code ec;
  const auto v = boost::json::parse(annotation, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  const auto* version = o.if_contains("nats_consumer");
  const auto* created = o.if_contains("created");
  const auto* config = o.if_contains("config");
  if (version == nullptr || !version->is_int64() || version->get_int64() != 1 ||
      created == nullptr || !created->is_int64() || config == nullptr || !config->is_object()) {
    return std::nullopt;
  }
  RestoredConsumer r;
  r.created_ns = created->get_int64();
  if (const auto* seq = o.if_contains("consumer_seq"); seq != nullptr) {
    if (seq->is_uint64()) r.consumer_seq = seq->get_uint64();
    if (seq->is_int64() && seq->get_int64() > 0) {
      r.consumer_seq = static_cast<std::uint64_t>(seq->get_int64());
    }
  }
  // As it was echoed: every default filled in already, so read as it is, not checked again.
  PushFields push;
  if (!read_consumer_fields(config->get_object(), r.config, push)) return std::nullopt;
  if (r.config.push()) r.config.max_waiting = 0;  // not echoed for a push consumer
  unset_max_ack_pending(config->get_object(), r.config);
  return r;
}

std::optional<std::int64_t> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  const auto year = digits(s, 0, 4);
  const auto month = digits(s, 5, 2);
  const auto day = digits(s, 8, 2);
  const auto hour = digits(s, 11, 2);
  const auto minute = digits(s, 14, 2);
  const auto second = digits(s, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return std::nullopt;
  }
  std::size_t at = 19;
  std::int64_t frac_ns = 0;
  if (at < s.size() && s[at] == '.') {
    ++at;
    std::int64_t scale = 100'000'000;
    const std::size_t start = at;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      frac_ns += (s[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == start) return std::nullopt;
  }
  std::int64_t offset_s = 0;
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    const auto oh = digits(s, at + 1, 2);
    const auto om = digits(s, at + 4, 2);
    if (!oh || !om || s[at + 3] != ':') return std::nullopt;
    offset_s = (s[at] == '+' ? 1 : -1) *
               (static_cast<std::int64_t>(*oh) * 3600 + static_cast<std::int64_t>(*om) * 60);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != s.size()) return std::nullopt;
  const std::int64_t days = days_from_civil(*year, *month, *day);
  const std::int64_t secs = days * 86400 + static_cast<std::int64_t>(*hour) * 3600 +
                            static_cast<std::int64_t>(*minute) * 60 + *second - offset_s;
  return secs * 1'000'000'000 + frac_ns;
}

std::string format_rfc3339(std::int64_t ns) {
  std::int64_t secs = ns / 1'000'000'000;
  std::int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  std::int64_t days = secs / 86400;
  std::int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  std::int64_t y = 0;
  unsigned m = 0;
  unsigned d = 0;
  civil_from_days(days, y, m, d);
  std::array<char, 48> buf{};
  const int n =
      std::snprintf(buf.data(), buf.size(), "%04lld-%02u-%02uT%02lld:%02lld:%02lld",
                    static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                    static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60));
  std::string out(buf.data(), static_cast<std::size_t>(n));
  if (frac != 0) {
    // As Go's RFC3339Nano: the fraction without trailing zeros.
    std::array<char, 16> f{};
    std::snprintf(f.data(), f.size(), ".%09lld", static_cast<long long>(frac));
    std::string_view fs(f.data(), 10);
    while (fs.back() == '0') fs.remove_suffix(1);
    out += fs;
  }
  out += 'Z';
  return out;
}

ConsumerNumbers consumer_numbers(const GroupInfo& g, std::uint64_t consumer_seq,
                                 std::uint64_t delivered_stream_seq, std::uint64_t waiting) {
  ConsumerNumbers n;
  n.num_ack_pending = g.in_flight + g.scheduled;
  n.num_pending = g.lag > n.num_ack_pending ? g.lag - n.num_ack_pending : 0;
  n.num_redelivered = g.redelivered;
  n.num_waiting = waiting;
  // Stream sequence = offset + 1: every offset below the floor is done, so the last done
  // sequence is the floor's offset.
  n.ack_floor_stream_seq = g.ack_floor;
  n.delivered_stream_seq = std::max(delivered_stream_seq, n.ack_floor_stream_seq);
  // Consumer sequences count deliveries since this process started; before the first one,
  // the stream sequence stands in.
  n.delivered_consumer_seq = consumer_seq != 0 ? consumer_seq : n.delivered_stream_seq;
  n.ack_floor_consumer_seq = n.num_ack_pending >= n.delivered_consumer_seq
                                 ? 0
                                 : n.delivered_consumer_seq - n.num_ack_pending;
  if (n.num_ack_pending == 0) n.ack_floor_consumer_seq = n.delivered_consumer_seq;
  return n;
}

boost::json::object consumer_info_json(std::string_view stream, const ConsumerConfig& config,
                                       std::int64_t created_ns, const ConsumerNumbers& n,
                                       std::string_view server_name) {
  boost::json::object o;
  o["stream_name"] = stream;
  o["name"] = config.consumer_name();
  o["created"] = format_rfc3339(created_ns);
  o["config"] = consumer_config_json(config);
  boost::json::object delivered;
  delivered["consumer_seq"] = n.delivered_consumer_seq;
  delivered["stream_seq"] = n.delivered_stream_seq;
  o["delivered"] = std::move(delivered);
  boost::json::object floor;
  floor["consumer_seq"] = n.ack_floor_consumer_seq;
  floor["stream_seq"] = n.ack_floor_stream_seq;
  o["ack_floor"] = std::move(floor);
  o["num_ack_pending"] = n.num_ack_pending;
  o["num_redelivered"] = n.num_redelivered;
  o["num_waiting"] = n.num_waiting;
  o["num_pending"] = n.num_pending;
  boost::json::object cluster;
  cluster["leader"] = server_name;
  o["cluster"] = std::move(cluster);
  return o;
}

std::int64_t system_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_name(std::minstd_rand& random) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string name;
  for (int i = 0; i < 22; ++i) name += kAlphabet[pick(random)];
  return name;
}

AdvisoryHeader advisory_now(std::minstd_rand& random) {
  return {random_name(random), system_now_ns()};
}

namespace {

Advisory advisory(const AdvisoryHeader& h, std::string_view prefix, std::string_view stream,
                  std::string_view consumer, std::string_view type, boost::json::object& body) {
  // A stream's advisory without a consumer, a consumer's with one.
  Advisory a;
  a.subject = consumer.empty() ? "$JS.EVENT.ADVISORY.STREAM." : "$JS.EVENT.ADVISORY.CONSUMER.";
  a.subject += prefix;
  a.subject += '.';
  a.subject += stream;
  if (!consumer.empty()) {
    a.subject += '.';
    a.subject += consumer;
  }
  boost::json::object o;
  std::string full_type = "io.nats.jetstream.advisory.v1.";
  full_type += type;
  o["type"] = full_type;
  o["id"] = h.id;
  o["timestamp"] = format_rfc3339(h.now_ns);
  o["stream"] = stream;
  if (!consumer.empty()) o["consumer"] = consumer;
  for (auto& [k, v] : body) o[k] = std::move(v);
  a.body = boost::json::serialize(o);
  return a;
}

}  // namespace

Advisory max_deliveries_advisory(const AdvisoryHeader& h, std::string_view stream,
                                 std::string_view consumer, std::uint64_t stream_seq,
                                 std::uint64_t deliveries) {
  boost::json::object body;
  body["stream_seq"] = stream_seq;
  body["deliveries"] = deliveries;
  return advisory(h, "MAX_DELIVERIES", stream, consumer, "max_deliver", body);
}

Advisory terminated_advisory(const AdvisoryHeader& h, std::string_view stream,
                             std::string_view consumer, std::uint64_t consumer_seq,
                             std::uint64_t stream_seq, std::uint64_t deliveries) {
  boost::json::object body;
  body["consumer_seq"] = consumer_seq;
  body["stream_seq"] = stream_seq;
  body["deliveries"] = deliveries;
  return advisory(h, "MSG_TERMINATED", stream, consumer, "terminated", body);
}

Advisory consumer_action_advisory(const AdvisoryHeader& h, std::string_view stream,
                                  std::string_view consumer, ConsumerAction action) {
  boost::json::object body;
  body["action"] = action == ConsumerAction::created ? "create" : "delete";
  return advisory(h, action == ConsumerAction::created ? "CREATED" : "DELETED", stream, consumer,
                  "consumer_action", body);
}

Advisory stream_action_advisory(const AdvisoryHeader& h, std::string_view stream,
                                std::string_view action) {
  boost::json::object body;
  body["action"] = action;
  const std::string_view prefix = action == "create"   ? "CREATED"
                                  : action == "delete" ? "DELETED"
                                                       : "UPDATED";
  return advisory(h, prefix, stream, {}, "stream_action", body);
}

Advisory api_audit_advisory(const AdvisoryHeader& h, std::string_view server_id,
                            std::string_view subject, std::string_view request,
                            std::string_view response) {
  boost::json::object o;
  o["type"] = "io.nats.jetstream.advisory.v1.api_audit";
  o["id"] = h.id;
  o["timestamp"] = format_rfc3339(h.now_ns);
  o["server"] = server_id;
  boost::json::object client;
  client["acc"] = "$G";
  client["server"] = server_id;
  o["client"] = std::move(client);
  o["subject"] = subject;
  if (!request.empty()) o["request"] = request;
  o["response"] = response;
  return {std::string(kApiAuditSubject), boost::json::serialize(o)};
}

}  // namespace loft::natsport::js
