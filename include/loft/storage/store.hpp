#pragma once
// The storage interface the broker writes and reads through. Two implementations: RocksDB
// (src/storage/rocksdb_store.cpp, the real one) and memory (tests of broker logic, no disk).
// Key layout and encodings: docs/storage.md.
//
// Thread safety: write() is called by one thread at a time (the broker's writer thread);
// read() and load_topics() may be called from any thread, concurrently with write().

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/group.hpp"
#include "loft/common/ids.hpp"
#include "loft/common/message.hpp"
#include "loft/common/topic.hpp"

namespace loft::storage {

// Values the store persists, defined once in loft/common (Durability: what a successful
// write() guarantees).
using loft::DedupConflict;
using loft::Durability;
using loft::kDefaultDedupWindowMs;
using loft::TopicInfo;

// A consumer group's durable state: its settings and how far it has got. Written whenever
// acks move it (batched), and in the same write as the dead-letter append it records.
struct GroupRecord {
  TopicId topic;
  std::string name;
  std::int64_t created_at_ms = 0;
  // Settings (fixed at creation).
  std::uint32_t ack_timeout_ms = 30'000;
  std::uint32_t max_deliveries = 5;
  std::uint32_t backoff_base_ms = 1'000;
  std::uint32_t backoff_cap_ms = 60'000;
  std::vector<std::uint32_t> backoff_delays_ms;  // explicit list; empty = exponential
  std::string dead_letter_topic;
  // Only messages whose subject (the topic's name when a message has none) matches this filter
  // are delivered; the others are done without a delivery. Empty = every message.
  std::string filter;
  // Opaque bytes a front end keeps with the group (the NATS port: a consumer's settings that
  // are not group settings), at most broker::GroupLimits::kMaxAnnotationBytes. Empty = none.
  std::string annotation;
  // Per-key ordering and its look-ahead bound (GroupConfig; record version 5).
  Ordering ordering = Ordering::none;
  std::uint32_t key_lookahead = 0;
  // Progress: every offset below ack_floor is done; so is every offset in done_ranges
  // ([first, end) runs above the floor, sorted and disjoint).
  Offset ack_floor;
  std::vector<std::pair<Offset, Offset>> done_ranges;
  std::uint64_t dead_lettered = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t skipped = 0;  // offsets retention removed before the group had acked them
  bool operator==(const GroupRecord&) const = default;
};

// The dedup index entry of one message id in one topic: where the first message with that id
// was stored, when, and a hash of its payload (XXH64, seed 0).
struct DedupEntry {
  Offset offset;
  std::int64_t timestamp_ms = 0;
  std::uint64_t payload_hash = 0;
  bool operator==(const DedupEntry&) const = default;
};

// Whether a dedup entry published at `timestamp_ms` is past its topic's window at `now_ms`:
// timestamp_ms < now_ms - window_ms. At exactly the window's age it is still live. Written so
// that no value overflows (when timestamp < now, now - timestamp fits in a u64).
inline bool dedup_expired(std::int64_t timestamp_ms, std::uint64_t window_ms, std::int64_t now_ms) {
  return timestamp_ms<now_ms&& static_cast<std::uint64_t>(now_ms) -
                      static_cast<std::uint64_t>(timestamp_ms)>
      window_ms;
}

// Operations of one atomic write, applied in order.
struct PutTopic {  // create or update a topic's metadata (keyed by name)
  TopicInfo meta;
};
// Store one message; `message` must stay valid until write() returns. REQUIRES: `offset` is
// not held by the store yet (the broker hands each offset out once): a store may keep
// several records of consecutive messages, and an offset written twice would be in two.
struct Append {
  TopicId topic;
  Offset offset;
  std::int64_t timestamp_ms = 0;
  const Message* message = nullptr;
};
// Record that message id `id` of `topic` is stored (same batch as its Append); the bytes `id`
// views must stay valid until write() returns, as an Append's message must.
struct PutDedup {
  TopicId topic;
  std::string_view id;
  Offset offset;
  std::int64_t timestamp_ms = 0;
  std::uint64_t payload_hash = 0;
};
struct DropTopic {  // remove a topic's metadata, all its messages and its dedup entries
  TopicId id;
  std::string name;
};
struct SetNextTopicId {  // the lowest topic id never handed out; ids are never reused
  TopicId next;
};
struct PutGroup {  // create or update a group (keyed by topic id and group name)
  GroupRecord group;
};
struct DropGroup {
  TopicId topic;
  std::string name;
};
// Retention: remove every message of `topic` below `end` (one range delete; the caller
// advances the topic's first_offset with a PutTopic in the same batch). Dedup entries stay
// until their window expires.
struct TrimTopic {
  TopicId topic;
  Offset end;
};
// Delayed delivery (docs/semantics.md, "Delayed delivery"): keeps a copy of a message with a
// delivery time in the schedule, ordered by that time, until it is released. The broker puts
// it in the same batch as the message's Append (same topic, offset, timestamp and message),
// so that retention, a trim or a purge of the stored copy does not lose it. The due time is
// message->deliver_at_ms (REQUIRES: > 0); `message` must stay valid until write() returns.
struct Schedule {
  TopicId topic;
  Offset offset;
  std::int64_t timestamp_ms = 0;
  const Message* message = nullptr;
};
// Removes one schedule entry (the release writes it with the released copy's Append). Not
// an error when the entry is not there. A DropTopic leaves the topic's entries: they are
// ordered by due time, not by topic; the broker deletes them when they come due.
struct Unschedule {
  std::int64_t due_ms = 0;
  TopicId topic;
  Offset offset;
};
// DropTopic also drops every group of the topic.
using Op = std::variant<PutTopic, Append, DropTopic, SetNextTopicId, PutGroup, DropGroup, PutDedup,
                        TrimTopic, Schedule, Unschedule>;

// One schedule entry as read back: the Schedule op's fields, the message whole (its
// deliver_at_ms is due_ms).
struct ScheduledMessage {
  std::int64_t due_ms = 0;
  TopicId topic;
  Offset offset;
  std::int64_t timestamp_ms = 0;
  Message message;
  bool operator==(const ScheduledMessage&) const = default;
};

struct WriteBatch {
  std::vector<Op> ops;
  bool empty() const { return ops.empty(); }
};

struct ReadLimits {
  std::size_t max_messages = 1000;
  std::size_t max_bytes = 1 << 20;  // stops after the message that crosses it; at least one
};

// Messages read for delivery, not decoded into Message objects: `messages` are views into
// bytes the block owns (`buffers` for the RocksDB store: each record's run of read messages
// copied once; `decoded` for a store that has Message objects anyway), and `headers` holds
// every message's header views. Nothing in a block changes after the read that made it, so
// its views stay valid as long as the block lives: hold it by shared_ptr. (Dropping views from
// the end of `messages` is fine; nothing else may change.)
struct MessageBlock {
  std::vector<std::unique_ptr<char[]>> buffers;
  std::size_t buffer_bytes = 0;  // the sum of the buffers' sizes
  std::vector<StoredMessage> decoded;
  std::vector<HeaderView> headers;
  std::vector<StoredMessageView> messages;
};

// What the store says about itself, for monitoring. The memory store has no such figures.
struct StoreStats {
  bool available = false;                      // false: none of the figures below is known
  std::uint64_t live_data_bytes = 0;           // estimate of the live data on disk
  std::uint64_t memtable_bytes = 0;            // all memtables, active and unflushed
  std::uint64_t pending_compaction_bytes = 0;  // estimate of what compaction still has to rewrite
  std::uint64_t write_stops = 0;      // writes stopped since open (too many L0 files, etc.)
  std::uint64_t write_slowdowns = 0;  // writes delayed since open
};

class Store {
 public:
  virtual ~Store() = default;

  // All topics, as of the last successful write. Called at startup.
  virtual Result<std::vector<TopicInfo>> load_topics() = 0;

  // The last SetNextTopicId written, or TopicId{1} if there was none.
  virtual Result<TopicId> load_next_topic_id() = 0;

  // Every group of every topic, ordered by topic id, then name. Called at startup.
  virtual Result<std::vector<GroupRecord>> load_groups() = 0;

  // Applies every op atomically (all or nothing), durable as `durability` says.
  virtual Result<void> write(const WriteBatch& batch, Durability durability) = 0;

  // Messages of `topic` with offset >= from, in offset order, within `limits`.
  virtual Result<std::vector<StoredMessage>> read(TopicId topic, Offset from,
                                                  ReadLimits limits) const = 0;

  // The same messages as read(), as views into one block (never null on success). Delivery
  // copies their fields straight into DELIVER frames, with no Message, string or vector per
  // message. The default builds the block from read(), so a store (or a test decorator) that
  // overrides only read() is seen by every delivery read too; the RocksDB store overrides it.
  virtual Result<std::shared_ptr<MessageBlock>> read_block(TopicId topic, Offset from,
                                                           ReadLimits limits) const;

  // The dedup entry of message id `id` in `topic`, as of the last successful write; nullopt
  // if there is none. Entries are not expired here: the caller compares the timestamp with its
  // clock and the topic's window (the RocksDB store drops expired ones in compaction, so an
  // expired entry may or may not still be returned).
  virtual Result<std::optional<DedupEntry>> find_dedup(TopicId topic,
                                                       std::string_view id) const = 0;

  // find_dedup for several ids of one topic at once: element i is the entry of ids[i]. An id
  // may appear more than once. The broker's writer looks up all ids of a publish with one call,
  // so the RocksDB store can do one batched MultiGet instead of one Get per id (which cost most
  // of the writer's CPU with ids: docs/performance.md). Fails as a whole if any lookup fails.
  virtual Result<std::vector<std::optional<DedupEntry>>> find_dedups(
      TopicId topic, std::span<const std::string_view> ids) const = 0;

  // Schedule entries due in [from_due_ms, up_to_due_ms], in key order (due time, topic id,
  // offset), within `limits` (max_bytes counts the messages' size_bytes()). Entries below
  // from_due_ms are not looked at: the broker passes the lowest due time it may still hold, so
  // that a read does not step over the deletions of everything released before.
  virtual Result<std::vector<ScheduledMessage>> read_schedule(std::int64_t from_due_ms,
                                                              std::int64_t up_to_due_ms,
                                                              ReadLimits limits) const = 0;

  // Gives the disk space of dropped topics back (may run a compaction). Safe to skip.
  virtual Result<void> reclaim(TopicId dropped) = 0;

  // Gives back the disk space of `topic`'s messages below `end`, removed by a TrimTopic that
  // was written (a compaction of that key range). Safe to skip.
  virtual Result<void> reclaim_trimmed(TopicId topic, Offset end) = 0;

  // Writes a consistent copy of the whole store as of now into `dir`, which must not exist
  // (its parent must). Safe to call while write() runs on another thread; the copy holds
  // every write that completed before the call. The memory store cannot (invalid_request).
  virtual Result<void> checkpoint(const std::filesystem::path& dir) = 0;

  // Flushes in-memory state to disk (called on graceful shutdown).
  virtual Result<void> flush() = 0;

  // After a failed write(): tries to make the store writable again (the RocksDB store stops
  // taking writes after a write error until it is resumed). Succeeds at once if the store is
  // fine; fails, changing nothing, while the cause (a full disk) persists. Called by the
  // writer thread only.
  virtual Result<void> recover() { return {}; }
  // Monitoring figures; any thread. Not pure virtual: a store without figures (memory,
  // test decorators) reports none.
  virtual StoreStats stats() const { return {}; }
};

std::unique_ptr<Store> make_memory_store();

struct RocksDbOptions {
  std::filesystem::path dir;
  std::uint64_t block_cache_bytes = 64 << 20;
};
// Opens (creating if missing) the RocksDB store in options.dir.
Result<std::unique_ptr<Store>> open_rocksdb_store(const RocksDbOptions& options);

}  // namespace loft::storage
