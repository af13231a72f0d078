// Group settings: their valid ranges, the defaults filled in, the default dead-letter topic.

#include <xxhash.h>

#include <cstdio>
#include <string>

#include "loft/broker/groups.hpp"

namespace loft::broker {
namespace {

constexpr std::string_view kDeadLetterSuffix = ".dlq";
// 228 + '.' + 16 hex digits + ".dlq" = 249 bytes, the longest valid topic name.
constexpr std::size_t kDerivedPrefix = 228;

Error out_of_range(std::string_view field, std::uint32_t got, std::uint32_t min, std::uint32_t max,
                   std::uint32_t requested) {
  std::string text = std::string(field) + " must be " + std::to_string(min) + " to " +
                     std::to_string(max) + " (0 = the server default), got " + std::to_string(got);
  if (requested == 0) text += " (the server default)";
  return Error{Errc::invalid_request, std::move(text)};
}

Result<void> check_range(std::string_view field, std::uint32_t value, std::uint32_t min,
                         std::uint32_t max, std::uint32_t requested) {
  if (value < min || value > max)
    return tl::unexpected(out_of_range(field, value, min, max, requested));
  return {};
}

Result<void> check_delays(const std::vector<std::uint32_t>& delays) {
  if (delays.size() > GroupLimits::kMaxBackoffDelays) {
    return fail(Errc::invalid_request, "backoff_delays_ms may list at most " +
                                           std::to_string(GroupLimits::kMaxBackoffDelays) +
                                           " delays, got " + std::to_string(delays.size()));
  }
  for (std::size_t i = 0; i < delays.size(); ++i) {
    if (delays[i] > GroupLimits::kMaxBackoffMs) {
      return fail(Errc::invalid_request, "backoff_delays_ms[" + std::to_string(i) +
                                             "] must be 0 to " +
                                             std::to_string(GroupLimits::kMaxBackoffMs) + ", got " +
                                             std::to_string(delays[i]));
    }
  }
  return {};
}

Result<void> check_dead_letter_topic(std::string_view topic, const std::string& name) {
  if (auto ok = validate_topic_name(name); !ok) {
    return fail(Errc::invalid_name,
                "dead_letter_topic '" + name + "' is not a valid topic name: " + ok.error().detail);
  }
  if (name == topic) {
    return fail(Errc::invalid_request,
                "dead_letter_topic must differ from the topic '" + std::string(topic) + "'");
  }
  return {};
}

}  // namespace

std::string default_dead_letter_topic(std::string_view topic) {
  std::string name = std::string(topic) + std::string(kDeadLetterSuffix);
  if (validate_topic_name(name)) return name;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH64(topic.data(), topic.size(), 0)));
  return std::string(topic.substr(0, kDerivedPrefix)) + "." + hex + std::string(kDeadLetterSuffix);
}

Result<void> validate_annotation(std::string_view annotation) {
  if (annotation.size() > GroupLimits::kMaxAnnotationBytes) {
    return fail(Errc::invalid_request, "annotation must be at most " +
                                           std::to_string(GroupLimits::kMaxAnnotationBytes) +
                                           " bytes, got " + std::to_string(annotation.size()));
  }
  return {};
}

Result<GroupConfig> effective_group_config(std::string_view topic, const GroupConfig& requested,
                                           const GroupDefaults& defaults) {
  const auto pick = [](std::uint32_t v, std::uint32_t d) { return v != 0 ? v : d; };
  GroupConfig c = requested;
  c.ack_timeout_ms = pick(requested.ack_timeout_ms, defaults.ack_timeout_ms);
  c.max_deliveries = pick(requested.max_deliveries, defaults.max_deliveries);
  c.backoff_base_ms = pick(requested.backoff_base_ms, defaults.backoff_base_ms);
  c.backoff_cap_ms = pick(requested.backoff_cap_ms, defaults.backoff_cap_ms);
  if (c.dead_letter_topic.empty()) c.dead_letter_topic = default_dead_letter_topic(topic);
  c.key_lookahead = pick(requested.key_lookahead, defaults.key_lookahead);
  using L = GroupLimits;
  for (auto ok : {check_range("ack_timeout_ms", c.ack_timeout_ms, L::kMinAckTimeoutMs,
                              L::kMaxAckTimeoutMs, requested.ack_timeout_ms),
                  check_range("max_deliveries", c.max_deliveries, 1, L::kMaxDeliveries,
                              requested.max_deliveries),
                  check_range("backoff_base_ms", c.backoff_base_ms, L::kMinBackoffMs,
                              L::kMaxBackoffMs, requested.backoff_base_ms),
                  check_range("backoff_cap_ms", c.backoff_cap_ms, L::kMinBackoffMs,
                              L::kMaxBackoffMs, requested.backoff_cap_ms),
                  check_delays(c.backoff_delays_ms),
                  check_dead_letter_topic(topic, c.dead_letter_topic), validate_filter(c.filter)}) {
    if (!ok) return tl::unexpected(ok.error());
  }
  if (auto ok = validate_annotation(c.annotation); !ok) return tl::unexpected(ok.error());
  if (c.ordering != Ordering::none && c.ordering != Ordering::key) {
    return fail(Errc::invalid_request, "ordering must be none or key");
  }
  if (auto ok = check_range("key_lookahead", c.key_lookahead, 1, L::kMaxKeyLookahead,
                            requested.key_lookahead);
      !ok) {
    return tl::unexpected(ok.error());
  }
  if (c.backoff_base_ms > c.backoff_cap_ms) {
    return fail(Errc::invalid_request,
                "backoff_base_ms (" + std::to_string(c.backoff_base_ms) +
                    (requested.backoff_base_ms == 0 ? ", the server default" : "") +
                    ") must not exceed backoff_cap_ms (" + std::to_string(c.backoff_cap_ms) +
                    (requested.backoff_cap_ms == 0 ? ", the server default" : "") + ")");
  }
  return c;
}

}  // namespace loft::broker
