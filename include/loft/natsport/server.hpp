#pragma once
// loftd's NATS-compatible port (docs/nats.md): an acceptor and one session per connection, as
// C++20 coroutines on loftd's single io thread (the one that runs the binary protocol's
// sessions and the HTTP endpoint), so sessions and the router share state without locks.
//
// Core NATS today: INFO, CONNECT, PING/PONG, PUB, HPUB, SUB (queue groups), UNSUB (max), MSG,
// HMSG, +OK/-ERR with nats-server's texts, wildcards, request/reply with the no-responders
// status. A message is delivered to the subscriptions that match it at that moment and not
// stored (JetStream streams on loft topics come later).
//
// Lifecycle: listen() binds (throws on failure: a start-up error) and accepts until stop(),
// which closes the acceptor, flushes what each session has queued and closes it; `on_stopped`
// runs when the last session is gone, or after shutdown_timeout (the rest are closed hard).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "loft/auth/auth.hpp"
#include "loft/auth/login_limits.hpp"
#include "loft/common/message.hpp"

namespace loft::tls {
class ServerContext;
}

namespace loft::broker {
class Broker;
class Groups;
}  // namespace loft::broker

namespace loft::natsport {

// Users, as for loft's other ports (docs/security.md, docs/nats.md for the NATS rules).
struct Security {
  // Null: no users; every connection may do everything (loopback only, or allow_anonymous).
  // Otherwise CONNECT must carry `user` and `pass` of a user, and PUB and SUB are checked
  // against that user's publish and subscribe permissions, the subject taken as a topic name.
  std::shared_ptr<auth::Authenticator> authenticator;
  // Where password checks run (Argon2id: tens of milliseconds). Required with an authenticator.
  boost::asio::any_io_executor slow_executor;
  // Bounds the password checks waiting for slow_executor; loftd shares one with its other
  // ports. Null: the server makes its own.
  std::shared_ptr<auth::PasswordCheckLimiter> password_checks;
  bool allow_plaintext_passwords = false;
};

// JetStream (docs/nats.md, "JetStream"): on when `broker` is set. Both outlive the server and
// are used from the io thread (the broker's callbacks are posted back to it).
struct JetStreamOptions {
  broker::Broker* broker = nullptr;  // streams are its topics
  broker::Groups* groups = nullptr;  // consumers are its groups
  // Called after the port's calls into `groups` (loftd re-arms the groups' timer).
  std::function<void()> groups_changed;
  // The broker's: a captured message that breaks them gets its PubAck error before it is
  // batched with others (one bad message must not fail a batch).
  MessageLimits message_limits;
};

struct ServerOptions {
  // Largest PUB payload (HPUB: headers and payload), announced in INFO as max_payload.
  std::uint64_t max_payload = 1 << 20;
  // Longest control line (an op and its arguments), as nats-server's default.
  std::size_t max_control_line = 4096;
  // Unsent bytes per connection: the reader pauses while its own replies exceed it, and a
  // message that would leave more queued closes the connection as a slow consumer.
  std::size_t max_outgoing_bytes = 64 << 20;
  // Open connections; one more is sent -ERR 'maximum connections exceeded' and closed.
  std::size_t max_connections = 4096;
  // Connections that have not completed CONNECT (and its login); at the limit the oldest is
  // closed to make room, so silent sockets cannot lock clients out.
  std::size_t max_pending_connections = 256;
  // From accept to a completed CONNECT: -ERR 'Authentication Timeout', then close.
  std::chrono::milliseconds handshake_timeout{5'000};
  // From the first byte of an op to its last: -ERR 'Stale Connection', then close.
  std::chrono::milliseconds op_timeout{30'000};
  // loftd PINGs every connection this often; two unanswered: -ERR 'Stale Connection', close.
  std::chrono::milliseconds ping_interval{120'000};
  std::chrono::milliseconds shutdown_timeout{10'000};
  std::string server_name = "loftd";
  // INFO's `version`: the nats-server release whose client protocol loft speaks. Clients turn
  // features (headers, no responders) on by it, so it is not loft's own version (which INFO
  // carries as `loft_version`).
  std::string nats_version = "2.9.10";
  std::string loft_version;
  Security security;
  JetStreamOptions jetstream;
};

// Since start, except the gauges (open, pending, subscriptions). Io thread.
struct Figures {
  std::uint64_t connections_open = 0;
  std::uint64_t connections_pending = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t connections_evicted = 0;
  std::uint64_t subscriptions = 0;
  std::uint64_t messages_in = 0;   // PUB and HPUB routed
  std::uint64_t messages_out = 0;  // MSG and HMSG queued to a connection
  std::uint64_t bytes_in = 0;      // their payloads (headers included)
  std::uint64_t bytes_out = 0;
  std::uint64_t slow_consumers = 0;  // connections closed as slow consumers
  std::uint64_t auth_succeeded = 0;
  std::uint64_t auth_failed = 0;
};

class Session;
struct SessionContext;

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0 = any free port), starts accepting; returns the bound endpoint.
  // With `tls` every connection speaks TLS, with the context's current() at its accept (so a
  // reload reaches the connections accepted after it); `tls` outlives the server.
  boost::asio::ip::tcp::endpoint listen(const std::string& host, std::uint16_t port,
                                        tls::ServerContext* tls = nullptr);
  void stop(std::function<void()> on_stopped);
  // A SIGHUP: takes over max_connections, max_pending_connections, handshake_timeout (for
  // connections accepted afterwards), op_timeout and allow_plaintext_passwords.
  void update_limits(const ServerOptions& options);
  // After the authenticator took a new users file: connections whose user was removed or
  // changed get -ERR 'Authorization Violation' and are closed; the others go on.
  void on_users_reloaded();

  Figures figures() const;

 private:
  struct Entry {
    std::shared_ptr<Session> session;
    std::optional<std::list<const Session*>::iterator> pending;
  };
  void start_accept();
  void accepted(boost::asio::ip::tcp::socket socket);
  void evict_oldest_pending();
  void on_admitted(const Session* session);
  void on_closed(const Session* session);
  void arm_pings();
  void maybe_stopped();

  boost::asio::io_context& io_;
  ServerOptions options_;
  std::unique_ptr<SessionContext> context_;
  tls::ServerContext* tls_ = nullptr;  // null: plaintext
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // after a failed accept
  boost::asio::steady_timer pings_;
  boost::asio::steady_timer stop_timer_;
  std::unordered_map<const Session*, Entry> sessions_;
  std::list<const Session*> pending_;  // in accept order: the oldest first
  std::uint64_t next_client_id_ = 1;
  std::size_t refusing_ = 0;  // refused connections still being told so
  bool stopping_ = false;
  std::function<void()> on_stopped_;
  // Refusals and evictions: counted, logged at most once per 10 s.
  std::uint64_t unlogged_refusals_ = 0;
  std::uint64_t unlogged_evictions_ = 0;
  std::chrono::steady_clock::time_point refusal_logged_at_{};
  std::chrono::steady_clock::time_point eviction_logged_at_{};
};

}  // namespace loft::natsport
