#pragma once
// The frames of loft wire protocol v1, as plain structs. docs/protocol.md gives their byte
// layout; src/protocol/codec.cpp is the only code that knows it.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/message.hpp"

namespace loft::protocol {

inline constexpr std::uint16_t kProtocolVersion = 1;
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
  std::uint32_t max_message_size = 1024 * 1024;  // payload bytes of one message
  std::uint16_t max_id_size = 256;
  std::uint16_t max_key_size = 1024;
  std::uint32_t max_headers_size = 64 * 1024;  // sum of header names and values of one message
  bool operator==(const Limits&) const = default;
};

struct Hello {
  std::uint16_t min_version = kProtocolVersion;
  std::uint16_t max_version = kProtocolVersion;
  std::string client_name;
  bool operator==(const Hello&) const = default;
};

struct HelloOk {
  std::uint16_t version = kProtocolVersion;
  Limits limits;
  std::string server_name;  // "loftd 0.1.0"
  bool operator==(const HelloOk&) const = default;
};

struct ErrorReply {
  Errc code = Errc::internal_error;
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

struct TopicInfo {
  std::string name;
  std::uint64_t first_offset = 0;
  std::uint64_t next_offset = 0;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::int64_t created_at_ms = 0;
  bool operator==(const TopicInfo&) const = default;
};

struct CreateTopic {
  std::string name;
  bool operator==(const CreateTopic&) const = default;
};
struct CreateTopicOk {
  TopicInfo topic;
  bool operator==(const CreateTopicOk&) const = default;
};
struct DeleteTopic {
  std::string name;
  bool operator==(const DeleteTopic&) const = default;
};
struct DeleteTopicOk {
  bool operator==(const DeleteTopicOk&) const = default;
};
struct ListTopics {
  bool operator==(const ListTopics&) const = default;
};
struct ListTopicsOk {
  std::vector<TopicInfo> topics;
  bool operator==(const ListTopicsOk&) const = default;
};
struct DescribeTopic {
  std::string name;
  bool operator==(const DescribeTopic&) const = default;
};
struct DescribeTopicOk {
  TopicInfo topic;
  bool operator==(const DescribeTopicOk&) const = default;
};

struct Publish {
  std::string topic;
  std::vector<Message> messages;  // at least one
  bool operator==(const Publish&) const = default;
};

struct PublishResult {
  Errc code = Errc::ok;      // ok: stored at `offset`
  bool duplicate = false;    // reserved for dedup by message id; false in this version
  std::uint64_t offset = 0;  // meaningful when code == ok
  bool operator==(const PublishResult&) const = default;
};
struct PublishOk {
  std::vector<PublishResult> results;  // one per message, in request order
  bool operator==(const PublishOk&) const = default;
};

struct Fetch {
  std::string topic;
  std::uint64_t offset = 0;
  std::uint32_t max_messages = 0;
  std::uint32_t max_bytes = 0;
  bool operator==(const Fetch&) const = default;
};
struct FetchOk {
  std::uint64_t first_offset = 0;  // the topic's current first and next offsets
  std::uint64_t next_offset = 0;
  std::vector<StoredMessage> messages;
  bool operator==(const FetchOk&) const = default;
};

struct Ping {
  bool operator==(const Ping&) const = default;
};
struct Pong {
  bool operator==(const Pong&) const = default;
};

using Body = std::variant<Hello, HelloOk, ErrorReply, CreateTopic, CreateTopicOk, DeleteTopic,
                          DeleteTopicOk, ListTopics, ListTopicsOk, DescribeTopic, DescribeTopicOk,
                          Publish, PublishOk, Fetch, FetchOk, Ping, Pong>;

struct Frame {
  std::uint32_t correlation_id = 0;
  Body body;
  bool operator==(const Frame&) const = default;
};

FrameType type_of(const Body& body) noexcept;
// True for the error codes after which the server closes the connection.
bool is_fatal(Errc code) noexcept;

}  // namespace loft::protocol
