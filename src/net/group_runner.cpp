#include "loft/net/group_runner.hpp"

#include <boost/asio/post.hpp>
#include <chrono>
#include <type_traits>
#include <utility>

namespace loft::net {

namespace asio = boost::asio;

GroupRunner::GroupRunner(asio::io_context& io) : io_(io), timer_(io) {}

broker::Groups::Post GroupRunner::poster() {
  return [this](std::function<void()> f) {
    asio::post(io_, [this, f = std::move(f)] {
      f();
      arm();
    });
  };
}

void GroupRunner::attach(broker::Broker& broker, broker::Groups& groups) {
  groups_ = &groups;
  groups_->load();
  broker.set_topic_listener([this](std::vector<broker::TopicEvent> events) {
    asio::post(io_, [this, events = std::move(events)] {
      groups_->on_topic_events(events, now());
      arm();
    });
  });
  arm();
}

delivery::TimePoint GroupRunner::now() {
  // Due times are now + a delay, and the timer fires at them on the steady clock: a `now` cut
  // to a coarser unit would make a redelivery early by up to that unit.
  static_assert(std::is_same_v<delivery::Duration, std::chrono::steady_clock::duration>);
  return std::chrono::time_point_cast<delivery::Duration>(std::chrono::steady_clock::now());
}

void GroupRunner::arm() {
  if (groups_ == nullptr || stopped_) return;
  const auto next = groups_->next_deadline();
  if (!next) return;
  if (timer_at_ && *timer_at_ <= *next) return;  // an earlier wake-up is set
  timer_at_ = next;
  timer_.expires_at(std::chrono::steady_clock::time_point(next->time_since_epoch()));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    timer_at_.reset();
    groups_->on_timer(now());
    arm();
  });
}

void GroupRunner::stop() {
  stopped_ = true;
  timer_.cancel();
  timer_at_.reset();
}

}  // namespace loft::net
