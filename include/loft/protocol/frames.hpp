#pragma once
// The frames of loft wire protocol versions 1 and 2, as plain structs. docs/protocol.md gives
// their byte layout; src/protocol/codec.cpp is the only code that knows it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/group.hpp"
#include "loft/common/message.hpp"
#include "loft/common/topic.hpp"

namespace loft::protocol {

// Domain values the frames carry: defined once in loft/common, encoded by the codec.
using loft::ConsumerInfo;
using loft::DedupConflict;
using loft::Durability;
using loft::GroupConfig;
using loft::GroupInfo;
using loft::OffsetRun;
using loft::Ordering;
using loft::RetentionChange;
using loft::RetentionMode;
using loft::SettleAction;
using loft::StallReason;
using loft::StartKind;
using loft::StartPosition;
using loft::TopicInfo;

// The versions this build speaks: 1, 2 (a message's subject and a group's filter:
// docs/protocol.md, "Version 2"), 3 (a topic's retention mode, per-key ordering of a group:
// "Version 3") and, the newest, 4 (a message's delivery time, a publish's delay: "Version 4").
// A server accepts any of them in HELLO.
inline constexpr std::uint16_t kMinProtocolVersion = 1;
inline constexpr std::uint16_t kProtocolVersion = 4;
// u32 length | u16 type | u16 flags | u32 correlation id. `length` counts the bytes after
// itself (the remaining 8 header bytes plus the body).
inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::uint32_t kMinLength = 8;

enum class FrameType : std::uint16_t {
  // Requests (client to server).
  hello = 0x0001,
  create_topic = 0x0002,
  delete_topic = 0x0003,
  list_topics = 0x0004,
  describe_topic = 0x0005,
  publish = 0x0006,
  fetch = 0x0007,
  ping = 0x0008,
  // Consumer groups (requests).
  subscribe = 0x0010,
  settle = 0x0011,  // ack, nack, extend or reject offsets of a subscription
  unsubscribe = 0x0012,
  create_group = 0x0013,
  list_groups = 0x0014,
  describe_group = 0x0015,
  delete_group = 0x0016,
  reset_group = 0x0017,
  // Operations (requests).
  alter_topic = 0x0020,
  backup = 0x0021,
  // Security (requests).
  authenticate = 0x0030,
  // Replies (server to client): the request type with the high bit set, plus `error`.
  error = 0x8000,
  hello_ok = 0x8001,
  create_topic_ok = 0x8002,
  delete_topic_ok = 0x8003,
  list_topics_ok = 0x8004,
  describe_topic_ok = 0x8005,
  publish_ok = 0x8006,
  fetch_ok = 0x8007,
  pong = 0x8008,
  subscribe_ok = 0x8010,
  settle_ok = 0x8011,
  unsubscribe_ok = 0x8012,
  create_group_ok = 0x8013,
  list_groups_ok = 0x8014,
  describe_group_ok = 0x8015,
  delete_group_ok = 0x8016,
  reset_group_ok = 0x8017,
  alter_topic_ok = 0x8020,
  backup_ok = 0x8021,
  authenticate_ok = 0x8030,
  // Pushed by the server without a request (correlation id = the SUBSCRIBE's).
  deliver = 0x4001,
};

struct FrameHeader {
  std::uint32_t length = 0;
  std::uint16_t type = 0;  // raw: may be a type this version does not know
  std::uint16_t flags = 0;
  std::uint32_t correlation_id = 0;
  bool operator==(const FrameHeader&) const = default;
};

// Size limits the server enforces; sent to the client in HelloOk.
struct Limits {
  std::uint32_t max_frame_size = 16 * 1024 * 1024;
  MessageLimits message;  // what the broker accepts of one message
  bool operator==(const Limits&) const = default;
};

// Each frame struct names its type (kType) and its name in decode failure details (kName):
// type_of() and the decoder's dispatch are derived from them over Body. A new frame is an
// enumerator above, its struct, its Body alternative, and its encode (Writer::body) and decode
// (read) in codec.cpp.
struct Hello {
  static constexpr FrameType kType = FrameType::hello;
  static constexpr std::string_view kName = "hello";
  std::uint16_t min_version = kProtocolVersion;
  std::uint16_t max_version = kProtocolVersion;
  std::string client_name;
  bool operator==(const Hello&) const = default;
};

struct HelloOk {
  static constexpr FrameType kType = FrameType::hello_ok;
  static constexpr std::string_view kName = "hello_ok";
  std::uint16_t version = kProtocolVersion;
  Limits limits;
  std::string server_name;  // "loftd 0.1.0"
  Durability durability = Durability::fsync;
  bool operator==(const HelloOk&) const = default;
};

struct ErrorReply {
  static constexpr FrameType kType = FrameType::error;
  static constexpr std::string_view kName = "error";
  Errc code = Errc::internal_error;
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

struct CreateTopic {
  static constexpr FrameType kType = FrameType::create_topic;
  static constexpr std::string_view kName = "create_topic";
  std::string name;
  std::uint64_t dedup_window_ms = 0;  // 0 = the server's default (2 h)
  DedupConflict dedup_conflict = DedupConflict::duplicate;
  RetentionChange retention{};
  // Version 3 (docs/protocol.md, "Version 3"): the topic's retention mode; a version 1 or 2
  // CREATE_TOPIC creates a `limits` topic.
  RetentionMode retention_mode = RetentionMode::limits;
  bool operator==(const CreateTopic&) const = default;
};
struct CreateTopicOk {
  static constexpr FrameType kType = FrameType::create_topic_ok;
  static constexpr std::string_view kName = "create_topic_ok";
  TopicInfo topic;
  bool operator==(const CreateTopicOk&) const = default;
};
struct DeleteTopic {
  static constexpr FrameType kType = FrameType::delete_topic;
  static constexpr std::string_view kName = "delete_topic";
  std::string name;
  bool operator==(const DeleteTopic&) const = default;
};
struct DeleteTopicOk {
  static constexpr FrameType kType = FrameType::delete_topic_ok;
  static constexpr std::string_view kName = "delete_topic_ok";
  bool operator==(const DeleteTopicOk&) const = default;
};
struct ListTopics {
  static constexpr FrameType kType = FrameType::list_topics;
  static constexpr std::string_view kName = "list_topics";
  bool operator==(const ListTopics&) const = default;
};
struct ListTopicsOk {
  static constexpr FrameType kType = FrameType::list_topics_ok;
  static constexpr std::string_view kName = "list_topics_ok";
  std::vector<TopicInfo> topics;
  bool operator==(const ListTopicsOk&) const = default;
};
struct DescribeTopic {
  static constexpr FrameType kType = FrameType::describe_topic;
  static constexpr std::string_view kName = "describe_topic";
  std::string name;
  bool operator==(const DescribeTopic&) const = default;
};
struct DescribeTopicOk {
  static constexpr FrameType kType = FrameType::describe_topic_ok;
  static constexpr std::string_view kName = "describe_topic_ok";
  TopicInfo topic;
  bool operator==(const DescribeTopicOk&) const = default;
};

struct Publish {
  static constexpr FrameType kType = FrameType::publish;
  static constexpr std::string_view kName = "publish";
  std::string topic;
  std::vector<Message> messages;  // at least one
  // Version 4 (docs/protocol.md, "Version 4"): deliver every message of the frame this many ms
  // after loftd receives it, by loftd's clock (0 = at once). Relative, so that a client's clock
  // skew does not move the time; a message's own deliver_at_ms is the absolute form, and a
  // frame may not use both. Signed on the wire so that a negative delay is refused by the
  // session (invalid_request), not misread as a huge one.
  std::int64_t delay_ms = 0;
  bool operator==(const Publish&) const = default;
};

struct PublishResult {
  Errc code = Errc::ok;      // ok: stored at `offset`
  bool duplicate = false;    // the message id was already stored: not appended again, `offset`
                             // is the original's
  std::uint64_t offset = 0;  // meaningful when code == ok
  bool operator==(const PublishResult&) const = default;
};
struct PublishOk {
  static constexpr FrameType kType = FrameType::publish_ok;
  static constexpr std::string_view kName = "publish_ok";
  std::vector<PublishResult> results;  // one per message, in request order
  bool operator==(const PublishOk&) const = default;
};

struct Fetch {
  static constexpr FrameType kType = FrameType::fetch;
  static constexpr std::string_view kName = "fetch";
  std::string topic;
  std::uint64_t offset = 0;
  std::uint32_t max_messages = 0;
  std::uint32_t max_bytes = 0;
  bool operator==(const Fetch&) const = default;
};
struct FetchOk {
  static constexpr FrameType kType = FrameType::fetch_ok;
  static constexpr std::string_view kName = "fetch_ok";
  std::uint64_t first_offset = 0;  // the topic's current first and next offsets
  std::uint64_t next_offset = 0;
  std::vector<StoredMessage> messages;
  bool operator==(const FetchOk&) const = default;
};

struct AlterTopic {
  static constexpr FrameType kType = FrameType::alter_topic;
  static constexpr std::string_view kName = "alter_topic";
  std::string name;
  RetentionChange retention;  // at least one limit set
  bool operator==(const AlterTopic&) const = default;
};
struct AlterTopicOk {
  static constexpr FrameType kType = FrameType::alter_topic_ok;
  static constexpr std::string_view kName = "alter_topic_ok";
  TopicInfo topic;  // with the new limits
  bool operator==(const AlterTopicOk&) const = default;
};

// An online copy of the whole data directory, made by the server into `dir` (a path on the
// server's machine: absolute, must not exist yet, its parent must).
struct Backup {
  static constexpr FrameType kType = FrameType::backup;
  static constexpr std::string_view kName = "backup";
  std::string dir;
  bool operator==(const Backup&) const = default;
};
struct BackupOk {
  static constexpr FrameType kType = FrameType::backup_ok;
  static constexpr std::string_view kName = "backup_ok";
  std::string dir;
  bool operator==(const BackupOk&) const = default;
};

// After HELLO_OK, before any request that needs a user (docs/protocol.md 16). `mechanism` names
// the method ("PLAIN"); `payload` is its opaque response (PLAIN: authzid NUL user NUL password,
// RFC 4616). A mechanism that needs several steps (SCRAM) would answer with a challenge frame;
// PLAIN needs one.
struct Authenticate {
  static constexpr FrameType kType = FrameType::authenticate;
  static constexpr std::string_view kName = "authenticate";
  std::string mechanism;
  std::string payload;
  bool operator==(const Authenticate&) const = default;
};
struct AuthenticateOk {
  static constexpr FrameType kType = FrameType::authenticate_ok;
  static constexpr std::string_view kName = "authenticate_ok";
  std::string user;  // the name the connection now acts as
  bool operator==(const AuthenticateOk&) const = default;
};

struct Ping {
  static constexpr FrameType kType = FrameType::ping;
  static constexpr std::string_view kName = "ping";
  bool operator==(const Ping&) const = default;
};
struct Pong {
  static constexpr FrameType kType = FrameType::pong;
  static constexpr std::string_view kName = "pong";
  bool operator==(const Pong&) const = default;
};

// ---- Consumer groups --------------------------------------------------------------------

struct Subscribe {
  static constexpr FrameType kType = FrameType::subscribe;
  static constexpr std::string_view kName = "subscribe";
  std::string topic;
  std::string group;
  StartPosition start;              // used only if the group does not exist yet
  std::uint32_t max_in_flight = 0;  // 0 = 1000
  GroupConfig config;
  bool operator==(const Subscribe&) const = default;
};
struct SubscribeOk {
  static constexpr FrameType kType = FrameType::subscribe_ok;
  static constexpr std::string_view kName = "subscribe_ok";
  std::uint64_t subscription = 0;  // names this subscription in SETTLE, UNSUBSCRIBE, DELIVER
  bool created = false;            // the group was created by this subscribe
  std::uint64_t ack_floor = 0;
  bool operator==(const SubscribeOk&) const = default;
};

struct DeliveredMessage {
  std::uint64_t offset = 0;
  std::uint32_t attempt = 1;
  std::int64_t timestamp_ms = 0;
  Message message;
  bool operator==(const DeliveredMessage&) const = default;
};
struct Deliver {
  static constexpr FrameType kType = FrameType::deliver;
  static constexpr std::string_view kName = "deliver";
  std::uint64_t subscription = 0;
  std::string topic;
  std::string group;
  std::vector<DeliveredMessage> messages;
  bool operator==(const Deliver&) const = default;
};

inline constexpr std::uint32_t kBackoffDelay = 0xFFFFFFFFu;  // nack: use the group's backoff

struct Settle {
  static constexpr FrameType kType = FrameType::settle;
  static constexpr std::string_view kName = "settle";
  std::uint64_t subscription = 0;
  SettleAction action = SettleAction::ack;
  bool confirm = false;                    // reply only once the outcome is durable
  std::uint32_t delay_ms = kBackoffDelay;  // nack only
  std::vector<OffsetRun> runs;
  bool operator==(const Settle&) const = default;
};
struct SettleOk {
  static constexpr FrameType kType = FrameType::settle_ok;
  static constexpr std::string_view kName = "settle_ok";
  std::uint32_t applied = 0;  // offsets that were in flight to this subscription
  std::uint32_t ignored = 0;  // offsets that were not (unknown, foreign, already settled)
  bool operator==(const SettleOk&) const = default;
};

struct Unsubscribe {
  static constexpr FrameType kType = FrameType::unsubscribe;
  static constexpr std::string_view kName = "unsubscribe";
  std::uint64_t subscription = 0;
  bool operator==(const Unsubscribe&) const = default;
};
struct UnsubscribeOk {
  static constexpr FrameType kType = FrameType::unsubscribe_ok;
  static constexpr std::string_view kName = "unsubscribe_ok";
  bool operator==(const UnsubscribeOk&) const = default;
};

struct CreateGroup {
  static constexpr FrameType kType = FrameType::create_group;
  static constexpr std::string_view kName = "create_group";
  std::string topic;
  std::string group;
  StartPosition start;
  GroupConfig config;
  bool operator==(const CreateGroup&) const = default;
};
struct CreateGroupOk {
  static constexpr FrameType kType = FrameType::create_group_ok;
  static constexpr std::string_view kName = "create_group_ok";
  GroupInfo group;
  bool operator==(const CreateGroupOk&) const = default;
};
struct ListGroups {
  static constexpr FrameType kType = FrameType::list_groups;
  static constexpr std::string_view kName = "list_groups";
  std::string topic;
  bool operator==(const ListGroups&) const = default;
};
struct ListGroupsOk {
  static constexpr FrameType kType = FrameType::list_groups_ok;
  static constexpr std::string_view kName = "list_groups_ok";
  std::vector<GroupInfo> groups;
  bool operator==(const ListGroupsOk&) const = default;
};
struct DescribeGroup {
  static constexpr FrameType kType = FrameType::describe_group;
  static constexpr std::string_view kName = "describe_group";
  std::string topic;
  std::string group;
  bool operator==(const DescribeGroup&) const = default;
};
struct DescribeGroupOk {
  static constexpr FrameType kType = FrameType::describe_group_ok;
  static constexpr std::string_view kName = "describe_group_ok";
  GroupInfo group;
  bool operator==(const DescribeGroupOk&) const = default;
};
struct DeleteGroup {
  static constexpr FrameType kType = FrameType::delete_group;
  static constexpr std::string_view kName = "delete_group";
  std::string topic;
  std::string group;
  bool operator==(const DeleteGroup&) const = default;
};
struct DeleteGroupOk {
  static constexpr FrameType kType = FrameType::delete_group_ok;
  static constexpr std::string_view kName = "delete_group_ok";
  bool operator==(const DeleteGroupOk&) const = default;
};
struct ResetGroup {
  static constexpr FrameType kType = FrameType::reset_group;
  static constexpr std::string_view kName = "reset_group";
  std::string topic;
  std::string group;
  StartPosition to;
  bool operator==(const ResetGroup&) const = default;
};
struct ResetGroupOk {
  static constexpr FrameType kType = FrameType::reset_group_ok;
  static constexpr std::string_view kName = "reset_group_ok";
  GroupInfo group;
  bool operator==(const ResetGroupOk&) const = default;
};

using Body = std::variant<Hello, HelloOk, ErrorReply, CreateTopic, CreateTopicOk, DeleteTopic,
                          DeleteTopicOk, ListTopics, ListTopicsOk, DescribeTopic, DescribeTopicOk,
                          Publish, PublishOk, Fetch, FetchOk, Ping, Pong, Subscribe, SubscribeOk,
                          Deliver, Settle, SettleOk, Unsubscribe, UnsubscribeOk, CreateGroup,
                          CreateGroupOk, ListGroups, ListGroupsOk, DescribeGroup, DescribeGroupOk,
                          DeleteGroup, DeleteGroupOk, ResetGroup, ResetGroupOk, AlterTopic,
                          AlterTopicOk, Backup, BackupOk, Authenticate, AuthenticateOk>;

struct Frame {
  std::uint32_t correlation_id = 0;
  Body body;
  bool operator==(const Frame&) const = default;
};

FrameType type_of(const Body& body) noexcept;
// The deliver_at_ms a PUBLISH's delay_ms gives when the request arrives at `now_ms` (loftd's
// clock): 0 for no delay, now_ms + delay_ms otherwise. A negative delay, or one whose time
// overflows an i64, is invalid_request with a text that says so; whether the time is too far
// ahead is the broker's to judge (delay_too_long).
Result<std::int64_t> resolve_delay(std::int64_t delay_ms, std::int64_t now_ms);
// True for the error codes after which the server closes the connection.
bool is_fatal(Errc code) noexcept;

}  // namespace loft::protocol
