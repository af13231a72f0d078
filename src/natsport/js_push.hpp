#pragma once
// JetStream push consumers (module-private; docs/nats.md, "Push consumers"): the pure part, the
// flow control and idle heartbeats of one push consumer as nats-server 2.9 runs them. Time is
// an argument, so tests drive it by hand. The rest of push (interest, deliveries, the `$JS.FC`
// answers) is `Consumers`' (js_push.cpp).
//
// Flow control counts the bytes pushed since the last answered request. Past half the window a
// `100 FlowControl Request` goes to the deliver subject with a reply subject of its own; past
// the whole window pushing pauses until the client answers that request. Each answer doubles
// the window (2 MiB at first, at most 32 MiB) and takes off what was pushed before the request.
// Idle heartbeats: a `100 Idle Heartbeat` after `idle_heartbeat` without a push, which names the
// unanswered flow-control request (Nats-Consumer-Stalled) so that a client that missed it can
// answer it there.
// Rate limit (`rate_limit_bps`): a token bucket of bytes (the bits per second / 8) that holds at
// most kRateBurst bytes, as nats-server's limiter (whose burst is the maximum payload). A message
// may go when the bucket is not in debt; pushing it takes its size off (into debt if it is
// larger than what the bucket holds), so the next one waits until the debt is paid back.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "js_ack.hpp"

namespace loft::natsport::js {

class PushFlow {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::uint64_t kWindowStart = std::uint64_t{2} << 20;  // 2 MiB
  static constexpr std::uint64_t kWindowMax = std::uint64_t{32} << 20;   // 32 MiB
  static constexpr std::uint64_t kRateBurst = std::uint64_t{1} << 20;    // 1 MiB, max_payload

  // `heartbeat` zero or less: no heartbeats. `rate_limit_bps` zero: no rate limit.
  PushFlow(bool flow_control, Clock::duration heartbeat, Clock::time_point now,
           std::uint64_t rate_limit_bps = 0);

  // Whether a message may be pushed now (not paused by an unanswered flow-control request).
  bool may_push() const;
  // With a rate limit: when the next message may be pushed, if later than `now` (the bucket is
  // in debt); nullopt when it may go now, or without a rate limit.
  std::optional<Clock::time_point> paced_until(Clock::time_point now) const;
  // A message of `bytes` (headers and payload) was pushed at `now`. True when a flow-control
  // request must follow it: send one, then call request_sent() with its reply subject.
  bool pushed(std::uint64_t bytes, Clock::time_point now);
  void request_sent(std::string reply_subject);
  // A message on `subject` (a `$JS.FC.` subject): true if it answers the outstanding request,
  // which resumes pushing.
  bool answered(std::string_view subject);
  // The outstanding request's reply subject (empty: none).
  const std::string& outstanding() const { return request_; }

  // When the next heartbeat is due (nullopt: no heartbeats).
  std::optional<Clock::time_point> next_heartbeat() const;
  // A heartbeat was sent at `now` (or pushing restarts: the idle time counts from `now`).
  void idle_from(Clock::time_point now);

  bool flow_control() const { return flow_control_; }
  Clock::duration heartbeat() const { return heartbeat_; }
  std::uint64_t rate_limit_bps() const { return rate_bps_; }
  std::uint64_t pending_bytes() const { return pending_; }
  std::uint64_t window() const { return window_; }

 private:
  bool flow_control_;
  Clock::duration heartbeat_;
  Clock::time_point last_push_;
  std::uint64_t window_ = kWindowStart;
  std::uint64_t pending_ = 0;       // bytes pushed and not yet taken off by an answer
  std::uint64_t request_size_ = 0;  // what the outstanding request takes off when answered
  std::string request_;
  // The rate limit's bucket: bytes it holds at `refilled_` (negative: in debt).
  std::uint64_t rate_bps_ = 0;
  double tokens_ = 0;
  Clock::time_point refilled_;
  double tokens_at(Clock::time_point now) const;
};

// A push consumer's state beyond its config (Consumers keeps one per push consumer).
struct PushState {
  PushState(bool flow_control, PushFlow::Clock::duration heartbeat, PushFlow::Clock::time_point now,
            std::uint64_t rate_limit_bps)
      : flow(flow_control, heartbeat, now, rate_limit_bps) {}
  PushFlow flow;
  std::string deliver_subject;
  bool bound = false;          // someone subscribes to the deliver subject
  std::uint64_t requests = 0;  // flow-control requests sent
  // Delivered by the group but not pushed yet (pushing paused by flow control), ready to go.
  // Its consumer sequence is given when it is pushed, so that what goes back to the group
  // unpushed leaves no gap in them (ordered consumers check).
  struct Queued {
    std::uint64_t offset = 0;
    std::uint64_t stream_seq = 0;
    std::string subject;
    AckReply ack;  // consumer_seq filled in when pushed
    std::string headers;
    std::string payload;
  };
  std::deque<Queued> queued;
};

// The header block of the status messages a push consumer sends to its deliver subject.
// `stalled`: the outstanding flow-control request's subject, or empty.
std::string idle_heartbeat_headers(std::uint64_t last_consumer_seq, std::uint64_t last_stream_seq,
                                   std::string_view stalled);
std::string flow_control_headers();

}  // namespace loft::natsport::js
