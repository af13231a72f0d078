#pragma once
// JetStream streams as loft topics (module-private; docs/nats.md, "JetStream"): the stream
// config of STREAM.CREATE/UPDATE read into what a topic can hold, and a topic shown as a stream
// (config echoed with nats-server's defaults filled in, and state), and the Nats-Expected-*
// headers as broker conditions. Pure mapping: no broker calls, so it is tested without sockets.

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "js_errors.hpp"
#include "js_message.hpp"
#include "loft/broker/broker.hpp"
#include "loft/common/message.hpp"
#include "loft/common/topic.hpp"

namespace loft::natsport::js {

// nats-server's default duplicate_window: 2 minutes (capped at max_age when that is shorter).
inline constexpr std::uint64_t kDefaultDuplicateWindowMs = 120'000;

// What a STREAM.CREATE or UPDATE asks for, in loft's units (0 = unlimited).
struct StreamConfig {
  std::string name;
  std::vector<std::string> subjects;  // never empty: [name] when the request has none
  std::uint64_t max_age_ms = 0;
  std::uint64_t max_bytes = 0;
  std::uint64_t max_messages = 0;
  std::uint64_t duplicate_window_ms = 0;  // filled in: the request's, or the default
  bool duplicate_window_given = false;
};

template <class T>
using ApiResult = tl::expected<T, ApiError>;

// A stream name NATS and loft both accept: 1..249 bytes of [A-Za-z0-9_-] (no '.', which
// would split the API subject; loft's topic charset refuses the rest).
bool is_valid_stream_name(std::string_view name);

// Reads a STREAM.CREATE/UPDATE body for the stream `name` (from the API subject). Refuses what
// loft cannot honour, each with nats-server's err_code and a text naming it: a name that
// differs from the subject's (10056), retention other than limits, memory storage, discard
// new, mirrors and sources, per-subject limits, max_msg_size, max_age under 1 s (10052),
// replicas over 1 (10074).
ApiResult<StreamConfig> parse_stream_config(std::string_view name, std::string_view json);

// Whether an existing topic already has `config` (a CREATE of it again is then answered with
// its info, as by nats-server, not with 10058).
bool same_config(const StreamConfig& config, const TopicInfo& topic);

// A topic's subjects as a stream shows them: a topic made by loft's protocol or HTTP may have
// none (then no NATS subject is stored in it).
std::vector<std::string> stream_subjects(const TopicInfo& topic);

// The `config` object of a stream's info, with nats-server's defaults for what loft fixes.
boost::json::object config_json(const TopicInfo& topic);
// The `state` object: messages, bytes, first_seq/last_seq (offset + 1), first_ts/last_ts
// (`first_ts`/`last_ts`: publish times in ms, nullopt when the stream is empty),
// consumer_count.
boost::json::object state_json(const TopicInfo& topic, std::optional<std::int64_t> first_ts,
                               std::optional<std::int64_t> last_ts, std::size_t consumers);

// RFC 3339 in UTC with nanoseconds, as Go prints times: "2026-12-07T16:00:00.123000000Z";
// nullopt: Go's zero time.
std::string rfc3339(std::optional<std::int64_t> ms_since_epoch);

// Base64 (standard alphabet, padded), for MSG.GET's `data` and `hdrs`.
std::string base64(std::string_view bytes);

// Whether some subject matches both filter subjects `a` and `b` (stream NAMES' subject filter).
bool subjects_collide(std::string_view a, std::string_view b);

// The broker conditions of a publish's Nats-Expected-Last-Sequence, -Last-Msg-Id and
// -Last-Subject-Sequence (on `subject`, the publish's): a sequence N expects offset N - 1, and 0
// expects none. Nats-Expected-Stream is not among them (the port checks it itself).
broker::PublishConditions publish_conditions(const Expectations& expect, std::string_view subject);

// A refused conditional publish as nats-server answers it: "wrong last sequence: 6" (10071, for
// the last sequence and a subject's), "wrong last msg ID: a" (10070). A subject's last sequence
// the broker cannot tell (older than its scan) is a 10071 with the broker's reason.
ApiError condition_error(const broker::ConditionFailure& failure);

// The `message` of a MSG.GET answer.
boost::json::object stored_message_json(std::string_view topic, const StoredMessage& m);

}  // namespace loft::natsport::js
