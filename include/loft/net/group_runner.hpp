#pragma once
// Runs the consumer groups (broker::Groups, which is not thread-safe and knows no clock or
// executor) on loftd's io thread: it gives Groups the function that brings completions back to
// that thread, wakes the groups at their next deadline with one steady_timer, and hands them the
// broker's topic events.
//
// Lifecycle: loftd's main makes the runner, then the Groups (with poster()), then attach()es
// them. Every front end that calls into the groups calls arm() afterwards. stop() cancels the
// timer; the owner stops the broker (no more topic events) before it destroys the io_context.
// Thread: the io thread, except the functions poster() and the topic listener return, which
// may be called from any thread (they post).

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"

namespace loft::net {

class GroupRunner {
 public:
  explicit GroupRunner(boost::asio::io_context& io);
  GroupRunner(const GroupRunner&) = delete;
  GroupRunner& operator=(const GroupRunner&) = delete;

  // What Groups needs to run a completion on the io thread (each may change a deadline, so the
  // timer is re-armed after it).
  broker::Groups::Post poster();
  // Starts driving `groups`: loads the groups `broker` holds, subscribes to its topic events,
  // arms the timer. Call once, before any traffic.
  void attach(broker::Broker& broker, broker::Groups& groups);
  // Re-arms the timer at the groups' next deadline; call after every call into the groups.
  void arm();
  // Cancels the timer; it is not armed again (the groups' last writes still complete).
  void stop();

  broker::Groups& groups() { return *groups_; }
  const broker::Groups& groups() const { return *groups_; }
  // The groups' clock: steady_clock, at the groups' resolution.
  static delivery::TimePoint now();

 private:
  boost::asio::io_context& io_;
  broker::Groups* groups_ = nullptr;
  boost::asio::steady_timer timer_;
  std::optional<delivery::TimePoint> timer_at_;
  bool stopped_ = false;
};

}  // namespace loft::net
