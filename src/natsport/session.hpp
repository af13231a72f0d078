#pragma once
// One NATS client connection (module-private).
//
// Runs entirely on loftd's io thread: a reader coroutine (read into the nats::Parser, handle
// each op: CONNECT, PUB/HPUB through the Router, SUB, UNSUB, PING, PONG) and a writer coroutine
// (flush the outgoing queue with one gathered write). Other sessions' messages reach it through
// deliver(), called by the Router on the same thread.
//
// Bounds: the reader reads at most 64 KiB at a time (1 KiB before CONNECT completes, when a
// payload may be at most kPendingMaxPayload); it pauses while the session's own replies (+OK,
// PONG, -ERR) exceed max_outgoing_bytes; a message that leaves more than max_outgoing_bytes
// queued closes the session as a slow consumer (as nats-server: no -ERR, it could not be read
// in time anyway). A watchdog closes the session when CONNECT (and its login) does not
// complete within handshake_timeout, or an op that has begun does not complete within
// op_timeout; the server's PING sweep closes one that leaves two PINGs unanswered.
//
// Lifecycle: fatal() queues a -ERR, stops reading, and the writer flushes, half-closes and
// drains for a bounded time before closing (so the client reads the -ERR instead of a reset);
// close() drops everything at once. When the writer ends, the session's subscriptions leave
// the Router and the Server forgets it.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "js_api.hpp"
#include "js_consumers.hpp"
#include "loft/auth/auth.hpp"
#include "loft/auth/login_limits.hpp"
#include "loft/nats/parser.hpp"
#include "loft/natsport/server.hpp"
#include "router.hpp"

namespace loft::natsport {

// What the sessions share, owned by the Server (which outlives them). `options` is the
// server's current options: op_timeout and allow_plaintext_passwords follow a reload, the
// rest a session copies when it is accepted.
struct SessionContext {
  const ServerOptions& options;
  Router router;
  Figures figures;  // the counters; the Server fills in the gauges when asked
  // INFO's fields shared by every connection (client_id and client_ip are added per session).
  boost::json::object info;
  std::function<void(const Session*)> on_admitted;
  std::function<void(const Session*)> on_closed;
  std::unique_ptr<js::Api> js;  // null: JetStream off (no broker)
  // JetStream consumers (with `js` and groups); destroyed before `js`, which it uses.
  std::unique_ptr<js::Consumers> consumers;
};

class Session : public std::enable_shared_from_this<Session>, public Subscriber {
 public:
  // Payload limit before CONNECT completes: a connection that has not even said who it is
  // cannot make loftd buffer max_payload bytes.
  static constexpr std::uint64_t kPendingMaxPayload = 64 << 10;

  // `tls`: the listener's TLS context (INFO in clear with tls_required, then the client's TLS
  // handshake within handshake_timeout, then everything over TLS); null for plaintext.
  Session(SessionContext& context, boost::asio::ip::tcp::socket socket, std::uint64_t client_id,
          std::shared_ptr<boost::asio::ssl::context> tls = nullptr);

  // Sends INFO and serves the connection.
  void start();
  // Sends INFO and `-ERR '<text>'`, then closes (a connection over max_connections); on a TLS
  // listener closes at once (no TLS session to carry them).
  void refuse(std::string_view text);
  // Graceful (shutdown): no more ops are read; what is queued is flushed, then the close.
  void stop_reading();
  // Hard: drop everything now.
  void close();
  // The server's PING sweep: PING, or -ERR 'Stale Connection' and close after two unanswered.
  void on_ping_interval();
  // After a users reload: closes the session if its user was removed or changed.
  void recheck_user();

  // Subscriber (from the Router).
  bool deliver(const Subscription& sub, const Outbound& message) override;
  void on_subscription_finished(const Subscription& sub) override;

  bool admitted() const { return admitted_; }
  bool refused() const { return refused_; }
  // Bytes of an op arrived or a login is under way: eviction spares such sessions first.
  bool shows_handshake() const { return spoke_ || auth_pending_; }
  const std::string& peer() const { return peer_; }

 private:
  using Clock = std::chrono::steady_clock;
  using Awaitable = boost::asio::awaitable<void>;

  // Reading (session.cpp).
  Awaitable reader(std::shared_ptr<Session> self);
  Awaitable read_loop();
  boost::asio::awaitable<bool> tls_handshake();
  boost::asio::awaitable<bool> read_more();
  // Writing.
  Awaitable writer(std::shared_ptr<Session> self);
  Awaitable write_loop();
  Awaitable linger(std::shared_ptr<Session> self);
  Awaitable tls_close(std::shared_ptr<Session> self);
  std::string& out();  // the buffer to append a reply to (shared by small replies)
  void queued(std::size_t bytes);
  std::string info_text() const;
  void send_info();
  void send_ok();
  void send_err(std::string_view text);
  // Sends -ERR '<text>' (if any), stops reading, then closes after the flush.
  void fatal(std::string_view text, std::string_view reason);
  void admit();
  // Deadlines.
  std::optional<Clock::time_point> watchdog_due() const;
  void arm_watchdog();
  void on_watchdog();

  // Ops (session_ops.cpp).
  void handle(const nats::Op& op);
  void on_connect(std::string_view json);
  void on_pub(std::string_view subject, std::string_view reply, std::string_view headers,
              std::string_view payload);
  void on_sub(const nats::Sub& sub);
  void on_unsub(const nats::Unsub& unsub);
  void no_responders(std::string_view reply);
  // Logins and permissions (session_auth.cpp).
  bool users_required() const { return context_.options.security.authenticator != nullptr; }
  // Checks the password (on the slow executor unless remembered); on_login gets the result.
  void start_login(std::string user, std::string password);
  void on_login(const std::string& name, Result<std::shared_ptr<const auth::User>> result);
  bool may_publish(std::string_view subject);
  bool may_subscribe(std::string_view subject);
  bool allowed(auth::Operation op, std::string_view subject);
  void remember_reply(std::string_view reply);

  SessionContext& context_;
  boost::asio::ip::tcp::socket socket_;  // the TCP socket, also under TLS
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;  // after INFO
  bool tls_established_ = false;
  bool reader_done_ = false;
  const std::uint64_t client_id_;
  std::string peer_;
  std::string peer_address_;
  bool peer_is_loopback_ = false;
  boost::asio::steady_timer read_signal_;   // cancelled when the reader may go on
  boost::asio::steady_timer write_signal_;  // cancelled when there is something to write
  boost::asio::steady_timer watchdog_;
  bool watchdog_armed_ = false;
  boost::asio::steady_timer auth_delay_;  // before a failed login is answered
  const Clock::time_point accepted_at_;
  // Fixed at accept.
  const std::size_t max_outgoing_bytes_;
  const std::chrono::milliseconds handshake_timeout_;
  Clock::time_point op_started_at_{};
  bool in_op_ = false;  // bytes of an incomplete op are buffered
  nats::Parser parser_;
  std::deque<std::string> outgoing_;
  std::size_t outgoing_bytes_ = 0;
  bool reading_ = true;
  bool closed_ = false;
  bool fatal_ = false;                    // a fatal -ERR was queued: flush, linger, close
  std::optional<std::string> timed_out_;  // the -ERR text when the watchdog ended the reading
  std::vector<std::string> peer_names_;   // of a verified client certificate
  bool spoke_ = false;
  bool refused_ = false;
  bool connected_ = false;  // a CONNECT was accepted
  bool admitted_ = false;
  std::uint32_t pings_out_ = 0;
  // CONNECT options (nats-server's defaults until CONNECT says otherwise).
  bool verbose_ = true;
  bool pedantic_ = true;
  bool echo_ = true;
  bool headers_ = false;
  bool no_responders_ = false;
  std::string name_;
  // Subscriptions by sid.
  std::unordered_map<std::string, SubscriberHandle> subscriptions_;
  // Login and permissions.
  std::shared_ptr<const auth::User> user_;
  bool auth_pending_ = false;
  // Looked up by string_view: no allocation per message for a subject seen before.
  struct SubjectHash {
    using is_transparent = void;  // NOLINT(readability-identifier-naming): the std name
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::uint8_t, SubjectHash, std::equal_to<>>
      grants_;  // subject -> bits, bounded
  // `_INBOX.` reply subjects of messages delivered here, most recent last, bounded: this
  // connection may publish to them (the responses of request/reply).
  std::deque<std::string> replies_;
  std::unordered_set<std::string_view> reply_set_;  // views of replies_'s strings
};

}  // namespace loft::natsport
