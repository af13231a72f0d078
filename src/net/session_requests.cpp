// The binary protocol's requests: each frame type's handler translates the frame into a call of
// the broker's API (loft's own types) and the answer back into a reply frame. Nothing here
// decides anything the broker decides (limits, names, settings): it checks only its own framing
// (the handshake, what fits a reply frame).

#include <algorithm>
#include <boost/asio/post.hpp>
#include <string>
#include <utility>

#include "loft/protocol/codec.hpp"
#include "log.hpp"
#include "session.hpp"

namespace loft::net {

namespace asio = boost::asio;

template <class T, class Reply>
broker::Callback<T> Session::completion(std::uint32_t correlation_id, Reply make_reply) {
  // The broker completes on its writer thread: hop to this session's thread first.
  return [executor = stream_.get_executor(),
          reply = local<T>(correlation_id, std::move(make_reply))](Result<T> result) mutable {
    asio::post(executor, [reply = std::move(reply), result = std::move(result)]() mutable {
      reply(std::move(result));
    });
  };
}

template <class T, class Reply>
broker::Callback<T> Session::local(std::uint32_t correlation_id, Reply make_reply) {
  ++inflight_;
  inflight_bytes_ += current_cost_;
  return [self = shared_from_this(), correlation_id, cost = current_cost_,
          make_reply = std::move(make_reply)](Result<T> result) mutable {
    --self->inflight_;
    self->inflight_bytes_ -= cost;
    if (result) {
      self->send(correlation_id, make_reply(std::move(result)));
    } else {
      self->send_error(correlation_id, result.error());
    }
    self->read_signal_.cancel();
    self->write_signal_.cancel();
  };
}

void Session::dispatch(std::uint32_t cid, protocol::Body body) {
  if (!handshaken_ && !std::holds_alternative<protocol::Hello>(body)) {
    return fatal(cid, Error{Errc::handshake_required, "the first frame must be HELLO"});
  }
  if (!authenticated() && !std::holds_alternative<protocol::Hello>(body) &&
      !std::holds_alternative<protocol::Authenticate>(body) &&
      !std::holds_alternative<protocol::Ping>(body)) {
    return send_error(cid, Error{Errc::unauthenticated,
                                 "this server has users: send AUTHENTICATE after HELLO first"});
  }
  std::visit([&](auto& req) { handle(cid, req); }, body);
}

template <class Reply>
void Session::handle(std::uint32_t cid, Reply&) {
  fatal(cid, Error{Errc::unknown_frame_type,
                   "frame type " + std::to_string(static_cast<int>(protocol::type_of(Reply{}))) +
                       " is a reply, not a request"});
}

void Session::handle(std::uint32_t cid, protocol::Hello& hello) {
  if (handshaken_) return send_error(cid, Error{Errc::invalid_request, "HELLO was already sent"});
  // The highest version both speak.
  const auto version = std::min(hello.max_version, protocol::kProtocolVersion);
  if (hello.min_version > hello.max_version || version < hello.min_version ||
      version < protocol::kMinProtocolVersion) {
    return fatal(cid, Error{Errc::unsupported_version,
                            "client speaks versions " + std::to_string(hello.min_version) + ".." +
                                std::to_string(hello.max_version) + ", server speaks " +
                                std::to_string(protocol::kMinProtocolVersion) + ".." +
                                std::to_string(protocol::kProtocolVersion)});
  }
  handshaken_ = true;
  // The frames after this one are read, and every reply and delivery written, in its layouts.
  decoder_.set_version(version);
  // With users, a connection is admitted once it has authenticated too (on_verified).
  if (authenticated()) admit();
  client_name_ = hello.client_name;
  net_log()->debug("handshake peer={} client=\"{}\"", peer_, hello.client_name);
  send(cid, protocol::HelloOk{version, context_.options.limits, context_.options.server_name,
                              context_.broker.durability()});
}

void Session::handle(std::uint32_t cid, protocol::Ping&) { send(cid, protocol::Pong{}); }

// ---- Topics ------------------------------------------------------------------------------

void Session::handle(std::uint32_t cid, protocol::CreateTopic& req) {
  if (!permit(cid, auth::Operation::admin, req.name)) return;
  const broker::TopicSettings settings{
      req.dedup_window_ms, req.dedup_conflict, req.retention, {}, req.retention_mode};
  context_.broker.create_topic(std::move(req.name), settings,
                               completion<TopicInfo>(cid, [](auto r) -> protocol::Body {
                                 return protocol::CreateTopicOk{std::move(*r)};
                               }));
}

void Session::handle(std::uint32_t cid, protocol::DeleteTopic& req) {
  if (!permit(cid, auth::Operation::admin, req.name)) return;
  context_.broker.delete_topic(std::move(req.name), completion<void>(cid, [](auto) {
                                 return protocol::Body{protocol::DeleteTopicOk{}};
                               }));
}

void Session::handle(std::uint32_t cid, protocol::AlterTopic& req) {
  if (!permit(cid, auth::Operation::admin, req.name)) return;
  context_.broker.alter_topic(std::move(req.name), req.retention,
                              completion<TopicInfo>(cid, [](auto r) -> protocol::Body {
                                return protocol::AlterTopicOk{std::move(*r)};
                              }));
}

void Session::handle(std::uint32_t cid, protocol::ListTopics&) {
  auto topics = context_.broker.list_topics();
  std::erase_if(topics, [this](const TopicInfo& t) { return !may_see(t.name); });
  send(cid, protocol::ListTopicsOk{std::move(topics)});
}

void Session::handle(std::uint32_t cid, protocol::DescribeTopic& req) {
  if (!may_see(req.name)) return forbid(cid, "describe", req.name);
  auto topic = context_.broker.describe_topic(req.name);
  if (!topic) return send_error(cid, topic.error());
  send(cid, protocol::DescribeTopicOk{std::move(*topic)});
}

void Session::handle(std::uint32_t cid, protocol::Backup& req) {
  if (users_required() && !user_->permissions.allows_all(auth::Operation::admin)) {
    return send_error(cid, Error{Errc::forbidden, "user '" + user_->name +
                                                      "' may not back up: BACKUP copies every "
                                                      "topic and needs admin on \"*\""});
  }
  net_log()->info("backup requested peer={} dir=\"{}\"", peer_, req.dir);
  context_.broker.backup(req.dir, completion<void>(cid, [dir = req.dir](auto) -> protocol::Body {
                           return protocol::BackupOk{dir};
                         }));
}

// ---- Messages ----------------------------------------------------------------------------

void Session::handle(std::uint32_t cid, protocol::Publish& req) {
  if (!permit(cid, auth::Operation::publish, req.topic)) return;
  // A relative delay becomes a time by loftd's clock now, as the request arrives, so the
  // client's clock does not matter; the broker judges the time (max_delivery_delay).
  if (req.delay_ms != 0) {
    auto at = protocol::resolve_delay(req.delay_ms, context_.broker.now_ms());
    if (!at) return send_error(cid, at.error());
    for (auto& m : req.messages) {
      if (m.deliver_at_ms != 0) {
        return send_error(cid, Error{Errc::invalid_request,
                                     "a PUBLISH with delay_ms may not also give a message "
                                     "deliver_at_ms: use one or the other"});
      }
      m.deliver_at_ms = *at;
    }
  }
  // What a message may hold, the broker checks; this front end adds only that the PUBLISH_OK
  // must fit in a frame.
  context_.broker.publish(
      std::move(req.topic), std::move(req.messages),
      completion<broker::Appended>(cid,
                                   [](auto r) -> protocol::Body {
                                     protocol::PublishOk ok;
                                     ok.results.reserve(r->results.size());
                                     for (const auto& m : r->results) {
                                       ok.results.push_back({m.code, m.duplicate, m.offset.value});
                                     }
                                     return ok;
                                   }),
      protocol::max_publish_results(context_.options.limits.max_frame_size));
}

void Session::handle(std::uint32_t cid, protocol::Fetch& req) {
  if (!permit(cid, auth::Operation::subscribe, req.topic)) return;
  constexpr std::uint32_t kDefaultMessages = 1000;
  constexpr std::uint32_t kMaxMessages = 10000;
  const auto& limits = context_.options.limits;
  broker::ReadLimits read;
  read.max_messages =
      req.max_messages == 0 ? kDefaultMessages : std::min(req.max_messages, kMaxMessages);
  // The byte budget counts message bytes; framing is added below, where the reply is cut
  // to fit max_frame_size exactly.
  read.max_bytes = req.max_bytes == 0 ? (1u << 20) : req.max_bytes;
  read.max_bytes = std::min<std::size_t>(read.max_bytes, limits.max_frame_size);
  auto result = context_.broker.fetch(req.topic, Offset{req.offset}, read);
  if (!result) return send_error(cid, result.error());
  // Keep the reply within max_frame_size, counting each message's exact encoded size.
  protocol::FetchOk ok{result->first_offset.value, result->next_offset.value,
                       std::move(result->messages)};
  std::size_t size = protocol::kFetchOkBaseSize;
  std::size_t keep = 0;
  for (; keep < ok.messages.size(); ++keep) {
    const std::size_t next = protocol::encoded_size(ok.messages[keep], decoder_.version());
    if (size + next > limits.max_frame_size) break;
    size += next;
  }
  ok.messages.resize(keep);
  send(cid, std::move(ok));
}

// ---- Consumer groups: answered on this thread; each call may move a deadline ---------------

void Session::handle(std::uint32_t cid, protocol::Subscribe& req) {
  // Joining a group creates it when it does not exist: consuming is enough for that, but a
  // dead-letter topic of the client's choosing is written to, so it needs publish.
  if (!permit(cid, auth::Operation::subscribe, req.topic)) return;
  if (!req.config.dead_letter_topic.empty() &&
      !permit(cid, auth::Operation::publish, req.config.dead_letter_topic)) {
    return;
  }
  context_.groups.groups().subscribe(
      broker::SubscribeRequest{std::move(req.topic), std::move(req.group), req.start,
                               req.max_in_flight, std::move(req.config)},
      this, GroupRunner::now(), local<broker::Subscribed>(cid, [this, cid](auto r) {
        subscriptions_[r->subscription] = cid;
        return protocol::Body{
            protocol::SubscribeOk{r->subscription, r->created, r->ack_floor.value}};
      }));
  context_.groups.arm();
}

void Session::handle(std::uint32_t cid, protocol::Settle& req) {
  std::optional<std::uint32_t> delay;
  if (req.delay_ms != protocol::kBackoffDelay) delay = req.delay_ms;
  context_.groups.groups().settle(
      broker::SettleRequest{req.subscription, req.action, req.confirm, delay, std::move(req.runs)},
      this, GroupRunner::now(), local<broker::Settled>(cid, [](auto r) {
        return protocol::Body{protocol::SettleOk{r->applied, r->ignored}};
      }));
  context_.groups.arm();
}

void Session::handle(std::uint32_t cid, protocol::Unsubscribe& req) {
  auto r = context_.groups.groups().unsubscribe(req.subscription, this, GroupRunner::now());
  context_.groups.arm();
  if (!r) return send_error(cid, r.error());
  subscriptions_.erase(req.subscription);
  send(cid, protocol::UnsubscribeOk{});
}

void Session::handle(std::uint32_t cid, protocol::CreateGroup& req) {
  if (!permit(cid, auth::Operation::admin, req.topic)) return;
  if (!req.config.dead_letter_topic.empty() &&
      !permit(cid, auth::Operation::publish, req.config.dead_letter_topic)) {
    return;
  }
  context_.groups.groups().create_group(
      broker::CreateGroupRequest{std::move(req.topic), std::move(req.group), req.start,
                                 std::move(req.config)},
      GroupRunner::now(), local<GroupInfo>(cid, [](auto r) {
        return protocol::Body{protocol::CreateGroupOk{std::move(*r)}};
      }));
  context_.groups.arm();
}

void Session::handle(std::uint32_t cid, protocol::ListGroups& req) {
  if (!may_see(req.topic)) return forbid(cid, "list groups of", req.topic);
  auto r = context_.groups.groups().list_groups(req.topic);
  if (!r) return send_error(cid, r.error());
  send(cid, protocol::ListGroupsOk{std::move(*r)});
}

void Session::handle(std::uint32_t cid, protocol::DescribeGroup& req) {
  if (!may_see(req.topic)) return forbid(cid, "describe groups of", req.topic);
  auto r = context_.groups.groups().describe_group(req.topic, req.group);
  if (!r) return send_error(cid, r.error());
  send(cid, protocol::DescribeGroupOk{std::move(*r)});
}

void Session::handle(std::uint32_t cid, protocol::DeleteGroup& req) {
  if (!permit(cid, auth::Operation::admin, req.topic)) return;
  context_.groups.groups().delete_group(
      req.topic, req.group, GroupRunner::now(),
      local<void>(cid, [](auto) { return protocol::Body{protocol::DeleteGroupOk{}}; }));
  context_.groups.arm();
}

void Session::handle(std::uint32_t cid, protocol::ResetGroup& req) {
  if (!permit(cid, auth::Operation::admin, req.topic)) return;
  context_.groups.groups().reset_group(
      std::move(req.topic), std::move(req.group), req.to, GroupRunner::now(),
      local<GroupInfo>(
          cid, [](auto r) { return protocol::Body{protocol::ResetGroupOk{std::move(*r)}}; }));
  context_.groups.arm();
}

}  // namespace loft::net
