#pragma once
// `loft bench`: load generators that a user runs against their own broker (publish, consume,
// e2e; bench_client.hpp, in `loft`) or against loft's storage layer alone (storage;
// bench_storage.hpp, in the loft-bench-storage binary, so that `loft` links no server code),
// reporting throughput and latency. This header: the parameters and the report's table.
//
// Each mode works on a fresh topic (bench-<mode>-<pid>-<unix ms>) and deletes it afterwards
// unless `keep`. Every loop is bounded: by a message count, by a duration, and by the client's
// request timeout for each reply it waits on (a stalled broker ends the run with an error, it
// does not hang it). The report is one flat JSON object: every parameter, then every figure.
//
// Threads: run() starts one thread per producer / consumer (each with its own connection)
// and joins them before it returns; a progress line goes to stderr when that is a terminal.

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string_view>

#include "loft/common/error.hpp"
#include "loft/common/group.hpp"
#include "loft/common/topic.hpp"

namespace loft::apps::bench {

enum class Mode { publish, consume, e2e, storage };

struct Params {
  Mode mode = Mode::publish;
  std::uint64_t messages = 1'000'000;
  // publish: run this long instead of for `messages` (0 = use `messages`). e2e: how long.
  std::chrono::milliseconds duration{0};
  std::size_t size = 100;              // payload bytes of each message
  std::size_t batch = 100;             // messages per publish request
  std::size_t window = 10;             // publish requests each producer keeps in flight
  std::size_t producers = 1;           // publish: connections publishing at once
  bool ids = false;                    // give every message a unique id (dedup on)
  std::size_t consumers = 1;           // consume: subscriptions of the one group
  std::uint32_t max_in_flight = 1000;  // consume: each subscription's credit
  std::uint64_t keys = 0;              // consume: messages keyed round-robin over K
  Ordering ordering = Ordering::none;  // consume: the group's ordering
  std::uint64_t rate = 10'000;         // e2e: messages per second
  // e2e: each message is published to be delivered this long after it is sent (an absolute
  // deliver_at_ms by this machine's clock, which loftd shares on 127.0.0.1), and its latency is
  // counted from that time, not from the send: how late delayed delivery is (0 = not delayed).
  std::chrono::milliseconds delay{0};
  std::optional<std::filesystem::path> data_dir;  // storage: instead of a temporary dir
  Durability durability = Durability::fsync;      // storage only
  bool keep = false;  // keep the topic (and a temporary data dir) afterwards
};

Result<Mode> parse_mode(std::string_view text);
std::string_view to_string(Mode mode);
// Whether flag `--name` means anything for `mode` (a flag that does not is a usage error).
bool flag_applies(Mode mode, std::string_view name);
// The combinations a single flag cannot check (e.g. e2e needs 8 bytes for its timestamp).
Result<void> validate(const Params& params);

// The report as an aligned two-column table.
void print_table(const boost::json::object& report, std::ostream& out);

}  // namespace loft::apps::bench
