#include "loft/nats/subject.hpp"

#include <algorithm>
#include <utility>

#include "loft/common/subject.hpp"

namespace loft::nats {
namespace {

bool is_whitespace(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

using Tokens = loft::SubjectTokens;

}  // namespace

// The subject rules live in loft/common/subject.hpp (the broker filters groups with them too);
// this module's API forwards to them.
bool is_valid_publish_subject(std::string_view subject) noexcept {
  return loft::is_valid_publish_subject(subject);
}

bool is_valid_subscription_subject(std::string_view subject) noexcept {
  return loft::is_valid_filter_subject(subject);
}

bool is_valid_queue_group(std::string_view queue) noexcept {
  return !queue.empty() && std::none_of(queue.begin(), queue.end(), is_whitespace);
}

bool subject_matches(std::string_view pattern, std::string_view subject) noexcept {
  return loft::subject_matches(pattern, subject);
}

struct SubscriptionIndex::Node {
  std::map<std::string, std::unique_ptr<Node>, std::less<>> literal;
  std::unique_ptr<Node> star;  // the token "*"
  std::unique_ptr<Node> full;  // the token ">": subscriptions only, no children
  std::vector<SubscriberHandle> plain;
  std::map<std::string, std::vector<SubscriberHandle>, std::less<>> queues;

  bool empty() const noexcept {
    return literal.empty() && !star && !full && plain.empty() && queues.empty();
  }
};

namespace {

using Node = SubscriptionIndex::Node;

void collect(const Node& node, MatchResult& out) {
  out.plain.insert(out.plain.end(), node.plain.begin(), node.plain.end());
  for (const auto& entry : node.queues) {
    const std::string& group = entry.first;
    auto it = std::find_if(out.queues.begin(), out.queues.end(),
                           [&group](const QueueMatch& q) { return q.group == group; });
    if (it == out.queues.end()) {
      out.queues.push_back(QueueMatch{group, {}});
      it = std::prev(out.queues.end());
    }
    it->members.insert(it->members.end(), entry.second.begin(), entry.second.end());
  }
}

// `tokens` holds what is left of the subject below `node`.
void visit(const Node& node, Tokens tokens, MatchResult& out) {
  if (tokens.done) {
    collect(node, out);
    return;
  }
  if (node.full) collect(*node.full, out);  // '>' takes one or more tokens: there is one
  const std::string_view token = tokens.next();
  if (const auto it = node.literal.find(token); it != node.literal.end()) {
    visit(*it->second, tokens, out);
  }
  if (node.star) visit(*node.star, tokens, out);
}

// The child for `token`, created when `create`; nullptr when absent.
std::unique_ptr<Node>* child(Node& node, std::string_view token, bool create) {
  if (token == "*") return node.star || create ? &node.star : nullptr;
  if (token == ">") return node.full || create ? &node.full : nullptr;
  auto it = node.literal.find(token);
  if (it == node.literal.end()) {
    if (!create) return nullptr;
    it = node.literal.emplace(std::string(token), nullptr).first;
  }
  return &it->second;
}

}  // namespace

SubscriptionIndex::SubscriptionIndex() : root_(std::make_unique<Node>()) {}
SubscriptionIndex::~SubscriptionIndex() = default;
SubscriptionIndex::SubscriptionIndex(SubscriptionIndex&&) noexcept = default;
SubscriptionIndex& SubscriptionIndex::operator=(SubscriptionIndex&&) noexcept = default;

Result<> SubscriptionIndex::insert(std::string_view subject, std::string_view queue,
                                   SubscriberHandle handle) {
  if (!is_valid_subscription_subject(subject)) {
    return fail(ErrorCode::invalid_subject, "invalid subscription subject");
  }
  if (!queue.empty() && !is_valid_queue_group(queue)) {
    return fail(ErrorCode::invalid_subject, "invalid queue group");
  }
  Node* node = root_.get();
  Tokens tokens{subject};
  while (!tokens.done) {
    auto* next = child(*node, tokens.next(), true);
    if (!*next) *next = std::make_unique<Node>();
    node = next->get();
  }
  if (queue.empty()) {
    node->plain.push_back(handle);
  } else {
    auto it = node->queues.find(queue);
    if (it == node->queues.end()) it = node->queues.emplace(std::string(queue), 0).first;
    it->second.push_back(handle);
  }
  ++size_;
  return {};
}

bool SubscriptionIndex::remove(std::string_view subject, std::string_view queue,
                               SubscriberHandle handle) {
  if (!is_valid_subscription_subject(subject)) return false;
  struct Step {
    Node* parent;
    std::string_view token;
  };
  std::vector<Step> path;
  Node* node = root_.get();
  Tokens tokens{subject};
  while (!tokens.done) {
    const std::string_view token = tokens.next();
    auto* next = child(*node, token, false);
    if (next == nullptr || !*next) return false;
    path.push_back(Step{node, token});
    node = next->get();
  }
  const auto take = [handle](std::vector<SubscriberHandle>& v) {
    const auto it = std::find(v.begin(), v.end(), handle);
    if (it == v.end()) return false;
    v.erase(it);
    return true;
  };
  if (queue.empty()) {
    if (!take(node->plain)) return false;
  } else {
    const auto it = node->queues.find(queue);
    if (it == node->queues.end() || !take(it->second)) return false;
    if (it->second.empty()) node->queues.erase(it);
  }
  --size_;
  // Prune the nodes left empty, deepest first.
  for (auto step = path.rbegin(); step != path.rend(); ++step) {
    auto* link = child(*step->parent, step->token, false);
    if (!(*link)->empty()) break;
    if (step->token == "*" || step->token == ">") {
      link->reset();
    } else {
      step->parent->literal.erase(step->parent->literal.find(step->token));
    }
  }
  return true;
}

void SubscriptionIndex::match(std::string_view subject, MatchResult& out) const {
  out.clear();
  if (subject.empty()) return;
  visit(*root_, Tokens{subject}, out);
}

MatchResult SubscriptionIndex::match(std::string_view subject) const {
  MatchResult out;
  match(subject, out);
  return out;
}

}  // namespace loft::nats
