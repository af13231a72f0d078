// Push consumers (docs/nats.md, "Push consumers"): the pure flow control and heartbeats
// (PushFlow), and the methods of Consumers that push a group's messages to a deliver subject.
//
// A push consumer holds the one broker subscription of its group, as a pulled consumer does.
// Its credit is unbounded (the group's max_in_flight, max_ack_pending, bounds it) while someone
// subscribes to the deliver subject and flow control lets it push, and 0 otherwise: without
// interest nothing is delivered, and what a gone subscriber did not ack comes back after
// ack_wait to whoever subscribes next.

#include <algorithm>
#include <boost/asio/post.hpp>
#include <vector>

#include "js_ack.hpp"
#include "js_consumers.hpp"
#include "loft/broker/broker.hpp"
#include "loft/nats/headers.hpp"
#include "log.hpp"
#include "router.hpp"

namespace loft::natsport::js {

// ---- PushFlow --------------------------------------------------------------------------------

PushFlow::PushFlow(bool flow_control, Clock::duration heartbeat, Clock::time_point now,
                   std::uint64_t rate_limit_bps)
    : flow_control_(flow_control),
      heartbeat_(heartbeat),
      last_push_(now),
      rate_bps_(rate_limit_bps),
      tokens_(static_cast<double>(kRateBurst)),
      refilled_(now) {}

double PushFlow::tokens_at(Clock::time_point now) const {
  if (now <= refilled_) return tokens_;
  const double seconds = std::chrono::duration<double>(now - refilled_).count();
  const double rate = static_cast<double>(rate_bps_) / 8;
  return std::min(tokens_ + seconds * rate, static_cast<double>(kRateBurst));
}

std::optional<PushFlow::Clock::time_point> PushFlow::paced_until(Clock::time_point now) const {
  if (rate_bps_ == 0) return std::nullopt;
  const double tokens = tokens_at(now);
  if (tokens >= 0) return std::nullopt;
  const double rate = static_cast<double>(rate_bps_) / 8;
  const auto wait =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(-tokens / rate));
  return now + std::max(wait, Clock::duration{1});
}

bool PushFlow::may_push() const { return !flow_control_ || pending_ <= window_; }

bool PushFlow::pushed(std::uint64_t bytes, Clock::time_point now) {
  last_push_ = now;
  if (rate_bps_ != 0) {
    tokens_ = tokens_at(now) - static_cast<double>(bytes);
    refilled_ = std::max(refilled_, now);
  }
  if (!flow_control_) return false;
  pending_ += bytes;
  if (request_.empty()) return pending_ > window_ / 2;
  // Pushed past a whole window beyond the outstanding request: its answer takes this off too.
  if (pending_ - request_size_ >= window_) request_size_ += bytes;
  return false;
}

void PushFlow::request_sent(std::string reply_subject) {
  request_ = std::move(reply_subject);
  request_size_ = pending_;
}

bool PushFlow::answered(std::string_view subject) {
  if (request_.empty() || subject != request_) return false;
  window_ = std::min(window_ * 2, kWindowMax);
  pending_ -= std::min(pending_, request_size_);
  request_.clear();
  request_size_ = 0;
  return true;
}

std::optional<PushFlow::Clock::time_point> PushFlow::next_heartbeat() const {
  if (heartbeat_.count() <= 0) return std::nullopt;  // none, or negative as nats-server allows
  return last_push_ + heartbeat_;
}

void PushFlow::idle_from(Clock::time_point now) { last_push_ = now; }

std::string idle_heartbeat_headers(std::uint64_t last_consumer_seq, std::uint64_t last_stream_seq,
                                   std::string_view stalled) {
  std::vector<Header> h{{"Nats-Last-Consumer", std::to_string(last_consumer_seq)},
                        {"Nats-Last-Stream", std::to_string(last_stream_seq)}};
  if (!stalled.empty()) h.push_back({"Nats-Consumer-Stalled", std::string(stalled)});
  std::string block;
  nats::append_headers(block, nats::kStatusIdleHeartbeat, "Idle Heartbeat",
                       std::span<const Header>(h));
  return block;
}

std::string flow_control_headers() {
  std::string block;
  nats::append_headers(block, nats::kStatusIdleHeartbeat, "FlowControl Request",
                       std::span<const Header>{});
  return block;
}

// ---- Consumers: push ---------------------------------------------------------------------------

namespace {

constexpr std::string_view kFlowControlPrefix = "$JS.FC.";

std::string flow_control_subject(std::string_view stream, std::string_view consumer,
                                 std::uint64_t n) {
  std::string s(kFlowControlPrefix);
  s += stream;
  s += '.';
  s += consumer;
  s += '.';
  s += std::to_string(n);
  return s;
}

}  // namespace

void Consumers::start_push(Consumer& c) {
  if (!c.config.push()) {
    if (c.push) {
      push_unbound(c);
      c.push.reset();
    }
    return;
  }
  const auto heartbeat = std::chrono::duration_cast<Clock::duration>(
      std::chrono::nanoseconds(c.config.idle_heartbeat_ns));
  if (!c.push || c.push->deliver_subject != c.config.deliver_subject ||
      c.push->flow.flow_control() != c.config.flow_control ||
      c.push->flow.heartbeat() != heartbeat ||
      c.push->flow.rate_limit_bps() != c.config.rate_limit_bps) {
    if (c.push) push_unbound(c);
    c.push.emplace(c.config.flow_control, heartbeat, Clock::now(), c.config.rate_limit_bps);
    c.push->deliver_subject = c.config.deliver_subject;
  }
  if (!fc_subscription_) {
    auto h = api_.router().subscribe(fc_listener_, "", std::string(kFlowControlPrefix) + ">", "");
    if (h) fc_subscription_ = *h;
  }
  check_interest(c);
}

void Consumers::restore_push() {
  for (const auto& topic : api_.broker().list_topics()) {
    auto groups = groups_.list_groups(topic.name);
    if (!groups) continue;
    for (const auto& g : *groups) {
      // A consumer made through this port keeps its config in the group's annotation; one
      // made by loft's own tools is never a push consumer. An ephemeral one comes back too, so
      // that its inactive_threshold runs from now.
      const auto restored = restore_consumer(g.config.annotation);
      if (restored && (restored->config.push() || !restored->config.durable())) {
        find(topic.name, g.group);
      }
    }
  }
  arm();
}

void Consumers::on_interest_change() {
  if (interest_check_posted_ || stopped_) return;
  interest_check_posted_ = true;
  boost::asio::post(timer_.get_executor(), [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    interest_check_posted_ = false;
    std::vector<Key> push;
    for (const auto& [key, c] : consumers_) {
      if (c.push) push.push_back(key);
    }
    for (const auto& key : push) {
      if (auto it = consumers_.find(key); it != consumers_.end() && it->second.push) {
        check_interest(it->second);
      }
    }
  });
}

void Consumers::check_interest(Consumer& c) {
  auto& p = *c.push;
  const bool bound = api_.router().has_interest(p.deliver_subject);
  const auto now = Clock::now();
  if (bound == p.bound) {
    if (bound && !c.subscription) subscribe(c);
    return;
  }
  c.last_active = now;
  if (!bound) {
    nats_log()->debug("push consumer unbound stream={} consumer={}", c.stream, c.name);
    push_unbound(c);
    arm();  // an ephemeral one's inactive_threshold runs from now
    return;
  }
  nats_log()->debug("push consumer bound stream={} consumer={} deliver_subject={}", c.stream,
                    c.name, p.deliver_subject);
  p.bound = true;
  p.flow.idle_from(now);
  if (c.subscription) {
    push_flush(c);  // what the group held for want of interest comes now
  } else {
    subscribe(c);  // serves once subscribed
  }
  arm();
}

std::uint32_t Consumers::push_credit(const Consumer& c) const {
  const auto& p = *c.push;
  const bool open = p.bound && p.queued.empty() && p.flow.may_push();
  if (!open) return 0;
  // Paced by a rate limit: one message at a time, when the bucket lets it go, so that no
  // message waits here while its ack_wait runs (the timer asks for the next one, push_paced).
  if (p.flow.rate_limit_bps() != 0) return p.flow.paced_until(Clock::now()) ? 0 : 1;
  return std::numeric_limits<std::uint32_t>::max();
}

void Consumers::push_deliver(Consumer& c, const broker::DeliveryBatch& batch) {
  auto& p = *c.push;
  std::uint64_t end = 0;
  if (auto t = api_.broker().describe_topic(batch.topic)) end = t->next_offset.value;
  for (const auto& d : batch.messages) {
    const auto& m = *d.message;
    AckReply ack;
    ack.stream = c.stream;
    ack.consumer = c.name;
    ack.delivered = d.attempt;
    ack.stream_seq = m.offset.value + 1;
    ack.timestamp_ns = m.timestamp_ms * 1'000'000;
    ack.pending = end > m.offset.value + 1 ? end - m.offset.value - 1 : 0;
    PushState::Queued q;
    q.offset = m.offset.value;
    q.stream_seq = ack.stream_seq;
    q.subject = std::string(m.subject.empty() ? batch.topic : m.subject);
    q.ack = std::move(ack);
    if (!m.headers.empty()) nats::append_headers(q.headers, 0, "", m.headers);
    q.payload = std::string(m.payload);
    p.queued.push_back(std::move(q));
  }
  // Pushed at once as far as flow control lets it (no call back into the group from here).
  const auto now = Clock::now();
  const auto seq_before = c.consumer_seq;
  std::vector<OffsetRun> sent;  // ack_policy none: done once pushed (settle_sent)
  while (p.bound && !p.queued.empty() && p.flow.may_push() && !p.flow.paced_until(now)) {
    auto& q = p.queued.front();
    q.ack.consumer_seq = c.consumer_seq + 1;
    const auto reply = ack_reply_subject(q.ack);
    const auto reached = api_.router().publish_to(p.deliver_subject,
                                                  Outbound{q.subject, reply, q.headers, q.payload});
    if (reached == 0 && !api_.router().has_interest(p.deliver_subject)) {
      // The last subscriber went before the Router told us: the rest goes back to the group.
      push_unbound(c);
      break;
    }
    // reached 0 with interest: the subscriber dropped it (a slow consumer); as with NATS, it
    // comes back after ack_wait.
    ++c.consumer_seq;
    c.delivered_stream_seq = std::max(c.delivered_stream_seq, q.stream_seq);
    if (c.config.ack_none()) append_offset(sent, q.offset);
    const std::uint64_t size = q.headers.size() + q.payload.size();
    p.queued.pop_front();
    if (p.flow.pushed(size, now)) {
      auto reply = flow_control_subject(c.stream, c.name, ++p.requests);
      const auto block = flow_control_headers();
      api_.router().publish_to(p.deliver_subject,
                               Outbound{p.deliver_subject, reply, block, std::string_view{}});
      p.flow.request_sent(std::move(reply));
    }
  }
  c.last_active = now;
  if (c.consumer_seq != seq_before) keep_sequence(c);
  if (!sent.empty() && c.subscription) settle_sent(*c.subscription, std::move(sent));
}

void Consumers::push_flush(Consumer& c) {
  const Key key{c.stream, c.name};
  if (!c.push->queued.empty()) {
    // Pushes what waited, through the same path as a delivery.
    broker::DeliveryBatch none{};
    none.subscription = c.subscription.value_or(0);
    none.topic = c.stream;
    none.group = c.name;
    push_deliver(c, none);
  }
  const auto it = consumers_.find(key);
  if (it == consumers_.end() || !it->second.push) return;
  if (push_credit(it->second) > 0 && it->second.subscription) {
    groups_.on_ready(this, group_now());
    if (groups_changed_) groups_changed_();
  }
}

void Consumers::push_unbound(Consumer& c) {
  auto& p = *c.push;
  const auto now = Clock::now();
  p.bound = false;
  // Flow control starts afresh with the next subscriber.
  p.flow = PushFlow(p.flow.flow_control(), p.flow.heartbeat(), now, p.flow.rate_limit_bps());
  c.last_active = now;
  if (p.queued.empty()) return;
  std::vector<OffsetRun> back;
  back.reserve(p.queued.size());
  for (const auto& q : p.queued) back.push_back({q.offset, 1});
  p.queued.clear();
  if (!c.subscription) return;
  // Delivered by the group, pushed to no one: back at once (their attempt counts).
  broker::SettleRequest req{*c.subscription, SettleAction::nack, false, 0, std::move(back)};
  groups_.settle(req, this, group_now(), [](const Result<broker::Settled>&) {});
  if (groups_changed_) groups_changed_();
}

void Consumers::push_timer(Consumer& c, Clock::time_point now) {
  auto& p = *c.push;
  const auto due = p.flow.next_heartbeat();
  if (!due || *due > now) return;
  p.flow.idle_from(now);
  if (!p.bound) return;
  const auto block =
      idle_heartbeat_headers(c.consumer_seq, c.delivered_stream_seq, p.flow.outstanding());
  api_.router().publish_to(p.deliver_subject, Outbound{p.deliver_subject, std::string_view{}, block,
                                                       std::string_view{}});
}

bool Consumers::push_paced(const Consumer& c, Clock::time_point now) const {
  return c.push && c.push->bound && c.push->flow.rate_limit_bps() != 0 &&
         c.push->flow.paced_until(now).has_value();
}

void Consumers::on_flow_control(std::string_view subject) {
  for (auto& [key, c] : consumers_) {
    if (!c.push || !c.push->flow.answered(subject)) continue;
    c.last_active = Clock::now();
    push_flush(c);
    return;
  }
}

bool Consumers::FlowControlListener::deliver(const Subscription& sub, const Outbound& message) {
  (void)sub;
  // Inside a Router call: handled after it.
  boost::asio::post(owner_.timer_.get_executor(),
                    [&owner = owner_, alive = std::weak_ptr<bool>(owner_.alive_),
                     subject = std::string(message.subject)] {
                      if (!alive.expired()) owner.on_flow_control(subject);
                    });
  return true;
}

}  // namespace loft::natsport::js
