#include "loft/protocol/codec.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

namespace loft::protocol {
namespace {

// Smallest encodings, used to reject a count before reserving memory for it. Version 2 adds a
// str16 to Message (subject) and to GroupConfig (filter): 2 bytes more each at least.
constexpr std::size_t kMinHeaderSize = 2 + 4;  // name length + value length
constexpr std::size_t kPublishResultSize = 2 + 1 + 8;
constexpr std::size_t kOffsetRunSize = 8 + 4;
constexpr std::size_t kMinConsumerInfoSize = 8 + 2 + 4 + 4 + 1;
constexpr std::size_t extra_v2(std::uint16_t version) { return version >= 2 ? 2 : 0; }
// name, 6 u64s, dedup_conflict, 3 limits, [subject count], [retention mode], [scheduled]
constexpr std::size_t min_topic_info_size(std::uint16_t v) {
  return 2 + 6 * 8 + 1 + 3 * 8 + extra_v2(v) + (v >= 3 ? 1 : 0) + (v >= 4 ? 8 : 0);
}
// Version 4 adds deliver_at_ms (i64) to Message and delay_ms (i64) to PUBLISH.
constexpr std::size_t extra_v4(std::uint16_t version) { return version >= 4 ? 8 : 0; }
// id, key, [subject,] [deliver_at_ms,] header count, payload
constexpr std::size_t min_message_size(std::uint16_t v) {
  return 2 + 2 + 2 + 4 + extra_v2(v) + extra_v4(v);
}
constexpr std::size_t min_stored_size(std::uint16_t v) { return 8 + 8 + min_message_size(v); }
constexpr std::size_t min_delivered_size(std::uint16_t v) {
  return 8 + 4 + 8 + min_message_size(v);
}
// 4 u32s, delay count, dlq topic, [filter]
// Version 3 appends ordering (u8) and key_lookahead (u32) to GroupConfig, held_back (u64) and
// blocking_key (str16) to GroupInfo.
constexpr std::size_t extra_v3_config(std::uint16_t version) { return version >= 3 ? 1 + 4 : 0; }
constexpr std::size_t extra_v3_info(std::uint16_t version) { return version >= 3 ? 8 + 2 : 0; }
constexpr std::size_t min_group_config_size(std::uint16_t v) {
  return 4 * 4 + 4 + 2 + extra_v2(v) + extra_v3_config(v);
}
constexpr std::size_t min_group_info_size(std::uint16_t v) {
  return 2 + 2 + 7 * 8 + min_group_config_size(v) + 4 + 8 + extra_v3_info(v);
}
// RetentionChange: which limits are set (bits 0..2: max_age_ms, max_bytes, max_messages).
constexpr std::uint8_t kRetentionMaskBits = 0x07;
// The largest value of each u8 enum on the wire; anything above is malformed.
constexpr std::uint8_t kMaxStartKind = static_cast<std::uint8_t>(StartKind::timestamp);
constexpr std::uint8_t kMaxSettleAction = static_cast<std::uint8_t>(SettleAction::reject);
constexpr std::uint8_t kMaxStallReasonV2 = static_cast<std::uint8_t>(StallReason::slow_socket);
constexpr std::uint8_t kMaxStallReason = static_cast<std::uint8_t>(StallReason::key_blocked);
constexpr std::uint8_t kMaxOrdering = static_cast<std::uint8_t>(Ordering::key);
constexpr std::uint8_t kMaxDedupConflict = static_cast<std::uint8_t>(DedupConflict::error);
constexpr std::uint8_t kMaxDurability = static_cast<std::uint8_t>(Durability::os);
constexpr std::uint8_t kMaxRetentionMode = static_cast<std::uint8_t>(RetentionMode::work_queue);
constexpr std::uint8_t kDuplicateFlag = 0x01;
constexpr std::size_t kMaxU16 = std::numeric_limits<std::uint16_t>::max();
constexpr std::size_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

// ---------------------------------------------------------------------------------------------
// Encoding

// Writes the layouts of protocol `version` (docs/protocol.md, "Version 2"): at version 1 a
// message's subject and a group's filter are left out, as that version has no field for them.
class Writer {
 public:
  Writer(std::string& out, std::uint16_t version)
      : out_(out), v2_(version >= 2), v3_(version >= 3), v4_(version >= 4) {}

  template <class T>
  void put(T v) {
    static_assert(std::is_integral_v<T>);
    using U = std::make_unsigned_t<T>;
    auto u = static_cast<U>(v);
    // One append of the little-endian bytes, not a push_back per byte (a DELIVER of small
    // messages is mostly integers).
    char bytes[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      bytes[i] = static_cast<char>(static_cast<std::uint8_t>(u & 0xFF));
      if constexpr (sizeof(T) > 1) u = static_cast<U>(u >> 8);
    }
    out_.append(bytes, sizeof(T));
  }

  // u16 length + bytes. REQUIRES: s.size() <= 65535.
  void str16(std::string_view s, std::string_view field) {
    if (s.size() > kMaxU16) {
      throw std::length_error("loft::protocol::encode: " + std::string(field) + " is " +
                              std::to_string(s.size()) + " bytes, more than 65535");
    }
    put(static_cast<std::uint16_t>(s.size()));
    out_.append(s);
  }
  // u16 length + bytes, cut to 65535 bytes: for human-readable text only.
  void text16(std::string_view s) { str16(s.substr(0, kMaxU16), "text"); }

  void bytes32(std::string_view s, std::string_view field) {
    if (s.size() > kMaxU32) {
      throw std::length_error("loft::protocol::encode: " + std::string(field) +
                              " is larger than 4 GiB");
    }
    put(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }

  void count32(std::size_t n, std::string_view field) {
    if (n > kMaxU32) {
      throw std::length_error("loft::protocol::encode: too many " + std::string(field));
    }
    put(static_cast<std::uint32_t>(n));
  }

  void topic_info(const TopicInfo& t) {
    str16(t.name, "topic name");
    put(t.first_offset.value);
    put(t.next_offset.value);
    put(t.messages);
    put(t.bytes);
    put(t.created_at_ms);
    put(t.dedup_window_ms);
    put(static_cast<std::uint8_t>(t.dedup_conflict));
    put(t.max_age_ms);
    put(t.max_bytes);
    put(t.max_messages);
    if (v2_) {
      if (t.subjects.size() > kMaxU16) {
        throw std::length_error("loft::protocol::encode: a topic has more than 65535 subjects");
      }
      put(static_cast<std::uint16_t>(t.subjects.size()));
      for (const auto& subject : t.subjects) str16(subject, "topic subject");
    }
    if (v3_) put(static_cast<std::uint8_t>(t.retention_mode));
    if (v4_) put(t.scheduled);
  }

  // u8 mask, then the three limits (0 where not set).
  void retention(const RetentionChange& c) {
    const std::uint8_t mask =
        (c.max_age_ms ? 1 : 0) | (c.max_bytes ? 2 : 0) | (c.max_messages ? 4 : 0);
    put(mask);
    put(c.max_age_ms.value_or(0));
    put(c.max_bytes.value_or(0));
    put(c.max_messages.value_or(0));
  }

  // A Message, or a StoredMessageView's message fields: the same bytes.
  template <class M>
  void message(const M& m) {
    str16(m.id, "message id");
    str16(m.key, "message key");
    if (v2_) str16(m.subject, "message subject");
    if (v4_) put(m.deliver_at_ms);
    if (m.headers.size() > kMaxU16) {
      throw std::length_error("loft::protocol::encode: more than 65535 headers in a message");
    }
    put(static_cast<std::uint16_t>(m.headers.size()));
    for (const auto& h : m.headers) {
      str16(h.name, "header name");
      bytes32(h.value, "header value");
    }
    bytes32(m.payload, "payload");
  }

  void boolean(bool v) { put(static_cast<std::uint8_t>(v ? 1 : 0)); }

  void start(const StartPosition& p) {
    put(static_cast<std::uint8_t>(p.kind));
    put(p.value);
  }

  void group_config(const GroupConfig& c) {
    put(c.ack_timeout_ms);
    put(c.max_deliveries);
    put(c.backoff_base_ms);
    put(c.backoff_cap_ms);
    count32(c.backoff_delays_ms.size(), "backoff delays");
    for (const auto d : c.backoff_delays_ms) put(d);
    str16(c.dead_letter_topic, "dead-letter topic");
    if (v2_) str16(c.filter, "group filter");
    if (v3_) {
      put(static_cast<std::uint8_t>(c.ordering));
      put(c.key_lookahead);
    }
  }

  void group_info(const GroupInfo& g) {
    str16(g.topic, "topic name");
    str16(g.group, "group name");
    put(g.ack_floor);
    put(g.end);
    put(g.lag);
    put(g.in_flight);
    put(g.scheduled);
    put(g.dead_lettered);
    put(g.redelivered);
    group_config(g.config);
    count32(g.consumers.size(), "consumers");
    for (const auto& c : g.consumers) {
      put(c.subscription);
      text16(c.client_name);
      put(c.max_in_flight);
      put(c.in_flight);
      // Before version 3 there is no key_blocked: such a consumer is shown as not stalled.
      const bool known = v3_ || c.stalled != StallReason::key_blocked;
      put(static_cast<std::uint8_t>(known ? c.stalled : StallReason::none));
    }
    put(g.skipped);
    if (v3_) {
      put(g.held_back);
      str16(g.blocking_key, "blocking key");
    }
  }

  void topic_and_group(std::string_view topic, std::string_view group) {
    str16(topic, "topic name");
    str16(group, "group name");
  }

  void body(const Hello& b) {
    put(b.min_version);
    put(b.max_version);
    text16(b.client_name);
  }
  void body(const HelloOk& b) {
    put(b.version);
    put(b.limits.max_frame_size);
    put(b.limits.message.max_message_size);
    put(b.limits.message.max_id_size);
    put(b.limits.message.max_key_size);
    put(b.limits.message.max_headers_size);
    text16(b.server_name);
    put(static_cast<std::uint8_t>(b.durability));
  }
  void body(const ErrorReply& b) {
    put(static_cast<std::uint16_t>(b.code));
    text16(b.message);
  }
  void body(const CreateTopic& b) {
    str16(b.name, "topic name");
    put(b.dedup_window_ms);
    put(static_cast<std::uint8_t>(b.dedup_conflict));
    retention(b.retention);
    if (v3_) put(static_cast<std::uint8_t>(b.retention_mode));
  }
  void body(const CreateTopicOk& b) { topic_info(b.topic); }
  void body(const DeleteTopic& b) { str16(b.name, "topic name"); }
  void body(const DeleteTopicOk&) {}
  void body(const ListTopics&) {}
  void body(const ListTopicsOk& b) {
    count32(b.topics.size(), "topics");
    for (const auto& t : b.topics) topic_info(t);
  }
  void body(const DescribeTopic& b) { str16(b.name, "topic name"); }
  void body(const DescribeTopicOk& b) { topic_info(b.topic); }
  void body(const Publish& b) {
    str16(b.topic, "topic name");
    if (v4_) put(b.delay_ms);
    count32(b.messages.size(), "messages");
    for (const auto& m : b.messages) message(m);
  }
  void body(const PublishOk& b) {
    count32(b.results.size(), "results");
    for (const auto& r : b.results) {
      put(static_cast<std::uint16_t>(r.code));
      put(static_cast<std::uint8_t>(r.duplicate ? kDuplicateFlag : 0));
      put(r.offset);
    }
  }
  void body(const Fetch& b) {
    str16(b.topic, "topic name");
    put(b.offset);
    put(b.max_messages);
    put(b.max_bytes);
  }
  void body(const FetchOk& b) {
    put(b.first_offset);
    put(b.next_offset);
    count32(b.messages.size(), "messages");
    for (const auto& m : b.messages) {
      put(m.offset.value);
      put(m.timestamp_ms);
      message(m.message);
    }
  }
  void body(const Ping&) {}
  void body(const Pong&) {}

  void body(const Subscribe& b) {
    topic_and_group(b.topic, b.group);
    start(b.start);
    put(b.max_in_flight);
    group_config(b.config);
  }
  void body(const SubscribeOk& b) {
    put(b.subscription);
    boolean(b.created);
    put(b.ack_floor);
  }
  void body(const Deliver& b) {
    put(b.subscription);
    topic_and_group(b.topic, b.group);
    count32(b.messages.size(), "messages");
    for (const auto& m : b.messages) delivered(m.offset, m.attempt, m.timestamp_ms, m.message);
  }
  template <class M>
  void delivered(std::uint64_t offset, std::uint32_t attempt, std::int64_t timestamp_ms,
                 const M& m) {
    put(offset);
    put(attempt);
    put(timestamp_ms);
    message(m);
  }
  void body(const Settle& b) {
    put(b.subscription);
    put(static_cast<std::uint8_t>(b.action));
    boolean(b.confirm);
    put(b.delay_ms);
    count32(b.runs.size(), "offset runs");
    for (const auto& r : b.runs) {
      put(r.first);
      put(r.count);
    }
  }
  void body(const SettleOk& b) {
    put(b.applied);
    put(b.ignored);
  }
  void body(const Unsubscribe& b) { put(b.subscription); }
  void body(const UnsubscribeOk&) {}
  void body(const CreateGroup& b) {
    topic_and_group(b.topic, b.group);
    start(b.start);
    group_config(b.config);
  }
  void body(const CreateGroupOk& b) { group_info(b.group); }
  void body(const ListGroups& b) { str16(b.topic, "topic name"); }
  void body(const ListGroupsOk& b) {
    count32(b.groups.size(), "groups");
    for (const auto& g : b.groups) group_info(g);
  }
  void body(const DescribeGroup& b) { topic_and_group(b.topic, b.group); }
  void body(const DescribeGroupOk& b) { group_info(b.group); }
  void body(const DeleteGroup& b) { topic_and_group(b.topic, b.group); }
  void body(const DeleteGroupOk&) {}
  void body(const ResetGroup& b) {
    topic_and_group(b.topic, b.group);
    start(b.to);
  }
  void body(const ResetGroupOk& b) { group_info(b.group); }
  void body(const AlterTopic& b) {
    str16(b.name, "topic name");
    retention(b.retention);
  }
  void body(const AlterTopicOk& b) { topic_info(b.topic); }
  void body(const Backup& b) { str16(b.dir, "backup dir"); }
  void body(const BackupOk& b) { str16(b.dir, "backup dir"); }
  void body(const Authenticate& b) {
    str16(b.mechanism, "mechanism");
    str16(b.payload, "auth payload");
  }
  void body(const AuthenticateOk& b) { str16(b.user, "user"); }

 private:
  std::string& out_;
  bool v2_;
  bool v3_;  // version 3: a topic's retention mode, a group's ordering (docs/protocol.md)
  bool v4_;  // version 4: a message's delivery time, a publish's delay
};

// ---------------------------------------------------------------------------------------------
// Decoding

std::uint64_t load_le(const char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) {
    v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  }
  return v;
}

// Reads fields off a body span. The first failure is sticky: later reads return zeros and
// empty strings, and the caller checks ok() before using what it read. Failure details name
// the frame, the item being read ("message 3 header 1") and the field.
class Reader {
 public:
  Reader(std::span<const char> bytes, std::string_view frame, std::uint16_t version)
      : bytes_(bytes), frame_(frame), version_(version) {}

  bool ok() const { return !error_.has_value(); }
  std::uint16_t version() const { return version_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }

  // Context for failure details: `scope(0, "message", 3)` then `scope(1, "header", 1)`.
  void scope(std::size_t level, std::string_view item, std::size_t index) {
    scopes_[level] = {item, index};
    depth_ = level + 1;
  }
  void unscope(std::size_t level) { depth_ = level; }

  // `suffix` is appended to the field's name in a failure detail (" length").
  template <class T>
  T get(std::string_view field, std::string_view suffix = {}) {
    static_assert(std::is_integral_v<T>);
    if (!ok()) return T{};
    if (remaining() < sizeof(T)) {
      fail(std::string(field) + std::string(suffix) + " needs " + std::to_string(sizeof(T)) +
           " bytes, " + std::to_string(remaining()) + " remain");
      return T{};
    }
    const auto v = load_le(bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return static_cast<T>(static_cast<std::make_unsigned_t<T>>(v));
  }

  std::string str16(std::string_view field) {
    const auto n = get<std::uint16_t>(field, " length");
    return take(n, field);
  }
  std::string bytes32(std::string_view field) {
    const auto n = get<std::uint32_t>(field, " length");
    return take(n, field);
  }

  // Reads a u32 count and checks that `count` items of at least `min_each` bytes fit in what
  // remains, so a huge count fails here instead of in a reserve().
  std::uint32_t count32(std::string_view field, std::size_t min_each) {
    const auto n = get<std::uint32_t>(field);
    check_count(n, field, min_each);
    return ok() ? n : 0;
  }
  std::uint16_t count16(std::string_view field, std::size_t min_each) {
    const auto n = get<std::uint16_t>(field);
    check_count(n, field, min_each);
    return ok() ? n : 0;
  }

  // A u8 that must be 0 or 1.
  bool boolean(std::string_view field) {
    const auto v = get<std::uint8_t>(field);
    if (v > 1) fail(std::string(field) + " is " + std::to_string(v) + ", not 0 or 1");
    return v == 1;
  }

  // A u8 enum whose values are 0..max.
  template <class E>
  E enumeration(std::string_view field, std::uint8_t max) {
    const auto v = get<std::uint8_t>(field);
    if (v > max) {
      fail(std::string(field) + " " + std::to_string(v) + " is not defined (0.." +
           std::to_string(max) + ")");
      return E{};
    }
    return static_cast<E>(v);
  }

  void fail(const std::string& what) {
    if (!ok()) return;
    std::string detail(frame_);
    detail += ":";
    for (std::size_t i = 0; i < depth_; ++i) {
      detail += ' ';
      detail += scopes_[i].first;
      detail += ' ';
      detail += std::to_string(scopes_[i].second);
    }
    detail += ' ';
    detail += what;
    error_ = Error{Errc::malformed_frame, std::move(detail)};
  }

  // The value, or the first failure; trailing bytes are a failure too.
  template <class T>
  Result<Body> finish(T&& value) {
    depth_ = 0;
    if (ok() && remaining() != 0) {
      fail(std::to_string(remaining()) + " trailing bytes after the body");
    }
    if (!ok()) return tl::unexpected(std::move(*error_));
    return Body{std::forward<T>(value)};
  }

 private:
  std::string take(std::size_t n, std::string_view field) {
    if (!ok()) return {};
    if (n > remaining()) {
      fail(std::string(field) + " length " + std::to_string(n) + " exceeds remaining " +
           std::to_string(remaining()) + " bytes");
      return {};
    }
    std::string s(bytes_.data() + pos_, n);
    pos_ += n;
    return s;
  }

  void check_count(std::uint64_t n, std::string_view field, std::size_t min_each) {
    if (!ok()) return;
    if (n * min_each > remaining()) {
      fail(std::string(field) + " " + std::to_string(n) + " needs at least " +
           std::to_string(n * min_each) + " bytes, " + std::to_string(remaining()) + " remain");
    }
  }

  std::span<const char> bytes_;
  std::size_t pos_ = 0;
  std::string_view frame_;
  std::uint16_t version_;
  std::array<std::pair<std::string_view, std::size_t>, 2> scopes_{};
  std::size_t depth_ = 0;
  std::optional<Error> error_;
};

TopicInfo read_topic_info(Reader& r) {
  TopicInfo t;
  t.name = r.str16("name");
  t.first_offset = Offset{r.get<std::uint64_t>("first_offset")};
  t.next_offset = Offset{r.get<std::uint64_t>("next_offset")};
  t.messages = r.get<std::uint64_t>("messages");
  t.bytes = r.get<std::uint64_t>("bytes");
  t.created_at_ms = r.get<std::int64_t>("created_at_ms");
  t.dedup_window_ms = r.get<std::uint64_t>("dedup_window_ms");
  t.dedup_conflict = r.enumeration<DedupConflict>("dedup_conflict", kMaxDedupConflict);
  t.max_age_ms = r.get<std::uint64_t>("max_age_ms");
  t.max_bytes = r.get<std::uint64_t>("max_bytes");
  t.max_messages = r.get<std::uint64_t>("max_messages");
  if (r.version() >= 2) {
    const auto n = r.count16("subject count", 2);
    t.subjects.reserve(n);
    for (std::uint16_t i = 0; i < n && r.ok(); ++i) t.subjects.push_back(r.str16("subject"));
  }
  if (r.version() >= 3) {
    t.retention_mode = r.enumeration<RetentionMode>("retention_mode", kMaxRetentionMode);
  }
  if (r.version() >= 4) t.scheduled = r.get<std::uint64_t>("scheduled");
  return t;
}

// A limit not set in the mask must be written as 0, so decoding then encoding gives the same
// bytes.
RetentionChange read_retention(Reader& r) {
  RetentionChange c;
  const auto mask = r.get<std::uint8_t>("retention mask");
  if ((mask & ~kRetentionMaskBits) != 0) {
    r.fail("retention mask " + std::to_string(mask) + " has reserved bits set");
  }
  const std::array<std::pair<std::optional<std::uint64_t>*, std::string_view>, 3> fields{{
      {&c.max_age_ms, "max_age_ms"},
      {&c.max_bytes, "max_bytes"},
      {&c.max_messages, "max_messages"},
  }};
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto v = r.get<std::uint64_t>(fields[i].second);
    if ((mask & (1U << i)) != 0) {
      *fields[i].first = v;
    } else if (v != 0) {
      r.fail(std::string(fields[i].second) + " is " + std::to_string(v) +
             " but not set in the retention mask (must be 0)");
    }
  }
  return c;
}

// Reads one message; the caller has set scope 0 ("message N").
Message read_message(Reader& r) {
  Message m;
  m.id = r.str16("id");
  m.key = r.str16("key");
  if (r.version() >= 2) m.subject = r.str16("subject");
  if (r.version() >= 4) m.deliver_at_ms = r.get<std::int64_t>("deliver_at_ms");
  const auto headers = r.count16("header count", kMinHeaderSize);
  m.headers.reserve(headers);
  for (std::uint16_t i = 0; i < headers && r.ok(); ++i) {
    r.scope(1, "header", i);
    Header h;
    h.name = r.str16("name");
    h.value = r.bytes32("value");
    m.headers.push_back(std::move(h));
  }
  r.unscope(1);
  m.payload = r.bytes32("payload");
  return m;
}

StartPosition read_start(Reader& r) {
  StartPosition p;
  p.kind = r.enumeration<StartKind>("start kind", kMaxStartKind);
  p.value = r.get<std::uint64_t>("start value");
  return p;
}

GroupConfig read_group_config(Reader& r) {
  GroupConfig c;
  c.ack_timeout_ms = r.get<std::uint32_t>("ack_timeout_ms");
  c.max_deliveries = r.get<std::uint32_t>("max_deliveries");
  c.backoff_base_ms = r.get<std::uint32_t>("backoff_base_ms");
  c.backoff_cap_ms = r.get<std::uint32_t>("backoff_cap_ms");
  const auto n = r.count32("backoff delay count", 4);
  c.backoff_delays_ms.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    c.backoff_delays_ms.push_back(r.get<std::uint32_t>("backoff delay"));
  }
  c.dead_letter_topic = r.str16("dead_letter_topic");
  if (r.version() >= 2) c.filter = r.str16("filter");
  if (r.version() >= 3) {
    c.ordering = r.enumeration<Ordering>("ordering", kMaxOrdering);
    c.key_lookahead = r.get<std::uint32_t>("key_lookahead");
  }
  return c;
}

// Reads one GroupInfo at scope `level` (0 inside a bare reply, 1 inside LIST_GROUPS_OK).
GroupInfo read_group_info(Reader& r, std::size_t level) {
  GroupInfo g;
  g.topic = r.str16("topic");
  g.group = r.str16("group");
  g.ack_floor = r.get<std::uint64_t>("ack_floor");
  g.end = r.get<std::uint64_t>("end");
  g.lag = r.get<std::uint64_t>("lag");
  g.in_flight = r.get<std::uint64_t>("in_flight");
  g.scheduled = r.get<std::uint64_t>("scheduled");
  g.dead_lettered = r.get<std::uint64_t>("dead_lettered");
  g.redelivered = r.get<std::uint64_t>("redelivered");
  g.config = read_group_config(r);
  const auto n = r.count32("consumer count", kMinConsumerInfoSize);
  g.consumers.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    r.scope(level, "consumer", i);
    ConsumerInfo c;
    c.subscription = r.get<std::uint64_t>("subscription");
    c.client_name = r.str16("client_name");
    c.max_in_flight = r.get<std::uint32_t>("max_in_flight");
    c.in_flight = r.get<std::uint32_t>("in_flight");
    c.stalled = r.enumeration<StallReason>("stalled",
                                           r.version() >= 3 ? kMaxStallReason : kMaxStallReasonV2);
    g.consumers.push_back(std::move(c));
  }
  r.unscope(level);
  g.skipped = r.get<std::uint64_t>("skipped");
  if (r.version() >= 3) {
    g.held_back = r.get<std::uint64_t>("held_back");
    g.blocking_key = r.str16("blocking_key");
  }
  return g;
}

// ---- One read() per frame struct, the mirror of Writer::body: it reads the fields in wire
// order; decode_as() then checks for trailing bytes. A failure is sticky in the Reader.

// The topic and group names that begin the group frames.
template <class T>
void read_topic_and_group(Reader& r, T& b) {
  b.topic = r.str16("topic");
  b.group = r.str16("group");
}

// A u32 count, then that many items, each read by `item()` at scope 0 ("message 3").
template <class T, class F>
void read_list(Reader& r, std::vector<T>& out, std::string_view count_field, std::size_t min_each,
               std::string_view item_name, F item) {
  const auto n = r.count32(count_field, min_each);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    r.scope(0, item_name, i);
    out.push_back(item());
  }
}

void read(Reader& r, Hello& b) {
  b.min_version = r.get<std::uint16_t>("min_version");
  b.max_version = r.get<std::uint16_t>("max_version");
  b.client_name = r.str16("client_name");
}
void read(Reader& r, HelloOk& b) {
  b.version = r.get<std::uint16_t>("version");
  b.limits.max_frame_size = r.get<std::uint32_t>("max_frame_size");
  b.limits.message.max_message_size = r.get<std::uint32_t>("max_message_size");
  b.limits.message.max_id_size = r.get<std::uint16_t>("max_id_size");
  b.limits.message.max_key_size = r.get<std::uint16_t>("max_key_size");
  b.limits.message.max_headers_size = r.get<std::uint32_t>("max_headers_size");
  b.server_name = r.str16("server_name");
  b.durability = r.enumeration<Durability>("durability", kMaxDurability);
}
void read(Reader& r, ErrorReply& b) {
  b.code = errc_from_wire(r.get<std::uint16_t>("code"));
  b.message = r.str16("message");
}
void read(Reader& r, CreateTopic& b) {
  b.name = r.str16("name");
  b.dedup_window_ms = r.get<std::uint64_t>("dedup_window_ms");
  b.dedup_conflict = r.enumeration<DedupConflict>("dedup_conflict", kMaxDedupConflict);
  // The retention block came later: a frame that ends here sets no limits.
  if (r.ok() && r.remaining() != 0) b.retention = read_retention(r);
  // Version 3's retention mode follows the block, optional as the block is: a body that ends
  // before it creates a `limits` topic.
  if (r.version() >= 3 && r.ok() && r.remaining() != 0) {
    b.retention_mode = r.enumeration<RetentionMode>("retention_mode", kMaxRetentionMode);
  }
}
void read(Reader& r, CreateTopicOk& b) { b.topic = read_topic_info(r); }
void read(Reader& r, DeleteTopic& b) { b.name = r.str16("name"); }
void read(Reader&, DeleteTopicOk&) {}
void read(Reader&, ListTopics&) {}
void read(Reader& r, ListTopicsOk& b) {
  read_list(r, b.topics, "topic count", min_topic_info_size(r.version()), "topic",
            [&r] { return read_topic_info(r); });
}
void read(Reader& r, DescribeTopic& b) { b.name = r.str16("name"); }
void read(Reader& r, DescribeTopicOk& b) { b.topic = read_topic_info(r); }
void read(Reader& r, Publish& b) {
  b.topic = r.str16("topic");
  // Any value decodes: a negative or too long delay is the session's invalid_request (a
  // request it understood and refuses), not a malformed frame.
  if (r.version() >= 4) b.delay_ms = r.get<std::int64_t>("delay_ms");
  read_list(r, b.messages, "message count", min_message_size(r.version()), "message",
            [&r] { return read_message(r); });
}
void read(Reader& r, PublishOk& b) {
  read_list(r, b.results, "result count", kPublishResultSize, "result", [&r] {
    PublishResult res;
    res.code = errc_from_wire(r.get<std::uint16_t>("code"));
    const auto flags = r.get<std::uint8_t>("flags");
    if ((flags & ~kDuplicateFlag) != 0) {
      r.fail("flags " + std::to_string(flags) + " has reserved bits set");
    }
    res.duplicate = (flags & kDuplicateFlag) != 0;
    res.offset = r.get<std::uint64_t>("offset");
    return res;
  });
}
void read(Reader& r, Fetch& b) {
  b.topic = r.str16("topic");
  b.offset = r.get<std::uint64_t>("offset");
  b.max_messages = r.get<std::uint32_t>("max_messages");
  b.max_bytes = r.get<std::uint32_t>("max_bytes");
}
void read(Reader& r, FetchOk& b) {
  b.first_offset = r.get<std::uint64_t>("first_offset");
  b.next_offset = r.get<std::uint64_t>("next_offset");
  read_list(r, b.messages, "message count", min_stored_size(r.version()), "message", [&r] {
    StoredMessage m;
    m.offset = Offset{r.get<std::uint64_t>("offset")};
    m.timestamp_ms = r.get<std::int64_t>("timestamp_ms");
    m.message = read_message(r);
    return m;
  });
}
void read(Reader&, Ping&) {}
void read(Reader&, Pong&) {}
void read(Reader& r, Subscribe& b) {
  read_topic_and_group(r, b);
  b.start = read_start(r);
  b.max_in_flight = r.get<std::uint32_t>("max_in_flight");
  b.config = read_group_config(r);
}
void read(Reader& r, SubscribeOk& b) {
  b.subscription = r.get<std::uint64_t>("subscription");
  b.created = r.boolean("created");
  b.ack_floor = r.get<std::uint64_t>("ack_floor");
}
void read(Reader& r, Deliver& b) {
  b.subscription = r.get<std::uint64_t>("subscription");
  b.topic = r.str16("topic");
  b.group = r.str16("group");
  read_list(r, b.messages, "message count", min_delivered_size(r.version()), "message", [&r] {
    DeliveredMessage m;
    m.offset = r.get<std::uint64_t>("offset");
    m.attempt = r.get<std::uint32_t>("attempt");
    m.timestamp_ms = r.get<std::int64_t>("timestamp_ms");
    m.message = read_message(r);
    return m;
  });
}
void read(Reader& r, Settle& b) {
  b.subscription = r.get<std::uint64_t>("subscription");
  b.action = r.enumeration<SettleAction>("action", kMaxSettleAction);
  b.confirm = r.boolean("confirm");
  b.delay_ms = r.get<std::uint32_t>("delay_ms");
  read_list(r, b.runs, "run count", kOffsetRunSize, "run", [&r] {
    OffsetRun run;
    run.first = r.get<std::uint64_t>("first");
    run.count = r.get<std::uint32_t>("count");
    return run;
  });
}
void read(Reader& r, SettleOk& b) {
  b.applied = r.get<std::uint32_t>("applied");
  b.ignored = r.get<std::uint32_t>("ignored");
}
void read(Reader& r, Unsubscribe& b) { b.subscription = r.get<std::uint64_t>("subscription"); }
void read(Reader&, UnsubscribeOk&) {}
void read(Reader& r, CreateGroup& b) {
  read_topic_and_group(r, b);
  b.start = read_start(r);
  b.config = read_group_config(r);
}
void read(Reader& r, CreateGroupOk& b) { b.group = read_group_info(r, 0); }
void read(Reader& r, ListGroups& b) { b.topic = r.str16("topic"); }
void read(Reader& r, ListGroupsOk& b) {
  read_list(r, b.groups, "group count", min_group_info_size(r.version()), "group",
            [&r] { return read_group_info(r, 1); });
}
void read(Reader& r, DescribeGroup& b) { read_topic_and_group(r, b); }
void read(Reader& r, DescribeGroupOk& b) { b.group = read_group_info(r, 0); }
void read(Reader& r, DeleteGroup& b) { read_topic_and_group(r, b); }
void read(Reader&, DeleteGroupOk&) {}
void read(Reader& r, ResetGroup& b) {
  read_topic_and_group(r, b);
  b.to = read_start(r);
}
void read(Reader& r, ResetGroupOk& b) { b.group = read_group_info(r, 0); }
void read(Reader& r, AlterTopic& b) {
  b.name = r.str16("name");
  b.retention = read_retention(r);
}
void read(Reader& r, AlterTopicOk& b) { b.topic = read_topic_info(r); }
void read(Reader& r, Backup& b) { b.dir = r.str16("dir"); }
void read(Reader& r, BackupOk& b) { b.dir = r.str16("dir"); }
void read(Reader& r, Authenticate& b) {
  b.mechanism = r.str16("mechanism");
  b.payload = r.str16("payload");
}
void read(Reader& r, AuthenticateOk& b) { b.user = r.str16("user"); }

template <class T>
Result<Body> decode_as(Reader& r) {
  T body;
  read(r, body);
  return r.finish(std::move(body));
}

// How to decode each frame type, sorted by type: one entry per Body alternative, made from
// its kType and kName, so a new frame needs no edit here.
struct BodyDecoder {
  std::uint16_t type;
  std::string_view name;  // in failure details: "publish: message 3 ..."
  Result<Body> (*decode)(Reader&);
};

template <std::size_t... I>
constexpr auto make_body_decoders(std::index_sequence<I...>) {
  std::array<BodyDecoder, sizeof...(I)> table{{
      {static_cast<std::uint16_t>(std::variant_alternative_t<I, Body>::kType),
       std::variant_alternative_t<I, Body>::kName,
       &decode_as<std::variant_alternative_t<I, Body>>}...,
  }};
  std::sort(table.begin(), table.end(),
            [](const BodyDecoder& a, const BodyDecoder& b) { return a.type < b.type; });
  return table;
}
constexpr auto kBodyDecoders =
    make_body_decoders(std::make_index_sequence<std::variant_size_v<Body>>{});

// The decoder of `type`, or nullptr for a type v1 does not define.
const BodyDecoder* find_body_decoder(std::uint16_t type) noexcept {
  const auto it =
      std::lower_bound(kBodyDecoders.begin(), kBodyDecoders.end(), type,
                       [](const BodyDecoder& d, std::uint16_t t) { return d.type < t; });
  return it != kBodyDecoders.end() && it->type == type ? &*it : nullptr;
}

}  // namespace

namespace {
// Overwrites 4 bytes at `at` with `v`, little-endian: a length, count or correlation id known
// only after the bytes around it were written.
void store_u32_le(char* at, std::uint32_t v) noexcept {
  for (std::size_t i = 0; i < 4; ++i)
    at[i] = static_cast<char>(static_cast<std::uint8_t>(v >> (8 * i)));
}
}  // namespace

void encode(const Frame& frame, std::string& out, std::uint16_t version) {
  const auto start = out.size();
  Writer w(out, version);
  w.put(std::uint32_t{0});  // patched below
  w.put(static_cast<std::uint16_t>(type_of(frame.body)));
  w.put(std::uint16_t{0});  // flags: none defined in v1
  w.put(frame.correlation_id);
  std::visit([&w](const auto& b) { w.body(b); }, frame.body);
  const auto length = out.size() - start - 4;
  if (length > kMaxU32) {
    out.resize(start);
    throw std::length_error("loft::protocol::encode: frame larger than 4 GiB");
  }
  store_u32_le(out.data() + start, static_cast<std::uint32_t>(length));
}

std::string encode(const Frame& frame, std::uint16_t version) {
  std::string out;
  encode(frame, out, version);
  return out;
}

namespace {
// The bytes of a Message (5.2) on the wire: a Message or a StoredMessageView's fields.
template <class M>
std::size_t message_size(const M& m, std::uint16_t version) noexcept {
  std::size_t n = 2 + m.id.size() + 2 + m.key.size() + 2 + 4 + m.payload.size();
  if (version >= 2) n += 2 + m.subject.size();
  if (version >= 4) n += 8;  // deliver_at_ms
  for (const auto& h : m.headers) n += 2 + h.name.size() + 4 + h.value.size();
  return n;
}
// A DELIVER's message: offset, attempt and timestamp before it.
template <class M>
std::size_t delivered_size(const M& m, std::uint16_t version) noexcept {
  return 8 + 4 + 8 + message_size(m, version);
}
}  // namespace

std::size_t encoded_size(const StoredMessage& m, std::uint16_t version) noexcept {
  return 8 + 8 + message_size(m.message, version);  // offset and timestamp, then the message
}

std::size_t encoded_size(const DeliveredMessage& m, std::uint16_t version) noexcept {
  return delivered_size(m.message, version);
}

DeliverWriter::DeliverWriter(std::uint64_t subscription, std::string_view topic,
                             std::string_view group, std::uint16_t version)
    : version_(version) {
  Writer w(prefix_, version_);
  w.put(std::uint32_t{0});  // length, set by take()
  w.put(static_cast<std::uint16_t>(Deliver::kType));
  w.put(std::uint16_t{0});  // flags
  w.put(std::uint32_t{0});  // correlation id: set_correlation_id
  w.put(subscription);
  w.topic_and_group(topic, group);
  w.put(std::uint32_t{0});  // count, set by take()
  frame_ = prefix_;
}

std::size_t DeliverWriter::encoded_size(const StoredMessageView& m) const noexcept {
  return delivered_size(m, version_);
}

void DeliverWriter::add(std::uint32_t attempt, const StoredMessageView& m) {
  const std::size_t before = frame_.size();
  try {
    Writer w(frame_, version_);
    w.delivered(m.offset.value, attempt, m.timestamp_ms, m);
  } catch (...) {
    frame_.resize(before);  // the frame stays as it was: no half-written message
    throw;
  }
  ++count_;
}

std::string DeliverWriter::take() {
  const std::size_t length = frame_.size() - 4;
  if (length > kMaxU32) throw std::length_error("loft::protocol::encode: frame larger than 4 GiB");
  store_u32_le(frame_.data(), static_cast<std::uint32_t>(length));
  store_u32_le(frame_.data() + prefix_.size() - 4, count_);
  std::string out = std::move(frame_);
  frame_ = prefix_;
  count_ = 0;
  return out;
}

void set_correlation_id(std::span<char> frame, std::uint32_t correlation_id) noexcept {
  store_u32_le(frame.data() + 8, correlation_id);
}

FrameHeader peek_header(std::span<const char> bytes) noexcept {
  FrameHeader h;
  h.length = static_cast<std::uint32_t>(load_le(bytes.data(), 4));
  h.type = static_cast<std::uint16_t>(load_le(bytes.data() + 4, 2));
  h.flags = static_cast<std::uint16_t>(load_le(bytes.data() + 6, 2));
  h.correlation_id = static_cast<std::uint32_t>(load_le(bytes.data() + 8, 4));
  return h;
}

Result<FrameHeader> decode_header(std::span<const char> bytes, std::uint32_t max_frame_size) {
  if (bytes.size() < kHeaderSize) {
    return fail(Errc::malformed_frame,
                "frame header needs 12 bytes, got " + std::to_string(bytes.size()));
  }
  const auto h = peek_header(bytes);
  if (h.length < kMinLength) {
    return fail(Errc::malformed_frame,
                "frame length " + std::to_string(h.length) + " is less than the minimum 8");
  }
  if (std::uint64_t{h.length} + 4 > max_frame_size) {
    return fail(Errc::frame_too_large, "frame of " + std::to_string(std::uint64_t{h.length} + 4) +
                                           " bytes exceeds max_frame_size " +
                                           std::to_string(max_frame_size));
  }
  return h;
}

Result<Body> decode_body(const FrameHeader& header, std::span<const char> body,
                         std::uint16_t version) {
  const auto* decoder = find_body_decoder(header.type);
  if (decoder == nullptr) {
    return fail(Errc::unknown_frame_type, "frame type " + std::to_string(header.type) +
                                              " is not defined in protocol v" +
                                              std::to_string(version));
  }
  Reader r(body, decoder->name, version);
  return decoder->decode(r);
}

std::size_t max_publish_results(std::uint32_t max_frame_size) noexcept {
  constexpr std::size_t kResultSize = 2 + 1 + 8;  // u16 code, u8 duplicate, u64 offset
  const std::size_t base = kHeaderSize + 4;       // the u32 count
  return max_frame_size < base ? 0 : (max_frame_size - base) / kResultSize;
}

void Decoder::make_room(std::size_t n) {
  if (begin_ == end_) {
    begin_ = end_ = 0;
    if (buffer_.size() > kKeepCapacity) std::vector<char>().swap(buffer_);
  } else if (begin_ > 0 && (end_ - begin_ <= begin_ || buffer_.size() - end_ < n)) {
    // Move what is left (usually the start of one frame) to the front once the consumed
    // bytes are the larger part, or to make room: each byte moves O(1) times on average.
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() - end_ < n) buffer_.resize(end_ + n);
}

std::span<char> Decoder::prepare(std::size_t at_least) {
  std::size_t need = at_least;
  if (!failed_ && buffered() >= kHeaderSize) {
    const auto h = peek_header({buffer_.data() + begin_, kHeaderSize});
    const std::uint64_t total = std::uint64_t{h.length} + 4;
    // Only a length next() accepts: a bad header fails there, it allocates nothing here.
    if (h.length >= kMinLength && total <= max_frame_size_ && total > buffered()) {
      need = std::max<std::size_t>(need, static_cast<std::size_t>(total) - buffered());
    }
  }
  make_room(need);
  return {buffer_.data() + end_, buffer_.size() - end_};
}

void Decoder::feed(std::span<const char> bytes) {
  if (failed_) return;  // the stream is dead; do not buffer more of it
  make_room(bytes.size());
  if (!bytes.empty()) std::memcpy(buffer_.data() + end_, bytes.data(), bytes.size());
  end_ += bytes.size();
}

Result<std::optional<Frame>> Decoder::fail_with(std::uint32_t correlation_id, Error error) {
  failed_correlation_id_ = correlation_id;
  failed_ = std::move(error);
  return tl::unexpected(*failed_);
}

Result<std::optional<Frame>> Decoder::next() {
  if (failed_) return tl::unexpected(*failed_);
  const std::span<const char> avail(buffer_.data() + begin_, end_ - begin_);
  if (avail.size() < kHeaderSize) return std::optional<Frame>{};
  auto header = decode_header(avail, max_frame_size_);
  if (!header) return fail_with(peek_header(avail).correlation_id, std::move(header.error()));
  const std::size_t total = std::size_t{header->length} + 4;
  if (avail.size() < total) return std::optional<Frame>{};
  auto body = decode_body(*header, avail.subspan(kHeaderSize, total - kHeaderSize), version_);
  if (!body) return fail_with(header->correlation_id, std::move(body.error()));
  begin_ += total;
  if (begin_ == end_) begin_ = end_ = 0;
  last_frame_size_ = total;
  return std::optional<Frame>{Frame{header->correlation_id, std::move(*body)}};
}

bool Decoder::partial_frame() const noexcept {
  if (failed_ || begin_ == end_) return false;
  if (buffered() < kHeaderSize) return true;
  const auto h = peek_header({buffer_.data() + begin_, kHeaderSize});
  const std::uint64_t total = std::uint64_t{h.length} + 4;
  if (h.length < kMinLength || total > max_frame_size_) return false;  // next() fails now
  return buffered() < total;
}

}  // namespace loft::protocol
