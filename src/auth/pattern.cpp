// Topic patterns and permission lists.

#include <algorithm>
#include <string>

#include "loft/auth/auth.hpp"

namespace loft::auth {
namespace {

// The longest topic name (docs/protocol.md; the broker checks names the same way).
constexpr std::size_t kMaxTopicName = 249;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool any_matches(const std::vector<TopicPattern>& patterns, std::string_view topic) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const TopicPattern& p) { return p.matches(topic); });
}

const std::vector<TopicPattern>& list_for(const Permissions& p, Operation op) {
  switch (op) {
    case Operation::publish:
      return p.publish;
    case Operation::subscribe:
      return p.subscribe;
    case Operation::admin:
      return p.admin;
  }
  return p.admin;  // not reached: every enumerator is handled above
}

}  // namespace

std::string_view to_string(Operation op) {
  switch (op) {
    case Operation::publish:
      return "publish";
    case Operation::subscribe:
      return "subscribe";
    case Operation::admin:
      return "admin";
  }
  return "unknown";
}

Result<TopicPattern> TopicPattern::parse(std::string_view text) {
  if (text.empty()) return fail(Errc::invalid_request, "a topic pattern cannot be empty");
  if (text.size() > kMaxTopicName) {
    return fail(Errc::invalid_request, "topic pattern is " + std::to_string(text.size()) +
                                           " bytes long; at most " + std::to_string(kMaxTopicName) +
                                           " (a topic name's limit)");
  }
  for (const char c : text) {
    if (c != '*' && !is_name_char(c)) {
      return fail(Errc::invalid_request,
                  "topic pattern '" + std::string(text) +
                      "' may only contain letters, digits, '.', '_', '-' and the wildcard '*'");
    }
  }
  TopicPattern p;
  p.text_ = std::string(text);
  return p;
}

// The pattern is literal pieces separated by stars. With `*` the only wildcard, matching the
// pieces greedily leftmost is exact: the first piece is a prefix, the last a suffix, and each
// piece between takes its first occurrence after the previous one (a later occurrence would
// only leave less room for the rest). No position is ever revisited, so "*a*a*a*b" against a
// long run of a's costs pattern x topic steps at most, not an exponential search.
bool TopicPattern::matches(std::string_view topic) const {
  const std::string_view pattern = text_;
  const auto first_star = pattern.find('*');
  if (first_star == std::string_view::npos) return pattern == topic;
  const auto last_star = pattern.rfind('*');
  const std::string_view head = pattern.substr(0, first_star);
  const std::string_view tail = pattern.substr(last_star + 1);
  if (topic.size() < head.size() + tail.size()) return false;
  if (topic.substr(0, head.size()) != head) return false;
  if (topic.substr(topic.size() - tail.size()) != tail) return false;
  // The middle pieces must fit, in order, between head and tail.
  std::string_view rest = topic.substr(head.size(), topic.size() - head.size() - tail.size());
  std::size_t at = first_star + 1;
  while (at < last_star) {
    const auto next_star = pattern.find('*', at);
    const std::string_view piece = pattern.substr(at, next_star - at);
    at = next_star + 1;
    if (piece.empty()) continue;  // "**"
    const auto found = rest.find(piece);
    if (found == std::string_view::npos) return false;
    rest.remove_prefix(found + piece.size());
  }
  return true;
}

bool Permissions::allows(Operation op, std::string_view topic) const {
  if (any_matches(deny, topic)) return false;
  return any_matches(list_for(*this, op), topic);
}

bool Permissions::may_see(std::string_view topic) const {
  if (any_matches(deny, topic)) return false;
  return any_matches(publish, topic) || any_matches(subscribe, topic) || any_matches(admin, topic);
}

bool Permissions::allows_all(Operation op) const {
  if (!deny.empty()) return false;
  const auto& list = list_for(*this, op);
  return std::any_of(list.begin(), list.end(), [](const TopicPattern& p) {
    return std::all_of(p.text().begin(), p.text().end(), [](char c) { return c == '*'; });
  });
}

}  // namespace loft::auth
