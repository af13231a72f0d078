#pragma once
// NATS subjects: tokens separated by '.', none empty, no whitespace. In a subscription (and a
// consumer's filter) the token "*" matches any one token and ">" (last token only) one or
// more tokens; a '*' or '>' inside a longer token is an ordinary character, as in nats-server.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loft/nats/error.hpp"

namespace loft::nats {

// A subject one may publish to: valid and without wildcard tokens.
bool is_valid_publish_subject(std::string_view subject) noexcept;
// A subject one may subscribe to: valid, '>' only as the last token.
bool is_valid_subscription_subject(std::string_view subject) noexcept;
// A queue group name: non-empty, no whitespace.
bool is_valid_queue_group(std::string_view queue) noexcept;
// Whether `pattern` (a subscription subject) matches `subject` (a publish subject).
// REQUIRES: both valid.
bool subject_matches(std::string_view pattern, std::string_view subject) noexcept;

// An opaque subscriber: the front end maps it to (connection, sid).
enum class SubscriberHandle : std::uint64_t {};

struct QueueMatch {
  std::string_view group;                 // valid while the index holds a member of it
  std::vector<SubscriberHandle> members;  // the caller picks one
};
struct MatchResult {
  std::vector<SubscriberHandle> plain;  // every one receives the message
  std::vector<QueueMatch> queues;       // one member of each receives it
  void clear() noexcept {
    plain.clear();
    queues.clear();
  }
};

// Subscriptions by subject, for routing a published subject to its subscribers: a tree with
// one level per token and, at each level, the literal tokens, '*' and '>' as children, so a
// match visits only the branches that can match. A queue group is merged by name across
// subjects: a message reaches one member of group "q" even when several of its members'
// subjects match. Subscribing the same handle twice makes two subscriptions (two deliveries).
// Not thread-safe: owned by one strand.
class SubscriptionIndex {
 public:
  SubscriptionIndex();
  ~SubscriptionIndex();
  SubscriptionIndex(SubscriptionIndex&&) noexcept;
  SubscriptionIndex& operator=(SubscriptionIndex&&) noexcept;

  // Errors: invalid_subject (an invalid subscription subject, or queue group when non-empty).
  Result<> insert(std::string_view subject, std::string_view queue, SubscriberHandle handle);
  // Removes one subscription inserted with these arguments; false when there is none.
  bool remove(std::string_view subject, std::string_view queue, SubscriberHandle handle);

  // Clears `out`, then fills it (reusing its capacity). REQUIRES: a valid publish subject.
  void match(std::string_view subject, MatchResult& out) const;
  MatchResult match(std::string_view subject) const;

  std::size_t size() const noexcept { return size_; }

  struct Node;  // a level of the tree (defined in subject.cpp)

 private:
  std::unique_ptr<Node> root_;
  std::size_t size_ = 0;
};

}  // namespace loft::nats
