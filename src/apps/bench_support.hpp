#pragma once
// What the benchmark runners share (bench_client.cpp against a broker, bench_storage.cpp
// against the storage layer alone): the clock, the report's figures, the progress line and
// the publish loop that keeps a window of requests in flight.

#include <algorithm>
#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "latency_histogram.hpp"
#include "loft/common/message.hpp"

namespace loft::apps::bench {

using Clock = std::chrono::steady_clock;

// Waiting for one reply never takes longer than this, whatever the run's size: a broker that
// stops answering ends the run with an error instead of hanging it.
constexpr auto kReplyTimeout = std::chrono::seconds(60);
// A consumer that gets nothing for this long while messages are still due has stalled.
constexpr auto kStallTimeout = std::chrono::seconds(60);

inline double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string_view durability_text(Durability d);

// The latency figures every mode that measures latency reports, under the same names.
void put_latency(boost::json::object& o, const LatencyHistogram& h);
// elapsed_s, msgs_per_sec and mb_per_sec for `messages` of `size` bytes in `d`.
void put_rates(boost::json::object& o, std::uint64_t messages, std::size_t size, Clock::duration d);
// The parameters every report starts with.
boost::json::object common_params(const Params& p, std::string_view durability,
                                  const std::string& topic);

// A fresh topic name: bench-<mode>-<pid>-<unix ms>.
std::string fresh_topic(Mode mode);

// A "\r"-rewritten progress line on stderr, once a second, only when stderr is a terminal (a
// pipe or a log file gets the report alone).
class Progress {
 public:
  Progress(std::string label, const std::atomic<std::uint64_t>& done, std::uint64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  void loop();

  std::string label_;
  const std::atomic<std::uint64_t>& done_;
  std::uint64_t total_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

template <class T>
Result<T> wait_reply(std::future<Result<T>>& f, std::string_view what) {
  if (f.wait_for(kReplyTimeout) != std::future_status::ready) {
    return fail(Errc::timeout, std::string(what) + ": no reply from the broker within " +
                                   std::to_string(kReplyTimeout.count()) + "s");
  }
  return f.get();
}

// One publisher's run: keeps `window` requests of `batch` messages in flight until `limit`
// messages are confirmed or `deadline` passes, and records each request's confirm latency.
struct PublishPlan {
  std::uint64_t limit = 0;
  Clock::time_point deadline = Clock::time_point::max();
  std::size_t size = 0;
  std::size_t batch = 0;
  std::size_t window = 0;
  std::string id_prefix;   // empty: no ids
  std::uint64_t keys = 0;  // > 0: message n gets the key "k<n mod keys>"; 0: no keys
};

// `send(messages)` returns a future of the per-message results (anything with `code`).
// Returns how many messages were confirmed.
template <class Send>
Result<std::uint64_t> publish_loop(const PublishPlan& plan, Send send, LatencyHistogram* latency,
                                   std::atomic<std::uint64_t>& progress) {
  using Future = decltype(send(std::vector<Message>{}));
  struct InFlight {
    Future reply;
    Clock::time_point sent;
    std::size_t count;
  };
  const std::string payload(plan.size, 'x');
  std::deque<InFlight> in_flight;
  std::uint64_t sent = 0;
  std::uint64_t confirmed = 0;
  while (true) {
    // At least one request, however late this thread starts: a timed run always measures.
    const bool more = sent < plan.limit && (sent == 0 || Clock::now() < plan.deadline);
    if (more && in_flight.size() < plan.window) {
      const auto n =
          static_cast<std::size_t>(std::min<std::uint64_t>(plan.batch, plan.limit - sent));
      std::vector<Message> messages(n);
      for (auto& m : messages) {
        m.payload = payload;
        if (!plan.id_prefix.empty()) m.id = plan.id_prefix + std::to_string(sent);
        if (plan.keys > 0) {
          m.key = "k";
          m.key += std::to_string(sent % plan.keys);
        }
        ++sent;
      }
      const auto t = Clock::now();
      in_flight.push_back({send(std::move(messages)), t, n});
      continue;
    }
    if (in_flight.empty()) break;
    // Replies of one connection (and of one writer) complete in request order, so the front
    // is the next to complete: waiting on it measures its latency, not its neighbours'.
    auto& front = in_flight.front();
    auto results = wait_reply(front.reply, "publish");
    if (!results) return tl::unexpected(results.error());
    if (latency) {
      latency->record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - front.sent).count()));
    }
    if (results->size() != front.count) {
      return fail(Errc::internal_error, "publish: " + std::to_string(results->size()) +
                                            " results for " + std::to_string(front.count) +
                                            " messages");
    }
    for (const auto& r : *results) {
      if (r.code != Errc::ok) {
        return fail(r.code, "publish: a message was rejected: " + std::string(errc_text(r.code)));
      }
    }
    confirmed += front.count;
    progress.fetch_add(front.count, std::memory_order_relaxed);
    in_flight.pop_front();
  }
  return confirmed;
}

}  // namespace loft::apps::bench
