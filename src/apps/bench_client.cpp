#include "bench_client.hpp"

#include <cmath>
#include <cstring>
#include <deque>
#include <future>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace loft::apps::bench {
namespace {

namespace json = boost::json;

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
client::SubscribeOptions bench_group(const std::string& topic, std::uint32_t max_in_flight,
                                     Ordering ordering = Ordering::none) {
  client::SubscribeOptions so;
  so.topic = topic;
  so.group = "bench";
  so.start = {protocol::StartKind::earliest, 0};
  so.max_in_flight = max_in_flight;
  so.config.ordering = ordering;
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
  o["tls"] = connection.tls.enabled;
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

// Fills the topic for `bench consume`: large batches, many in flight; not part of the figure.
Result<Clock::duration> fill(const Params& p, client::Client& c, const std::string& topic) {
  std::atomic<std::uint64_t> filled{0};
  PublishPlan plan;
  plan.limit = p.messages;
  plan.size = p.size;
  plan.batch = fitting_batch(c, 1000, p.size);
  plan.window = 16;
  plan.keys = p.keys;
  const auto fill_start = Clock::now();
  Progress line("consume: filling", filled, p.messages);
  auto ok = publish_loop(
      plan, [&](std::vector<Message> m) { return c.publish_async(topic, std::move(m)); }, nullptr,
      filled);
  if (!ok) return tl::unexpected(ok.error());
  return Clock::now() - fill_start;
}

// What the consumers of `bench consume` count together.
struct ConsumeTally {
  std::atomic<std::uint64_t> received{0};     // first deliveries, all consumers
  std::atomic<std::uint64_t> redelivered{0};  // later attempts (an ack timeout passed)
  std::atomic<Clock::rep> last_at{0};         // when `received` reached the goal
};

// One consumer of `bench consume`: receives and acks until the consumers together have
// received `p.messages`.
Result<void> consume(client::Client& c, const std::string& topic, const Params& p,
                     ConsumeTally& tally) {
  auto sub = c.subscribe(bench_group(topic, p.max_in_flight, p.ordering));
  if (!sub) return tl::unexpected(sub.error());
  auto last_message = Clock::now();
  while (tally.received.load() < p.messages) {
    auto batch = (*sub)->receive(std::chrono::milliseconds(100));
    if (!batch) return tl::unexpected(batch.error());
    if (batch->empty()) {
      if (Clock::now() - last_message > kStallTimeout) {
        return fail(Errc::timeout,
                    "consume: no delivery for " + std::to_string(kStallTimeout.count()) + "s");
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
        tally.redelivered.fetch_add(1);
      }
    }
    if (tally.received.fetch_add(first) + first >= p.messages) {
      auto expected = Clock::rep{0};
      tally.last_at.compare_exchange_strong(expected, Clock::now().time_since_epoch().count());
    }
  }
  // Not timed: the figure ends at the last delivery; this makes every ack land.
  if (auto ok = (*sub)->flush(); !ok) return ok;
  return (*sub)->unsubscribe();
}

Result<json::object> run_consume(const Params& p, const client::Options& connection) {
  auto started = start(p, connection);
  if (!started) return tl::unexpected(started.error());
  const auto& topic = *started->topic;
  const auto fill_elapsed = fill(p, *started->client, topic.name());
  if (!fill_elapsed) return tl::unexpected(fill_elapsed.error());

  std::vector<std::unique_ptr<client::Client>> clients;
  for (std::size_t i = 0; i < p.consumers; ++i) {
    auto c = connect(connection);
    if (!c) return tl::unexpected(c.error());
    clients.push_back(std::move(*c));
  }
  ConsumeTally tally;
  std::vector<Result<void>> outcome(p.consumers);
  Progress line("consume", tally.received, p.messages);
  const auto start = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < p.consumers; ++i) {
      threads.emplace_back([&, i] { outcome[i] = consume(*clients[i], topic.name(), p, tally); });
    }
  }
  for (const auto& r : outcome) {
    if (!r) return tl::unexpected(r.error());
  }
  const auto elapsed = Clock::time_point(Clock::duration(tally.last_at.load())) - start;
  auto o = common_params(p, durability_text(clients[0]->server().durability), topic.name());
  o["broker"] = connection.host + ":" + std::to_string(connection.port);
  o["consumers"] = p.consumers;
  o["max_in_flight"] = p.max_in_flight;
  o["keys"] = p.keys;
  o["ordering"] = p.ordering == Ordering::key ? "key" : "none";
  o["ack"] = "per_message";
  o["messages"] = tally.received.load();
  o["redelivered"] = tally.redelivered.load();
  o["fill_elapsed_s"] = std::round(seconds(*fill_elapsed) * 1000) / 1000;
  put_rates(o, tally.received.load(), p.size, elapsed);
  return o;
}

// How a delayed message's lateness is counted: from its deliver_at_ms (the payload starts with
// it), by the system clock that loftd's deliver_at_ms is read on. `early` counts the messages
// received before their time (there must be none).
struct DelayTally {
  bool delayed = false;
  Clock::duration delay{};  // nothing comes before then: the stall check starts after it
  std::atomic<std::uint64_t> early{0};
};

// The consumer of `bench e2e`: acks every delivery and records, for each first delivery, the
// time since its publish (the payload starts with it: steady clock, this process), or for a
// delayed run the time since it was due.
Result<void> e2e_receive(client::Subscription& sub, std::uint64_t total,
                         std::atomic<std::uint64_t>& delivered, LatencyHistogram& latency,
                         DelayTally& delay) {
  auto last_message = Clock::now() + delay.delay;
  while (delivered.load() < total) {
    auto batch = sub.receive(std::chrono::milliseconds(100));
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
    const auto wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    for (const auto& m : *batch) {
      sub.ack(m.offset);
      if (m.attempt != 1) continue;
      Clock::rep sent = 0;
      std::memcpy(&sent, m.message.payload.data(), sizeof sent);
      if (delay.delayed) {
        const std::int64_t due_ns = static_cast<std::int64_t>(sent) * 1'000'000;
        if (wall_ns < due_ns) delay.early.fetch_add(1);
        latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, wall_ns - due_ns)));
        delivered.fetch_add(1);
        continue;
      }
      latency.record(
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         now - Clock::time_point(Clock::duration(sent)))
                                         .count()));
      delivered.fetch_add(1);
    }
  }
  if (auto ok = sub.flush(); !ok) return ok;
  return sub.unsubscribe();
}

// The producer of `bench e2e`: one message per request, each at its scheduled time from
// `start` (not as fast as possible), confirms collected without waiting for them. Returns how
// long the publishing took (the last confirms not included).
Result<Clock::duration> e2e_publish(client::Client& producer, const std::string& topic,
                                    const Params& p, std::uint64_t total, Clock::time_point start) {
  std::deque<std::future<Result<std::vector<client::PublishResult>>>> confirms;
  std::string payload(p.size, 'x');
  const auto interval = std::chrono::duration<double>(1.0 / static_cast<double>(p.rate));
  Result<void> published;
  for (std::uint64_t i = 0; i < total && published; ++i) {
    std::this_thread::sleep_until(start +
                                  std::chrono::duration_cast<Clock::duration>(interval * i));
    Message m;
    if (p.delay.count() > 0) {
      // Due `delay` from now by the system clock, to the millisecond loftd schedules by.
      const auto due = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch() + p.delay)
                           .count();
      static_assert(sizeof(Clock::rep) == sizeof(due));
      std::memcpy(payload.data(), &due, sizeof due);
      m.deliver_at_ms = due;
    } else {
      const auto sent = Clock::now().time_since_epoch().count();
      std::memcpy(payload.data(), &sent, sizeof sent);
    }
    m.payload = payload;
    confirms.push_back(producer.publish_async(topic, {std::move(m)}));
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
  if (!published) return tl::unexpected(published.error());
  return publish_elapsed;
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
  DelayTally delay;
  delay.delayed = p.delay.count() > 0;
  delay.delay = p.delay;
  Result<void> consumed;
  Progress line("e2e", delivered, total);
  std::jthread reader([&] { consumed = e2e_receive(**sub, total, delivered, latency, delay); });
  const auto start = Clock::now();
  const auto publish_elapsed = e2e_publish(*producer, topic.name(), p, total, start);
  if (!publish_elapsed) {
    // The consumer would wait for messages that never come: end it by closing its connection.
    (*consumer)->close();
    reader.join();
    return tl::unexpected(publish_elapsed.error());
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
      std::llround(static_cast<double>(total) / std::max(seconds(*publish_elapsed), 1e-9)));
  put_rates(o, delivered.load(), p.size, elapsed);
  if (delay.delayed) {
    // The latency figures below count from each message's due time, not from its send.
    o["delay_ms"] = p.delay.count();
    o["early"] = delay.early.load();
  }
  put_latency(o, latency);
  return o;
}

}  // namespace

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
      break;
  }
  return fail(Errc::invalid_request,
              "bench " + std::string(to_string(params.mode)) + " does not run against a broker");
}

}  // namespace loft::apps::bench
