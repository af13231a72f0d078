#pragma once
// JetStream consumer configs and infos (module-private, pure): a CONSUMER.CREATE request's
// config as JSON, checked and with nats-server's defaults filled in, echoed back; its mapping
// onto a loft group (docs/nats.md, "Consumers"); and the consumer info NATS clients read.
//
// What loft keeps of a consumer is its group: ack_wait, max_deliver, backoff and
// filter_subject are group settings; the whole config (deliver policy, max_ack_pending,
// max_waiting, description, deliver_subject, ...) and its creation time are also kept with the
// group as its annotation (consumer_annotation, GroupConfig::annotation), so that a consumer
// is the same after a restart.

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "js_errors.hpp"
#include "loft/common/error.hpp"
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
inline constexpr std::size_t kMaxDescriptionBytes = 4096;
// loft's bounds where NATS has none: max_deliver -1 (unlimited) is loft's largest, and
// max_ack_pending -1 is this many messages in flight.
inline constexpr std::int64_t kUnlimitedMaxAckPending = 65'536;
// The group's backoff of a consumer without one: a redelivery 1 ms after ack_wait (a backoff
// list of exactly [1 ms] reads back as none).
inline constexpr std::uint32_t kNoBackoffMs = 1;
// The shortest idle_heartbeat of a push consumer (nats-server's bound, 10083 under it).
inline constexpr std::int64_t kMinIdleHeartbeatNs = 100'000'000;

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
  std::string sample_freq;  // refused when set (docs/nats.md)
  // Push consumers (js_push.*): where and how the messages are pushed.
  std::string deliver_subject;
  std::string deliver_group;
  bool flow_control = false;
  std::int64_t idle_heartbeat_ns = 0;
  std::uint64_t rate_limit_bps = 0;  // push only; negative: 10025, as nats-server
  bool operator==(const ConsumerConfig&) const = default;

  // The consumer's name: `name`, else `durable_name` (empty for an ephemeral one not named yet).
  const std::string& consumer_name() const { return name.empty() ? durable_name : name; }
  bool durable() const { return !durable_name.empty(); }
  bool push() const { return !deliver_subject.empty(); }
  bool ack_none() const { return ack_policy == "none"; }
  bool ack_all() const { return ack_policy == "all"; }
};

// ack_policy: explicit (each message acked), none (done once sent: ordered consumers), all (an
// ack settles every message pending up to it).
bool valid_ack_policy(std::string_view name);
// The group subscription's max_in_flight: max_ack_pending, loft's bound when it is -1 or unset
// (ack_policy none).
std::uint32_t max_in_flight(const ConsumerConfig& config);

// Reads `config` (the request's "config" object), checks it and fills in the defaults. Errors
// carry nats-server's err_code (js_errors.hpp).
tl::expected<ConsumerConfig, ApiError> parse_consumer_config(const boost::json::value& config);
// A consumer or durable name: 1..249 bytes of loft's group name charset ([A-Za-z0-9_-], no '.'),
// which is also a valid NATS name.
tl::expected<void, ApiError> check_consumer_name(std::string_view name);

// The config as nats-server echoes it: every default filled in, optional fields when set.
boost::json::object consumer_config_json(const ConsumerConfig& config);

// A group setting the broker refused (effective_group_config's error) as the JetStream error,
// with the NATS field named: err 10012, "ack_wait out of loft's range: ack_timeout_ms must be
// 100 to 3600000 ...".
ApiError group_refusal(const Error& refusal);

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
// A consumer config for a group loft knows without a NATS config (a group made with loft's own
// tools, or by a loftd before annotations): what the group's settings say, defaults for the
// rest.
ConsumerConfig config_of_group(std::string_view name, const GroupConfig& group);

// Whether CONSUMER.CREATE of an existing consumer may change `old` (its config, `old_known`:
// restored or made here, else config_of_group's guess) into `requested`, as nats-server 2.9
// updates a consumer: the fields it cannot update are refused with its texts (err 10012), and
// so are loft's group settings (ack_wait, max_deliver, backoff, filter_subject: fixed when the
// group is made; `existing` and `wanted` are the group's effective and the requested settings).
tl::expected<void, ApiError> check_consumer_update(const ConsumerConfig& old, bool old_known,
                                                   const ConsumerConfig& requested,
                                                   const GroupConfig& existing,
                                                   const GroupSettings& wanted);

// The annotation kept with a consumer's group (GroupConfig::annotation): its config and
// creation time, as JSON. Errors: too large for loft to keep (err 10012).
// `consumer_seq`: the deliveries so far (kept with the group's progress writes; docs/nats.md,
// "What survives a restart").
tl::expected<std::string, ApiError> consumer_annotation(const ConsumerConfig& config,
                                                        std::int64_t created_ns,
                                                        std::uint64_t consumer_seq = 0);
struct RestoredConsumer {
  ConsumerConfig config;
  std::int64_t created_ns = 0;
  std::uint64_t consumer_seq = 0;  // as of the group's last write (0: none kept)
};
// The consumer an annotation describes; nullopt if it is not one consumer_annotation wrote
// (none, or made by another front end).
std::optional<RestoredConsumer> restore_consumer(std::string_view annotation);

// RFC 3339 times, as NATS writes them ("2006-01-02T15:04:05.999999999Z07:00"): ns since the
// Unix epoch.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);
std::string format_rfc3339(std::int64_t ns_since_epoch);
// The system clock as ns since the Unix epoch (created times, advisory timestamps).
std::int64_t system_now_ns();
// 22 random letters and digits: an ephemeral consumer's name, an advisory's id (the shape of
// nats-server's).
std::string random_name(std::minstd_rand& random);

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

// JetStream advisories, published on core NATS subjects as nats-server 2.9 does (docs/nats.md,
// "Advisories"): a subject and a JSON body with type, id, timestamp and the event's fields.
struct Advisory {
  std::string subject;
  std::string body;
};
struct AdvisoryHeader {
  std::string id;           // unique per advisory
  std::int64_t now_ns = 0;  // the timestamp, ns since the Unix epoch
};
// A new id and the system clock's time.
AdvisoryHeader advisory_now(std::minstd_rand& random);
// `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`: a message used up
// max_deliver (and went to the dead-letter topic).
Advisory max_deliveries_advisory(const AdvisoryHeader& h, std::string_view stream,
                                 std::string_view consumer, std::uint64_t stream_seq,
                                 std::uint64_t deliveries);
// `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.<stream>.<consumer>`: a +TERM.
Advisory terminated_advisory(const AdvisoryHeader& h, std::string_view stream,
                             std::string_view consumer, std::uint64_t consumer_seq,
                             std::uint64_t stream_seq, std::uint64_t deliveries);
// `$JS.EVENT.ADVISORY.CONSUMER.CREATED|DELETED.<stream>.<consumer>`.
enum class ConsumerAction : std::uint8_t { created, deleted };
Advisory consumer_action_advisory(const AdvisoryHeader& h, std::string_view stream,
                                  std::string_view consumer, ConsumerAction action);
// `$JS.EVENT.ADVISORY.STREAM.CREATED|UPDATED|DELETED.<stream>`: `action` "create", "modify" or
// "delete" (type stream_action).
Advisory stream_action_advisory(const AdvisoryHeader& h, std::string_view stream,
                                std::string_view action);
// `$JS.EVENT.ADVISORY.API` (type api_audit): the answer `response` to the $JS.API request on
// `subject` with body `request` (omitted when empty, as nats-server omits it), and the client:
// its account (`$G`, loftd's only one) and the server `server_id`. No `rtt`: loft does not
// measure one (docs/nats.md, "Advisories").
inline constexpr std::string_view kApiAuditSubject = "$JS.EVENT.ADVISORY.API";
Advisory api_audit_advisory(const AdvisoryHeader& h, std::string_view server_id,
                            std::string_view subject, std::string_view request,
                            std::string_view response);

}  // namespace loft::natsport::js
