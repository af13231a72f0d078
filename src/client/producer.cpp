#include "loft/client/producer.hpp"

#include <algorithm>
#include <cstdio>
#include <random>

namespace loft::client {
namespace {

std::string random_prefix() {
  std::random_device rd;
  const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool unknown_outcome(const Error& e) {
  return e.code == Errc::connection_error || e.code == Errc::shutting_down ||
         e.code == Errc::timeout;
}

}  // namespace

Producer::Producer(ProducerOptions options)
    : options_(std::move(options)), id_prefix_(random_prefix()) {}

Result<std::unique_ptr<Producer>> Producer::connect(ProducerOptions options) {
  auto client = Client::connect(options.connection);
  if (!client) return tl::unexpected(client.error());
  std::unique_ptr<Producer> p(new Producer(std::move(options)));
  p->client_ = std::move(*client);
  p->generation_ = 1;
  p->reconnector_ = std::thread([raw = p.get()] { raw->run_reconnector(); });
  p->completer_ = std::thread([raw = p.get()] { raw->run_completer(); });
  return p;
}

Producer::~Producer() {
  std::unique_ptr<Client> client;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    client = std::move(client_);
  }
  cv_.notify_all();
  client.reset();  // completes every outstanding future (with an error)
  if (reconnector_.joinable()) reconnector_.join();
  if (completer_.joinable()) completer_.join();
  for (auto& p : pending_) {
    p.promise->set_value(fail(Errc::connection_error, "the producer was closed"));
  }
}

std::future<Result<std::vector<PublishResult>>> Producer::publish(std::string topic,
                                                                  std::vector<Message> messages) {
  auto promise = std::make_shared<std::promise<Result<std::vector<PublishResult>>>>();
  auto future = promise->get_future();
  std::lock_guard lock(mutex_);
  if (stopping_) {
    promise->set_value(fail(Errc::connection_error, "the producer was closed"));
    return future;
  }
  if (options_.generate_ids) {
    for (auto& m : messages) {
      if (m.id.empty()) m.id = id_prefix_ + "-" + std::to_string(next_id_++);
    }
  }
  pending_.push_back(Pending{next_seq_++, std::move(topic), std::move(messages), promise});
  // Sent under the lock, so the send order is the publish order. While the connection is
  // broken it is only kept: the reconnector sends it.
  if (!broken_) send(pending_.back());
  return future;
}

void Producer::send(const Pending& p) {
  in_flight_.push_back(InFlight{p.seq, generation_, client_->publish_async(p.topic, p.messages)});
  cv_.notify_all();
}

void Producer::run_completer() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !in_flight_.empty(); });
    if (in_flight_.empty()) return;  // stopping, nothing left to look at
    auto f = std::move(in_flight_.front());
    in_flight_.pop_front();
    lock.unlock();
    auto reply = f.reply.get();  // every future completes: reply, or the connection's end
    lock.lock();
    if (f.generation != generation_) continue;  // an older connection: resent since
    if (!reply && unknown_outcome(reply.error())) {
      // Maybe stored, maybe not: keep it; the reconnector resends everything unconfirmed
      // with the same ids, and dedup makes that safe.
      if (!broken_ && !stopping_) {
        broken_ = true;
        cv_.notify_all();
      }
      continue;
    }
    const auto it = std::find_if(pending_.begin(), pending_.end(),
                                 [&](const Pending& p) { return p.seq == f.seq; });
    if (it == pending_.end()) continue;
    auto promise = it->promise;
    pending_.erase(it);
    cv_.notify_all();
    lock.unlock();
    promise->set_value(std::move(reply));
    lock.lock();
  }
}

void Producer::run_reconnector() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || broken_; });
    if (stopping_) return;
    const auto started = std::chrono::steady_clock::now();
    auto delay = options_.reconnect_min;
    Error last{Errc::connection_error, "the connection to the broker was lost"};
    std::unique_ptr<Client> fresh;
    while (!stopping_ && options_.give_up_after.count() > 0 &&
           std::chrono::steady_clock::now() - started <= options_.give_up_after) {
      lock.unlock();
      auto c = Client::connect(options_.connection);
      lock.lock();
      if (c) {
        fresh = std::move(*c);
        break;
      }
      last = c.error();
      cv_.wait_for(lock, delay, [&] { return stopping_; });
      delay = std::min(delay * 2, options_.reconnect_max);
    }
    if (stopping_) return;
    auto old = std::move(client_);
    if (!fresh) {
      // Give up: fail everything unconfirmed. The next publish tries a new connection.
      auto pending = std::move(pending_);
      pending_.clear();
      auto c = Client::connect(options_.connection);
      if (c) client_ = std::move(*c);
      ++generation_;
      broken_ = !client_;
      lock.unlock();
      for (auto& p : pending) p.promise->set_value(tl::unexpected(last));
      old.reset();
      lock.lock();
      continue;
    }
    client_ = std::move(fresh);
    ++generation_;
    ++reconnects_;
    broken_ = false;
    // Everything unconfirmed, in publish order, with the same ids.
    for (const auto& p : pending_) send(p);
    lock.unlock();
    old.reset();  // completes the old connection's futures; their generation is stale
    lock.lock();
  }
}

Result<void> Producer::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return pending_.empty(); })) {
    return fail(Errc::timeout, std::to_string(pending_.size()) +
                                   " publishes still unconfirmed after " +
                                   std::to_string(timeout.count()) + "ms");
  }
  return {};
}

std::uint64_t Producer::reconnects() const {
  std::lock_guard lock(mutex_);
  return reconnects_;
}

}  // namespace loft::client
