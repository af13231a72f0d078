// The ops of a NATS connection: CONNECT, PUB/HPUB, SUB, UNSUB, PING, PONG, answered as
// nats-server 2.9 answers them (docs/nats.md lists where loft differs).

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <variant>

#include "loft/nats/encode.hpp"
#include "loft/nats/headers.hpp"
#include "loft/nats/subject.hpp"
#include "log.hpp"
#include "session.hpp"

namespace loft::natsport {

namespace {

// Per connection, as nats-server's max_subscriptions would be (it has no limit by default;
// loft keeps memory bounded).
constexpr std::size_t kMaxSubscriptions = 65536;
constexpr std::string_view kErrMaxSubscriptions = "Maximum Subscriptions Exceeded";
constexpr std::string_view kErrNoRespondersNeedHeaders = "no responders requires headers support";

// What a client sends before `NATS/1.0` ... `\r\n\r\n`; the block itself is passed on as it is.
bool plausible_header_block(std::string_view block) {
  return block.starts_with("NATS/1.0") && block.ends_with("\r\n\r\n");
}

const std::string& no_responders_block() {
  static const std::string kBlock = [] {
    std::string b;
    nats::append_headers(b, nats::kStatusNoResponders, "", std::span<const Header>{});
    return b;
  }();
  return kBlock;
}

std::string violation(std::string_view what, std::string_view subject, std::string_view queue) {
  std::string text = "Permissions Violation for ";
  text += what;
  text += " to \"";
  text += subject;
  text += '"';
  if (!queue.empty()) {
    text += " using queue \"";
    text += queue;
    text += '"';
  }
  return text;
}

// CONNECT's options, read over the session's current ones. False when a known field has the
// wrong type (nats-server refuses such a CONNECT).
struct ConnectOptions {
  bool verbose, pedantic, echo, headers, no_responders;
  std::string name, lang, version, user, pass;
  bool has_token = false;  // auth_token, jwt or nkey: logins loft does not offer

  bool read(const boost::json::object& o) {
    for (const auto& [key, out] : {std::pair{"verbose", &verbose}, std::pair{"pedantic", &pedantic},
                                   std::pair{"echo", &echo}, std::pair{"headers", &headers},
                                   std::pair{"no_responders", &no_responders}}) {
      const auto* v = o.if_contains(key);
      if (v == nullptr || v->is_null()) continue;
      if (!v->is_bool()) return false;
      *out = v->get_bool();
    }
    for (const auto& [key, out] :
         {std::pair{"name", &name}, std::pair{"lang", &lang}, std::pair{"version", &version},
          std::pair{"user", &user}, std::pair{"pass", &pass}}) {
      const auto* v = o.if_contains(key);
      if (v == nullptr || v->is_null()) continue;
      if (!v->is_string()) return false;
      *out = std::string(v->get_string());
    }
    for (const char* key : {"auth_token", "jwt", "nkey", "sig"}) {
      const auto* v = o.if_contains(key);
      has_token = has_token || (v != nullptr && !v->is_null());
    }
    return true;
  }
};

}  // namespace

void Session::handle(const nats::Op& op) {
  if (!connected_ && !std::holds_alternative<nats::Connect>(op) && users_required()) {
    // As nats-server: with users, nothing but CONNECT comes first.
    return fatal(nats::kErrAuthorizationViolation, "an op before CONNECT");
  }
  if (const auto* c = std::get_if<nats::Connect>(&op)) return on_connect(c->json);
  if (const auto* p = std::get_if<nats::Pub>(&op))
    return on_pub(p->subject, p->reply, {}, p->payload);
  if (const auto* h = std::get_if<nats::HPub>(&op)) {
    if (!headers_) {
      return fatal(nats::kErrUnknownOperation, "HPUB without headers in CONNECT");
    }
    // nats.js sends `HPUB subject reply 0 n` for a message without headers (js.publish does):
    // nats-server takes it as a message without headers, and so does loft.
    if (!h->headers.empty() && !plausible_header_block(h->headers)) {
      return send_err(nats::kErrBadHeader);
    }
    return on_pub(h->subject, h->reply, h->headers, h->payload);
  }
  if (const auto* s = std::get_if<nats::Sub>(&op)) return on_sub(*s);
  if (const auto* u = std::get_if<nats::Unsub>(&op)) return on_unsub(*u);
  if (std::holds_alternative<nats::Ping>(op)) {
    auto& o = out();
    const std::size_t before = o.size();
    nats::append_pong(o);
    return queued(o.size() - before);
  }
  // PONG: the answer to our PING (read_more already counted the client as alive).
}

void Session::on_connect(std::string_view json) {
  boost::system::error_code ec;
  const auto value = boost::json::parse(json, ec);
  ConnectOptions o{verbose_, pedantic_, echo_, headers_, no_responders_, name_, {}, {}, {}, {}};
  if (ec || !value.is_object() || !o.read(value.get_object())) {
    return fatal(nats::kErrUnknownOperation,
                 "CONNECT options are not a JSON object of the "
                 "expected types");
  }
  if (o.no_responders && !o.headers) {
    return fatal(kErrNoRespondersNeedHeaders, "CONNECT with no_responders but not headers");
  }
  verbose_ = o.verbose;
  pedantic_ = o.pedantic;
  echo_ = o.echo;
  headers_ = o.headers;
  no_responders_ = o.no_responders;
  name_ = std::move(o.name);
  if (connected_) {
    // A second CONNECT changes the options, not who the connection is.
    if (verbose_) send_ok();
    return;
  }
  connected_ = true;
  nats_log()->debug("connect peer={} client_id={} name=\"{}\" lang=\"{}\" version=\"{}\"", peer_,
                    client_id_, auth::loggable_name(name_), auth::loggable_name(o.lang),
                    auth::loggable_name(o.version));
  if (!users_required()) {
    admit();
    if (verbose_) send_ok();
    return;
  }
  if (o.user.empty() && !peer_names_.empty()) {
    // A verified client certificate that names exactly one user logs in as that user; one
    // naming two different users logs in nobody (auth::Authenticator::identify).
    auto identity = context_.options.security.authenticator->identify(peer_names_);
    using Match = auth::CertificateIdentity::Match;
    if (identity.match == Match::ambiguous) {
      nats_log()->warn(
          "client certificate names more than one user, no certificate login peer={} names={} "
          "users={}",
          peer_, auth::loggable_names(peer_names_), auth::loggable_names(identity.users));
    } else if (identity.match != Match::none) {
      const std::string name = identity.user->name;
      return on_login(name, std::move(identity.user));
    }
  }
  if (o.user.empty() || o.has_token) {
    return on_login(o.user, fail(Errc::authentication_failed,
                                 o.has_token ? "a token, JWT or nkey login: loft has users with "
                                               "passwords only"
                                             : "CONNECT without user and pass"));
  }
  start_login(std::move(o.user), std::move(o.pass));
}

void Session::on_pub(std::string_view subject, std::string_view reply, std::string_view headers,
                     std::string_view payload) {
  if (!nats::is_valid_publish_subject(subject)) return send_err(nats::kErrInvalidPublishSubject);
  if (context_.js && !reply.empty() && subject.starts_with(js::kApiPrefix)) {
    // A JetStream API request: answered by the API, which checks the user's permissions on
    // the stream (docs/nats.md), not routed.
    if (verbose_) send_ok();
    return context_.js->handle(js::Request{std::string(subject), std::string(reply),
                                           std::string(headers), std::string(payload), user_,
                                           client_id_, weak_from_this()});
  }
  if (context_.js && context_.js->acks && subject.starts_with(js::kAckPrefix)) {
    // An ack of a JetStream delivery: the consumer side checks and settles it.
    if (verbose_) send_ok();
    return context_.js->acks(js::Request{std::string(subject), std::string(reply),
                                         std::string(headers), std::string(payload), user_,
                                         client_id_, weak_from_this()});
  }
  if (!may_publish(subject)) {
    nats_log()->debug("publish denied peer={} subject={}", peer_, auth::loggable_name(subject));
    return send_err(violation("Publish", subject, {}));
  }
  if (verbose_) send_ok();
  ++context_.figures.messages_in;
  context_.figures.bytes_in += headers.size() + payload.size();
  bool captured = false;
  if (context_.js) {
    // A subject a stream captures is stored (its PubAck, if asked for, comes once durable) and
    // also reaches the core subscribers, as in NATS.
    if (auto topic = context_.js->broker().topic_for_subject(subject)) {
      captured = true;
      context_.js->publish(std::move(*topic), subject, headers, payload, reply);
    }
  }
  const std::size_t reached =
      context_.router.publish(this, echo_, {subject, reply, headers, payload});
  if (reached == 0 && !captured && no_responders_ && !reply.empty()) no_responders(reply);
}

// The NATS no-responders message: a request nobody subscribed to is answered at once with an
// HMSG on its reply subject whose header block is the status line `NATS/1.0 503`, to the
// requester's own subscription that matches the reply subject.
void Session::no_responders(std::string_view reply) {
  for (const auto& [sid, handle] : subscriptions_) {
    const Subscription* sub = context_.router.find(handle);
    if (sub == nullptr || !nats::subject_matches(sub->subject, reply)) continue;
    context_.router.send_to(handle, Outbound{reply, {}, no_responders_block(), {}});
    return;
  }
}

void Session::on_sub(const nats::Sub& s) {
  if (!nats::is_valid_subscription_subject(s.subject) ||
      (!s.queue.empty() && !nats::is_valid_queue_group(s.queue))) {
    return send_err(nats::kErrInvalidSubject);
  }
  if (!may_subscribe(s.subject)) {
    nats_log()->debug("subscribe denied peer={} subject={}", peer_, auth::loggable_name(s.subject));
    return send_err(violation("Subscription", s.subject, s.queue));
  }
  if (!subscriptions_.contains(std::string(s.sid))) {
    // A sid already in use is ignored, as by nats-server.
    if (subscriptions_.size() >= kMaxSubscriptions) return send_err(kErrMaxSubscriptions);
    auto handle = context_.router.subscribe(*this, s.sid, s.subject, s.queue);
    if (!handle) return send_err(handle.error().text());
    subscriptions_.emplace(std::string(s.sid), *handle);
  }
  if (verbose_) send_ok();
}

void Session::on_unsub(const nats::Unsub& u) {
  // An unknown sid is not an error (the subscription may have just reached its max).
  if (const auto it = subscriptions_.find(std::string(u.sid)); it != subscriptions_.end()) {
    Subscription* sub = context_.router.find(it->second);
    if (sub != nullptr && u.max_msgs && *u.max_msgs > sub->delivered) {
      // UNSUB with a max counts what was delivered already, as nats-server does.
      sub->max = *u.max_msgs;
    } else {
      context_.router.unsubscribe(it->second);
      subscriptions_.erase(it);
    }
  }
  if (verbose_) send_ok();
}

}  // namespace loft::natsport
