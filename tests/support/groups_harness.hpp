#pragma once
// For tests that drive broker::Groups without a server: the test thread as the io loop, and a
// subscriber that decodes the DELIVER frames it is given.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "loft/broker/groups.hpp"

namespace loft::testing {

// The test thread plays the io thread: completions the broker posts run here, in order.
class Loop {
 public:
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mutex_);
      tasks_.push_back(std::move(f));
    }
    cv_.notify_one();
  }
  // Runs posted tasks until `done` holds; false if it does not within a generous deadline.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done()) {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_until(lock, deadline, [&] { return !tasks_.empty(); })) return false;
      auto f = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      f();
    }
    return true;
  }
  // Runs the tasks posted so far, and those they post, without waiting for more; how many ran.
  std::size_t run_ready() {
    std::size_t ran = 0;
    for (;;) {
      std::unique_lock lock(mutex_);
      if (tasks_.empty()) return ran;
      auto f = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      f();
      ++ran;
    }
  }
  // Runs the next posted task, waiting for it; false if none comes within a generous deadline.
  bool run_one() {
    bool ran = false;
    return run_until([&] { return std::exchange(ran, true); });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
};

// A broker over `store` and its groups, as loftd starts them: the groups the store holds are
// loaded, and topic events reach the groups on `loop` (the test thread) at `now`.
struct BrokerWithGroups {
  std::unique_ptr<broker::Broker> broker;
  std::unique_ptr<broker::Groups> groups;
};
inline Result<BrokerWithGroups> open_with_groups(std::unique_ptr<storage::Store> store,
                                                 broker::Options options, Loop& loop,
                                                 broker::TimePoint now) {
  auto b = broker::Broker::open(std::move(store), std::move(options));
  if (!b) return tl::unexpected(b.error());
  BrokerWithGroups out{std::move(*b), nullptr};
  out.groups = std::make_unique<broker::Groups>(
      *out.broker, broker::GroupDefaults{},
      [&loop](std::function<void()> f) { loop.post(std::move(f)); });
  out.groups->load();
  out.broker->set_topic_listener([&loop, groups = out.groups.get(),
                                  now](std::vector<broker::TopicEvent> events) {
    loop.post([groups, now, events = std::move(events)] { groups->on_topic_events(events, now); });
  });
  return out;
}

// A graceful stop of what open_with_groups opened: every group's progress written, then the
// broker closed. Nothing if `broker` is null.
inline void close_with_groups(std::unique_ptr<broker::Broker>& broker,
                              std::unique_ptr<broker::Groups>& groups) {
  if (!broker) return;
  groups->write_all_on_stop();
  broker->stop();
  groups.reset();
  broker.reset();
}

// A delivered message as a test sees it: copied out of the views the subscriber was handed
// (they are valid only during deliver()).
struct Received {
  std::uint64_t offset = 0;
  std::uint32_t attempt = 1;
  std::int64_t timestamp_ms = 0;
  Message message;
};

class FakeSubscriber final : public broker::Subscriber {
 public:
  bool ready() const override { return is_ready; }
  void deliver(const broker::DeliveryBatch& batch) override {
    EXPECT_FALSE(batch.messages.empty()) << "an empty delivery";
    std::optional<std::uint64_t> last;
    for (const auto& d : batch.messages) {
      const auto& v = *d.message;
      EXPECT_TRUE(!last || v.offset.value > *last) << "not in ascending offset order";
      last = v.offset.value;
      Message m{std::string(v.id),
                std::string(v.key),
                {},
                std::string(v.payload),
                std::string(v.subject)};
      for (const auto& h : v.headers)
        m.headers.push_back({std::string(h.name), std::string(h.value)});
      m.deliver_at_ms = v.deliver_at_ms;
      received.push_back(Received{v.offset.value, d.attempt, v.timestamp_ms, std::move(m)});
    }
    subscriptions.push_back(batch.subscription);
    if (wants) *wants -= std::min<std::uint32_t>(*wants, batch.messages.size());
  }
  std::string client_name() const override { return "test"; }
  std::uint32_t credit(std::uint64_t subscription) const override {
    return wants ? *wants : Subscriber::credit(subscription);
  }
  std::deque<Received> received;
  std::vector<std::uint64_t> subscriptions;  // of each delivery, in order
  bool is_ready = true;  // false: its connection's send queue is full, no deliveries
  // Set: the messages it asks for (as a NATS pull consumer does), counted down by deliveries.
  std::optional<std::uint32_t> wants;
};

}  // namespace loft::testing
