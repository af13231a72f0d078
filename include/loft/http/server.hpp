#pragma once
// loftd's HTTP endpoint (Boost.Beast): /metrics, /healthz, /readyz, the /v1 JSON API and
// HTTP publish.
//
// Thread: it runs on loftd's single io thread, the one that serves the binary protocol and
// owns the consumer groups, so it reads group state and connection counts without locks or
// posting. Broker completions (publishes) arrive on the writer thread and are posted back.
//
// Lifecycle: listen() binds (throws on failure: a startup error) and accepts until stop(),
// which closes the acceptor and every connection. One coroutine per connection: the TLS
// handshake (HTTPS), then read a request (bounded header and body, a deadline), answer, repeat
// while keep-alive.
//
// Security (docs/security.md, "HTTP"): with users, /v1 needs a user: HTTP Basic credentials,
// checked on the slow executor (Argon2id) within the shared PasswordCheckLimiter, or over HTTPS
// a verified client certificate that names exactly one user; then the user's permissions per
// topic. /healthz and /readyz stay open, /metrics as ServerOptions::security.metrics says (and
// with users it shows per-topic series only for the topics the user may see).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "loft/auth/auth.hpp"
#include "loft/auth/login_limits.hpp"
#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/http/api.hpp"

namespace loft::http {

// Whether GET /metrics needs a user when the server has users.
enum class MetricsAccess { open, users };

// Users and how a request proves who it is.
struct Security {
  // Null: no users; every endpoint is open to everyone (loopback, or allow_anonymous).
  std::shared_ptr<auth::Authenticator> authenticator;
  // Where password checks run: Argon2id takes tens of milliseconds and must not stall the io
  // thread. Required with an authenticator.
  boost::asio::any_io_executor slow_executor;
  // Bounds the password checks waiting for slow_executor (loftd shares one with the binary
  // protocol); a request beyond it gets 503 with Retry-After. Null: the server makes its own.
  std::shared_ptr<auth::PasswordCheckLimiter> password_checks;
  // Basic credentials over plain HTTP from a non-loopback peer are refused unless this is set.
  bool allow_plaintext_passwords = false;
  MetricsAccess metrics = MetricsAccess::open;
  // Failed logins on one connection before it is closed (after that answer); 0 = no limit.
  std::uint32_t max_auth_failures = 3;
};

// Logins over HTTP since start: every request that carries Basic credentials counts once, as
// a success or a failure (the Authenticator remembers good passwords, so a repeat is cheap).
struct AuthCounters {
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
};

// The TLS context for a new connection (HTTPS); called once per accepted connection, which
// keeps what it got, so a certificate reload reaches the connections accepted after it.
using TlsContextSource = std::function<std::shared_ptr<boost::asio::ssl::context>()>;

struct ServerOptions {
  // A request body may be up to this many bytes (loftd: max_frame_size).
  std::uint32_t max_body_bytes = 16 * 1024 * 1024;
  std::uint32_t max_header_bytes = 16 * 1024;
  // Connections beyond it are closed at once, so idle or slow clients cannot pile up.
  std::size_t max_connections = 64;
  // To read a whole request (or to wait for the next one on a keep-alive connection), and to
  // write a response: a slow or silent client is disconnected after it.
  std::chrono::milliseconds request_timeout{30'000};
  std::string server_name = "loftd";
  Security security;
  // Empty: plain HTTP. Otherwise every connection speaks TLS (HTTPS) with the context it
  // returns; the handshake must finish within request_timeout.
  TlsContextSource tls_context;
};

// Where the endpoint's figures come from, all read on the io thread.
struct Sources {
  broker::Broker& broker;
  const broker::Groups& groups;
  std::function<NetFigures()> net;
};

// 200 on /readyz: the broker is running, not stopping, and can take writes.
bool ready(const broker::Broker& broker);

class Connection;

class Server {
 public:
  Server(boost::asio::io_context& io, Sources sources, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0 = any free port) and starts accepting; returns the bound endpoint.
  boost::asio::ip::tcp::endpoint listen(const std::string& host, std::uint16_t port);
  void stop();
  // The reloadable policies (allow_plaintext_passwords, metrics) and users, for the requests
  // read from now on. Io thread only.
  // A `security` without password_checks keeps the current limiter.
  void update_security(Security security);
  // Logins over HTTP since start (also added into /metrics' loft_auth_*_total). Io thread.
  AuthCounters auth_counters() const { return auth_counters_; }

 private:
  friend class Connection;
  boost::asio::awaitable<void> accept_loop();

  boost::asio::io_context& io_;
  Sources sources_;
  ServerOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::set<std::shared_ptr<Connection>> connections_;
  AuthCounters auth_counters_;
  bool stopping_ = false;
};

}  // namespace loft::http
