// The in-memory Store: the same contract as the RocksDB store (tests/contract checks both),
// without a disk, for tests of broker logic.

#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "loft/storage/store.hpp"
#include "read_budget.hpp"

namespace loft::storage {
namespace {

// Owns every topic's metadata, messages and groups. write() takes the lock exclusively, read() and
// the load_*() calls shared, so readers see a write all or not at all. Nothing is durable: the
// Durability argument is accepted and ignored.
class MemoryStore final : public Store {
 public:
  Result<std::vector<TopicInfo>> load_topics() override {
    std::shared_lock lock{mutex_};
    std::vector<TopicInfo> out;
    out.reserve(topics_.size());
    for (const auto& [name, meta] : topics_) out.push_back(meta);
    return out;
  }

  Result<TopicId> load_next_topic_id() override {
    std::shared_lock lock{mutex_};
    return next_topic_id_;
  }

  Result<std::vector<GroupRecord>> load_groups() override {
    std::shared_lock lock{mutex_};
    std::vector<GroupRecord> out;
    out.reserve(groups_.size());
    for (const auto& [key, group] : groups_) out.push_back(group);
    return out;
  }

  Result<void> write(const WriteBatch& batch, Durability /*durability*/) override {
    // Validate first, so a bad batch changes nothing (all or nothing, as in RocksDB).
    for (const auto& op : batch.ops) {
      if (const auto* append = std::get_if<Append>(&op); append && append->message == nullptr) {
        return fail(Errc::internal_error, "write: Append without a message");
      }
      if (const auto* put = std::get_if<Schedule>(&op);
          put && (put->message == nullptr || put->message->deliver_at_ms <= 0)) {
        return fail(Errc::internal_error, "write: Schedule without a message or due time");
      }
    }
    std::unique_lock lock{mutex_};
    for (const auto& op : batch.ops) {
      std::visit([this](const auto& o) { apply(o); }, op);
    }
    return {};
  }

  Result<std::vector<StoredMessage>> read(TopicId topic, Offset from,
                                          ReadLimits limits) const override {
    std::shared_lock lock{mutex_};
    std::vector<StoredMessage> out;
    const auto log = messages_.find(topic);
    if (log == messages_.end()) return out;
    ReadBudget budget{limits};
    for (auto it = log->second.lower_bound(from); it != log->second.end(); ++it) {
      out.push_back(it->second);
      if (!budget.take(it->second.message)) break;
    }
    return out;
  }

  Result<std::optional<DedupEntry>> find_dedup(TopicId topic, std::string_view id) const override {
    std::shared_lock lock{mutex_};
    const auto it = dedup_.find(DedupKey{topic, std::string(id)});
    if (it == dedup_.end()) return std::optional<DedupEntry>{};
    return std::optional<DedupEntry>{it->second};
  }

  Result<std::vector<std::optional<DedupEntry>>> find_dedups(
      TopicId topic, std::span<const std::string_view> ids) const override {
    std::shared_lock lock{mutex_};
    std::vector<std::optional<DedupEntry>> out;
    out.reserve(ids.size());
    for (const auto id : ids) {
      const auto it = dedup_.find(DedupKey{topic, std::string(id)});
      out.push_back(it == dedup_.end() ? std::nullopt : std::optional<DedupEntry>{it->second});
    }
    return out;
  }

  Result<std::vector<ScheduledMessage>> read_schedule(std::int64_t from_due_ms,
                                                      std::int64_t up_to_due_ms,
                                                      ReadLimits limits) const override {
    std::shared_lock lock{mutex_};
    std::vector<ScheduledMessage> out;
    ReadBudget budget{limits};
    for (auto it = schedule_.lower_bound(ScheduleKey{from_due_ms, 0, 0});
         it != schedule_.end() && std::get<0>(it->first) <= up_to_due_ms; ++it) {
      out.push_back(it->second);
      if (!budget.take(it->second.message)) break;
    }
    return out;
  }

  Result<void> reclaim(TopicId /*dropped*/) override { return {}; }
  Result<void> reclaim_trimmed(TopicId /*topic*/, Offset /*end*/) override { return {}; }
  Result<void> checkpoint(const std::filesystem::path& /*dir*/) override {
    return fail(Errc::invalid_request, "the memory store cannot make a backup");
  }
  Result<void> flush() override { return {}; }

 private:
  // std::string compares as unsigned bytes, so this orders groups as the RocksDB key does.
  using GroupKey = std::pair<TopicId, std::string>;
  using DedupKey = std::pair<TopicId, std::string>;  // topic, message id

  void apply(const PutTopic& op) { topics_.insert_or_assign(op.meta.name, op.meta); }

  void apply(const Append& op) {
    messages_[op.topic].insert_or_assign(op.offset,
                                         StoredMessage{op.offset, op.timestamp_ms, *op.message});
  }

  void apply(const SetNextTopicId& op) { next_topic_id_ = op.next; }

  void apply(const DropTopic& op) {
    topics_.erase(op.name);
    messages_.erase(op.id);
    std::erase_if(groups_, [&](const auto& entry) { return entry.first.first == op.id; });
    std::erase_if(dedup_, [&](const auto& entry) { return entry.first.first == op.id; });
  }

  // Nothing expires here: the broker ignores entries older than the window, and a memory
  // store lives no longer than a test.
  void apply(const PutDedup& op) {
    dedup_.insert_or_assign(DedupKey{op.topic, std::string(op.id)},
                            DedupEntry{op.offset, op.timestamp_ms, op.payload_hash});
  }

  void apply(const PutGroup& op) {
    groups_.insert_or_assign(GroupKey{op.group.topic, op.group.name}, op.group);
  }

  void apply(const DropGroup& op) { groups_.erase(GroupKey{op.topic, op.name}); }

  void apply(const TrimTopic& op) {
    const auto log = messages_.find(op.topic);
    if (log != messages_.end())
      log->second.erase(log->second.begin(), log->second.lower_bound(op.end));
  }

  // Delayed delivery: a copy of each scheduled message, by due time, topic id and offset (the
  // RocksDB schedule key's order).
  using ScheduleKey = std::tuple<std::int64_t, std::uint32_t, std::uint64_t>;
  void apply(const Schedule& op) {
    schedule_.insert_or_assign(
        ScheduleKey{op.message->deliver_at_ms, op.topic.value, op.offset.value},
        ScheduledMessage{op.message->deliver_at_ms, op.topic, op.offset, op.timestamp_ms,
                         *op.message});
  }
  void apply(const Unschedule& op) {
    schedule_.erase(ScheduleKey{op.due_ms, op.topic.value, op.offset.value});
  }

  mutable std::shared_mutex mutex_;
  std::map<ScheduleKey, ScheduledMessage> schedule_;
  std::map<std::string, TopicInfo> topics_;  // by name, the order load_topics() returns
  std::map<TopicId, std::map<Offset, StoredMessage>> messages_;
  std::map<GroupKey, GroupRecord> groups_;  // by topic id, then name: load_groups() order
  std::map<DedupKey, DedupEntry> dedup_;
  TopicId next_topic_id_{1};
};

}  // namespace

std::unique_ptr<Store> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace loft::storage
