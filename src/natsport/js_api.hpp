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
#include <boost/json/object.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "js_errors.hpp"
#include "js_message.hpp"
#include "loft/auth/auth.hpp"
#include "loft/broker/broker.hpp"
#include "loft/common/topic.hpp"

namespace loft::natsport {
class Router;
}

namespace loft::natsport::js {

inline constexpr std::string_view kApiPrefix = "$JS.API.";
inline constexpr std::string_view kAckPrefix = "$JS.ACK.";

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
  Api(Router& router, broker::Broker& broker, boost::asio::any_io_executor io,
      MessageLimits limits = {});
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Answers `request` (at once, or later through post()). REQUIRES: request.subject begins
  // with kApiPrefix, request.reply is not empty.
  //
  // In order (docs/nats.md, "JetStream"): the requests of one connection (client_id) run one
  // at a time, in arrival order, as nats-server's. A request that arrives while an earlier one
  // of its connection waits for the broker is queued (at most kMaxQueued requests and
  // kMaxQueuedBytes of subjects and payloads; beyond, it is answered with 503/10023 at once)
  // and runs once that one has answered.
  void handle(Request request);
  static constexpr std::size_t kMaxQueued = 1024;
  static constexpr std::size_t kMaxQueuedBytes = std::size_t{8} << 20;

  // A handler whose answer waits for the broker holds its connection's turn: it calls hold()
  // while it runs and keeps the token (copies of it) until its answer is sent; the connection's
  // next request runs once the last copy is gone. Every call during one request returns the
  // same turn. The token may be dropped on any thread. Io thread (inside a handler).
  using Turn = std::shared_ptr<void>;
  Turn hold();

  // ---- The forwarding point of the consumer side -------------------------------------------
  // Requests whose api() begins with "CONSUMER." (CREATE, DURABLE.CREATE, INFO, DELETE,
  // NAMES, LIST, MSG.NEXT) go here. Unset: they get the error response of an unknown API.
  std::function<void(Request request)> consumers;
  // PUB/HPUBs on `$JS.ACK.>` (with or without a reply subject): the acks of deliveries. Unset:
  // they are routed as core messages.
  std::function<void(Request request)> acks;
  // The consumers of a stream (STREAM.INFO's consumer_count, INFO's consumers). Unset: 0.
  std::function<std::size_t(std::string_view stream)> consumer_count;
  // After STREAM.DELETE removed a stream (its consumers go with it).
  std::function<void(const std::string& stream)> on_stream_deleted;
  // After STREAM.CREATE made a stream ("create"), UPDATE changed one ("modify") or DELETE
  // removed one ("delete"): the stream advisory (docs/nats.md, "Advisories"). Unset: none.
  std::function<void(const std::string& stream, std::string_view action)> on_stream_action;
  // -------------------------------------------------------------------------------------------

  // A PUB/HPUB whose subject `topic` captures (js_publish.cpp): staged, and written with the
  // other staged messages of the same topic in one broker publish by flush(); the PubAck goes
  // to `reply` (none when empty) once the write is durable. Io thread.
  void publish(std::string topic, std::string_view subject, std::string_view headers,
               std::string_view payload, std::string_view reply);
  // Writes what publish() staged. The session calls it after the ops of each read.
  void flush();

  // Publishes `payload` (with the header block `headers`, or none) on `subject` through the
  // Router: an API answer, a PubAck, a message for a pull request.
  void send(std::string_view subject, std::string_view headers, std::string_view payload);
  // An API answer: `json` on `reply`, made valid UTF-8 (valid_utf8): answers echo client
  // bytes (a subject in an error, a name), which JSON text must not carry raw.
  // A request being audited (below) gets its audit advisory right after its answer.
  void respond(std::string_view reply, std::string_view json);
  // The error response of API `name` ("stream_info", ...) on `reply`.
  void respond_error(std::string_view reply, std::string_view name, const ApiError& error);

  // Runs `f` on the io thread, unless the Api is gone by then. Any thread (broker callbacks).
  template <class F>
  void post(F f) {
    boost::asio::post(io_, [alive = std::weak_ptr<bool>(alive_), f = std::move(f)]() mutable {
      if (alive.lock()) f();
    });
  }

  // The API audit (`$JS.EVENT.ADVISORY.API`, docs/nats.md "Advisories"): a request is audited
  // when someone subscribes to that subject as it runs (otherwise it costs one lookup in the
  // Router); its answer's respond() publishes the audit. forget_audit(reply): the answer to
  // come is not audited (nats-server publishes none for a successful MSG.GET, nor for an
  // unknown API, which it does not answer).
  void forget_audit(std::string_view reply) {
    if (!audits_.empty()) audits_.erase(std::string(reply));
  }
  static constexpr std::size_t kMaxAudited = 4096;  // requests waiting for their answer
  // The server id INFO announces (the audit names it). Set by the Server.
  std::string server_id;

  Router& router() { return router_; }
  broker::Broker& broker() { return broker_; }

  // Whether the requester may do `op` on `topic` (always, without users).
  static bool allowed(const Request& request, auth::Operation op, std::string_view topic);

 private:
  // Ordering (js_api.cpp).
  struct Line {
    std::deque<Request> queued;  // arrived while a held request of the connection waits
    std::size_t bytes = 0;       // their size()s
  };
  // Runs `request`; true if it holds its connection's turn.
  bool run(Request request);
  // The held request of `client` has answered: runs its queued ones until one holds.
  void release(std::uint64_t client);
  void dispatch(Request request);
  std::unordered_map<std::uint64_t, Line> lines_;  // the connections with a held request
  std::uint64_t running_ = 0;                      // the client of the request that runs
  Turn turn_;                                      // its turn, once hold() was called

  struct Audited {
    std::string subject;
    std::string request;
  };
  std::unordered_map<std::string, Audited> audits_;  // by reply subject
  std::minstd_rand random_{std::random_device{}()};

  void account_info(const Request& request);
  void unknown(const Request& request);
  // STREAM.* (js_stream_api.cpp).
  void stream_api(const Request& request, std::string_view api);
  void stream_create(const Request& request, std::string_view name, bool update);
  void stream_info(const Request& request, std::string_view name);
  void stream_delete(const Request& request, std::string_view name);
  void stream_list(const Request& request, bool names_only);
  void stream_purge(const Request& request, std::string_view name);
  void stream_msg_get(const Request& request, std::string_view name);
  void stream_msg_delete(const Request& request, std::string_view name);
  // The stream `name` of a request that names one, and the request's JSON body; nullopt once
  // the error (10059 stream not found, a body that is no JSON object) is answered as `type`.
  struct StreamRequest {
    TopicInfo topic;
    boost::json::object body;
  };
  std::optional<StreamRequest> stream_request(const Request& request, std::string_view name,
                                              std::string_view type);
  // The answer of a purge (PURGE.<name>) that `r` completes, on the io thread.
  void purged(std::string_view reply, const Result<broker::PurgeResult>& r);
  // The `{"type":.., "config":.., "created":.., "state":..}` of `name`'s info answer.
  std::string stream_info_json(std::string_view type, const TopicInfo& topic);
  std::size_t consumers_of(std::string_view stream) const {
    return consumer_count ? consumer_count(stream) : 0;
  }

  // Publishing (js_publish.cpp).
  struct Staged {
    std::string topic;
    std::vector<Message> messages;
    std::vector<std::string> replies;  // one per message; empty: no PubAck
    std::size_t bytes = 0;
  };
  void write(Staged staged);
  void publish_checked(std::string topic, Message message, std::string reply,
                       const Expectations& expect);
  void puback(std::string_view reply, std::string_view topic, const broker::MessageResult& result);
  void puback_error(std::string_view reply, std::string_view topic, const ApiError& error);
  Staged staged_;

  Router& router_;
  broker::Broker& broker_;
  boost::asio::any_io_executor io_;
  MessageLimits limits_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace loft::natsport::js
