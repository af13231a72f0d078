#pragma once
// Consumer groups: subscriptions, deliveries, settles, dead letters and the persistence of
// each group's progress. One delivery::GroupState per group decides; this class carries the
// decisions out: it reads the messages to deliver, hands them to subscribers as views of the
// stored messages (each front end encodes them for its own wire), and
// writes group progress (and dead letters) through the Broker's single write path.
//
// Thread: not thread-safe. It lives on the thread that serves the connections (loftd's io
// thread). Broker completions arrive on the writer thread; `post` must run a function on the
// owner thread, and every completion is routed through it.
//
// Persistence: at most one group write is in flight per group. Acks mark the group dirty; when
// no write is in flight the current progress is written at once, so acks arriving meanwhile
// are batched into the next write. A dead-letter append carries the group progress that
// retires the original in the same atomic write. A settle with `confirm` is answered once a
// write that includes it is durable.

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/common/group.hpp"
#include "loft/delivery/group_state.hpp"

namespace loft::broker {

using delivery::TimePoint;

// One message handed to a subscriber: a view of the stored message and its attempt number
// (1 for the first delivery).
struct DeliveredView {
  std::uint32_t attempt = 1;
  const StoredMessageView* message = nullptr;
};
// Messages for one subscription, in ascending offset order. Every view (topic, group, the
// messages and their bytes) is valid only during Subscriber::deliver: encode, do not keep.
struct DeliveryBatch {
  std::uint64_t subscription = 0;
  std::string_view topic;
  std::string_view group;
  std::span<const DeliveredView> messages;  // at least one
};

// The connection side of a subscription, implemented by each front end's session.
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // False while the connection's send queue is over its bound: no deliveries are made to its
  // subscriptions until on_ready() is called for it.
  virtual bool ready() const = 0;
  // Sends `batch` on the subscriber's wire (as many frames as its wire needs).
  virtual void deliver(const DeliveryBatch& batch) = 0;
  virtual std::string client_name() const = 0;
  // How many more messages `subscription` takes now, on top of its max_in_flight bound: a
  // subscriber that asks for messages (a NATS pull consumer's waiting requests) says how many
  // it asked for; 0 holds its deliveries until it calls on_ready(). Unbounded by default.
  virtual std::uint32_t credit(std::uint64_t subscription) const {
    (void)subscription;
    return std::numeric_limits<std::uint32_t>::max();
  }
};

// SUBSCRIBE: join `group` of `topic` (creating the group, from `start` with `config`, if it does
// not exist yet). max_in_flight 0 = the default.
struct SubscribeRequest {
  std::string topic;
  std::string group;
  StartPosition start;
  std::uint32_t max_in_flight = 0;
  GroupConfig config;
};
struct Subscribed {
  std::uint64_t subscription = 0;  // names it in settle, unsubscribe and every delivery
  bool created = false;            // the group was created by this subscribe
  Offset ack_floor;
};

// Settle offsets delivered to `subscription`: offsets that are not in flight to it are ignored.
struct SettleRequest {
  std::uint64_t subscription = 0;
  SettleAction action = SettleAction::ack;
  bool confirm = false;                   // answer only once the outcome is durable
  std::optional<std::uint32_t> delay_ms;  // nack: redeliver after this; nullopt = the backoff
  std::vector<OffsetRun> runs;
};
struct Settled {
  std::uint32_t applied = 0;  // offsets that were in flight to this subscription
  std::uint32_t ignored = 0;  // offsets that were not (unknown, foreign, already settled)
  bool operator==(const Settled&) const = default;
};

struct CreateGroupRequest {
  std::string topic;
  std::string group;
  StartPosition start;
  GroupConfig config;
};

struct GroupDefaults {
  std::uint32_t ack_timeout_ms = 30'000;
  std::uint32_t max_deliveries = 5;
  std::uint32_t backoff_base_ms = 1'000;
  std::uint32_t backoff_cap_ms = 60'000;
  double backoff_factor = 2.0;
  double backoff_jitter = 0.2;
  std::uint32_t max_in_flight = 1000;
  std::uint32_t max_settle_offsets = 65536;  // offsets one SETTLE may name in total
  // Ordered groups: messages held back behind keys with a message out (GroupConfig).
  std::uint32_t key_lookahead = 10'000;
};

// Valid ranges of the group settings, in one place (docs/protocol.md, "GroupConfig"). A 0 in
// any numeric field of a request means the server's default; every other value must lie in
// its range, and the effective values (defaults filled in) must too.
struct GroupLimits {
  static constexpr std::uint32_t kMinAckTimeoutMs = 100;        // below: redelivery storms
  static constexpr std::uint32_t kMaxAckTimeoutMs = 3'600'000;  // 1 h; longer work extends
  static constexpr std::uint32_t kMaxDeliveries = 1000;
  static constexpr std::uint32_t kMinBackoffMs = 1;
  static constexpr std::uint32_t kMaxBackoffMs = 3'600'000;  // base, cap and each listed delay
  static constexpr std::size_t kMaxBackoffDelays = 64;
  // GroupConfig::annotation: bounded, as it rides on every progress write of its group.
  static constexpr std::size_t kMaxAnnotationBytes = 8192;
  // key_lookahead: each held-back message costs its key's bytes and an offset in memory.
  static constexpr std::uint32_t kMaxKeyLookahead = 1'000'000;
};

// The settings a new group of `topic` gets: `requested` with the defaults filled in (and the
// default dead-letter topic), or an error naming the first setting outside its range:
// invalid_request, or invalid_name for a dead-letter topic that is not a valid topic name.
Result<GroupConfig> effective_group_config(std::string_view topic, const GroupConfig& requested,
                                           const GroupDefaults& defaults);

// An annotation of at most GroupLimits::kMaxAnnotationBytes, else invalid_request.
Result<void> validate_annotation(std::string_view annotation);

// The dead-letter topic of a group whose config names none: `<topic>.dlq` while that is a
// valid topic name (up to 249 bytes), otherwise the topic's first 228 bytes, '.', the 16
// lowercase hex digits of XXH64(topic, seed 0) and '.dlq' (249 bytes; docs/semantics.md).
std::string default_dead_letter_topic(std::string_view topic);

// A message of a group became a dead letter: its copy on the dead-letter topic is durable.
// Views valid during the call only.
struct DeadLettered {
  std::string_view topic;
  std::string_view group;
  Offset offset;
  std::uint32_t attempts = 0;  // deliveries made before it was dead-lettered
  delivery::DeadLetterReason reason = delivery::DeadLetterReason::max_deliveries;
};

// What happened in a group since this process started (counters restart at 0).
struct GroupCounters {
  std::uint64_t delivered = 0;      // messages sent to a consumer, redeliveries included
  std::uint64_t redelivered = 0;    // of those, attempts after the first
  std::uint64_t acked = 0;          // acks that settled an in-flight message
  std::uint64_t nacked = 0;         // nacks and rejects that settled an in-flight message
  std::uint64_t dead_lettered = 0;  // messages whose dead-letter copy is durable
};

struct GroupMetrics {
  std::string topic;
  std::string group;
  GroupCounters counters;
  std::uint64_t lag = 0;        // offsets in [ack_floor, end) not yet done
  std::uint64_t in_flight = 0;  // delivered, awaiting a settle
  // Offsets retention removed before the group finished them; persisted with the group, so it
  // counts since the group was created, not since loftd started.
  std::uint64_t skipped = 0;
};

class Groups {
 public:
  using Post = std::function<void(std::function<void()>)>;

  Groups(Broker& broker, GroupDefaults defaults, Post post);
  ~Groups();
  Groups(const Groups&) = delete;
  Groups& operator=(const Groups&) = delete;

  // Restores the groups the broker loaded at startup.
  void load();

  void subscribe(SubscribeRequest req, Subscriber* who, TimePoint now, Callback<Subscribed> done);
  Result<void> unsubscribe(std::uint64_t subscription, const Subscriber* who, TimePoint now);
  // The connection is gone: all its subscriptions end, their in-flight messages go back.
  void drop_subscriber(const Subscriber* who, TimePoint now);
  void settle(const SettleRequest& req, const Subscriber* who, TimePoint now,
              Callback<Settled> done);

  void create_group(CreateGroupRequest req, TimePoint now, Callback<GroupInfo> done);
  Result<std::vector<GroupInfo>> list_groups(std::string_view topic) const;
  Result<GroupInfo> describe_group(std::string_view topic, std::string_view group) const;
  void delete_group(const std::string& topic, const std::string& group, TimePoint now,
                    Callback<void> done);
  // Replaces the group's annotation (GroupConfig::annotation); `done` runs once it is durable,
  // with the group. The other settings stay as they are.
  void annotate(std::string topic, std::string group, std::string annotation, TimePoint now,
                Callback<GroupInfo> done);
  // Replaces the group's annotation in memory only, with no write of its own: it reaches the
  // disk with the group's next write (a settle's progress, annotate()). For what a front end
  // may lose since that write (the NATS port's delivery count). False if there is no such
  // group or the annotation is too large.
  bool keep_annotation(std::string_view topic, std::string_view group, std::string annotation);
  // Changes the max_in_flight of `subscription` from now on (0 = the default): a raise delivers
  // more at once, a cut delivers nothing more until it is under it. False if there is no such
  // subscription.
  bool set_max_in_flight(std::uint64_t subscription, std::uint32_t max_in_flight, TimePoint now);
  // Moves the group to `to`: everything before it is done, nothing after it is.
  void reset_group(std::string topic, std::string group, StartPosition to, TimePoint now,
                   Callback<GroupInfo> done);

  // Events.
  void on_topic_events(const std::vector<TopicEvent>& events, TimePoint now);
  void on_timer(TimePoint now);
  void on_ready(const Subscriber* who, TimePoint now);
  // When on_timer should next be called (nullopt: nothing waits on time).
  std::optional<TimePoint> next_deadline() const;

  // Called (on the owner thread) for every dead letter once it is durable; one listener (the
  // NATS port's advisories), none by default. The listener must not call into Groups.
  void on_dead_lettered(std::function<void(const DeadLettered&)> listener) {
    dead_lettered_ = std::move(listener);
  }

  std::size_t group_count() const { return groups_.size(); }
  // Every group, ordered by topic then group name.
  std::vector<GroupMetrics> metrics() const;

  // Shutdown: queues a write of every group's current progress that is not known to be on
  // disk, whether or not a write is in flight (the broker's queue keeps them in order).
  // Completions are not waited for.
  void write_all_on_stop();

 private:
  struct Group;
  struct Subscription {
    std::uint64_t id = 0;
    Group* group = nullptr;
    Subscriber* who = nullptr;
    std::uint32_t max_in_flight = 0;
  };

  Group* find(std::string_view topic, std::string_view group) const;
  struct NewGroup {
    TopicInfo topic;
    GroupConfig config;  // effective
  };
  Result<NewGroup> check_new_group(const std::string& topic, const std::string& group,
                                   const GroupConfig& config) const;
  // Where `start` is on `topic` now; a group `creating` on a work-queue topic starts at its
  // first offset whatever `start` says.
  Result<Offset> resolve_start(const std::string& topic, const StartPosition& start, bool creating);
  // `config`: effective (check_new_group).
  std::unique_ptr<Group> make_group(const TopicInfo& topic, std::string name,
                                    const GroupConfig& config, Offset start);
  void create_then(std::unique_ptr<Group> group, std::function<void(Result<Group*>)> then);
  void pump(Group& g, TimePoint now);
  // A filtered or ordered group: one store read beyond what the group has looked at, the
  // messages that do not match the filter marked done, the keys of the others told to an
  // ordered group, the matching ones kept as the read-ahead. False if the read failed or found
  // nothing stored (retried at the next event, not in a loop).
  bool filter_ahead(Group& g);
  // Returns how many delayed messages' stored copies it passed over (acked, not delivered).
  std::size_t send_deliveries(Group& g, std::vector<delivery::Delivery> list);
  // Messages to deliver, as views, with the blocks that hold their bytes.
  struct Run {
    std::vector<std::shared_ptr<const storage::MessageBlock>> blocks;
    std::vector<const StoredMessageView*> messages;  // ascending offsets
    // Adds block's messages from index `from` on, up to offset `end` (exclusive).
    void add(const std::shared_ptr<const storage::MessageBlock>& block, std::size_t from,
             std::uint64_t end);
  };
  // The stored messages at offsets [first, first + count), from the group's read-ahead and the
  // store; fewer if some are not stored any more (the topic is being deleted or trimmed); an
  // error if the store failed. Reads ahead past the run only if `read_ahead` (the run goes on
  // into offsets not delivered before).
  Result<Run> read_run(Group& g, Offset first, std::size_t count, bool read_ahead);
  // The read-ahead (block's messages from index `next` on) and its byte counts, per group and
  // in all (read_ahead_total_), kept here.
  void keep_ahead(Group& g, std::shared_ptr<const storage::MessageBlock> block, std::size_t next);
  void clear_ahead(Group& g);
  // An ordered group's examined blocks (Group::key_blocks): keep one (false when the group's
  // share or the budget is full), let go of those whose last offset is below `below`, and the
  // run [first, end) from them when they hold all of it (nullopt otherwise).
  bool keep_key_block(Group& g, const std::shared_ptr<const storage::MessageBlock>& block);
  void drop_key_blocks(Group& g, Offset below);
  static std::optional<Run> from_key_blocks(const Group& g, Offset first, std::uint64_t end);
  void start_write(Group& g);
  void end_subscription(std::uint64_t id, TimePoint now);
  void remove_group(Group& g);
  GroupInfo info(const Group& g) const;
  // The group's record: its settings, and its progress once `retiring` (dead letters whose
  // append this write carries) are done.
  storage::GroupRecord record_of(const Group& g,
                                 std::span<const delivery::DeadLetter> retiring = {}) const;

  // The indexes below are kept by these three, the only places that add or remove a group.
  void add_group(std::unique_ptr<Group> group);
  void erase_group(Group& g);
  // A subscription's end, in subscriptions_ and by_subscriber_.
  void erase_subscription(std::uint64_t id);
  // When the group next needs a pump (its state's deadline, a retry, more to filter), if ever.
  std::optional<TimePoint> wake_time(const Group& g) const;
  // The group's wake time may have changed: it is looked at again before the next deadline
  // is given or the next timer runs (arm_touched).
  void touch(Group& g) const;
  void arm_touched() const;

  Broker& broker_;
  GroupDefaults defaults_;
  Post post_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Group>, std::less<>> groups_;
  std::unordered_map<std::uint64_t, Subscription> subscriptions_;
  // So that an event, a timer or a ready connection touches only the groups it concerns, not
  // every group of the broker (with 10,000 groups a scan per event cost more than the event).
  std::unordered_map<std::uint64_t, Group*> by_incarnation_;
  std::unordered_map<std::uint32_t, std::vector<Group*>> by_topic_;  // by topic id
  std::unordered_map<const Subscriber*, std::vector<std::uint64_t>> by_subscriber_;
  // Wake times, earliest first. An entry is live while its group exists and has it as its
  // armed_at; others are stale and dropped when they reach the top. A group adds an entry only
  // for a time earlier than the one it has armed, so a group has at most one live entry and
  // the stale ones are bounded by the times a group's wake time moved earlier.
  struct Wake {
    TimePoint at;
    std::uint64_t incarnation = 0;
    bool operator>(const Wake& o) const { return at > o.at; }
  };
  mutable std::priority_queue<Wake, std::vector<Wake>, std::greater<>> wakes_;
  mutable std::vector<std::uint64_t> touched_;  // incarnations, each once (Group::touched)
  std::size_t read_ahead_total_ = 0;            // bytes in every group's read-ahead
  std::uint64_t next_subscription_ = 1;
  std::uint64_t seed_ = 1;
  TimePoint last_now_{};  // the latest `now` seen, for retry times set in completions
  // Set to false by the destructor, so completions still queued on the owner thread do
  // nothing once the Groups object is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::function<void(const DeadLettered&)> dead_lettered_;
};

}  // namespace loft::broker
