#include "js_api.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "js_consumer_config.hpp"
#include "loft/broker/broker.hpp"
#include "router.hpp"

namespace loft::natsport::js {

namespace {

// What a queued request holds, for the bound of a connection's queue.
std::size_t size(const Request& r) {
  return r.subject.size() + r.reply.size() + r.headers.size() + r.payload.size();
}

}  // namespace

Api::Api(Router& router, broker::Broker& broker, boost::asio::any_io_executor io,
         MessageLimits limits)
    : router_(router), broker_(broker), io_(std::move(io)), limits_(limits) {}

Api::~Api() = default;

void Api::handle(Request request) {
  if (auto it = lines_.find(request.client_id); it != lines_.end()) {
    // An earlier request of this connection waits for the broker: this one runs after it.
    auto& line = it->second;
    if (line.queued.size() >= kMaxQueued || line.bytes + size(request) > kMaxQueuedBytes) {
      return respond_error(
          request.reply, "api",
          api_error(err::kInsufficientResources,
                    "insufficient resources: too many JetStream API requests waiting on this "
                    "connection"));
    }
    line.bytes += size(request);
    line.queued.push_back(std::move(request));
    return;
  }
  const auto client = request.client_id;
  if (run(std::move(request))) lines_.try_emplace(client);
}

bool Api::run(Request request) {
  running_ = request.client_id;
  dispatch(std::move(request));
  const bool held = turn_ != nullptr;
  turn_.reset();  // the handler's copies keep it
  return held;
}

Api::Turn Api::hold() {
  if (!turn_) {
    // Released on the io thread, after the answer the last copy was kept for. (It points at
    // the Api, never dereferenced: a null shared_ptr would read as no turn.)
    turn_ = Turn(static_cast<void*>(this),
                 [io = io_, alive = std::weak_ptr<bool>(alive_), this, client = running_](void*) {
                   boost::asio::post(io, [alive, this, client] {
                     if (alive.lock()) release(client);
                   });
                 });
  }
  return turn_;
}

void Api::release(std::uint64_t client) {
  for (;;) {
    auto it = lines_.find(client);
    if (it == lines_.end()) return;
    if (it->second.queued.empty()) {
      lines_.erase(it);
      return;
    }
    Request next = std::move(it->second.queued.front());
    it->second.queued.pop_front();
    it->second.bytes -= size(next);
    if (run(std::move(next))) return;  // held again: the line stays
  }
}

void Api::dispatch(Request request) {
  const auto api = request.api();
  // A pull request is answered with messages, never audited (as by nats-server).
  if (!api.starts_with("CONSUMER.MSG.NEXT.") && audits_.size() < kMaxAudited &&
      router_.has_interest(kApiAuditSubject)) {
    audits_.insert_or_assign(request.reply, Audited{request.subject, valid_utf8(request.payload)});
  }
  if (api == "INFO") return account_info(request);
  if (api.starts_with("STREAM.")) return stream_api(request, api.substr(7));
  if (api.starts_with("CONSUMER.") && consumers) return consumers(std::move(request));
  unknown(request);
}

void Api::send(std::string_view subject, std::string_view headers, std::string_view payload) {
  router_.publish(nullptr, true, Outbound{subject, {}, headers, payload});
}

void Api::respond(std::string_view reply, std::string_view json) {
  const std::string answer = valid_utf8(json);
  send(reply, {}, answer);
  if (audits_.empty()) return;
  const auto it = audits_.find(std::string(reply));
  if (it == audits_.end()) return;
  const auto audit = api_audit_advisory(advisory_now(random_), server_id, it->second.subject,
                                        it->second.request, answer);
  audits_.erase(it);
  send(audit.subject, {}, audit.body);
}

void Api::respond_error(std::string_view reply, std::string_view name, const ApiError& error) {
  respond(reply, error_response(name, error));
}

bool Api::allowed(const Request& request, auth::Operation op, std::string_view topic) {
  return request.user == nullptr || request.user->permissions.allows(op, topic);
}

// The account is loftd: every stream (topic) the user may see, no limits.
void Api::account_info(const Request& request) {
  boost::json::object body;
  body["type"] = response_type("account_info");
  std::uint64_t bytes = 0;
  std::size_t streams = 0;
  std::size_t consumers = 0;
  for (const auto& t : broker_.list_topics()) {
    if (request.user != nullptr && !request.user->permissions.may_see(t.name)) continue;
    bytes += t.bytes;
    ++streams;
    consumers += consumers_of(t.name);
  }
  body["memory"] = 0;
  body["storage"] = bytes;
  body["streams"] = streams;
  body["consumers"] = consumers;
  boost::json::object limits;
  limits["max_memory"] = -1;
  limits["max_storage"] = -1;
  limits["max_streams"] = -1;
  limits["max_consumers"] = -1;
  limits["max_ack_pending"] = -1;
  limits["memory_max_stream_bytes"] = -1;
  limits["storage_max_stream_bytes"] = -1;
  limits["max_bytes_required"] = false;
  body["limits"] = std::move(limits);
  boost::json::object api;
  api["total"] = 0;
  api["errors"] = 0;
  body["api"] = std::move(api);
  respond(request.reply, boost::json::serialize(body));
}

// nats-server has no handler for such a subject (the request times out or gets "no
// responders"); loft answers, so a client learns at once that the API is not there.
void Api::unknown(const Request& request) {
  forget_audit(request.reply);
  respond_error(request.reply, "api",
                api_error(err::kBadRequest, "unknown JetStream API: " + request.subject));
}

}  // namespace loft::natsport::js
