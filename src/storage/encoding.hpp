#pragma once
// Byte layouts of the RocksDB store's keys and values (docs/storage.md is the reference).
// Keys are big-endian so the default bytewise comparator orders them numerically; values use
// fixed-width little-endian integers and u32 length prefixes. Pure functions, no RocksDB.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loft/common/ids.hpp"
#include "loft/common/message.hpp"
#include "loft/storage/store.hpp"

namespace loft::storage::encoding {

// The storage format this build writes. Bump it when a layout below changes incompatibly.
// 2: a messages record may hold several messages (format 1 wrote one per record, which
// format 2 still reads). 3: a message may carry a subject (kSubjectFlag); every format 2
// record reads the same. A store of an older format is marked 3 when this build opens it, so
// an older loftd refuses it instead of reporting records with subjects as corrupt.
// 4: a message may carry a delivery time (kDeliverAtFlag), and the schedule column family
// holds delayed messages until they are due; every format 3 record reads the same.
inline constexpr std::uint32_t kFormatVersion = 4;
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

// schedule CF key: big-endian due time (ms since the epoch, > 0), topic id and offset, so
// the default comparator iterates in due order (then topic, then offset). 20 bytes.
inline constexpr std::size_t kScheduleKeySize = 8 + 4 + 8;
std::string schedule_key(std::int64_t due_ms, TopicId topic, Offset offset);
struct ScheduleKey {
  std::int64_t due_ms = 0;
  TopicId topic;
  Offset offset;
};
// nullopt if the key is not kScheduleKeySize bytes.
std::optional<ScheduleKey> parse_schedule_key(std::string_view key);

std::string encode_u32(std::uint32_t value);
std::optional<std::uint32_t> decode_u32(std::string_view bytes);

// topics CF value (the key is the topic name, so the name is not repeated here): the 44-byte
// base record, then an extension (version byte kTopicExtensionVersion, dedup window, dedup
// conflict mode). A 44-byte record (written before dedup) decodes with the default settings.
inline constexpr std::size_t kTopicBaseSize = 4 + 5 * 8;
// Version 1: dedup window and conflict mode. Version 2 adds the retention limits (max_age_ms,
// max_bytes, max_messages, u64 LE each). Version 3 adds the topic's subjects (u32 count, at
// least 1, then each as u32 length + bytes); a topic without subjects is still written as
// version 2. Version 4 adds the retention mode (u8, RetentionMode::work_queue: only a
// work-queue topic is written as version 4) after the subjects, whose count may then be 0.
// Version 5 adds the count of scheduled messages (u64 LE) after the mode (either mode): only
// a topic with scheduled messages is written as version 5. Older versions decode with the
// defaults.
inline constexpr std::uint8_t kTopicExtensionVersion = 5;
std::string encode_topic_meta(const TopicInfo& meta);
// nullopt if `value` is not exactly a base record, or a base record plus an extension of a
// version this build knows.
std::optional<TopicInfo> decode_topic_meta(std::string_view name, std::string_view value);
// The pre-dedup layout (the 44-byte base record only), for tests of old data directories.
std::string encode_topic_meta_v0(const TopicInfo& meta);

// dedup CF key: big-endian topic id, then the message id's bytes. As in the groups CF, the
// 4-byte prefix puts a topic's entries in the range [group_begin_key, group_end_key).
std::string dedup_key(TopicId topic, std::string_view id);
// The same into `out` (replacing its content): the writer reuses one buffer for every id.
void dedup_key_into(TopicId topic, std::string_view id, std::string& out);
// The topic id of a dedup (or groups) CF key; nullopt if the key is shorter than 4 bytes.
std::optional<TopicId> topic_of_prefixed_key(std::string_view key);

// dedup CF value: offset u64 LE, timestamp_ms i64 LE, payload hash u64 LE (24 bytes).
inline constexpr std::size_t kDedupValueSize = 24;
std::string encode_dedup(const DedupEntry& entry);
void encode_dedup_into(const DedupEntry& entry, std::string& out);  // replacing out's content
std::optional<DedupEntry> decode_dedup(std::string_view value);

// The compaction filter's decision: an entry published at `timestamp_ms` is expired (may be
// dropped) when its topic's window is known and timestamp_ms < now_ms - window_ms, the exact
// complement of the broker's "live" test. An unknown topic (`window_ms` nullopt: dropped, or
// not loaded yet) keeps the entry; a dropped topic's entries go with its DeleteRange.
bool dedup_entry_expired(std::int64_t timestamp_ms, std::optional<std::uint64_t> window_ms,
                         std::int64_t now_ms);

// groups CF key: big-endian topic id, then the group name's bytes. The 4-byte fixed prefix
// orders keys by topic id, then name (bytewise), and puts a topic's groups in one range.
std::string group_key(TopicId topic, std::string_view name);
// The half-open key range [group_begin_key, group_end_key) holds exactly `topic`'s groups (and
// its dedup entries in the dedup CF, whose keys have the same prefix).
// REQUIRES: topic is not the largest id: no finite key sorts after every key of that topic
// (the names are unbounded), so its groups must be deleted one by one.
std::string group_begin_key(TopicId topic);
std::string group_end_key(TopicId topic);
// The topic id and name of a groups CF key; nullopt if the key is shorter than 4 bytes.
std::optional<std::pair<TopicId, std::string>> parse_group_key(std::string_view key);

// The first byte of every groups CF value. Bump it (and keep decoding the old ones) when the
// record gains fields; a decoder that meets a newer version fails instead of misreading it.
// Version 2 appends `skipped` (u64 LE); a version 1 record decodes with skipped = 0.
// Version 3 appends `filter` (u32 LE length + bytes); older records decode with no filter.
// Version 4 appends `annotation` (u32 LE length + bytes); older records decode with none.
// Version 5 appends `ordering` (u8) and `key_lookahead` (u32 LE); older records decode as
// unordered.
inline constexpr std::uint8_t kGroupRecordVersion = 5;

// groups CF value: everything but the topic id and name (they are the key).
std::string encode_group(const GroupRecord& group);
// nullopt if `value` is not exactly one record of a version this build knows.
std::optional<GroupRecord> decode_group(TopicId topic, std::string_view name,
                                        std::string_view value);

// messages CF value: one or more messages at consecutive offsets, the first at the key's
// offset, each as timestamp, id, key, header count, [subject,] headers and payload.
// encode_message appends one. A message with a subject has kSubjectFlag set in its header
// count, and the subject (u32 length + bytes, never empty) right after the count; one without
// is encoded as before subjects existed (format 2), so every older record reads unchanged.
// A message with a delivery time (Message::deliver_at_ms != 0) has kDeliverAtFlag set, and the
// time (i64 LE, never 0) after the subject, if any (format 4).
inline constexpr std::uint32_t kSubjectFlag = 0x8000'0000u;
inline constexpr std::uint32_t kDeliverAtFlag = 0x4000'0000u;
void encode_message(std::int64_t timestamp_ms, const Message& message, std::string& out);
// The message at the front of `rest`, which then starts after it; nullopt if corrupt.
std::optional<StoredMessage> decode_next_message(Offset offset, std::string_view& rest);
// The message at the front of `rest` as views into rest's bytes (offset not set), `rest` then
// starting after it. Its header views are appended to `headers`, and `out.headers` is left
// empty for the caller to point at them once `headers` stops growing. False if corrupt.
bool decode_next_view(std::string_view& rest, StoredMessageView& out,
                      std::vector<HeaderView>& headers);
// Removes the message at the front of `rest` without decoding it; false if corrupt.
bool skip_message(std::string_view& rest);
// Exactly one message.
std::optional<StoredMessage> decode_message(Offset offset, std::string_view value);

}  // namespace loft::storage::encoding
