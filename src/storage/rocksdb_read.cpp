// The RocksDB Store's reads: the loads at startup, messages by offset (read, read_block) and
// the dedup lookups. Any thread, concurrently with write() (RocksDB's reads are thread-safe).

#include <algorithm>
#include <cstring>

#include "encoding.hpp"
#include "read_budget.hpp"
#include "rocksdb_store.hpp"

namespace loft::storage {
namespace {

namespace enc = encoding;

}  // namespace

Result<std::vector<TopicInfo>> RocksDbStore::load_topics() {
  std::vector<TopicInfo> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, topics_)};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto meta = enc::decode_topic_meta(it->key().ToStringView(), it->value().ToStringView());
    if (!meta) {
      return fail(Errc::storage_error, "load topics from " + dir_ +
                                           ": corrupt metadata of topic '" + it->key().ToString() +
                                           "'");
    }
    windows_->set(meta->id, meta->dedup_window_ms);
    out.push_back(std::move(*meta));
  }
  if (auto r = check(it->status(), "load topics from " + dir_); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  return out;
}

Result<TopicId> RocksDbStore::load_next_topic_id() {
  std::string value;
  const auto s =
      db_->Get(rocksdb::ReadOptions{}, db_->DefaultColumnFamily(), enc::kNextTopicIdKey, &value);
  if (s.IsNotFound()) return TopicId{1};
  if (auto r = check(s, "load next topic id from " + dir_); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  const auto next = enc::decode_u32(value);
  if (!next) return fail(Errc::storage_error, "corrupt next topic id in " + dir_);
  return TopicId{*next};
}

Result<std::vector<GroupRecord>> RocksDbStore::load_groups() {
  std::vector<GroupRecord> out;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, groups_)};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto key = enc::parse_group_key(it->key().ToStringView());
    if (!key) {
      return fail(Errc::storage_error, "load groups from " + dir_ + ": corrupt group key of " +
                                           std::to_string(it->key().size()) + " bytes");
    }
    auto group = enc::decode_group(key->first, key->second, it->value().ToStringView());
    if (!group) {
      return fail(Errc::storage_error, "load groups from " + dir_ + ": cannot decode group '" +
                                           key->second + "' of topic " +
                                           std::to_string(key->first.value) +
                                           " (corrupt, or written by a newer loftd)");
    }
    out.push_back(std::move(*group));
  }
  if (auto r = check(it->status(), "load groups from " + dir_); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  return out;
}

Result<std::optional<DedupEntry>> RocksDbStore::find_dedup(TopicId topic,
                                                           std::string_view id) const {
  std::string value;
  const auto s = db_->Get(rocksdb::ReadOptions{}, dedup_, enc::dedup_key(topic, id), &value);
  if (s.IsNotFound()) return std::optional<DedupEntry>{};
  const auto what = "find dedup entry of topic " + std::to_string(topic.value) + " in " + dir_;
  if (auto r = check(s, what); !r) return tl::unexpected(std::move(r.error()));
  auto entry = enc::decode_dedup(value);
  if (!entry) return fail(Errc::storage_error, what + ": corrupt dedup entry");
  return std::optional<DedupEntry>{*entry};
}

Result<std::vector<std::optional<DedupEntry>>> RocksDbStore::find_dedups(
    TopicId topic, std::span<const std::string_view> ids) const {
  // Every key in one buffer (one allocation, not one per id), then a view of each.
  const auto prefix = enc::dedup_key(topic, {});  // every key is this, then the id
  std::size_t total = 0;
  for (const auto id : ids) total += prefix.size() + id.size();
  std::string buffer;
  buffer.reserve(total);
  for (const auto id : ids) buffer.append(prefix).append(id);
  std::vector<std::string_view> keys;  // `buffer` no longer grows
  keys.reserve(ids.size());
  for (std::size_t at = 0; const auto id : ids) {
    keys.emplace_back(buffer.data() + at, prefix.size() + id.size());
    at += prefix.size() + id.size();
  }
  // MultiGet walks the memtables and each SST file once for keys given in comparator order
  // (bytewise here, as std::string_view compares); sorting the slices ourselves lets it skip
  // its own copy and sort. Equal keys are fine: each gets its own result.
  std::vector<rocksdb::Slice> sorted(keys.size());
  std::vector<std::size_t> order(keys.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
  for (std::size_t i = 0; i < order.size(); ++i) {
    sorted[i] = rocksdb::Slice{keys[order[i]].data(), keys[order[i]].size()};
  }
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions{}, dedup_, sorted.size(), sorted.data(), values.data(),
                statuses.data(), /*sorted_input=*/true);
  std::vector<std::optional<DedupEntry>> out(ids.size());
  // Only built on a failure: a found id is the common case of a retried publish.
  const auto what = [&] {
    return "find dedup entries of topic " + std::to_string(topic.value) + " in " + dir_;
  };
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return tl::unexpected(check(statuses[i], what()).error());
    auto entry = enc::decode_dedup(values[i].ToStringView());
    if (!entry) return fail(Errc::storage_error, what() + ": corrupt dedup entry");
    out[order[i]] = *entry;
  }
  return out;
}

Error RocksDbStore::corrupt_record(TopicId topic) const {
  return Error{Errc::storage_error, "read topic " + std::to_string(topic.value) + " in " + dir_ +
                                        ": corrupt message record"};
}

template <class Visit, class EndOfRecord>
Result<void> RocksDbStore::scan_messages(TopicId topic, Offset from, Visit&& visit,
                                         EndOfRecord&& end_of_record) const {
  const auto upper = enc::topic_end_key(topic);
  const rocksdb::Slice upper_slice{upper};
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;  // never step into the next topic's keys
  ro.prefix_same_as_start = true;         // lets the prefix bloom filter skip files
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, messages_)};
  // The record holding `from` starts at or before it.
  const auto from_key = enc::message_key(topic, from);
  it->SeekForPrev(from_key);
  if (!it->Valid()) it->Seek(from_key);
  bool full = false;
  for (; it->Valid(); it->Next()) {
    const auto first = enc::offset_of_message_key(it->key().ToStringView());
    if (!first) return tl::unexpected(corrupt_record(topic));
    std::string_view rest = it->value().ToStringView();
    if (rest.empty()) return tl::unexpected(corrupt_record(topic));
    for (Offset offset = *first; !rest.empty(); offset = Offset{offset.value + 1}) {
      if (offset < from) {
        if (!enc::skip_message(rest)) return tl::unexpected(corrupt_record(topic));
        continue;
      }
      const Scan next = visit(offset, rest);
      if (next == Scan::corrupt) return tl::unexpected(corrupt_record(topic));
      if (next == Scan::full) {
        full = true;
        break;
      }
    }
    end_of_record();
    if (full) break;  // before Next(): it would load the next record for nothing
  }
  return check(it->status(), "read topic " + std::to_string(topic.value) + " in " + dir_);
}

Result<std::vector<StoredMessage>> RocksDbStore::read(TopicId topic, Offset from,
                                                      ReadLimits limits) const {
  std::vector<StoredMessage> out;
  ReadBudget budget{limits};
  const auto visit = [&](Offset offset, std::string_view& rest) {
    auto message = enc::decode_next_message(offset, rest);
    if (!message) return Scan::corrupt;
    out.push_back(std::move(*message));
    return budget.take(out.back().message) ? Scan::more : Scan::full;
  };
  auto scanned = scan_messages(topic, from, visit, [] {});
  if (!scanned) return tl::unexpected(std::move(scanned.error()));
  return out;
}

// As read(), but each record's run of taken messages is copied once into a buffer of the
// block's own (exact size, so it never moves) while the iterator still holds the record, and
// the views made in the record are moved over to the copy.
Result<std::shared_ptr<MessageBlock>> RocksDbStore::read_block(TopicId topic, Offset from,
                                                               ReadLimits limits) const {
  auto block = std::make_shared<MessageBlock>();
  auto& messages = block->messages;
  auto& headers = block->headers;
  ReadBudget budget{limits};
  std::vector<std::size_t> first_header;  // per message: its first entry in `headers`
  const char* run_begin = nullptr;        // the current record's taken bytes so far
  const char* run_end = nullptr;
  std::size_t run_first = 0;  // the current record's first taken message
  const auto visit = [&](Offset offset, std::string_view& rest) {
    if (run_begin == nullptr) {
      run_begin = rest.data();
      run_first = messages.size();
    }
    StoredMessageView m;
    first_header.push_back(headers.size());
    if (!enc::decode_next_view(rest, m, headers)) return Scan::corrupt;
    m.offset = offset;
    run_end = rest.data();
    // Message::size_bytes(), before m.headers points at its headers.
    std::uint64_t size = m.id.size() + m.key.size() + m.subject.size() + m.payload.size();
    for (std::size_t h = first_header.back(); h < headers.size(); ++h) {
      size += headers[h].name.size() + headers[h].value.size();
    }
    messages.push_back(m);
    return budget.take(size) ? Scan::more : Scan::full;
  };
  const auto end_of_record = [&] {
    if (run_begin == nullptr) return;
    const auto n = static_cast<std::size_t>(run_end - run_begin);
    std::unique_ptr<char[]> copy{new char[n]};
    std::memcpy(copy.get(), run_begin, n);
    const auto moved = [&](std::string_view v) {
      // An absent subject is a default view (no data pointer): nothing to move.
      if (v.empty()) return std::string_view{};
      return std::string_view{copy.get() + (v.data() - run_begin), v.size()};
    };
    for (std::size_t i = run_first; i < messages.size(); ++i) {
      messages[i].id = moved(messages[i].id);
      messages[i].key = moved(messages[i].key);
      messages[i].payload = moved(messages[i].payload);
      messages[i].subject = moved(messages[i].subject);
    }
    for (std::size_t h = first_header[run_first]; h < headers.size(); ++h) {
      headers[h].name = moved(headers[h].name);
      headers[h].value = moved(headers[h].value);
    }
    block->buffers.push_back(std::move(copy));
    block->buffer_bytes += n;
    run_begin = run_end = nullptr;
  };
  auto scanned = scan_messages(topic, from, visit, end_of_record);
  if (!scanned) return tl::unexpected(std::move(scanned.error()));
  // `headers` has stopped growing: the spans into it stay valid from here on.
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const std::size_t end = i + 1 < messages.size() ? first_header[i + 1] : headers.size();
    messages[i].headers =
        std::span<const HeaderView>{headers.data() + first_header[i], end - first_header[i]};
  }
  return block;
}

}  // namespace loft::storage

namespace loft::storage {

Result<std::vector<ScheduledMessage>> RocksDbStore::read_schedule(std::int64_t from_due_ms,
                                                                  std::int64_t up_to_due_ms,
                                                                  ReadLimits limits) const {
  std::vector<ScheduledMessage> out;
  if (up_to_due_ms < from_due_ms) return out;
  // [from, up_to]: keys of due times from_due_ms..up_to_due_ms (up_to + 1 is the bound; due
  // times are far below the i64 maximum: max_delivery_delay bounds them).
  const auto lower =
      enc::schedule_key(std::max<std::int64_t>(from_due_ms, 0), TopicId{0}, Offset{0});
  const auto upper = enc::schedule_key(up_to_due_ms + 1, TopicId{0}, Offset{0});
  const rocksdb::Slice lower_slice{lower};
  const rocksdb::Slice upper_slice{upper};
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, schedule_)};
  ReadBudget budget{limits};
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    const auto key = enc::parse_schedule_key(it->key().ToStringView());
    auto m = key ? enc::decode_message(key->offset, it->value().ToStringView()) : std::nullopt;
    if (!m) {
      return fail(Errc::storage_error, "read schedule from " + dir_ + ": corrupt entry of " +
                                           std::to_string(it->key().size()) + " key bytes");
    }
    out.push_back(ScheduledMessage{key->due_ms, key->topic, key->offset, m->timestamp_ms,
                                   std::move(m->message)});
    if (!budget.take(out.back().message)) break;
  }
  if (auto r = check(it->status(), "read schedule from " + dir_); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  return out;
}

}  // namespace loft::storage
