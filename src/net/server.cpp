#include "loft/net/server.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <iterator>
#include <string_view>
#include <vector>

#include "loft/protocol/codec.hpp"
#include "loft/tls/tls.hpp"
#include "log.hpp"
#include "session.hpp"

namespace loft::net {

namespace asio = boost::asio;
using asio::ip::tcp;

// One acceptor: plaintext, or TLS with the listener's current context.
struct Server::Listener {
  explicit Listener(asio::io_context& io, tls::ServerContext* tls_context)
      : acceptor(io), retry(io), tls(tls_context) {}
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // after a failed accept
  tls::ServerContext* tls;   // null: plaintext
};

namespace {

// A connection over max_connections: ERROR too_many_connections (correlation id 0: nothing
// was read), then, as after any fatal error, FIN and a short drain of what the client already
// sent (its HELLO), so that the close does not reset the connection before the client has
// read the ERROR. Owns the socket; bounded in time and bytes.
asio::awaitable<void> refuse_connection(tcp::socket socket, std::string error_frame) {
  constexpr auto kLingerTime = std::chrono::seconds(1);
  constexpr std::size_t kLingerBytes = 64 << 10;
  boost::system::error_code ignored;
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(error_frame), kUseTuple);
  if (!ec) {
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    asio::steady_timer deadline(socket.get_executor());
    deadline.expires_after(kLingerTime);
    // Runs with an error, touching nothing, if the drain ends first and destroys the timer.
    deadline.async_wait([&socket](boost::system::error_code e) {
      boost::system::error_code ignored_too;
      if (!e) socket.cancel(ignored_too);
    });
    std::array<char, 4096> sink{};
    for (std::size_t total = 0; total < kLingerBytes;) {
      std::tie(ec, n) = co_await socket.async_read_some(asio::buffer(sink), kUseTuple);
      if (ec) break;
      total += n;
    }
    deadline.cancel();
  }
  socket.close(ignored);
}

}  // namespace

Server::Server(asio::io_context& io, broker::Broker& broker, GroupRunner& groups,
               ServerOptions options)
    : io_(io),
      groups_(groups),
      options_(std::move(options)),
      context_(std::make_unique<SessionContext>(SessionContext{
          broker, groups, options_, [this](const Session* s) { on_session_closed(s); },
          [this](const Session* s) { on_session_admitted(s); }})),
      stop_timer_(io) {
  if (options_.security.password_checks == nullptr) {
    options_.security.password_checks = std::make_shared<auth::PasswordCheckLimiter>();
  }
}

Server::~Server() = default;

tcp::endpoint Server::listen(const std::string& host, std::uint16_t port) {
  listeners_.push_back(std::make_unique<Listener>(io_, nullptr));
  return bind(*listeners_.back(), host, port);
}

tcp::endpoint Server::listen_tls(const std::string& host, std::uint16_t port,
                                 tls::ServerContext& context) {
  listeners_.push_back(std::make_unique<Listener>(io_, &context));
  return bind(*listeners_.back(), host, port);
}

tcp::endpoint Server::bind(Listener& listener, const std::string& host, std::uint16_t port) {
  tcp::resolver resolver(io_);
  const auto results = resolver.resolve(host, std::to_string(port));  // throws on failure
  const tcp::endpoint endpoint = *results.begin();
  auto& acceptor = listener.acceptor;
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  start_accept(listener);
  return acceptor.local_endpoint();
}

void Server::start_accept(Listener& listener) {
  listener.acceptor.async_accept(
      [this, &listener](boost::system::error_code ec, tcp::socket socket) {
        if (ec) {
          if (ec == asio::error::operation_aborted || stopping_) return;
          // Out of file descriptors or memory: accepting again at once would spin. Wait a little.
          net_log()->warn("accept failed error=\"{}\", retrying in 100ms", ec.message());
          listener.retry.expires_after(std::chrono::milliseconds(100));
          listener.retry.async_wait([this, &listener](boost::system::error_code e) {
            if (!e && !stopping_) start_accept(listener);
          });
          return;
        }
        if (stopping_) return;
        // Room for the new connection comes out of the pending ones first (the oldest has had
        // the longest to handshake), so a flood of silent sockets cannot lock out real clients.
        while (!pending_.empty() && pending_.size() >= options_.max_pending_connections) {
          evict_oldest_pending("max_pending_connections");
        }
        if (session_count() >= options_.max_connections && !pending_.empty()) {
          evict_oldest_pending("max_connections");
        }
        if (session_count() >= options_.max_connections) {
          refuse(std::move(socket), listener.tls == nullptr);
          start_accept(listener);
          return;
        }
        if (refused_unlogged_ > 0) {
          net_log()->info("accepting connections again sessions={} refused={} refused_total={}",
                          session_count(), refused_unlogged_, refused_total_);
          refused_unlogged_ = 0;
        }
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto session = std::make_shared<Session>(
            *context_, listener.tls ? Stream(std::move(socket), listener.tls->current())
                                    : Stream(std::move(socket)));
        const Session* key = session.get();
        pending_.push_back(key);
        sessions_.emplace(key, Entry{session, std::prev(pending_.end())});
        session->start();
        start_accept(listener);
      });
}

void Server::refuse(tcp::socket socket, bool plaintext) {
  constexpr auto kRefusalLogInterval = std::chrono::seconds(10);
  // Each refusal in progress holds a socket for up to a second; beyond this many, close at once.
  constexpr std::size_t kMaxRefusing = 256;
  ++refused_total_;
  ++refused_unlogged_;
  const auto now = std::chrono::steady_clock::now();
  if (refusal_logged_at_ == std::chrono::steady_clock::time_point{} ||
      now - refusal_logged_at_ >= kRefusalLogInterval) {
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    net_log()->warn(
        "connection refused peer={} reason=max_connections max_connections={} refused={} "
        "refused_total={}",
        ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port()),
        options_.max_connections, refused_unlogged_, refused_total_);
    refused_unlogged_ = 0;
    refusal_logged_at_ = now;
  }
  // On the TLS listener an ERROR frame would need a handshake first: a refused TLS client
  // sees its handshake fail instead.
  if (refusing_ >= kMaxRefusing || !plaintext) {
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  const Error error{
      Errc::too_many_connections,
      "max_connections " + std::to_string(options_.max_connections) + " reached; try again later"};
  std::string frame;
  protocol::encode(protocol::Frame{0, protocol::ErrorReply{error.code, error.to_string()}}, frame);
  ++refusing_;
  asio::co_spawn(io_, refuse_connection(std::move(socket), std::move(frame)),
                 [this](const std::exception_ptr&) { --refusing_; });
}

// Hard close, no ERROR frame: the connection has not shown it speaks the protocol. Its
// coroutines end later; until then it is counted in evicted_closing_, not in session_count().
void Server::evict_oldest_pending(std::string_view reason) {
  constexpr auto kEvictionLogInterval = std::chrono::seconds(10);
  // The oldest connection that has shown no sign of a handshake (no HELLO bytes, no completed
  // TLS handshake, no login in progress) goes first: a stream of new silent sockets must not
  // close a real client in the middle of its login. Looked for among the oldest few only, so
  // an accept costs O(1); without one, the oldest pending connection goes.
  constexpr std::size_t kLookAhead = 64;
  auto victim = pending_.begin();
  std::size_t looked = 0;
  for (auto it = pending_.begin(); it != pending_.end() && looked < kLookAhead; ++it, ++looked) {
    if (!sessions_.at(*it).session->shows_handshake()) {
      victim = it;
      break;
    }
  }
  const Session* oldest = *victim;
  pending_.erase(victim);
  auto& entry = sessions_.at(oldest);
  entry.pending.reset();
  entry.evicted = true;
  ++evicted_closing_;
  ++evicted_total_;
  ++evicted_unlogged_;
  const auto now = std::chrono::steady_clock::now();
  if (eviction_logged_at_ == std::chrono::steady_clock::time_point{} ||
      now - eviction_logged_at_ >= kEvictionLogInterval) {
    net_log()->warn(
        "pending connection closed peer={} reason={} pending={} max_pending_connections={} "
        "max_connections={} evicted={} evicted_total={}",
        entry.session->peer(), reason, pending_.size(), options_.max_pending_connections,
        options_.max_connections, evicted_unlogged_, evicted_total_);
    evicted_unlogged_ = 0;
    eviction_logged_at_ = now;
  }
  entry.session->close();
}

void Server::update_limits(const ServerOptions& options) {
  options_.max_connections = options.max_connections;
  options_.max_pending_connections = options.max_pending_connections;
  options_.handshake_timeout = options.handshake_timeout;
  options_.frame_timeout = options.frame_timeout;
  options_.max_inflight_requests = options.max_inflight_requests;
  options_.max_outgoing_bytes = options.max_outgoing_bytes;
  // The authenticator itself stays: a reload gives it a new users file (on_users_reloaded).
  options_.security.allow_plaintext_passwords = options.security.allow_plaintext_passwords;
  options_.security.max_auth_failures = options.security.max_auth_failures;
}

void Server::on_users_reloaded() {
  // A copy: a session that closes is erased from sessions_ only later (its writer ends first),
  // but keep the loop independent of that.
  std::vector<std::shared_ptr<Session>> sessions;
  sessions.reserve(sessions_.size());
  for (const auto& [key, entry] : sessions_) sessions.push_back(entry.session);
  for (const auto& s : sessions) s->recheck_user();
}

AuthCounters Server::auth_counters() const { return context_->auth_counters; }

void Server::on_session_admitted(const Session* session) {
  const auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.pending) return;
  pending_.erase(*it->second.pending);
  it->second.pending.reset();
}

void Server::on_session_closed(const Session* session) {
  const auto it = sessions_.find(session);
  if (it != sessions_.end()) {
    if (it->second.pending) pending_.erase(*it->second.pending);
    if (it->second.evicted) --evicted_closing_;
    sessions_.erase(it);
  }
  maybe_stopped();
}

void Server::stop(std::function<void()> on_stopped) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  for (const auto& listener : listeners_) {
    boost::system::error_code ignored;
    listener->acceptor.close(ignored);
    listener->retry.cancel();
  }
  for (const auto& [key, entry] : sessions_) entry.session->stop_reading();
  stop_timer_.expires_after(options_.shutdown_timeout);
  stop_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || sessions_.empty()) return;
    net_log()->warn("shutdown timeout: closing sessions={}", sessions_.size());
    std::vector<std::shared_ptr<Session>> remaining;
    remaining.reserve(sessions_.size());
    for (const auto& [key, entry] : sessions_) remaining.push_back(entry.session);
    for (const auto& s : remaining) s->close();
  });
  maybe_stopped();
}

void Server::maybe_stopped() {
  if (!stopping_ || !sessions_.empty() || !on_stopped_) return;
  stop_timer_.cancel();
  groups_.stop();
  // Every connection is gone: queue each group's latest progress, so acks batched behind a
  // write still in flight are not lost when the io loop ends (the broker writes group
  // progress even while it stops).
  groups_.groups().write_all_on_stop();
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  done();
}

}  // namespace loft::net
