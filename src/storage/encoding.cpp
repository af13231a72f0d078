#include "encoding.hpp"

#include <array>
#include <limits>
#include <type_traits>

namespace loft::storage::encoding {
namespace {

template <class T>
void put_be(std::string& out, T value) {
  std::array<char, sizeof(T)> bytes{};
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bytes[sizeof(T) - 1 - i] = static_cast<char>(static_cast<unsigned char>(value >> (8 * i)));
  }
  out.append(bytes.data(), bytes.size());
}

template <class T>
void put_le(std::string& out, T value) {
  std::array<char, sizeof(T)> bytes{};
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bytes[i] = static_cast<char>(static_cast<unsigned char>(value >> (8 * i)));
  }
  out.append(bytes.data(), bytes.size());
}

void put_bytes(std::string& out, std::string_view bytes) {
  // Message fields are bounded far below 4 GiB by the protocol's frame size limit.
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(bytes.size()));
  out.append(bytes);
}

// Reads a value front to back; every read fails (returns false) instead of running past the end.
class ValueReader {
 public:
  explicit ValueReader(std::string_view in) : in_(in) {}

  template <class T>
  bool le(T& value) {
    if (in_.size() < sizeof(T)) return false;
    using U = std::make_unsigned_t<T>;
    U v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      v |= static_cast<U>(static_cast<unsigned char>(in_[i])) << (8 * i);
    }
    value = static_cast<T>(v);
    in_.remove_prefix(sizeof(T));
    return true;
  }

  bool bytes(std::string& value) {
    std::uint32_t size = 0;
    if (!le(size) || in_.size() < size) return false;
    value.assign(in_.substr(0, size));
    in_.remove_prefix(size);
    return true;
  }

  bool view(std::string_view& value) {
    std::uint32_t size = 0;
    if (!le(size) || in_.size() < size) return false;
    value = in_.substr(0, size);
    in_.remove_prefix(size);
    return true;
  }

  bool skip_bytes() {
    std::uint32_t size = 0;
    if (!le(size) || in_.size() < size) return false;
    in_.remove_prefix(size);
    return true;
  }

  // The header count of a message, its subject and its delivery time: a count with
  // kSubjectFlag set is followed by the subject (u32 length + bytes, not empty), then, with
  // kDeliverAtFlag set, by the delivery time (i64 LE, not 0). False if corrupt.
  bool header_count_and_extras(std::uint32_t& count, std::string_view& subject,
                               std::int64_t& deliver_at_ms) {
    subject = {};
    deliver_at_ms = 0;
    if (!le(count)) return false;
    const std::uint32_t flags = count & (kSubjectFlag | kDeliverAtFlag);
    count &= ~(kSubjectFlag | kDeliverAtFlag);
    // One encoding per message: a subject or delivery time that is there is never empty or 0.
    if ((flags & kSubjectFlag) != 0 && (!view(subject) || subject.empty())) return false;
    if ((flags & kDeliverAtFlag) != 0 && (!le(deliver_at_ms) || deliver_at_ms == 0)) return false;
    return true;
  }

  bool done() const { return in_.empty(); }
  std::string_view rest() const { return in_; }
  std::size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

std::uint64_t get_be64(std::string_view bytes) {
  std::uint64_t v = 0;
  for (const char c : bytes.substr(0, 8)) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

}  // namespace

std::string message_key(TopicId topic, Offset offset) {
  std::string key;
  key.reserve(kMessageKeySize);
  put_be<std::uint32_t>(key, topic.value);
  put_be<std::uint64_t>(key, offset.value);
  return key;
}

std::string topic_begin_key(TopicId topic) { return message_key(topic, Offset{0}); }

std::string topic_end_key(TopicId topic) {
  if (topic.value == std::numeric_limits<std::uint32_t>::max()) {
    // No id follows the last one: twelve 0xFF bytes and one more byte sort after every key
    // of this topic, including its largest offset.
    std::string key(kMessageKeySize, '\xFF');
    key.push_back('\0');
    return key;
  }
  return message_key(TopicId{topic.value + 1}, Offset{0});
}

std::optional<Offset> offset_of_message_key(std::string_view key) {
  if (key.size() != kMessageKeySize) return std::nullopt;
  return Offset{get_be64(key.substr(4))};
}

std::string encode_u32(std::uint32_t value) {
  std::string out;
  put_le(out, value);
  return out;
}

std::string schedule_key(std::int64_t due_ms, TopicId topic, Offset offset) {
  std::string out;
  out.reserve(kScheduleKeySize);
  put_be<std::uint64_t>(out, static_cast<std::uint64_t>(due_ms));
  put_be<std::uint32_t>(out, topic.value);
  put_be<std::uint64_t>(out, offset.value);
  return out;
}

std::optional<ScheduleKey> parse_schedule_key(std::string_view key) {
  if (key.size() != kScheduleKeySize) return std::nullopt;
  ScheduleKey out;
  out.due_ms = static_cast<std::int64_t>(get_be64(key.substr(0, 8)));
  std::uint32_t topic = 0;
  for (const char c : key.substr(8, 4)) topic = (topic << 8) | static_cast<unsigned char>(c);
  out.topic = TopicId{topic};
  out.offset = Offset{get_be64(key.substr(12, 8))};
  return out;
}

std::optional<std::uint32_t> decode_u32(std::string_view bytes) {
  ValueReader r{bytes};
  std::uint32_t v = 0;
  if (!r.le(v) || !r.done()) return std::nullopt;
  return v;
}

std::string encode_topic_meta_v0(const TopicInfo& meta) {
  std::string out;
  out.reserve(kTopicBaseSize + 1 + 8 + 1);
  put_le<std::uint32_t>(out, meta.id.value);
  put_le<std::int64_t>(out, meta.created_at_ms);
  put_le<std::uint64_t>(out, meta.first_offset.value);
  put_le<std::uint64_t>(out, meta.next_offset.value);
  put_le<std::uint64_t>(out, meta.messages);
  put_le<std::uint64_t>(out, meta.bytes);
  return out;
}

std::string encode_topic_meta(const TopicInfo& meta) {
  auto out = encode_topic_meta_v0(meta);
  // Version 2 while the topic has no subjects: the same bytes as before subjects existed;
  // version 4 only for a work-queue topic, version 5 only while messages are scheduled.
  const bool work_queue = meta.retention_mode != RetentionMode::limits;
  std::uint8_t version = meta.subjects.empty() ? 2 : 3;
  if (work_queue) version = 4;
  if (meta.scheduled != 0) version = kTopicExtensionVersion;
  put_le<std::uint8_t>(out, version);
  put_le<std::uint64_t>(out, meta.dedup_window_ms);
  put_le<std::uint8_t>(out, static_cast<std::uint8_t>(meta.dedup_conflict));
  put_le<std::uint64_t>(out, meta.max_age_ms);
  put_le<std::uint64_t>(out, meta.max_bytes);
  put_le<std::uint64_t>(out, meta.max_messages);
  if (version >= 3) {
    put_le<std::uint32_t>(out, static_cast<std::uint32_t>(meta.subjects.size()));
    for (const auto& subject : meta.subjects) put_bytes(out, subject);
  }
  if (version >= 4) put_le<std::uint8_t>(out, static_cast<std::uint8_t>(meta.retention_mode));
  if (version >= 5) put_le<std::uint64_t>(out, meta.scheduled);
  return out;
}

std::optional<TopicInfo> decode_topic_meta(std::string_view name, std::string_view value) {
  ValueReader r{value};
  TopicInfo meta;
  meta.name = std::string(name);
  if (!r.le(meta.id.value) || !r.le(meta.created_at_ms) || !r.le(meta.first_offset.value) ||
      !r.le(meta.next_offset.value) || !r.le(meta.messages) || !r.le(meta.bytes)) {
    return std::nullopt;
  }
  if (r.done()) return meta;  // written before dedup: the default settings
  std::uint8_t version = 0;
  std::uint8_t conflict = 0;
  if (!r.le(version) || version < 1 || version > kTopicExtensionVersion ||
      !r.le(meta.dedup_window_ms) || !r.le(conflict) ||
      conflict > static_cast<std::uint8_t>(DedupConflict::error)) {
    return std::nullopt;
  }
  if (version >= 2 &&
      (!r.le(meta.max_age_ms) || !r.le(meta.max_bytes) || !r.le(meta.max_messages))) {
    return std::nullopt;
  }
  if (version >= 3) {
    std::uint32_t count = 0;
    // Version 3: at least one subject (version 2 says none); version 4: any number. Each at
    // least one byte: a corrupt count cannot reserve more than the record holds.
    if (!r.le(count) || (count == 0 && version == 3) || count > r.remaining() / 5) {
      return std::nullopt;
    }
    meta.subjects.resize(count);
    for (auto& subject : meta.subjects) {
      if (!r.bytes(subject) || subject.empty()) return std::nullopt;
    }
  }
  if (version >= 4) {
    // Only a work-queue topic is written as version 4; version 5 has either mode.
    std::uint8_t mode = 0;
    const auto lowest = version == 4 ? RetentionMode::work_queue : RetentionMode::limits;
    if (!r.le(mode) || mode < static_cast<std::uint8_t>(lowest) ||
        mode > static_cast<std::uint8_t>(RetentionMode::work_queue)) {
      return std::nullopt;
    }
    meta.retention_mode = static_cast<RetentionMode>(mode);
  }
  if (version >= 5 && !r.le(meta.scheduled)) return std::nullopt;
  if (!r.done()) return std::nullopt;
  meta.dedup_conflict = static_cast<DedupConflict>(conflict);
  return meta;
}

std::string dedup_key(TopicId topic, std::string_view id) { return group_key(topic, id); }

void dedup_key_into(TopicId topic, std::string_view id, std::string& out) {
  out.clear();
  put_be<std::uint32_t>(out, topic.value);
  out.append(id);
}

std::optional<TopicId> topic_of_prefixed_key(std::string_view key) {
  if (key.size() < 4) return std::nullopt;
  std::uint32_t id = 0;
  for (const char c : key.substr(0, 4)) id = (id << 8) | static_cast<unsigned char>(c);
  return TopicId{id};
}

std::string encode_dedup(const DedupEntry& entry) {
  std::string out;
  encode_dedup_into(entry, out);
  return out;
}

void encode_dedup_into(const DedupEntry& entry, std::string& out) {
  out.clear();
  out.reserve(kDedupValueSize);
  put_le<std::uint64_t>(out, entry.offset.value);
  put_le<std::int64_t>(out, entry.timestamp_ms);
  put_le<std::uint64_t>(out, entry.payload_hash);
}

std::optional<DedupEntry> decode_dedup(std::string_view value) {
  ValueReader r{value};
  DedupEntry e;
  if (!r.le(e.offset.value) || !r.le(e.timestamp_ms) || !r.le(e.payload_hash) || !r.done()) {
    return std::nullopt;
  }
  return e;
}

bool dedup_entry_expired(std::int64_t timestamp_ms, std::optional<std::uint64_t> window_ms,
                         std::int64_t now_ms) {
  return window_ms && dedup_expired(timestamp_ms, *window_ms, now_ms);
}

std::string group_key(TopicId topic, std::string_view name) {
  std::string key;
  key.reserve(4 + name.size());
  put_be<std::uint32_t>(key, topic.value);
  key.append(name);
  return key;
}

std::string group_begin_key(TopicId topic) { return group_key(topic, {}); }

std::string group_end_key(TopicId topic) { return group_key(TopicId{topic.value + 1}, {}); }

std::optional<std::pair<TopicId, std::string>> parse_group_key(std::string_view key) {
  if (key.size() < 4) return std::nullopt;
  std::uint32_t id = 0;
  for (const char c : key.substr(0, 4)) id = (id << 8) | static_cast<unsigned char>(c);
  return std::pair{TopicId{id}, std::string(key.substr(4))};
}

std::string encode_group(const GroupRecord& group) {
  std::string out;
  out.reserve(1 + 8 + 4 * 4 + 4 + 4 * group.backoff_delays_ms.size() + 4 +
              group.dead_letter_topic.size() + 8 + 4 + 16 * group.done_ranges.size() +
              3 * sizeof(std::uint64_t) + 4 + group.filter.size() + 4 + group.annotation.size() +
              1 + 4);
  put_le<std::uint8_t>(out, kGroupRecordVersion);
  put_le<std::int64_t>(out, group.created_at_ms);
  put_le<std::uint32_t>(out, group.ack_timeout_ms);
  put_le<std::uint32_t>(out, group.max_deliveries);
  put_le<std::uint32_t>(out, group.backoff_base_ms);
  put_le<std::uint32_t>(out, group.backoff_cap_ms);
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(group.backoff_delays_ms.size()));
  for (const auto delay : group.backoff_delays_ms) put_le<std::uint32_t>(out, delay);
  put_bytes(out, group.dead_letter_topic);
  put_le<std::uint64_t>(out, group.ack_floor.value);
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(group.done_ranges.size()));
  for (const auto& [first, end] : group.done_ranges) {
    put_le<std::uint64_t>(out, first.value);
    put_le<std::uint64_t>(out, end.value);
  }
  put_le<std::uint64_t>(out, group.dead_lettered);
  put_le<std::uint64_t>(out, group.redelivered);
  put_le<std::uint64_t>(out, group.skipped);
  put_bytes(out, group.filter);
  put_bytes(out, group.annotation);
  put_le<std::uint8_t>(out, static_cast<std::uint8_t>(group.ordering));
  put_le<std::uint32_t>(out, group.key_lookahead);
  return out;
}

std::optional<GroupRecord> decode_group(TopicId topic, std::string_view name,
                                        std::string_view value) {
  ValueReader r{value};
  GroupRecord g;
  g.topic = topic;
  g.name = std::string(name);
  std::uint8_t version = 0;
  if (!r.le(version) || version < 1 || version > kGroupRecordVersion) return std::nullopt;
  std::uint32_t delays = 0;
  if (!r.le(g.created_at_ms) || !r.le(g.ack_timeout_ms) || !r.le(g.max_deliveries) ||
      !r.le(g.backoff_base_ms) || !r.le(g.backoff_cap_ms) || !r.le(delays)) {
    return std::nullopt;
  }
  // Bounded by the bytes present, so a corrupt count cannot make us allocate gigabytes.
  if (delays > r.remaining() / 4) return std::nullopt;
  g.backoff_delays_ms.resize(delays);
  for (auto& delay : g.backoff_delays_ms) {
    if (!r.le(delay)) return std::nullopt;
  }
  std::uint32_t ranges = 0;
  if (!r.bytes(g.dead_letter_topic) || !r.le(g.ack_floor.value) || !r.le(ranges) ||
      ranges > r.remaining() / 16) {
    return std::nullopt;
  }
  g.done_ranges.resize(ranges);
  for (auto& [first, end] : g.done_ranges) {
    if (!r.le(first.value) || !r.le(end.value)) return std::nullopt;
  }
  if (!r.le(g.dead_lettered) || !r.le(g.redelivered)) return std::nullopt;
  if (version >= 2 && !r.le(g.skipped)) return std::nullopt;
  if (version >= 3 && !r.bytes(g.filter)) return std::nullopt;
  if (version >= 4 && !r.bytes(g.annotation)) return std::nullopt;
  if (version >= 5) {
    std::uint8_t ordering = 0;
    if (!r.le(ordering) || ordering > static_cast<std::uint8_t>(Ordering::key) ||
        !r.le(g.key_lookahead)) {
      return std::nullopt;
    }
    g.ordering = static_cast<Ordering>(ordering);
  }
  if (!r.done()) return std::nullopt;
  return g;
}

void encode_message(std::int64_t timestamp_ms, const Message& message, std::string& out) {
  // Fixed part: timestamp, four lengths and the header count; then 8 bytes of lengths a header.
  out.reserve(out.size() + std::size_t{8 + 5 * 4} + 8 * message.headers.size() +
              message.size_bytes());
  put_le<std::int64_t>(out, timestamp_ms);
  put_bytes(out, message.id);
  put_bytes(out, message.key);
  // A message without a subject or delivery time is encoded exactly as before they existed.
  auto count = static_cast<std::uint32_t>(message.headers.size());
  if (!message.subject.empty()) count |= kSubjectFlag;
  if (message.deliver_at_ms != 0) count |= kDeliverAtFlag;
  put_le<std::uint32_t>(out, count);
  if (!message.subject.empty()) put_bytes(out, message.subject);
  if (message.deliver_at_ms != 0) put_le<std::int64_t>(out, message.deliver_at_ms);
  for (const auto& h : message.headers) {
    put_bytes(out, h.name);
    put_bytes(out, h.value);
  }
  put_bytes(out, message.payload);
}

std::optional<StoredMessage> decode_message(Offset offset, std::string_view value) {
  auto m = decode_next_message(offset, value);
  if (!m || !value.empty()) return std::nullopt;
  return m;
}

bool skip_message(std::string_view& rest) {
  ValueReader r{rest};
  std::int64_t timestamp = 0;
  std::uint32_t header_count = 0;
  std::string_view subject;
  std::int64_t deliver_at_ms = 0;
  if (!r.le(timestamp) || !r.skip_bytes() || !r.skip_bytes() ||
      !r.header_count_and_extras(header_count, subject, deliver_at_ms)) {
    return false;
  }
  if (header_count > rest.size() / 8) return false;
  for (std::uint32_t i = 0; i < header_count; ++i) {
    if (!r.skip_bytes() || !r.skip_bytes()) return false;
  }
  if (!r.skip_bytes()) return false;
  rest = r.rest();
  return true;
}

bool decode_next_view(std::string_view& rest, StoredMessageView& out,
                      std::vector<HeaderView>& headers) {
  ValueReader r{rest};
  std::uint32_t header_count = 0;
  if (!r.le(out.timestamp_ms) || !r.view(out.id) || !r.view(out.key) ||
      !r.header_count_and_extras(header_count, out.subject, out.deliver_at_ms)) {
    return false;
  }
  if (header_count > rest.size() / 8) return false;  // as in decode_next_message
  out.headers = {};
  for (std::uint32_t i = 0; i < header_count; ++i) {
    HeaderView h;
    if (!r.view(h.name) || !r.view(h.value)) return false;
    headers.push_back(h);
  }
  if (!r.view(out.payload)) return false;
  rest = r.rest();
  return true;
}

std::optional<StoredMessage> decode_next_message(Offset offset, std::string_view& rest) {
  const std::string_view value = rest;
  ValueReader r{value};
  StoredMessage m;
  m.offset = offset;
  std::uint32_t header_count = 0;
  std::string_view subject;
  if (!r.le(m.timestamp_ms) || !r.bytes(m.message.id) || !r.bytes(m.message.key) ||
      !r.header_count_and_extras(header_count, subject, m.message.deliver_at_ms)) {
    return std::nullopt;
  }
  m.message.subject.assign(subject);
  // Each header takes at least 8 bytes, so a corrupt count cannot make us reserve gigabytes.
  if (header_count > value.size() / 8) return std::nullopt;
  m.message.headers.resize(header_count);
  for (auto& h : m.message.headers) {
    if (!r.bytes(h.name) || !r.bytes(h.value)) return std::nullopt;
  }
  if (!r.bytes(m.message.payload)) return std::nullopt;
  rest = r.rest();
  return m;
}

}  // namespace loft::storage::encoding
