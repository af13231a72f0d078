#pragma once
// The JetStream API (module-private): the dispatcher of requests on `$JS.API.>` (docs/nats.md,
// "JetStream"). A PUB/HPUB with a reply subject on a `$JS.API.` subject is handed to
// Api::handle instead of the Router; the answer is a message on the reply subject, published
// through the Router (so it reaches the requester's inbox subscription, as from nats-server).
//
// Io thread only. Requests that need the broker complete on its writer thread: their answers
// come back through post(), which runs nothing once the Api is gone.
//
// Ownership of the files (three helpers worked on them side by side):
//   js_api.*, js_errors.* (the dispatcher, INFO, STREAM.*, the error table): streams;
//   the CONSUMER.* requests go to `consumers` (below), filled in by the consumer side
//   (js_consumers.*, js_ack.*), which appends its err_codes to js_errors.hpp.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "js_errors.hpp"
#include "loft/auth/auth.hpp"

namespace loft::broker {
class Broker;
}

namespace loft::natsport {
class Router;
}

namespace loft::natsport::js {

inline constexpr std::string_view kApiPrefix = "$JS.API.";

// One API request, copied out of the read buffer (its answer may come later).
struct Request {
  std::string subject;  // the whole subject: "$JS.API.STREAM.INFO.ORDERS"
  std::string reply;    // never empty
  std::string headers;  // the HPUB's `NATS/1.0...` block, empty for a PUB
  std::string payload;
  // The requester: its user (null without users: everything is allowed), its client id, and
  // its session (expired once the connection is gone; for requests that outlive a reply).
  std::shared_ptr<const auth::User> user;
  std::uint64_t client_id = 0;
  std::weak_ptr<void> session;

  // The subject after "$JS.API.": "STREAM.INFO.ORDERS".
  std::string_view api() const { return std::string_view(subject).substr(kApiPrefix.size()); }
};

class Api {
 public:
  Api(Router& router, broker::Broker& broker, boost::asio::any_io_executor io);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Answers `request` (at once, or later through post()). REQUIRES: request.subject begins
  // with kApiPrefix, request.reply is not empty.
  void handle(Request request);

  // ---- The forwarding point of the consumer side -------------------------------------------
  // Requests whose api() begins with "CONSUMER." (CREATE, DURABLE.CREATE, INFO, DELETE,
  // NAMES, LIST, MSG.NEXT) go here. Unset: they get the error response of an unknown API.
  std::function<void(Request request)> consumers;
  // -------------------------------------------------------------------------------------------

  // Publishes `payload` (with the header block `headers`, or none) on `subject` through the
  // Router: an API answer, a PubAck, a message for a pull request.
  void send(std::string_view subject, std::string_view headers, std::string_view payload);
  // An API answer: `json` on `reply`.
  void respond(std::string_view reply, std::string_view json) { send(reply, {}, json); }
  // The error response of API `name` ("stream_info", ...) on `reply`.
  void respond_error(std::string_view reply, std::string_view name, const ApiError& error);

  // Runs `f` on the io thread, unless the Api is gone by then. Any thread (broker callbacks).
  template <class F>
  void post(F f) {
    boost::asio::post(io_, [alive = std::weak_ptr<bool>(alive_), f = std::move(f)]() mutable {
      if (alive.lock()) f();
    });
  }

  Router& router() { return router_; }
  broker::Broker& broker() { return broker_; }

 private:
  void account_info(const Request& request);
  void unknown(const Request& request);

  Router& router_;
  broker::Broker& broker_;
  boost::asio::any_io_executor io_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace loft::natsport::js
