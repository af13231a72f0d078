#include "loft/http/server.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <utility>

#include "loft/http/json.hpp"

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

// One HTTP connection, on the io thread. Owned by the Server's set while it runs.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)), buffer_(kReadBufferBytes) {}

  asio::awaitable<void> run() {
    try {
      co_await serve();
    } catch (const std::exception& e) {
      http_log()->error("connection failed reason={}", e.what());
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
    server_.connections_.erase(shared_from_this());
  }

  // Stop: an idle connection closes now; one answering a request (a publish waiting for its
  // confirm) finishes that answer, without keep-alive, and then closes.
  void close() {
    if (busy_) return;
    beast::error_code ignored;
    stream_.socket().close(ignored);
  }

 private:
  asio::awaitable<void> serve() {
    const auto& o = server_.options_;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(o.max_header_bytes);
      parser.body_limit(o.max_body_bytes);
      stream_.expires_after(o.request_timeout);
      auto [ec, n] = co_await bhttp::async_read(stream_, buffer_, parser, kUseTuple);
      if (ec) {
        // Answer what we can name, then close: the rest of the stream cannot be trusted.
        if (auto answer = read_error_response(ec, o)) {
          co_await write(std::move(*answer));
          co_await linger();
        }
        co_return;
      }
      Request req = parser.release();
      busy_ = true;
      Response res = co_await handle(req);
      res.set(bhttp::field::server, o.server_name);
      res.keep_alive(req.keep_alive() && !server_.stopping_);
      const bool written = co_await write(std::move(res));
      busy_ = false;
      if (!written) co_return;
      if (!req.keep_alive() || server_.stopping_) co_return;
    }
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the
  // error response before the client reads it. So: stop sending, then read and drop what the
  // client still sends, bounded in bytes and time, until it closes.
  asio::awaitable<void> linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
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
    stream_.expires_after(server_.options_.request_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream_, res, kUseTuple);
    co_return !ec && keep;
  }

  asio::awaitable<Response> handle(const Request& req) {
    const unsigned v = req.version();
    const auto r = route(req.target());
    if (!r) {
      // invalid_request would be a 400: a path that names nothing is a 404.
      auto res = error_response(
          Error{Errc::invalid_request, "no endpoint at '" + std::string(req.target()) + "'"}, v);
      res.result(bhttp::status::not_found);
      co_return res;
    }
    const std::string_view allowed = allowed_method(r->endpoint);
    if (req.method_string() != allowed) {
      auto res = error_response(
          Error{Errc::invalid_request, "method " + std::string(req.method_string()) +
                                           " is not allowed here; use " + std::string(allowed)},
          v);
      res.result(bhttp::status::method_not_allowed);
      res.set(bhttp::field::allow, allowed);
      co_return res;
    }
    auto& broker = server_.sources_.broker;
    switch (r->endpoint) {
      case Endpoint::metrics:
        co_return metrics(v);
      case Endpoint::healthz:
        co_return json_response(200, R"({"status":"alive"})", v);
      case Endpoint::readyz:
        if (ready(broker) && !server_.stopping_) {
          co_return json_response(200, R"({"status":"ready"})", v);
        }
        co_return error_response(Error{Errc::shutting_down, "the broker is not taking writes"}, v);
      case Endpoint::topics: {
        json::array out;
        for (const auto& m : broker.list_topics()) out.push_back(topic_json(m));
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
    }
    co_return error_response(Error{Errc::internal_error, "unhandled endpoint"}, v);
  }

  Response metrics(unsigned version) {
    auto& broker = server_.sources_.broker;
    MetricsSnapshot s;
    for (const auto& m : broker.list_topics()) s.topics.push_back(m.name);
    s.broker = broker.metrics();
    s.groups = server_.sources_.groups.metrics();
    s.store = broker.store_stats();
    s.storage_health = broker.storage_health();
    if (server_.sources_.net) s.net = server_.sources_.net();
    s.resident_bytes = resident_memory_bytes();
    Response res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = render_metrics(s);
    return res;
  }

  asio::awaitable<Response> publish(const std::string& topic, const Request& req) {
    const unsigned v = req.version();
    auto body = parse_publish_body(req.body());
    if (!body) co_return error_response(body.error(), v);
    // Named locals, not temporaries in the co_await expression (see read_error_response).
    // The broker checks the messages against its limits, as for every front end.
    auto messages = std::make_shared<std::vector<Message>>(std::move(body->messages));
    auto* broker = &server_.sources_.broker;
    auto start = [broker, topic, messages](broker::Callback<broker::Appended> done) {
      broker->publish(topic, std::move(*messages), std::move(done));
    };
    auto op = on_io_thread<broker::Appended>(stream_.get_executor(), std::move(start));
    auto appended = co_await std::move(op);
    if (!appended) co_return error_response(appended.error(), v);
    const auto& results = appended->results;
    if (!body->array && results.size() == 1 && results.front().code != Errc::ok) {
      co_return error_response(
          Error{results.front().code,
                "the message was not stored: its id is already stored with a different payload"},
          v);
    }
    co_return json_response(200, confirms_json(results, body->array), v);
  }

  Server& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool busy_ = false;
};

Server::Server(asio::io_context& io, Sources sources, ServerOptions options)
    : io_(io), sources_(std::move(sources)), options_(std::move(options)), acceptor_(io) {}

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
    auto c = std::make_shared<Connection>(*this, std::move(socket));
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
