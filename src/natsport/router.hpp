#pragma once
// Core NATS routing (module-private): every subscription of every NATS connection of loftd, in
// one nats::SubscriptionIndex, and the delivery of a published message to the subscriptions
// it matches at that moment. Nothing is stored: a message no one subscribes to is gone (streams
// come with JetStream, docs/nats.md).
//
// Io thread only (like the sessions it calls), so no locks. A Session removes its
// subscriptions before it is destroyed, so a Subscription's subscriber pointer is always alive.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loft/nats/error.hpp"
#include "loft/nats/subject.hpp"

namespace loft::natsport {

struct Subscription;
struct Outbound;

// What the Router hands messages to: a Session (or a test's fake).
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // False when it does not take the message (closing, or it just became a slow consumer).
  virtual bool deliver(const Subscription& sub, const Outbound& message) = 0;
  // `sub` reached its UNSUB max and is about to be removed.
  virtual void on_subscription_finished(const Subscription& sub) = 0;
};

struct Subscription {
  Subscriber* session = nullptr;
  std::string sid;
  std::string subject;
  std::string queue;      // empty: none
  bool wildcard = false;  // the subject has a `*` or `>` token
  std::uint64_t max = 0;  // UNSUB's max_msgs; 0: no limit
  std::uint64_t delivered = 0;
};

// A published message: views into the publisher's read buffer, valid during Router::publish.
struct Outbound {
  std::string_view subject;
  std::string_view reply;    // empty: none
  std::string_view headers;  // a whole `NATS/1.0...\r\n\r\n` block (HPUB), empty for PUB
  std::string_view payload;
};

using nats::SubscriberHandle;

class Router {
 public:
  Router();

  // Errors: invalid_subject (the subject or the queue group).
  nats::Result<SubscriberHandle> subscribe(Subscriber& session, std::string_view sid,
                                           std::string_view subject, std::string_view queue);
  void unsubscribe(SubscriberHandle handle);
  Subscription* find(SubscriberHandle handle);

  // Hands `message` to every plain subscription it matches and to one member of each queue
  // group (chosen at random among the members that take it), skipping the publisher's own
  // subscriptions when `echo` is false. A subscription that reaches its max is removed.
  // Returns how many subscriptions took the message.
  std::size_t publish(const Subscriber* publisher, bool echo, const Outbound& message);
  // As publish() (echo on), to the subscriptions that match `to`, while the message keeps its
  // own subject: a JetStream message sent to a pull request's inbox carries its stream
  // subject, as from nats-server.
  std::size_t publish_to(std::string_view to, const Outbound& message);
  // Hands `message` to one subscription (its max counts); false when it did not take it.
  bool send_to(SubscriberHandle handle, const Outbound& message);

  std::size_t size() const noexcept { return subscriptions_.size(); }

  // Whether a message published on `subject` would reach a subscription now (the JetStream
  // push consumers' interest in their deliver subjects).
  bool has_interest(std::string_view subject) const;
  // Called after a subscription was added or removed, with its subject (JetStream push
  // consumers watch their deliver subjects). It runs inside Router calls, publish() included:
  // it must not call back into the Router (post the work instead).
  std::function<void(std::string_view subject)> on_interest_change;

 private:
  bool deliver_to(SubscriberHandle handle, const Outbound& message);
  std::size_t route(std::string_view to, const Subscriber* publisher, bool echo,
                    const Outbound& message);
  // Removes the subscriptions that reached their max during a delivery.
  void finish();

  nats::SubscriptionIndex index_;
  std::unordered_map<std::uint64_t, Subscription> subscriptions_;
  std::uint64_t next_handle_ = 1;
  std::minstd_rand random_;
  // Reused by publish(): no allocation per message once warm. publish() does not re-enter.
  nats::MatchResult match_;
  std::vector<SubscriberHandle> candidates_;
  std::vector<SubscriberHandle> finished_;
};

}  // namespace loft::natsport
