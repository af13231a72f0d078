#include "loft/broker/broker.hpp"

#include <xxhash.h>

#include <algorithm>
#include <future>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace loft::broker {
namespace {

constexpr std::size_t kMaxTopicName = 249;

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error not_found(std::string_view name) {
  return Error{Errc::topic_not_found, "topic '" + std::string(name) + "' does not exist"};
}

std::size_t request_messages(const auto& req) {
  if constexpr (requires { req.messages; }) {
    return req.messages.size();
  } else {
    return 1;
  }
}

std::size_t request_bytes(const auto& req) {
  if constexpr (requires { req.messages; }) {
    std::size_t n = 0;
    for (const auto& m : req.messages) n += m.size_bytes();
    return n;
  } else {
    return 0;
  }
}

// The payload hash a dedup entry keeps, to tell a retry (same payload) from a conflicting
// reuse of an id. XXH64 with seed 0: fast, and 64 bits make an accidental match negligible.
std::uint64_t payload_hash(std::string_view payload) {
  return XXH64(payload.data(), payload.size(), 0);
}

Result<void> validate_settings(const TopicSettings& s) {
  if (s.dedup_window_ms != 0 &&
      (s.dedup_window_ms < kMinDedupWindowMs || s.dedup_window_ms > kMaxDedupWindowMs)) {
    return fail(Errc::invalid_request, "dedup window must be 1 s to 30 d, got " +
                                           std::to_string(s.dedup_window_ms) + " ms");
  }
  if (s.dedup_conflict != DedupConflict::duplicate && s.dedup_conflict != DedupConflict::error) {
    return fail(Errc::invalid_request, "unknown dedup conflict mode");
  }
  return validate_retention(s.retention);
}

// A retention pass trims at most this many messages of one topic per round (and reads at
// most that many to count their bytes), so a pass after a big alter is bounded; the next
// round or pass goes on.
constexpr std::uint64_t kMaxTrimPerRound = 50'000;
constexpr std::size_t kMaxRetentionRounds = 16;
constexpr storage::ReadLimits kTrimScan{1000, std::size_t{4} << 20};

// A partial purge is planned again (its bytes read again) at most this often when retention
// or another purge moves the topic's first offset between its plan and its commit.
constexpr int kMaxPurgePlans = 8;
// A release pass: chunks of at most this many due messages, one commit each (a few MiB of
// writes, a few ms of the writer's time), and at most kMaxReleaseRounds chunks before the
// release thread looks at its clock again.
constexpr storage::ReadLimits kReleaseChunk{4096, std::size_t{8} << 20};
constexpr std::size_t kMaxReleaseRounds = 16;
// The release thread looks at the clock at least this often, whatever the next due time says:
// a wall clock that is set forward (or a test's fake clock) is noticed within it.
constexpr std::chrono::milliseconds kMaxReleaseWait{1000};
// After a failed read or release, the schedule is tried again this much later.
constexpr std::int64_t kReleaseRetryMs = 1000;

// Where a purge ends (the new first offset) on `t` as it is now.
Offset purge_end(const TopicInfo& t, const PurgeRequest& r) {
  if (r.before) return std::clamp(*r.before, t.first_offset, t.next_offset);
  if (r.keep) {
    const std::uint64_t stored = t.next_offset.value - t.first_offset.value;
    return stored > *r.keep ? Offset{t.next_offset.value - *r.keep} : t.first_offset;
  }
  return t.next_offset;
}

std::string subject_list(const std::vector<std::string>& subjects) {
  std::string out;
  for (const auto& s : subjects) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

Result<void> validate_retention(const RetentionChange& change) {
  if (change.max_age_ms && *change.max_age_ms != 0 &&
      (*change.max_age_ms < kMinMaxAgeMs || *change.max_age_ms > kMaxMaxAgeMs)) {
    return fail(Errc::invalid_request, "max_age must be 0 (unlimited) or 1 s to 100 years, got " +
                                           std::to_string(*change.max_age_ms) + " ms");
  }
  return {};
}

RetentionLimits apply_retention(RetentionLimits limits, const RetentionChange& change) {
  if (change.max_age_ms) limits.max_age_ms = *change.max_age_ms;
  if (change.max_bytes) limits.max_bytes = *change.max_bytes;
  if (change.max_messages) limits.max_messages = *change.max_messages;
  return limits;
}

Offset first_kept_by_count_and_age(const TopicInfo& topic, std::optional<Offset> age_start) {
  Offset keep = topic.first_offset;
  if (topic.max_messages != 0 &&
      topic.next_offset.value - topic.first_offset.value > topic.max_messages) {
    keep = Offset{topic.next_offset.value - topic.max_messages};
  }
  if (age_start) keep = std::max(keep, std::min(*age_start, topic.next_offset));
  return keep;
}

void LatencyHistogram::observe(double seconds) {
  const auto it = std::lower_bound(kBoundsSeconds.begin(), kBoundsSeconds.end(), seconds);
  if (it != kBoundsSeconds.end()) buckets[static_cast<std::size_t>(it - kBoundsSeconds.begin())]++;
  count += 1;
  sum_seconds += seconds;
}

Result<void> validate_messages(std::span<const Message> messages, const MessageLimits& limits) {
  if (messages.empty()) return fail(Errc::invalid_request, "publish: no messages");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const auto where = "publish: message " + std::to_string(i) + " ";
    if (m.payload.size() > limits.max_message_size) {
      return fail(Errc::message_too_large,
                  where + "payload is " + std::to_string(m.payload.size()) +
                      " bytes, max_message_size is " + std::to_string(limits.max_message_size));
    }
    if (m.id.size() > limits.max_id_size) {
      return fail(Errc::id_too_large, where + "id is " + std::to_string(m.id.size()) +
                                          " bytes, max_id_size is " +
                                          std::to_string(limits.max_id_size));
    }
    if (m.key.size() > limits.max_key_size) {
      return fail(Errc::key_too_large, where + "key is " + std::to_string(m.key.size()) +
                                           " bytes, max_key_size is " +
                                           std::to_string(limits.max_key_size));
    }
    std::uint64_t headers = 0;
    for (std::size_t j = 0; j < m.headers.size(); ++j) {
      const auto& h = m.headers[j];
      if (h.name.size() > kMaxHeaderNameSize) {
        return fail(Errc::headers_too_large, where + "header " + std::to_string(j) + " name is " +
                                                 std::to_string(h.name.size()) +
                                                 " bytes, more than 65535");
      }
      headers += h.name.size() + h.value.size();
    }
    if (headers > limits.max_headers_size) {
      return fail(Errc::headers_too_large, where + "headers are " + std::to_string(headers) +
                                               " bytes (names + values), max_headers_size is " +
                                               std::to_string(limits.max_headers_size));
    }
    if (auto ok = validate_subject(m.subject); !ok) {
      return fail(Errc::invalid_subject, where + ok.error().detail);
    }
  }
  return {};
}

namespace {

enum class SubjectUse : std::uint8_t { publish, filter };

// A message's subject or a group's filter: empty, or a valid one of at most kMaxSubjectSize.
Result<void> check_subject(std::string_view text, SubjectUse use) {
  if (text.empty()) return {};
  const bool filter = use == SubjectUse::filter;
  const std::string what = filter ? "filter" : "subject";
  if (text.size() > kMaxSubjectSize) {
    return fail(Errc::invalid_subject, what + " is " + std::to_string(text.size()) +
                                           " bytes, more than " + std::to_string(kMaxSubjectSize));
  }
  if (filter ? is_valid_filter_subject(text) : is_valid_publish_subject(text)) return {};
  return fail(Errc::invalid_subject,
              what + " '" + std::string(text) + "' is not a valid " +
                  (filter ? "subject filter (tokens separated by '.', none empty, no "
                            "whitespace; '*' matches one token, '>' as the last token one or more)"
                          : "subject (tokens separated by '.', none empty, no whitespace, no "
                            "'*' or '>' token)"));
}

}  // namespace

Result<void> validate_subject(std::string_view subject) {
  return check_subject(subject, SubjectUse::publish);
}

Result<void> validate_filter(std::string_view filter) {
  return check_subject(filter, SubjectUse::filter);
}

Result<void> validate_topic_subjects(std::span<const std::string> subjects) {
  if (subjects.size() > kMaxTopicSubjects) {
    return fail(Errc::invalid_subject, "a topic may have at most " +
                                           std::to_string(kMaxTopicSubjects) + " subjects, got " +
                                           std::to_string(subjects.size()));
  }
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    if (subjects[i].empty()) {
      return fail(Errc::invalid_subject, "topic subject " + std::to_string(i) + " is empty");
    }
    if (auto ok = validate_filter(subjects[i]); !ok) return ok;
    for (std::size_t j = 0; j < i; ++j) {
      if (subjects[j] == subjects[i]) {
        return fail(Errc::invalid_subject, "topic subject '" + subjects[i] + "' is listed twice");
      }
    }
  }
  return {};
}

Result<void> validate_topic_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxTopicName) {
    return fail(Errc::invalid_name,
                "topic name must be 1 to 249 bytes long, got " + std::to_string(name.size()));
  }
  if (name == "." || name == "..") {
    return fail(Errc::invalid_name, "topic name cannot be '.' or '..'");
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return fail(Errc::invalid_name, "topic name '" + std::string(name) +
                                          "' may only contain letters, digits, '.', '_' and '-'");
    }
  }
  return {};
}

Result<std::unique_ptr<Broker>> Broker::open(std::unique_ptr<storage::Store> store,
                                             Options options) {
  auto topics = store->load_topics();
  if (!topics) return tl::unexpected(topics.error());
  auto next_id = store->load_next_topic_id();
  if (!next_id) return tl::unexpected(next_id.error());
  auto groups = store->load_groups();
  if (!groups) return tl::unexpected(groups.error());
  if (!options.now_ms) options.now_ms = system_now_ms;
  return std::unique_ptr<Broker>(
      new Broker(std::move(store), std::move(options), *topics, *next_id, std::move(*groups)));
}

Broker::Broker(std::unique_ptr<storage::Store> store, Options options,
               std::vector<TopicInfo> topics, TopicId next_topic_id,
               std::vector<storage::GroupRecord> groups)
    : store_(std::move(store)),
      options_(std::move(options)),
      next_topic_id_(next_topic_id.value),
      loaded_groups_(std::move(groups)) {
  // Floors are kept for work-queue topics only (the only ones that ask; a topic's mode is fixed
  // at creation).
  std::unordered_set<std::uint32_t> work_queues;
  for (const auto& t : topics) {
    if (t.retention_mode == RetentionMode::work_queue) work_queues.insert(t.id.value);
  }
  for (const auto& g : loaded_groups_) {
    if (work_queues.contains(g.topic.value)) group_floors_[g.topic.value][g.name] = g.ack_floor;
  }
  for (auto& t : topics) {
    // Ids are never reused: the store remembers the next one, and it is above every topic's.
    next_topic_id_ = std::max(next_topic_id_, t.id.value + 1);
    auto name = t.name;
    topics_.emplace(std::move(name), std::move(t));
  }
  rebuild_subject_index();
  refresh_next_due(options_.now_ms() + kReleaseRetryMs);
  writer_ = std::thread([this] { run_writer(); });
  reclaimer_ = std::thread([this] { run_reclaimer(); });
  releaser_ = std::thread([this] { run_releaser(); });
}

Broker::~Broker() { stop(); }

void Broker::stop() {
  std::call_once(stop_once_, [this] {
    begin_stop();
    if (writer_.joinable()) writer_.join();
    {
      std::lock_guard lock(reclaim_mutex_);
      reclaim_stopping_ = true;
    }
    reclaim_cv_.notify_one();
    if (reclaimer_.joinable()) reclaimer_.join();
    {
      std::lock_guard lock(schedule_mutex_);
      release_stopping_ = true;
    }
    release_cv_.notify_one();
    if (releaser_.joinable()) releaser_.join();
    std::ignore = store_->flush();  // best effort: every confirmed write is already in the WAL
  });
}

void Broker::begin_stop() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_one();
}

WriterStats Broker::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

StorageHealth Broker::storage_health() const {
  std::lock_guard lock(stats_mutex_);
  return health_;
}

void Broker::maybe_recover() {
  if (writable_) return;
  const auto now = std::chrono::steady_clock::now();
  // Rate-limited: while the disk is still full, each recovery attempt is a failing flush.
  if (now - last_recover_ < options_.storage_retry_interval) return;
  last_recover_ = now;
  note_storage(store_->recover(), /*was_write=*/false);
}

void Broker::note_storage(const Result<void>& outcome, bool was_write) {
  std::optional<StorageHealth> changed;
  {
    std::lock_guard lock(stats_mutex_);
    if (!was_write) health_.recovery_attempts += 1;
    if (outcome) {
      if (!health_.writable) {
        health_.writable = true;
        changed = health_;
      }
    } else if (was_write) {
      health_.failed_writes += 1;
      health_.last_error = outcome.error().to_string();
      if (health_.writable) {
        health_.writable = false;
        health_.episodes += 1;
        changed = health_;
      }
    }
    writable_ = health_.writable;
  }
  if (!writable_ && changed) last_recover_ = std::chrono::steady_clock::now();
  if (changed && options_.on_storage_health) options_.on_storage_health(*changed);
}

BrokerMetrics Broker::metrics() const {
  std::lock_guard lock(stats_mutex_);
  return metrics_;
}

bool Broker::accepting_requests() const {
  std::lock_guard lock(queue_mutex_);
  return !stopping_;
}

void Broker::create_topic(std::string name, TopicSettings settings, Callback<TopicInfo> done) {
  if (auto ok = validate_topic_name(name); !ok) return done(tl::unexpected(ok.error()));
  if (auto ok = validate_settings(settings); !ok) return done(tl::unexpected(ok.error()));
  if (auto ok = validate_topic_subjects(settings.subjects); !ok) {
    return done(tl::unexpected(ok.error()));
  }
  enqueue(CreateReq{std::move(name), std::move(settings), std::move(done)});
}

void Broker::delete_topic(std::string name, Callback<void> done) {
  if (auto ok = validate_topic_name(name); !ok) return done(tl::unexpected(ok.error()));
  enqueue(DeleteReq{std::move(name), std::move(done)});
}

void Broker::alter_topic(std::string name, RetentionChange change, Callback<TopicInfo> done) {
  if (auto ok = validate_topic_name(name); !ok) return done(tl::unexpected(ok.error()));
  if (!change.max_age_ms && !change.max_bytes && !change.max_messages) {
    return done(fail(Errc::invalid_request, "alter topic: no limit to change"));
  }
  if (auto ok = validate_retention(change); !ok) return done(tl::unexpected(ok.error()));
  enqueue(AlterReq{std::move(name), change, std::move(done)});
}

void Broker::set_topic_subjects(std::string topic, std::vector<std::string> subjects,
                                Callback<TopicInfo> done) {
  if (auto ok = validate_topic_name(topic); !ok) return done(tl::unexpected(ok.error()));
  if (auto ok = validate_topic_subjects(subjects); !ok) return done(tl::unexpected(ok.error()));
  enqueue(SubjectsReq{std::move(topic), std::move(subjects), std::move(done)});
}

std::optional<std::string> Broker::topic_for_subject(std::string_view subject) const {
  std::shared_lock lock(table_mutex_);
  if (const auto it = literal_subjects_.find(subject); it != literal_subjects_.end()) {
    return it->second;
  }
  for (const auto& [filter, topic] : wildcard_subjects_) {
    if (subject_matches(filter, subject)) return topic;
  }
  return std::nullopt;
}

void Broker::rebuild_subject_index() {
  literal_subjects_.clear();
  wildcard_subjects_.clear();
  for (const auto& [name, meta] : topics_) {
    for (const auto& filter : meta.subjects) {
      if (is_valid_publish_subject(filter)) {
        literal_subjects_.emplace(filter, name);
      } else {
        wildcard_subjects_.emplace_back(filter, name);
      }
    }
  }
}

void Broker::purge_topic(std::string topic, PurgeRequest req, Callback<PurgeResult> done) {
  if (auto ok = validate_topic_name(topic); !ok) return done(tl::unexpected(ok.error()));
  if (req.before && req.keep) {
    return done(fail(Errc::invalid_request, "purge: give 'before' or 'keep', not both"));
  }
  enqueue(PurgeReq{std::move(topic), req, std::move(done), std::nullopt, 0});
}

void Broker::plan_purge(PurgeReq req) {
  auto& plan = *req.planned;
  std::uint64_t bytes = 0;
  Offset at = plan.from;
  while (at < plan.end) {
    auto read = store_->read(plan.id, at, kTrimScan);
    if (!read) return req.done(tl::unexpected(read.error()));
    const Offset before = at;
    for (const auto& m : *read) {
      if (m.offset >= plan.end) break;
      bytes += m.message.size_bytes();
      at = Offset{m.offset.value + 1};
    }
    if (at == before) break;  // nothing more below plan.end (the topic changed): the writer sees
  }
  plan.removed_bytes = bytes;
  enqueue(std::move(req));
}

void Broker::backup(std::filesystem::path dir, Callback<void> done) {
  if (!dir.is_absolute()) {
    return done(fail(Errc::backup_failed, "backup directory '" + dir.string() +
                                              "' is not an absolute path (it is a path on the "
                                              "broker's machine)"));
  }
  dir = dir.lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "/a/b/" names "/a/b"
  if (to_background([&] { backups_.push_back({std::move(dir), std::move(done)}); })) return;
  done(fail(Errc::shutting_down, "the broker is stopping"));
}

Result<void> Broker::run_backup(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) || ec) {
    return fail(Errc::backup_failed,
                "backup directory '" + dir.string() + "' already exists; give a new path");
  }
  if (!std::filesystem::is_directory(dir.parent_path(), ec)) {
    return fail(Errc::backup_failed, "the parent of backup directory '" + dir.string() +
                                         "' is not an existing directory");
  }
  if (options_.backup_subdir.empty()) {
    if (auto r = store_->checkpoint(dir); !r) return fail(Errc::backup_failed, r.error().detail);
    return {};
  }
  if (!std::filesystem::create_directory(dir, ec) || ec) {
    return fail(Errc::backup_failed,
                "cannot create backup directory '" + dir.string() + "': " + ec.message());
  }
  if (auto r = store_->checkpoint(dir / options_.backup_subdir); !r) {
    std::filesystem::remove_all(dir, ec);  // ours, and incomplete: do not leave it behind
    return fail(Errc::backup_failed, r.error().detail);
  }
  return {};
}

Result<std::optional<Broker::TrimReq>> Broker::plan_trim(const TopicInfo& t) {
  std::optional<Offset> age_start;
  const std::int64_t now = options_.now_ms();
  if (t.max_age_ms != 0 && now > 0 && static_cast<std::uint64_t>(now) > t.max_age_ms) {
    auto start = offset_for_timestamp(t.name, now - static_cast<std::int64_t>(t.max_age_ms));
    if (!start) return tl::unexpected(start.error());
    age_start = *start;
  }
  const Offset by_count_and_age = first_kept_by_count_and_age(t, age_start);
  // Walk from the first offset, summing sizes, while a limit says the message goes: the
  // count/age bound, or max_bytes while what stays is over it. Only messages confirmed when
  // `t` was read count (t.bytes covers exactly those).
  std::uint64_t removed_bytes = 0;
  Offset at = t.first_offset;
  const auto by_limits = [&](Offset o) {
    return o < by_count_and_age || (t.max_bytes != 0 && t.bytes - removed_bytes > t.max_bytes);
  };
  // Work-queue retention: below the lowest of the groups' durable floors every group is done.
  Offset done_below = t.first_offset;
  if (t.retention_mode == RetentionMode::work_queue) {
    if (const auto floor = work_queue_floor(t.id)) {
      done_below = std::clamp(*floor, t.first_offset, t.next_offset);
    }
  }
  if (done_below == t.next_offset && done_below > t.first_offset) {
    // Everything stored is done: no read needed, the whole byte count goes.
    TrimReq all{t.name, t.id, t.first_offset, t.next_offset, t.bytes, {}};
    all.by_limits = t.first_offset;
    return std::optional<TrimReq>{std::move(all)};
  }
  Offset limits_end = t.first_offset;  // the limits alone remove [first_offset, limits_end)
  const auto must_go = [&](Offset o) {
    if (by_limits(o)) {
      if (limits_end == o) limits_end = Offset{o.value + 1};
      return true;
    }
    return o < done_below;
  };
  while (at < t.next_offset && at.value - t.first_offset.value < kMaxTrimPerRound && must_go(at)) {
    auto read = store_->read(t.id, at, kTrimScan);
    if (!read) return tl::unexpected(read.error());
    if (read->empty()) break;
    for (const auto& m : *read) {
      if (m.offset >= t.next_offset || !must_go(m.offset) ||
          m.offset.value - t.first_offset.value >= kMaxTrimPerRound) {
        break;
      }
      removed_bytes += std::min(m.message.size_bytes(), t.bytes - removed_bytes);
      at = Offset{m.offset.value + 1};
    }
    if (read->back().offset.value + 1 != at.value) break;  // stopped inside this read
  }
  if (at <= t.first_offset) return std::optional<TrimReq>{};
  TrimReq trim{t.name, t.id, t.first_offset, at, removed_bytes, {}};
  trim.by_limits = std::min(limits_end, at);
  return std::optional<TrimReq>{std::move(trim)};
}

std::uint64_t Broker::run_retention_pass() {
  std::lock_guard pass(retention_mutex_);
  std::uint64_t removed = 0;
  for (std::size_t round = 0; round < kMaxRetentionRounds; ++round) {
    std::vector<std::future<Result<std::uint64_t>>> trims;
    for (const auto& t : list_topics()) {
      if (t.max_age_ms == 0 && t.max_bytes == 0 && t.max_messages == 0 &&
          t.retention_mode != RetentionMode::work_queue) {
        continue;
      }
      auto plan = plan_trim(t);
      if (!plan || !*plan) continue;  // a read error: the next pass tries again
      auto promise = std::make_shared<std::promise<Result<std::uint64_t>>>();
      trims.push_back(promise->get_future());
      (*plan)->done = [promise](Result<std::uint64_t> r) { promise->set_value(std::move(r)); };
      enqueue(std::move(**plan));
    }
    std::uint64_t this_round = 0;
    for (auto& f : trims) {
      if (auto n = f.get()) this_round += *n;
    }
    removed += this_round;
    if (this_round == 0) break;
  }
  return removed;
}

std::optional<std::int64_t> Broker::next_due_ms() const {
  std::lock_guard lock(schedule_mutex_);
  if (next_due_ms_ == kNoDue) return std::nullopt;
  return next_due_ms_;
}

void Broker::refresh_next_due(std::optional<std::int64_t> retry_at) {
  std::lock_guard lock(schedule_mutex_);
  // Held across the read: a publish that schedules meanwhile (note_scheduled) waits, and its
  // entry is either seen here or lowers next_due_ms_ after.
  const auto first = store_->read_schedule(scan_from_ms_, kNoDue - 1, storage::ReadLimits{1, 1});
  if (!first) {
    next_due_ms_ = retry_at.value_or(options_.now_ms() + kReleaseRetryMs);
  } else {
    next_due_ms_ = first->empty() ? kNoDue : first->front().due_ms;
    if (retry_at) next_due_ms_ = std::max(next_due_ms_, *retry_at);
  }
}

void Broker::note_scheduled(std::int64_t due) {
  {
    std::lock_guard lock(schedule_mutex_);
    if (due < scan_from_ms_) {
      scan_from_ms_ = due;
      scan_lowered_ = true;
    }
    if (due >= next_due_ms_) return;
    next_due_ms_ = due;
  }
  release_cv_.notify_one();
}

void Broker::run_releaser() {
  std::unique_lock lock(schedule_mutex_);
  while (!release_stopping_) {
    const auto now = options_.now_ms();
    if (next_due_ms_ <= now) {
      lock.unlock();
      run_release_pass();
      lock.lock();
      continue;
    }
    // Woken early by a publish due sooner (note_scheduled) or by stop().
    auto wait = kMaxReleaseWait;
    if (next_due_ms_ - now < wait.count()) wait = std::chrono::milliseconds(next_due_ms_ - now);
    release_cv_.wait_for(lock, wait);
  }
}

std::uint64_t Broker::run_release_pass() {
  std::lock_guard pass(release_mutex_);
  std::uint64_t released = 0;
  bool stalled = false;  // something due could not be read or released: retry later
  for (std::size_t round = 0; round < kMaxReleaseRounds; ++round) {
    std::int64_t from = 0;
    {
      std::lock_guard lock(schedule_mutex_);
      from = scan_from_ms_;
      scan_lowered_ = false;
    }
    // Never early: only what is due at the clock's time now.
    auto due = store_->read_schedule(from, options_.now_ms(), kReleaseChunk);
    if (!due) {
      stalled = true;
      break;
    }
    if (due->empty()) break;
    const auto last_due = due->back().due_ms;
    auto promise = std::make_shared<std::promise<Result<std::uint64_t>>>();
    auto future = promise->get_future();
    enqueue(ReleaseReq{std::move(*due),
                       [promise](Result<std::uint64_t> r) { promise->set_value(std::move(r)); }});
    const auto r = future.get();
    if (!r) {
      stalled = true;
      break;
    }
    released += *r;
    std::lock_guard lock(schedule_mutex_);
    if (!scan_lowered_) scan_from_ms_ = std::max(scan_from_ms_, last_due);
  }
  refresh_next_due(stalled ? std::optional{options_.now_ms() + kReleaseRetryMs} : std::nullopt);
  return released;
}

namespace {

// publish()'s checks on the caller's thread, in the documented order.
Result<void> check_publish(const std::string& topic, std::span<const Message> messages,
                           const MessageLimits& limits, std::size_t max_messages) {
  if (topic.empty()) return fail(Errc::invalid_request, "publish: empty topic name");
  if (auto ok = validate_messages(messages, limits); !ok) return ok;
  if (messages.size() > max_messages) {
    return fail(Errc::invalid_request, "publish: " + std::to_string(messages.size()) +
                                           " messages in one request, at most " +
                                           std::to_string(max_messages) + " fit in the reply");
  }
  return validate_topic_name(topic);
}

}  // namespace

void Broker::publish(std::string topic, std::vector<Message> messages, Callback<Appended> done,
                     std::size_t max_messages) {
  if (auto ok = check_publish(topic, messages, options_.message_limits, max_messages); !ok) {
    return done(tl::unexpected(ok.error()));
  }
  enqueue(PublishReq{std::move(topic), std::move(messages), std::move(done),
                     std::chrono::steady_clock::now(), PublishConditions{}});
}

void Broker::publish_if(std::string topic, std::vector<Message> messages,
                        PublishConditions conditions, Callback<Appended> done) {
  if (auto ok = check_publish(topic, messages, options_.message_limits,
                              std::numeric_limits<std::size_t>::max());
      !ok) {
    return done(tl::unexpected(ok.error()));
  }
  if (const auto& c = conditions.last_subject_offset) {
    if (c->subject.empty()) {
      return done(fail(Errc::invalid_subject, "publish: the expected subject is empty"));
    }
    if (auto ok = validate_subject(c->subject); !ok) {
      return done(fail(Errc::invalid_subject, "publish: expected " + ok.error().detail));
    }
  }
  enqueue(PublishReq{std::move(topic), std::move(messages), std::move(done),
                     std::chrono::steady_clock::now(), std::move(conditions)});
}

void Broker::enqueue(Request req) {
  {
    std::unique_lock lock(queue_mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(req));
      lock.unlock();
      queue_cv_.notify_one();
      return;
    }
  }
  std::visit([](auto& r) { r.done(fail(Errc::shutting_down, "the broker is stopping")); }, req);
}

void Broker::write_groups(GroupWrite write, Callback<void> done) {
  enqueue(GroupReq{std::move(write), std::move(done)});
}

void Broker::set_topic_listener(std::function<void(std::vector<TopicEvent>)> listener) {
  topic_listener_ = std::move(listener);
}

std::vector<storage::GroupRecord> Broker::take_loaded_groups() { return std::move(loaded_groups_); }

Result<Offset> Broker::offset_for_timestamp(std::string_view topic,
                                            std::int64_t timestamp_ms) const {
  auto meta = describe_topic(topic);
  if (!meta) return tl::unexpected(meta.error());
  // Lowest offset in [lo, hi) whose timestamp >= timestamp_ms; hi when there is none.
  std::uint64_t lo = meta->first_offset.value;
  std::uint64_t hi = meta->next_offset.value;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    auto read = store_->read(meta->id, Offset{mid}, storage::ReadLimits{1, 1});
    if (!read) return tl::unexpected(read.error());
    if (read->empty()) return Offset{hi};  // deleted under us
    if (read->front().timestamp_ms < timestamp_ms) {
      lo = read->front().offset.value + 1;
    } else {
      hi = mid;
    }
  }
  return Offset{lo};
}

std::vector<TopicInfo> Broker::list_topics() const {
  std::shared_lock lock(table_mutex_);
  std::vector<TopicInfo> out;
  out.reserve(topics_.size());
  for (const auto& [_, meta] : topics_) out.push_back(meta);
  return out;
}

Result<TopicInfo> Broker::describe_topic(std::string_view name) const {
  std::shared_lock lock(table_mutex_);
  const auto it = topics_.find(name);
  if (it == topics_.end()) return tl::unexpected(not_found(name));
  return it->second;
}

Result<FetchResult> Broker::fetch(std::string_view topic, Offset from,
                                  storage::ReadLimits limits) const {
  auto meta = describe_topic(topic);
  if (!meta) return tl::unexpected(meta.error());
  FetchResult out{meta->first_offset, meta->next_offset, {}};
  const Offset start = std::max(from, meta->first_offset);
  if (start >= meta->next_offset) return out;
  auto read = store_->read(meta->id, start, limits);
  if (!read) return tl::unexpected(read.error());
  // A concurrent commit may have stored more than `meta` knows of: serve only what was
  // confirmed when we looked, so a reader never sees a message before its producer's confirm.
  auto& msgs = *read;
  while (!msgs.empty() && msgs.back().offset >= meta->next_offset) msgs.pop_back();
  out.messages = std::move(msgs);
  return out;
}

Result<std::shared_ptr<const storage::MessageBlock>> Broker::fetch_block(
    std::string_view topic, Offset from, storage::ReadLimits limits) const {
  auto meta = describe_topic(topic);
  if (!meta) return tl::unexpected(meta.error());
  const Offset start = std::max(from, meta->first_offset);
  if (start >= meta->next_offset) return std::make_shared<const storage::MessageBlock>();
  auto read = store_->read_block(meta->id, start, limits);
  if (!read) return tl::unexpected(read.error());
  // Only what was confirmed when we looked, as in fetch().
  auto& msgs = (*read)->messages;
  while (!msgs.empty() && msgs.back().offset >= meta->next_offset) msgs.pop_back();
  return std::shared_ptr<const storage::MessageBlock>{std::move(*read)};
}

void Broker::run_reclaimer() {
  using Clock = std::chrono::steady_clock;
  const auto interval = options_.retention_interval;
  auto next_pass = Clock::now() + interval;
  for (;;) {
    std::optional<BackupJob> backup;
    std::optional<PurgeReq> purge;
    std::optional<Reclaim> reclaim;
    bool pass = false;
    {
      std::unique_lock lock(reclaim_mutex_);
      const auto ready = [this] {
        return reclaim_stopping_ || retention_due_ || !reclaim_queue_.empty() ||
               !backups_.empty() || !purge_plans_.empty();
      };
      if (interval.count() > 0) {
        reclaim_cv_.wait_until(lock, next_pass, ready);
      } else {
        reclaim_cv_.wait(lock, ready);
      }
      if (reclaim_stopping_) {
        // Pending reclaims are skipped: the data is already deleted, and RocksDB's own
        // compactions give the space back over time. Pending backups fail.
        auto backups = std::move(backups_);
        backups_.clear();
        auto purges = std::move(purge_plans_);
        purge_plans_.clear();
        lock.unlock();
        for (auto& b : backups) b.done(fail(Errc::shutting_down, "the broker is stopping"));
        for (auto& p : purges) p.done(fail(Errc::shutting_down, "the broker is stopping"));
        return;
      }
      if (!purge_plans_.empty()) {  // a client waits on it: before backups and compactions
        purge = std::move(purge_plans_.front());
        purge_plans_.pop_front();
      } else if (!backups_.empty()) {
        backup = std::move(backups_.front());
        backups_.pop_front();
      } else if (!reclaim_queue_.empty()) {
        reclaim = reclaim_queue_.front();
        reclaim_queue_.pop_front();
        if (reclaim->trimmed_end) {
          // Later trims of the same topic widen this one: one compaction for all of them.
          std::erase_if(reclaim_queue_, [&](const Reclaim& r) {
            if (r.id != reclaim->id || !r.trimmed_end) return false;
            reclaim->trimmed_end = std::max(*reclaim->trimmed_end, *r.trimmed_end);
            return true;
          });
        }
      } else if (retention_due_ || (interval.count() > 0 && Clock::now() >= next_pass)) {
        retention_due_ = false;
        pass = true;
      }
    }
    if (purge) {
      plan_purge(std::move(*purge));
    } else if (backup) {
      backup->done(run_backup(backup->dir));
    } else if (reclaim) {
      // Space only; the data is already deleted.
      std::ignore = reclaim->trimmed_end
                        ? store_->reclaim_trimmed(reclaim->id, *reclaim->trimmed_end)
                        : store_->reclaim(reclaim->id);
    } else if (pass) {
      run_retention_pass();
      next_pass = Clock::now() + interval;
    }
  }
}

void Broker::run_writer() {
  std::vector<Request> batch;
  for (;;) {
    {
      std::unique_lock lock(queue_mutex_);
      const auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (writable_) {
        queue_cv_.wait(lock, ready);
      } else if (!queue_cv_.wait_for(lock, options_.storage_retry_interval, ready)) {
        // No traffic while the storage is unwritable: retry it anyway, so the health (and
        // readiness) comes back when the disk does, not at the next publish.
        lock.unlock();
        maybe_recover();
        continue;
      }
      if (queue_.empty()) return;  // stopping and drained
      if (stopping_) {
        // Shutdown is bounded: publishes and topic changes still queued now (their
        // connections were closed by the shutdown timeout) fail with shutting_down; group
        // progress is small and still written, so acks already given are not lost.
        std::deque<Request> rest;
        rest.swap(queue_);
        lock.unlock();
        for (auto& req : rest) {
          if (std::holds_alternative<GroupReq>(req)) {
            batch.push_back(std::move(req));
          } else {
            std::visit([](auto& r) { r.done(fail(Errc::shutting_down, "the broker is stopping")); },
                       req);
          }
        }
        if (!batch.empty()) commit(batch);
        batch.clear();
        continue;
      }
      // Take what is there (never wait for a batch to fill), up to the commit bounds.
      std::size_t messages = 0;
      std::size_t bytes = 0;
      while (!queue_.empty()) {
        const auto [m, b] = std::visit(
            [](const auto& r) {
              return std::pair{request_messages(r), request_bytes(r)};
            },
            queue_.front());
        if (!batch.empty() && (messages + m > options_.max_commit_messages ||
                               bytes + b > options_.max_commit_bytes)) {
          break;
        }
        messages += m;
        bytes += b;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    commit(batch);
    batch.clear();
  }
}

// The configured durability, unless every request of the commit is group progress that asked
// for no sync: then the commit is only written (GroupWrite::durability).
Durability Broker::commit_durability(const std::vector<Request>& batch) const {
  for (const auto& req : batch) {
    const auto* group = std::get_if<GroupReq>(&req);
    if (group == nullptr || group->write.durability == Durability::fsync) {
      return options_.durability;
    }
  }
  return Durability::os;
}

namespace {

// Message ids a commit has answered, by (topic id, message id): those it stores, and those it
// found stored already. A repeat later in the same commit (same request or another
// connection's) finds its original here; the store does not have the new ones yet. The views
// point into the requests' messages, alive until the commit ends.
struct PendingId {
  Offset offset;
  std::uint64_t hash = 0;
};
using IdKey = std::pair<std::uint32_t, std::string_view>;
struct IdKeyHash {
  std::size_t operator()(const IdKey& k) const noexcept {
    return std::hash<std::string_view>{}(k.second) ^ (std::size_t{k.first} * 0x9E3779B97F4A7C15u);
  }
};

// Outcome per request: the error it failed with, or the value it will get if the write
// succeeds.
// A partial purge whose bytes the background thread must read first: [from, end) of topic id.
struct PurgePlanNeeded {
  TopicId id;
  Offset from;
  Offset end;
};
using Outcome = std::variant<Error, TopicInfo, std::monostate, Appended, std::uint64_t, PurgeResult,
                             PurgePlanNeeded>;

}  // namespace

// One commit on the writer thread: a working copy of the topics the batch touches, the
// storage batch being built, the dedup state within the commit, and each request's outcome.
// Nothing of it is visible to readers until the write succeeded.
struct Broker::Commit {
  Commit(Broker& b, std::span<const Request> batch)
      : broker(b), now(b.options_.now_ms()), next_id(b.next_topic_id_) {
    reserve(batch);
  }

  Outcome stage(CreateReq& req);
  Outcome stage(DeleteReq& req);
  Outcome stage(PublishReq& req);
  Outcome stage(GroupReq& req);
  Outcome stage(AlterReq& req);
  Outcome stage(TrimReq& req);
  Outcome stage(SubjectsReq& req);
  Outcome stage(PurgeReq& req);
  Outcome stage(ReleaseReq& req);
  // A PutTopic (and a TopicEvent) per topic the batch changed and kept, and the next id.
  void add_topic_metadata();
  // Runs each request's callback: its error, the write's error, or its value.
  void complete(std::vector<Request>& batch, const Result<void>& written);

  Broker& broker;
  const std::int64_t now;
  std::uint32_t next_id;
  // Name -> meta (nullopt = deleted in this commit). Only touched topics.
  std::map<std::string, std::optional<TopicInfo>, std::less<>> work;
  std::set<std::string, std::less<>> dirty;  // topics whose metadata this commit changes
  std::vector<TopicEvent> events;
  // Hashed: ids often share long prefixes, which made an ordered map's compares long.
  std::unordered_map<IdKey, PendingId, IdKeyHash> pending_ids;
  storage::WriteBatch wb;
  std::vector<Outcome> outcomes;
  std::size_t message_count = 0;
  // What this commit adds to the per-topic counters, merged in once it is written.
  std::map<std::string, TopicCounters, std::less<>> counted;
  // Group floors this commit changes, in order, and the topics it drops (Broker::group_floors_).
  std::vector<FloorChange> floor_changes;
  std::vector<std::uint32_t> dropped_topics;
  // The earliest due time of the messages this commit schedules (Broker::note_scheduled).
  std::optional<std::int64_t> earliest_scheduled;

 private:
  void reserve(std::span<const Request> batch);
  std::optional<TopicInfo>& lookup(const std::string& name);
  // subjects_overlap if a filter of `subjects` overlaps one of another topic (as this commit
  // leaves it so far).
  std::optional<Error> overlap(const std::string& name, const std::vector<std::string>& subjects);
  TopicInfo make_topic(const std::string& name, const TopicSettings& settings = {});
  // Sets stored[i] to the store's unexpired dedup entry of messages[i]'s id. It is the one
  // step of a publish that can fail, and it fails the request before any of its messages is
  // in the batch.
  Result<void> find_stored(const std::vector<Message>& messages, const TopicInfo& topic,
                           std::vector<std::optional<storage::DedupEntry>>& stored);
  MessageResult stage_message(TopicInfo& topic, const Message& m,
                              const std::optional<storage::DedupEntry>& stored,
                              TopicCounters& counters);
  // Whether every message of a publish has an id already stored (in the store or earlier in
  // this commit): a retry of a conditional publish that was stored is answered as duplicates.
  bool all_duplicates(const std::vector<Message>& messages, const TopicInfo& topic,
                      const std::vector<std::optional<storage::DedupEntry>>& stored) const;
  // The first condition `topic` (as this commit leaves it so far) fails; nullopt if none does.
  Result<std::optional<ConditionFailure>> check(const TopicInfo& topic,
                                                const PublishConditions& conditions);
  // The topic's tail (Broker::tails_), built if missing: its newest kConditionScan messages
  // from the store, then those this commit appended so far.
  Result<TopicTail*> tail_of(const TopicInfo& topic);
  // Records an append in the topic's tail, if it has one.
  void note_append(const TopicInfo& topic, const Message& m, Offset offset);
};

// An Append per message and a PutDedup per id, sized once: an op is some 180 bytes, and a
// commit holds hundreds of them.
void Broker::Commit::reserve(std::span<const Request> batch) {
  std::size_t messages = 0;
  std::size_t ids = 0;
  for (const auto& req : batch) {
    if (const auto* pub = std::get_if<PublishReq>(&req)) {
      messages += pub->messages.size();
      for (const auto& m : pub->messages) ids += m.id.empty() ? 0 : 1;
    }
  }
  wb.ops.reserve(messages + ids + batch.size() + 8);
  pending_ids.reserve(ids);
  outcomes.reserve(batch.size());
}

std::optional<TopicInfo>& Broker::Commit::lookup(const std::string& name) {
  auto it = work.find(name);
  if (it != work.end()) return it->second;
  std::shared_lock lock(broker.table_mutex_);
  const auto t = broker.topics_.find(name);
  std::optional<TopicInfo> meta;
  if (t != broker.topics_.end()) meta = t->second;
  return work.emplace(name, std::move(meta)).first->second;
}

TopicInfo Broker::Commit::make_topic(const std::string& name, const TopicSettings& settings) {
  TopicInfo meta;
  meta.id = TopicId{next_id++};
  meta.name = name;
  meta.created_at_ms = now;
  meta.dedup_window_ms =
      settings.dedup_window_ms == 0 ? storage::kDefaultDedupWindowMs : settings.dedup_window_ms;
  meta.dedup_conflict = settings.dedup_conflict;
  const auto limits = apply_retention(broker.options_.default_retention, settings.retention);
  meta.max_age_ms = limits.max_age_ms;
  meta.max_bytes = limits.max_bytes;
  meta.max_messages = limits.max_messages;
  meta.subjects = settings.subjects;
  meta.retention_mode = settings.retention_mode;
  return meta;
}

std::optional<Error> Broker::Commit::overlap(const std::string& name,
                                             const std::vector<std::string>& subjects) {
  if (subjects.empty()) return std::nullopt;
  const auto clash = [&](const std::string& other,
                         const std::vector<std::string>& theirs) -> std::optional<Error> {
    for (const auto& a : subjects) {
      for (const auto& b : theirs) {
        if (!subject_filters_overlap(a, b)) continue;
        std::string detail = "subject '";
        detail += a;
        detail += "' overlaps subject '";
        detail += b;
        detail += "' of topic '";
        detail += other;
        detail += "'";
        return Error{Errc::subjects_overlap, std::move(detail)};
      }
    }
    return std::nullopt;
  };
  for (const auto& [other, meta] : work) {
    if (other == name || !meta) continue;
    if (auto e = clash(other, meta->subjects)) return e;
  }
  // One scan over the topics, only when a topic's subjects are set: rare, and the index
  // answers per subject, not per filter.
  std::shared_lock lock(broker.table_mutex_);
  for (const auto& [other, meta] : broker.topics_) {
    if (other == name || meta.subjects.empty() || work.contains(other)) continue;
    if (auto e = clash(other, meta.subjects)) return e;
  }
  return std::nullopt;
}

Outcome Broker::Commit::stage(CreateReq& req) {
  auto& slot = lookup(req.name);
  if (slot) return Error{Errc::topic_exists, "topic '" + req.name + "' already exists"};
  if (auto e = overlap(req.name, req.settings.subjects)) return std::move(*e);
  slot = make_topic(req.name, req.settings);
  dirty.insert(req.name);
  return *slot;  // as created: a publish later in the same commit is not part of the answer
}

Outcome Broker::Commit::stage(DeleteReq& req) {
  auto& slot = lookup(req.name);
  if (!slot) return not_found(req.name);
  wb.ops.emplace_back(storage::DropTopic{slot->id, slot->name});
  dropped_topics.push_back(slot->id.value);
  std::erase_if(floor_changes, [&](const FloorChange& f) { return f.topic == slot->id.value; });
  broker.tails_.erase(slot->id.value);
  events.push_back(TopicEvent{slot->name, slot->id, slot->next_offset, true, Offset{}});
  slot.reset();
  return std::monostate{};
}

Outcome Broker::Commit::stage(PublishReq& req) {
  auto& slot = lookup(req.topic);
  bool created = false;
  if (!slot) {
    if (!broker.options_.auto_create_topics) return not_found(req.topic);
    slot = make_topic(req.topic);
    created = true;
  }
  if (!slot->subjects.empty()) {
    // A topic with subjects holds only messages on them (as a JetStream stream does); one
    // without a subject reads as the topic's name.
    for (std::size_t i = 0; i < req.messages.size(); ++i) {
      const auto& subject = req.messages[i].subject;
      if (subject.empty() ||
          std::any_of(slot->subjects.begin(), slot->subjects.end(),
                      [&](const std::string& f) { return subject_matches(f, subject); })) {
        continue;
      }
      std::string detail = "publish: message ";
      detail += std::to_string(i);
      detail += " subject '";
      detail += subject;
      detail += "' is not one of topic '";
      detail += req.topic;
      detail += "''s subjects (";
      detail += subject_list(slot->subjects);
      detail += ")";
      return Error{Errc::invalid_subject, std::move(detail)};
    }
  }
  // A delivery time not after now is now: an ordinary message (docs/semantics.md, "Delayed
  // delivery"). Decided by the clock of the commit that stores it.
  for (auto& m : req.messages) {
    if (m.deliver_at_ms <= now) m.deliver_at_ms = 0;
  }
  std::vector<std::optional<storage::DedupEntry>> stored(req.messages.size());
  if (!created) {  // a topic created now has no ids stored
    if (auto found = find_stored(req.messages, *slot, stored); !found) {
      return std::move(found.error());
    }
  }
  if (req.conditions.any() && !all_duplicates(req.messages, *slot, stored)) {
    auto failed = check(*slot, req.conditions);
    if (!failed) return std::move(failed.error());
    if (*failed) {
      if (created) slot.reset();  // nothing stored: the topic is not created either
      Appended refused{req.topic, {}, false, std::move(*failed)};
      refused.results.assign(req.messages.size(),
                             MessageResult{Errc::expectation_failed, false, Offset{}});
      return refused;
    }
  }
  dirty.insert(req.topic);
  Appended appended{req.topic, {}, created, std::nullopt};
  appended.results.reserve(req.messages.size());
  auto& counters = counted[req.topic];
  for (std::size_t i = 0; i < req.messages.size(); ++i) {
    appended.results.push_back(stage_message(*slot, req.messages[i], stored[i], counters));
  }
  return appended;
}

// One batched lookup for the whole request: one Get per id was most of the writer's CPU with
// ids (docs/performance.md). An id stored earlier in this commit is looked up too (not worth a
// second probe of pending_ids for every id); the store does not have it, and pending_ids
// answers in stage_message.
Result<void> Broker::Commit::find_stored(const std::vector<Message>& messages,
                                         const TopicInfo& topic,
                                         std::vector<std::optional<storage::DedupEntry>>& stored) {
  std::vector<std::size_t> lookup_at;  // index in messages of each id in lookup_ids
  std::vector<std::string_view> lookup_ids;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].id.empty()) continue;
    lookup_at.push_back(i);
    lookup_ids.push_back(messages[i].id);
  }
  if (lookup_ids.empty()) return {};
  auto found = broker.store_->find_dedups(topic.id, lookup_ids);
  if (!found) return tl::unexpected(std::move(found.error()));
  for (std::size_t k = 0; k < lookup_at.size(); ++k) {
    const auto& entry = (*found)[k];
    if (entry && !storage::dedup_expired(entry->timestamp_ms, topic.dedup_window_ms, now)) {
      stored[lookup_at[k]] = *entry;
    }
  }
  return {};
}

bool Broker::Commit::all_duplicates(
    const std::vector<Message>& messages, const TopicInfo& topic,
    const std::vector<std::optional<storage::DedupEntry>>& stored) const {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].id.empty()) return false;
    if (!stored[i] && !pending_ids.contains(IdKey{topic.id.value, messages[i].id})) return false;
  }
  return true;
}

namespace {

std::string offset_text(std::optional<Offset> o) {
  return o ? std::to_string(o->value) : std::string("none");
}

std::string id_text(std::string_view id) {
  if (id.empty()) return "none";
  std::string out = "'";
  out += id;
  out += "'";
  return out;
}

// The key a message has in a topic's tail: its subject, or the topic's name without one.
std::string_view tail_subject(const TopicInfo& topic, const Message& m) {
  return m.subject.empty() ? std::string_view(topic.name) : std::string_view(m.subject);
}

}  // namespace

Result<std::optional<ConditionFailure>> Broker::Commit::check(const TopicInfo& topic,
                                                              const PublishConditions& c) {
  using What = ConditionFailure::What;
  if (c.last_offset) {
    const std::optional<Offset> last =
        topic.next_offset.value == 0 ? std::nullopt
                                     : std::optional<Offset>{Offset{topic.next_offset.value - 1}};
    if (last != *c.last_offset) {
      std::string detail = "expected last offset ";
      detail += offset_text(*c.last_offset);
      detail += ", the topic's last offset is ";
      detail += offset_text(last);
      return ConditionFailure{What::last_offset, last, true, {}, std::move(detail)};
    }
  }
  if (!c.last_id && !c.last_subject_offset) return std::optional<ConditionFailure>{};
  auto tail = tail_of(topic);
  if (!tail) return tl::unexpected(std::move(tail.error()));
  if (c.last_id) {
    const std::string last = (*tail)->last_id.value_or(std::string());
    if (last != *c.last_id) {
      std::string detail = "expected last id ";
      detail += id_text(*c.last_id);
      detail += ", the topic's last id is ";
      detail += id_text(last);
      if (!(*tail)->last_id && (*tail)->id_from > topic.first_offset) {
        detail += " among its ";
        detail += std::to_string(kConditionScan);
        detail += " newest messages";
      }
      return ConditionFailure{What::last_id, std::nullopt, true, last, std::move(detail)};
    }
  }
  if (const auto& want = c.last_subject_offset) {
    std::optional<Offset> last;
    bool known = true;
    if (const auto it = (*tail)->subjects.find(want->subject); it != (*tail)->subjects.end()) {
      if (it->second >= topic.first_offset) last = it->second;  // else removed since
    } else {
      known = (*tail)->subjects_from <= topic.first_offset;
    }
    if (!known || last != want->offset) {
      std::string detail = "expected last offset ";
      detail += offset_text(want->offset);
      detail += " of subject '";
      detail += want->subject;
      detail += "', ";
      if (known) {
        detail += "its last offset is ";
        detail += offset_text(last);
      } else {
        detail += "its last offset is unknown: it has no message among the topic's ";
        detail += std::to_string(kConditionScan);
        detail += " newest, and older ones are not searched";
      }
      return ConditionFailure{What::last_subject_offset, last, known, {}, std::move(detail)};
    }
  }
  return std::optional<ConditionFailure>{};
}

Result<Broker::TopicTail*> Broker::Commit::tail_of(const TopicInfo& topic) {
  auto& tails = broker.tails_;
  if (const auto it = tails.find(topic.id.value); it != tails.end()) return &it->second;
  const Offset end = topic.next_offset;
  Offset from = topic.first_offset;
  if (end.value - from.value > kConditionScan) from = Offset{end.value - kConditionScan};
  TopicTail built{from, {}, from, std::nullopt};
  const auto note = [&](const Message& m, Offset at) {
    built.subjects.insert_or_assign(std::string(tail_subject(topic, m)), at);
    if (!m.id.empty()) built.last_id = m.id;
  };
  // What is stored (all below what this commit appends), then this commit's appends.
  Offset at = from;
  while (at < end) {
    auto read = broker.store_->read(topic.id, at, kTrimScan);
    if (!read) return tl::unexpected(std::move(read.error()));
    if (read->empty()) break;
    for (const auto& m : *read) {
      if (m.offset >= end) break;
      note(m.message, m.offset);
      at = Offset{m.offset.value + 1};
    }
    if (read->back().offset.value + 1 != at.value) break;
  }
  for (const auto& op : wb.ops) {
    const auto* append = std::get_if<storage::Append>(&op);
    if (append != nullptr && append->topic == topic.id && append->offset >= from) {
      note(*append->message, append->offset);
    }
  }
  if (built.subjects.size() > kMaxConditionSubjects) {  // as note_append would have forgotten
    built.subjects.clear();
    built.subjects_from = end;
  }
  return &tails.insert_or_assign(topic.id.value, std::move(built)).first->second;
}

void Broker::Commit::note_append(const TopicInfo& topic, const Message& m, Offset offset) {
  auto& tails = broker.tails_;
  if (tails.empty()) return;  // the common case: no conditions since start
  const auto it = tails.find(topic.id.value);
  if (it == tails.end()) return;
  auto& tail = it->second;
  const auto subject = tail_subject(topic, m);
  auto known = tail.subjects.find(std::string(subject));
  if (known != tail.subjects.end()) {
    known->second = offset;
  } else {
    if (tail.subjects.size() >= kMaxConditionSubjects) {
      tail.subjects.clear();  // bounded: remember from this message on
      tail.subjects_from = offset;
    }
    tail.subjects.emplace(std::string(subject), offset);
  }
  if (!m.id.empty()) tail.last_id = m.id;
}

MessageResult Broker::Commit::stage_message(TopicInfo& topic, const Message& m,
                                            const std::optional<storage::DedupEntry>& stored,
                                            TopicCounters& counters) {
  const Offset offset = topic.next_offset;
  if (m.deliver_at_ms != 0 &&
      static_cast<std::uint64_t>(m.deliver_at_ms - now) > broker.options_.max_delivery_delay_ms) {
    return {Errc::delay_too_long, false, Offset{}};  // before dedup: nothing of it is stored
  }
  if (!m.id.empty()) {
    const auto hash = payload_hash(m.payload);
    // One probe: an id already known to this commit (stored by it, or found stored before
    // it) is a duplicate; a new one is entered as stored at `offset`. A found entry is
    // entered too, so a repeat later in the commit needs no store answer.
    const PendingId known =
        stored ? PendingId{stored->offset, stored->payload_hash} : PendingId{offset, hash};
    const auto [it, fresh] =
        pending_ids.try_emplace(IdKey{topic.id.value, std::string_view{m.id}}, known);
    if (!fresh || stored) {
      counters.dedup_hits += 1;
      const PendingId& original = it->second;
      if (original.hash != hash && topic.dedup_conflict == DedupConflict::error) {
        return {Errc::dedup_conflict, false, Offset{}};
      }
      return {Errc::ok, true, original.offset};
    }
    wb.ops.emplace_back(storage::Append{topic.id, offset, now, &m});
    // Same batch as the Append: after a crash both are stored or neither.
    wb.ops.emplace_back(storage::PutDedup{topic.id, m.id, offset, now, hash});
  } else {
    wb.ops.emplace_back(storage::Append{topic.id, offset, now, &m});
  }
  if (m.deliver_at_ms != 0) {
    // The schedule's copy, in the same batch: released (appended again) when due.
    wb.ops.emplace_back(storage::Schedule{topic.id, offset, now, &m});
    topic.scheduled += 1;
    earliest_scheduled = std::min(earliest_scheduled.value_or(m.deliver_at_ms), m.deliver_at_ms);
  }
  note_append(topic, m, offset);
  topic.next_offset = Offset{offset.value + 1};
  topic.messages += 1;
  topic.bytes += m.size_bytes();
  message_count += 1;
  counters.messages_published += 1;
  counters.bytes_published += m.size_bytes();
  return {Errc::ok, false, offset};
}

Outcome Broker::Commit::stage(GroupReq& req) {
  auto& g = req.write;
  for (const auto& put : g.puts) {
    const auto& slot = lookup(put.topic);
    if (!slot || slot->id != put.record.topic) return not_found(put.topic);
  }
  if (!g.dead_letters.empty()) {
    auto& dlq = lookup(g.dead_letter_topic);
    if (!dlq) dlq = make_topic(g.dead_letter_topic);  // created when needed
    dirty.insert(g.dead_letter_topic);
    for (const auto& m : g.dead_letters) {
      wb.ops.emplace_back(storage::Append{dlq->id, dlq->next_offset, now, &m});
      note_append(*dlq, m, dlq->next_offset);
      dlq->next_offset = Offset{dlq->next_offset.value + 1};
      dlq->messages += 1;
      dlq->bytes += m.size_bytes();
    }
    message_count += g.dead_letters.size();
  }
  for (const auto& put : g.puts) {
    wb.ops.emplace_back(storage::PutGroup{put.record});
    // Only a work-queue topic's floors decide anything: other topics' group writes (every ack
    // commit) add no copy of the group's name and no work under floors_mutex_.
    if (lookup(put.topic)->retention_mode == RetentionMode::work_queue) {
      floor_changes.push_back({put.record.topic.value, put.record.name, put.record.ack_floor});
    }
  }
  for (const auto& drop : g.drops) {
    wb.ops.emplace_back(drop);
    floor_changes.push_back({drop.topic.value, drop.name, std::nullopt});
  }
  return std::monostate{};
}

Outcome Broker::Commit::stage(AlterReq& req) {
  auto& slot = lookup(req.name);
  if (!slot) return not_found(req.name);
  const auto limits =
      apply_retention({slot->max_age_ms, slot->max_bytes, slot->max_messages}, req.change);
  slot->max_age_ms = limits.max_age_ms;
  slot->max_bytes = limits.max_bytes;
  slot->max_messages = limits.max_messages;
  dirty.insert(req.name);
  return *slot;
}

Outcome Broker::Commit::stage(TrimReq& req) {
  auto& slot = lookup(req.name);
  // Stale (the topic was dropped or re-created, or trimmed meanwhile): nothing to do.
  if (!slot || slot->id != req.id || slot->first_offset != req.from || req.end <= req.from ||
      req.end > slot->next_offset) {
    return std::uint64_t{0};
  }
  if (req.end > req.by_limits && slot->retention_mode == RetentionMode::work_queue) {
    // Removed because every group was done with it when planned: still so, with the floors
    // this commit stages before it? Otherwise stale (the next pass plans again).
    const auto floor = broker.work_queue_floor(req.id, floor_changes);
    if (!floor || *floor < req.end) return std::uint64_t{0};
  }
  const std::uint64_t count = req.end.value - req.from.value;
  wb.ops.emplace_back(storage::TrimTopic{req.id, req.end});
  slot->first_offset = req.end;
  slot->messages -= std::min(slot->messages, count);
  slot->bytes -= std::min(slot->bytes, req.removed_bytes);
  dirty.insert(req.name);
  return count;
}

Outcome Broker::Commit::stage(SubjectsReq& req) {
  auto& slot = lookup(req.name);
  if (!slot) return not_found(req.name);
  if (auto e = overlap(req.name, req.subjects)) return std::move(*e);
  slot->subjects = req.subjects;
  dirty.insert(req.name);
  return *slot;
}

Outcome Broker::Commit::stage(PurgeReq& req) {
  auto& slot = lookup(req.name);
  if (!slot) return not_found(req.name);
  const auto& plan = req.planned;
  Offset end;
  std::uint64_t removed_bytes = 0;
  if (plan && plan->id == slot->id && plan->from == slot->first_offset &&
      plan->end <= slot->next_offset) {
    end = plan->end;  // as planned: a `keep` counts from the end the topic had then
    removed_bytes = plan->removed_bytes;
  } else {
    end = purge_end(*slot, req.req);
    if (end <= slot->first_offset) return PurgeResult{0, slot->first_offset};
    if (end != slot->next_offset) {
      if (req.plans >= kMaxPurgePlans) {
        return Error{Errc::internal_error,
                     "purge: the topic's first offset kept moving while the purge was planned"};
      }
      return PurgePlanNeeded{slot->id, slot->first_offset, end};
    }
  }
  const std::uint64_t count = end.value - slot->first_offset.value;
  wb.ops.emplace_back(storage::TrimTopic{slot->id, end});
  slot->first_offset = end;
  if (end == slot->next_offset) {  // everything: exact whatever the plan read
    slot->messages = 0;
    slot->bytes = 0;
  } else {
    slot->messages -= std::min(slot->messages, count);
    slot->bytes -= std::min(slot->bytes, removed_bytes);
  }
  dirty.insert(req.name);
  return PurgeResult{count, end};
}

// Each due entry becomes an append to its topic at the topic's next offset (the message as
// published, but deliverable: deliver_at_ms 0; no dedup entry: its id already maps to the
// publish's offset) plus the deletion of the entry, in this one batch: after a crash both
// happened or neither. An entry whose topic is gone (ids are never reused) is deleted only.
Outcome Broker::Commit::stage(ReleaseReq& req) {
  std::unordered_map<std::uint32_t, std::string> names;  // topic id -> name, before this commit
  {
    std::shared_lock lock(broker.table_mutex_);
    for (const auto& [name, meta] : broker.topics_) names.emplace(meta.id.value, name);
  }
  std::uint64_t appended = 0;
  for (auto& e : req.entries) {
    wb.ops.emplace_back(storage::Unschedule{e.due_ms, e.topic, e.offset});
    const auto name = names.find(e.topic.value);
    if (name == names.end()) continue;
    auto& slot = lookup(name->second);
    if (!slot || slot->id != e.topic) continue;  // dropped (maybe re-created) in this commit
    e.message.deliver_at_ms = 0;
    const Offset offset = slot->next_offset;
    wb.ops.emplace_back(storage::Append{slot->id, offset, now, &e.message});
    note_append(*slot, e.message, offset);
    slot->next_offset = Offset{offset.value + 1};
    slot->messages += 1;
    slot->bytes += e.message.size_bytes();
    slot->scheduled -= std::min<std::uint64_t>(slot->scheduled, 1);
    dirty.insert(name->second);
    ++appended;
  }
  message_count += appended;
  return appended;
}

// Final metadata of every topic that exists after the batch, after all drops.
void Broker::Commit::add_topic_metadata() {
  for (const auto& [name, meta] : work) {
    if (meta && dirty.contains(name)) {
      wb.ops.emplace_back(storage::PutTopic{*meta});
      events.push_back(TopicEvent{name, meta->id, meta->next_offset, false, meta->first_offset});
    }
  }
  if (next_id != broker.next_topic_id_) {
    wb.ops.emplace_back(storage::SetNextTopicId{TopicId{next_id}});
  }
}

void Broker::Commit::complete(std::vector<Request>& batch, const Result<void>& written) {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& outcome = outcomes[i];
    std::visit(
        [&](auto& req) {
          if (auto* err = std::get_if<Error>(&outcome)) return req.done(tl::unexpected(*err));
          if (!written) return req.done(tl::unexpected(written.error()));
          using R = std::decay_t<decltype(req)>;
          if constexpr (std::is_same_v<R, CreateReq> || std::is_same_v<R, AlterReq> ||
                        std::is_same_v<R, SubjectsReq>) {
            req.done(std::get<TopicInfo>(outcome));
          } else if constexpr (std::is_same_v<R, PurgeReq>) {
            if (const auto* need = std::get_if<PurgePlanNeeded>(&outcome)) {
              req.planned = PurgePlan{need->id, need->from, need->end, 0};
              req.plans += 1;
              return broker.queue_purge_plan(std::move(req));
            }
            req.done(std::get<PurgeResult>(outcome));
          } else if constexpr (std::is_same_v<R, TrimReq> || std::is_same_v<R, ReleaseReq>) {
            req.done(std::get<std::uint64_t>(outcome));
          } else if constexpr (std::is_same_v<R, DeleteReq> || std::is_same_v<R, GroupReq>) {
            req.done({});
          } else {
            req.done(std::move(std::get<Appended>(outcome)));
          }
        },
        batch[i]);
  }
}

// Stages the requests in queue order on a working copy of the topics they touch, writes the
// result in one storage write, and only then publishes the new state and completes the
// requests: a failed write changes no topic and hands out no offsets.
void Broker::commit(std::vector<Request>& batch) {
  Commit c(*this, batch);
  for (auto& req : batch) {
    c.outcomes.push_back(std::visit([&c](auto& r) { return c.stage(r); }, req));
  }
  c.add_topic_metadata();

  Result<void> written{};
  if (!c.wb.empty()) {
    maybe_recover();
    written = store_->write(c.wb, commit_durability(batch));
    note_storage(written, /*was_write=*/true);
  }
  if (written) {
    install_topics(c);
    if (!c.floor_changes.empty() || !c.dropped_topics.empty()) {
      install_floors(c.floor_changes, c.dropped_topics);
    }
  } else {
    tails_.clear();  // they counted appends that were not stored: rebuilt when next needed
  }
  record_commit(c, batch, written.has_value());
  if (written) {
    if (c.earliest_scheduled) note_scheduled(*c.earliest_scheduled);
    queue_reclaims(c, batch);
    if (topic_listener_ && !c.events.empty()) topic_listener_(std::move(c.events));
  }
  c.complete(batch, written);
}

std::optional<Offset> Broker::work_queue_floor(TopicId topic,
                                               std::span<const FloorChange> staged) const {
  GroupFloors floors;
  {
    std::lock_guard lock(floors_mutex_);
    if (const auto it = group_floors_.find(topic.value); it != group_floors_.end()) {
      floors = it->second;
    }
  }
  for (const auto& f : staged) {
    if (f.topic != topic.value) continue;
    if (f.floor) {
      floors.insert_or_assign(f.group, *f.floor);
    } else {
      floors.erase(f.group);
    }
  }
  std::optional<Offset> lowest;
  for (const auto& [name, floor] : floors) lowest = lowest ? std::min(*lowest, floor) : floor;
  return lowest;
}

void Broker::install_floors(std::span<const FloorChange> changes,
                            std::span<const std::uint32_t> dropped_topics) {
  std::lock_guard lock(floors_mutex_);
  for (const auto& f : changes) {
    if (f.floor) {
      group_floors_[f.topic].insert_or_assign(f.group, *f.floor);
    } else if (const auto it = group_floors_.find(f.topic); it != group_floors_.end()) {
      it->second.erase(f.group);
      if (it->second.empty()) group_floors_.erase(it);
    }
  }
  for (const auto id : dropped_topics) group_floors_.erase(id);
}

void Broker::install_topics(const Commit& c) {
  std::unique_lock lock(table_mutex_);
  bool subjects_changed = false;
  for (const auto& [name, meta] : c.work) {
    const auto old = topics_.find(name);
    const bool had = old != topics_.end() && !old->second.subjects.empty();
    if (had || (meta && !meta->subjects.empty())) {
      subjects_changed =
          subjects_changed || !had || !meta || meta->subjects != old->second.subjects;
    }
    if (meta) {
      topics_.insert_or_assign(name, *meta);
    } else {
      topics_.erase(name);
    }
  }
  next_topic_id_ = c.next_id;
  if (subjects_changed) rebuild_subject_index();
}

void Broker::queue_purge_plan(PurgeReq req) {
  if (to_background([&] { purge_plans_.push_back(std::move(req)); })) return;
  req.done(fail(Errc::shutting_down, "the broker is stopping"));
}

bool Broker::to_background(const std::function<void()>& push) {
  {
    std::lock_guard lock(reclaim_mutex_);
    if (reclaim_stopping_) return false;
    push();
  }
  reclaim_cv_.notify_one();
  return true;
}

void Broker::record_commit(const Commit& c, const std::vector<Request>& batch, bool written) {
  const auto done_at = std::chrono::steady_clock::now();
  std::lock_guard lock(stats_mutex_);
  stats_.commits += 1;
  stats_.requests += batch.size();
  if (!written) {
    stats_.failed_commits += 1;
    return;
  }
  stats_.messages += c.message_count;
  auto& topics = metrics_.topics;
  for (const auto& [name, counters] : c.counted) {
    auto& t = topics[name];
    t.messages_published += counters.messages_published;
    t.bytes_published += counters.bytes_published;
    t.dedup_hits += counters.dedup_hits;
  }
  for (const auto& [name, meta] : c.work) {
    if (!meta) topics.erase(name);  // a re-created topic counts from 0
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto* pub = std::get_if<PublishReq>(&batch[i]);
    if (pub == nullptr || !std::holds_alternative<Appended>(c.outcomes[i])) continue;
    metrics_.publish_confirm.observe(
        std::chrono::duration<double>(done_at - pub->enqueued).count());
  }
}

void Broker::queue_reclaims(const Commit& c, const std::vector<Request>& batch) {
  bool wake = false;
  {
    std::lock_guard lock(reclaim_mutex_);
    for (const auto& op : c.wb.ops) {
      if (const auto* drop = std::get_if<storage::DropTopic>(&op)) {
        reclaim_queue_.push_back({drop->id, std::nullopt});
        wake = true;
      } else if (const auto* trim = std::get_if<storage::TrimTopic>(&op)) {
        reclaim_queue_.push_back({trim->topic, trim->end});
        wake = true;
      }
    }
    // An alter may make messages due at once: a pass runs now, not at the next tick (unless
    // passes are left to run_retention_pass() alone).
    for (const auto& req : batch) {
      if (std::holds_alternative<AlterReq>(req) && options_.retention_interval.count() > 0) {
        retention_due_ = wake = true;
      }
    }
  }
  if (wake) reclaim_cv_.notify_one();
}

}  // namespace loft::broker
