#include "router.hpp"

#include <algorithm>

namespace loft::natsport {

Router::Router() : random_(std::random_device{}()) {}

nats::Result<SubscriberHandle> Router::subscribe(Subscriber& session, std::string_view sid,
                                                 std::string_view subject, std::string_view queue) {
  const auto handle = SubscriberHandle{next_handle_};
  if (auto inserted = index_.insert(subject, queue, handle); !inserted) {
    return tl::unexpected(inserted.error());
  }
  ++next_handle_;
  Subscription sub{&session, std::string(sid), std::string(subject), std::string(queue)};
  for (std::size_t begin = 0; begin <= subject.size();) {
    const std::size_t end = std::min(subject.find('.', begin), subject.size());
    const auto token = subject.substr(begin, end - begin);
    sub.wildcard = sub.wildcard || token == "*" || token == ">";
    begin = end + 1;
  }
  subscriptions_.emplace(static_cast<std::uint64_t>(handle), std::move(sub));
  if (on_interest_change) on_interest_change(subject);
  return handle;
}

void Router::unsubscribe(SubscriberHandle handle) {
  const auto it = subscriptions_.find(static_cast<std::uint64_t>(handle));
  if (it == subscriptions_.end()) return;
  index_.remove(it->second.subject, it->second.queue, handle);
  const std::string subject = std::move(it->second.subject);
  subscriptions_.erase(it);
  if (on_interest_change) on_interest_change(subject);
}

bool Router::has_interest(std::string_view subject) const {
  if (!nats::is_valid_publish_subject(subject)) return false;
  nats::MatchResult match;
  index_.match(subject, match);
  return !match.plain.empty() || !match.queues.empty();
}

Subscription* Router::find(SubscriberHandle handle) {
  const auto it = subscriptions_.find(static_cast<std::uint64_t>(handle));
  return it == subscriptions_.end() ? nullptr : &it->second;
}

bool Router::deliver_to(SubscriberHandle handle, const Outbound& message) {
  Subscription* sub = find(handle);
  if (sub == nullptr || (sub->max != 0 && sub->delivered >= sub->max)) return false;
  if (!sub->session->deliver(*sub, message)) return false;
  ++sub->delivered;
  if (sub->max != 0 && sub->delivered >= sub->max) finished_.push_back(handle);
  return true;
}

std::size_t Router::publish(const Subscriber* publisher, bool echo, const Outbound& message) {
  return route(message.subject, publisher, echo, message);
}

std::size_t Router::publish_to(std::string_view to, const Outbound& message) {
  return route(to, nullptr, true, message);
}

std::size_t Router::route(std::string_view to, const Subscriber* publisher, bool echo,
                          const Outbound& message) {
  index_.match(to, match_);
  finished_.clear();
  const auto excluded = [&](SubscriberHandle h) {
    if (echo) return false;
    const Subscription* sub = find(h);
    return sub != nullptr && sub->session == publisher;
  };
  std::size_t reached = 0;
  for (const auto handle : match_.plain) {
    if (!excluded(handle) && deliver_to(handle, message)) ++reached;
  }
  for (const auto& group : match_.queues) {
    candidates_.clear();
    for (const auto h : group.members) {
      if (!excluded(h)) candidates_.push_back(h);
    }
    // A random member first; one that cannot take it (closing, slow) passes it on.
    while (!candidates_.empty()) {
      std::uniform_int_distribution<std::size_t> pick(0, candidates_.size() - 1);
      const std::size_t i = pick(random_);
      if (deliver_to(candidates_[i], message)) {
        ++reached;
        break;
      }
      candidates_[i] = candidates_.back();
      candidates_.pop_back();
    }
  }
  finish();
  return reached;
}

bool Router::send_to(SubscriberHandle handle, const Outbound& message) {
  finished_.clear();
  const bool taken = deliver_to(handle, message);
  finish();
  return taken;
}

void Router::finish() {
  for (const auto handle : finished_) {
    if (Subscription* sub = find(handle)) sub->session->on_subscription_finished(*sub);
    unsubscribe(handle);
  }
  finished_.clear();
}

}  // namespace loft::natsport
