#pragma once
// ForwardingStore: a Store that passes every call to another one. Test decorators (faults,
// gates) derive from it and override what they change. It owns the inner store when built
// from a unique_ptr, and only borrows it when built from a reference (to reopen a broker over
// the same memory store, as a restart would).

#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "loft/storage/store.hpp"

namespace loft::testing {

class ForwardingStore : public storage::Store {
 public:
  explicit ForwardingStore(std::unique_ptr<storage::Store> inner)
      : owned_(std::move(inner)), inner_(owned_.get()) {}
  explicit ForwardingStore(storage::Store& borrowed) : inner_(&borrowed) {}

  storage::Store& inner() { return *inner_; }

  Result<std::vector<TopicInfo>> load_topics() override { return inner_->load_topics(); }
  Result<TopicId> load_next_topic_id() override { return inner_->load_next_topic_id(); }
  Result<std::vector<storage::GroupRecord>> load_groups() override { return inner_->load_groups(); }
  Result<void> write(const storage::WriteBatch& batch, storage::Durability durability) override {
    return inner_->write(batch, durability);
  }
  Result<std::vector<StoredMessage>> read(TopicId topic, Offset from,
                                          storage::ReadLimits limits) const override {
    return inner_->read(topic, from, limits);
  }
  Result<std::optional<storage::DedupEntry>> find_dedup(TopicId topic,
                                                        std::string_view id) const override {
    return inner_->find_dedup(topic, id);
  }
  Result<std::vector<std::optional<storage::DedupEntry>>> find_dedups(
      TopicId topic, std::span<const std::string_view> ids) const override {
    return inner_->find_dedups(topic, ids);
  }
  Result<std::vector<storage::ScheduledMessage>> read_schedule(
      std::int64_t from_due_ms, std::int64_t up_to_due_ms,
      storage::ReadLimits limits) const override {
    return inner_->read_schedule(from_due_ms, up_to_due_ms, limits);
  }
  Result<void> reclaim(TopicId dropped) override { return inner_->reclaim(dropped); }
  Result<void> reclaim_trimmed(TopicId topic, Offset end) override {
    return inner_->reclaim_trimmed(topic, end);
  }
  Result<void> checkpoint(const std::filesystem::path& dir) override {
    return inner_->checkpoint(dir);
  }
  Result<void> flush() override { return inner_->flush(); }
  Result<void> recover() override { return inner_->recover(); }
  storage::StoreStats stats() const override { return inner_->stats(); }

 private:
  std::unique_ptr<storage::Store> owned_;
  storage::Store* inner_;
};

}  // namespace loft::testing
