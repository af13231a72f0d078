#pragma once
// The broker: the table of topics and the single write path into storage.
//
// Ownership and threads. A Broker owns the Store and one writer thread. Every mutation (create
// topic, delete topic, publish) is queued to the writer, which takes everything that is pending,
// turns it into ONE storage WriteBatch, writes it with the configured durability (one sync for
// many requests: group commit; a commit of only group progress that asked for no sync is not
// synced, see GroupWrite::durability) and then completes every request in queue order. Offsets are
// assigned on the writer thread, in queue order, only for requests in the batch being written;
// a failed write hands out no offsets, so a topic's log never has gaps.
//
// Completion callbacks run on the writer thread: they must be quick and must not call back
// into the Broker's mutating functions synchronously (post to your own executor instead).
// Reads (list, describe, fetch) may be called from any thread.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/message.hpp"
#include "loft/common/subject.hpp"
#include "loft/common/topic.hpp"
#include "loft/storage/store.hpp"

namespace loft::broker {

// Whether the storage takes writes, as the writer last saw it: for the log, readiness checks
// and metrics.
struct StorageHealth {
  // False from a failed storage write until a write or a recovery succeeds. While false,
  // publishes, topic changes and group progress fail with the storage's error.
  bool writable = true;
  std::string last_error;  // the last failed write's error ("storage full: disk full: ..."); kept
  std::uint64_t failed_writes = 0;      // storage writes that failed since start
  std::uint64_t episodes = 0;           // times `writable` went from true to false
  std::uint64_t recovery_attempts = 0;  // Store::recover() calls made while unwritable
  bool operator==(const StorageHealth&) const = default;
};
inline constexpr std::uint64_t kMinMaxAgeMs = 1'000;                            // 1 s
inline constexpr std::uint64_t kMaxMaxAgeMs = 100ULL * 365 * 24 * 3600 * 1000;  // 100 years

// Checks a change: max_age is 0 or 1 s..100 years; sizes and counts are any u64.
Result<void> validate_retention(const RetentionChange& change);
// `limits` with what `change` sets.
RetentionLimits apply_retention(RetentionLimits limits, const RetentionChange& change);
// The lowest offset that max_messages and max_age keep: `age_start` is the first offset
// published at or after now - max_age (nullopt when the topic has no max_age).
Offset first_kept_by_count_and_age(const TopicInfo& topic, std::optional<Offset> age_start);

inline constexpr std::uint64_t kDefaultMaxDeliveryDelayMs = 30ULL * 24 * 3600 * 1000;  // 30 d

struct Options {
  Durability durability = Durability::fsync;
  // What one message may hold: every publish is checked against it, whatever front end it
  // came through.
  MessageLimits message_limits;
  bool auto_create_topics = false;
  // Upper bound on what one group commit takes from the queue; the rest waits for the next.
  std::size_t max_commit_messages = 16384;
  std::size_t max_commit_bytes = 32 << 20;
  // Publish timestamps and topic creation times, in ms since the Unix epoch. Injected so
  // tests can fix time.
  std::function<std::int64_t()> now_ms;
  // While the storage is unwritable, the writer calls Store::recover() at most this often:
  // before a commit, or after this long without one, so it comes back without traffic too.
  std::chrono::milliseconds storage_retry_interval{1000};
  // Called on the writer thread each time StorageHealth::writable changes (once per episode,
  // not per failed write), so the daemon can log it. Must be quick.
  std::function<void(const StorageHealth&)> on_storage_health;
  // Limits of a topic whose creation does not set them.
  RetentionLimits default_retention;
  // How often the background thread enforces retention; 0 = only run_retention_pass() does.
  std::chrono::milliseconds retention_interval{1000};
  // Where the store lives inside a data directory (loftd: "rocksdb"): a backup into DIR puts
  // the store's copy at DIR/backup_subdir, so DIR is a data directory loftd can start on.
  // Empty: the copy is DIR itself.
  std::filesystem::path backup_subdir;
  // Delayed delivery: the furthest ahead of now a message's deliver_at_ms may be; a publish of
  // one further ahead is refused per message with delay_too_long (docs/semantics.md, "Delayed
  // delivery").
  std::uint64_t max_delivery_delay_ms = kDefaultMaxDeliveryDelayMs;
};

// Settings of a new topic (fixed at creation).
struct TopicSettings {
  // How long a message id stays known for dedup; 0 = kDefaultDedupWindowMs (2 h). Otherwise
  // kMinDedupWindowMs..kMaxDedupWindowMs.
  std::uint64_t dedup_window_ms = 0;
  DedupConflict dedup_conflict = DedupConflict::duplicate;
  RetentionChange retention{};  // limits not set here come from Options::default_retention
  // Stream subjects (validate_topic_subjects); empty = none. Unlike the settings above, they
  // can change later (Broker::set_topic_subjects).
  std::vector<std::string> subjects{};
  // Work-queue retention (docs/semantics.md, "Work-queue retention"), fixed at creation.
  RetentionMode retention_mode = RetentionMode::limits;
};
inline constexpr std::uint64_t kMinDedupWindowMs = 1'000;                     // 1 s
inline constexpr std::uint64_t kMaxDedupWindowMs = 30ULL * 24 * 3600 * 1000;  // 30 d
// The most subject filters one topic may have.
inline constexpr std::size_t kMaxTopicSubjects = 256;

// A topic's subjects: at most kMaxTopicSubjects filter subjects (validate_filter, none empty),
// none listed twice; invalid_subject otherwise. Overlap with other topics is the writer's
// check (subjects_overlap).
Result<void> validate_topic_subjects(std::span<const std::string> subjects);

// What Broker::purge_topic removes (JetStream's STREAM.PURGE): `before` removes the offsets
// below it; `keep` keeps only the newest `keep` messages; neither removes every message. Both
// at once are refused (invalid_request).
struct PurgeRequest {
  std::optional<Offset> before;
  std::optional<std::uint64_t> keep;
};
struct PurgeResult {
  std::uint64_t purged = 0;  // messages removed by this purge
  Offset first{};            // the topic's first offset after it
  bool operator==(const PurgeResult&) const = default;
};

// What a conditional publish expects of its topic (JetStream's Nats-Expected-Last-Sequence,
// -Last-Msg-Id and -Last-Subject-Sequence; docs/semantics.md, "Conditional publish"). The
// writer checks it when it stages the publish, after every request queued before it, so of two
// racing publishes that expect the same state at most one passes. Unset fields are not checked.
struct PublishConditions {
  // An offset, or nullopt for "none".
  using LastOffset = std::optional<Offset>;
  struct SubjectOffset {
    std::string subject;  // a publish subject; a message without one has its topic's name
    LastOffset offset;
  };
  // The topic's last offset: that of the last message ever appended, even if retention or a
  // purge removed it since (none: nothing was ever appended).
  std::optional<LastOffset> last_offset;
  // The id of the newest message appended with an id (messages without one do not change it;
  // none known: the empty string).
  std::optional<std::string> last_id;
  // The offset of the newest message with this subject still in the topic (none: there is
  // none).
  std::optional<SubjectOffset> last_subject_offset;
  bool any() const { return last_offset || last_id || last_subject_offset; }
};

// How many of a topic's newest messages the writer reads to learn its last id and the last
// offset of each subject, the first time a conditional publish needs them after a start; a
// subject with no message among them, in a topic that holds more, cannot be checked.
inline constexpr std::uint64_t kConditionScan = 10'000;
// The most subjects the writer remembers per topic for conditions; past it, it forgets them
// all and remembers from there on (what is older cannot be checked, as above).
inline constexpr std::size_t kMaxConditionSubjects = 100'000;

// Why a conditional publish was refused: the first failed condition in the order of
// PublishConditions' fields, and what the topic holds instead.
struct ConditionFailure {
  enum class What : std::uint8_t { last_offset, last_id, last_subject_offset };
  What what = What::last_offset;
  // last_offset, last_subject_offset: the actual offset (none: nullopt).
  std::optional<Offset> offset;
  // last_subject_offset: false when the subject's last offset cannot be told (no message of
  // it among the kConditionScan newest, and the topic holds older ones).
  bool known = true;
  std::string id;      // last_id: the topic's actual last id ("" when none is known)
  std::string detail;  // "expected last offset 4, the topic's last offset is 6"
  bool operator==(const ConditionFailure&) const = default;
};

// The outcome of one published message.
struct MessageResult {
  // ok; dedup_conflict (stored nothing; offset unused); expectation_failed (the publish's
  // conditions failed: nothing of it was stored; offset unused; Appended::refused says why);
  // delay_too_long (its deliver_at_ms is further ahead than max_delivery_delay: stored
  // nothing; offset unused).
  Errc code = Errc::ok;
  bool duplicate = false;  // its id was already stored: not appended, `offset` is the original's
  Offset offset;
  bool operator==(const MessageResult&) const = default;
};

// The outcome of a publish: one result per message, in request order. The messages that were
// appended (code ok, not duplicate) got consecutive offsets in request order.
struct Appended {
  std::string topic;
  std::vector<MessageResult> results;
  bool created_topic = false;  // auto_create_topics created the topic for this publish
  // Set when the publish's conditions failed: every result is then expectation_failed.
  std::optional<ConditionFailure> refused;
};

// Storage figures and read bounds, as the broker's API hands them to front ends (which do not
// see the storage layer themselves).
using ReadLimits = storage::ReadLimits;
using StoreStats = storage::StoreStats;

struct FetchResult {
  Offset first_offset;
  Offset next_offset;
  std::vector<StoredMessage> messages;
};

template <class T>
using Callback = std::function<void(Result<T>)>;

// Consumer-group state to write in one atomic commit: group records (created, updated or
// dropped) and, optionally, dead letters appended to a dead-letter topic (created if missing).
// A dead-letter append and the group progress that retires the original go together, so a
// crash can neither lose a dead letter nor deliver a dead-lettered message again.
struct GroupWrite {
  struct Put {
    std::string topic;  // must still exist with record.topic as its id
    storage::GroupRecord record;
  };
  std::vector<Put> puts;
  std::vector<storage::DropGroup> drops;
  std::string dead_letter_topic;
  std::vector<Message> dead_letters;
  // How durable the write must be before it completes. `fsync`, the default: as durable as the
  // broker's configured durability. `os`: written, not synced, for progress that no client
  // waits on (acks without confirm). Such a write survives a kill -9 once it completes, and a
  // power loss once any later commit syncs: the write-ahead log is one sequence, and a sync
  // covers everything written before it. A commit is synced if any of its requests asks for it.
  Durability durability = Durability::fsync;
};

// What a commit changed, for whoever serves consumers: a topic's log grew or it was deleted.
struct TopicEvent {
  std::string name;
  TopicId id;
  Offset end;  // next offset after the commit
  bool deleted = false;
  Offset first{};  // the topic's first offset after the commit (retention moves it up)
};

// Checks a publish's messages (at least one) against `limits`: message_too_large,
// id_too_large, key_too_large, headers_too_large, invalid_subject or invalid_request, naming
// the first message that fails by its index in the request, counted from 0 ("publish: message
// 0 id is ..."). Within a message: payload, id, key, headers, subject.
Result<void> validate_messages(std::span<const Message> messages, const MessageLimits& limits);

// A message's subject: empty (none), or a publish subject (loft/common/subject.hpp) of at most
// kMaxSubjectSize bytes; invalid_subject otherwise.
Result<void> validate_subject(std::string_view subject);
// A group's filter: empty (every message), or a filter subject (wildcards allowed) of at most
// kMaxSubjectSize bytes; invalid_subject otherwise.
Result<void> validate_filter(std::string_view filter);

// Topic names: 1..249 bytes of [A-Za-z0-9._-], not "." or "..".
Result<void> validate_topic_name(std::string_view name);

// Counters since start, for logs and (later) metrics. Read with relaxed consistency.
struct WriterStats {
  std::uint64_t commits = 0;
  std::uint64_t requests = 0;
  std::uint64_t messages = 0;
  std::uint64_t failed_commits = 0;
};

// Per-topic counters since this process started; they start at 0 again after a restart or
// when a topic is re-created (Prometheus counters may reset).
struct TopicCounters {
  std::uint64_t messages_published = 0;  // appended by publishes (not duplicates)
  std::uint64_t bytes_published = 0;     // Message::size_bytes() of those
  std::uint64_t dedup_hits = 0;          // messages answered as duplicates of a stored id
};

// Publish confirm latency: from the request entering the writer's queue to its completion
// after the durable write. Buckets are not cumulative here; the exposition makes them so.
struct LatencyHistogram {
  static constexpr std::array<double, 14> kBoundsSeconds{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  std::array<std::uint64_t, kBoundsSeconds.size()> buckets{};  // [i]: (bound[i-1], bound[i]]
  std::uint64_t count = 0;                                     // also those above every bound
  double sum_seconds = 0;
  void observe(double seconds);
};

// A consistent snapshot of the broker's metrics (taken under one lock).
struct BrokerMetrics {
  std::map<std::string, TopicCounters, std::less<>> topics;  // existing topics only
  LatencyHistogram publish_confirm;
};

class Broker {
 public:
  // Loads the topic table from `store` and starts the writer thread.
  static Result<std::unique_ptr<Broker>> open(std::unique_ptr<storage::Store> store,
                                              Options options);
  ~Broker();  // stop()s if still running
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // REQUIRES nothing of `settings`: an invalid window fails with invalid_request.
  void create_topic(std::string name, TopicSettings settings, Callback<TopicInfo> done);
  void create_topic(std::string name, Callback<TopicInfo> done) {
    create_topic(std::move(name), TopicSettings{}, std::move(done));
  }
  void delete_topic(std::string name, Callback<void> done);
  // Sets the retention limits `change` names (at least one); the next retention pass applies
  // them (one is started at once).
  void alter_topic(std::string name, RetentionChange change, Callback<TopicInfo> done);
  // Replaces the topic's subjects (empty: none), through the writer like any metadata change:
  // durable once `done` runs. Errors: invalid_subject (validate_topic_subjects, on the
  // caller's thread), topic_not_found, subjects_overlap (detail names the other topic).
  // Messages already stored keep their subjects.
  void set_topic_subjects(std::string topic, std::vector<std::string> subjects,
                          Callback<TopicInfo> done);
  // The topic whose subjects capture `subject` (a publish subject), if any: at most one, since
  // topics' subjects never overlap. Any thread; a hash lookup for literal subjects plus a
  // match against each wildcard filter of any topic (not a scan over topics).
  std::optional<std::string> topic_for_subject(std::string_view subject) const;
  // Removes messages from the front of the topic (PurgeRequest) as retention does: one prefix
  // delete through the writer, durable once `done` runs (a restart does not bring them back);
  // groups below the new first offset move up to it. Removing everything is one metadata
  // write; a partial purge first reads the sizes of what it removes on the background thread
  // (so it may wait behind a backup or compaction). Errors: invalid_name, invalid_request,
  // topic_not_found.
  void purge_topic(std::string topic, PurgeRequest req, Callback<PurgeResult> done);
  // A consistent copy of the whole store into `dir` (absolute, must not exist, its parent
  // must), made on the background thread while publishes go on: it holds every write that
  // completed before the call. Fails with backup_failed (`done` runs on the background
  // thread, or at once on the caller's for a bad path).
  void backup(std::filesystem::path dir, Callback<void> done);
  // One retention pass over every topic with limits: computes what is past a limit and
  // trims it through the writer; returns once those trims are committed (or failed). Runs
  // on the background thread every retention_interval; tests call it directly. Thread-safe,
  // but not to be called on the writer thread. Returns the number of messages removed.
  std::uint64_t run_retention_pass();
  // Delayed delivery (docs/semantics.md, "Delayed delivery"): releases every scheduled
  // message due at now_ms(), oldest first, in chunks of at most kReleaseChunk, each chunk
  // through the writer as one commit (the released copies' appends and the deletion of their
  // schedule entries); an entry of a topic that no longer exists is deleted only. Returns the
  // number of copies appended. Runs on the broker's release thread whenever the earliest due
  // time comes; tests with a fake clock call it directly. Thread-safe (one pass at a time),
  // but not to be called on the writer thread.
  std::uint64_t run_release_pass();
  // The earliest due time in the schedule (ms since the epoch), as of the last publish of a
  // delayed message and the last release pass; nullopt when nothing is scheduled.
  std::optional<std::int64_t> next_due_ms() const;

  // Fails at once (on the caller's thread) with validate_messages' error, or invalid_request /
  // invalid_name for a bad topic name.
  // A message with a non-empty id whose id is already stored in the topic, within the
  // topic's dedup window (in the store, or earlier in the same commit), is not appended: its
  // result is the original's offset with duplicate = true, or dedup_conflict if the payload
  // differs and the topic's dedup_conflict is `error`. Messages without an id are always
  // appended.
  // `max_messages` is what the caller can answer for (a front end's reply must fit its frame):
  // a publish of more fails with invalid_request, checked after the messages' limits and
  // before the topic name (docs/protocol.md, PUBLISH: "The checks, in this order").
  void publish(std::string topic, std::vector<Message> messages, Callback<Appended> done,
               std::size_t max_messages = std::numeric_limits<std::size_t>::max());
  // publish() if the topic is as `conditions` expect when the writer stages it (checked once,
  // before the first message; a request whose every message is a duplicate of a stored id is
  // answered as duplicates without the check, as a retry should be). Otherwise nothing is
  // stored and `done` gets an Appended with `refused` set and every result expectation_failed.
  // A subject condition's subject must be a valid publish subject (invalid_subject).
  void publish_if(std::string topic, std::vector<Message> messages, PublishConditions conditions,
                  Callback<Appended> done);

  void write_groups(GroupWrite write, Callback<void> done);

  // Called on the writer thread after every successful commit that touched topics. Set it
  // before any traffic; it must be quick (post elsewhere).
  void set_topic_listener(std::function<void(std::vector<TopicEvent>)> listener);
  // The groups stored when the broker opened (moved out: call once).
  std::vector<storage::GroupRecord> take_loaded_groups();
  // The first offset whose message was published at or after `timestamp_ms` (the topic's
  // next offset if none). Publish times only grow within a topic, so this is a binary search.
  Result<Offset> offset_for_timestamp(std::string_view topic, std::int64_t timestamp_ms) const;

  std::int64_t now_ms() const { return options_.now_ms(); }
  // What a confirm promises; fixed for the broker's life.
  Durability durability() const { return options_.durability; }

  std::vector<TopicInfo> list_topics() const;  // sorted by name
  Result<TopicInfo> describe_topic(std::string_view name) const;
  Result<FetchResult> fetch(std::string_view topic, Offset from, ReadLimits limits) const;
  // fetch() for delivery: the same messages, as views into one block (Store::read_block).
  Result<std::shared_ptr<const storage::MessageBlock>> fetch_block(std::string_view topic,
                                                                   Offset from,
                                                                   ReadLimits limits) const;

  // Finishes the commit in progress, fails publishes and topic changes still queued with
  // shutting_down (group progress is still written), stops the writer, flushes the store.
  // Later requests fail at once with shutting_down (callback on the caller's thread).
  // Idempotent.
  void stop();
  // The first half of stop(): no new requests are accepted and the writer fails what is
  // queued once its current commit is done; returns at once.
  void begin_stop();

  WriterStats stats() const;
  StorageHealth storage_health() const;
  BrokerMetrics metrics() const;
  // What the store reports about itself (RocksDB properties); any thread.
  StoreStats store_stats() const { return store_->stats(); }
  // False once stop() has begun: new requests fail with shutting_down.
  bool accepting_requests() const;

 private:
  struct CreateReq {
    std::string name;
    TopicSettings settings;
    Callback<TopicInfo> done;
  };
  struct DeleteReq {
    std::string name;
    Callback<void> done;
  };
  struct PublishReq {
    std::string topic;
    std::vector<Message> messages;
    Callback<Appended> done;
    std::chrono::steady_clock::time_point enqueued{};  // for the confirm latency histogram
    PublishConditions conditions{};
  };
  struct GroupReq {
    GroupWrite write;
    Callback<void> done;
  };
  struct AlterReq {
    std::string name;
    RetentionChange change;
    Callback<TopicInfo> done;
  };
  // Removes [from, end) of topic `id` if the topic still has that id and starts at `from`
  // (otherwise nothing: the next pass looks again). `removed_bytes` is what the range holds.
  // Completes with the number of messages removed (0 when it was stale).
  struct TrimReq {
    std::string name;
    TopicId id;
    Offset from;
    Offset end;
    std::uint64_t removed_bytes = 0;
    Callback<std::uint64_t> done;
    // Work-queue retention: the limits alone remove [from, by_limits); what lies above it is
    // removed because every group is done with it, so the writer checks the groups' floors
    // as it stages the trim (a group created or moved back meanwhile makes it stale).
    Offset by_limits{};
  };
  struct SubjectsReq {
    std::string name;
    std::vector<std::string> subjects;
    Callback<TopicInfo> done;
  };
  // A purge. Removing up to the topic's end needs no read (the topic's byte count goes to 0);
  // a partial one needs the bytes it removes: the writer hands it to the background thread,
  // which reads them and queues it again with `planned`, valid while the topic starts at
  // `from` (otherwise planned again, at most kMaxPurgePlans times).
  struct PurgePlan {
    TopicId id;
    Offset from;
    Offset end;
    std::uint64_t removed_bytes = 0;
  };
  struct PurgeReq {
    std::string name;
    PurgeRequest req;
    Callback<PurgeResult> done;
    std::optional<PurgePlan> planned;
    int plans = 0;
  };
  struct BackupJob {
    std::filesystem::path dir;
    Callback<void> done;
  };
  // Scheduled messages that are due (read by run_release_pass, oldest first): appended to
  // their topics as new messages, their entries deleted, in one commit. Completes with the
  // number appended.
  struct ReleaseReq {
    std::vector<storage::ScheduledMessage> entries;
    Callback<std::uint64_t> done;
  };
  using Request = std::variant<CreateReq, DeleteReq, PublishReq, GroupReq, AlterReq, TrimReq,
                               SubjectsReq, PurgeReq, ReleaseReq>;
  // Work for the background thread: give a dropped topic's space back, or a trimmed range's.
  struct Reclaim {
    TopicId id;
    std::optional<Offset> trimmed_end;  // nullopt: the whole (dropped) topic
  };

  Broker(std::unique_ptr<storage::Store> store, Options options, std::vector<TopicInfo> topics,
         TopicId next_topic_id, std::vector<storage::GroupRecord> groups);
  void enqueue(Request req);
  void run_writer();
  void run_reclaimer();
  // The release thread: sleeps until next_due_ms_ (by now_ms()), then runs a release pass.
  void run_releaser();
  // Reads the schedule's earliest due time into next_due_ms_; `retry_at` (if set) when the
  // read fails or the pass that calls it could not release what is due.
  void refresh_next_due(std::optional<std::int64_t> retry_at);
  // Writer thread, after a commit that scheduled messages: `due` is the earliest of them.
  void note_scheduled(std::int64_t due);
  // One commit's working state and its per-request staging (broker.cpp).
  struct Commit;
  // Stages every request of `batch`, writes them in one storage write and completes them.
  void commit(std::vector<Request>& batch);
  Durability commit_durability(const std::vector<Request>& batch) const;
  // After a successful write: the topic table, then the background work it calls for.
  void install_topics(const Commit& c);
  void queue_reclaims(const Commit& c, const std::vector<Request>& batch);
  // Writer stats, and (if `written`) the per-topic counters and confirm latencies.
  void record_commit(const Commit& c, const std::vector<Request>& batch, bool written);
  // Writer thread: Store::recover() if the storage is unwritable and the retry interval passed.
  void maybe_recover();
  // Writer thread: records the outcome of a storage write or recovery in health_.
  void note_storage(const Result<void>& outcome, bool was_write);
  // The trim that brings `topic` within its limits, bounded in size; nullopt if none is due.
  Result<std::optional<TrimReq>> plan_trim(const TopicInfo& topic);
  Result<void> run_backup(const std::filesystem::path& dir);
  // Background thread: reads the bytes a partial purge removes and queues it again.
  void plan_purge(PurgeReq req);
  // Writer thread: hands a purge to the background thread to be planned.
  void queue_purge_plan(PurgeReq req);
  // Runs `push` (queueing work for the background thread) under reclaim_mutex_ and wakes the
  // thread; false, without running it, once the thread is stopping.
  bool to_background(const std::function<void()>& push);
  // Under table_mutex_ (unique): topic_for_subject's index from topics_.
  void rebuild_subject_index();

  // Work-queue retention: the durable ack floor of every group, by topic id then group name,
  // as the last successful commits left them (floor changes staged in a commit that is not
  // written yet are the Commit's). The writer updates it after each commit that changed a
  // group; retention passes read it. A group progress write is in the log before any trim
  // planned from it, so a removal never outruns the durable floors.
  using GroupFloors = std::map<std::string, Offset, std::less<>>;
  // The lowest floor of the topic's groups, with `staged` changes (topic id, group name, new
  // floor or nullopt for a dropped group) applied; nullopt when the topic has no group.
  struct FloorChange {
    std::uint32_t topic = 0;
    std::string group;
    std::optional<Offset> floor;
  };
  std::optional<Offset> work_queue_floor(TopicId topic,
                                         std::span<const FloorChange> staged = {}) const;
  void install_floors(std::span<const FloorChange> changes,
                      std::span<const std::uint32_t> dropped_topics);

  std::unique_ptr<storage::Store> store_;
  Options options_;

  mutable std::mutex floors_mutex_;  // guards group_floors_
  std::unordered_map<std::uint32_t, GroupFloors> group_floors_;

  // What conditional publishes compare with, per topic id, for topics that had one needing the
  // last id or a subject's last offset since start (writer thread only; rebuilt from the store
  // when first needed, kept up to date by every append to the topic, dropped with the topic or
  // after a failed write). docs/storage.md, "Conditional publish".
  struct TopicTail {
    Offset subjects_from;  // `subjects` knows every message from here to the topic's end
    std::unordered_map<std::string, Offset> subjects;  // newest offset of each subject
    Offset id_from;                      // `last_id` knows every message from here to the end
    std::optional<std::string> last_id;  // newest id in [id_from, end); nullopt: none there
  };
  std::unordered_map<std::uint32_t, TopicTail> tails_;

  mutable std::shared_mutex table_mutex_;  // guards topics_ (writer writes, anyone reads)
  std::map<std::string, TopicInfo, std::less<>> topics_;
  // Which topic captures a subject, rebuilt from topics_ whenever some topic's subjects
  // change: literal filters by subject, and every wildcard filter with its topic.
  struct StringHash {
    using is_transparent = void;  // NOLINT(readability-identifier-naming): the std name
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::string, StringHash, std::equal_to<>> literal_subjects_;
  std::vector<std::pair<std::string, std::string>> wildcard_subjects_;  // filter, topic
  std::uint32_t next_topic_id_ = 1;                                     // writer thread only
  std::vector<storage::GroupRecord> loaded_groups_;
  std::function<void(std::vector<TopicEvent>)> topic_listener_;

  mutable std::mutex queue_mutex_;  // guards queue_ and stopping_
  std::condition_variable queue_cv_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  std::thread writer_;
  std::once_flag stop_once_;

  // Giving disk space back (after a drop or a trim) is a compaction that can take seconds, and
  // a backup a flush and file copies: they run on this background thread, which also runs
  // the retention passes, so none of it ever holds up a commit.
  std::mutex reclaim_mutex_;  // guards the fields up to reclaimer_
  std::condition_variable reclaim_cv_;
  std::deque<Reclaim> reclaim_queue_;
  std::deque<BackupJob> backups_;
  std::deque<PurgeReq> purge_plans_;
  bool retention_due_ = false;  // run a pass now (after an alter)
  bool reclaim_stopping_ = false;
  std::thread reclaimer_;
  std::mutex retention_mutex_;  // one retention pass at a time

  // Delayed delivery. Nothing of the schedule is in memory but its earliest due time (and each
  // topic's count, in its TopicInfo). Reads of the schedule start at scan_from_ms_, the lowest
  // due time it may still hold (everything below was released), so they do not step over the
  // deletions of released entries; a publish that schedules below it (the clock went back)
  // lowers it and sets scan_lowered_, so a pass in flight does not raise it past that entry.
  static constexpr std::int64_t kNoDue = std::numeric_limits<std::int64_t>::max();
  mutable std::mutex schedule_mutex_;  // guards the fields up to releaser_
  std::condition_variable release_cv_;
  std::int64_t next_due_ms_ = kNoDue;
  std::int64_t scan_from_ms_ = 0;
  bool scan_lowered_ = false;
  bool release_stopping_ = false;
  std::thread releaser_;
  std::mutex release_mutex_;  // one release pass at a time

  // Taken once per commit by the writer (never per message) and by readers of the figures.
  mutable std::mutex stats_mutex_;  // guards stats_, health_ and metrics_
  WriterStats stats_;
  StorageHealth health_;
  BrokerMetrics metrics_;
  bool writable_ = true;  // writer thread's copy of health_.writable
  std::chrono::steady_clock::time_point last_recover_{};  // writer thread only
};

}  // namespace loft::broker
