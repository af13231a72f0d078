#include "loft/natsport/server.hpp"

#include <boost/json/object.hpp>
#include <random>
#include <vector>

#include "loft/nats/error.hpp"
#include "loft/tls/tls.hpp"
#include "log.hpp"
#include "session.hpp"

namespace loft::natsport {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kLogInterval = std::chrono::seconds(10);
constexpr std::string_view kErrMaxConnections = "maximum connections exceeded";

// A server id in the shape of nats-server's (upper-case letters and digits), drawn at start.
std::string random_server_id() {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::random_device device;
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string id = "LOFT";
  while (id.size() < 56) id += kAlphabet[pick(device)];
  return id;
}

// At most once per kLogInterval: true when it is time to log, and then `at` moves on.
bool due(std::chrono::steady_clock::time_point& at) {
  const auto now = std::chrono::steady_clock::now();
  if (at != std::chrono::steady_clock::time_point{} && now - at < kLogInterval) return false;
  at = now;
  return true;
}

}  // namespace

Server::Server(asio::io_context& io, ServerOptions options)
    : io_(io),
      options_(std::move(options)),
      context_(std::make_unique<SessionContext>(
          SessionContext{options_, Router{}, Figures{}, boost::json::object{},
                         [this](const Session* s) { on_admitted(s); },
                         [this](const Session* s) { on_closed(s); }, nullptr, nullptr})),
      acceptor_(io),
      retry_(io),
      pings_(io),
      stop_timer_(io) {
  if (options_.jetstream.broker != nullptr) {
    context_->js =
        std::make_unique<js::Api>(context_->router, *options_.jetstream.broker, io.get_executor());
    if (options_.jetstream.groups != nullptr) {
      context_->consumers = std::make_unique<js::Consumers>(
          *context_->js, *options_.jetstream.groups, options_.jetstream.groups_changed,
          io.get_executor(), options_.server_name);
      context_->consumers->attach();
    }
  }
  if (!options_.security.password_checks) {
    options_.security.password_checks = std::make_shared<auth::PasswordCheckLimiter>();
  }
}

Server::~Server() = default;

tcp::endpoint Server::listen(const std::string& host, std::uint16_t port, tls::ServerContext* tls) {
  tls_ = tls;
  tcp::resolver resolver(io_);
  const tcp::endpoint endpoint = *resolver.resolve(host, std::to_string(port)).begin();
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  auto bound = acceptor_.local_endpoint();

  auto& info = context_->info;
  const auto id = random_server_id();
  info["server_id"] = id;
  if (context_->js) context_->js->server_id = id;
  info["server_name"] = options_.server_name;
  info["version"] = options_.nats_version;
  info["proto"] = 1;
  info["host"] = bound.address().to_string();
  info["port"] = bound.port();
  info["headers"] = true;
  info["max_payload"] = options_.max_payload;
  if (options_.security.authenticator) info["auth_required"] = true;
  if (context_->js) info["jetstream"] = true;
  if (!options_.loft_version.empty()) info["loft_version"] = options_.loft_version;

  start_accept();
  arm_pings();
  return bound;
}

void Server::start_accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) return;
      // Out of file descriptors or memory: accepting again at once would spin. Wait a little.
      nats_log()->warn("accept failed error=\"{}\", retrying in 100ms", ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](boost::system::error_code e) {
        if (!e && !stopping_) start_accept();
      });
      return;
    }
    if (stopping_) return;
    accepted(std::move(socket));
    start_accept();
  });
}

void Server::accepted(tcp::socket socket) {
  // Room for the new connection comes out of the pending ones first (the oldest has had the
  // longest to send CONNECT), so a flood of silent sockets cannot lock out real clients.
  while (!pending_.empty() && pending_.size() >= options_.max_pending_connections) {
    evict_oldest_pending();
  }
  if (sessions_.size() >= options_.max_connections && !pending_.empty()) evict_oldest_pending();
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  auto session = std::make_shared<Session>(*context_, std::move(socket), next_client_id_++,
                                           tls_ != nullptr ? tls_->current() : nullptr);
  if (sessions_.size() >= options_.max_connections) {
    ++context_->figures.connections_refused;
    ++unlogged_refusals_;
    if (due(refusal_logged_at_)) {
      nats_log()->warn(
          "connection refused peer={} reason=max_connections max_connections={} "
          "refused={}",
          session->peer(), options_.max_connections, unlogged_refusals_);
      unlogged_refusals_ = 0;
    }
    // Each refusal holds a socket for up to its linger; beyond this many, close at once.
    constexpr std::size_t kMaxRefusing = 256;
    if (refusing_ >= kMaxRefusing) return session->close();
    ++refusing_;
    // Not in sessions_: its writer's end calls on_closed, which finds nothing but the count.
    session->refuse(kErrMaxConnections);
    return;
  }
  const Session* key = session.get();
  pending_.push_back(key);
  sessions_.emplace(key, Entry{session, std::prev(pending_.end())});
  session->start();
}

// No -ERR: the connection has not shown it speaks NATS. The oldest that shows no sign of a
// handshake (no bytes, no login under way) among the oldest few goes first, so new silent
// sockets do not close a real client in the middle of its login; without one, the oldest.
void Server::evict_oldest_pending() {
  constexpr std::size_t kLookAhead = 64;
  auto victim = pending_.begin();
  std::size_t looked = 0;
  for (auto it = pending_.begin(); it != pending_.end() && looked < kLookAhead; ++it, ++looked) {
    if (!sessions_.at(*it).session->shows_handshake()) {
      victim = it;
      break;
    }
  }
  const auto entry = sessions_.find(*victim);
  pending_.erase(victim);
  auto session = entry->second.session;
  sessions_.erase(entry);
  ++context_->figures.connections_evicted;
  ++unlogged_evictions_;
  if (due(eviction_logged_at_)) {
    nats_log()->warn(
        "pending connection closed peer={} pending={} max_pending_connections={} "
        "max_connections={} evicted={}",
        session->peer(), pending_.size(), options_.max_pending_connections,
        options_.max_connections, unlogged_evictions_);
    unlogged_evictions_ = 0;
  }
  session->close();
}

void Server::on_admitted(const Session* session) {
  const auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.pending) return;
  pending_.erase(*it->second.pending);
  it->second.pending.reset();
}

void Server::on_closed(const Session* session) {
  const auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    // A refused or evicted connection: only a refusal is still counted.
    if (session->refused()) --refusing_;
  } else {
    if (it->second.pending) pending_.erase(*it->second.pending);
    sessions_.erase(it);
  }
  maybe_stopped();
}

void Server::arm_pings() {
  pings_.expires_after(options_.ping_interval);
  pings_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    std::vector<std::shared_ptr<Session>> sessions;
    sessions.reserve(sessions_.size());
    for (const auto& [key, entry] : sessions_) sessions.push_back(entry.session);
    for (const auto& s : sessions) s->on_ping_interval();
    arm_pings();
  });
}

void Server::update_limits(const ServerOptions& options) {
  options_.max_connections = options.max_connections;
  options_.max_pending_connections = options.max_pending_connections;
  options_.handshake_timeout = options.handshake_timeout;
  options_.op_timeout = options.op_timeout;
  options_.security.allow_plaintext_passwords = options.security.allow_plaintext_passwords;
}

void Server::on_users_reloaded() {
  std::vector<std::shared_ptr<Session>> sessions;
  sessions.reserve(sessions_.size());
  for (const auto& [key, entry] : sessions_) sessions.push_back(entry.session);
  for (const auto& s : sessions) s->recheck_user();
}

Figures Server::figures() const {
  Figures f = context_->figures;
  f.connections_open = sessions_.size();
  f.connections_pending = pending_.size();
  f.subscriptions = context_->router.size();
  return f;
}

void Server::stop(std::function<void()> on_stopped) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
  pings_.cancel();
  if (context_->consumers) context_->consumers->stop();
  for (const auto& [key, entry] : sessions_) entry.session->stop_reading();
  stop_timer_.expires_after(options_.shutdown_timeout);
  stop_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || sessions_.empty()) return;
    nats_log()->warn("shutdown timeout: closing sessions={}", sessions_.size());
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
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  done();
}

}  // namespace loft::natsport
