#include "js_streams.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <ctime>

#include "js_message.hpp"
#include "loft/nats/subject.hpp"

namespace loft::natsport::js {

namespace {

constexpr std::uint64_t kNanosPerMs = 1'000'000;
constexpr std::uint64_t kMinMaxAgeMs = 1'000;
constexpr std::uint64_t kMaxNameSize = 249;

ApiError invalid(std::string text) { return api_error(err::kStreamInvalidConfig, std::move(text)); }

// A JSON number that is a count or a size: -1 and 0 mean none (nats-server's "unlimited").
// nullopt for a negative number other than -1 or a non-number.
std::optional<std::uint64_t> limit_of(const boost::json::value& v) {
  if (v.is_null()) return 0;
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64()) {
    const auto n = v.get_int64();
    if (n >= 0) return static_cast<std::uint64_t>(n);
    if (n == -1) return 0;
    return std::nullopt;
  }
  if (v.is_double() && v.get_double() == -1.0) return 0;
  if (v.is_double() && v.get_double() >= 0 && v.get_double() < 1.8e19) {
    return static_cast<std::uint64_t>(v.get_double());
  }
  return std::nullopt;
}

bool present(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return false;
  if (v->is_array()) return !v->get_array().empty();
  if (v->is_object()) return !v->get_object().empty();
  if (v->is_bool()) return v->get_bool();
  return true;
}

std::string_view string_or(const boost::json::object& o, std::string_view key,
                           std::string_view fallback) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : fallback;
}

}  // namespace

bool is_valid_stream_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameSize) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// What loft does not offer in a stream config, refused by name.
ApiResult<void> check_unsupported(const boost::json::object& o) {
  if (string_or(o, "retention", "limits") != "limits") {
    return tl::unexpected(invalid("retention policy " + std::string(string_or(o, "retention", "")) +
                                  " is not supported by loft (limits only)"));
  }
  if (string_or(o, "storage", "file") != "file") {
    return tl::unexpected(invalid("memory storage is not supported by loft (file only)"));
  }
  if (string_or(o, "discard", "old") != "old") {
    return tl::unexpected(invalid("discard policy new is not supported by loft (old only)"));
  }
  for (const char* key : {"mirror", "sources"}) {
    if (present(o, key))
      return tl::unexpected(invalid("mirrors and sources are not supported by loft"));
  }
  for (const char* key : {"sealed", "allow_rollup_hdrs", "allow_direct", "mirror_direct"}) {
    if (present(o, key)) {
      return tl::unexpected(invalid(std::string(key) + " is not supported by loft"));
    }
  }
  for (const char* key : {"max_msgs_per_subject", "max_msg_size", "max_consumers"}) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) continue;
    const auto n = limit_of(*v);
    if (!n) return tl::unexpected(invalid(std::string(key) + " is not a valid limit"));
    if (*n != 0) return tl::unexpected(invalid(std::string(key) + " is not supported by loft"));
  }
  if (const auto* v = o.if_contains("num_replicas"); v != nullptr) {
    const auto n = limit_of(*v);
    if (!n) return tl::unexpected(api_error(err::kBadRequest, "replicas count cannot be negative"));
    if (*n > 1) return tl::unexpected(api_error(err::kStreamReplicasNotSupported));
  }
  return {};
}

// The limits (max_msgs, max_bytes, max_age, duplicate_window) into `c`, with the defaults.
ApiResult<void> read_limits(const boost::json::object& o, StreamConfig& c) {
  struct Limit {
    const char* key;
    std::uint64_t* out;
  };
  std::uint64_t max_age_ns = 0;
  std::uint64_t window_ns = 0;
  for (const auto& [key, out] :
       {Limit{"max_msgs", &c.max_messages}, Limit{"max_bytes", &c.max_bytes},
        Limit{"max_age", &max_age_ns}, Limit{"duplicate_window", &window_ns}}) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) continue;
    const auto n = limit_of(*v);
    if (!n) return tl::unexpected(invalid(std::string(key) + " is not a valid limit"));
    *out = *n;
  }
  c.max_age_ms = max_age_ns / kNanosPerMs;
  if (max_age_ns != 0 && c.max_age_ms < kMinMaxAgeMs) {
    return tl::unexpected(invalid("max_age under 1s is not supported by loft"));
  }
  c.duplicate_window_given = window_ns != 0;
  c.duplicate_window_ms = window_ns / kNanosPerMs;
  if (c.duplicate_window_given && c.duplicate_window_ms < kMinMaxAgeMs) {
    return tl::unexpected(invalid("duplicate_window under 1s is not supported by loft"));
  }
  if (c.max_age_ms != 0 && c.duplicate_window_ms > c.max_age_ms) {
    return tl::unexpected(invalid("duplicates window can not be larger then max age"));
  }
  if (!c.duplicate_window_given) {
    c.duplicate_window_ms = kDefaultDuplicateWindowMs;
    if (c.max_age_ms != 0 && c.max_age_ms < c.duplicate_window_ms) {
      c.duplicate_window_ms = c.max_age_ms;
    }
  }
  return {};
}

}  // namespace

ApiResult<StreamConfig> parse_stream_config(std::string_view name, std::string_view json) {
  boost::system::error_code ec;
  const auto value = boost::json::parse(json, ec);
  if (ec || !value.is_object()) {
    return tl::unexpected(
        api_error(err::kInvalidJson, "invalid JSON: the request is not a JSON object"));
  }
  const auto& o = value.get_object();
  StreamConfig c;
  c.name = std::string(name);
  // A string field of another type is refused as nats-server's decoder does (not read as absent).
  for (const std::string_view key : {"name", "retention", "storage", "discard"}) {
    if (const auto* v = o.if_contains(key); v != nullptr && !v->is_null() && !v->is_string()) {
      std::string text = "invalid JSON: field ";
      text += key;
      text += " must be a string";
      return tl::unexpected(api_error(err::kInvalidJson, std::move(text)));
    }
  }
  if (const auto body_name = string_or(o, "name", name); body_name != name) {
    return tl::unexpected(api_error(err::kStreamMismatch));
  }
  if (const auto* s = o.if_contains("subjects"); s != nullptr && !s->is_null()) {
    if (!s->is_array()) return tl::unexpected(invalid("subjects must be an array of subjects"));
    for (const auto& subject : s->get_array()) {
      if (!subject.is_string() || !nats::is_valid_subscription_subject(subject.get_string())) {
        return tl::unexpected(invalid("invalid subject"));
      }
      const std::string_view text = subject.get_string();
      if (text.starts_with("$JS.") || text == ">" || text.starts_with("_INBOX.")) {
        return tl::unexpected(invalid("subjects that overlap with jetstream api or inboxes"));
      }
      c.subjects.emplace_back(text);
    }
  }
  if (c.subjects.empty()) c.subjects.push_back(c.name);
  if (auto ok = check_unsupported(o); !ok) return tl::unexpected(ok.error());
  if (auto ok = read_limits(o, c); !ok) return tl::unexpected(ok.error());
  return c;
}

bool same_config(const StreamConfig& c, const TopicInfo& t) {
  return c.subjects == stream_subjects(t) && c.max_age_ms == t.max_age_ms &&
         c.max_bytes == t.max_bytes && c.max_messages == t.max_messages &&
         c.duplicate_window_ms == t.dedup_window_ms;
}

std::vector<std::string> stream_subjects(const TopicInfo& topic) { return topic.subjects; }

namespace {
std::int64_t unlimited_as_minus_one(std::uint64_t n) {
  return n == 0 ? -1 : static_cast<std::int64_t>(n);
}
}  // namespace

boost::json::object config_json(const TopicInfo& t) {
  boost::json::object c;
  c["name"] = t.name;
  boost::json::array subjects;
  for (const auto& s : stream_subjects(t)) subjects.emplace_back(s);
  c["subjects"] = std::move(subjects);
  c["retention"] = "limits";
  c["max_consumers"] = -1;
  c["max_msgs"] = unlimited_as_minus_one(t.max_messages);
  c["max_bytes"] = unlimited_as_minus_one(t.max_bytes);
  c["max_age"] = t.max_age_ms * kNanosPerMs;
  c["max_msgs_per_subject"] = -1;
  c["max_msg_size"] = -1;
  c["discard"] = "old";
  c["storage"] = "file";
  c["num_replicas"] = 1;
  c["duplicate_window"] = t.dedup_window_ms * kNanosPerMs;
  c["allow_direct"] = false;
  c["mirror_direct"] = false;
  c["sealed"] = false;
  c["deny_delete"] = false;
  c["deny_purge"] = false;
  c["allow_rollup_hdrs"] = false;
  return c;
}

boost::json::object state_json(const TopicInfo& t, std::optional<std::int64_t> first_ts,
                               std::optional<std::int64_t> last_ts, std::size_t consumers) {
  boost::json::object s;
  s["messages"] = t.messages;
  s["bytes"] = t.bytes;
  const std::uint64_t next = t.next_offset.value;
  s["first_seq"] = next == 0 ? 0 : t.first_offset.value + 1;
  s["first_ts"] = rfc3339(first_ts);
  s["last_seq"] = next;
  s["last_ts"] = rfc3339(last_ts);
  // Offsets in [first, last] without a message: deleted ones (STREAM.MSG.DELETE, a purge by
  // subject). Absent when there are none, as from nats-server.
  const std::uint64_t span = next - t.first_offset.value;
  if (next != 0 && span > t.messages) s["num_deleted"] = span - t.messages;
  s["consumer_count"] = consumers;
  return s;
}

std::string rfc3339(std::optional<std::int64_t> ms) {
  if (!ms) return "0001-01-01T00:00:00Z";
  const std::time_t seconds = static_cast<std::time_t>(*ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(*ms % 1000) * 1'000'000);
  return buf;
}

std::string base64(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                   (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                   std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (rest == 2) n |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool subjects_collide(std::string_view a, std::string_view b) {
  for (;;) {
    const auto ea = a.find('.');
    const auto eb = b.find('.');
    const auto ta = a.substr(0, ea);
    const auto tb = b.substr(0, eb);
    if (ta == ">" || tb == ">") return true;
    if (ta != tb && ta != "*" && tb != "*") return false;
    const bool a_last = ea == std::string_view::npos;
    const bool b_last = eb == std::string_view::npos;
    if (a_last || b_last) return a_last && b_last;
    a.remove_prefix(ea + 1);
    b.remove_prefix(eb + 1);
  }
}

boost::json::object stored_message_json(std::string_view topic, const StoredMessage& m) {
  boost::json::object o;
  o["subject"] = m.message.subject.empty() ? std::string(topic) : m.message.subject;
  o["seq"] = m.offset.value + 1;
  const auto block = nats_header_block(m.message.id, m.message.headers);
  if (!block.empty()) o["hdrs"] = base64(block);
  if (!m.message.payload.empty()) o["data"] = base64(m.message.payload);
  o["time"] = rfc3339(m.timestamp_ms);
  return o;
}

namespace {

// A stream sequence as NATS prints it: offset + 1, 0 for none.
std::uint64_t sequence_of(std::optional<Offset> offset) { return offset ? offset->value + 1 : 0; }

// An offset expected as a stream sequence (0: none).
std::optional<Offset> offset_of(std::uint64_t sequence) {
  return sequence == 0 ? std::nullopt : std::optional<Offset>{Offset{sequence - 1}};
}

}  // namespace

broker::PublishConditions publish_conditions(const Expectations& expect, std::string_view subject) {
  broker::PublishConditions c;
  if (expect.last_sequence) c.last_offset = offset_of(*expect.last_sequence);
  if (expect.last_msg_id && !expect.last_msg_id->empty()) c.last_id = *expect.last_msg_id;
  if (expect.last_subject_sequence) {
    c.last_subject_offset = broker::PublishConditions::SubjectOffset{
        std::string(subject), offset_of(*expect.last_subject_sequence)};
  }
  return c;
}

ApiError condition_error(const broker::ConditionFailure& failure) {
  using What = broker::ConditionFailure::What;
  if (failure.what == What::last_id) {
    std::string text(err::kStreamWrongLastMsgId.description);
    text += ": ";
    text += failure.id;
    return api_error(err::kStreamWrongLastMsgId, std::move(text));
  }
  std::string text(err::kStreamWrongLastSequence.description);
  text += ": ";
  text += failure.known ? std::to_string(sequence_of(failure.offset)) : failure.detail;
  return api_error(err::kStreamWrongLastSequence, std::move(text));
}

}  // namespace loft::natsport::js
