#include "loft/http/json.hpp"

#include <boost/json/array.hpp>
#include <utility>

namespace loft::http {

namespace json = boost::json;

std::string_view stall_text(StallReason reason) {
  switch (reason) {
    case StallReason::none:
      return "";
    case StallReason::at_max_in_flight:
      return "at_max_in_flight";
    case StallReason::waiting_for_backoff:
      return "waiting_for_backoff";
    case StallReason::slow_socket:
      return "slow_socket";
    case StallReason::key_blocked:
      return "key_blocked";
  }
  return "";
}

json::object topic_json(const TopicInfo& t) {
  json::object out{
      {"name", t.name},
      {"first_offset", t.first_offset.value},
      {"next_offset", t.next_offset.value},
      {"messages", t.messages},
      {"bytes", t.bytes},
      {"created_at_ms", t.created_at_ms},
      {"dedup_window_ms", t.dedup_window_ms},
      {"dedup_conflict", t.dedup_conflict == DedupConflict::error ? "error" : "duplicate"},
      {"max_age_ms", t.max_age_ms},
      {"max_bytes", t.max_bytes},
      {"max_messages", t.max_messages},
      {"retention", retention_mode_name(t.retention_mode)},
      // Delayed messages waiting for their time (docs/semantics.md, "Delayed delivery").
      {"scheduled", t.scheduled}};
  // Only when set: the object of a topic without subjects is as it always was.
  if (!t.subjects.empty()) {
    json::array subjects;
    for (const auto& subject : t.subjects) subjects.emplace_back(subject);
    out.emplace("subjects", std::move(subjects));
  }
  return out;
}

json::object group_json(const GroupInfo& g) {
  json::array consumers;
  for (const auto& c : g.consumers) {
    json::object o{{"subscription", c.subscription},
                   {"client", c.client_name},
                   {"max_in_flight", c.max_in_flight},
                   {"in_flight", c.in_flight}};
    if (c.stalled != StallReason::none) o["stalled"] = stall_text(c.stalled);
    consumers.push_back(std::move(o));
  }
  json::array delays;
  for (const auto d : g.config.backoff_delays_ms) delays.push_back(d);
  json::object out{{"topic", g.topic},
                   {"group", g.group},
                   {"ack_floor", g.ack_floor},
                   {"end", g.end},
                   {"lag", g.lag},
                   {"in_flight", g.in_flight},
                   {"scheduled", g.scheduled},
                   {"dead_lettered", g.dead_lettered},
                   {"redelivered", g.redelivered},
                   {"skipped", g.skipped},
                   {"ack_timeout_ms", g.config.ack_timeout_ms},
                   {"max_deliveries", g.config.max_deliveries},
                   {"backoff_base_ms", g.config.backoff_base_ms},
                   {"backoff_cap_ms", g.config.backoff_cap_ms},
                   {"backoff_delays_ms", std::move(delays)},
                   {"dead_letter_topic", g.config.dead_letter_topic},
                   {"filter", g.config.filter},  // "" = every message
                   {"ordering", g.config.ordering == Ordering::key ? "key" : "none"},
                   {"consumers", std::move(consumers)}};
  // Per-key ordering: the bound, and what it holds back now (and the key that blocks).
  if (g.config.ordering == Ordering::key) {
    out.emplace("key_lookahead", g.config.key_lookahead);
    out.emplace("held_back", g.held_back);
    if (!g.blocking_key.empty()) out.emplace("blocking_key", g.blocking_key);
  }
  return out;
}

}  // namespace loft::http
