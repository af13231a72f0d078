#pragma once
// One client connection of the binary protocol (module-private to net).
//
// Runs entirely on the server's single-threaded io_context: a reader coroutine (decode,
// dispatch) and a writer coroutine (flush the outgoing queue). Broker completions arrive on the
// broker's writer thread and are posted back here; group completions arrive here already.
//
// Bounds: the reader pauses while `inflight_` >= max_inflight_requests or while unsent reply
// bytes exceed max_outgoing_bytes, so a client that floods requests or never reads its
// replies is throttled by TCP instead of growing our memory. A watchdog timer closes the
// session when HELLO does not complete within handshake_timeout, or a frame that has begun
// does not complete within frame_timeout; between frames a session may idle for ever.
//
// TLS: on a TLS listener the stream is TLS (stream.hpp: OpenSSL over memory, records batched
// into few socket writes), and the reader's first step is the TLS handshake, under the same
// handshake deadline as HELLO (counted from accept). A handshake that fails or
// times out closes the connection with one log line and no ERROR frame (there is no channel
// to carry one); after it, errors are answered and closed as on plaintext, with a TLS
// close_notify (bounded in time) before the socket closes.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/net/group_runner.hpp"
#include "loft/net/server.hpp"
#include "loft/protocol/codec.hpp"
#include "loft/protocol/frames.hpp"
#include "stream.hpp"

namespace loft::net {

// What a session works with, owned by the Server (which outlives its sessions). `options` is
// the server's current options: the ones a session reads while it runs (frame_timeout,
// max_inflight_bytes) follow a reload; the rest it copies when it is accepted.
struct SessionContext {
  broker::Broker& broker;
  GroupRunner& groups;
  const ServerOptions& options;
  std::function<void(const class Session*)> on_closed;
  // Once per session, when it is admitted (Session::admit): it stops being pending.
  std::function<void(const class Session*)> on_admitted;
  AuthCounters auth_counters{};
};

class Session : public std::enable_shared_from_this<Session>, public broker::Subscriber {
 public:
  Session(SessionContext& context, Stream stream);

  void start();
  // Graceful: no more requests are read; in-flight ones complete and are flushed.
  void stop_reading();
  // Hard: drop everything now.
  void close();

  // broker::Subscriber
  bool ready() const override { return !closed_ && outgoing_bytes_ <= max_outgoing_bytes_; }
  void deliver(const broker::DeliveryBatch& batch) override;
  std::string client_name() const override { return client_name_; }
  const std::string& peer() const { return peer_; }

  // Whether the connection has begun its handshake in earnest: bytes of a frame read, a
  // completed TLS handshake, or a password check under way. Eviction spares these first.
  bool shows_handshake() const { return spoke_ || tls_established_ || auth_pending_; }

  // After a users reload (Server::on_users_reloaded): closes the session if its user changed.
  void recheck_user();

  // Whether the connection is TLS (accepted on the TLS listener).
  bool secure() const { return stream_.secure(); }
  // The names of the client's verified certificate (tls::peer_names: the subject's CN, then
  // its DNS, email and URI alternative names); empty without TLS, without a client
  // certificate, or before the TLS handshake completed.
  const std::vector<std::string>& peer_names() const { return peer_names_; }

 private:
  using Clock = std::chrono::steady_clock;
  using Awaitable = boost::asio::awaitable<void>;

  // Reading.
  Awaitable reader(std::shared_ptr<Session> self);
  boost::asio::awaitable<bool> tls_handshake();
  Awaitable read_loop();
  boost::asio::awaitable<bool> read_more();
  // Writing.
  Awaitable writer(std::shared_ptr<Session> self);
  Awaitable write_loop();
  Awaitable linger(std::shared_ptr<Session> self);
  Awaitable tls_shutdown(std::shared_ptr<Session> self);
  void send_encoded(std::string frame);
  void send(std::uint32_t correlation_id, protocol::Body body);
  void send_error(std::uint32_t correlation_id, const Error& error);
  void fatal(std::uint32_t correlation_id, const Error& error);
  bool finished() const { return !reading_ && inflight_ == 0 && !pending_fatal_; }
  // The connection has completed what a client must do before it is served (today HELLO) and
  // stops being pending (ServerOptions::max_pending_connections). Idempotent.
  void admit();
  // Deadlines.
  void begin_frame();
  std::optional<Clock::time_point> watchdog_due() const;
  void arm_watchdog();
  void on_watchdog();

  // Requests: one handler per frame type (session_requests.cpp).
  void dispatch(std::uint32_t cid, protocol::Body body);
  void handle(std::uint32_t cid, protocol::Hello& req);
  void handle(std::uint32_t cid, protocol::Ping& req);
  void handle(std::uint32_t cid, protocol::CreateTopic& req);
  void handle(std::uint32_t cid, protocol::DeleteTopic& req);
  void handle(std::uint32_t cid, protocol::AlterTopic& req);
  void handle(std::uint32_t cid, protocol::ListTopics& req);
  void handle(std::uint32_t cid, protocol::DescribeTopic& req);
  void handle(std::uint32_t cid, protocol::Publish& req);
  void handle(std::uint32_t cid, protocol::Fetch& req);
  void handle(std::uint32_t cid, protocol::Backup& req);
  void handle(std::uint32_t cid, protocol::Subscribe& req);
  void handle(std::uint32_t cid, protocol::Settle& req);
  void handle(std::uint32_t cid, protocol::Unsubscribe& req);
  void handle(std::uint32_t cid, protocol::CreateGroup& req);
  void handle(std::uint32_t cid, protocol::ListGroups& req);
  void handle(std::uint32_t cid, protocol::DescribeGroup& req);
  void handle(std::uint32_t cid, protocol::DeleteGroup& req);
  void handle(std::uint32_t cid, protocol::ResetGroup& req);
  void handle(std::uint32_t cid, protocol::Authenticate& req);
  // Any other frame is a reply, which a client must not send.
  template <class Reply>
  void handle(std::uint32_t cid, Reply& reply);

  // For a request the broker answers later, from its writer thread.
  template <class T, class Reply>
  broker::Callback<T> completion(std::uint32_t correlation_id, Reply make_reply);
  // For requests the groups answer on this thread (at once, or later through a post): no
  // second post, so a SUBSCRIBE_OK is queued before the first DELIVER of that subscription.
  template <class T, class Reply>
  broker::Callback<T> local(std::uint32_t correlation_id, Reply make_reply);

  // Authentication and permissions (session_auth.cpp).
  bool users_required() const { return context_.options.security.authenticator != nullptr; }
  bool authenticated() const { return !users_required() || user_ != nullptr; }
  // True when the connection may do `op` on `topic`; otherwise answers `cid` with ERROR
  // forbidden (or unauthenticated) and returns false. Resolved once per topic and connection.
  bool permit(std::uint32_t cid, auth::Operation op, const std::string& topic);
  bool may_see(const std::string& topic);
  // ERROR forbidden: "user 'u' may not <what> topic 't'".
  void forbid(std::uint32_t cid, std::string_view what, const std::string& topic);
  std::uint8_t grants(const std::string& topic);
  bool password_allowed_here() const;
  // With users: a verified client certificate whose CN or alternative names name exactly one
  // user authenticates the connection as that user (no AUTHENTICATE needed); one that names
  // two users authenticates nothing (auth::Authenticator::identify).
  void authenticate_by_certificate();
  void on_verified(std::uint32_t cid, const std::string& name,
                   Result<std::shared_ptr<const auth::User>> result);
  void log_auth_failure(const std::string& name, const std::string& reason);

  SessionContext& context_;
  Stream stream_;
  bool tls_established_ = false;  // the TLS handshake completed
  std::vector<std::string> peer_names_;
  boost::asio::steady_timer read_signal_;   // cancelled when the reader may be able to go on
  boost::asio::steady_timer write_signal_;  // cancelled when there is something to write
  boost::asio::steady_timer watchdog_;      // handshake and frame deadlines
  bool watchdog_armed_ = false;
  Clock::time_point accepted_at_;
  // Fixed at accept: a reload (Server::update_limits) changes them for later connections only.
  const std::uint32_t max_inflight_requests_;
  const std::size_t max_outgoing_bytes_;
  const std::chrono::milliseconds handshake_timeout_;
  Clock::time_point frame_started_at_{};
  bool in_frame_ = false;           // a frame's first byte has arrived, not yet its last
  std::optional<Error> timed_out_;  // why the watchdog ended the reading
  protocol::Decoder decoder_;       // what was read from the socket and not yet decoded
  std::deque<std::string> outgoing_;
  std::size_t outgoing_bytes_ = 0;
  std::uint32_t inflight_ = 0;
  std::size_t inflight_bytes_ = 0;  // memory held by requests not yet answered
  std::size_t current_cost_ = 0;    // of the request being dispatched
  bool handshaken_ = false;
  bool admitted_ = false;  // see admit()
  bool reading_ = true;
  bool closed_ = false;
  bool fatal_ = false;      // a fatal ERROR was queued: linger, then close
  bool backed_up_ = false;  // a delivery found the send queue over its bound
  std::optional<std::pair<std::uint32_t, Error>> pending_fatal_;  // sent once inflight_ == 0
  std::string client_name_;
  std::unordered_map<std::uint64_t, std::uint32_t> subscriptions_;  // id -> SUBSCRIBE's cid
  std::string peer_;
  bool peer_is_loopback_ = false;
  std::string peer_address_;  // the peer's IP address alone (per-address limits)
  bool spoke_ = false;        // some bytes of a frame were read
  // The authenticated user (null before, or when the server has no users), the failed attempts,
  // and each topic's resolved permissions (bits of grants()).
  std::shared_ptr<const auth::User> user_;
  bool auth_pending_ = false;
  std::uint32_t auth_failures_ = 0;
  boost::asio::steady_timer auth_delay_;
  std::unordered_map<std::string, std::uint8_t> grants_;
};

}  // namespace loft::net
