// Logins and permissions of a NATS connection (docs/nats.md, "Users and permissions").
//
// With users, CONNECT must carry `user` and `pass`; the password is checked with the auth
// module (on the slow executor unless the Authenticator remembers it), bounded by the
// shared PasswordCheckLimiter, and a failure is -ERR 'Authorization Violation' and a close, as
// from nats-server. PUB needs the user's publish permission on the subject, SUB its subscribe
// permission on the subscription's subject (both taken as topic names for the pattern check);
// two exceptions keep request/reply usable: a subscription to a private inbox
// (`_INBOX.<token>...`, the token not a wildcard), and a publish to an `_INBOX.` subject that
// reached this connection as the reply subject of a message.

#include <boost/asio/post.hpp>
#include <optional>
#include <utility>

#include "loft/auth/login_limits.hpp"
#include "loft/nats/error.hpp"
#include "log.hpp"
#include "session.hpp"

namespace loft::natsport {

namespace asio = boost::asio;

namespace {

constexpr std::uint8_t kPublish = 1;
constexpr std::uint8_t kSubscribe = 2;
// A client that names ever new subjects cannot grow the cache without bound.
constexpr std::size_t kMaxCachedSubjects = 4096;
// Reply subjects a connection may answer: the most recent ones it received.
constexpr std::size_t kMaxReplies = 1024;
constexpr std::string_view kInboxPrefix = "_INBOX.";
// A push consumer's flow-control request carries one of these as its reply subject; the
// subscriber it reached answers there (js_push.cpp).
constexpr std::string_view kFlowControlPrefix = "$JS.FC.";

// `_INBOX.<token>` or `_INBOX.<token>.<more>`, the token not a wildcard: an inbox whose name its
// owner chose (clients draw a random one), not a wildcard over everybody's replies.
bool is_private_inbox(std::string_view subject) {
  if (!subject.starts_with(kInboxPrefix)) return false;
  const auto rest = subject.substr(kInboxPrefix.size());
  const auto token = rest.substr(0, rest.find('.'));
  return !token.empty() && token != "*" && token != ">";
}

}  // namespace

void Session::start_login(std::string user, std::string password) {
  const auto& security = context_.options.security;
  if (!auth::password_allowed({tls_established_, peer_is_loopback_},
                              security.allow_plaintext_passwords)) {
    return on_login(user, fail(Errc::authentication_failed,
                               "a password over a plaintext connection from a non-loopback "
                               "address (allow_plaintext_passwords is off)"));
  }
  if (auto known = security.authenticator->remembered(user, password)) {
    return on_login(user, std::move(known));
  }
  auto permit = security.password_checks->try_begin(peer_address_);
  if (!permit) {
    // Nothing was checked: not a failed login. NATS clients reconnect by themselves.
    return fatal(nats::kErrAuthorizationViolation,
                 "too many password checks in progress (from this address or overall)");
  }
  // The check holds the session only weakly: one that closes meanwhile (handshake timeout,
  // eviction) is neither kept alive nor checked. The permit travels with the check and back.
  auth_pending_ = true;
  asio::post(security.slow_executor,
             [weak = weak_from_this(), permit = std::move(*permit), home = socket_.get_executor(),
              authenticator = security.authenticator, user = std::move(user),
              password = std::move(password)]() mutable {
               std::optional<Result<std::shared_ptr<const auth::User>>> result;
               if (!weak.expired()) result = authenticator->verify(user, password);
               password.assign(password.size(), '\0');
               asio::post(home, [weak, permit = std::move(permit), user = std::move(user),
                                 result = std::move(result)]() mutable {
                 permit.release();
                 const auto self = weak.lock();
                 if (!self || !result) return;
                 self->auth_pending_ = false;
                 self->on_login(user, std::move(*result));
                 self->read_signal_.cancel();
                 self->write_signal_.cancel();  // a writer waiting for the login to end
               });
             });
}

void Session::on_login(const std::string& name, Result<std::shared_ptr<const auth::User>> result) {
  if (closed_ || fatal_) return;
  if (result) {
    // A reload while the password was being checked: admit only what the current file says.
    const auto users = context_.options.security.authenticator->users();
    const auth::User* now = users->find((*result)->name);
    if (now == nullptr || !(*now == **result)) {
      result = fail(Errc::authentication_failed, "the users file changed during the login");
    }
  }
  if (!result) {
    ++context_.figures.auth_failed;
    nats_log()->warn("authentication failed peer={} user=\"{}\" reason=\"{}\"", peer_,
                     auth::loggable_name(name), result.error().detail);
    // Answered after the delay every port applies to a first failure (guessing is slow); the
    // reader takes no op meanwhile. A NATS connection gets one attempt.
    auth_pending_ = true;
    auth_delay_.expires_after(auth::login_failure_delay(1));
    auth_delay_.async_wait([self = shared_from_this()](boost::system::error_code) {
      self->auth_pending_ = false;
      self->fatal(nats::kErrAuthorizationViolation, "login failed");
    });
    return;
  }
  user_ = std::move(*result);
  grants_.clear();
  ++context_.figures.auth_succeeded;
  nats_log()->info("authenticated peer={} user=\"{}\" name=\"{}\"", peer_,
                   auth::loggable_name(user_->name), auth::loggable_name(name_));
  admit();
  if (verbose_) send_ok();
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
  fatal(nats::kErrAuthorizationViolation, "user removed or changed by a reload of the users file");
}

bool Session::allowed(auth::Operation op, std::string_view subject) {
  if (!users_required()) return true;
  if (user_ == nullptr) return false;
  const std::uint8_t bit = op == auth::Operation::publish ? kPublish : kSubscribe;
  if (const auto it = grants_.find(subject); it != grants_.end()) return (it->second & bit) != 0;
  const auto& p = user_->permissions;
  std::uint8_t bits = 0;
  if (p.allows(auth::Operation::publish, subject)) bits |= kPublish;
  if (p.allows(auth::Operation::subscribe, subject)) bits |= kSubscribe;
  if (grants_.size() >= kMaxCachedSubjects) grants_.clear();
  grants_.emplace(std::string(subject), bits);
  return (bits & bit) != 0;
}

bool Session::may_publish(std::string_view subject) {
  return allowed(auth::Operation::publish, subject) || reply_set_.contains(subject);
}

bool Session::may_subscribe(std::string_view subject) {
  return allowed(auth::Operation::subscribe, subject) || is_private_inbox(subject);
}

void Session::remember_reply(std::string_view reply) {
  if (!users_required() || reply_set_.contains(reply)) return;
  if (!reply.starts_with(kInboxPrefix) && !reply.starts_with(kFlowControlPrefix)) return;
  if (replies_.size() >= kMaxReplies) {
    reply_set_.erase(replies_.front());
    replies_.pop_front();
  }
  replies_.emplace_back(reply);
  reply_set_.insert(replies_.back());
}

}  // namespace loft::natsport
