#pragma once
// For tests that drive broker::Groups without a server: the test thread as the io loop, and a
// subscriber that decodes the DELIVER frames it is given.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <utility>

#include "loft/broker/groups.hpp"
#include "loft/protocol/codec.hpp"

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

class FakeSubscriber final : public broker::Subscriber {
 public:
  bool ready() const override { return is_ready; }
  // Decodes the frame as a client would; a frame that does not decode fails the test.
  void deliver(std::uint64_t subscription, std::string frame) override {
    auto header = protocol::decode_header(frame, 1u << 30);
    ASSERT_TRUE(header.has_value()) << header.error().to_string();
    ASSERT_EQ(header->length + 4, frame.size());
    auto body =
        protocol::decode_body(*header, std::span<const char>{frame}.subspan(protocol::kHeaderSize));
    ASSERT_TRUE(body.has_value()) << body.error().to_string();
    auto* deliver = std::get_if<protocol::Deliver>(&*body);
    ASSERT_NE(deliver, nullptr) << "not a DELIVER";
    EXPECT_EQ(deliver->subscription, subscription);
    for (auto& m : deliver->messages) received.push_back(std::move(m));
  }
  std::string client_name() const override { return "test"; }
  std::deque<protocol::DeliveredMessage> received;
  bool is_ready = true;  // false: its connection's send queue is full, no deliveries
};

}  // namespace loft::testing
