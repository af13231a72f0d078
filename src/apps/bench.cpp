#include "bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "data_dir_lock.hpp"
#include "latency_histogram.hpp"
#include "loft/broker/broker.hpp"
#include "malloc_tuning.hpp"

namespace loft::apps::bench {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// Waiting for one reply never takes longer than this, whatever the run's size: a broker that
// stops answering ends the run with an error instead of hanging it.
constexpr auto kReplyTimeout = std::chrono::seconds(60);
// A consumer that gets nothing for this long while messages are still due has stalled.
constexpr auto kStallTimeout = std::chrono::seconds(60);

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
// Whole microseconds: finer would be noise on a loaded machine.
std::uint64_t ns_to_us(std::uint64_t ns) { return (ns + 500) / 1000; }

std::string_view durability_text(Durability d) { return d == Durability::fsync ? "fsync" : "os"; }

// The latency figures every mode that measures latency reports, under the same names.
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

// A "\r"-rewritten progress line on stderr, once a second, only when stderr is a terminal (a
// pipe or a log file gets the report alone).
class Progress {
 public:
  Progress(std::string label, const std::atomic<std::uint64_t>& done, std::uint64_t total)
      : label_(std::move(label)), done_(done), total_(total) {
    if (::isatty(STDERR_FILENO) == 1) thread_ = std::thread([this] { loop(); });
  }
  ~Progress() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    std::fprintf(stderr, "\r\033[K");
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  void loop() {
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

  std::string label_;
  const std::atomic<std::uint64_t>& done_;
  std::uint64_t total_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::string fresh_topic(Mode mode) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return "bench-" + std::string(to_string(mode)) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(ms);
}

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
  std::string id_prefix;  // empty: no ids
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

// A topic created for the run, deleted when the run ends (also after a failure) unless kept.
class TopicLease {
 public:
  TopicLease(const client::Options& connection, std::string name, bool keep)
      : connection_(connection), name_(std::move(name)), keep_(keep) {}
  ~TopicLease() {
    if (keep_ || !created_) return;
    // A fresh connection: the run's own may be the thing that failed.
    if (auto c = client::Client::connect(connection_)) {
      std::ignore = (*c)->delete_topic(name_);  // best effort: the report is already decided
    }
  }
  TopicLease(const TopicLease&) = delete;
  TopicLease& operator=(const TopicLease&) = delete;

  Result<void> create(client::Client& c) {
    auto t = c.create_topic(name_);
    if (!t) return tl::unexpected(t.error());
    created_ = true;
    return {};
  }
  const std::string& name() const { return name_; }

 private:
  client::Options connection_;
  std::string name_;
  bool keep_;
  bool created_ = false;
};

// Messages that fit one request: `wanted`, fewer if the broker's frame limit says so.
std::size_t fitting_batch(const client::Client& c, std::size_t wanted, std::size_t size) {
  // 64: a generous bound on one message's framing (offset, lengths, empty id/key/headers).
  const std::size_t per_message = size + 64;
  return std::max<std::size_t>(
      1, std::min(wanted, c.server().limits.max_frame_size / 2 / per_message));
}

Result<void> check_sizes(const client::Client& c, const Params& p) {
  const auto& limits = c.server().limits;
  if (p.size > limits.message.max_message_size) {
    return fail(Errc::message_too_large, "--size " + std::to_string(p.size) +
                                             " is over the broker's max_message_size of " +
                                             std::to_string(limits.message.max_message_size));
  }
  if (p.mode == Mode::publish && fitting_batch(c, p.batch, p.size) < p.batch) {
    return fail(Errc::invalid_request, "--batch " + std::to_string(p.batch) + " of " +
                                           std::to_string(p.size) +
                                           "-byte messages is over the broker's max_frame_size "
                                           "of " +
                                           std::to_string(limits.max_frame_size));
  }
  return {};
}

Result<std::unique_ptr<client::Client>> connect(const client::Options& connection) {
  return client::Client::connect(connection);
}

// The one group that consumes a bench topic, from its first message. max_in_flight 0 = the
// broker's default.
client::SubscribeOptions bench_group(const std::string& topic, std::uint32_t max_in_flight) {
  client::SubscribeOptions so;
  so.topic = topic;
  so.group = "bench";
  so.start = {protocol::StartKind::earliest, 0};
  so.max_in_flight = max_in_flight;
  return so;
}

// How every mode against a broker starts: a connection whose limits fit the run, and the
// fresh topic (deleted when this is destroyed, unless kept).
struct Start {
  std::unique_ptr<client::Client> client;
  std::unique_ptr<TopicLease> topic;
};

Result<Start> start(const Params& p, const client::Options& connection) {
  auto c = connect(connection);
  if (!c) return tl::unexpected(c.error());
  if (auto ok = check_sizes(**c, p); !ok) return tl::unexpected(ok.error());
  auto topic = std::make_unique<TopicLease>(connection, fresh_topic(p.mode), p.keep);
  if (auto ok = topic->create(**c); !ok) return tl::unexpected(ok.error());
  return Start{std::move(*c), std::move(topic)};
}

json::object common_params(const Params& p, std::string_view durability, const std::string& topic) {
  return json::object{
      {"mode", to_string(p.mode)}, {"durability", durability}, {"topic", topic}, {"size", p.size}};
}

Result<json::object> run_publish(const Params& p, const client::Options& connection) {
  auto started = start(p, connection);
  if (!started) return tl::unexpected(started.error());
  const auto& topic = *started->topic;
  std::vector<std::unique_ptr<client::Client>> clients;
  clients.push_back(std::move(started->client));
  while (clients.size() < p.producers) {
    auto c = connect(connection);
    if (!c) return tl::unexpected(c.error());
    clients.push_back(std::move(*c));
  }
  const bool timed = p.duration.count() > 0;
  std::atomic<std::uint64_t> progress{0};
  std::vector<LatencyHistogram> latency(p.producers);
  std::vector<Result<std::uint64_t>> outcome(p.producers, std::uint64_t{0});
  Progress line("publish", progress, timed ? 0 : p.messages);
  const auto start = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < p.producers; ++i) {
      PublishPlan plan;
      // Messages are split as evenly as they go; the first producers take the remainder.
      plan.limit =
          timed ? UINT64_MAX : p.messages / p.producers + (i < p.messages % p.producers ? 1 : 0);
      if (timed) plan.deadline = start + p.duration;
      plan.size = p.size;
      plan.batch = p.batch;
      plan.window = p.window;
      if (p.ids) plan.id_prefix = topic.name() + "-p" + std::to_string(i) + "-";
      threads.emplace_back([&, i, plan] {
        auto& c = *clients[i];
        outcome[i] = publish_loop(
            plan,
            [&](std::vector<Message> m) { return c.publish_async(topic.name(), std::move(m)); },
            &latency[i], progress);
      });
    }
  }
  const auto elapsed = Clock::now() - start;
  std::uint64_t total = 0;
  LatencyHistogram all;
  for (std::size_t i = 0; i < p.producers; ++i) {
    if (!outcome[i]) return tl::unexpected(outcome[i].error());
    total += *outcome[i];
    all.merge(latency[i]);
  }
  auto o = common_params(p, durability_text(clients[0]->server().durability), topic.name());
  o["broker"] = connection.host + ":" + std::to_string(connection.port);
  o["duration_s"] = timed ? std::chrono::duration<double>(p.duration).count() : 0.0;
  o["batch"] = p.batch;
  o["window"] = p.window;
  o["producers"] = p.producers;
  o["ids"] = p.ids;
  o["messages"] = total;
  put_rates(o, total, p.size, elapsed);
  put_latency(o, all);
  return o;
}

Result<json::object> run_consume(const Params& p, const client::Options& connection) {
  auto started = start(p, connection);
  if (!started) return tl::unexpected(started.error());
  const auto& topic = *started->topic;
  auto& filler = started->client;

  // Fill: large batches, many in flight; not part of the figure.
  std::atomic<std::uint64_t> filled{0};
  PublishPlan plan;
  plan.limit = p.messages;
  plan.size = p.size;
  plan.batch = fitting_batch(*filler, 1000, p.size);
  plan.window = 16;
  const auto fill_start = Clock::now();
  {
    Progress line("consume: filling", filled, p.messages);
    auto& c = *filler;
    auto ok = publish_loop(
        plan, [&](std::vector<Message> m) { return c.publish_async(topic.name(), std::move(m)); },
        nullptr, filled);
    if (!ok) return tl::unexpected(ok.error());
  }
  const auto fill_elapsed = Clock::now() - fill_start;

  std::vector<std::unique_ptr<client::Client>> clients;
  for (std::size_t i = 0; i < p.consumers; ++i) {
    auto c = connect(connection);
    if (!c) return tl::unexpected(c.error());
    clients.push_back(std::move(*c));
  }
  std::atomic<std::uint64_t> received{0};     // first deliveries, all consumers
  std::atomic<std::uint64_t> redelivered{0};  // later attempts (an ack timeout passed)
  std::atomic<Clock::rep> last_at{0};         // when `received` reached the goal
  std::vector<Result<void>> outcome(p.consumers);
  Progress line("consume", received, p.messages);
  const auto start = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < p.consumers; ++i) {
      threads.emplace_back([&, i]() {
        outcome[i] = [&]() -> Result<void> {
          auto sub = clients[i]->subscribe(bench_group(topic.name(), p.max_in_flight));
          if (!sub) return tl::unexpected(sub.error());
          auto last_message = Clock::now();
          while (received.load() < p.messages) {
            auto batch = (*sub)->receive(std::chrono::milliseconds(100));
            if (!batch) return tl::unexpected(batch.error());
            if (batch->empty()) {
              if (Clock::now() - last_message > kStallTimeout) {
                return fail(Errc::timeout, "consume: no delivery for " +
                                               std::to_string(kStallTimeout.count()) + "s");
              }
              continue;
            }
            last_message = Clock::now();
            std::uint64_t first = 0;
            for (const auto& m : *batch) {
              // Every message is acked on its own (the client packs acks into SETTLE frames).
              (*sub)->ack(m.offset);
              if (m.attempt == 1) {
                ++first;
              } else {
                redelivered.fetch_add(1);
              }
            }
            if (received.fetch_add(first) + first >= p.messages) {
              auto expected = Clock::rep{0};
              last_at.compare_exchange_strong(expected, Clock::now().time_since_epoch().count());
            }
          }
          // Not timed: the figure ends at the last delivery; this makes every ack land.
          if (auto ok = (*sub)->flush(); !ok) return ok;
          return (*sub)->unsubscribe();
        }();
      });
    }
  }
  for (const auto& r : outcome) {
    if (!r) return tl::unexpected(r.error());
  }
  const auto elapsed = Clock::time_point(Clock::duration(last_at.load())) - start;
  auto o = common_params(p, durability_text(clients[0]->server().durability), topic.name());
  o["broker"] = connection.host + ":" + std::to_string(connection.port);
  o["consumers"] = p.consumers;
  o["max_in_flight"] = p.max_in_flight;
  o["ack"] = "per_message";
  o["messages"] = received.load();
  o["redelivered"] = redelivered.load();
  o["fill_elapsed_s"] = std::round(seconds(fill_elapsed) * 1000) / 1000;
  put_rates(o, received.load(), p.size, elapsed);
  return o;
}

Result<json::object> run_e2e(const Params& p, const client::Options& connection) {
  auto started = start(p, connection);
  if (!started) return tl::unexpected(started.error());
  const auto& topic = *started->topic;
  auto& producer = started->client;
  auto consumer = connect(connection);
  if (!consumer) return tl::unexpected(consumer.error());
  auto sub = (*consumer)->subscribe(bench_group(topic.name(), 0));
  if (!sub) return tl::unexpected(sub.error());

  const auto total = static_cast<std::uint64_t>(std::llround(
      static_cast<double>(p.rate) * std::chrono::duration<double>(p.duration).count()));
  std::atomic<std::uint64_t> delivered{0};
  LatencyHistogram latency;
  Result<void> consumed;
  Progress line("e2e", delivered, total);
  // The consumer: the payload starts with the publish time (steady clock, this process).
  std::jthread reader([&] {
    consumed = [&]() -> Result<void> {
      auto last_message = Clock::now();
      while (delivered.load() < total) {
        auto batch = (*sub)->receive(std::chrono::milliseconds(100));
        if (!batch) return tl::unexpected(batch.error());
        const auto now = Clock::now();
        if (batch->empty()) {
          if (now - last_message > kStallTimeout) {
            return fail(Errc::timeout,
                        "e2e: no delivery for " + std::to_string(kStallTimeout.count()) + "s");
          }
          continue;
        }
        last_message = now;
        for (const auto& m : *batch) {
          (*sub)->ack(m.offset);
          if (m.attempt != 1) continue;
          Clock::rep sent = 0;
          std::memcpy(&sent, m.message.payload.data(), sizeof sent);
          latency.record(
              static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             now - Clock::time_point(Clock::duration(sent)))
                                             .count()));
          delivered.fetch_add(1);
        }
      }
      if (auto ok = (*sub)->flush(); !ok) return ok;
      return (*sub)->unsubscribe();
    }();
  });

  // The producer: one message per request, each at its scheduled time (not as fast as
  // possible), confirms collected without waiting for them.
  std::deque<std::future<Result<std::vector<client::PublishResult>>>> confirms;
  std::string payload(p.size, 'x');
  const auto start = Clock::now();
  const auto interval = std::chrono::duration<double>(1.0 / static_cast<double>(p.rate));
  Result<void> published;
  for (std::uint64_t i = 0; i < total && published; ++i) {
    std::this_thread::sleep_until(start +
                                  std::chrono::duration_cast<Clock::duration>(interval * i));
    const auto sent = Clock::now().time_since_epoch().count();
    std::memcpy(payload.data(), &sent, sizeof sent);
    Message m;
    m.payload = payload;
    confirms.push_back(producer->publish_async(topic.name(), {std::move(m)}));
    while (!confirms.empty() &&
           (confirms.size() > 10'000 ||
            confirms.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready)) {
      auto r = wait_reply(confirms.front(), "e2e publish");
      if (!r) published = tl::unexpected(r.error());
      confirms.pop_front();
    }
  }
  const auto publish_elapsed = Clock::now() - start;
  while (published && !confirms.empty()) {
    auto r = wait_reply(confirms.front(), "e2e publish");
    if (!r) published = tl::unexpected(r.error());
    confirms.pop_front();
  }
  if (!published) {
    // The consumer would wait for messages that never come: end it by closing its connection.
    (*consumer)->close();
    reader.join();
    return tl::unexpected(published.error());
  }
  reader.join();
  if (!consumed) return tl::unexpected(consumed.error());
  const auto elapsed = Clock::now() - start;

  auto o = common_params(p, durability_text(producer->server().durability), topic.name());
  o["broker"] = connection.host + ":" + std::to_string(connection.port);
  o["rate"] = p.rate;
  o["duration_s"] = std::chrono::duration<double>(p.duration).count();
  o["messages"] = delivered.load();
  o["publish_rate"] = static_cast<std::uint64_t>(
      std::llround(static_cast<double>(total) / std::max(seconds(publish_elapsed), 1e-9)));
  put_rates(o, delivered.load(), p.size, elapsed);
  put_latency(o, latency);
  return o;
}

// A temporary dir (removed unless kept) or the user's.
class DataDir {
 public:
  static Result<DataDir> make(const std::optional<std::filesystem::path>& given, bool keep) {
    if (given) return DataDir(*given, false);
    std::string tmpl = (std::filesystem::temp_directory_path() / "loft-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return fail(Errc::storage_error,
                  "cannot create a temporary dir: " + std::string(std::strerror(errno)));
    }
    return DataDir(tmpl, !keep);
  }
  ~DataDir() {
    if (!remove_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);  // best effort: a leftover temp dir is harmless
  }
  DataDir(DataDir&& o) noexcept
      : path_(std::move(o.path_)), remove_(std::exchange(o.remove_, false)) {}
  DataDir& operator=(DataDir&&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  DataDir(std::filesystem::path path, bool remove) : path_(std::move(path)), remove_(remove) {}
  std::filesystem::path path_;
  bool remove_;
};

// The broker completes on its writer thread; a promise hands the outcome to the caller's.
template <class T>
std::pair<std::future<Result<T>>, broker::Callback<T>> completion() {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  return {std::move(future), [promise](Result<T> r) { promise->set_value(std::move(r)); }};
}

Result<json::object> run_storage(const Params& p) {
  tune_malloc_for_commits();  // as loftd does, so the ceiling is measured the same way
  auto dir = DataDir::make(p.data_dir, p.keep);
  if (!dir) return tl::unexpected(dir.error());
  std::optional<DataDirLock> lock;
  try {
    lock.emplace(dir->path());  // a loftd running on this dir would be corrupted by us
  } catch (const std::exception& e) {
    return fail(Errc::storage_error, e.what());
  }
  storage::RocksDbOptions so;
  so.dir = dir->path() / "rocksdb";
  auto store = storage::open_rocksdb_store(so);
  if (!store) return tl::unexpected(store.error());
  broker::Options bo;
  bo.durability = p.durability;
  auto opened = broker::Broker::open(std::move(*store), bo);
  if (!opened) return tl::unexpected(opened.error());
  auto& broker = **opened;

  const auto topic = fresh_topic(p.mode);
  {
    auto created = completion<TopicInfo>();
    broker.create_topic(topic, created.second);
    auto r = wait_reply(created.first, "create topic");
    if (!r) return tl::unexpected(r.error());
  }
  PublishPlan plan;
  plan.limit = p.messages;
  plan.size = p.size;
  plan.batch = p.batch;
  plan.window = p.window;
  if (p.ids) plan.id_prefix = topic + "-";
  std::atomic<std::uint64_t> progress{0};
  LatencyHistogram latency;
  Result<std::uint64_t> done = std::uint64_t{0};
  Clock::duration elapsed{};
  {
    Progress line("storage", progress, p.messages);
    const auto start = Clock::now();
    done = publish_loop(
        plan,
        [&](std::vector<Message> messages) {
          auto [future, done] = completion<std::vector<broker::MessageResult>>();
          broker.publish(topic, std::move(messages),
                         [done = std::move(done)](Result<broker::Appended> r) {
                           if (!r) return done(tl::unexpected(r.error()));
                           done(std::move(r->results));
                         });
          return std::move(future);
        },
        &latency, progress);
    elapsed = Clock::now() - start;
  }
  if (!done) return tl::unexpected(done.error());
  if (!p.keep) {
    auto deleted = completion<void>();
    broker.delete_topic(topic, deleted.second);
    std::ignore = wait_reply(deleted.first, "delete topic");  // the figures are measured already
  }
  broker.stop();

  json::object o = common_params(p, durability_text(p.durability), topic);
  o["data_dir"] = p.data_dir ? dir->path().string() : (p.keep ? dir->path().string() : "temporary");
  o["batch"] = p.batch;
  o["window"] = p.window;
  o["ids"] = p.ids;
  o["messages"] = *done;
  put_rates(o, *done, p.size, elapsed);
  put_latency(o, latency);
  return o;
}

}  // namespace

Result<Mode> parse_mode(std::string_view text) {
  for (const auto m : {Mode::publish, Mode::consume, Mode::e2e, Mode::storage}) {
    if (text == to_string(m)) return m;
  }
  return fail(Errc::invalid_request,
              "unknown bench mode '" + std::string(text) + "': publish, consume, e2e or storage");
}

std::string_view to_string(Mode mode) {
  switch (mode) {
    case Mode::publish:
      return "publish";
    case Mode::consume:
      return "consume";
    case Mode::e2e:
      return "e2e";
    case Mode::storage:
      return "storage";
  }
  return "?";
}

bool flag_applies(Mode mode, std::string_view name) {
  if (name == "size" || name == "keep") return true;
  switch (mode) {
    case Mode::publish:
      return name == "messages" || name == "duration" || name == "batch" || name == "window" ||
             name == "producers" || name == "ids";
    case Mode::consume:
      return name == "messages" || name == "consumers" || name == "max-in-flight";
    case Mode::e2e:
      return name == "rate" || name == "duration";
    case Mode::storage:
      return name == "messages" || name == "batch" || name == "window" || name == "ids" ||
             name == "data-dir" || name == "durability";
  }
  return false;
}

Result<void> validate(const Params& p) {
  if (p.mode == Mode::e2e && p.size < sizeof(Clock::rep)) {
    return fail(Errc::invalid_request, "bench e2e needs --size of at least " +
                                           std::to_string(sizeof(Clock::rep)) +
                                           " (the payload carries the publish time)");
  }
  if (p.mode == Mode::e2e && p.duration.count() <= 0) {
    return fail(Errc::invalid_request, "bench e2e needs a --duration");
  }
  if (p.mode == Mode::e2e &&
      static_cast<double>(p.rate) * std::chrono::duration<double>(p.duration).count() < 1) {
    return fail(Errc::invalid_request, "--rate times --duration is less than one message");
  }
  return {};
}

Result<json::object> run(const Params& params, const client::Options& connection) {
  if (auto ok = validate(params); !ok) return tl::unexpected(ok.error());
  switch (params.mode) {
    case Mode::publish:
      return run_publish(params, connection);
    case Mode::consume:
      return run_consume(params, connection);
    case Mode::e2e:
      return run_e2e(params, connection);
    case Mode::storage:
      return run_storage(params);
  }
  return fail(Errc::internal_error, "unknown mode");
}

void print_table(const json::object& report, std::ostream& out) {
  std::size_t width = 0;
  for (const auto& kv : report) width = std::max(width, kv.key().size());
  for (const auto& kv : report) {
    std::string value;
    if (kv.value().is_string()) {
      value = kv.value().as_string().c_str();
    } else if (kv.value().is_double()) {
      char buf[64];
      std::snprintf(buf, sizeof buf,
                    kv.key().ends_with("_s") || kv.key() == "mb_per_sec" ? "%.3f" : "%.1f",
                    kv.value().as_double());
      value = buf;
    } else if (kv.value().is_bool()) {
      value = kv.value().as_bool() ? "yes" : "no";
    } else {
      value = json::serialize(kv.value());
    }
    out << std::string(kv.key()) << std::string(width + 2 - kv.key().size(), ' ') << value << "\n";
  }
}

}  // namespace loft::apps::bench
