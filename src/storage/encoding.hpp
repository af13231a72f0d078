#pragma once
// Byte layouts of the RocksDB store's keys and values (docs/storage.md is the reference).
// Keys are big-endian so the default bytewise comparator orders them numerically; values use
// fixed-width little-endian integers and u32 length prefixes. Pure functions, no RocksDB.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "loft/common/ids.hpp"
#include "loft/common/message.hpp"
#include "loft/storage/store.hpp"

namespace loft::storage::encoding {

// The storage format this build writes. Bump it when a layout below changes incompatibly.
inline constexpr std::uint32_t kFormatVersion = 1;
// Key of the format version record in the default column family.
inline constexpr std::string_view kFormatVersionKey = "format_version";
// Key of the next-topic-id record (u32 LE) in the default column family.
inline constexpr std::string_view kNextTopicIdKey = "next_topic_id";

inline constexpr std::size_t kMessageKeySize = 12;  // 4-byte topic id + 8-byte offset

// messages CF key: big-endian topic id, then big-endian offset.
std::string message_key(TopicId topic, Offset offset);
// The half-open key range [topic_begin_key, topic_end_key) holds exactly `topic`'s messages.
std::string topic_begin_key(TopicId topic);
std::string topic_end_key(TopicId topic);
// The offset of a messages CF key; nullopt if the key is not kMessageKeySize bytes.
std::optional<Offset> offset_of_message_key(std::string_view key);

std::string encode_u32(std::uint32_t value);
std::optional<std::uint32_t> decode_u32(std::string_view bytes);

// topics CF value (the key is the topic name, so the name is not repeated here).
std::string encode_topic_meta(const TopicMeta& meta);
std::optional<TopicMeta> decode_topic_meta(std::string_view name, std::string_view value);

// groups CF key: big-endian topic id, then the group name's bytes. The 4-byte fixed prefix
// orders keys by topic id, then name (bytewise), and puts a topic's groups in one range.
std::string group_key(TopicId topic, std::string_view name);
// The half-open key range [group_begin_key, group_end_key) holds exactly `topic`'s groups.
// REQUIRES: topic is not the largest id: no finite key sorts after every key of that topic
// (the names are unbounded), so its groups must be deleted one by one.
std::string group_begin_key(TopicId topic);
std::string group_end_key(TopicId topic);
// The topic id and name of a groups CF key; nullopt if the key is shorter than 4 bytes.
std::optional<std::pair<TopicId, std::string>> parse_group_key(std::string_view key);

// The first byte of every groups CF value. Bump it (and keep decoding the old ones) when the
// record gains fields; a decoder that meets a newer version fails instead of misreading it.
inline constexpr std::uint8_t kGroupRecordVersion = 1;

// groups CF value: everything but the topic id and name (they are the key).
std::string encode_group(const GroupRecord& group);
// nullopt if `value` is not exactly one record of a version this build knows.
std::optional<GroupRecord> decode_group(TopicId topic, std::string_view name,
                                        std::string_view value);

// messages CF value: timestamp, id, key, headers and payload of one message.
void encode_message(std::int64_t timestamp_ms, const Message& message, std::string& out);
std::optional<StoredMessage> decode_message(Offset offset, std::string_view value);

}  // namespace loft::storage::encoding
