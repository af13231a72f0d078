#pragma once
// JetStream consumer configs and infos (module-private, pure): a CONSUMER.CREATE request's
// config as JSON, checked and with nats-server's defaults filled in, echoed back; its mapping
// onto a loft group (docs/nats.md, "Consumers"); and the consumer info NATS clients read.
//
// What loft keeps of a consumer is its group: ack_wait, max_deliver, backoff and
// filter_subject are group settings; the rest (deliver policy, max_ack_pending, max_waiting,
// description, ...) lives in the front end's memory and falls back to the defaults after a
// restart.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "js_errors.hpp"
#include "loft/common/group.hpp"

namespace boost::json {
class value;
class object;
}  // namespace boost::json

namespace loft::natsport::js {

// nats-server's defaults (2.9).
inline constexpr std::int64_t kDefaultAckWaitNs = 30'000'000'000;
inline constexpr std::int64_t kDefaultMaxWaiting = 512;
inline constexpr std::int64_t kDefaultMaxAckPending = 1000;
inline constexpr std::int64_t kDefaultInactiveThresholdNs = 5'000'000'000;  // ephemerals
// loft's bounds where NATS has none: max_deliver -1 (unlimited) is loft's largest, and
// max_ack_pending -1 is this many messages in flight.
inline constexpr std::int64_t kUnlimitedMaxAckPending = 65'536;
// The group's backoff of a consumer without one: a redelivery 1 ms after ack_wait (a backoff
// list of exactly [1 ms] reads back as none).
inline constexpr std::uint32_t kNoBackoffMs = 1;
// The shortest idle_heartbeat loft sends (nats-server has none; shorter would keep loftd busy).
inline constexpr std::int64_t kMinIdleHeartbeatNs = 10'000'000;

// The fields of nats-server's ConsumerConfig that loft reads (the others are refused when set
// to something loft does not do, or ignored when they do not change delivery; docs/nats.md).
struct ConsumerConfig {
  std::string durable_name;
  std::string name;
  std::string description;
  std::string deliver_policy = "all";  // all, new, last, by_start_sequence, by_start_time
  std::uint64_t opt_start_seq = 0;
  std::string opt_start_time;  // RFC 3339, as sent
  std::string ack_policy = "explicit";
  std::int64_t ack_wait_ns = kDefaultAckWaitNs;
  std::int64_t max_deliver = -1;
  std::vector<std::int64_t> backoff_ns;
  std::string filter_subject;
  std::string replay_policy = "instant";
  std::int64_t max_waiting = kDefaultMaxWaiting;
  std::int64_t max_ack_pending = kDefaultMaxAckPending;
  std::int64_t max_batch = 0;
  std::int64_t max_expires_ns = 0;
  std::int64_t max_bytes = 0;
  std::int64_t inactive_threshold_ns = 0;
  std::int64_t num_replicas = 0;
  bool mem_storage = false;
  bool headers_only = false;
  // Push consumers (js_push.hpp): a deliver subject, optionally a queue group, flow control
  // and idle heartbeats (ns).
  std::string deliver_subject;
  std::string deliver_group;
  bool flow_control = false;
  std::int64_t idle_heartbeat_ns = 0;
  bool operator==(const ConsumerConfig&) const = default;

  // The consumer's name: `name`, else `durable_name` (empty for an ephemeral one not named yet).
  const std::string& consumer_name() const { return name.empty() ? durable_name : name; }
  bool durable() const { return !durable_name.empty(); }
  bool push() const { return !deliver_subject.empty(); }
};

// Reads `config` (the request's "config" object), checks it and fills in the defaults. Errors
// carry nats-server's err_code (js_errors.hpp).
tl::expected<ConsumerConfig, ApiError> parse_consumer_config(const boost::json::value& config);
// A consumer or durable name: 1..249 bytes of loft's group name charset ([A-Za-z0-9_-], no '.'),
// which is also a valid NATS name.
tl::expected<void, ApiError> check_consumer_name(std::string_view name);

// The config as nats-server echoes it: every default filled in, optional fields when set.
boost::json::object consumer_config_json(const ConsumerConfig& config);

// The loft group that carries the consumer.
struct GroupSettings {
  GroupConfig config;
  StartPosition start;
  std::uint32_t max_in_flight = 0;  // max_ack_pending
};
// `topic_end`: the stream's next offset (deliver_policy last); `stream`: for the default
// dead-letter topic. Errors: opt_start_time that is not RFC 3339.
tl::expected<GroupSettings, ApiError> group_settings(const ConsumerConfig& config,
                                                     std::uint64_t topic_end);
// Whether an existing group (its effective settings) is what `config` asks for: a re-create
// with the same config is answered with the existing consumer, another is an error.
bool same_group_settings(const GroupConfig& existing, const GroupSettings& requested);
// A consumer config for a group loft knows but whose NATS config is gone (after a restart, or
// a group made with loft's own tools): what the group's settings say, defaults for the rest.
ConsumerConfig config_of_group(std::string_view name, const GroupConfig& group);

// RFC 3339 times, as NATS writes them ("2006-01-02T15:04:05.999999999Z07:00"): ns since the
// Unix epoch.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);
std::string format_rfc3339(std::int64_t ns_since_epoch);

// What a consumer info reports.
struct ConsumerNumbers {
  std::uint64_t delivered_consumer_seq = 0;
  std::uint64_t delivered_stream_seq = 0;
  std::uint64_t ack_floor_consumer_seq = 0;
  std::uint64_t ack_floor_stream_seq = 0;
  std::uint64_t num_ack_pending = 0;
  std::uint64_t num_redelivered = 0;
  std::uint64_t num_waiting = 0;
  std::uint64_t num_pending = 0;
};
// The numbers of a group as loft describes it, with what the front end counted: the consumer
// sequence it handed out last and the highest stream sequence it delivered (0: none since
// start), and the pull requests waiting.
ConsumerNumbers consumer_numbers(const GroupInfo& group, std::uint64_t consumer_seq,
                                 std::uint64_t delivered_stream_seq, std::uint64_t waiting);
// The ConsumerInfo object (without "type"): stream_name, name, created, config, delivered,
// ack_floor, num_*, cluster.
boost::json::object consumer_info_json(std::string_view stream, const ConsumerConfig& config,
                                       std::int64_t created_ns, const ConsumerNumbers& numbers,
                                       std::string_view server_name);

}  // namespace loft::natsport::js
