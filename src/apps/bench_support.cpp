#include "bench_support.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace loft::apps::bench {
namespace {

namespace json = boost::json;

// Whole microseconds: finer would be noise on a loaded machine.
std::uint64_t ns_to_us(std::uint64_t ns) { return (ns + 500) / 1000; }

}  // namespace

std::string_view durability_text(Durability d) { return d == Durability::fsync ? "fsync" : "os"; }

void put_latency(json::object& o, const LatencyHistogram& h) {
  o["latency_samples"] = h.count();
  o["p50_us"] = ns_to_us(h.quantile(0.5));
  o["p99_us"] = ns_to_us(h.quantile(0.99));
  o["p999_us"] = ns_to_us(h.quantile(0.999));
  o["max_us"] = ns_to_us(h.max());
}

void put_rates(json::object& o, std::uint64_t messages, std::size_t size, Clock::duration d) {
  const double s = std::max(seconds(d), 1e-9);
  o["elapsed_s"] = std::round(s * 1000) / 1000;
  o["msgs_per_sec"] = static_cast<std::uint64_t>(std::llround(static_cast<double>(messages) / s));
  // MB = 10^6 payload bytes: what the application sent, not what went over the wire.
  o["mb_per_sec"] = static_cast<double>(messages * size) / s / 1e6;
}

json::object common_params(const Params& p, std::string_view durability, const std::string& topic) {
  return json::object{
      {"mode", to_string(p.mode)}, {"durability", durability}, {"topic", topic}, {"size", p.size}};
}

std::string fresh_topic(Mode mode) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return "bench-" + std::string(to_string(mode)) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(ms);
}

Progress::Progress(std::string label, const std::atomic<std::uint64_t>& done, std::uint64_t total)
    : label_(std::move(label)), done_(done), total_(total) {
  if (::isatty(STDERR_FILENO) == 1) thread_ = std::thread([this] { loop(); });
}

Progress::~Progress() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  std::fprintf(stderr, "\r\033[K");
}

void Progress::loop() {
  const auto start = Clock::now();
  std::unique_lock lock(mutex_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
    const auto n = done_.load(std::memory_order_relaxed);
    const double rate = static_cast<double>(n) / std::max(seconds(Clock::now() - start), 1e-9);
    if (total_ > 0) {
      std::fprintf(stderr, "\r\033[K%s: %llu / %llu messages, %.0f msg/s", label_.c_str(),
                   static_cast<unsigned long long>(n), static_cast<unsigned long long>(total_),
                   rate);
    } else {
      std::fprintf(stderr, "\r\033[K%s: %llu messages, %.0f msg/s", label_.c_str(),
                   static_cast<unsigned long long>(n), rate);
    }
    std::fflush(stderr);
  }
}

}  // namespace loft::apps::bench
