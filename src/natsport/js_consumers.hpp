#pragma once
// JetStream consumers on loft groups (module-private; docs/nats.md, "Consumers"): the
// `$JS.API.CONSUMER.*` requests the API forwards here, pull requests (CONSUMER.MSG.NEXT), and
// the acks published on `$JS.ACK.>`.
//
// A consumer is a group of its stream's topic. Every consumer that has been pulled from holds
// one loft subscription to its group, made by this object (the broker::Subscriber for all of
// them) and shared by every NATS connection: its credit (Subscriber::credit) is what the
// consumer's waiting pull requests still ask for, so the group delivers exactly that, and the
// deliveries go to the waiting requests first come, first served, as MSG/HMSG on the request's
// inbox with the message's own subject and a `$JS.ACK` reply subject. Acks arriving from any
// connection settle through that subscription ("ack from anywhere", as in NATS). A
// connection that goes away takes its waiting requests with it; what it was delivered and did
// not ack comes back after ack_wait, with the next attempt number.
// A consumer with a deliver_subject is a push consumer (js_push.cpp): the same subscription,
// whose credit is open while someone subscribes to the deliver subject and flow control lets it.
//
// Io thread only (as the sessions, the router and broker::Groups). Deadlines (pull request
// expiry, idle heartbeats, ephemeral consumers' inactive_threshold) run on one steady_timer.
// Lifecycle: made by the Server with the API; stop() cancels the timer; the destructor ends the
// subscriptions (their in-flight messages go back to their groups).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <unordered_map>
#include <vector>

#include "js_api.hpp"
#include "js_consumer_config.hpp"
#include "js_push.hpp"
#include "loft/broker/groups.hpp"
#include "router.hpp"

namespace loft::natsport::js {

// A pull request's body: empty (one message), a count, or nats-server's JSON.
struct PullSpec {
  std::int64_t batch = 1;
  std::int64_t expires_ns = 0;  // 0: waits until filled (or its connection goes); < 0: 408
  bool no_wait = false;
  std::int64_t max_bytes = 0;  // 0: no bound
  std::int64_t idle_heartbeat_ns = 0;
  bool operator==(const PullSpec&) const = default;
};
// Errors: the text of the 400 status nats-server sends for a bad request.
tl::expected<PullSpec, std::string> parse_pull_request(std::string_view payload);

class Consumers final : public broker::Subscriber {
 public:
  using Clock = std::chrono::steady_clock;

  // `groups_changed` runs after every call into `groups` (loftd re-arms the groups' timer).
  Consumers(Api& api, broker::Groups& groups, std::function<void()> groups_changed,
            const boost::asio::any_io_executor& io, std::string server_name);
  ~Consumers() override;
  Consumers(const Consumers&) = delete;
  Consumers& operator=(const Consumers&) = delete;

  // Fills in the API's forwarding points (consumers, acks, consumer_count,
  // on_stream_deleted) with this object's functions.
  void attach();
  // A `$JS.API.CONSUMER.` request (Api::consumers).
  void handle(const Request& request);
  // A publish on `$JS.ACK.` (Api::acks): with users, the publisher needs subscribe on the
  // stream. A +NXT's pull request is the publisher's (request.session).
  void on_ack(const Request& request);
  std::size_t count(std::string_view stream) const;
  void on_stream_deleted(const std::string& stream);
  void stop();

  // broker::Subscriber.
  bool ready() const override { return true; }
  void deliver(const broker::DeliveryBatch& batch) override;
  std::string client_name() const override { return "nats-jetstream"; }
  std::uint32_t credit(std::uint64_t subscription) const override;

 private:
  struct Waiting {
    std::string reply;
    std::weak_ptr<void> session;
    std::int64_t batch_left = 1;
    std::int64_t bytes_left = 0;  // with max_bytes
    bool bytes_bounded = false;
    bool no_wait = false;
    std::uint64_t delivered = 0;
    std::optional<Clock::time_point> expires_at;
    Clock::duration heartbeat{};
    Clock::time_point next_heartbeat{};
    bool alive() const { return !session.expired(); }
  };
  struct Consumer {
    std::string stream;
    std::string name;
    ConsumerConfig config;
    // Made here or restored from its group's annotation; else guessed from the group's
    // settings (a group made by loft's own tools).
    bool config_known = false;
    std::int64_t created_ns = 0;
    std::optional<std::uint64_t> subscription;
    bool subscribing = false;
    // Deliveries so far: kept in the group's annotation with its progress writes (no write per
    // delivery) and restored from it (docs/nats.md, "What survives a restart").
    std::uint64_t consumer_seq = 0;
    std::uint64_t delivered_stream_seq = 0;
    std::deque<Waiting> waiting;
    Clock::time_point last_active{};
    std::optional<PushState> push;  // a push consumer's (js_push.cpp)
  };
  using Key = std::pair<std::string, std::string>;  // stream, consumer

  void create(const Request& r, std::string_view stream, std::string_view name,
              std::string_view filter, bool durable_form);
  void info(const Request& r, std::string_view stream, std::string_view name);
  void remove(const Request& r, std::string_view stream, std::string_view name);
  void names(const Request& r, std::string_view stream, bool list);
  void next(const Request& r, std::string_view stream, std::string_view name);
  // Adds a pull request to `c` and serves it.
  void pull(Consumer& c, std::string reply, std::weak_ptr<void> session, const PullSpec& spec);
  // After new demand: the group delivers what it can now; a no_wait request left unfilled ends.
  void serve(Consumer& c);
  void subscribe(Consumer& c);
  // ack_policy none: `runs` were sent, so they are done; acked once the delivery call returns.
  void settle_sent(std::uint64_t subscription, std::vector<OffsetRun> runs);

  // The consumer as loft knows it: from memory, else from its group (after a restart, or a
  // group made by loft's own tools). Null if there is no such group.
  Consumer* find(std::string_view stream, std::string_view name);
  Consumer* by_subscription(std::uint64_t subscription);
  boost::json::object info_json(const Consumer& c, const GroupInfo& g) const;
  // CONSUMER.CREATE of an existing consumer: the same config answers it, an update nats-server
  // allows is kept with its group (the annotation) and then answered.
  void update(const Request& r, Consumer& c, const GroupInfo& existing, ConsumerConfig config);
  // Advisories (docs/nats.md, "Advisories"): published to core subscribers, if any.
  void advise(const Advisory& a);
  AdvisoryHeader advisory_header();
  void on_dead_lettered(const broker::DeadLettered& d);
  // After deliveries: the consumer's delivery count into its group's annotation, in memory (it
  // reaches the disk with the group's next write).
  void keep_sequence(const Consumer& c);
  void error(const Request& r, std::string_view name, const ApiError& e);
  void answer(const Request& r, std::string_view name, const boost::json::object& body);

  // Status messages to a pull request's inbox (nats headers.hpp's codes).
  void status(std::string_view inbox, std::uint16_t code, std::string_view description,
              std::uint64_t pending_messages = 0, std::uint64_t pending_bytes = 0,
              bool with_pending = false);
  // Ends every waiting request of `c` with `code` `description`.
  void end_all(Consumer& c, std::uint16_t code, std::string_view description);
  void drop_consumer(const Key& key);

  void on_timer();
  void arm();
  static delivery::TimePoint group_now();

  // ---- Push consumers (js_push.cpp) -----------------------------------------------------------
  // The start-up path of a push consumer, from its config: makes (or, after a config change,
  // remakes) its push state when config.deliver_subject is set, ends it otherwise, then looks
  // at the interest in the deliver subject and subscribes to the group. Idempotent. Every path
  // that makes a Consumer from a config (create, and find() from the group record) calls it.
  void start_push(Consumer& c);
  // At attach(): every group whose record carries a deliver subject becomes a push consumer,
  // and every ephemeral consumer is restored (its inactive_threshold runs from then).
  void restore_push();
  // The Router's interest changed: re-checks every push consumer (posted, coalesced).
  void on_interest_change();
  void check_interest(Consumer& c);
  std::uint32_t push_credit(const Consumer& c) const;
  void push_deliver(Consumer& c, const broker::DeliveryBatch& batch);
  // Pushes what is queued, as far as flow control lets it; then asks the group for more.
  void push_flush(Consumer& c);
  // No interest any more: what was queued goes back to the group at once.
  void push_unbound(Consumer& c);
  void push_timer(Consumer& c, Clock::time_point now);
  void on_flow_control(std::string_view subject);
  bool push_bound(const Consumer& c) const { return c.push && c.push->bound; }
  // Held back by its rate limit at `now`: the timer pushes on (push_flush) once the bucket lets.
  bool push_paced(const Consumer& c, Clock::time_point now) const;

  // The `$JS.FC.>` subscription: flow-control answers from any connection.
  class FlowControlListener final : public natsport::Subscriber {
   public:
    explicit FlowControlListener(Consumers& owner) : owner_(owner) {}
    bool deliver(const Subscription& sub, const Outbound& message) override;
    void on_subscription_finished(const Subscription& sub) override { (void)sub; }

   private:
    Consumers& owner_;
  };
  FlowControlListener fc_listener_{*this};
  std::optional<SubscriberHandle> fc_subscription_;
  bool interest_check_posted_ = false;

  Api& api_;
  broker::Groups& groups_;
  std::function<void()> groups_changed_;
  std::string server_name_;
  boost::asio::steady_timer timer_;
  std::optional<Clock::time_point> timer_at_;
  bool stopped_ = false;
  std::map<Key, Consumer, std::less<>> consumers_;
  std::unordered_map<std::uint64_t, Key> subscriptions_;
  std::minstd_rand random_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace loft::natsport::js
