#pragma once
// Test-only: a well-behaved NATS publisher and subscriber on their own subject, kept working
// next to a test that misbehaves on the same loftd (nats_core_test's and nats_hostile_test's
// hostile cases), which checks at the end that they still do.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "nats_client.hpp"

namespace loft::testing {

class Bystander {
 public:
  explicit Bystander(std::uint16_t port) : pub_(port), sub_(port) {
    EXPECT_TRUE(pub_.handshake());
    EXPECT_TRUE(sub_.handshake());
    EXPECT_TRUE(sub_.sub("bystander", "1"));
    EXPECT_TRUE(sub_.flush());
  }
  // A round trip through the daemon: what is published now arrives.
  bool works() {
    const std::string payload = "round " + std::to_string(++rounds_);
    if (!pub_.pub("bystander", payload) || !pub_.flush()) return false;
    const auto m = sub_.next_msg();
    return m && m->payload == payload;
  }

 private:
  NatsConnection pub_;
  NatsConnection sub_;
  int rounds_ = 0;
};

}  // namespace loft::testing
