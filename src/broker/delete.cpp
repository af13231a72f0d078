// Deleting single messages from the middle of a topic (Broker::delete_messages) and the purge
// by subject built on it (Broker::purge_subject). docs/semantics.md, "Deleted messages";
// docs/storage.md, "Holes".

#include "delete.hpp"

#include <algorithm>
#include <limits>
#include <memory>

#include "loft/broker/broker.hpp"
#include "loft/common/subject.hpp"

namespace loft::broker {
namespace {

// One read of the scans below: bounded in messages and bytes.
constexpr storage::ReadLimits kDeleteScan{1000, std::size_t{4} << 20};
// A purge by subject looks at most this many messages per chunk before it hands the
// background thread back (to backups, compactions, other purges) and goes on later.
constexpr std::uint64_t kMaxScanPerChunk = 50'000;

}  // namespace

Result<DeleteStaging> stage_delete(const storage::Store& store, const TopicInfo& topic,
                                   std::span<const Offset> offsets) {
  DeleteStaging out;
  out.first = topic.first_offset;
  // Only [first_offset, next_offset) can hold messages.
  const auto begin = std::lower_bound(offsets.begin(), offsets.end(), topic.first_offset);
  const auto end = std::lower_bound(begin, offsets.end(), topic.next_offset);
  const std::span<const Offset> asked{begin, end};
  std::size_t i = 0;
  while (i < asked.size()) {
    // Each read starts at the next offset asked for: offsets far apart cost a read each, not
    // a scan of what lies between.
    const std::uint64_t span = asked.back().value - asked[i].value + 1;
    auto read =
        store.read(topic.id, asked[i],
                   storage::ReadLimits{std::min<std::uint64_t>(span, kDeleteScan.max_messages),
                                       kDeleteScan.max_bytes});
    if (!read) return tl::unexpected(std::move(read.error()));
    if (read->empty()) break;  // nothing stored from there on
    for (const auto& m : *read) {
      while (i < asked.size() && asked[i] < m.offset) ++i;  // holes already
      if (i == asked.size()) break;
      if (asked[i] == m.offset) {
        out.found.push_back(m.offset);
        out.bytes += m.message.size_bytes();
        ++i;
      }
    }
    // Every offset asked for up to the last message read is settled; the next read starts
    // above it.
    while (i < asked.size() && asked[i] <= read->back().offset) ++i;
  }
  if (out.found.empty()) return out;
  // The topic starts at the first message left: further up when the first ones go (one read
  // when they do not).
  out.first = topic.next_offset;
  Offset at = topic.first_offset;
  while (at < topic.next_offset) {
    auto read = store.read(topic.id, at, kDeleteScan);
    if (!read) return tl::unexpected(std::move(read.error()));
    if (read->empty()) break;
    const auto left = std::find_if(read->begin(), read->end(), [&](const StoredMessage& m) {
      return !std::binary_search(out.found.begin(), out.found.end(), m.offset);
    });
    if (left != read->end()) {
      out.first = std::min(left->offset, topic.next_offset);
      break;
    }
    at = Offset{read->back().offset.value + 1};
  }
  return out;
}

void Broker::delete_messages(std::string topic, std::vector<Offset> offsets,
                             Callback<DeleteResult> done) {
  if (auto ok = validate_topic_name(topic); !ok) return done(tl::unexpected(ok.error()));
  if (offsets.empty() || offsets.size() > kMaxDeleteOffsets) {
    return done(fail(Errc::invalid_request, "delete: give 1 to " +
                                                std::to_string(kMaxDeleteOffsets) +
                                                " offsets, got " + std::to_string(offsets.size())));
  }
  std::sort(offsets.begin(), offsets.end());
  offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
  enqueue(DeleteMessagesReq{std::move(topic), std::move(offsets), std::move(done)});
}

// A purge by subject between its chunks. Each chunk runs on the background thread (a job):
// it scans on from `at`, deletes what matches through the writer, and queues the next chunk
// once that delete is durable.
struct Broker::SubjectPurge {
  std::string name;
  SubjectPurgeRequest req;
  Callback<PurgeResult> done;
  std::optional<TopicId> id;  // the topic it began on: a re-created one is not purged
  std::uint64_t to_remove = std::numeric_limits<std::uint64_t>::max();  // `keep`: counted first
  Offset at{};  // where the next chunk's scan starts
  std::uint64_t purged = 0;
};

void Broker::purge_subject(std::string topic, SubjectPurgeRequest req, Callback<PurgeResult> done) {
  if (auto ok = validate_topic_name(topic); !ok) return done(tl::unexpected(ok.error()));
  if (!is_valid_filter_subject(req.filter)) {
    return done(fail(Errc::invalid_subject, "purge: '" + req.filter + "' is not a subject filter"));
  }
  if (req.before && req.keep) {
    return done(fail(Errc::invalid_request, "purge: give 'before' or 'keep', not both"));
  }
  auto purge = std::make_shared<SubjectPurge>();
  purge->name = std::move(topic);
  purge->req = std::move(req);
  purge->done = std::move(done);
  const bool queued = to_background([&] {
    jobs_.emplace_back([this, purge](bool stopping) {
      if (stopping) return purge->done(fail(Errc::shutting_down, "the broker is stopping"));
      run_subject_purge(purge);
    });
  });
  if (!queued) purge->done(fail(Errc::shutting_down, "the broker is stopping"));
}

void Broker::run_subject_purge(const std::shared_ptr<SubjectPurge>& purge) {
  auto& p = *purge;
  auto topic = describe_topic(p.name);
  if (!topic || (p.id && *p.id != topic->id)) {
    if (p.purged > 0 && !topic) return p.done(PurgeResult{p.purged, Offset{}});
    return p.done(topic ? fail(Errc::topic_not_found, "topic '" + p.name + "' was re-created")
                        : tl::unexpected(topic.error()));
  }
  const auto matches = [&](const StoredMessage& m) {
    return subject_matches(p.req.filter, m.message.subject.empty() ? p.name : m.message.subject);
  };
  const Offset end =
      p.req.before ? std::min(*p.req.before, topic->next_offset) : topic->next_offset;
  if (!p.id) {
    p.id = topic->id;
    p.at = topic->first_offset;
    if (p.req.keep) {
      // Count the matches first: all but the newest `keep` of them go.
      std::uint64_t count = 0;
      for (Offset at = topic->first_offset; at < end;) {
        auto read = store_->read(topic->id, at, kDeleteScan);
        if (!read) return p.done(tl::unexpected(std::move(read.error())));
        if (read->empty()) break;
        for (const auto& m : *read) {
          if (m.offset < end && matches(m)) ++count;
        }
        at = Offset{read->back().offset.value + 1};
      }
      p.to_remove = count > *p.req.keep ? count - *p.req.keep : 0;
    }
  }
  std::vector<Offset> chunk;
  std::uint64_t scanned = 0;
  const auto full = [&] {
    return chunk.size() >= kMaxDeleteOffsets || p.purged + chunk.size() >= p.to_remove;
  };
  while (p.at < end && !full() && scanned < kMaxScanPerChunk) {
    auto read = store_->read(topic->id, p.at, kDeleteScan);
    if (!read) return p.done(tl::unexpected(std::move(read.error())));
    if (read->empty()) {
      p.at = end;
      break;
    }
    for (const auto& m : *read) {
      if (m.offset >= end) {
        p.at = end;
        break;
      }
      p.at = Offset{m.offset.value + 1};
      ++scanned;
      if (matches(m)) chunk.push_back(m.offset);
      if (full()) break;
    }
  }
  const bool last = p.at >= end || p.purged + chunk.size() >= p.to_remove;
  const auto again = [this, purge] {
    const bool queued = to_background([&] {
      jobs_.emplace_back([this, purge](bool stopping) {
        if (stopping) return purge->done(fail(Errc::shutting_down, "the broker is stopping"));
        run_subject_purge(purge);
      });
    });
    if (!queued) purge->done(fail(Errc::shutting_down, "the broker is stopping"));
  };
  if (chunk.empty()) {
    if (last) return p.done(PurgeResult{p.purged, topic->first_offset});
    return again();
  }
  delete_messages(p.name, std::move(chunk), [purge, last, again](const Result<DeleteResult>& r) {
    auto& q = *purge;
    if (!r) return q.done(tl::unexpected(r.error()));
    q.purged += r->deleted;
    if (last) return q.done(PurgeResult{q.purged, r->first});
    again();
  });
}

}  // namespace loft::broker
