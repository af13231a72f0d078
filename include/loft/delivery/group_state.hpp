#pragma once
// The delivery state machine of one consumer group on one topic. Pure: no sockets, no
// storage, no clock reads, no threads. Events go in (a consumer joined or left, new messages
// are durable, ack, nack, extend, reject, time passed); decisions come out (deliver these
// offsets to that consumer, dead-letter this offset); the caller carries them out and persists
// `snapshot()` when it changes.
//
// Vocabulary (see docs/semantics.md):
//  - ack floor: every offset below it is done (acked or dead-lettered) for this group.
//  - done: acked, or dead-lettered (after the dead-letter append is durable).
//  - in flight: delivered to exactly one consumer, not yet done; has an ack deadline.
//  - scheduled: waiting to be redelivered at a due time (after a timeout, a nack or its
//    consumer leaving).
//  - attempt: 1 on the first delivery of an offset to this group, +1 on each redelivery.
//
// Ordering: poll() first hands out scheduled offsets that are due, lowest offset first, then
// never-delivered offsets in offset order. Each consumer gets at most `max_in_flight` in
// flight. Consumers are served round-robin, in the order they joined.
//
// Per-key ordering (GroupOptions::ordering = key, docs/semantics.md "Per-key ordered
// delivery"): the caller tells the key of every message it looks at (set_key), as a filtered
// group's caller does for the filter. Among the messages with the same non-empty key, at most one
// is *owned* at a time: handed out, in flight, scheduled for redelivery or waiting to be
// dead-lettered. The next one of the key, in offset order, is handed out only once the owner is
// done (acked or dead-lettered). A nack, timeout or a consumer leaving reschedules the owner, so
// the same message comes again first. Offsets whose key is owned are *held back*; poll() walks
// past them to other keys, holding back at most `key_lookahead` offsets in all, and then waits
// (stats().key_blocked). Messages without a key are not ordered.
//
// Thread: not thread-safe; one owner calls everything.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/group.hpp"
#include "loft/common/ids.hpp"
#include "loft/delivery/done_runs.hpp"

namespace loft::delivery {

// Nanoseconds, steady_clock's own resolution: loftd passes the steady clock's time as it is, so a
// deadline or due time is never computed from a truncated `now`. (With milliseconds, a nack at
// 100.7 ms with a 5 ms delay read `now` as 100 ms and came due at 105 ms: 0.7 ms early.)
// Settings in milliseconds convert to it exactly; write them as std::chrono::milliseconds, not
// as a bare count.
using Duration = std::chrono::nanoseconds;
// Monotonic time as the caller measures it (steady_clock in loftd, a fake in tests).
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

// Delay before a redelivery after attempt `n` failed (ack timeout, or nack without a delay).
struct Backoff {
  // Exponential: base * factor^(n-1), capped at `cap`, then jittered by a uniformly random
  // fraction in [-jitter, +jitter] of itself (jitter = 0.2 → ±20%), never below 0.
  Duration base = std::chrono::milliseconds{1000};
  double factor = 2.0;
  Duration cap = std::chrono::milliseconds{60'000};
  double jitter = 0.2;
  // If not empty, replaces the exponential rule: delays[n-1], the last one repeating for
  // higher attempts. No jitter is applied to an explicit list.
  std::vector<Duration> delays;

  Duration delay_after(std::uint32_t attempt, std::mt19937_64& rng) const;
};

using loft::Ordering;

struct GroupOptions {
  Duration ack_timeout = std::chrono::milliseconds{30'000};
  // After this many attempts have failed, the offset is dead-lettered instead of being
  // scheduled again. 0 = never dead-letter on attempts (only reject does).
  std::uint32_t max_deliveries = 5;
  Backoff backoff;
  // The caller filters the group's messages (a group with a subject filter): poll() hands out
  // a never-delivered offset only once the caller has looked at it (examined()), and the
  // caller marks those that do not match done with filter_out().
  bool filtered = false;
  // Per-key ordering (see the file comment). Last, with initializers, so aggregate
  // initialisations written before it keep their meaning.
  Ordering ordering = Ordering::none;
  // Ordered groups: at most this many offsets are held back behind owned keys (memory: one key
  // per owned offset, plus these). REQUIRES >= 1.
  std::uint32_t key_lookahead = 10'000;
};

struct Delivery {
  ConsumerId consumer;
  Offset offset;
  std::uint32_t attempt = 1;
  bool operator==(const Delivery&) const = default;
};

enum class DeadLetterReason { max_deliveries, rejected };

struct DeadLetter {
  Offset offset;
  std::uint32_t attempts = 0;  // deliveries made before it was dead-lettered
  DeadLetterReason reason = DeadLetterReason::max_deliveries;
  bool operator==(const DeadLetter&) const = default;
};

// [first, end): a run of offsets.
struct OffsetRange {
  Offset first;
  Offset end;
  bool operator==(const OffsetRange&) const = default;
};

// What outlives a restart: enough to never redeliver a done offset. Done offsets above the
// floor are kept as runs, so a long stretch of acks behind one slow message stays small.
struct Snapshot {
  Offset ack_floor;
  std::vector<OffsetRange> done_above_floor;  // sorted, disjoint, non-adjacent, above floor
  std::uint64_t dead_lettered = 0;            // counters, for describe
  std::uint64_t redelivered = 0;
  std::uint64_t skipped = 0;
  bool operator==(const Snapshot&) const = default;
};

// Outcome of ack/nack/extend/reject for one offset. Errors are values, never state damage:
//  not_in_flight: the offset is not in flight to this consumer: unknown or never delivered,
//                 in flight to another consumer (e.g. redelivered to it after a timeout),
//                 scheduled (e.g. timed out and waiting for its redelivery), done, waiting
//                 to be dead-lettered, or dropped by reset(). Settles name offsets, not
//                 attempts: an offset that timed out and was then redelivered to this same
//                 consumer is in flight to it again, so a late settle meant for the earlier
//                 attempt is ok and applies to the new delivery.
enum class AckResult { ok, not_in_flight };

struct ConsumerStats {
  ConsumerId consumer;
  std::uint32_t max_in_flight = 0;
  std::uint32_t in_flight = 0;
};

struct GroupStats {
  Offset ack_floor;
  Offset end;  // the topic's next offset as last told by on_appended
  std::uint64_t in_flight = 0;
  std::uint64_t scheduled = 0;      // waiting for redelivery (backoff, nack delay)
  std::uint64_t lag = 0;            // offsets in [ack_floor, end) that are not done
  std::uint64_t dead_lettered = 0;  // total, since the group was created
  std::uint64_t redelivered = 0;    // total redeliveries (attempt >= 2) handed out
  std::uint64_t skipped = 0;        // total offsets skipped by skip_to (retention)
  std::vector<ConsumerStats> consumers;
  // Ordered groups: offsets held back behind an owned key (never above key_lookahead), and
  // whether poll() stopped at that bound with more to look at; then `blocking_key` is the key
  // of the lowest held-back offset (its owner is the oldest message that holds the group back).
  std::uint64_t held_back = 0;
  bool key_blocked = false;
  std::string blocking_key;
};

class GroupState {
 public:
  // A new group that starts delivering at `start` (earliest, latest or an offset resolved by
  // the caller). `seed` drives the backoff jitter, so tests are reproducible.
  GroupState(GroupOptions options, Offset start, std::uint64_t seed = 1);
  // A group restored after a restart: nothing is in flight; every offset at or above the
  // floor that is not done will be delivered again (attempt counts restart at 1).
  GroupState(GroupOptions options, const Snapshot& snapshot, std::uint64_t seed = 1);
  GroupState(GroupState&&) noexcept = default;
  // Not assignable: the containers keep the allocator of the pool they were built with.
  GroupState& operator=(GroupState&&) = delete;

  // Consumers. A consumer that is already present gets its max_in_flight updated.
  void add_consumer(ConsumerId consumer, std::uint32_t max_in_flight);
  // Its in-flight offsets become scheduled, due `now` (no backoff: another consumer can take
  // them at once); their attempt counts are kept.
  void remove_consumer(ConsumerId consumer, TimePoint now);

  // The topic's log now ends at `end` (next offset); offsets below it are deliverable.
  void on_appended(Offset end);

  // Hands out what can be delivered at `now`, within every consumer's credit. Each returned
  // offset is in flight from now on with deadline now + ack_timeout.
  std::vector<Delivery> poll(TimePoint now);

  AckResult ack(ConsumerId consumer, Offset offset);
  // Redeliver after `delay`, or after the backoff for this attempt if no delay is given. If
  // the attempts are used up (max_deliveries), the offset is dead-lettered instead.
  AckResult nack(ConsumerId consumer, Offset offset, std::optional<Duration> delay, TimePoint now);
  // Restart the ack timer: deadline = now + ack_timeout.
  AckResult extend(ConsumerId consumer, Offset offset, TimePoint now);
  // Dead-letter now, whatever the attempt.
  AckResult reject(ConsumerId consumer, Offset offset);

  // Moves in-flight offsets whose deadline <= now to scheduled (due now + backoff) or, when
  // their attempts are used up, to the dead-letter list.
  void expire(TimePoint now);
  // The earliest time at which expire() or poll() could do something: the lowest ack
  // deadline or scheduled due time. nullopt when nothing is waiting on time. Offsets that a
  // poll() already found due but could not hand out for lack of credit do not count (only new
  // credit moves them, so call poll() after an ack, nack, reject or add_consumer): after
  // expire(now) and poll(now) the result is never <= now, so a timer armed on it never spins.
  std::optional<TimePoint> next_deadline() const;

  // Offsets to move to the dead-letter topic, in offset order; each is handed out once. Until
  // dead_lettered() is called for it, the offset is neither delivered nor done.
  std::vector<DeadLetter> take_dead_letters();
  // The dead-letter append is durable: the offset is done.
  void dead_lettered(Offset offset);
  // The dead-letter append failed: try again (take_dead_letters returns it again).
  void dead_letter_failed(const DeadLetter& letter);

  // Moves the group: everything below `to` is done, nothing is in flight or scheduled, and
  // delivery continues at `to`. (loft group reset)
  void reset(Offset to);

  // A filtered group (GroupOptions::filtered): every offset below examined() has been looked
  // at by the caller, and those that did not match were passed to filter_out(); poll() hands
  // out new offsets below it only. Starts at the ack floor (a new, restored or reset group), and
  // is never below it. For a group that is not filtered: end().
  Offset examined() const;
  // `offset` (at or above examined()) does not match the filter: it is done without ever being
  // delivered. Ignored below examined() and when already done; returns whether it changed the
  // state (so the caller persists only real changes).
  bool filter_out(Offset offset);
  // The caller has looked at every offset below `end` (filtering out those that do not match).
  void examined_to(Offset end);
  // Offsets below examined() that are neither done nor handed out yet: matching messages that
  // wait for a consumer's credit. A caller reads ahead of the deliveries only while these are
  // few, so the done runs between them (and the stored progress) stay bounded. O(runs) above
  // the lowest offset never handed out.
  std::uint64_t waiting_new() const;
  Offset end() const { return end_; }

  // An ordered group (GroupOptions::ordering = key): the message at `offset` has the non-empty
  // key `key`. Called for each such offset the caller looks at, in increasing offset order, at or
  // above examined() and before examined_to() passes it; offsets not named have no key. An
  // ordered group, like a filtered one, hands out only what the caller has looked at.
  void set_key(Offset offset, std::string_view key);

  // Retention removed every offset below `first`: the floor moves up to it if it is below.
  // Offsets below `first` that were not done are skipped: counted (returned, and added to
  // stats().skipped) and forgotten, in flight ones included (their consumers' credit comes
  // back; a late ack of one is not_in_flight). Dead letters whose append is already taken
  // are not counted: dead_lettered() still completes them. Returns 0 if the floor is at or
  // above `first`.
  std::uint64_t skip_to(Offset first);

  Offset ack_floor() const { return ack_floor_; }
  Snapshot snapshot() const;
  // The snapshot as it will be once the dead-letter appends of `retiring` are durable: each
  // offset done (by the same rule as dead_lettered()) and counted in dead_lettered.
  Snapshot snapshot(std::span<const DeadLetter> retiring) const;
  GroupStats stats() const;
  // Whether `consumer` has in-flight offsets (for invariants in tests).
  std::uint32_t in_flight_of(ConsumerId consumer) const;
  bool is_done(Offset offset) const;

 private:
  using DueIndex = std::pmr::set<std::pair<TimePoint, Offset>>;
  struct InFlight {
    ConsumerId consumer;
    std::uint32_t attempt = 1;
    TimePoint deadline;
    // Its entry in deadlines_: an ack erases it without searching the set.
    DueIndex::iterator due;
  };
  struct Scheduled {
    std::uint32_t attempt = 1;  // attempts made so far
    TimePoint due;
  };
  struct Consumer {
    std::uint32_t max_in_flight = 0;
    std::uint32_t in_flight = 0;
    std::uint64_t joined = 0;  // join order, for round-robin
  };
  struct OffsetHash {
    std::size_t operator()(Offset o) const noexcept { return std::hash<std::uint64_t>{}(o.value); }
  };
  // Unordered: deliver and ack find, insert and erase one offset each, and a hash table does
  // that in constant time (the tree it replaced and the deadline set's searches were together about
  // 9 % of the io thread in a drain,
  // docs/performance.md). Nothing needs the offsets in order.
  using InFlightMap = std::pmr::unordered_map<Offset, InFlight, OffsetHash>;

  void mark_done(Offset offset);
  // Removes `offset` from in_flight_ (and its deadline and its consumer's credit use).
  InFlight take_in_flight(InFlightMap::iterator it);
  // An attempt failed (timeout or nack): schedule again after `delay` (or the backoff), or
  // dead-letter if the attempts are used up.
  void retry_or_dead_letter(Offset offset, std::uint32_t attempt, std::optional<Duration> delay,
                            TimePoint now);
  void schedule(Offset offset, std::uint32_t attempt, TimePoint due);
  // The next consumer in join order after the one served last that has credit, or nullptr.
  Consumer* next_consumer_with_credit(ConsumerId& id);
  void deliver(std::vector<Delivery>& out, Offset offset, std::uint32_t attempt, TimePoint now);
  // Whether poll() waits for the caller to look at offsets (filtered or ordered).
  bool looks_ahead() const { return options_.filtered || options_.ordering == Ordering::key; }
  // Ordered groups: the never-delivered offsets from next_new_ on, in order, skipping those held
  // back, until credit, `limit` or the look-ahead bound stops it.
  void poll_ordered_new(std::vector<Delivery>& out, Offset limit, TimePoint now);
  // Ordered groups: `offset` is done (or forgotten); if it owned its key, the key passes to the
  // next held-back offset of the key (ready to hand out), or becomes free.
  void release_key(Offset offset);
  void forget_keys_below(Offset first);

  GroupOptions options_;
  std::mt19937_64 rng_;
  Offset ack_floor_;
  Offset next_new_;  // lowest offset never handed out (done runs above it are skipped)
  Offset end_;       // topic end as last told
  Offset examined_;  // filtered groups: every offset below it (or below the floor) was looked at
  // Done offsets above the floor as runs first -> end ([first, end)): disjoint, non-adjacent,
  // none starting at the floor (it would have been folded into the floor). O(runs) memory.
  DoneRuns done_runs_;
  // Node storage of the per-delivery containers below: every delivery and its ack allocate
  // and free a node in each, in bursts of up to max_in_flight, and the pool reuses them
  // without malloc (docs/performance.md). On the heap, so a moved GroupState keeps it.
  std::unique_ptr<std::pmr::unsynchronized_pool_resource> pool_ =
      std::make_unique<std::pmr::unsynchronized_pool_resource>();
  InFlightMap in_flight_{pool_.get()};
  DueIndex deadlines_{pool_.get()};  // (deadline, offset) of every in-flight offset
  std::map<Offset, Scheduled> scheduled_;
  DueIndex waiting_{pool_.get()};  // scheduled, not yet due at the last poll
  std::set<Offset> ready_;         // scheduled and due, waiting for credit (offset order)
  std::map<Offset, DeadLetter> dead_letter_pending_;  // waiting to be taken
  std::map<Offset, DeadLetter> dead_letter_taken_;    // taken, append not yet durable
  std::map<ConsumerId, Consumer> consumers_;
  std::map<std::uint64_t, ConsumerId> join_order_;  // joined -> consumer
  std::uint64_t next_join_ = 1;
  std::uint64_t last_served_ = 0;  // `joined` of the consumer served last (0: none yet)
  std::uint64_t dead_lettered_ = 0;
  std::uint64_t redelivered_ = 0;
  std::uint64_t skipped_ = 0;

  // Ordered groups only (empty otherwise).
  struct KeyState {
    Offset owner;             // handed out (or about to be) and not done
    std::deque<Offset> held;  // the key's later offsets, in order
  };
  struct KeyHash {
    using is_transparent = void;  // NOLINT(readability-identifier-naming): the std name
    std::size_t operator()(std::string_view k) const noexcept {
      return std::hash<std::string_view>{}(k);
    }
  };
  using KeyMap = std::unordered_map<std::string, KeyState, KeyHash, std::equal_to<>>;
  KeyMap keys_;  // every owned key
  // Owner offset -> its key's entry (element pointers stay valid across rehashing).
  std::unordered_map<Offset, KeyMap::value_type*, OffsetHash> owned_;
  // Keys of offsets at or above next_new_ the caller has looked at, in offset order.
  std::deque<std::pair<Offset, std::string>> new_keys_;
  std::set<Offset> unblocked_;     // owners released from `held`, waiting for credit
  std::uint64_t held_ = 0;         // offsets in every key's `held`
  bool stopped_at_bound_ = false;  // the last poll stopped at an owned key with held_ at the bound
};

}  // namespace loft::delivery
