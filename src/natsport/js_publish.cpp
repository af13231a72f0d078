// Publishing into streams (docs/nats.md, "JetStream: publish"): a PUB/HPUB whose subject a
// stream captures becomes a loft message of that topic; its PubAck is sent once the broker has
// confirmed the write (durable: fsync'd with durability = "fsync").

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <span>
#include <string>
#include <vector>

#include "js_api.hpp"
#include "js_streams.hpp"
#include "log.hpp"

namespace loft::natsport::js {

namespace {

// One broker publish takes at most this much of one read (the rest goes in the next).
constexpr std::size_t kMaxBatchMessages = 1024;
constexpr std::size_t kMaxBatchBytes = 8 << 20;

ApiError publish_error(const Error& e) {
  switch (e.code) {
    case Errc::topic_not_found:
      return api_error(err::kStreamNotFound);
    case Errc::message_too_large:
      return api_error(err::kStreamMessageExceedsMaximum);
    case Errc::headers_too_large:
      return api_error(err::kStreamHeaderExceedsMaximum);
    case Errc::storage_full:
      return api_error(err::kStorageResourcesExceeded);
    case Errc::id_too_large:
    case Errc::invalid_subject:
    case Errc::invalid_request:
      return api_error(err::kBadRequest, e.detail.empty() ? e.to_string() : e.detail);
    default:
      return api_error(err::kStreamStoreFailed, e.detail.empty() ? e.to_string() : e.detail);
  }
}

}  // namespace

void Api::publish(std::string topic, std::string_view subject, std::string_view headers,
                  std::string_view payload, std::string_view reply) {
  auto in = incoming_message(subject, headers, payload);
  if (!in) {
    if (!reply.empty()) {
      puback_error(reply, topic, api_error(err::kBadRequest, in.error().detail));
    }
    return;
  }
  if (auto ok = broker::validate_messages(std::span<const Message>(&in->message, 1), limits_);
      !ok) {
    if (!reply.empty()) puback_error(reply, topic, publish_error(ok.error()));
    return;
  }
  if (in->expect.any()) {
    flush();  // what came before is written first, in order
    return publish_checked(std::move(topic), std::move(in->message), std::string(reply),
                           in->expect);
  }
  if (!staged_.messages.empty() &&
      (staged_.topic != topic || staged_.messages.size() >= kMaxBatchMessages ||
       staged_.bytes >= kMaxBatchBytes)) {
    flush();
  }
  staged_.topic = std::move(topic);
  staged_.bytes += in->message.size_bytes();
  staged_.messages.push_back(std::move(in->message));
  staged_.replies.emplace_back(reply);
}

void Api::flush() {
  if (staged_.messages.empty()) return;
  write(std::exchange(staged_, Staged{}));
}

void Api::write(Staged s) {
  auto replies = std::make_shared<std::vector<std::string>>(std::move(s.replies));
  broker_.publish(s.topic, std::move(s.messages),
                  [this, topic = s.topic, replies](Result<broker::Appended> r) {
                    post([this, topic, replies, r = std::move(r)] {
                      if (!r) {
                        nats_log()->debug("stream publish failed stream={} error=\"{}\"", topic,
                                          r.error().to_string());
                        for (const auto& reply : *replies) {
                          if (!reply.empty()) puback_error(reply, topic, publish_error(r.error()));
                        }
                        return;
                      }
                      for (std::size_t i = 0; i < replies->size() && i < r->results.size(); ++i) {
                        if (!(*replies)[i].empty()) puback((*replies)[i], topic, r->results[i]);
                      }
                    });
                  });
}

// The Nats-Expected-* checks. The stream check needs nothing of the broker; the others are the
// broker's conditions (Broker::publish_if), checked by its writer in one step with the append,
// so another publisher cannot slip in between.
void Api::publish_checked(std::string topic, Message message, std::string reply,
                          const Expectations& expect) {
  if (expect.stream && *expect.stream != topic) {
    if (!reply.empty()) puback_error(reply, topic, api_error(err::kStreamNotMatch));
    return;
  }
  auto conditions = publish_conditions(expect, message.subject);
  std::vector<Message> one;
  one.push_back(std::move(message));
  std::string name = topic;  // the broker's copy; the answer keeps `topic`
  broker_.publish_if(
      std::move(name), std::move(one), std::move(conditions),
      [this, topic = std::move(topic), reply = std::move(reply)](Result<broker::Appended> r) {
        post([this, topic, reply, r = std::move(r)] {
          if (reply.empty()) return;
          if (!r) return puback_error(reply, topic, publish_error(r.error()));
          if (r->refused) return puback_error(reply, topic, condition_error(*r->refused));
          if (!r->results.empty()) puback(reply, topic, r->results.front());
        });
      });
}

void Api::puback(std::string_view reply, std::string_view topic,
                 const broker::MessageResult& result) {
  if (result.code != Errc::ok) {
    return puback_error(
        reply, topic,
        publish_error(Error{result.code, "duplicate message id with a different payload"}));
  }
  boost::json::object ack;
  ack["stream"] = topic;
  ack["seq"] = result.offset.value + 1;
  if (result.duplicate) ack["duplicate"] = true;
  send(reply, {}, boost::json::serialize(ack));
}

void Api::puback_error(std::string_view reply, std::string_view topic, const ApiError& error) {
  boost::json::object body;
  boost::json::object e;
  e["code"] = error.code;
  e["err_code"] = error.err_code;
  e["description"] = error.description;
  body["error"] = std::move(e);
  body["stream"] = topic;
  body["seq"] = 0;
  send(reply, {}, boost::json::serialize(body));
}

}  // namespace loft::natsport::js
