#pragma once
// The JSON shapes of topics and groups, shared by `loft ... --json` and loftd's HTTP /v1
// endpoints so both print the same fields under the same names. Depends on common and
// Boost.JSON only (no broker, no Asio), so the command-line tool can link it alone.

#include <boost/json/object.hpp>
#include <string_view>

#include "loft/common/group.hpp"
#include "loft/common/topic.hpp"

namespace loft::http {

// "at_max_in_flight", "waiting_for_backoff", "slow_socket"; "" for none.
std::string_view stall_text(StallReason reason);

// Keys: name, first_offset, next_offset, messages, bytes, created_at_ms, dedup_window_ms,
// dedup_conflict ("duplicate" or "error"), max_age_ms, max_bytes, max_messages, retention,
// scheduled (delayed messages waiting for their time), subjects (when set).
boost::json::object topic_json(const TopicInfo& topic);

// Keys: topic, group, ack_floor, end, lag, in_flight, scheduled, dead_lettered, redelivered,
// ack_timeout_ms, max_deliveries, backoff_base_ms, backoff_cap_ms, backoff_delays_ms,
// dead_letter_topic, consumers (subscription, client, max_in_flight, in_flight[, stalled]).
boost::json::object group_json(const GroupInfo& group);

}  // namespace loft::http
