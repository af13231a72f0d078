#pragma once
// A topic as the broker describes it, and the settings that shape it. One definition for
// every layer: storage persists it, the broker hands it out, each front end encodes it for its
// own wire (loft's codec, the HTTP JSON).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loft/common/ids.hpp"

namespace loft {

// What a successful write, and so a confirm, guarantees (the broker's `durability` setting):
//  fsync: the write is in the write-ahead log and the log is fsync'd: it survives kill -9
//         and power loss.
//  os:    the write is in the write-ahead log in the OS page cache: it survives kill -9 of
//         loftd, but a power loss or kernel crash can lose the last writes.
// The values are the wire's (HELLO_OK).
enum class Durability : std::uint8_t { fsync = 0, os = 1 };

// What a second publish with a message id already stored (within the topic's dedup window)
// gets when its payload differs from the stored one: `duplicate` (the original's offset, like
// any duplicate) or `error` (a per-message dedup_conflict error). The values are the wire's.
enum class DedupConflict : std::uint8_t { duplicate = 0, error = 1 };

// How a topic's messages leave it (fixed at creation; docs/semantics.md, "Work-queue
// retention"). `limits`: only the retention limits (and purges) remove them. `work_queue`: also
// once every group of the topic has acked or dead-lettered them (the lowest of the groups' ack
// floors); a topic with no group keeps them. The values are the wire's and the store's.
enum class RetentionMode : std::uint8_t { limits = 0, work_queue = 1 };
// "limits" / "work_queue": the name the CLI, the HTTP JSON and the docs use.
inline const char* retention_mode_name(RetentionMode mode) {
  return mode == RetentionMode::work_queue ? "work_queue" : "limits";
}

inline constexpr std::uint64_t kDefaultDedupWindowMs = std::uint64_t{2} * 60 * 60 * 1000;  // 2 h

// Retention limits of a topic: the oldest messages past any of them are removed. 0 = unlimited.
struct RetentionLimits {
  std::uint64_t max_age_ms = 0;
  std::uint64_t max_bytes = 0;
  std::uint64_t max_messages = 0;
  bool operator==(const RetentionLimits&) const = default;
};

// The limits a request sets: a limit left nullopt is not set by it (the broker's default at
// creation, unchanged by an alter); 0 = unlimited.
struct RetentionChange {
  std::optional<std::uint64_t> max_age_ms;
  std::optional<std::uint64_t> max_bytes;
  std::optional<std::uint64_t> max_messages;
  bool empty() const { return !max_age_ms && !max_bytes && !max_messages; }
  bool operator==(const RetentionChange&) const = default;
};

struct TopicInfo {
  TopicId id{};  // the broker's internal id (storage keys); front ends do not show it
  std::string name;
  std::int64_t created_at_ms = 0;
  Offset first_offset{};  // lowest offset still stored (0 until retention removes messages)
  Offset next_offset{};   // offset the next message gets
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;  // sum of Message::size_bytes() of the stored messages
  // Dedup by message id (settings, fixed at creation): how long an id stays known, and what a
  // same-id, different-payload publish gets.
  std::uint64_t dedup_window_ms = kDefaultDedupWindowMs;
  DedupConflict dedup_conflict = DedupConflict::duplicate;
  // Retention limits in force (0 = unlimited): the oldest messages past any of them are
  // removed in the background (docs/storage.md, "Retention").
  std::uint64_t max_age_ms = 0;
  std::uint64_t max_bytes = 0;
  std::uint64_t max_messages = 0;
  RetentionLimits retention() const { return {max_age_ms, max_bytes, max_messages}; }
  // Stream subjects (JetStream's stream `subjects`): subject filters (loft/common/subject.hpp)
  // that capture publishes on matching subjects into this topic; empty = none. No two topics
  // have filters that one subject matches both (docs/semantics.md, "Topic subjects").
  std::vector<std::string> subjects{};
  // Work-queue retention (RetentionMode), fixed at creation. Last, with an initializer, so
  // aggregate initialisations written before it keep their meaning.
  RetentionMode retention_mode = RetentionMode::limits;
  // Delayed messages of the topic waiting for their delivery time (docs/semantics.md,
  // "Delayed delivery"): stored, not yet released for delivery. Last, as above.
  std::uint64_t scheduled = 0;
  bool operator==(const TopicInfo&) const = default;
};

}  // namespace loft
