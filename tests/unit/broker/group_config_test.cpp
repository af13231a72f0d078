// The valid ranges of group settings (docs/protocol.md, "GroupConfig"): each boundary value
// is accepted, the value just outside it is refused with the field named.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "loft/broker/groups.hpp"

namespace loft::broker {
namespace {

using ::testing::HasSubstr;
using L = GroupLimits;
constexpr std::uint32_t kU32Max = std::numeric_limits<std::uint32_t>::max();

// -Wmissing-field-initializers rejects designated initializers that leave fields out.
GroupConfig ack_timeout(std::uint32_t ms) {
  GroupConfig c;
  c.ack_timeout_ms = ms;
  return c;
}
GroupConfig deliveries(std::uint32_t n) {
  GroupConfig c;
  c.max_deliveries = n;
  return c;
}
GroupConfig backoff(std::uint32_t base_ms, std::uint32_t cap_ms) {
  GroupConfig c;
  c.backoff_base_ms = base_ms;
  c.backoff_cap_ms = cap_ms;
  return c;
}
GroupConfig dead_letter(std::string topic) {
  GroupConfig c;
  c.dead_letter_topic = std::move(topic);
  return c;
}

Result<GroupConfig> check(const GroupConfig& c, std::string_view topic = "orders") {
  return effective_group_config(topic, c, GroupDefaults{});
}

void expect_refused(const GroupConfig& c, std::string_view field,
                    Errc code = Errc::invalid_request) {
  const auto r = check(c);
  ASSERT_FALSE(r) << field;
  EXPECT_EQ(r.error().code, code) << r.error().detail;
  EXPECT_THAT(r.error().detail, HasSubstr(std::string(field)));
}

TEST(GroupConfigRanges, ZerosAreTheServerDefaultsAndTheDefaultsAreValid) {
  const auto r = check(GroupConfig{});
  ASSERT_TRUE(r) << r.error().detail;
  const GroupDefaults d;
  EXPECT_EQ(r->ack_timeout_ms, d.ack_timeout_ms);
  EXPECT_EQ(r->max_deliveries, d.max_deliveries);
  EXPECT_EQ(r->backoff_base_ms, d.backoff_base_ms);
  EXPECT_EQ(r->backoff_cap_ms, d.backoff_cap_ms);
  EXPECT_TRUE(r->backoff_delays_ms.empty());
  EXPECT_EQ(r->dead_letter_topic, "orders.dlq");
}

TEST(GroupConfigRanges, AckTimeout) {
  for (const std::uint32_t ok : {L::kMinAckTimeoutMs, L::kMaxAckTimeoutMs}) {
    EXPECT_TRUE(check(ack_timeout(ok))) << ok;
  }
  for (const std::uint32_t bad : {1u, L::kMinAckTimeoutMs - 1, L::kMaxAckTimeoutMs + 1, kU32Max}) {
    expect_refused(ack_timeout(bad), "ack_timeout_ms");
  }
}

TEST(GroupConfigRanges, MaxDeliveries) {
  for (const std::uint32_t ok : {1u, L::kMaxDeliveries}) {
    EXPECT_TRUE(check(deliveries(ok))) << ok;
  }
  for (const std::uint32_t bad : {L::kMaxDeliveries + 1, kU32Max}) {
    expect_refused(deliveries(bad), "max_deliveries");
  }
}

TEST(GroupConfigRanges, BackoffBaseAndCap) {
  EXPECT_TRUE(check(backoff(1, 1)));
  EXPECT_TRUE(check(backoff(L::kMaxBackoffMs, L::kMaxBackoffMs)));
  expect_refused(backoff(L::kMaxBackoffMs + 1, L::kMaxBackoffMs), "backoff_base_ms");
  expect_refused(backoff(0, L::kMaxBackoffMs + 1), "backoff_cap_ms");
  expect_refused(backoff(0, kU32Max), "backoff_cap_ms");
  // Base above its cap, given or by default (base 1000 by default).
  EXPECT_TRUE(check(backoff(500, 500)));
  expect_refused(backoff(501, 500), "backoff_base_ms");
  expect_refused(backoff(0, 999), "backoff_cap_ms");
  EXPECT_TRUE(check(backoff(0, 1000)));
}

TEST(GroupConfigRanges, BackoffDelays) {
  GroupConfig c;
  c.backoff_delays_ms.assign(L::kMaxBackoffDelays, 0);
  c.backoff_delays_ms.back() = L::kMaxBackoffMs;
  EXPECT_TRUE(check(c));
  c.backoff_delays_ms.push_back(10);
  expect_refused(c, "backoff_delays_ms");
  c.backoff_delays_ms.assign(1000, 10);
  expect_refused(c, "backoff_delays_ms");
  c.backoff_delays_ms = {10, L::kMaxBackoffMs + 1};
  expect_refused(c, "backoff_delays_ms[1]");
}

TEST(GroupConfigRanges, DeadLetterTopic) {
  EXPECT_EQ(check(dead_letter("orders-failed"))->dead_letter_topic, "orders-failed");
  expect_refused(dead_letter("orders"), "dead_letter_topic");
  expect_refused(dead_letter("no spaces"), "dead_letter_topic", Errc::invalid_name);
  expect_refused(dead_letter(std::string(250, 'd')), "dead_letter_topic", Errc::invalid_name);
}

TEST(GroupConfigRanges, AnnotationIsBoundedAndKeptAsGiven) {
  GroupConfig c;
  c.annotation = std::string(L::kMaxAnnotationBytes, '\xFF');
  const auto r = check(c);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->annotation, c.annotation);
  c.annotation.push_back('x');
  expect_refused(c, "annotation must be at most 8192 bytes, got 8193");
  EXPECT_FALSE(validate_annotation(c.annotation));
  EXPECT_TRUE(validate_annotation(""));
}

TEST(DefaultDeadLetterTopic, IsTopicDotDlqWhileThatFits) {
  EXPECT_EQ(default_dead_letter_topic("orders"), "orders.dlq");
  const std::string longest(245, 'a');  // 245 + 4 = 249 bytes
  EXPECT_EQ(default_dead_letter_topic(longest), longest + ".dlq");
}

TEST(DefaultDeadLetterTopic, LongerTopicsGetADerivedNameThatIsAlwaysValid) {
  for (std::size_t n = 246; n <= 249; ++n) {
    const std::string topic(n, 'a');
    const auto name = default_dead_letter_topic(topic);
    EXPECT_EQ(name.size(), 249u) << n;
    EXPECT_TRUE(validate_topic_name(name)) << name;
    EXPECT_EQ(name.substr(0, 228), topic.substr(0, 228));
    EXPECT_EQ(name.substr(228, 1), ".");
    EXPECT_EQ(name.substr(245), ".dlq");
    EXPECT_TRUE(check(GroupConfig{}, topic)) << n;  // SUBSCRIBE with the defaults works
  }
  // Topics sharing their first 228 bytes get different dead-letter topics.
  const std::string a = std::string(228, 'x') + std::string(21, 'a');
  const std::string b = std::string(228, 'x') + std::string(21, 'b');
  EXPECT_NE(default_dead_letter_topic(a), default_dead_letter_topic(b));
  EXPECT_EQ(default_dead_letter_topic(a), default_dead_letter_topic(a));  // deterministic
}

}  // namespace
}  // namespace loft::broker
