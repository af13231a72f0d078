#pragma once
// Deleting single messages (module-private; docs/semantics.md, "Deleted messages"): what the
// writer reads to stage a Broker::delete_messages.

#include <span>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/topic.hpp"
#include "loft/storage/store.hpp"

namespace loft::broker {

struct DeleteStaging {
  std::vector<Offset> found;  // the offsets asked for that hold a message, ascending
  std::uint64_t bytes = 0;    // their Message::size_bytes()
  Offset first{};             // the topic's first offset once they are gone
};

// Which of `offsets` (ascending, no repeats) `topic` holds in `store`, what they weigh, and
// where the topic starts without them (its next offset when nothing is left). Reads only the
// offsets asked for and the messages after the first offset that are deleted with it.
Result<DeleteStaging> stage_delete(const storage::Store& store, const TopicInfo& topic,
                                   std::span<const Offset> offsets);

}  // namespace loft::broker
