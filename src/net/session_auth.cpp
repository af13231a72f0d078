// Authentication and permissions of a binary-protocol connection (docs/security.md).
//
// A server with users (Security::authenticator) admits a connection's requests only after it
// has authenticated: AUTHENTICATE with a password (checked on the slow executor, never on the
// io thread), or a client certificate that names a user. Each request is then checked against
// the user's permissions for its topic; the answer is kept per topic for the life of the
// connection (a reload that changes the user closes the connection instead of re-resolving).

#include <boost/asio/post.hpp>
#include <optional>
#include <string>
#include <utility>

#include "log.hpp"
#include "session.hpp"

namespace loft::net {

namespace asio = boost::asio;

namespace {

// Bits of Session::grants().
constexpr std::uint8_t kPublish = 1;
constexpr std::uint8_t kSubscribe = 2;
constexpr std::uint8_t kAdmin = 4;
constexpr std::uint8_t kSee = 8;
constexpr std::uint8_t kResolved = 16;
// A client that names ever new topics cannot grow the cache without bound.
constexpr std::size_t kMaxCachedTopics = 4096;

constexpr std::uint8_t bit_of(auth::Operation op) {
  switch (op) {
    case auth::Operation::publish:
      return kPublish;
    case auth::Operation::subscribe:
      return kSubscribe;
    case auth::Operation::admin:
      return kAdmin;
  }
  return 0;
}

}  // namespace

std::uint8_t Session::grants(const std::string& topic) {
  if (!users_required()) return kPublish | kSubscribe | kAdmin | kSee | kResolved;
  if (user_ == nullptr) return kResolved;
  if (const auto it = grants_.find(topic); it != grants_.end()) return it->second;
  const auto& p = user_->permissions;
  std::uint8_t bits = kResolved;
  if (p.allows(auth::Operation::publish, topic)) bits |= kPublish;
  if (p.allows(auth::Operation::subscribe, topic)) bits |= kSubscribe;
  if (p.allows(auth::Operation::admin, topic)) bits |= kAdmin;
  if (p.may_see(topic)) bits |= kSee;
  if (grants_.size() >= kMaxCachedTopics) grants_.clear();
  grants_.emplace(topic, bits);
  return bits;
}

bool Session::permit(std::uint32_t cid, auth::Operation op, const std::string& topic) {
  if (!authenticated()) {
    send_error(cid, Error{Errc::unauthenticated,
                          "this server has users: send AUTHENTICATE after HELLO first"});
    return false;
  }
  if ((grants(topic) & bit_of(op)) != 0) return true;
  forbid(cid, auth::to_string(op), topic);
  return false;
}

bool Session::may_see(const std::string& topic) { return (grants(topic) & kSee) != 0; }

void Session::forbid(std::uint32_t cid, std::string_view what, const std::string& topic) {
  send_error(cid, Error{Errc::forbidden, "user '" + user_->name + "' may not " + std::string(what) +
                                             " topic '" + topic + "'"});
}

// A password that crossed the network in clear text is refused unless the operator allows it:
// TLS connections and loopback peers are fine.
bool Session::password_allowed_here() const {
  return auth::password_allowed({secure(), peer_is_loopback_},
                                context_.options.security.allow_plaintext_passwords);
}

void Session::authenticate_by_certificate() {
  if (!users_required() || peer_names_.empty() || user_ != nullptr) return;
  auto identity = context_.options.security.authenticator->identify(peer_names_);
  using Match = auth::CertificateIdentity::Match;
  if (identity.match == Match::none) {
    // Not a failure: the certificate was valid, it just names no user. AUTHENTICATE may follow.
    net_log()->info("client certificate names no user peer={} names={}", peer_,
                    auth::loggable_names(peer_names_));
    return;
  }
  if (identity.match == Match::ambiguous) {
    // Which user was meant cannot be told: no certificate login; AUTHENTICATE may follow.
    net_log()->warn(
        "client certificate names more than one user, no certificate login peer={} names={} "
        "users={}",
        peer_, auth::loggable_names(peer_names_), auth::loggable_names(identity.users));
    return;
  }
  user_ = std::move(identity.user);
  ++context_.auth_counters.succeeded;
  net_log()->info("authenticated peer={} user=\"{}\" mechanism=certificate", peer_,
                  auth::loggable_name(user_->name));
}

void Session::handle(std::uint32_t cid, protocol::Authenticate& req) {
  const auto& security = context_.options.security;
  if (!users_required()) {
    return send_error(cid, Error{Errc::invalid_request,
                                 "this server has no users (users_file is not set): every "
                                 "connection may do everything without AUTHENTICATE"});
  }
  if (user_ != nullptr) {
    return send_error(
        cid, Error{Errc::invalid_request, "already authenticated as '" + user_->name + "'"});
  }
  if (auth_pending_) {
    return send_error(cid, Error{Errc::invalid_request, "an AUTHENTICATE is already in progress"});
  }
  if (req.mechanism != "PLAIN") {
    return send_error(cid, Error{Errc::authentication_failed,
                                 "mechanism '" + auth::loggable_name(req.mechanism) +
                                     "' is not supported; this server supports PLAIN"});
  }
  if (!password_allowed_here()) {
    log_auth_failure("", "plaintext password from a non-loopback address");
    return send_error(cid, Error{Errc::authentication_failed,
                                 "a password over a plaintext connection from a non-loopback "
                                 "address is refused: connect to the TLS listener (tls_listen)"});
  }
  auto credentials = auth::parse_plain(req.payload);
  if (!credentials) {
    return on_verified(
        cid, "", tl::unexpected(Error{Errc::authentication_failed, credentials.error().detail}));
  }
  // The check runs on the slow executor; the session stays alive (self) and counts it in
  // flight, so a shutdown waits for it like for any other request.
  // Known user and password: answered on this thread, no queue.
  if (auto user = security.authenticator->remembered(credentials->user, credentials->password)) {
    return on_verified(cid, credentials->user, std::move(user));
  }
  auto permit = security.password_checks->try_begin(peer_address_);
  if (!permit) {
    // Not a failed login (nothing was checked): the client may try again shortly.
    return send_error(cid, Error{Errc::authentication_failed,
                                 "too many password checks in progress (from " + peer_address_ +
                                     " or overall); try again shortly"});
  }
  // The check runs on the slow executor. It holds the session only weakly: a connection that
  // closes meanwhile (a handshake timeout, an eviction) is neither kept alive nor waited for,
  // and a check whose connection is gone is skipped. Not counted in inflight_, so a timeout
  // closes the connection at once.
  // The permit travels with the check and back, and is released with the answer.
  auth_pending_ = true;
  asio::post(security.slow_executor, [weak = weak_from_this(), cid, permit = std::move(*permit),
                                      executor = stream_.get_executor(),
                                      authenticator = security.authenticator,
                                      credentials = std::move(*credentials)]() mutable {
    std::optional<Result<std::shared_ptr<const auth::User>>> result;
    if (!weak.expired()) result = authenticator->verify(credentials.user, credentials.password);
    credentials.password.assign(credentials.password.size(), '\0');
    asio::post(executor, [weak, cid, permit = std::move(permit), name = std::move(credentials.user),
                          result = std::move(result)]() mutable {
      permit.release();
      const auto self = weak.lock();
      if (!self || !result) return;
      self->auth_pending_ = false;
      self->on_verified(cid, name, std::move(*result));
      self->read_signal_.cancel();
      self->write_signal_.cancel();
    });
  });
}

void Session::on_verified(std::uint32_t cid, const std::string& name,
                          Result<std::shared_ptr<const auth::User>> result) {
  if (closed_) return;
  if (result) {
    // A reload while the password was being checked: admit only what the current file says.
    const auto users = context_.options.security.authenticator->users();
    const auth::User* now = users->find((*result)->name);
    if (now == nullptr || !(*now == **result)) {
      result = tl::unexpected(
          Error{Errc::authentication_failed, "the users file changed during the login; try again"});
    }
  }
  if (result) {
    user_ = std::move(*result);
    grants_.clear();
    ++context_.auth_counters.succeeded;
    net_log()->info("authenticated peer={} user=\"{}\" mechanism=PLAIN", peer_,
                    auth::loggable_name(name));
    admit();
    return send(cid, protocol::AuthenticateOk{user_->name});
  }
  ++auth_failures_;
  ++context_.auth_counters.failed;
  log_auth_failure(name, result.error().detail);
  if (auth_failures_ >= context_.options.security.max_auth_failures) {
    return fatal(cid, Error{Errc::auth_failures,
                            std::to_string(auth_failures_) +
                                " failed AUTHENTICATE attempts; closing the connection"});
  }
  // Answered after a delay that grows with each failure: guessing is slow, and while the
  // answer waits no second attempt is taken (auth_pending_).
  auth_pending_ = true;
  ++inflight_;
  auth_delay_.expires_after(auth::login_failure_delay(auth_failures_));
  auth_delay_.async_wait(
      [self = shared_from_this(), cid, error = result.error()](boost::system::error_code) {
        --self->inflight_;
        self->auth_pending_ = false;
        self->send_error(cid, error);
        self->read_signal_.cancel();
        self->write_signal_.cancel();
      });
}

// One line per failure: the peer and the user name as sent, never the password.
void Session::log_auth_failure(const std::string& name, const std::string& reason) {
  net_log()->warn("authentication failed peer={} user=\"{}\" failures={} reason=\"{}\"", peer_,
                  auth::loggable_name(name), auth_failures_, reason);
}

void Session::recheck_user() {
  if (user_ == nullptr || closed_) return;
  const auto users = context_.options.security.authenticator->users();
  const auth::User* now = users->find(user_->name);
  if (now != nullptr && *now == *user_) {
    // Same user, same rights: hold the new file's entry so the old file can be freed.
    user_ = std::shared_ptr<const auth::User>(users, now);
    return;
  }
  net_log()->info("closing connection peer={} user=\"{}\" reason=\"user changed by a reload\"",
                  peer_, auth::loggable_name(user_->name));
  fatal(0, Error{Errc::unauthenticated, "user '" + user_->name +
                                            "' was removed or changed by a reload of the users "
                                            "file; connect and authenticate again"});
}

}  // namespace loft::net
