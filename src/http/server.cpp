#include "loft/http/server.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <utility>

#include "loft/http/access.hpp"
#include "loft/http/json.hpp"
#include "loft/tls/tls.hpp"

namespace loft::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

namespace {

// Bytes the read buffer may hold: a whole header (bounded below it) plus a chunk of body;
// the body itself goes into the request, bounded by the parser's body limit.
constexpr std::size_t kReadBufferBytes = std::size_t{64} * 1024;
// What a closing connection still reads (and drops) after an error response.
constexpr std::size_t kLingerBytes = std::size_t{1024} * 1024;

std::shared_ptr<spdlog::logger> http_log() {
  static auto log = [] {
    auto existing = spdlog::get("http");
    return existing ? existing : spdlog::default_logger()->clone("http");
  }();
  return log;
}

Response json_response(unsigned status, std::string body, unsigned version) {
  Response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

Response error_response(const Error& error, unsigned version) {
  return json_response(status_of(error.code), error_json(error), version);
}

// A login that could not be checked now (the password-check limiter is full): 503, the error
// body, and Retry-After, so that a client tries again shortly rather than at once.
Response retry_later_response(const Error& error, unsigned version) {
  auto res = error_response(error, version);
  res.result(bhttp::status::service_unavailable);
  res.set(bhttp::field::retry_after, "1");
  return res;
}

// Runs `start(done)` (a broker call whose `done` runs on the writer thread) and resumes the
// awaiting coroutine on `ex` with the result.
template <class T, class Start>
asio::awaitable<Result<T>> on_io_thread(asio::any_io_executor ex, Start start) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result<T>)>(
      [ex, start = std::move(start)](auto handler) mutable {
        // std::function needs a copyable callback; the handler is move-only.
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        start([ex, h](Result<T> r) {
          asio::post(ex, [h, r = std::move(r)]() mutable { std::move (*h)(std::move(r)); });
        });
      },
      asio::use_awaitable);
}

// Runs `fn` on `ex` (the slow executor) and resumes the awaiting coroutine on its own
// executor with the result.
template <class T, class Fn>
asio::awaitable<T> off_io_thread(asio::any_io_executor ex, Fn fn) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [ex, fn = std::move(fn)](auto handler) mutable {
        asio::post(ex, [fn = std::move(fn), handler = std::move(handler)]() mutable {
          T result = fn();
          auto home = asio::get_associated_executor(handler);
          asio::post(home, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      asio::use_awaitable);
}

std::optional<std::uint64_t> resident_memory_bytes() {
  // statm: total program size, then resident set size, both in pages.
  std::ifstream in("/proc/self/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (!(in >> size >> resident)) return std::nullopt;
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) return std::nullopt;
  return resident * static_cast<std::uint64_t>(page);
}

}  // namespace

// For a plain HTTP request to the HTTPS port.
Response plain_on_tls_port_response() {
  auto res = error_response(
      Error{Errc::invalid_request, "this port speaks HTTPS (http_tls = true): use https://"}, 11);
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

bool ready(const broker::Broker& broker) {
  return broker.accepting_requests() && broker.storage_health().writable;
}

// The answer to a request that could not be read, if it deserves one (not for a closed or
// timed-out connection). Closes the connection.
//
// Coroutine note: g++ 12 mis-compiles non-trivial temporaries (strings, Errors, lambdas with
// captures) inside a co_await expression: it double-frees them. So responses and callbacks are
// built in plain functions or named locals, and only moved into the awaited call.
std::optional<Response> read_error_response(beast::error_code ec, const ServerOptions& o) {
  std::optional<Response> res;
  if (ec == bhttp::error::body_limit) {
    res = error_response(
        Error{Errc::message_too_large, "the request body is larger than max_frame_size (" +
                                           std::to_string(o.max_body_bytes) + " bytes)"},
        11);
  } else if (ec == bhttp::error::header_limit) {
    res = error_response(
        Error{Errc::invalid_request,
              "the request header is larger than " + std::to_string(o.max_header_bytes) + " bytes"},
        11);
    res->result(bhttp::status::request_header_fields_too_large);
  } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
             ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    res =
        error_response(Error{Errc::invalid_request, "malformed HTTP request: " + ec.message()}, 11);
  }
  if (res) res->keep_alive(false);
  return res;
}

// One HTTP connection, on the io thread. Owned by the Server's set while it runs. This part
// answers requests (routing, users, the endpoints) whatever the stream; StreamConnection
// below reads and writes them over plain TCP or TLS.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, const tcp::socket& socket, bool secure)
      : server_(server), secure_(secure) {
    beast::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (ec) return;
    peer_ = peer.address().to_string() + ":" + std::to_string(peer.port());
    peer_address_ = peer.address().to_string();
    auto address = peer.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    peer_is_loopback_ = address.is_loopback();
  }
  virtual ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  virtual asio::awaitable<void> run() = 0;
  // Stop: an idle connection closes now; one answering a request (a publish waiting for its
  // confirm) finishes that answer, without keep-alive, and then closes.
  virtual void close() = 0;

 protected:
  using User = std::shared_ptr<const auth::User>;

  // For the stream part (friendship with Server is not inherited).
  const ServerOptions& options() const { return server_.options_; }
  bool stopping() const { return server_.stopping_; }
  void forget() { server_.connections_.erase(shared_from_this()); }

  asio::awaitable<Response> handle(const Request& req) {
    const unsigned v = req.version();
    auto r = route(req.target());
    if (!r) {
      // invalid_request would be a 400: a path that names nothing is a 404.
      auto res = error_response(
          Error{Errc::invalid_request, "no endpoint at '" + std::string(req.target()) + "'"}, v);
      res.result(bhttp::status::not_found);
      co_return res;
    }
    const auto endpoint = endpoint_for(r->endpoint, req.method_string());
    if (!endpoint) {
      const std::string_view allowed = allowed_methods(r->endpoint);
      auto res = error_response(
          Error{Errc::invalid_request, "method " + std::string(req.method_string()) +
                                           " is not allowed here; use " + std::string(allowed)},
          v);
      res.result(bhttp::status::method_not_allowed);
      res.set(bhttp::field::allow, allowed);
      co_return res;
    }
    r->endpoint = *endpoint;
    const auto& security = server_.options_.security;
    User user;  // null: the server has no users, or the endpoint is open
    if (security.authenticator != nullptr &&
        access_of(r->endpoint, security.metrics == MetricsAccess::users) != Access::open) {
      retry_later_ = false;
      auto who = co_await authenticate(req);
      if (!who && retry_later_) co_return retry_later_response(who.error(), v);
      if (!who) co_return error_response(who.error(), v);
      user = std::move(*who);
      if (auto permitted = authorize(*user, *r); !permitted) {
        co_return error_response(permitted.error(), v);
      }
    }
    auto& broker = server_.sources_.broker;
    switch (r->endpoint) {
      case Endpoint::metrics:
        co_return metrics(v, user);
      case Endpoint::healthz:
        co_return json_response(200, R"({"status":"alive"})", v);
      case Endpoint::readyz:
        if (ready(broker) && !server_.stopping_) {
          co_return json_response(200, R"({"status":"ready"})", v);
        }
        co_return error_response(Error{Errc::shutting_down, "the broker is not taking writes"}, v);
      case Endpoint::topics: {
        json::array out;
        for (const auto& m : broker.list_topics()) {
          if (user == nullptr || user->permissions.may_see(m.name)) out.push_back(topic_json(m));
        }
        co_return json_response(200, json::serialize(out), v);
      }
      case Endpoint::topic: {
        auto meta = broker.describe_topic(r->topic);
        if (!meta) co_return error_response(meta.error(), v);
        co_return json_response(200, json::serialize(topic_json(*meta)), v);
      }
      case Endpoint::topic_groups: {
        auto groups = server_.sources_.groups.list_groups(r->topic);
        if (!groups) co_return error_response(groups.error(), v);
        json::array out;
        for (const auto& g : *groups) out.push_back(group_json(g));
        co_return json_response(200, json::serialize(out), v);
      }
      case Endpoint::topic_messages:
        co_return co_await publish(r->topic, req);  // both outlive the call
      case Endpoint::create_topic:
        co_return co_await create_topic(r->topic, req);
      case Endpoint::delete_topic:
        co_return co_await delete_topic(r->topic, v);
    }
    co_return error_response(Error{Errc::internal_error, "unhandled endpoint"}, v);
  }

  // The user of a request's Basic credentials. A failed login is answered after a delay that
  // grows with each failure of the connection, and the max_auth_failures-th closes it:
  // guessing is slow (a new connection starts again, but each costs a password check too).
  asio::awaitable<Result<User>> authenticate(const Request& req) {
    const auto failures_before = auth_failures_;
    auto result = co_await check_credentials(req);
    if (auth_failures_ != failures_before) {
      auto ex = co_await asio::this_coro::executor;
      asio::steady_timer delay(ex);
      delay.expires_after(auth::login_failure_delay(auth_failures_));
      std::ignore = co_await delay.async_wait(kUseTuple);  // cancelled: answer now
      const auto max = server_.options_.security.max_auth_failures;
      if (max > 0 && auth_failures_ >= max) close_after_response_ = true;
    }
    co_return result;
  }

  // The user of the request: its client certificate's (certificate_user), or its Basic
  // credentials', checked on the slow executor. Every request with credentials counts as one
  // login, successful or failed; each failure is one log line with the peer and the user name
  // as sent, never the password. A password check beyond the shared limiter is refused without
  // counting as a failure (retry_later_: 503).
  asio::awaitable<Result<User>> check_credentials(const Request& req) {
    const auto& security = server_.options_.security;
    const auto header = req[bhttp::field::authorization];
    if (auto by_certificate = certificate_user()) {
      auto result = certificate_login(std::move(by_certificate), header);
      co_return result;
    }
    if (header.empty()) {
      co_return fail(Errc::unauthenticated,
                     "this server has users: send HTTP Basic credentials (curl -u USER)");
    }
    if (!auth::password_allowed({secure_, peer_is_loopback_}, security.allow_plaintext_passwords)) {
      auto refused = Error{Errc::authentication_failed,
                           "a password over plain HTTP from a non-loopback address is refused: "
                           "use HTTPS (http_tls = true)"};
      on_login_failed("", "plaintext password from a non-loopback address");
      co_return tl::unexpected(std::move(refused));
    }
    auto credentials = parse_basic_authorization(header);
    if (!credentials) {
      on_login_failed("", credentials.error().detail);
      co_return tl::unexpected(std::move(credentials.error()));
    }
    const std::string name = credentials->user;
    // A password verified before is answered here, without the queue or a hash.
    if (auto known = security.authenticator->remembered(credentials->user, credentials->password)) {
      ++server_.auth_counters_.succeeded;
      co_return known;
    }
    auto permit = security.password_checks->try_begin(peer_address_);
    if (!permit) {
      retry_later_ = true;
      co_return fail(Errc::authentication_failed, "too many password checks in progress (from " +
                                                      peer_address_ +
                                                      " or overall); try again shortly");
    }
    auto check = [authenticator = security.authenticator,
                  credentials = std::move(*credentials)]() mutable {
      auto result = authenticator->verify(credentials.user, credentials.password);
      credentials.password.assign(credentials.password.size(), '\0');
      return result;
    };
    auto op = off_io_thread<Result<User>>(security.slow_executor, std::move(check));
    auto result = co_await std::move(op);
    permit->release();
    if (!result) {
      on_login_failed(name, result.error().detail);
      co_return result;
    }
    ++server_.auth_counters_.succeeded;
    co_return result;
  }

  // With users, over HTTPS: the user the verified client certificate names (one user exactly:
  // auth::Authenticator::identify, the binary protocol's rule), or null. Resolved per request
  // (a users reload applies at once); logged once per connection, and again if the answer
  // changes.
  User certificate_user() {
    if (peer_names_.empty()) return nullptr;
    auto identity = server_.options_.security.authenticator->identify(peer_names_);
    if (identity.match != logged_match_) {
      logged_match_ = identity.match;
      using Match = auth::CertificateIdentity::Match;
      if (identity.match == Match::ambiguous) {
        http_log()->warn(
            "client certificate names more than one user, no certificate login peer={} names={} "
            "users={}",
            peer_, auth::loggable_names(peer_names_), auth::loggable_names(identity.users));
      } else if (identity.match == Match::none) {
        http_log()->info("client certificate names no user peer={} names={}", peer_,
                         auth::loggable_names(peer_names_));
      } else {
        ++server_.auth_counters_.succeeded;
        http_log()->info("authenticated peer={} user=\"{}\" mechanism=certificate", peer_,
                         auth::loggable_name(identity.user->name));
      }
    }
    return std::move(identity.user);
  }

  // A request with a certificate's user: Basic credentials, when present too, must name the
  // same user (their password is not checked: the certificate proves the user), else 401.
  Result<User> certificate_login(User user, std::string_view authorization) {
    if (authorization.empty()) return user;
    auto credentials = parse_basic_authorization(authorization);
    if (credentials && credentials->user == user->name) return user;
    const std::string named = credentials ? credentials->user : std::string();
    on_login_failed(named, "the Basic credentials name another user than the client certificate");
    return fail(Errc::authentication_failed,
                "the Basic credentials name another user than the client certificate ('" +
                    user->name + "'): send none, or the certificate's user");
  }

  void set_peer_names(std::vector<std::string> names) { peer_names_ = std::move(names); }

  void on_login_failed(const std::string& name, const std::string& reason) {
    ++server_.auth_counters_.failed;
    ++auth_failures_;
    http_log()->warn("authentication failed peer={} user=\"{}\" failures={} reason=\"{}\"", peer_,
                     auth::loggable_name(name), auth_failures_, reason);
  }

  // With metrics_auth = "users", `user` is who asked: per-topic and per-group series only for
  // the topics the user may see (as GET /v1/topics lists them). Null: everything.
  Response metrics(unsigned version, const User& user) {
    auto& broker = server_.sources_.broker;
    MetricsSnapshot s;
    for (const auto& m : broker.list_topics()) s.topics.push_back(m.name);
    s.broker = broker.metrics();
    s.groups = server_.sources_.groups.metrics();
    s.store = broker.store_stats();
    s.storage_health = broker.storage_health();
    if (server_.sources_.net) s.net = server_.sources_.net();
    // Logins are counted over both front ends.
    s.net.auth_succeeded += server_.auth_counters_.succeeded;
    s.net.auth_failed += server_.auth_counters_.failed;
    s.resident_bytes = resident_memory_bytes();
    if (user != nullptr) {
      keep_topics(s, [&](const std::string& topic) { return user->permissions.may_see(topic); });
    }
    Response res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = render_metrics(s);
    return res;
  }

  asio::awaitable<Response> publish(const std::string& topic, const Request& req) {
    const unsigned v = req.version();
    auto body = parse_publish_body(req.body(), server_.sources_.broker.now_ms());
    if (!body) co_return error_response(body.error(), v);
    // Named locals, not temporaries in the co_await expression (see read_error_response).
    // The broker checks the messages against its limits, as for every front end.
    auto messages = std::make_shared<std::vector<Message>>(std::move(body->messages));
    auto* broker = &server_.sources_.broker;
    auto start = [broker, topic, messages](broker::Callback<broker::Appended> done) {
      broker->publish(topic, std::move(*messages), std::move(done));
    };
    auto ex = co_await asio::this_coro::executor;
    auto op = on_io_thread<broker::Appended>(ex, std::move(start));
    auto appended = co_await std::move(op);
    if (!appended) co_return error_response(appended.error(), v);
    const auto& results = appended->results;
    if (!body->array && results.size() == 1 && results.front().code != Errc::ok) {
      co_return error_response(message_error(results.front().code), v);
    }
    co_return json_response(200, confirms_json(results, body->array), v);
  }

  // PUT /v1/topics/NAME: 201 with the new topic. A topic of that name already there is 200
  // with it when it has every setting the body gives (PUT is idempotent: a retried request
  // succeeds), 409 topic_exists otherwise.
  asio::awaitable<Response> create_topic(const std::string& topic, const Request& req) {
    const unsigned v = req.version();
    auto body = parse_topic_body(req.body());
    if (!body) co_return error_response(body.error(), v);
    auto* broker = &server_.sources_.broker;
    auto start = [broker, topic, settings = body->settings](broker::Callback<TopicInfo> done) {
      broker->create_topic(topic, settings, std::move(done));
    };
    auto ex = co_await asio::this_coro::executor;
    auto op = on_io_thread<TopicInfo>(ex, std::move(start));
    auto created = co_await std::move(op);
    if (created) co_return json_response(201, json::serialize(topic_json(*created)), v);
    if (created.error().code != Errc::topic_exists) co_return error_response(created.error(), v);
    auto existing = broker->describe_topic(topic);
    if (!existing) co_return error_response(existing.error(), v);  // deleted meanwhile
    if (!topic_matches(*body, *existing)) {
      co_return error_response(
          Error{Errc::topic_exists, "topic '" + topic + "' already exists with other settings"}, v);
    }
    co_return json_response(200, json::serialize(topic_json(*existing)), v);
  }

  // DELETE /v1/topics/NAME: 204, as DELETE_TOPIC (its messages and groups go with it).
  asio::awaitable<Response> delete_topic(const std::string& topic, unsigned v) {
    auto* broker = &server_.sources_.broker;
    auto start = [broker, topic](broker::Callback<void> done) {
      broker->delete_topic(topic, std::move(done));
    };
    auto ex = co_await asio::this_coro::executor;
    auto op = on_io_thread<void>(ex, std::move(start));
    auto deleted = co_await std::move(op);
    if (!deleted) co_return error_response(deleted.error(), v);
    Response res{bhttp::status::no_content, v};
    co_return res;
  }

  Server& server_;
  std::string peer_ = "unknown";
  std::string peer_address_ = "unknown";  // without the port: the limiter's key
  bool peer_is_loopback_ = false;
  std::vector<std::string> peer_names_;  // of a verified client certificate (HTTPS)
  // What certificate_user() last logged (nothing before the first request that needs a user).
  std::optional<auth::CertificateIdentity::Match> logged_match_;
  bool retry_later_ = false;  // the request's password check was refused by the limiter
  const bool secure_;         // TLS: a password here did not cross the network in clear text
  bool busy_ = false;
  std::uint32_t auth_failures_ = 0;
  bool close_after_response_ = false;  // too many failed logins
};

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A connection over a plain TCP stream or a TLS stream on one.
template <class Stream>
class StreamConnection final : public Connection {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  // REQUIRES: `context` for a TLS stream; ignored for plain TCP.
  StreamConnection(Server& server, tcp::socket socket,
                   std::shared_ptr<asio::ssl::context> context = nullptr)
      : Connection(server, socket, kTls),
        context_(std::move(context)),
        stream_(make_stream(std::move(socket), context_.get())),
        buffer_(kReadBufferBytes) {}

  asio::awaitable<void> run() override {
    try {
      if (co_await handshake()) co_await serve();
    } catch (const std::exception& e) {
      http_log()->error("connection failed peer={} reason={}", peer_, e.what());
    }
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_send, ignored);
    socket().close(ignored);
    forget();
  }

  void close() override {
    if (busy_) return;
    beast::error_code ignored;
    socket().close(ignored);
  }

 private:
  static Stream make_stream(tcp::socket socket, asio::ssl::context* context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *context);
    } else {
      (void)context;
      return Stream(std::move(socket));
    }
  }

  tcp::socket& socket() { return beast::get_lowest_layer(stream_).socket(); }
  void expires_after(std::chrono::steady_clock::duration d) {
    beast::get_lowest_layer(stream_).expires_after(d);
  }

  // HTTPS: the TLS handshake within request_timeout. A plain HTTP request to this port gets
  // a plain 400 saying so; a bad certificate or a silent peer is closed. One log line each.
  asio::awaitable<bool> handshake() {
    if constexpr (kTls) {
      expires_after(options().request_timeout);
      auto [detect_ec, is_tls] =
          co_await beast::async_detect_ssl(beast::get_lowest_layer(stream_), buffer_, kUseTuple);
      if (detect_ec) co_return false;  // closed or timed out before a byte
      if (!is_tls) {
        http_log()->warn("plain HTTP on the HTTPS port peer={}: answered 400 and closed", peer_);
        auto res = plain_on_tls_port_response();
        std::ignore = co_await bhttp::async_write(beast::get_lowest_layer(stream_), res,
                                                  kUseTuple);  // closing anyway
        co_return false;
      }
      auto [ec, used] = co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                                         buffer_.data(), kUseTuple);
      if (ec) {
        if (!stopping()) {
          http_log()->warn("tls handshake failed peer={} reason=\"{}\"", peer_, ec.message());
        }
        co_return false;
      }
      buffer_.consume(used);
      set_peer_names(tls::peer_names(stream_.native_handle()));
    }
    co_return true;
  }

  asio::awaitable<void> serve() {
    const auto& o = options();
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(o.max_header_bytes);
      parser.body_limit(o.max_body_bytes);
      expires_after(o.request_timeout);
      auto [ec, n] = co_await bhttp::async_read(stream_, buffer_, parser, kUseTuple);
      if (ec) {
        if constexpr (!kTls) {
          // A TLS ClientHello (record type 22) on the plain port: a plaintext answer would be
          // noise to that client; say so in the log and close.
          const auto pending = buffer_.data();
          if (pending.size() > 0 && *static_cast<const unsigned char*>(pending.data()) == 0x16) {
            http_log()->warn(
                "tls handshake on the plain HTTP port peer={}: closed (use http://, or set "
                "http_tls = true)",
                peer_);
            co_return;
          }
        }
        // Answer what we can name, then close: the rest of the stream cannot be trusted.
        if (auto answer = read_error_response(ec, o)) {
          http_log()->info("bad request peer={} reason=\"{}\"", peer_, ec.message());
          co_await write(std::move(*answer));
          co_await linger();
        }
        co_return;
      }
      Request req = parser.release();
      busy_ = true;
      Response res = co_await handle(req);
      res.set(bhttp::field::server, o.server_name);
      if (res.result() == bhttp::status::unauthorized) {
        res.set(bhttp::field::www_authenticate, kBasicChallenge);
      }
      res.keep_alive(req.keep_alive() && !stopping() && !close_after_response_);
      const bool written = co_await write(std::move(res));
      busy_ = false;
      if (!written) break;
      if (!req.keep_alive() || stopping()) break;
    }
    if constexpr (kTls) {
      // close_notify, so the client sees a clean end; bounded, a client may not answer it.
      expires_after(std::chrono::seconds(2));
      std::ignore = co_await stream_.async_shutdown(kUseTuple);  // closing anyway
    }
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the
  // error response before the client reads it. So: stop sending (plain TCP; TLS cannot
  // half-close), then read and drop what the client still sends, bounded in bytes and time,
  // until it closes.
  asio::awaitable<void> linger() {
    if constexpr (!kTls) {
      beast::error_code ignored;
      socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    expires_after(std::chrono::seconds(2));
    std::array<char, 4096> sink;
    for (std::size_t total = 0; total < kLingerBytes;) {
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(sink), kUseTuple);
      if (ec) break;
      total += n;
    }
  }

  // False when the connection must end (write failed or the response closes it).
  asio::awaitable<bool> write(Response res) {
    res.prepare_payload();  // Content-Length from the body
    const bool keep = res.keep_alive();
    expires_after(options().request_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream_, res, kUseTuple);
    co_return !ec && keep;
  }

  std::shared_ptr<asio::ssl::context> context_;  // outlives stream_, which uses it
  Stream stream_;
  beast::flat_buffer buffer_;
};

}  // namespace

Server::Server(asio::io_context& io, Sources sources, ServerOptions options)
    : io_(io), sources_(std::move(sources)), options_(std::move(options)), acceptor_(io) {
  if (options_.security.password_checks == nullptr) {
    options_.security.password_checks = std::make_shared<auth::PasswordCheckLimiter>();
  }
}

void Server::update_security(Security security) {
  if (security.password_checks == nullptr) {
    security.password_checks = options_.security.password_checks;
  }
  options_.security = std::move(security);
}

Server::~Server() = default;

tcp::endpoint Server::listen(const std::string& host, std::uint16_t port) {
  const tcp::endpoint endpoint{asio::ip::make_address(host), port};
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return acceptor_.local_endpoint();
}

asio::awaitable<void> Server::accept_loop() {
  asio::steady_timer retry(io_);
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
    if (stopping_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors and the like: wait a little instead of spinning.
      http_log()->warn("accept failed reason={}", ec.message());
      retry.expires_after(std::chrono::milliseconds(100));
      std::ignore = co_await retry.async_wait(kUseTuple);  // a cancelled wait just retries
      continue;
    }
    if (connections_.size() >= options_.max_connections) {
      http_log()->warn("connection refused reason=max_connections limit={}",
                       options_.max_connections);
      beast::error_code ignored;
      socket.close(ignored);
      continue;
    }
    std::shared_ptr<Connection> c;
    if (options_.tls_context) {
      auto context = options_.tls_context();
      if (context == nullptr) {
        http_log()->error("connection refused reason=no_tls_context");
        beast::error_code ignored;
        socket.close(ignored);
        continue;
      }
      c = std::make_shared<StreamConnection<TlsStream>>(*this, std::move(socket),
                                                        std::move(context));
    } else {
      c = std::make_shared<StreamConnection<beast::tcp_stream>>(*this, std::move(socket));
    }
    connections_.insert(c);
    asio::co_spawn(
        io_, [c] { return c->run(); }, asio::detached);
  }
}

void Server::stop() {
  if (stopping_) return;
  stopping_ = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& c : connections_) c->close();
}

}  // namespace loft::http
