// The RocksDB Store's write path: write() turns one Store::WriteBatch into one RocksDB
// WriteBatch, applied atomically. Called by one thread at a time (the broker's writer).

#include <rocksdb/write_batch.h>

#include <limits>
#include <map>
#include <variant>

#include "encoding.hpp"
#include "rocksdb_store.hpp"

namespace loft::storage {
namespace {

namespace enc = encoding;

// A messages record takes consecutive appends until it holds this many bytes: big enough that
// a publish batch is one record, small enough that reading one offset decodes little.
constexpr std::size_t kMaxRecordBytes = 256 << 10;

// Messages appended at consecutive offsets of one topic within a write: one record.
struct Run {
  TopicId topic;
  Offset first;
  Offset next;
  std::string value;
};

// Removes from `runs` the messages of `topic` below `end`: a run wholly below goes, a run
// across `end` keeps its suffix (itself a record) from `end` on.
Result<void> trim_runs(std::vector<Run>& runs, TopicId topic, Offset end) {
  for (auto it = runs.begin(); it != runs.end();) {
    if (it->topic != topic || it->first >= end) {
      ++it;
    } else if (it->next <= end) {
      it = runs.erase(it);
    } else {
      std::string_view rest = it->value;
      for (auto o = it->first.value; o < end.value; ++o) {
        if (!enc::skip_message(rest)) {
          return fail(Errc::internal_error, "write: cannot cut a record it encoded");
        }
      }
      it->value = std::string(rest);
      it->first = end;
      ++it;
    }
  }
  return {};
}

// The key of what `put` adds, in its column family.
std::string key_of(const PutGroup& put) { return enc::group_key(put.group.topic, put.group.name); }
std::string key_of(const PutDedup& put) { return enc::dedup_key(put.topic, put.id); }

// Adds to `wb` the deletion of every key of `topic` in `family`, as a DropTopic does:
// `family` is the groups or the dedup column family and `Put` the op that puts into it. The
// keys of both begin with the topic's 4-byte id, so a topic's keys are one range: one
// DeleteRange. The largest id has no finite range end (names and ids are unbounded), so its
// keys are deleted one by one: those in the DB (write() runs on one thread, so nothing else is
// adding any) and those put by `earlier`, the ops before the DropTopic in the same batch (not
// yet in the DB).
template <class Put>
rocksdb::Status drop_topic_keys(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                                rocksdb::WriteBatch& wb, TopicId topic,
                                std::span<const Op> earlier) {
  const auto prefix = enc::group_begin_key(topic);
  if (topic.value != std::numeric_limits<std::uint32_t>::max()) {
    return wb.DeleteRange(family, prefix, enc::group_end_key(topic));
  }
  std::unique_ptr<rocksdb::Iterator> it{db.NewIterator(rocksdb::ReadOptions{}, family)};
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (auto s = wb.Delete(family, it->key()); !s.ok()) return s;
  }
  if (!it->status().ok()) return it->status();
  for (const auto& op : earlier) {
    const auto* put = std::get_if<Put>(&op);
    if (put == nullptr) continue;
    const auto key = key_of(*put);
    if (!key.starts_with(prefix)) continue;  // another topic's
    if (auto s = wb.Delete(family, key); !s.ok()) return s;
  }
  return rocksdb::Status::OK();
}

}  // namespace

// Appends at consecutive offsets of one topic become one messages record (key: the first
// offset), up to kMaxRecordBytes: one memtable insert per record instead of per message, which
// was half of the writer's CPU (docs/performance.md, docs/storage.md). The records are put
// after every other op; a drop or trim later in the batch applies to them here first, so the
// batch has the effect of its ops in order.
struct RocksDbStore::PendingWrite {
  rocksdb::WriteBatch wb;
  std::vector<Run> runs;
  std::map<std::uint32_t, Offset> trimmed;  // topic -> highest trim end in this batch
  // Put copies both: one key and one value buffer serve every id of the batch.
  std::string dedup_key;
  std::string dedup_value;
};

Result<void> RocksDbStore::write(const WriteBatch& batch, Durability durability) {
  if (batch.empty()) return {};
  PendingWrite pending;
  const std::span<const Op> ops = batch.ops;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (auto r = add_op(pending, ops[i], ops.first(i)); !r) return r;
  }
  for (const auto& run : pending.runs) {
    const auto s = pending.wb.Put(messages_, enc::message_key(run.topic, run.first), run.value);
    if (auto r = check(s, "build write batch for " + dir_); !r) return r;
  }
  rocksdb::WriteOptions wo;
  wo.sync = durability == Durability::fsync;
  auto written = check(db_->Write(wo, &pending.wb),
                       "write batch of " + std::to_string(batch.ops.size()) + " ops to " + dir_);
  if (written) {
    // Ids are never reused, so a dropped id's window is never needed again; a later PutTopic
    // in the same batch has a new id.
    for (const auto& op : batch.ops) {
      if (const auto* drop = std::get_if<DropTopic>(&op)) windows_->erase(drop->id);
    }
  }
  return written;
}

// `earlier`: the ops of the batch before `op`.
Result<void> RocksDbStore::add_op(PendingWrite& pending, const Op& op,
                                  std::span<const Op> earlier) {
  auto& wb = pending.wb;
  auto& runs = pending.runs;
  rocksdb::Status s;
  if (const auto* put = std::get_if<PutTopic>(&op)) {
    // Known to the compaction filter before its entries can reach a compaction.
    windows_->set(put->meta.id, put->meta.dedup_window_ms);
    s = wb.Put(topics_, put->meta.name, enc::encode_topic_meta(put->meta));
  } else if (const auto* append = std::get_if<Append>(&op)) {
    if (append->message == nullptr) {
      return fail(Errc::internal_error, "write: Append without a message");
    }
    if (runs.empty() || runs.back().topic != append->topic || runs.back().next != append->offset ||
        runs.back().value.size() >= kMaxRecordBytes) {
      runs.push_back(Run{append->topic, append->offset, append->offset, {}});
    }
    auto& run = runs.back();
    enc::encode_message(append->timestamp_ms, *append->message, run.value);
    run.next = Offset{append->offset.value + 1};
  } else if (const auto* next = std::get_if<SetNextTopicId>(&op)) {
    s = wb.Put(db_->DefaultColumnFamily(), enc::kNextTopicIdKey, enc::encode_u32(next->next.value));
  } else if (const auto* drop = std::get_if<DropTopic>(&op)) {
    std::erase_if(runs, [&](const Run& r) { return r.topic == drop->id; });
    s = wb.Delete(topics_, drop->name);
    if (s.ok()) {
      s = wb.DeleteRange(messages_, enc::topic_begin_key(drop->id), enc::topic_end_key(drop->id));
    }
    if (s.ok()) s = drop_topic_keys<PutGroup>(*db_, groups_, wb, drop->id, earlier);
    if (s.ok()) s = drop_topic_keys<PutDedup>(*db_, dedup_, wb, drop->id, earlier);
  } else if (const auto* dedup = std::get_if<PutDedup>(&op)) {
    enc::dedup_key_into(dedup->topic, dedup->id, pending.dedup_key);
    enc::encode_dedup_into({dedup->offset, dedup->timestamp_ms, dedup->payload_hash},
                           pending.dedup_value);
    s = wb.Put(dedup_, pending.dedup_key, pending.dedup_value);
  } else if (const auto* put_group = std::get_if<PutGroup>(&op)) {
    s = wb.Put(groups_, enc::group_key(put_group->group.topic, put_group->group.name),
               enc::encode_group(put_group->group));
  } else if (const auto* drop_group = std::get_if<DropGroup>(&op)) {
    s = wb.Delete(groups_, enc::group_key(drop_group->topic, drop_group->name));
  } else if (const auto* trim = std::get_if<TrimTopic>(&op)) {
    return add_trim(pending, *trim);
  } else if (const auto* put = std::get_if<Schedule>(&op)) {
    if (put->message == nullptr || put->message->deliver_at_ms <= 0) {
      return fail(Errc::internal_error, "write: Schedule without a message or due time");
    }
    std::string value;
    enc::encode_message(put->timestamp_ms, *put->message, value);
    s = wb.Put(schedule_, enc::schedule_key(put->message->deliver_at_ms, put->topic, put->offset),
               value);
  } else if (const auto* done = std::get_if<Unschedule>(&op)) {
    s = wb.Delete(schedule_, enc::schedule_key(done->due_ms, done->topic, done->offset));
  }
  return check(s, "build write batch for " + dir_);
}

// One range tombstone however many messages go, like a drop. A record that holds offsets on
// both sides of `end` is cut: the tombstone removes it, and its messages from `end` on are put
// back as a record at `end` (a suffix of its value is one). A trim below one made earlier in
// this batch has nothing left to remove.
Result<void> RocksDbStore::add_trim(PendingWrite& pending, const TrimTopic& trim) {
  auto& end = pending.trimmed[trim.topic.value];
  if (trim.end <= end) return {};
  end = trim.end;
  if (auto r = trim_runs(pending.runs, trim.topic, end); !r) return r;
  auto tail = record_tail(trim.topic, end);
  if (!tail) return tl::unexpected(std::move(tail.error()));
  auto s = pending.wb.DeleteRange(messages_, enc::topic_begin_key(trim.topic),
                                  enc::message_key(trim.topic, end));
  if (s.ok() && *tail) s = pending.wb.Put(messages_, enc::message_key(trim.topic, end), **tail);
  return check(s, "build write batch for " + dir_);
}

Result<std::optional<std::string>> RocksDbStore::record_tail(TopicId topic, Offset end) const {
  const auto upper = enc::topic_end_key(topic);
  const rocksdb::Slice upper_slice{upper};
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, messages_)};
  it->SeekForPrev(enc::message_key(topic, end));
  const auto what = "find the record holding offset " + std::to_string(end.value) + " of topic " +
                    std::to_string(topic.value) + " in " + dir_;
  if (!it->Valid()) {
    if (auto r = check(it->status(), what); !r) return tl::unexpected(std::move(r.error()));
    return std::nullopt;
  }
  const auto first = enc::offset_of_message_key(it->key().ToStringView());
  if (!first) return fail(Errc::storage_error, what + ": corrupt message key");
  if (*first == end) return std::nullopt;
  std::string_view rest = it->value().ToStringView();
  for (auto offset = first->value; offset < end.value; ++offset) {
    if (rest.empty()) return std::nullopt;  // the record ends below `end`
    if (!enc::skip_message(rest)) return fail(Errc::storage_error, what + ": corrupt record");
  }
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

}  // namespace loft::storage
