#pragma once
// Consumer groups as the broker describes them, and the settings and verbs that shape them.
// One definition for every layer: the broker takes and returns these, each front end encodes
// them for its own wire (loft's codec, the HTTP JSON).

#include <cstdint>
#include <string>
#include <vector>

namespace loft {

enum class StartKind : std::uint8_t { earliest = 0, latest = 1, offset = 2, timestamp = 3 };

// Where a new group starts (or a reset moves it): `value` is the offset for `offset` and
// milliseconds since the Unix epoch for `timestamp` (the first message published at or after
// it); unused otherwise.
struct StartPosition {
  StartKind kind = StartKind::earliest;
  std::uint64_t value = 0;
  bool operator==(const StartPosition&) const = default;
};

// How a group orders deliveries: `none`, or per message key (docs/semantics.md, "Per-key
// ordered delivery"): among the messages with the same non-empty key, one at a time, in offset
// order.
enum class Ordering : std::uint8_t { none = 0, key = 1 };

// Per-group settings, used when the group is created (ignored for an existing group).
// 0 in any field means the broker's default; valid ranges: docs/protocol.md, "GroupConfig".
struct GroupConfig {
  std::uint32_t ack_timeout_ms = 0;
  std::uint32_t max_deliveries = 0;
  std::uint32_t backoff_base_ms = 0;
  std::uint32_t backoff_cap_ms = 0;
  std::vector<std::uint32_t> backoff_delays_ms;  // explicit list; empty = exponential
  std::string dead_letter_topic;                 // empty = the default dead-letter name
  // A subject filter (loft/common/subject.hpp, wildcards allowed): the group delivers only
  // messages whose subject (the topic's name when a message has none) matches it, and counts
  // the others as done. Empty = every message. Last, with an initializer, so aggregate
  // initialisations written before filters keep their meaning.
  std::string filter{};
  // Opaque bytes a front end keeps with the group and reads back after a restart (the NATS
  // port: a consumer's settings that are not group settings; docs/nats.md). Not a delivery
  // setting; loft's own protocol neither sets nor shows it. At most
  // broker::GroupLimits::kMaxAnnotationBytes. Written with every progress write of the group.
  std::string annotation{};
  // Per-key ordering (protocol version 3). key_lookahead: how many messages an ordered group
  // holds back behind keys that have a message out (0 = the broker's default); ignored when
  // ordering is none.
  Ordering ordering = Ordering::none;
  std::uint32_t key_lookahead = 0;
  bool operator==(const GroupConfig&) const = default;
};

// How a consumer settles offsets delivered to it.
enum class SettleAction : std::uint8_t { ack = 0, nack = 1, extend = 2, reject = 3 };

// Offsets [first, first + count).
struct OffsetRun {
  std::uint64_t first = 0;
  std::uint32_t count = 0;
  bool operator==(const OffsetRun&) const = default;
};

// Why a consumer gets nothing right now.
enum class StallReason : std::uint8_t {
  none = 0,
  at_max_in_flight = 1,
  waiting_for_backoff = 2,
  slow_socket = 3,
  // An ordered group held back as many messages as key_lookahead allows behind keys that have
  // a message out (GroupInfo::blocking_key names the oldest); protocol version 3.
  key_blocked = 4,
};

struct ConsumerInfo {
  std::uint64_t subscription = 0;
  std::string client_name;
  std::uint32_t max_in_flight = 0;
  std::uint32_t in_flight = 0;
  StallReason stalled = StallReason::none;
  bool operator==(const ConsumerInfo&) const = default;
};

struct GroupInfo {
  std::string topic;
  std::string group;
  std::uint64_t ack_floor = 0;
  std::uint64_t end = 0;  // the topic's next offset
  std::uint64_t lag = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t scheduled = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t redelivered = 0;
  GroupConfig config;  // effective values (defaults filled in)
  std::vector<ConsumerInfo> consumers;
  std::uint64_t skipped = 0;  // offsets retention removed before the group acked them
  // Ordered groups: messages held back behind a key with a message out, and, when that reached
  // key_lookahead and stops delivery, the key of the oldest held-back message ("" otherwise).
  std::uint64_t held_back = 0;
  std::string blocking_key{};
  bool operator==(const GroupInfo&) const = default;
};

}  // namespace loft
