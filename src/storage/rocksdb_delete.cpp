// The RocksDB Store's DeleteMessages: single messages taken out of the middle of a topic
// (docs/storage.md, "Holes"). A messages record holds a run of consecutive offsets keyed by the
// first, so a record that loses some of its messages is replaced by the runs that remain,
// each a record of its own keyed by its first offset; reads skip the offsets in between.

#include <rocksdb/write_batch.h>

#include <vector>

#include "encoding.hpp"
#include "rocksdb_store.hpp"

namespace loft::storage {
namespace {

namespace enc = encoding;

// The messages of a record value, each as its bytes (a run of them is a record value too).
bool split_record(std::string_view value, std::vector<std::string_view>& parts) {
  parts.clear();
  std::string_view rest = value;
  while (!rest.empty()) {
    const std::string_view before = rest;
    if (!enc::skip_message(rest)) return false;
    parts.push_back(before.substr(0, before.size() - rest.size()));
  }
  return true;
}

}  // namespace

Result<void> RocksDbStore::add_delete(rocksdb::WriteBatch& wb, const DeleteMessages& del) const {
  const auto& offsets = del.offsets;
  if (offsets.empty()) return {};
  const auto upper = enc::topic_end_key(del.topic);
  const rocksdb::Slice upper_slice{upper};
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, messages_)};
  const auto what = "delete messages of topic " + std::to_string(del.topic.value) + " in " + dir_;
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < offsets.size()) {
    // The record holding offsets[i], if any, starts at or below it.
    it->SeekForPrev(enc::message_key(del.topic, offsets[i]));
    if (!it->Valid()) {
      if (auto r = check(it->status(), what); !r) return r;
      ++i;  // nothing stored at or below it
      continue;
    }
    const auto first = enc::offset_of_message_key(it->key().ToStringView());
    if (!first || !split_record(it->value().ToStringView(), parts) || parts.empty()) {
      return tl::unexpected(corrupt_record(del.topic));
    }
    const std::uint64_t end = first->value + parts.size();
    if (offsets[i].value >= end) {
      ++i;  // in a hole above this record: not stored
      continue;
    }
    // Every offset of the delete inside this record, then the runs that remain.
    std::size_t j = i;
    while (j < offsets.size() && offsets[j].value < end) ++j;
    auto s = wb.Delete(messages_, it->key());
    std::size_t next_deleted = i;
    std::string run;
    std::uint64_t run_first = 0;
    const auto put_run = [&] {
      if (run.empty() || !s.ok()) return;
      s = wb.Put(messages_, enc::message_key(del.topic, Offset{run_first}), run);
      run.clear();
    };
    for (std::size_t k = 0; k < parts.size(); ++k) {
      const std::uint64_t offset = first->value + k;
      if (next_deleted < j && offsets[next_deleted].value == offset) {
        ++next_deleted;
        put_run();
        continue;
      }
      if (run.empty()) run_first = offset;
      run.append(parts[k]);
    }
    put_run();
    if (auto r = check(s, "build write batch for " + dir_); !r) return r;
    i = j;
  }
  return check(it->status(), what);
}

}  // namespace loft::storage
