#pragma once
// The binary protocol's front end of loftd: an acceptor and one Session per connection, as C++20
// coroutines on a single-threaded io_context (so session state needs no locks or strands). A
// session decodes frames, translates each request into a call of the broker's API (Broker, and
// the Groups through their GroupRunner) and writes replies through a bounded queue. The Server
// owns connections and sessions only: loftd's main makes the broker and the groups and hands
// them in.
//
// Listeners: listen() for plaintext and, optionally, listen_tls() for a second one that speaks
// only TLS. Both share max_connections and the set of sessions.
//
// Lifecycle: listen() binds (throws on failure: a startup error), then accepts until stop().
// stop() closes the acceptor and each session's read side; sessions finish their in-flight
// requests, flush their replies, and close. `on_stopped` runs when the last session is gone,
// or when shutdown_timeout passes (remaining sessions are then closed hard).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loft/auth/auth.hpp"
#include "loft/auth/login_limits.hpp"
#include "loft/broker/broker.hpp"
#include "loft/net/group_runner.hpp"
#include "loft/protocol/frames.hpp"

namespace loft::tls {
class ServerContext;
}

namespace loft::net {

// Users and how a connection proves who it is (docs/security.md).
struct Security {
  // Null: no users; every connection may do everything (loopback only, or allow_anonymous).
  // Otherwise a connection must authenticate (AUTHENTICATE, or a client certificate naming a
  // user) before anything but HELLO, AUTHENTICATE and PING, and each request is checked
  // against the user's permissions.
  std::shared_ptr<auth::Authenticator> authenticator;
  // Where password checks run: Argon2id takes tens of milliseconds and must not stall the io
  // thread. Required with an authenticator.
  boost::asio::any_io_executor slow_executor;
  // Bounds the password checks waiting for slow_executor; loftd shares one with the HTTP
  // endpoint. Null: the server makes its own.
  std::shared_ptr<auth::PasswordCheckLimiter> password_checks;
  bool allow_plaintext_passwords = false;
  std::uint32_t max_auth_failures = 3;
};

// Logins since start (the HTTP endpoint's /metrics).
struct AuthCounters {
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
};

struct ServerOptions {
  protocol::Limits limits;
  std::uint32_t max_inflight_requests = 1024;
  // Reading from a connection pauses while its unanswered requests hold this much memory.
  std::size_t max_inflight_bytes = 64 << 20;
  // Reading from a connection pauses while its unsent replies exceed this many bytes.
  std::size_t max_outgoing_bytes = 64 << 20;
  std::chrono::milliseconds shutdown_timeout{10'000};
  // Open sessions; a connection accepted beyond it gets ERROR too_many_connections, is closed.
  // Pending ones count, but one is closed to make room before a new connection is refused.
  std::size_t max_connections = 4096;
  // Sessions accepted and not yet admitted (the handshake not complete). A connection accepted
  // at this limit, or at max_connections while some are pending, first closes the oldest
  // pending one (no ERROR frame), so silent sockets cannot lock out clients that handshake.
  std::size_t max_pending_connections = 256;
  // From accept to a completed HELLO (ERROR handshake_timeout, then close).
  std::chrono::milliseconds handshake_timeout{5'000};
  // From the first byte of a frame to its last (ERROR frame_timeout, then close). Time between
  // frames is not limited: an idle consumer is a normal client.
  std::chrono::milliseconds frame_timeout{30'000};
  std::string server_name = "loftd";
  Security security;
};

class Session;
struct SessionContext;

class Server {
 public:
  // `broker` and `groups` outlive the server; `groups` is attached (GroupRunner::attach).
  Server(boost::asio::io_context& io, broker::Broker& broker, GroupRunner& groups,
         ServerOptions options);
  ~Server();

  // Binds host:port (port 0 = any free port), starts accepting; returns the bound endpoint.
  boost::asio::ip::tcp::endpoint listen(const std::string& host, std::uint16_t port);
  // The same for a listener that speaks only TLS: each connection it accepts takes
  // context.current() (so a reload of `context` reaches the connections accepted after it).
  // `context` outlives the server.
  boost::asio::ip::tcp::endpoint listen_tls(const std::string& host, std::uint16_t port,
                                            tls::ServerContext& context);
  void stop(std::function<void()> on_stopped);
  // Takes over the limits of `options` that may change while running (loftd's SIGHUP) and
  // ignores the rest. max_connections, max_pending_connections and frame_timeout apply at once,
  // on every connection (a lower max_connections closes none: new ones are refused until fewer
  // are open; a lower max_pending_connections closes the oldest pending ones at the next
  // accept; a frame_timeout wait already armed may fire late by up to the old timeout).
  // handshake_timeout, max_inflight_requests and max_outgoing_bytes apply to connections accepted
  // afterwards; an open connection keeps the ones it was accepted with. Io thread only.
  void update_limits(const ServerOptions& options);
  // After the authenticator took a new users file (SIGHUP): a connection whose user is gone, or
  // whose password hash or permissions changed, gets ERROR unauthenticated and is closed; the
  // others go on. Io thread only.
  void on_users_reloaded();
  AuthCounters auth_counters() const;

  // Open sessions, pending ones included (closed ones whose coroutines are still ending are not).
  std::size_t session_count() const { return sessions_.size() - evicted_closing_; }
  // Sessions accepted and not yet admitted.
  std::size_t pending_count() const { return pending_.size(); }
  // Connections refused because max_connections sessions were open, since start. Io thread
  // only, like every member: the HTTP endpoint runs on the same io_context and reads it there.
  std::uint64_t refused_connections() const { return refused_total_; }
  // Pending sessions closed to make room for a new connection, since start.
  std::uint64_t evicted_pending() const { return evicted_total_; }

 private:
  // A session and, while it is pending, its place in pending_.
  struct Entry {
    std::shared_ptr<Session> session;
    std::optional<std::list<const Session*>::iterator> pending;
    bool evicted = false;  // closed by evict_oldest_pending(), not yet gone
  };

  struct Listener;
  boost::asio::ip::tcp::endpoint bind(Listener& listener, const std::string& host,
                                      std::uint16_t port);
  void start_accept(Listener& listener);
  void on_session_admitted(const Session* session);
  void on_session_closed(const Session* session);
  void evict_oldest_pending(std::string_view reason);
  // `plaintext`: send ERROR too_many_connections before closing.
  void refuse(boost::asio::ip::tcp::socket socket, bool plaintext);
  void maybe_stopped();

  boost::asio::io_context& io_;
  GroupRunner& groups_;
  ServerOptions options_;
  std::unique_ptr<SessionContext> context_;  // what sessions see of the server
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<const Session*, Entry> sessions_;
  std::list<const Session*> pending_;  // in accept order: the oldest first
  std::size_t evicted_closing_ = 0;    // entries with `evicted` set
  bool stopping_ = false;
  std::function<void()> on_stopped_;
  boost::asio::steady_timer stop_timer_;
  // Refusals: counted, logged at most once per kRefusalLogInterval (a flood must not flood the
  // log), and at most kMaxRefusing of them hold a socket at a time.
  std::uint64_t refused_total_ = 0;
  std::uint64_t refused_unlogged_ = 0;
  std::chrono::steady_clock::time_point refusal_logged_at_{};
  std::size_t refusing_ = 0;
  // Evictions: counted and logged like refusals.
  std::uint64_t evicted_total_ = 0;
  std::uint64_t evicted_unlogged_ = 0;
  std::chrono::steady_clock::time_point eviction_logged_at_{};
};

}  // namespace loft::net
